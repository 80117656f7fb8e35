//! The worker: runs each [`Command`] on the tokio runtime and answers with [`Event`]s.
//!
//! Listing, uploads (with their keep-both naming), downloads, deletes, folders and links; the
//! worker holds the connection and the cancellation token of every running transfer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::preview::load_preview;
use super::{
    AfterUpload, BackendConfig, Command, ConflictChoice, ConnectionTarget, Emitter, Event, Ids,
    LinkVia, PendingUploadInfo, PlannedUpload, ProgressTable, TransferId, TransferProgress,
    TransferUpdate,
};
use crate::ErrorReport;
use crate::relay::{self, Grant, Ledger, Methods, RelayOptions, RunningRelay, Scope, Secret};
use crate::s3::{ConnectOptions, Connection, S3Client};
use crate::transfer::{
    self, DownloadJob, EventSink, OnConflict, ResumeStore, TransferEvent, UploadJob, UploadOptions,
    UploadOutcome,
};

/// Runs commands one at a time; anything slow is spawned, so a listing never waits on an upload.
pub(super) struct Worker {
    config: BackendConfig,
    out: Emitter,
    client: Option<S3Client>,
    /// Kept for the app's lifetime once opened: links to the embedded store work while it runs.
    /// Opened by the first connect task that needs it; others wait for that one.
    local: Arc<tokio::sync::OnceCell<Connection>>,
    listing: Option<tokio::task::JoinHandle<()>>,
    transfers: Arc<Mutex<HashMap<TransferId, CancellationToken>>>,
    /// Where interrupted uploads are remembered (`None`: no home folder, no resuming).
    resume: Option<ResumeStore>,
    /// Bounds the uploads and downloads running at once.
    slots: Arc<tokio::sync::Semaphore>,
    ids: Ids,
    /// Whether the current connection is the embedded store (then the relay streams).
    client_is_local: bool,
    /// Where the relay should listen, while the switch is on.
    relay_wanted: Option<std::net::SocketAddr>,
    /// The running relay; dropping the worker (the app closing) stops it.
    relay: Option<RunningRelay>,
    /// The number of the last Connect command: a connection's answers carry the number they
    /// were asked under, and an answer for an older one (a slow connect the user moved on
    /// from, a listing of the previous connection) is dropped here when it is found old
    /// before it is sent, and by the UI's end of the channel when it is found old after.
    generation: Arc<AtomicU64>,
    /// The generation `client` was connected under.
    client_generation: u64,
    /// Where connect tasks report; read beside the commands.
    probed: (mpsc::Sender<Probed>, Option<mpsc::Receiver<Probed>>),
}

/// A connect task's answer.
struct Probed {
    generation: u64,
    target: ConnectionTarget,
    result: Result<ProbedClient, ErrorReport>,
}

struct ProbedClient {
    client: S3Client,
    expiry: Option<std::time::SystemTime>,
    buckets: crate::Result<Vec<String>>,
}

/// The generation an answer is for, checked just before it is sent.
#[derive(Clone)]
struct Generation {
    asked: u64,
    current: Arc<AtomicU64>,
}

impl Generation {
    fn is_current(&self) -> bool {
        self.current.load(Ordering::Acquire) == self.asked
    }

    /// Sends `event` unless the connection it answers for was left since.
    async fn emit(&self, out: &Emitter, event: Event) {
        if self.is_current() {
            out.emit_for(self.asked, event).await;
        } else {
            tracing::debug!("dropped an answer for a previous connection");
        }
    }
}

/// What minting a relay link needs, cloned into the tasks that make links.
#[derive(Clone)]
struct RelayLinks {
    secret: Secret,
    public_url: String,
}

