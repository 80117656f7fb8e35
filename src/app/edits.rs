//! Changes to the bucket that are not transfers: deleting files and making folders.

use super::S3ShareApp;
use super::backend::Command;
use super::model::Entry;

impl S3ShareApp {
    /// Asks to delete the selection (after confirmation).
    pub fn request_delete(&mut self) {
        let keys = self.listing.selected_files();
        if keys.is_empty() {
            return self.toast_error(
                "Select files to delete (folders are deleted by deleting what is in them).".into(),
            );
        }
        self.confirm_delete = Some(keys);
    }

    /// Deletes after confirmation.
    pub fn confirm_delete(&mut self) {
        let (Some(keys), Some(place)) = (self.confirm_delete.take(), &self.place) else {
            return;
        };
        self.backend.send(Command::Delete {
            bucket: place.bucket.clone(),
            keys,
        });
    }

    /// Creates a folder in the current folder.
    pub fn create_folder(&mut self, name: &str) {
        let Some(place) = &self.place else { return };
        let name = name.trim().trim_matches('/');
        if name.is_empty() {
            return;
        }
        self.backend.send(Command::CreateFolder {
            bucket: place.bucket.clone(),
            prefix: format!("{}{name}/", place.prefix),
        });
    }

    /// The worker deleted `deleted` (and could not delete the rest, `errors`); `here`: on the
    /// connection in use (else on one left since, whose listing is no longer on screen).
    pub(super) fn deleted(
        &mut self,
        bucket: String,
        deleted: Vec<String>,
        errors: Vec<String>,
        here: bool,
    ) {
        if here && self.place.as_ref().is_some_and(|p| p.bucket == bucket) {
            self.listing.remove(&deleted);
        }
        let there = if here {
            ""
        } else {
            " on the connection you left"
        };
        if !deleted.is_empty() {
            self.toast(format!("Deleted {} file(s){there}", deleted.len()));
        }
        for e in errors {
            self.toast_error(e);
        }
    }

    /// A folder was made: it shows at once if it is in the folder being viewed.
    pub(super) fn folder_created(&mut self, bucket: String, prefix: String) {
        if let Some(place) = &self.place
            && place.bucket == bucket
            && let Some(name) = prefix.strip_prefix(&place.prefix)
        {
            let name = name.trim_end_matches('/').to_owned();
            self.listing
                .upsert(Entry::new(prefix.clone(), name, true, 0, None));
        }
    }
}
