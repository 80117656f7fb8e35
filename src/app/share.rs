//! Links: the share dialog, making links with an honest expiry, copying them, the QR code.

use std::time::{Duration, SystemTime};

use super::backend::{Command, LinkVia};
use super::{ConnectionState, S3ShareApp};
use crate::links::{self, Link};

/// Link lifetimes offered by the share dialog.
pub const EXPIRY_CHOICES: [(&str, u64); 4] = [
    ("15 minutes", 900),
    ("1 hour", 3600),
    ("1 day", 86400),
    ("7 days", 604800),
];

/// The share dialog.
pub struct ShareDialog {
    /// Bucket.
    pub bucket: String,
    /// Keys to link (several for a multi-selection); for an upload link, the folder.
    pub keys: Vec<String>,
    /// An upload (PUT) link into a folder.
    pub upload: bool,
    /// The file name for an upload link.
    pub upload_name: String,
    /// Chosen lifetime in seconds, or `None` for custom.
    pub expiry: Option<u64>,
    /// Custom lifetime text (`2h`, `3d`).
    pub custom: String,
    /// Download file name (single GET links).
    pub filename: String,
    /// Made links.
    pub links: Option<Vec<(String, Link)>>,
    /// QR code of a single link.
    pub qr: Option<egui::TextureHandle>,
    /// A request is under way.
    pub busy: bool,
    /// What went wrong.
    pub error: Option<String>,
    /// The [`Command::MakeLinks`] whose answer the dialog waits for.
    pub request: u64,
    /// "Share via relay": the chosen lifetime in seconds (see
    /// [`RELAY_EXPIRY_CHOICES`](super::RELAY_EXPIRY_CHOICES)).
    pub relay_expiry: u64,
    /// "Share via relay": the note kept with the link in the ledger.
    pub note: String,
    /// Whether the links shown are relay links.
    pub via_relay: bool,
}

impl S3ShareApp {
    /// Opens the share dialog for the selected files.
    pub fn share_selection(&mut self) {
        let keys = self.listing.selected_files();
        if keys.is_empty() {
            return self.toast_error("Select one or more files to share.".into());
        }
        self.open_share(keys, false);
    }

    /// Opens the share dialog for an upload link into `folder`.
    pub fn share_upload_link(&mut self, folder: String) {
        self.open_share(vec![folder], true);
    }

    fn open_share(&mut self, keys: Vec<String>, upload: bool) {
        let Some(place) = &self.place else { return };
        let secs = self.settings.link_expiry_secs;
        let preset = EXPIRY_CHOICES.iter().any(|(_, s)| *s == secs);
        self.share = Some(ShareDialog {
            bucket: place.bucket.clone(),
            keys,
            upload,
            upload_name: String::new(),
            expiry: preset.then_some(secs),
            custom: if preset {
                String::new()
            } else {
                links::format_duration(Duration::from_secs(secs))
            },
            filename: String::new(),
            links: None,
            qr: None,
            busy: false,
            error: None,
            request: 0,
            relay_expiry: 7 * 86400,
            note: String::new(),
            via_relay: false,
        });
    }

    /// The lifetime chosen in the share dialog, or why it is not valid.
    pub fn share_expiry(dialog: &ShareDialog) -> Result<Duration, String> {
        match dialog.expiry {
            Some(secs) => Ok(Duration::from_secs(secs)),
            None => links::parse_expiry(&dialog.custom).map_err(|e| e.to_string()),
        }
    }

    /// When a link asked for now with `requested` lifetime would really stop working, and
    /// whether the credentials cut it short.
    pub fn honest_end(&self, requested: Duration) -> (SystemTime, bool) {
        let credentials_expiry = match &self.connection {
            ConnectionState::Connected {
                credentials_expiry, ..
            } => *credentials_expiry,
            _ => None,
        };
        links::honest_expiry(SystemTime::now(), requested, credentials_expiry)
    }

    /// Makes the dialog's link(s); they are copied when they arrive.
    pub fn make_links(&mut self) {
        let Some(dialog) = &mut self.share else {
            return;
        };
        let expires = match Self::share_expiry(dialog) {
            Ok(e) => e,
            Err(e) => {
                dialog.error = Some(e);
                return;
            }
        };
        let (keys, filename) = if dialog.upload {
            let name = dialog.upload_name.trim();
            if name.is_empty() {
                dialog.error = Some("Type the name of the file to be uploaded.".into());
                return;
            }
            (vec![format!("{}{name}", dialog.keys[0])], None)
        } else {
            (
                dialog.keys.clone(),
                Some(dialog.filename.trim().to_owned())
                    .filter(|f| !f.is_empty() && dialog.keys.len() == 1),
            )
        };
        dialog.busy = true;
        dialog.error = None;
        dialog.request = self.backend.next_id();
        // A lifetime from the list is remembered for the next links; a custom one is for
        // these (a one-off "90s" must not become every later link's).
        if dialog.expiry.is_some() {
            self.settings.link_expiry_secs = expires.as_secs();
        }
        self.backend.send(Command::MakeLinks {
            request: dialog.request,
            bucket: dialog.bucket.clone(),
            keys,
            expires,
            filename,
            put: dialog.upload,
            via: LinkVia::Presigned,
        });
        dialog.via_relay = false;
    }