impl Worker {
    pub(super) fn new(config: BackendConfig, out: Emitter, ids: Ids) -> Self {
        Self {
            resume: config.resume_store(),
            config,
            out,
            client: None,
            local: Arc::default(),
            listing: None,
            transfers: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                transfer::Concurrency::DEFAULT.files(),
            )),
            ids,
            client_is_local: false,
            relay_wanted: None,
            relay: None,
            generation: Arc::default(),
            client_generation: 0,
            probed: {
                let (tx, rx) = mpsc::channel(4);
                (tx, Some(rx))
            },
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let Some(mut probed) = self.probed.1.take() else {
            return;
        };
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                Some(answer) = probed.recv() => self.connected(answer).await,
            }
        }
    }

    /// The generation of the connection in use, for a task answering about it: once another
    /// Connect is asked for, its answers are old news.
    fn current(&self) -> Generation {
        Generation {
            asked: self.client_generation,
            current: self.generation.clone(),
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
            Command::Connect { target, connection } => self.connect(target, connection).await,
            Command::ListBuckets => {
                let Some(client) = self.client() else { return };
                let (out, current) = (self.out.clone(), self.current());
                tokio::spawn(async move {
                    let buckets = client.list_buckets().await;
                    let event = Event::Buckets(buckets.map_err(|e| ErrorReport::from(&e)));
                    current.emit(&out, event).await;
                });
            }
            Command::List {
                request,
                bucket,
                prefix,
            } => {
                let Some(client) = self.client() else { return };
                if let Some(previous) = self.listing.take() {
                    previous.abort();
                }
                // Tagged twice: by `request` (the UI keeps the folder it shows) and by the
                // connection (whose buckets may share names with the next one's).
                let (out, current) = (self.out.clone(), self.current());
                self.listing = Some(tokio::spawn(async move {
                    let mut pages = std::pin::pin!(client.list(&bucket, &prefix, false));
                    while let Some(page) = pages.next().await {
                        match page {
                            Ok(page) => current.emit(&out, Event::ListPage { request, page }).await,
                            Err(e) => {
                                let event = Event::ListFailed {
                                    request,
                                    error: (&e).into(),
                                };
                                return current.emit(&out, event).await;
                            }
                        }
                    }
                    current.emit(&out, Event::ListDone { request }).await;
                }));
            }
            Command::PlanUpload {
                bucket,
                prefix,
                paths,
                then,
            } => {
                let Some(client) = self.client() else { return };
                let (out, ids) = (self.out.clone(), self.ids.clone());
                tokio::spawn(async move {
                    plan_upload(client, out, ids, bucket, prefix, paths, then).await;
                });
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
                    let resume = self.resume.clone();
                    tokio::spawn(async move {
                        let sink = TransferSink::new(planned.id, &out);
                        let _slot = tokio::select! {
                            s = slots.acquire_owned() => s,
                            () = cancel.cancelled() => {
                                transfers.lock().remove(&planned.id);
                                sink.ended.lock().push(TransferUpdate::Cancelled);
                                return sink.finish(&out).await;
                            }
                        };
                        let id = planned.id;
                        upload_one(
                            &client, &out, &bucket, planned, choice, resume, sink, &cancel,
                        )
                        .await;
                        transfers.lock().remove(&id);
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
                // As the CLI's `get`: a download the app could not finish (killed, crashed,
                // cut off) continues from its partial file when it is run again, rather than
                // starting over beside it and leaving it behind.
                let options = crate::transfer::DownloadOptions {
                    overwrite,
                    resume: self.resume.clone(),
                    ..Default::default()
                };
                tokio::spawn(async move {
                    let sink = TransferSink::new(id, &out);
                    // Cancelled while still queued: never started, nothing to clean up.
                    let _slot = tokio::select! {
                        s = slots.acquire_owned() => s,
                        () = cancel.cancelled() => {
                            sink.ended.lock().push(TransferUpdate::Cancelled);
                            sink.finish(&out).await;
                            transfers.lock().remove(&id);
                            return;
                        }
                    };
                    let job = DownloadJob::new(bucket, item)
                        .options(options)
                        .events(sink.sink())
                        .cancel(cancel);
                    let _ = client.download_file(job).await;
                    sink.finish(&out).await;
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
                    out.emit(Event::AllStopped).await;
                });
            }
            Command::Delete { bucket, keys } => {
                let Some(client) = self.client() else { return };
                let (out, current) = (self.out.clone(), self.current());
                tokio::spawn(async move {
                    let report = client.delete_many(&bucket, &keys).await;
                    // Told even after a switch (what was deleted, and what failed, stays
                    // news), but marked so the listing on screen is left alone.
                    let deleted = Event::Deleted {
                        bucket,
                        deleted: report.deleted,
                        errors: report.failed.iter().map(|(_, e)| e.into()).collect(),
                        here: current.is_current(),
                    };
                    out.emit_for(current.asked, deleted).await;
                });
            }
            Command::ListForDelete { bucket, folders } => {
                let Some(client) = self.client() else { return };
                let (out, current) = (self.out.clone(), self.current());
                tokio::spawn(async move {
                    let result = folder_contents(&client, &bucket, &folders)
                        .await
                        .map_err(|e| ErrorReport::from(&e));
                    let event = Event::FolderContents {
                        bucket,
                        folders,
                        result,
                    };
                    current.emit(&out, event).await;
                });
            }
            Command::CreateFolder { bucket, prefix } => {
                let Some(client) = self.client() else { return };
                let (out, current) = (self.out.clone(), self.current());
                tokio::spawn(async move {
                    // A folder made on a connection left since is not shown in another's.
                    match client.create_folder(&bucket, &prefix).await {
                        Ok(prefix) => {
                            let event = Event::FolderCreated { bucket, prefix };
                            current.emit(&out, event).await;
                        }
                        Err(e) => current.emit(&out, Event::FolderFailed((&e).into())).await,
                    }
                });
            }
            Command::MakeLinks {
                request,
                bucket,
                keys,
                expires,
                filename,
                put,
                via,
            } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                let relay = self.relay_links();
                tokio::spawn(async move {
                    let mut links = Vec::new();
                    for key in keys {
                        let link = if put {
                            client.link_put(&bucket, &key, expires).await
                        } else {
                            download_link(
                                &client,
                                relay.as_ref(),
                                &via,
                                &bucket,
                                &key,
                                expires,
                                filename.as_deref(),
                            )
                            .await
                        };
                        match link {
                            Ok(l) => links.push((key, l)),
                            Err(e) => {
                                return out
                                    .emit(Event::Links {
                                        request,
                                        result: Err((&e).into()),
                                    })
                                    .await;
                            }
                        }
                    }
                    out.emit(Event::Links {
                        request,
                        result: Ok(links),
                    })
                    .await;
                });
            }
            Command::RelayStart { listen } => {
                self.relay_wanted = Some(listen);
                self.start_relay().await;
            }
            Command::RelayStop => {
                self.relay_wanted = None;
                if let Some(r) = self.relay.take() {
                    r.stop_and_release().await;
                }
                self.out.emit(Event::RelayStopped).await;
            }
            Command::ListSharedLinks { bucket } => {
                let Some(client) = self.client() else { return };
                let (out, current) = (self.out.clone(), self.current());
                tokio::spawn(async move {
                    let result = Ledger::new(client, &bucket)
                        .list()
                        .await
                        .map_err(|e| ErrorReport::from(&e));
                    current
                        .emit(&out, Event::SharedLinks { bucket, result })
                        .await;
                });
            }
            Command::CopySharedLink {
                request,
                bucket,
                id,
            } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                let running = self.relay_links();
                let secret_path = self.relay_secret_path();
                tokio::spawn(async move {
                    let result = copy_again(client, running, secret_path, &bucket, &id)
                        .await
                        .map(|link| vec![(id, link)])
                        .map_err(ErrorReport::words);
                    out.emit(Event::Links { request, result }).await;
                });
            }
            Command::RevokeSharedLink { bucket, id } => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                tokio::spawn(async move {
                    let result = Ledger::new(client, &bucket)
                        .revoke(&id)
                        .await
                        .map(|_| ())
                        .map_err(|e| ErrorReport::from(&e));
                    out.emit(Event::LinkRevoked { bucket, id, result }).await;
                });
            }
            Command::ResumeUpload { id, pending } => {
                let Some(client) = self.client() else { return };
                let cancel = CancellationToken::new();
                self.transfers.lock().insert(id, cancel.clone());
                let (out, transfers, slots) =
                    (self.out.clone(), self.transfers.clone(), self.slots.clone());
                let options = UploadOptions {
                    on_conflict: pending.on_conflict(),
                    resume: self.resume.clone(),
                    ..Default::default()
                };
                tokio::spawn(async move {
                    let sink = TransferSink::new(id, &out);
                    let _slot = tokio::select! {
                        s = slots.acquire_owned() => s,
                        () = cancel.cancelled() => {
                            transfers.lock().remove(&id);
                            sink.ended.lock().push(TransferUpdate::Cancelled);
                            return sink.finish(&out).await;
                        }
                    };
                    let item = pending.item();
                    send_upload(&client, &out, &pending.bucket, item, options, sink, &cancel).await;
                    transfers.lock().remove(&id);
                });
            }
            Command::DiscardUpload(pending) => {
                let Some(client) = self.client() else { return };
                let Some(store) = self.resume.clone() else {
                    return;
                };
                let out = self.out.clone();
                tokio::spawn(async move {
                    let result = client
                        .discard_upload(&store, &pending)
                        .await
                        .map_err(|e| ErrorReport::from(&e));
                    out.emit(Event::UploadDiscarded { pending, result }).await;
                });
            }
            Command::Preview { bucket, key, size } => {
                let Some(client) = self.client() else { return };
                let (out, current) = (self.out.clone(), self.current());
                tokio::spawn(async move {
                    let info = client.head(&bucket, &key).await.ok().flatten();
                    let content = load_preview(&client, &bucket, &key, size).await;
                    // Never another connection's object under the name being previewed now.
                    current
                        .emit(&out, Event::Preview { key, info, content })
                        .await;
                });
            }
        }
    }

    /// Starts connecting to `target` as a task of its own (an endpoint that does not answer
    /// must not hold up the commands behind it); [`Self::connected`] takes its answer.
    async fn connect(&mut self, target: ConnectionTarget, generation: u64) {
        self.generation.store(generation, Ordering::Release);
        let mut options = ConnectOptions {
            store_paths: self.config.store_paths.clone(),
            aws_files: self.config.aws_files.clone(),
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
        let local = (target == ConnectionTarget::Local).then(|| self.local.clone());
        let answer = self.probed.0.clone();
        tokio::spawn(async move {
            let result = probe(&options, local)
                .await
                .map_err(|e| for_app(&e, &target));
            let _ = answer
                .send(Probed {
                    generation,
                    target,
                    result,
                })
                .await;
        });
    }

    /// A connect task answered: unless another Connect came since, this is the connection.
    async fn connected(&mut self, answer: Probed) {
        let Probed {
            generation,
            target,
            result,
        } = answer;
        if generation != self.generation.load(Ordering::Acquire) {
            tracing::debug!("dropped the answer of a connect the user moved on from");
            return;
        }
        let ProbedClient {
            client,
            expiry,
            buckets,
        } = match result {
            Ok(p) => p,
            Err(error) => {
                let failed = Event::ConnectFailed { target, error };
                return self.out.emit_for(generation, failed).await;
            }
        };
        let local_store = self
            .local
            .get()
            .and_then(|c| c.local_store.as_ref())
            .filter(|_| target == ConnectionTarget::Local);
        self.client = Some(client.clone());
        self.client_generation = generation;
        self.client_is_local = target == ConnectionTarget::Local;
        self.out
            .emit_for(
                generation,
                Event::Connected {
                    default_bucket: local_store.map(|_| crate::store::DEFAULT_BUCKET.to_owned()),
                    local_port: local_store.map(|s| s.state().port),
                    endpoint: destination(&target, &client),
                    credentials_expiry: expiry,
                    target,
                },
            )
            .await;
        let buckets = Event::Buckets(buckets.map_err(|e| ErrorReport::from(&e)));
        self.out.emit_for(generation, buckets).await;
        // Uploads to this endpoint that a kill or a crash interrupted: offered to resume.
        if let Some(store) = self.resume.clone() {
            let (out, current) = (self.out.clone(), self.current());
            tokio::spawn(async move {
                let found = pending_uploads(&client, store).await;
                if !found.is_empty() {
                    current.emit(&out, Event::PendingUploads(found)).await;
                }
            });
        }
        // The relay serves the connection in use: started again for the new one.
        if self.relay_wanted.is_some() {
            self.start_relay().await;
        }
    }

    /// The relay's secret file: beside the embedded store's config when the app was given
    /// its folders (tests), else where `s3share serve` looks.
    fn relay_secret_path(&self) -> crate::Result<PathBuf> {
        match &self.config.store_paths {
            Some(p) => Ok(p.config_dir.join(relay::secret::SECRET_FILE_NAME)),
            None => Secret::path(None),
        }
    }

    fn relay_links(&self) -> Option<RelayLinks> {
        self.relay.as_ref().map(|r| RelayLinks {
            secret: r.secret.clone(),
            public_url: r.public_url.clone(),
        })
    }

    /// (Re)starts the relay where it is wanted, for the current connection. Binding and
    /// reading the secret are quick and local; serving runs on the runtime.
    async fn start_relay(&mut self) {
        let Some(listen) = self.relay_wanted else {
            return;
        };
        if let Some(old) = self.relay.take() {
            // Its address is the one wanted again: bound anew only once it is free.
            old.stop_and_release().await;
        }
        let Some(client) = self.client.clone() else {
            // Started once a connection is made (see `connect`).
            return;
        };
        let secret_file = match self.relay_secret_path() {
            Ok(p) => p,
            Err(e) => return self.relay_failed(&e).await,
        };
        let options = RelayOptions {
            listen,
            public_url: None,
            secret_file: Some(secret_file),
            stream_everything: self.client_is_local,
            // The app's relay serves a few teammates: its runtime is enough.
            workers: 0,
        };
        match relay::run::start(client, options).await {
            Ok(r) => {
                if let Some(e) = &r.note_failed {
                    tracing::warn!("cannot note the relay's address beside its secret: {e}");
                }
                let url = r.public_url.clone();
                self.relay = Some(r);
                self.out.emit(Event::RelayStarted { url }).await;
            }
            Err(e) => self.relay_failed(&e).await,
        }
    }

    /// The relay could not start: the switch goes off (the app unticks it), and so does the
    /// wish, or the next connection would start a relay the app shows as off.
    async fn relay_failed(&mut self, e: &crate::Error) {
        self.relay_wanted = None;
        self.out.emit(Event::RelayFailed(e.into())).await;
    }
}

