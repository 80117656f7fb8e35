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
        });
        self.backend.send(Command::Preview {
            bucket: place.bucket.clone(),
            key: entry.key,
            size: entry.size,
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
        p.info = info;
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
