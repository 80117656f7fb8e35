//! The app's only way to the network and the disk: commands go in, events come back.
//!
//! The UI thread never waits on S3. It sends a [`Command`] through [`Backend::send`] and, once
//! per frame, drains [`Event`]s with [`Backend::poll`]; the worker runs on the tokio runtime and
//! asks for a repaint after each event it sends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use crate::links::Link;
use crate::s3::{ConnectOptions, Connection, ListPage, ObjectInfo, S3Client};
use crate::store::StorePaths;
use crate::transfer::{
    self, EventSink, OnConflict, TransferEvent, UploadItem, UploadOptions, UploadOutcome,
};

/// Identifies one transfer for the lifetime of the app.
pub type TransferId = u64;

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionTarget {
    /// The embedded store on loopback.
    Local,
    /// A profile of the AWS shared config.
    Profile(String),
    /// An S3-compatible endpoint the user added.
    Custom(CustomEndpoint),
}

/// An S3-compatible endpoint; its secrets live in the AWS files or the environment, never here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CustomEndpoint {
    /// Display name.
    pub name: String,
    /// `https://host[:port]`.
    pub endpoint: String,
    /// Region to sign for (empty: the profile's or us-east-1).
    pub region: String,
    /// Force path-style addressing.
    pub path_style: bool,
    /// AWS profile whose credentials to use (empty: the default chain).
    pub profile: String,
}

impl ConnectionTarget {
    /// The label in the connection list.
    pub fn label(&self) -> String {
        match self {
            Self::Local => "This computer (embedded store)".to_owned(),
            Self::Profile(p) => format!("AWS profile: {p}"),
            Self::Custom(c) => c.name.clone(),
        }
    }
}

/// What a user decided for an upload whose key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictChoice {
    /// Replace the object.
    Overwrite,
    /// Upload under a free name: `name (1).ext`.
    KeepBoth,
    /// Leave the object alone.
    Skip,
}

/// One file of a planned upload.
#[derive(Debug, Clone)]
pub struct PlannedUpload {
    /// The transfer id it will run under.
    pub id: TransferId,
    /// File and key.
    pub item: UploadItem,
    /// Whether the key already exists.
    pub exists: bool,
}

/// Requests from the UI.
#[derive(Debug)]
pub enum Command {
    /// Connect (and make this the current connection).
    Connect(ConnectionTarget),
    /// Stream a folder listing; `request` tags the answers.
    List {
        request: u64,
        bucket: String,
        prefix: String,
    },
    /// Plan an upload of dropped or picked paths into `prefix`, checking for existing keys.
    PlanUpload {
        bucket: String,
        prefix: String,
        paths: Vec<PathBuf>,
    },
    /// Start uploads.
    Upload {
        bucket: String,
        uploads: Vec<(PlannedUpload, ConflictChoice)>,
    },
    /// Download one planned item (an existing file is replaced only if `overwrite`).
    Download {
        id: TransferId,
        bucket: String,
        item: transfer::DownloadItem,
        overwrite: bool,
    },
    /// Cancel a transfer.
    Cancel(TransferId),
    /// Cancel every transfer and answer [`Event::AllStopped`] once each has cleaned up
    /// (multipart uploads aborted, partial files removed): the app is about to quit.
    StopAll,
    /// Delete objects.
    Delete { bucket: String, keys: Vec<String> },
    /// Create a folder marker.
    CreateFolder { bucket: String, prefix: String },
    /// Presign links (GET, or PUT with `put`).
    MakeLinks {
        bucket: String,
        keys: Vec<String>,
        expires: Duration,
        filename: Option<String>,
        put: bool,
    },
    /// Load a preview of an object.
    Preview {
        bucket: String,
        key: String,
        size: u64,
    },
}

/// A decoded preview.
#[derive(Clone)]
pub enum PreviewContent {
    /// An image, downscaled to at most 1024 px.
    Image(Arc<egui::ColorImage>),
    /// The start of a text file.
    Text { text: String, truncated: bool },
    /// Not previewable: metadata only.
    Metadata,
}

impl std::fmt::Debug for PreviewContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Image(i) => write!(f, "Image({}x{})", i.size[0], i.size[1]),
            Self::Text { text, truncated } => {
                write!(f, "Text({} chars, truncated: {truncated})", text.len())
            }
            Self::Metadata => write!(f, "Metadata"),
        }
    }
}

