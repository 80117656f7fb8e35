//! Native file dialogs (rfd), run off the UI thread; where none exists, a typed path instead.

use std::path::{Path, PathBuf};

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
        if let Some(why) = self.upload_refusal() {
            return self.toast_error(why);
        }
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
                // A native save dialog has asked before replacing its file.
                DialogAnswer::DownloadTo { keys, path } => self.download_to(keys, path, true),
                // Either no native dialog exists here or the user cancelled: offer a path field
                // rather than silently doing nothing.
                DialogAnswer::Nothing(kind) => {
                    let start = prompt_start(&kind, &UserFolders::of_user());
                    self.path_prompt = Some((kind, start));
                }
            }
        }
    }
}

/// The user's folders a typed path is read against.
pub(super) struct UserFolders {
    home: Option<PathBuf>,
    downloads: Option<PathBuf>,
}

impl UserFolders {
    pub(super) fn of_user() -> Self {
        let dirs = directories::UserDirs::new();
        Self {
            home: dirs.as_ref().map(|d| d.home_dir().to_owned()),
            downloads: dirs
                .as_ref()
                .and_then(|d| d.download_dir().map(Path::to_owned)),
        }
    }
}

/// What the path field holds when it opens: the Downloads folder for a download, the home
/// folder for an upload, ending with a separator so the name goes right after.
fn prompt_start(kind: &PathPromptKind, folders: &UserFolders) -> String {
    let folder = match kind {
        PathPromptKind::Download(_) => folders.downloads.as_ref().or(folders.home.as_ref()),
        PathPromptKind::Upload(_) => folders.home.as_ref(),
    };
    folder.map_or_else(String::new, |f| {
        format!("{}{}", f.display(), std::path::MAIN_SEPARATOR)
    })
}

/// A path as typed in the path field: `~` is the home folder, as in a shell, and a relative
/// path is taken from the home folder. The app's working folder is wherever it was started
/// from: a download to `~/notes.txt` landed in a new folder named `~` there, unseen.
pub(super) fn typed_path(text: &str, folders: &UserFolders) -> PathBuf {
    let text = text.trim();
    let Some(home) = &folders.home else {
        return PathBuf::from(text);
    };
    if text == "~" {
        return home.clone();
    }
    if let Some(rest) = text.strip_prefix("~/") {
        return home.join(rest);
    }
    let path = Path::new(text);
    if path.is_relative() && !text.starts_with('~') {
        return home.join(path);
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_paths_start_from_home() {
        let folders = UserFolders {
            home: Some(PathBuf::from("/home/ann")),
            downloads: Some(PathBuf::from("/home/ann/Downloads")),
        };
        let typed = |t: &str| typed_path(t, &folders);
        assert_eq!(typed("~"), Path::new("/home/ann"));
        assert_eq!(
            typed(" ~/notes copy.txt "),
            Path::new("/home/ann/notes copy.txt")
        );
        assert_eq!(typed("notes.txt"), Path::new("/home/ann/notes.txt"));
        assert_eq!(typed("/tmp/x.bin"), Path::new("/tmp/x.bin"));
        // Another user's home (`~bob`) is not guessed at.
        assert_eq!(typed("~bob/x"), Path::new("~bob/x"));
        assert_eq!(
            prompt_start(&PathPromptKind::Download(vec![]), &folders),
            format!("/home/ann/Downloads{}", std::path::MAIN_SEPARATOR)
        );
        assert_eq!(
            prompt_start(&PathPromptKind::Upload(AfterUpload::Nothing), &folders),
            format!("/home/ann{}", std::path::MAIN_SEPARATOR)
        );
    }
}
