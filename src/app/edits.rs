//! Changes to the bucket that are not transfers: deleting files and making folders.

use super::S3ShareApp;
use super::backend::Command;
use super::model::{Entry, counted};

/// A delete waiting for its confirmation: the files and folders selected, and (for folders)
/// everything they hold, listed before anything is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletePlan {
    /// The bucket they are in.
    pub bucket: String,
    /// Files selected.
    pub files: Vec<String>,
    /// Folders selected (prefixes ending with `/`).
    pub folders: Vec<String>,
    /// The keys below the folders and their total size; `None` while they are being listed.
    pub contents: Option<Result<(Vec<String>, u64), String>>,
}

impl DeletePlan {
    /// Whether everything it would delete is known.
    pub fn ready(&self) -> bool {
        self.folders.is_empty() || matches!(self.contents, Some(Ok(_)))
    }

    /// Every key it deletes.
    pub fn keys(&self) -> Vec<String> {
        let inside = match &self.contents {
            Some(Ok((keys, _))) => keys.as_slice(),
            _ => &[],
        };
        self.files.iter().chain(inside).cloned().collect()
    }
}

impl S3ShareApp {
    /// Asks to delete the selection (after confirmation). Selected folders are listed first,
    /// so the confirmation says how many files, and how many bytes, go with them.
    pub fn request_delete(&mut self) {
        let Some(place) = &self.place else { return };
        let selection = self.listing.selection();
        if selection.is_empty() {
            return self.toast_error("Select the files or folders to delete.".into());
        }
        let (folders, files): (Vec<_>, Vec<_>) = selection.into_iter().partition(|e| e.is_folder);
        let plan = DeletePlan {
            bucket: place.bucket.clone(),
            files: files.into_iter().map(|e| e.key.clone()).collect(),
            folders: folders.into_iter().map(|e| e.key.clone()).collect(),
            contents: None,
        };
        if !plan.folders.is_empty() {
            self.backend.send(Command::ListForDelete {
                bucket: plan.bucket.clone(),
                folders: plan.folders.clone(),
            });
        }
        self.confirm_delete = Some(plan);
    }

    /// What the folders of the waiting delete hold.
    pub(super) fn folder_contents(
        &mut self,
        bucket: String,
        folders: Vec<String>,
        result: Result<(Vec<String>, u64), String>,
    ) {
        if let Some(plan) = &mut self.confirm_delete
            && plan.bucket == bucket
            && plan.folders == folders
        {
            plan.contents = Some(result);
        }
    }

    /// Deletes after confirmation: what the confirmation showed, nothing added since.
    pub fn confirm_delete(&mut self) {
        let Some(plan) = self.confirm_delete.take() else {
            return;
        };
        if !plan.ready() {
            self.confirm_delete = Some(plan);
            return;
        }
        self.backend.send(Command::Delete {
            bucket: plan.bucket.clone(),
            keys: plan.keys(),
        });
    }

    /// What is wrong with `name` for a new folder here, if anything: none given, a name
    /// taken by a folder or a file of this folder, or empty, `.` or `..` segments (which
    /// servers that keep objects as files store otherwise).
    pub fn folder_name_problem(&self, name: &str) -> Option<String> {
        let name = name.trim().trim_matches('/');
        if name.is_empty() {
            return Some("Type a name for the folder.".into());
        }
        if name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Some("A folder name cannot have empty, \".\" or \"..\" parts.".into());
        }
        let place = self.place.as_ref()?;
        let first = name.split('/').next().unwrap_or(name);
        let here = format!("{}{first}", place.prefix);
        if name == first && self.listing.get(&format!("{here}/")).is_some() {
            return Some(format!("There is already a folder named \"{first}\" here."));
        }
        if self.listing.get(&here).is_some() {
            return Some(format!("There is already a file named \"{first}\" here."));
        }
        None
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
        // Folders' own markers are not files to the user.
        let files = deleted.iter().filter(|k| !k.ends_with('/')).count();
        match files {
            0 if !deleted.is_empty() => self.toast(format!("Deleted{there}")),
            0 => {}
            n => self.toast(format!("Deleted {}{there}", counted(n, "file", "files"))),
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
