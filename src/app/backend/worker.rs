//! The worker: runs each [`Command`] on the tokio runtime and answers with [`Event`]s.
//!
//! Listing, uploads (with their keep-both naming), downloads, deletes, folders and links; the
//! worker holds the connection and the cancellation token of every running transfer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::preview::load_preview;
use super::{
    AfterUpload, BackendConfig, Command, ConflictChoice, ConnectionTarget, Emitter, Event, Ids,
    PlannedUpload, TransferId, TransferUpdate,
};
use crate::s3::{ConnectOptions, Connection, S3Client};
use crate::transfer::{self, EventSink, OnConflict, TransferEvent, UploadOptions, UploadOutcome};

/// Runs commands one at a time; anything slow is spawned, so a listing never waits on an upload.
pub(super) struct Worker {
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
    pub(super) fn new(config: BackendConfig, out: Emitter, ids: Ids) -> Self {
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

    pub(super) async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
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
            Command::ListBuckets => {
                let Some(client) = self.client() else { return };
                let out = self.out.clone();
                tokio::spawn(async move {
                    let buckets = client.list_buckets().await;
                    out.emit(Event::Buckets(buckets.map_err(|e| e.to_string())));
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
                    tokio::spawn(async move {
                        let _slot = tokio::select! {
                            s = slots.acquire_owned() => s,
                            () = cancel.cancelled() => {
                                transfers.lock().remove(&planned.id);
                                out.emit(Event::Transfer { id: planned.id, event: TransferUpdate::Cancelled });
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
                            out.emit(Event::Transfer { id, event: TransferUpdate::Cancelled });
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
                request,
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
                            download_link(&client, &bucket, &key, expires, filename.as_deref())
                                .await
                        };
                        match link {
                            Ok(l) => links.push((key, l)),
                            Err(e) => {
                                return out.emit(Event::Links {
                                    request,
                                    result: Err(e.to_string()),
                                });
                            }
                        }
                    }
                    out.emit(Event::Links {
                        request,
                        result: Ok(links),
                    });
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
                    error: for_app(&e),
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
                    error: for_app(&e),
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
                error: for_app(e),
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
            endpoint: destination(&target, &client),
            credentials_expiry: expiry,
            target,
        });
        self.out
            .emit(Event::Buckets(buckets.map_err(|e| e.to_string())));
    }
}

/// An error as the app shows it: the library's messages name CLI flags where the CLI can help;
/// the app says what to do in the app instead.
fn for_app(e: &crate::Error) -> String {
    match e {
        // What to do first: the chain's details can run to many lines.
        crate::Error::NoCredentials(why) => format!(
            "no AWS credentials found: run `aws configure` or `aws sso login`, then Retry, or use the embedded store (first in the list of connections). Details: {why}"
        ),
        e => e.to_string(),
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

fn sink_for(id: TransferId, out: &Emitter) -> EventSink {
    let out = out.clone();
    Arc::new(move |event: TransferEvent| {
        out.emit(Event::Transfer {
            id,
            event: event.into(),
        });
    })
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
        errors: errors.iter().map(ToString::to_string).collect(),
        then,
    });
}

/// The one place the app makes a download link, for the share dialog and for "Upload and copy
/// link" alike. Today it is a presigned URL; when the app can run the relay, this is the seam
/// where a relay link (short, stable) replaces it, with the same honest expiry.
async fn download_link(
    client: &S3Client,
    bucket: &str,
    key: &str,
    expires: Duration,
    filename: Option<&str>,
) -> crate::Result<crate::links::Link> {
    client.link_get(bucket, key, expires, filename).await
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
                        event: TransferUpdate::Failed { error: e },
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