/// Every key below `folders` (their own `folder/` markers too, whether or not they exist: a
/// delete of a key that is not there succeeds) and the bytes they hold.
async fn folder_contents(
    client: &S3Client,
    bucket: &str,
    folders: &[String],
) -> crate::Result<(Vec<String>, u64)> {
    let (mut keys, mut bytes) = (Vec::new(), 0);
    for folder in folders {
        let all = client.list_all(bucket, folder, true).await?;
        bytes += all.objects.iter().map(|o| o.size).sum::<u64>();
        keys.extend(all.objects.into_iter().map(|o| o.key));
        keys.push(folder.clone());
    }
    Ok((keys, bytes))
}

/// Connects (or takes the embedded store's client) and checks the connection works.
async fn probe(
    options: &ConnectOptions,
    local: Option<Arc<tokio::sync::OnceCell<Connection>>>,
) -> crate::Result<ProbedClient> {
    let client = match local {
        Some(cell) => cell
            .get_or_try_init(|| options.connect())
            .await?
            .client
            .clone(),
        None => options.connect().await?.client,
    };
    // Asking for the credentials now turns "expired SSO session" into a message at once,
    // not a failure on the first click.
    let expiry = client.credentials_expiry().await?;
    // Listing buckets doubles as a probe: an endpoint that is down, or credentials it
    // refuses outright, fail the connection here with a message; a denied listing does not
    // (the user can still type a bucket name).
    let buckets = client.list_buckets().await;
    if let Err(
        e @ (crate::Error::Unreachable { .. }
        | crate::Error::Unresponsive { .. }
        | crate::Error::Credentials { .. }),
    ) = buckets
    {
        return Err(e);
    }
    Ok(ProbedClient {
        client,
        expiry,
        buckets,
    })
}