/// Answers from the worker.
#[derive(Debug)]
pub enum Event {
    /// Connected; `credentials_expiry` feeds the honest-expiry display.
    Connected {
        target: ConnectionTarget,
        default_bucket: Option<String>,
        endpoint: String,
        credentials_expiry: Option<SystemTime>,
        local_port: Option<u16>,
    },
    /// Could not connect.
    ConnectFailed {
        target: ConnectionTarget,
        error: String,
    },
    /// Bucket names (or why they cannot be listed: the user can type one).
    Buckets(Result<Vec<String>, String>),
    /// A page of a listing.
    ListPage { request: u64, page: ListPage },
    /// The listing is complete.
    ListDone { request: u64 },
    /// The listing failed.
    ListFailed { request: u64, error: String },
    /// An upload was planned: the UI asks about conflicts, then sends [`Command::Upload`].
    UploadPlanned {
        bucket: String,
        uploads: Vec<PlannedUpload>,
        errors: Vec<String>,
    },
    /// Progress of a transfer.
    Transfer {
        id: TransferId,
        event: TransferEvent,
    },
    /// An upload finished under `key` (which may differ from the planned one after "keep both").
    Uploaded {
        id: TransferId,
        bucket: String,
        key: String,
        size: u64,
    },
    /// Objects deleted, and those that could not be.
    Deleted {
        bucket: String,
        deleted: Vec<String>,
        errors: Vec<String>,
    },
    /// A folder was created.
    FolderCreated { bucket: String, prefix: String },
    /// Could not create the folder.
    FolderFailed(String),
    /// Links are ready (one per key, in order).
    Links(Result<Vec<(String, Link)>, String>),
    /// A preview is ready.
    Preview {
        key: String,
        info: Option<ObjectInfo>,
        content: Result<PreviewContent, String>,
    },
    /// Every transfer has ended after [`Command::StopAll`].
    AllStopped,
}

/// The UI's handle on the worker.
pub struct Backend {
    commands: UnboundedSender<Command>,
    events: mpsc::Receiver<Event>,
    ids: Ids,
}

/// Ids for transfers and requests, shared by the UI and the worker so they never collide.
#[derive(Clone, Default)]
struct Ids(Arc<std::sync::atomic::AtomicU64>);

impl Ids {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

/// How the worker finds the embedded store (tests point it at a temporary folder).
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Where the embedded store lives (default: the user's folders).
    pub store_paths: Option<StorePaths>,
}

impl Backend {
    /// Starts the worker on `runtime`; `repaint` is called after each event.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: BackendConfig,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        // Commands are few and small (user actions), events are drained every frame: neither
        // channel can grow without bound in practice, and the UI must never block on a send.
        let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::channel();
        let emitter = Emitter {
            tx: event_tx,
            repaint: Arc::new(repaint),
        };
        let ids = Ids::default();
        runtime.spawn(Worker::new(config, emitter, ids.clone()).run(command_rx));
        Self {
            commands,
            events,
            ids,
        }
    }

    /// Sends a command; never blocks.
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::error!("the background worker has stopped");
        }
    }

    /// The events that arrived since the last call.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// A fresh transfer or request id.
    pub fn next_id(&self) -> u64 {
        self.ids.next()
    }
}

#[derive(Clone)]
struct Emitter {
    tx: mpsc::Sender<Event>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Emitter {
    fn emit(&self, event: Event) {
        if self.tx.send(event).is_ok() {
            (self.repaint)();
        }
    }
}

struct Worker {
    config: BackendConfig,
    out: Emitter,
    client: Option<S3Client>,
    /// Kept for the app's lifetime once opened: links to the embedded store work while it runs.
    local: Option<Connection>,
    listing: Option<tokio::task::JoinHandle<()>>,
    transfers: Arc<Mutex<HashMap<TransferId, CancellationToken>>>,
    /// Bounds the uploads and downloads running at once.
    slots: Arc<tokio::sync::Semaphore>,
    ids: Ids,
}

impl Worker {
    fn new(config: BackendConfig, out: Emitter, ids: Ids) -> Self {
        Self {
            config,
            out,
            client: None,
            local: None,
            listing: None,
            transfers: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(4)),
            ids,
        }
    }

