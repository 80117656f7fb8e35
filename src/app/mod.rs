//! The desktop app: browse a bucket, drop files to upload, copy expiring links.
//!
//! State lives in [`S3ShareApp`] and [`model`]; drawing lives in the `*_ui` modules, each a small
//! function over `&mut Ui`. Nothing here talks to S3 or the disk: every such request goes to
//! the [`backend`] as a command and comes back as an event, so no frame ever waits.

pub mod backend;
pub mod clipboard;
pub mod model;

mod browser_ui;
mod dialogs_ui;
mod quit;
mod side_ui;
mod transfers_ui;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use backend::{
    Backend, BackendConfig, Command, ConflictChoice, ConnectionTarget, CustomEndpoint, Event,
    PlannedUpload, PreviewContent, TransferId,
};
use clipboard::Clipboard;
use model::{Direction, Entry, Listing, Place, SortBy, Transfer, TransferState};
pub use quit::QuitState;

use crate::links::{self, Link};
use crate::s3::ObjectInfo;
use crate::transfer::TransferEvent;

/// What survives a restart (eframe persistence). Secrets never go here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The connection used last.
    pub last_target: Option<ConnectionTarget>,
    /// The bucket and folder open last.
    pub last_place: Option<Place>,
    /// Endpoints the user added.
    pub custom_endpoints: Vec<CustomEndpoint>,
    /// The link lifetime chosen last, in seconds.
    pub link_expiry_secs: u64,
    /// Sort column and direction.
    pub sort: Option<(SortBy, bool)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            last_target: None,
            last_place: None,
            custom_endpoints: Vec::new(),
            link_expiry_secs: 3600,
            sort: None,
        }
    }
}

/// The connection as the UI shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Not connected yet.
    Idle,
    /// Waiting for the worker.
    Connecting(ConnectionTarget),
    /// Ready.
    Connected {
        /// Where.
        target: ConnectionTarget,
        /// Endpoint label.
        endpoint: String,
        /// When the credentials expire.
        credentials_expiry: Option<SystemTime>,
        /// Port of the embedded store, when that is the connection.
        local_port: Option<u16>,
    },
    /// Failed, with what to do.
    Failed(ConnectionTarget, String),
}

/// A toast message.
#[derive(Debug, Clone)]
pub struct Toast {
    /// Text.
    pub text: String,
    /// Whether it reports a problem.
    pub error: bool,
    /// When it disappears.
    pub until: Instant,
}

/// The conflict question for a planned upload.
#[derive(Debug)]
pub struct ConflictPrompt {
    bucket: String,
    /// Uploads still to decide (the first is the one asked about).
    pending: Vec<PlannedUpload>,
    /// Decided so far.
    decided: Vec<(PlannedUpload, ConflictChoice)>,
    /// Apply the next answer to all remaining conflicts.
    pub apply_to_all: bool,
}

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
}

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

/// Native dialogs (rfd) run on the runtime; their answers come back here.
#[derive(Debug)]
enum DialogAnswer {
    UploadPaths(Vec<PathBuf>),
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
    /// Upload a file or folder.
    Upload,
    /// Download the keys into a file (one) or folder (several).
    Download(Vec<String>),
}

/// The app.
pub struct S3ShareApp {
    /// Persistent settings.
    pub settings: Settings,
    backend: Backend,
    clipboard: Box<dyn Clipboard>,
    runtime: tokio::runtime::Handle,
    dialogs: (mpsc::Sender<DialogAnswer>, mpsc::Receiver<DialogAnswer>),
    repaint_ctx: egui::Context,