/// An error as the app shows it: the library's messages name CLI flags where the CLI can help;
/// the app says what to do in the app instead.
fn for_app(e: &crate::Error, target: &ConnectionTarget) -> ErrorReport {
    ErrorReport {
        message: app_message(e, target),
        ..e.into()
    }
}

fn app_message(e: &crate::Error, target: &ConnectionTarget) -> String {
    use crate::CredentialProblem::{Missing, Unavailable};
    let crate::Error::Credentials {
        problem: problem @ (Missing | Unavailable),
        detail,
        answer: None,
    } = e
    else {
        return e.to_string();
    };
    // What to do first; of the chain's details (they run to many lines, with the SDK's
    // debug text) the first line.
    let why = crate::app::model::shortened(detail.lines().next().unwrap_or_default(), 200);
    match (target, problem) {
        // An endpoint of one's own has keys of its own, never from `aws sso login`.
        (ConnectionTarget::Custom(c), _) if c.profile.is_empty() => format!(
            "no keys for this endpoint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY before starting s3share, or name a profile with its keys (in ~/.aws/credentials) in this endpoint's settings, then Retry. Details: {why}"
        ),
        (ConnectionTarget::Custom(c), _) => format!(
            "no keys in profile \"{}\" for this endpoint: add aws_access_key_id and aws_secret_access_key to it in ~/.aws/credentials, then Retry. Details: {why}",
            c.profile
        ),
        (_, Missing) => format!(
            "no AWS credentials found: run `aws configure` or `aws sso login`, then Retry, or use the embedded store (first in the list of connections). Details: {why}"
        ),
        _ => e.to_string(),
    }
}

