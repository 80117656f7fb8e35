//! The preview panel's state: which file, its metadata, and its content once the worker
//! loaded it (see `backend/preview.rs`).

use super::S3ShareApp;
use super::backend::{Command, PreviewContent};
use super::model::Entry;
use crate::s3::ObjectInfo;

/// The preview of the selected file.
pub struct Preview {
    /// Key.
    pub key: String,
    /// HEAD metadata.
    pub info: Option<ObjectInfo>,
    /// Content, once loaded.
    pub content: Option<Result<PreviewContent, String>>,
    /// Texture of an image preview.
    pub texture: Option<egui::TextureHandle>,
    /// Size as listed.
    pub size: u64,
    /// Why loading it again failed, while the last good content stays shown (stale).
    pub failed: Option<String>,
    /// Loading again (Retry) is under way.
    pub reloading: bool,
}

impl S3ShareApp {
    /// Asks the worker for a preview of `entry` (once per file).
    pub(super) fn load_preview(&mut self, entry: Entry) {
        let Some(place) = &self.place else { return };
        if self.preview.as_ref().is_some_and(|p| p.key == entry.key) {
            return;
        }
        self.preview = Some(Preview {
            key: entry.key.clone(),
            info: None,
            content: None,
            texture: None,
            size: entry.size,
            failed: None,
            reloading: false,
        });
        self.backend.send(Command::Preview {
            bucket: place.bucket.clone(),
            key: entry.key,
            size: entry.size,
        });
    }

    /// Loads the preview again (after a failure), keeping what is shown until it arrives.
    pub fn retry_preview(&mut self) {
        let (Some(place), Some(p)) = (&self.place, &mut self.preview) else {
            return;
        };
        if p.content.as_ref().is_some_and(Result::is_err) {
            p.content = None;
        }
        p.reloading = true;
        self.backend.send(Command::Preview {
            bucket: place.bucket.clone(),
            key: p.key.clone(),
            size: p.size,
        });
    }

    /// A preview arrived: shown if it is still the selected file's.
    pub(super) fn preview_ready(
        &mut self,
        ctx: &egui::Context,
        key: String,
        info: Option<ObjectInfo>,
        content: Result<PreviewContent, String>,
    ) {
        let Some(p) = &mut self.preview else { return };
        if p.key != key {
            return;
        }
        p.reloading = false;
        if let Err(e) = &content
            && matches!(p.content, Some(Ok(_)))
        {
            // Keep what was shown, marked stale, rather than trade it for an error.
            p.failed = Some(e.clone());
            return;
        }
        p.failed = None;
        p.info = info.or(p.info.take());
        if let Ok(PreviewContent::Image(image)) = &content {
            p.texture = Some(ctx.load_texture(
                format!("preview:{key}"),
                (**image).clone(),
                egui::TextureOptions::LINEAR,
            ));
        }
        p.content = Some(content);
    }
}
