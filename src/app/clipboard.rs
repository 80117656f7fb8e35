//! The clipboard behind a trait: arboard in the app, memory in tests.

use std::sync::Arc;

use parking_lot::Mutex;

/// Somewhere to put copied links.
pub trait Clipboard {
    /// Puts `text` on the clipboard, or says why it cannot.
    fn set_text(&mut self, text: &str) -> Result<(), String>;
}

/// The system clipboard (arboard), opened on first use: where there is no display server it
/// fails with a message instead of a panic, and links can still be copied from the dialog.
#[derive(Default)]
pub struct SystemClipboard {
    inner: Option<arboard::Clipboard>,
}

impl Clipboard for SystemClipboard {
    fn set_text(&mut self, text: &str) -> Result<(), String> {
        if self.inner.is_none() {
            self.inner = Some(arboard::Clipboard::new().map_err(|e| {
                format!("no clipboard available ({e}); copy the link from the dialog instead")
            })?);
        }
        let clipboard = self.inner.as_mut().expect("just set");
        clipboard
            .set_text(text.to_owned())
            .map_err(|e| format!("could not copy: {e}"))
    }
}

/// A clipboard that remembers the last text, for tests.
#[derive(Clone, Default)]
pub struct MemoryClipboard(pub Arc<Mutex<Option<String>>>);

impl Clipboard for MemoryClipboard {
    fn set_text(&mut self, text: &str) -> Result<(), String> {
        *self.0.lock() = Some(text.to_owned());
        Ok(())
    }
}