    async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
        while let Some(command) = commands.recv().await {
            self.handle(command).await;
        }
    }

    fn client(&self) -> Option<S3Client> {
        if self.client.is_none() {
            tracing::warn!("command before any connection");
        }
        self.client.clone()
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Connect(target) => self.connect(target).await,
            Command::List {
                request,
                bucket,
                prefix,
            } => {
                let Some(client) = self.client() else { return };
                if let Some(previous) = self.listing.take() {
                    previous.abort();
                }
                let out = self.out.clone();
                self.listing = Some(tokio::spawn(async move {
                    let mut pages = std::pin::pin!(client.list(&bucket, &prefix, false));
                    while let Some(page) = pages.next().await {
                        match page {
                            Ok(page) => out.emit(Event::ListPage { request, page }),
                            Err(e) => {
                                return out.emit(Event::ListFailed {
                                    request,
                                    error: e.to_string(),
                                });
                            }
                        }
                    }
                    out.emit(Event::ListDone { request });
                }));
            }
            Command::PlanUpload {
                bucket,
                prefix,
                paths,
            } => {
                let Some(client) = self.client() else { return };
                let (out, ids) = (self.out.clone(), self.ids.clone());
                tokio::spawn(
                    async move { plan_upload(client, out, ids, bucket, prefix, paths).await },
                );
            }
            Command::Upload { bucket, uploads } => {
                let Some(client) = self.client() else { return };
                for (planned, choice) in uploads {
                    let cancel = CancellationToken::new();
                    self.transfers.lock().insert(planned.id, cancel.clone());
                    let (client, out, bucket, transfers, slots) = (
                        client.clone(),
                        self.out.clone(),
                        bucket.clone(),
                        self.transfers.clone(),
                        self.slots.clone(),
                    );
                    tokio::spawn(async move {
                        let _slot = tokio::select! {
                            s = slots.acquire_owned() => s,
                            () = cancel.cancelled() => {
                                transfers.lock().remove(&planned.id);
                                out.emit(Event::Transfer { id: planned.id, event: TransferEvent::Cancelled { id: 0 } });
                                return;
                            }
                        };
                        upload_one(&client, &out, &bucket, planned.clone(), choice, &cancel).await;
                        transfers.lock().remove(&planned.id);
                    });
                }
            }
            Command::Download {
                id,
                bucket,
                item,
                overwrite,
            } => {
                let Some(client) = self.client() else { return };
                let cancel = CancellationToken::new();
                self.transfers.lock().insert(id, cancel.clone());
                let (out, transfers, slots) =
                    (self.out.clone(), self.transfers.clone(), self.slots.clone());
                tokio::spawn(async move {
                    let sink = sink_for(id, &out);
                    // Cancelled while still queued: never started, nothing to clean up.
                    let _slot = tokio::select! {
                        s = slots.acquire_owned() => s,
                        () = cancel.cancelled() => {
                            sink(TransferEvent::Cancelled { id: 0 });
                            transfers.lock().remove(&id);
                            return;
                        }
                    };
                    let _ = client
                        .download_item(&bucket, &item, overwrite, 0, sink, &cancel)
                        .await;
                    transfers.lock().remove(&id);
                });
            }
            Command::Cancel(id) => {
                if let Some(token) = self.transfers.lock().get(&id) {
                    token.cancel();
                }
            }
            Command::StopAll => {
                for token in self.transfers.lock().values() {
                    token.cancel();
                }
                let (out, transfers) = (self.out.clone(), self.transfers.clone());
                tokio::spawn(async move {
                    // Each transfer task removes itself once its clean-up (abort, partial file
                    // removal) is done; cancelled ones finish within a request's time.
                    while !transfers.lock().is_empty() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    out.emit(Event::AllStopped);
                });
            }
            Command::Delete { bucket, keys } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                tokio::spawn(async move {
                    let results: Vec<_> = futures::stream::iter(keys)
                        .map(|k| async { (client.delete(&bucket, &k).await, k) })
                        .buffered(8)
                        .collect()
                        .await;
                    let mut deleted = Vec::new();
                    let mut errors = Vec::new();
                    for (r, k) in results {
                        match r {
                            Ok(()) => deleted.push(k),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    out.emit(Event::Deleted {
                        bucket,
                        deleted,
                        errors,
                    });
                });
            }
            Command::CreateFolder { bucket, prefix } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                tokio::spawn(async move {
                    match client.create_folder(&bucket, &prefix).await {
                        Ok(prefix) => out.emit(Event::FolderCreated { bucket, prefix }),
                        Err(e) => out.emit(Event::FolderFailed(e.to_string())),
                    }
                });
            }
            Command::MakeLinks {
                bucket,
                keys,
                expires,
                filename,
                put,
            } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                tokio::spawn(async move {
                    let mut links = Vec::new();
                    for key in keys {
                        let link = if put {
                            client.link_put(&bucket, &key, expires).await
                        } else {
                            client
                                .link_get(&bucket, &key, expires, filename.as_deref())
                                .await
                        };
                        match link {
                            Ok(l) => links.push((key, l)),
                            Err(e) => return out.emit(Event::Links(Err(e.to_string()))),
                        }
                    }
                    out.emit(Event::Links(Ok(links)));
                });
            }
            Command::Preview { bucket, key, size } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                tokio::spawn(async move {
                    let info = client.head(&bucket, &key).await.ok().flatten();
                    let content = load_preview(&client, &bucket, &key, size).await;
                    out.emit(Event::Preview { key, info, content });
                });
            }
        }
    }

    async fn connect(&mut self, target: ConnectionTarget) {
        let mut options = ConnectOptions {
            store_paths: self.config.store_paths.clone(),
            ..Default::default()
        };
        match &target {
            ConnectionTarget::Local => options.local = true,
            ConnectionTarget::Profile(p) => options.profile = Some(p.clone()),
            ConnectionTarget::Custom(c) => {
                options.endpoint_url = Some(c.endpoint.clone());
                options.region = Some(c.region.clone()).filter(|r| !r.is_empty());
                options.force_path_style = c.path_style;
                options.profile = Some(c.profile.clone()).filter(|p| !p.is_empty());
            }
        }
        let connected = if target == ConnectionTarget::Local {
            match &self.local {
                Some(c) => Ok(c.client.clone()),
                None => match options.connect().await {
                    Ok(c) => {
                        let client = c.client.clone();
                        self.local = Some(c);
                        Ok(client)
                    }
                    Err(e) => Err(e),
                },
            }
        } else {
            options.connect().await.map(|c| c.client)
        };
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                return self.out.emit(Event::ConnectFailed {
                    target,
                    error: e.to_string(),
                });
            }
        };
        // Asking for the credentials now turns "expired SSO session" into a message at once,
        // not a failure on the first click.
        let expiry = match client.credentials_expiry().await {
            Ok(e) => e,
            Err(e) => {
                return self.out.emit(Event::ConnectFailed {
                    target,
                    error: e.to_string(),
                });
            }
        };
        // Listing buckets doubles as a probe: an endpoint that is down, or credentials it
        // refuses outright, fail the connection here with a message; a denied listing does not
        // (the user can still type a bucket name).
        let buckets = client.list_buckets().await;
        if let Err(
            e @ (crate::Error::Unreachable { .. }
            | crate::Error::Unresponsive { .. }
            | crate::Error::NoCredentials(_)
            | crate::Error::ExpiredCredentials(_)),
        ) = &buckets
        {
            return self.out.emit(Event::ConnectFailed {
                target,
                error: e.to_string(),
            });
        }
        let local_store = self
            .local
            .as_ref()
            .and_then(|c| c.local_store.as_ref())
            .filter(|_| target == ConnectionTarget::Local);
        self.client = Some(client.clone());
        self.out.emit(Event::Connected {
            default_bucket: local_store.map(|_| crate::store::DEFAULT_BUCKET.to_owned()),
            local_port: local_store.map(|s| s.state().port),
            endpoint: client.endpoint_label(),
            credentials_expiry: expiry,
            target,
        });
        self.out
            .emit(Event::Buckets(buckets.map_err(|e| e.to_string())));
    }
}

