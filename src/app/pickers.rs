//! Native file dialogs (rfd), run off the UI thread; where none exists, a typed path instead.

use std::path::PathBuf;

use super::S3ShareApp;
use super::backend::AfterUpload;

/// Native dialogs (rfd) run on the runtime; their answers come back here.
#[derive(Debug)]
pub(super) enum DialogAnswer {
    UploadPaths(Vec<PathBuf>, AfterUpload),
    DownloadTo {
        keys: Vec<String>,
        path: PathBuf,
    },
    /// No path came back: no dialog on this desktop, or the user cancelled it.
    Nothing(PathPromptKind),
}

/// What a typed path is for, when no native dialog is available.
#[derive(Debug, Clone, PartialEq)]
pub enum PathPromptKind {
    /// Upload a file or folder, then do this.
    Upload(AfterUpload),
    /// Download the keys into a file (one) or folder (several).
    Download(Vec<String>),
}

impl S3ShareApp {
    /// Opens the native file picker (or a path field where there is none).
    pub fn pick_upload(&mut self, folders: bool, then: AfterUpload) {
        let tx = self.dialogs.0.clone();
        let ctx = self.repaint_ctx.clone();
        self.runtime.spawn(async move {
            let dialog = rfd::AsyncFileDialog::new().set_title("Upload to S3");
            let picked = if folders {
                dialog.pick_folders().await
            } else {
                dialog.pick_files().await
            };
            let answer = match picked {
                Some(handles) if !handles.is_empty() => DialogAnswer::UploadPaths(
                    handles.iter().map(|h| h.path().to_owned()).collect(),
                    then,
                ),
                _ => DialogAnswer::Nothing(PathPromptKind::Upload(then)),
            };
            let _ = tx.send(answer);
            ctx.request_repaint();
        });
    }

    /// Downloads the selection: a save dialog for one file, a folder dialog for several.
    pub fn pick_download(&mut self) {
        let keys = self.listing.selected_files();
        if keys.is_empty() {
            return self.toast_error("Select files to download.".into());
        }
        let tx = self.dialogs.0.clone();
        let ctx = self.repaint_ctx.clone();
        self.runtime.spawn(async move {
            let dialog = rfd::AsyncFileDialog::new().set_title("Download from S3");
            let picked = if keys.len() == 1 {
                let name = keys[0].rsplit('/').next().unwrap_or("download").to_owned();
                dialog.set_file_name(name).save_file().await
            } else {
                dialog.pick_folder().await
            };
            let answer = match picked {
                Some(h) => DialogAnswer::DownloadTo {
                    keys,
                    path: h.path().to_owned(),
                },
                None => DialogAnswer::Nothing(PathPromptKind::Download(keys)),
            };
            let _ = tx.send(answer);
            ctx.request_repaint();
        });
    }

    /// Acts on the answers the native dialogs sent since the last frame.
    pub(super) fn apply_dialog_answers(&mut self) {
        while let Ok(answer) = self.dialogs.1.try_recv() {
            match answer {
                DialogAnswer::UploadPaths(paths, then) => self.upload_paths_then(paths, then),
                DialogAnswer::DownloadTo { keys, path } => self.download_to(keys, path),
                // Either no native dialog exists here or the user cancelled: offer a path field
                // rather than silently doing nothing.
                DialogAnswer::Nothing(kind) => self.path_prompt = Some((kind, String::new())),
            }
        }
    }
}