/// Where a connection goes, as the sidebar shows it: a host for an endpoint (a profile's own
/// `endpoint_url` included, which the client's label does not know), else AWS and the region.
fn destination(target: &ConnectionTarget, client: &S3Client) -> String {
    match target {
        ConnectionTarget::Local => crate::s3::endpoint_host(&client.endpoint_label()),
        ConnectionTarget::Profile(p) => crate::s3::profile_destination(p).label(),
        ConnectionTarget::Custom(c) => crate::s3::endpoint_host(&c.endpoint),
    }
}

/// What a transfer's library call reports, split the app's way: bytes moved go to its counter
/// (read by the UI each frame), the state changes are kept for the task to send once the call
/// returns, as events (the library calls the sink synchronously, where no event can wait for
/// room in the UI's queue).
struct TransferSink {
    id: TransferId,
    counter: Arc<TransferProgress>,
    ended: Arc<Mutex<Vec<TransferUpdate>>>,
    progress: ProgressTable,
}

impl TransferSink {
    fn new(id: TransferId, out: &Emitter) -> Self {
        Self {
            id,
            counter: out.progress.counter(id),
            ended: Arc::default(),
            progress: out.progress.clone(),
        }
    }

    fn sink(&self) -> EventSink {
        let (counter, ended) = (self.counter.clone(), self.ended.clone());
        let (id, progress) = (self.id, self.progress.clone());
        Arc::new(move |event: TransferEvent| match event {
            TransferEvent::Started { total, .. } => progress.started(id, &counter, total),
            TransferEvent::Progress { done, .. } => counter.set_done(done),
            event => ended.lock().extend(TransferUpdate::from_event(event)),
        })
    }