    /// The connection.
    pub connection: ConnectionState,
    /// AWS profiles found in the shared config files.
    pub profiles: Vec<String>,
    /// Bucket names (or why they cannot be listed).
    pub buckets: Option<Result<Vec<String>, String>>,
    /// A bucket name being typed.
    pub bucket_input: String,
    /// Where the user is.
    pub place: Option<Place>,
    back: Vec<Place>,
    forward: Vec<Place>,
    /// The current folder's listing.
    pub listing: Listing,
    /// Every transfer of this session.
    pub transfers: Vec<Transfer>,
    retry_info: HashMap<TransferId, RetryInfo>,
    /// An open conflict question.
    pub conflicts: Option<ConflictPrompt>,
    /// The share dialog.
    pub share: Option<ShareDialog>,
    /// Keys waiting for a delete confirmation.
    pub confirm_delete: Option<Vec<String>>,
    /// A new folder's name being typed.
    pub new_folder: Option<String>,
    /// The preview panel.
    pub preview: Option<Preview>,
    /// Toasts.
    pub toasts: Vec<Toast>,
    /// The "add endpoint" form.
    pub endpoint_form: Option<CustomEndpoint>,
    /// A path typed instead of a native dialog.
    pub path_prompt: Option<(PathPromptKind, String)>,
    /// Whether the window is on its way out (close requested while transfers run).
    pub quit: QuitState,
    focus_filter: bool,
    first_frame_shown: bool,
}

/// Set by `main` first thing, so the start-up time to the first frame can be reported
/// (`S3SHARE_STARTUP_PROBE=1` prints it and closes the window: used by benchmarks).
pub static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[derive(Debug, Clone)]
enum RetryInfo {
    Upload {
        bucket: String,
        planned: PlannedUpload,
        choice: ConflictChoice,
    },
    Download {
        bucket: String,
        item: crate::transfer::DownloadItem,
        overwrite: bool,
    },
}