fn sink_for(id: TransferId, out: &Emitter) -> EventSink {
    let out = out.clone();
    Arc::new(move |event| out.emit(Event::Transfer { id, event }))
}

async fn plan_upload(
    client: S3Client,
    out: Emitter,
    ids: Ids,
    bucket: String,
    prefix: String,
    paths: Vec<PathBuf>,
) {
    let planned = tokio::task::spawn_blocking(move || transfer::plan_upload(&paths, &prefix)).await;
    let Ok((items, errors)) = planned else { return };
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let exists: Vec<bool> = futures::stream::iter(keys)
        .map(|key| {
            let (client, bucket) = (client.clone(), bucket.clone());
            async move {
                client
                    .head(&bucket, &key)
                    .await
                    .map(|h| h.is_some())
                    .unwrap_or(false)
            }
        })
        .buffered(16)
        .collect()
        .await;
    let uploads = items
        .into_iter()
        .zip(exists)
        .map(|(item, exists)| PlannedUpload {
            id: ids.next(),
            item,
            exists,
        })
        .collect();
    out.emit(Event::UploadPlanned {
        bucket,
        uploads,
        errors: errors.iter().map(|e| e.to_string()).collect(),
    });
}

async fn upload_one(
    client: &S3Client,
    out: &Emitter,
    bucket: &str,
    mut planned: PlannedUpload,
    choice: ConflictChoice,
    cancel: &CancellationToken,
) {
    let id = planned.id;
    let on_conflict = match choice {
        // A key that was free when planned must not be overwritten if it appeared since.
        _ if !planned.exists => OnConflict::Fail,
        ConflictChoice::Overwrite => OnConflict::Overwrite,
        ConflictChoice::Skip => OnConflict::Skip,
        ConflictChoice::KeepBoth => {
            match free_key(client, bucket, &planned.item.key).await {
                Ok(k) => planned.item.key = k,
                Err(e) => {
                    return out.emit(Event::Transfer {
                        id,
                        event: TransferEvent::Failed { id: 0, error: e },
                    });
                }
            }
            OnConflict::Fail
        }
    };
    let options = UploadOptions {
        on_conflict,
        ..Default::default()
    };
    let result = client
        .upload_file(
            bucket,
            &planned.item,
            0,
            &options,
            sink_for(id, out),
            cancel,
        )
        .await;
    if let Ok(UploadOutcome::Uploaded { bytes, .. }) = result {
        out.emit(Event::Uploaded {
            id,
            bucket: bucket.to_owned(),
            key: planned.item.key,
            size: bytes,
        });
    }
}