    /// Sends the state changes the call reported, and lets go of the counter.
    async fn finish(self, out: &Emitter) {
        let ended = std::mem::take(&mut *self.ended.lock());
        for event in ended {
            out.emit(Event::Transfer { id: self.id, event }).await;
        }
        self.progress.release(self.id, &self.counter);
    }
}

async fn plan_upload(
    client: S3Client,
    out: Emitter,
    ids: Ids,
    bucket: String,
    prefix: String,
    paths: Vec<PathBuf>,
    then: AfterUpload,
) {
    let at = prefix.clone();
    let planned = tokio::task::spawn_blocking(move || {
        let (inputs, mut errors) = transfer::scan_inputs(&paths);
        let (items, plan_errors) = transfer::plan_keys(&at, false, &inputs);
        errors.extend(plan_errors);
        (items, errors, transfer::empty_folder_keys(&at, &inputs))
    })
    .await;
    let Ok((items, errors, empty_folders)) = planned else {
        return;
    };
    let mut errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    // A dropped folder's empty folders go as folder markers, as "New folder" makes them
    // (they held nothing to upload, and were lost without a word).
    for key in empty_folders {
        match client.create_folder(&bucket, &key).await {
            // One level below the folder shown: it appears there at once.
            Ok(key)
                if key
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|r| !r.trim_end_matches('/').contains('/')) =>
            {
                let made = Event::FolderCreated {
                    bucket: bucket.clone(),
                    prefix: key,
                };
                out.emit(made).await;
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    // Unknown counts as free: such an upload is still sent with If-None-Match, so a key that
    // does exist fails as taken rather than being replaced.
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let existing = client
        .existing_keys(&bucket, keys)
        .await
        .unwrap_or_else(|e| {
            tracing::info!("could not check which keys exist: {e}");
            Default::default()
        });
    let uploads = items
        .into_iter()
        .map(|item| PlannedUpload {
            id: ids.next(),
            exists: existing.contains(&item.key),
            item,
        })
        .collect();
    out.emit(Event::UploadPlanned {
        bucket,
        uploads,
        errors,
        then,
    })
    .await;
}

/// The one place the app makes a download link, for the share dialog and for "Upload and copy
/// link" alike: a presigned URL, or, through the relay, a short stable link recorded in the
/// bucket's ledger (so it can be listed and revoked), with its real expiry.
async fn download_link(
    client: &S3Client,
    relay: Option<&RelayLinks>,
    via: &LinkVia,
    bucket: &str,
    key: &str,
    expires: Duration,
    filename: Option<&str>,
) -> crate::Result<crate::links::Link> {
    match (via, relay) {
        (LinkVia::Presigned, _) | (LinkVia::RelayIfRunning, None) => {
            client.link_get(bucket, key, expires, filename).await
        }
        (LinkVia::RelayIfRunning, Some(r)) => {
            relay_link(client, r, bucket, key, expires, None).await
        }
        (LinkVia::Relay { note }, Some(r)) => {
            relay_link(client, r, bucket, key, expires, note.clone()).await
        }
        (LinkVia::Relay { .. }, None) => Err(crate::Error::Relay(
            "the relay is off: switch it on to share through it".into(),
        )),
    }
}

/// A read-only relay link to `key`, minted and recorded in the bucket's ledger.
async fn relay_link(
    client: &S3Client,
    relay: &RelayLinks,
    bucket: &str,
    key: &str,
    expires: Duration,
    note: Option<String>,
) -> crate::Result<crate::links::Link> {
    // Keys the relay refuses to serve (dot segments, control characters…) get no link.
    relay::path::parse(&format!("/t/{}", relay::path::encode_key(key))).map_err(|e| {
        crate::Error::Relay(format!("the relay cannot serve s3://{bucket}/{key}: {e}"))
    })?;
    let grant = Grant::new(
        bucket,
        Scope::Key(key.to_owned()),
        Methods::READ,
        std::time::SystemTime::now() + expires,
    );
    let (link, _) = Ledger::new(client.clone(), bucket)
        .mint(&grant, &relay.secret, &relay.public_url, note)
        .await?;
    Ok(relay_as_link(link.url, expires, grant.expires_at()))
}

fn relay_as_link(
    url: String,
    requested: Duration,
    expires_at: std::time::SystemTime,
) -> crate::links::Link {
    crate::links::Link {
        url,
        method: crate::links::LinkMethod::Get,
        requested,
        expires_at,
        // Each request is signed afresh: the credentials' expiry does not cut it short.
        limited_by_credentials: false,
    }
}

/// "Copy again" in the Shared links panel: the link minted again from its record and the
/// relay's secret (the same token while the secret is the same).
async fn copy_again(
    client: S3Client,
    running: Option<RelayLinks>,
    secret_path: crate::Result<PathBuf>,
    bucket: &str,
    id: &str,
) -> Result<crate::links::Link, String> {
    let record = Ledger::new(client, bucket)
        .get(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no relay link {id} in {bucket}"))?;
    let now = std::time::SystemTime::now();
    match record.state(now) {
        relay::LinkState::Active => {}
        state => {
            return Err(format!(
                "link {id} is {}: it no longer works",
                state.as_str()
            ));
        }
    }
    let (secret, base) = match running {
        Some(r) => (r.secret, r.public_url),
        None => {
            let path = secret_path.map_err(|e| e.to_string())?;
            if !path.exists() {
                return Err(
                    "the relay's secret is missing, so its links cannot be made again".into(),
                );
            }
            let secret = Secret::load_or_create(&path).map_err(|e| e.to_string())?;
            let base = record
                .public_url
                .clone()
                .or_else(|| relay::remembered_public_url(&path))
                .ok_or("the relay's address is not known: switch the relay on")?;
            (secret, base)
        }
    };
    let grant = record.grant().map_err(|e| e.to_string())?;
    let link = relay::make_link(&grant, &secret, &base).map_err(|e| e.to_string())?;
    let left = record.expires().duration_since(now).unwrap_or_default();
    Ok(relay_as_link(link.url, left, record.expires()))
}

#[expect(
    clippy::too_many_arguments,
    reason = "the keep-both naming moves into the library's UploadJob (issue #9 part 2)"
)]
async fn upload_one(
    client: &S3Client,
    out: &Emitter,
    bucket: &str,
    mut planned: PlannedUpload,
    choice: ConflictChoice,
    resume: Option<ResumeStore>,
    sink: TransferSink,
    cancel: &CancellationToken,
) {
    let on_conflict = match choice {
        // A key that was free when planned must not be overwritten if it appeared since.
        _ if !planned.exists => OnConflict::Fail,
        ConflictChoice::Overwrite => OnConflict::Overwrite,
        ConflictChoice::Skip => OnConflict::Skip,
        ConflictChoice::KeepBoth => {
            let free = client
                .free_key(bucket, &planned.item.key, &Default::default())
                .await;
            match free {
                Ok(k) => planned.item.key = k,
                Err(e) => {
                    let error = ErrorReport::from(&e);
                    sink.ended.lock().push(TransferUpdate::Failed { error });
                    return sink.finish(out).await;
                }
            }
            OnConflict::Fail
        }
    };
    let options = UploadOptions {
        on_conflict,
        resume,
        ..Default::default()
    };
    send_upload(client, out, bucket, planned.item, options, sink, cancel).await;
}

/// Uploads `item` and tells the UI how it ended (and under which key it is stored).
async fn send_upload(
    client: &S3Client,
    out: &Emitter,
    bucket: &str,
    item: transfer::UploadItem,
    options: UploadOptions,
    sink: TransferSink,
    cancel: &CancellationToken,
) {
    let (id, key) = (sink.id, item.key.clone());
    let job = UploadJob::new(bucket, item)
        .options(options)
        .events(sink.sink())
        .cancel(cancel.clone());
    let result = client.upload_file(job).await;
    sink.finish(out).await;
    if let Ok(UploadOutcome::Uploaded { bytes, .. }) = result {
        out.emit(Event::Uploaded {
            id,
            bucket: bucket.to_owned(),
            key,
            size: bytes,
        })
        .await;
    }
}

/// The interrupted uploads to `client`'s endpoint, with how much of each the server holds.
async fn pending_uploads(client: &S3Client, store: ResumeStore) -> Vec<PendingUploadInfo> {
    let endpoint = client.endpoint_label();
    let found = tokio::task::spawn_blocking(move || store.pending_uploads())
        .await
        .unwrap_or_default();
    let mut out = Vec::new();
    for pending in found.into_iter().filter(|p| p.endpoint == endpoint) {
        let stored = client
            .list_parts(&pending.bucket, &pending.key, &pending.upload_id)
            .await
            .ok()
            .map(|parts| parts.map_or(0, |p| p.iter().map(|p| p.size).sum()));
        out.push(PendingUploadInfo { pending, stored });
    }
    out
}