impl S3ShareApp {
    /// Creates the app: restores settings and connects to the last connection (or the
    /// embedded store when nothing is configured).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        runtime: tokio::runtime::Handle,
        config: BackendConfig,
        clipboard: Box<dyn Clipboard>,
    ) -> Self {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        cc.egui_ctx
            .options_mut(|o| o.theme_preference = egui::ThemePreference::System);
        style(&cc.egui_ctx);
        let ctx = cc.egui_ctx.clone();
        let repaint = ctx.clone();
        let backend = Backend::start(&runtime, config, move || repaint.request_repaint());
        let mut app = Self {
            listing: Listing::sorted_by(settings.sort),
            settings,
            backend,
            clipboard,
            runtime,
            dialogs: mpsc::channel(),
            repaint_ctx: ctx,
            connection: ConnectionState::Idle,
            profiles: crate::s3::aws_profiles(),
            buckets: None,
            bucket_input: String::new(),
            place: None,
            back: Vec::new(),
            forward: Vec::new(),
            transfers: Vec::new(),
            retry_info: HashMap::new(),
            conflicts: None,
            share: None,
            confirm_delete: None,
            new_folder: None,
            preview: None,
            toasts: Vec::new(),
            endpoint_form: None,
            path_prompt: None,
            quit: QuitState::Running,
            focus_filter: false,
            first_frame_shown: false,
        };
        let target = app.settings.last_target.clone().unwrap_or_else(|| {
            if crate::s3::ConnectOptions::default().uses_local_store() {
                ConnectionTarget::Local
            } else {
                ConnectionTarget::Profile("default".into())
            }
        });
        app.connect(target);
        app
    }

    // ----- actions (called by the *_ui functions and by tests) -----

    /// Switches to `target`.
    pub fn connect(&mut self, target: ConnectionTarget) {
        self.connection = ConnectionState::Connecting(target.clone());
        self.buckets = None;
        self.place = None;
        self.listing.reset(0);
        self.listing.loading = false;
        self.backend.send(Command::Connect(target));
    }

    /// Opens `place`, remembering where we were.
    pub fn open(&mut self, place: Place) {
        if let Some(current) = self.place.take()
            && current != place
        {
            self.back.push(current);
            self.forward.clear();
        }
        self.show(place);
    }

    fn show(&mut self, place: Place) {
        let request = self.backend.next_id();
        self.listing.reset(request);
        // A filter belongs to the folder it was typed in.
        self.listing.filter.clear();
        self.preview = None;
        self.backend.send(Command::List {
            request,
            bucket: place.bucket.clone(),
            prefix: place.prefix.clone(),
        });
        self.settings.last_place = Some(place.clone());
        let title = format!("s3share — {}/{}", place.bucket, place.prefix);
        self.repaint_ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(title));
        self.place = Some(place);
    }

    /// Back in history.
    pub fn go_back(&mut self) {
        if let Some(p) = self.back.pop() {
            if let Some(c) = self.place.take() {
                self.forward.push(c);
            }
            self.show(p);
        }
    }

    /// Forward in history.
    pub fn go_forward(&mut self) {
        if let Some(p) = self.forward.pop() {
            if let Some(c) = self.place.take() {
                self.back.push(c);
            }
            self.show(p);
        }
    }

    /// To the parent folder.
    pub fn go_up(&mut self) {
        if let Some(parent) = self.place.as_ref().and_then(Place::parent) {
            self.open(parent);
        }
    }

    /// Lists the current folder again.
    pub fn refresh(&mut self) {
        if let Some(p) = self.place.clone() {
            self.show(p);
        }
    }

    /// Opens a row: a folder is entered, a file is previewed.
    pub fn activate(&mut self, entry: &Entry) {
        let Some(place) = &self.place else { return };
        if entry.is_folder {
            self.open(Place {
                bucket: place.bucket.clone(),
                prefix: entry.key.clone(),
            });
        } else {
            self.load_preview(entry.clone());
        }
    }

    fn load_preview(&mut self, entry: Entry) {
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

    /// Uploads dropped or picked paths into the current folder (asking about conflicts).
    pub fn upload_paths(&mut self, paths: Vec<PathBuf>) {
        let Some(place) = &self.place else {
            return self.toast_error("Open a bucket first, then drop files into it.".into());
        };
        if paths.is_empty() {
            return;
        }
        self.backend.send(Command::PlanUpload {
            bucket: place.bucket.clone(),
            prefix: place.prefix.clone(),
            paths,
        });
    }

    /// Answers the open conflict question for the first pending upload.
    pub fn answer_conflict(&mut self, choice: ConflictChoice) {
        let Some(prompt) = &mut self.conflicts else {
            return;
        };
        let all = prompt.apply_to_all;
        loop {
            if prompt.pending.is_empty() {
                break;
            }
            let planned = prompt.pending.remove(0);
            prompt.decided.push((planned, choice));
            if !all || prompt.pending.is_empty() {
                break;
            }
        }
        if prompt.pending.is_empty() {
            let prompt = self.conflicts.take().expect("checked");
            self.start_uploads(prompt.bucket, prompt.decided);
        }
    }

    fn start_uploads(&mut self, bucket: String, uploads: Vec<(PlannedUpload, ConflictChoice)>) {
        let mut send = Vec::new();
        for (planned, choice) in uploads {
            let mut t = Transfer::new(
                planned.id,
                Direction::Upload,
                planned.item.key.clone(),
                planned.item.size,
            );
            self.retry_info.insert(
                planned.id,
                RetryInfo::Upload {
                    bucket: bucket.clone(),
                    planned: planned.clone(),
                    choice,
                },
            );
            if planned.exists && choice == ConflictChoice::Skip {
                t.state = TransferState::Skipped;
            } else {
                send.push((planned, choice));
            }
            self.transfers.push(t);
        }
        if !send.is_empty() {
            self.backend.send(Command::Upload {
                bucket,
                uploads: send,
            });
        }
    }

    /// Downloads `keys` (files of the current bucket) to `path`: a file for one key, a folder
    /// for several (or when `path` is one). Into a folder, keys are placed as the CLI places
    /// them, relative to the folder being viewed and confined to `path`; keys that would land
    /// outside it or on another key's path show as failed transfers, and files already there
    /// are kept (a save dialog has asked before replacing its one file).
    pub fn download_to(&mut self, keys: Vec<String>, path: PathBuf) {
        let Some(place) = &self.place else { return };
        let bucket = place.bucket.clone();
        let sizes: HashMap<&str, u64> = self
            .listing
            .all()
            .iter()
            .map(|e| (e.key.as_str(), e.size))
            .collect();
        let size_of = |key: &str| sizes.get(key).copied().unwrap_or(0);
        let into_folder = keys.len() > 1 || path.is_dir();
        let planned = if into_folder {
            let objects: Vec<crate::s3::ObjectEntry> = keys
                .iter()
                .map(|key| crate::s3::ObjectEntry {
                    key: key.clone(),
                    size: size_of(key),
                    modified: None,
                    etag: None,
                })
                .collect();
            crate::transfer::plan_download_each(&objects, &place.prefix, &path)
        } else {
            keys.into_iter()
                .map(|key| {
                    let item = crate::transfer::DownloadItem::file(
                        key.clone(),
                        path.clone(),
                        size_of(&key),
                    );
                    (key, Ok(item))
                })
                .collect()
        };
        let overwrite = !into_folder;
        for (key, planned) in planned {
            let id = self.backend.next_id();
            let mut transfer = Transfer::new(id, Direction::Download, key.clone(), size_of(&key));
            match planned {
                Ok(item) => {
                    self.retry_info.insert(
                        id,
                        RetryInfo::Download {
                            bucket: bucket.clone(),
                            item: item.clone(),
                            overwrite,
                        },
                    );
                    self.backend.send(Command::Download {
                        id,
                        bucket: bucket.clone(),
                        item,
                        overwrite,
                    });
                }
                Err(e) => transfer.state = TransferState::Failed(e.to_string()),
            }
            self.transfers.push(transfer);
        }
    }

    /// Cancels a running transfer.
    pub fn cancel_transfer(&mut self, id: TransferId) {
        self.backend.send(Command::Cancel(id));
        if let Some(t) = self
            .transfers
            .iter_mut()
            .find(|t| t.id == id && t.is_active())
        {
            t.state = TransferState::Cancelled;
        }
    }

    /// Retries every failed or cancelled transfer.
    pub fn retry_failed(&mut self) {
        let ids: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|t| matches!(t.state, TransferState::Failed(_) | TransferState::Cancelled))
            .map(|t| t.id)
            .collect();
        for id in ids {
            let Some(info) = self.retry_info.get(&id).cloned() else {
                continue;
            };
            if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
                *t = Transfer::new(id, t.direction, t.name.clone(), t.total);
            }
            match info {
                RetryInfo::Upload {
                    bucket,
                    planned,
                    choice,
                } => self.backend.send(Command::Upload {
                    bucket,
                    uploads: vec![(planned, choice)],
                }),
                RetryInfo::Download {
                    bucket,
                    item,
                    overwrite,
                } => self.backend.send(Command::Download {
                    id,
                    bucket,
                    item,
                    overwrite,
                }),
            }
        }
    }

    /// Forgets finished, skipped and cancelled transfers.
    pub fn clear_finished(&mut self) {
        self.transfers
            .retain(|t| t.is_active() || matches!(t.state, TransferState::Failed(_)));
    }

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
        let asked = SystemTime::now() + requested;
        match &self.connection {
            ConnectionState::Connected {
                credentials_expiry: Some(e),
                ..
            } if *e < asked => (*e, true),
            _ => (asked, false),
        }
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
        self.settings.link_expiry_secs = expires.as_secs();
        self.backend.send(Command::MakeLinks {
            bucket: dialog.bucket.clone(),
            keys,
            expires,
            filename,
            put: dialog.upload,
        });
    }

    /// Ctrl+C: copies links to the selected files at once, with the last-used lifetime.
    pub fn quick_copy_links(&mut self) {
        self.share_selection();
        if self.share.is_some() {
            self.make_links();
        }
    }

    fn toast(&mut self, text: String) {
        self.toasts.push(Toast {
            text,
            error: false,
            until: Instant::now() + Duration::from_secs(4),
        });
    }

    fn toast_error(&mut self, text: String) {
        self.toasts.push(Toast {
            text,
            error: true,
            until: Instant::now() + Duration::from_secs(8),
        });
    }

    /// Opens the native file picker (or a path field where there is none).
    pub fn pick_upload(&mut self, folders: bool) {
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
                Some(handles) if !handles.is_empty() => {
                    DialogAnswer::UploadPaths(handles.iter().map(|h| h.path().to_owned()).collect())
                }
                _ => DialogAnswer::Nothing(PathPromptKind::Upload),
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

    // ----- events -----

    /// Applies everything the worker and the dialogs sent since the last frame.
    pub fn apply_events(&mut self, ctx: &egui::Context) {
        for event in self.backend.poll() {
            self.apply(ctx, event);
        }
        while let Ok(answer) = self.dialogs.1.try_recv() {
            match answer {
                DialogAnswer::UploadPaths(paths) => self.upload_paths(paths),
                DialogAnswer::DownloadTo { keys, path } => self.download_to(keys, path),
                // Either no native dialog exists here or the user cancelled: offer a path field
                // rather than silently doing nothing.
                DialogAnswer::Nothing(kind) => self.path_prompt = Some((kind, String::new())),
            }
        }
        let now = Instant::now();
        self.toasts.retain(|t| t.until > now);
    }

    fn apply(&mut self, ctx: &egui::Context, event: Event) {
        match event {
            Event::Connected {
                target,
                default_bucket,
                endpoint,
                credentials_expiry,
                local_port,
            } => {
                self.connection = ConnectionState::Connected {
                    target: target.clone(),
                    endpoint,
                    credentials_expiry,
                    local_port,
                };
                let remembered = self
                    .settings
                    .last_place
                    .clone()
                    .filter(|_| self.settings.last_target.as_ref() == Some(&target));
                self.settings.last_target = Some(target);
                if let Some(place) = remembered.or_else(|| {
                    default_bucket.map(|bucket| Place {
                        bucket,
                        prefix: String::new(),
                    })
                }) {
                    self.back.clear();
                    self.forward.clear();
                    self.open(place);
                }
            }
            Event::ConnectFailed { target, error } => {
                self.connection = ConnectionState::Failed(target, error)
            }
            Event::Buckets(b) => self.buckets = Some(b),
            Event::ListPage { request, page } if request == self.listing.request => {
                let prefix = self
                    .place
                    .as_ref()
                    .map(|p| p.prefix.clone())
                    .unwrap_or_default();
                self.listing.add_page(&prefix, page);
            }
            Event::ListDone { request } if request == self.listing.request => {
                self.listing.loading = false
            }
            Event::ListFailed { request, error } if request == self.listing.request => {
                self.listing.loading = false;
                self.listing.error = Some(error);
            }
            Event::ListPage { .. } | Event::ListDone { .. } | Event::ListFailed { .. } => {}
            Event::UploadPlanned {
                bucket,
                uploads,
                errors,
            } => {
                for e in errors {
                    self.toast_error(e);
                }
                let (conflicting, fresh): (Vec<_>, Vec<_>) =
                    uploads.into_iter().partition(|u| u.exists);
                self.start_uploads(
                    bucket.clone(),
                    fresh
                        .into_iter()
                        .map(|u| (u, ConflictChoice::Overwrite))
                        .collect(),
                );
                if !conflicting.is_empty() {
                    match &mut self.conflicts {
                        Some(prompt) if prompt.bucket == bucket => {
                            prompt.pending.extend(conflicting)
                        }
                        _ => {
                            self.conflicts = Some(ConflictPrompt {
                                bucket,
                                pending: conflicting,
                                decided: Vec::new(),
                                apply_to_all: false,
                            })
                        }
                    }
                }
            }
            Event::Transfer { id, event } => {
                let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) else {
                    return;
                };
                match event {
                    // A Cancel click marks the row at once; the worker's Started may still be on
                    // its way and must not bring a cancelled transfer back to life.
                    TransferEvent::Started { total, .. } if t.is_active() => {
                        t.total = total;
                        t.state = TransferState::Running;
                    }
                    TransferEvent::Started { .. } => {}
                    TransferEvent::Progress { done, .. } if t.is_active() => {
                        t.progress(done, Instant::now())
                    }
                    TransferEvent::Progress { .. } => {}
                    TransferEvent::Finished { .. } => {
                        t.done = t.total;
                        t.state = TransferState::Finished;
                    }
                    TransferEvent::Skipped { .. } => t.state = TransferState::Skipped,
                    TransferEvent::Cancelled { .. } => t.state = TransferState::Cancelled,
                    TransferEvent::Failed { error, .. } => t.state = TransferState::Failed(error),
                }
            }
            Event::Uploaded {
                bucket, key, size, ..
            } => {
                let Some(place) = &self.place else { return };
                if place.bucket != bucket || !key.starts_with(&place.prefix) {
                    return;
                }
                let rest = &key[place.prefix.len()..];
                let entry = match rest.split_once('/') {
                    // A file in a sub-folder makes the sub-folder appear.
                    Some((folder, _)) => Entry::new(
                        format!("{}{folder}/", place.prefix),
                        folder.to_owned(),
                        true,
                        0,
                        None,
                    ),
                    None => Entry::new(
                        key.clone(),
                        rest.to_owned(),
                        false,
                        size,
                        Some(SystemTime::now()),
                    ),
                };
                self.listing.upsert(entry);
            }
            Event::AllStopped => self.all_transfers_stopped(ctx),
            Event::Deleted {
                bucket,
                deleted,
                errors,
            } => {
                if self.place.as_ref().is_some_and(|p| p.bucket == bucket) {
                    self.listing.remove(&deleted);
                }
                if !deleted.is_empty() {
                    self.toast(format!("Deleted {} file(s)", deleted.len()));
                }
                for e in errors {
                    self.toast_error(e);
                }
            }
            Event::FolderCreated { bucket, prefix } => {
                if let Some(place) = &self.place
                    && place.bucket == bucket
                    && let Some(name) = prefix.strip_prefix(&place.prefix)
                {
                    let name = name.trim_end_matches('/').to_owned();
                    self.listing
                        .upsert(Entry::new(prefix.clone(), name, true, 0, None));
                }
            }
            Event::FolderFailed(e) => self.toast_error(e),
            Event::Links(result) => self.links_ready(ctx, result),
            Event::Preview { key, info, content } => {
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
    }

    fn links_ready(&mut self, ctx: &egui::Context, result: Result<Vec<(String, Link)>, String>) {
        let Some(dialog) = &mut self.share else {
            return;
        };
        dialog.busy = false;
        let links = match result {
            Ok(l) => l,
            Err(e) => {
                dialog.error = Some(e);
                return;
            }
        };
        let text = links
            .iter()
            .map(|(_, l)| l.url.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        dialog.qr = (links.len() == 1)
            .then(|| qr_texture(ctx, &links[0].1.url))
            .flatten();
        let end = links.iter().map(|(_, l)| l.expires_at).min();
        let limited = links.iter().any(|(_, l)| l.limited_by_credentials);
        dialog.links = Some(links);
        let copied = self.clipboard.set_text(&text);
        let when = end.map(links::format_time).unwrap_or_default();
        match copied {
            Ok(()) if limited => self.toast_error(format!("Link copied. It stops working at {when}, sooner than asked, because the credentials expire then.")),
            Ok(()) => self.toast(format!("Link copied. It works until {when}.")),
            Err(e) => self.toast_error(e),
        }
    }

    /// The local-store note shown where a link is made.
    pub fn local_note(&self) -> Option<String> {
        match &self.connection {
            ConnectionState::Connected {
                local_port: Some(port),
                ..
            } => Some(format!(
                "Links to the embedded store (127.0.0.1:{port}) work on this computer while s3share is running."
            )),
            _ => None,
        }
    }

    /// Whether a text field has keyboard focus (then shortcuts stay out of the way).
    fn typing(ctx: &egui::Context) -> bool {
        ctx.egui_wants_keyboard_input()
    }

    /// Drops files onto the window: dropped paths upload into the current folder.
    fn handle_drops(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            self.upload_paths(dropped);
        }
    }
}

impl eframe::App for S3ShareApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.apply_events(ctx);
        self.handle_close_request(ctx);
        self.handle_drops(ctx);
        // Keep speeds, ETAs and toasts moving without a repaint per byte.
        if self.transfers.iter().any(Transfer::is_active) || !self.toasts.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app_ui(ui);
        if !std::mem::replace(&mut self.first_frame_shown, true)
            && std::env::var_os("S3SHARE_STARTUP_PROBE").is_some()
            && let Some(start) = PROCESS_START.get()
        {
            println!(
                "first frame after {:.1} ms",
                start.elapsed().as_secs_f64() * 1000.0
            );
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.sort = self.listing.sort;
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

impl S3ShareApp {
    /// The whole window.
    pub fn app_ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top_bar").show(ui, |ui| side_ui::top_bar_ui(self, ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| browser_ui::status_bar_ui(self, ui));
        if !self.transfers.is_empty() {
            egui::Panel::bottom("transfers")
                .resizable(true)
                .default_size(180.0)
                .show(ui, |ui| transfers_ui::transfers_ui(self, ui));
        }
        egui::Panel::left("connections")
            .resizable(true)
            .default_size(230.0)
            .show(ui, |ui| side_ui::connections_ui(self, ui));
        if self.preview.is_some() {
            egui::Panel::right("preview")
                .resizable(true)
                .default_size(300.0)
                .show(ui, |ui| side_ui::preview_ui(self, ui));
        }
        egui::CentralPanel::default_margins().show(ui, |ui| browser_ui::browser_ui(self, ui));
        dialogs_ui::dialogs_ui(self, ui.ctx());
        dialogs_ui::drop_zone_ui(self, ui.ctx());
        dialogs_ui::toasts_ui(self, ui.ctx());
        quit::quit_ui(self, ui.ctx());
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

/// Calm spacing for the whole app.
fn style(ctx: &egui::Context) {
    ctx.global_style_mut(|s| {
        s.spacing.item_spacing = egui::vec2(8.0, 6.0);
        s.spacing.button_padding = egui::vec2(8.0, 4.0);
        s.spacing.interact_size.y = 24.0;
    });
}

/// Runs the desktop app on `runtime` until its window closes.
pub fn run_desktop(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let handle = runtime.handle().clone();
    let icon = eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icon-256.png")).ok();
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("s3share")
        .with_app_id("s3share")
        .with_inner_size([1100.0, 700.0])
        .with_min_inner_size([640.0, 400.0])
        .with_drag_and_drop(true);
    if let Some(icon) = icon {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "s3share",
        options,
        Box::new(move |cc| {
            Ok(Box::new(S3ShareApp::new(
                cc,
                handle,
                BackendConfig::default(),
                Box::new(clipboard::SystemClipboard::default()),
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

impl S3ShareApp {
    fn back_is_empty(&self) -> bool {
        self.back.is_empty()
    }

    fn forward_is_empty(&self) -> bool {
        self.forward.is_empty()
    }
}