/// `name (1).ext`, `name (2).ext`, … : the first key that does not exist.
async fn free_key(client: &S3Client, bucket: &str, key: &str) -> Result<String, String> {
    for n in 1..1000 {
        let candidate = numbered_key(key, n);
        if client
            .head(bucket, &candidate)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Ok(candidate);
        }
    }
    Err(format!("no free name found for {key}"))
}

/// `dir/name.ext` → `dir/name (n).ext`.
pub fn numbered_key(key: &str, n: u32) -> String {
    let (dir, name) = key.rsplit_once('/').map_or(("", key), |(d, n)| (d, n));
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    let dir = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    format!("{dir}{stem} ({n}){ext}")
}

const PREVIEW_IMAGE_MAX: u64 = 20 * 1024 * 1024;
const PREVIEW_TEXT_MAX: u64 = 64 * 1024;

async fn load_preview(
    client: &S3Client,
    bucket: &str,
    key: &str,
    size: u64,
) -> Result<PreviewContent, String> {
    let ext = key
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let is_image = matches!(
        ext.as_str(),
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp"
    );
    if is_image && size <= PREVIEW_IMAGE_MAX {
        // Loaded through a presigned GET, like any user of the link would.
        let link = client
            .link_get(bucket, key, Duration::from_secs(300), None)
            .await
            .map_err(|e| e.to_string())?;
        let bytes = client
            .http()
            .get(&link.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(without_url)?
            .bytes()
            .await
            .map_err(without_url)?;
        let image = tokio::task::spawn_blocking(move || decode_image(&bytes))
            .await
            .map_err(|e| e.to_string())??;
        return Ok(PreviewContent::Image(Arc::new(image)));
    }
    if size == 0 || is_image {
        return Ok(PreviewContent::Metadata);
    }
    let bytes = client
        .read_start(bucket, key, PREVIEW_TEXT_MAX)
        .await
        .map_err(|e| e.to_string())?;
    if bytes.contains(&0) {
        return Ok(PreviewContent::Metadata);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let replaced = text
        .chars()
        .filter(|c| *c == char::REPLACEMENT_CHARACTER)
        .count();
    if replaced > text.len() / 100 + 2 {
        return Ok(PreviewContent::Metadata);
    }
    Ok(PreviewContent::Text {
        text,
        truncated: size > PREVIEW_TEXT_MAX,
    })
}

/// A reqwest error as text without its URL: a presigned URL is a secret.
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

fn decode_image(bytes: &[u8]) -> Result<egui::ColorImage, String> {
    let image =
        image::load_from_memory(bytes).map_err(|e| format!("cannot decode the image: {e}"))?;
    let image = if image.width() > 1024 || image.height() > 1024 {
        image.thumbnail(1024, 1024)
    } else {
        image
    };
    let rgba = image.to_rgba8();
    Ok(egui::ColorImage::from_rgba_unmultiplied(
        [rgba.width() as usize, rgba.height() as usize],
        rgba.as_raw(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys_keep_folder_and_extension() {
        assert_eq!(numbered_key("a/b/photo.jpg", 1), "a/b/photo (1).jpg");
        assert_eq!(numbered_key("README", 2), "README (2)");
        assert_eq!(numbered_key(".hidden", 1), ".hidden (1)");
        assert_eq!(numbered_key("x.tar.gz", 1), "x.tar (1).gz");
    }
}