    /// "Share via relay": read-only relay links to the dialog's files, recorded in the bucket's
    /// ledger with the note; they are copied when they arrive.
    pub fn make_relay_links(&mut self) {
        let relay_on = self.relay_url().is_some();
        let Some(dialog) = &mut self.share else {
            return;
        };
        if dialog.upload {
            return;
        }
        if !relay_on {
            dialog.error = Some("The relay is off: switch it on to share through it.".into());
            return;
        }
        dialog.busy = true;
        dialog.error = None;
        dialog.via_relay = true;
        dialog.request = self.backend.next_id();
        let note = Some(dialog.note.trim().to_owned()).filter(|n| !n.is_empty());
        self.backend.send(Command::MakeLinks {
            request: dialog.request,
            bucket: dialog.bucket.clone(),
            keys: dialog.keys.clone(),
            expires: Duration::from_secs(dialog.relay_expiry),
            filename: None,
            put: false,
            via: LinkVia::Relay { note },
        });
    }

    /// Ctrl+C: copies links to the selected files at once, with the last-used lifetime.
    pub fn quick_copy_links(&mut self) {
        self.share_selection();
        if self.share.is_some() {
            self.make_links();
        }
    }

    /// Copies links to `keys` at once, with no dialog: "Upload and copy link" when the upload
    /// is done, and "Copy link" on a finished upload.
    pub fn copy_links(&mut self, bucket: String, keys: Vec<String>, expires: Duration) {
        if keys.is_empty() {
            return;
        }
        let request = self.backend.next_id();
        self.link_copies.insert(request);
        self.backend.send(Command::MakeLinks {
            request,
            bucket,
            keys,
            expires,
            filename: None,
            put: false,
            // With the relay running: short, stable links (recorded in the ledger).
            via: LinkVia::RelayIfRunning,
        });
    }

    /// Links arrived: for the share dialog (shown there, and copied), or for a direct copy.
    pub(super) fn links_ready(
        &mut self,
        ctx: &egui::Context,
        request: u64,
        result: Result<Vec<(String, Link)>, String>,
    ) {
        if self.link_copies.remove(&request) {
            match result {
                Ok(links) => self.copy_to_clipboard(&links),
                Err(e) => self.toast_error(format!("No link made: {e}")),
            }
            return;
        }
        let Some(dialog) = &mut self.share else {
            return;
        };
        if dialog.request != request {
            return;
        }
        dialog.busy = false;
        let links = match result {
            Ok(l) => l,
            Err(e) => {
                dialog.error = Some(e);
                return;
            }
        };
        dialog.qr = (links.len() == 1)
            .then(|| qr_texture(ctx, &links[0].1.url))
            .flatten();
        dialog.links = Some(links.clone());
        self.copy_to_clipboard(&links);
    }

    /// Puts the links on the clipboard, one per line, and says until when they work (the
    /// honest end: the credentials may cut a link short).
    fn copy_to_clipboard(&mut self, links: &[(String, Link)]) {
        let text = links
            .iter()
            .map(|(_, l)| l.url.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let end = links.iter().map(|(_, l)| l.expires_at).min();
        let limited = links.iter().any(|(_, l)| l.limited_by_credentials);
        let when = end.map(links::format_time).unwrap_or_default();
        let relay = self
            .relay_url()
            .is_some_and(|base| links.iter().all(|(_, l)| l.url.starts_with(base)));
        let copied = match (links.len(), relay) {
            (1, false) => "Link copied.".to_owned(),
            (1, true) => "Relay link copied.".to_owned(),
            (n, false) => format!("{n} links copied, one per line."),
            (n, true) => format!("{n} relay links copied, one per line."),
        };
        let (works, stops) = if links.len() == 1 {
            ("It works", "It stops")
        } else {
            ("They work", "They stop")
        };
        match self.clipboard.set_text(&text) {
            Ok(()) if limited => self.toast_error(format!("{copied} {stops} working at {when}, sooner than asked, because the credentials expire then.")),
            Ok(()) => self.toast(format!("{copied} {works} until {when}.")),
            Err(e) => self.toast_error(e),
        }
    }
}

/// A QR code of `text` as a texture (black modules on white, with a quiet zone).
fn qr_texture(ctx: &egui::Context, text: &str) -> Option<egui::TextureHandle> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    let width = code.width();
    let quiet = 4;
    let scale = 4;
    let side = (width + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![egui::Color32::WHITE; side * side];
    for y in 0..width {
        for x in 0..width {
            if colors[y * width + x] == qrcode::Color::Dark {
                for dy in 0..scale {
                    for dx in 0..scale {
                        pixels[((y + quiet) * scale + dy) * side + (x + quiet) * scale + dx] =
                            egui::Color32::BLACK;
                    }
                }
            }
        }
    }
    let image = egui::ColorImage {
        size: [side, side],
        source_size: egui::vec2(side as f32, side as f32),
        pixels,
    };
    Some(ctx.load_texture("share-qr", image, egui::TextureOptions::NEAREST))
}
