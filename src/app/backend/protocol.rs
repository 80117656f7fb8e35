//! The protocol between the app and its worker: [`Command`]s go in, [`Event`]s come back.
//!
//! Plain data only, so the UI can be read without the worker and the worker tested without a
//! window.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::ErrorReport;
use crate::links::Link;
use crate::s3::{ListPage, ObjectInfo};
use crate::transfer::{self, TransferEvent, UploadItem};

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

/// What happens once a planned upload has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUpload {
    /// Nothing more: plain upload.
    Nothing,
    /// "Upload and copy link": links to the uploaded files go on the clipboard.
    CopyLinks {
        /// The lifetime asked for (the credentials may cut it short).
        expires: Duration,
    },
}

/// How a download link is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkVia {
    /// A presigned URL (at most 7 days).
    Presigned,
    /// A relay link when the relay runs, else a presigned URL: drop → link and "Copy link".
    RelayIfRunning,
    /// A relay link, recorded in the ledger with `note`; an error when the relay is off.
    Relay {
        /// The note kept with the link.
        note: Option<String>,
    },
}

/// Requests from the UI.
#[derive(Debug)]
pub enum Command {
    /// Connect (and make this the current connection). Sent by [`Backend::connect`], which
    /// numbers it: the answers about a connection carry its number, and the UI drops those of
    /// any connection but the last one asked for.
    ///
    /// [`Backend::connect`]: super::Backend::connect
    Connect {
        /// Where to.
        target: ConnectionTarget,
        /// This Connect's number, counting from 1.
        connection: u64,
    },
    /// List the buckets again (answered by [`Event::Buckets`]).
    ListBuckets,
    /// Stream a folder listing; `request` tags the answers.
    List {
        /// Tags every [`Event::ListPage`] / [`Event::ListDone`] / [`Event::ListFailed`] of this
        /// listing, so answers for a folder the user already left are ignored.
        request: u64,
        /// Bucket to list.
        bucket: String,
        /// Folder to list (`""` for the top, else ending in `/`).
        prefix: String,
    },
    /// Plan an upload of dropped or picked paths into `prefix`, checking for existing keys.
    PlanUpload {
        /// Bucket to upload into.
        bucket: String,
        /// Folder the paths land in.
        prefix: String,
        /// Dropped or picked files and folders (folders are walked).
        paths: Vec<PathBuf>,
        /// What to do once they are uploaded (echoed in [`Event::UploadPlanned`]).
        then: AfterUpload,
    },
    /// Start uploads.
    Upload {
        /// Bucket to upload into.
        bucket: String,
        /// Each planned file with what the user decided if its key exists.
        uploads: Vec<(PlannedUpload, ConflictChoice)>,
    },
    /// Download one planned item (an existing file is replaced only if `overwrite`).
    Download {
        /// The transfer id its progress events carry.
        id: TransferId,
        /// Bucket to download from.
        bucket: String,
        /// Key and local path.
        item: transfer::DownloadItem,
        /// Whether an existing local file may be replaced.
        overwrite: bool,
    },
    /// Cancel a transfer.
    Cancel(TransferId),
    /// Cancel every transfer and answer [`Event::AllStopped`] once each has cleaned up
    /// (multipart uploads aborted, partial files removed): the app is about to quit.
    StopAll,
    /// Delete objects.
    Delete {
        /// Bucket to delete from.
        bucket: String,
        /// Keys of the objects to delete.
        keys: Vec<String>,
    },
    /// List everything below `folders` (recursively), to say what deleting them deletes;
    /// answered by [`Event::FolderContents`].
    ListForDelete {
        /// Bucket they are in.
        bucket: String,
        /// Folder prefixes, each ending with `/`.
        folders: Vec<String>,
    },
    /// Create a folder marker.
    CreateFolder {
        /// Bucket to create it in.
        bucket: String,
        /// The folder's key, ending in `/`.
        prefix: String,
    },
    /// Make links (GET, or PUT with `put`); answered by [`Event::Links`] with the same `request`.
    MakeLinks {
        /// Tags the answer, so the share dialog and a copy after an upload tell theirs apart.
        request: u64,
        /// Bucket of the keys.
        bucket: String,
        /// One link per key, in this order.
        keys: Vec<String>,
        /// The lifetime asked for (the credentials may cut it short).
        expires: Duration,
        /// The file name a browser saves a GET link's download under.
        filename: Option<String>,
        /// Upload (PUT) links instead of download links.
        put: bool,
        /// Presigned, or through the relay.
        via: LinkVia,
    },
    /// Start the relay (again, if it runs), for the current connection and any later one.
    RelayStart {
        /// Where it listens, e.g. `127.0.0.1:8457` (port 0: a free one).
        listen: std::net::SocketAddr,
    },
    /// Stop the relay.
    RelayStop,
    /// List the relay links recorded in `bucket`'s ledger ([`Event::SharedLinks`]).
    ListSharedLinks {
        /// The bucket whose ledger to read.
        bucket: String,
    },
    /// Mint link `id` again from its record and the relay's secret; answered by
    /// [`Event::Links`] with the same `request`.
    CopySharedLink {
        /// Tags the answer.
        request: u64,
        /// The bucket of its ledger.
        bucket: String,
        /// The link id.
        id: String,
    },
    /// Revoke link `id` ([`Event::LinkRevoked`]).
    RevokeSharedLink {
        /// The bucket of its ledger.
        bucket: String,
        /// The link id.
        id: String,
    },
    /// Resume an interrupted upload ([`Event::PendingUploads`]) as transfer `id`: only the
    /// parts the server does not hold are sent.
    ResumeUpload {
        /// The transfer id its events carry.
        id: TransferId,
        /// The upload to resume.
        pending: transfer::PendingUpload,
    },
    /// Discard an interrupted upload: abort it on the server and forget it
    /// ([`Event::UploadDiscarded`]).
    DiscardUpload(transfer::PendingUpload),
    /// Load a preview of an object.
    Preview {
        /// Bucket of the object.
        bucket: String,
        /// Key of the object.
        key: String,
        /// Its size as listed (decides whether it is worth loading).
        size: u64,
    },
}

/// An interrupted upload, with how much of it the server holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingUploadInfo {
    /// The upload, as its resume record has it.
    pub pending: transfer::PendingUpload,
    /// Bytes of the parts the server holds (`None`: it could not say).
    pub stored: Option<u64>,
}

/// A decoded preview.
#[derive(Clone)]
pub enum PreviewContent {
    /// An image, downscaled to at most 1024 px.
    Image(Arc<egui::ColorImage>),
    /// The start of a text file.
    Text {
        /// The text read (lossily decoded as UTF-8).
        text: String,
        /// Whether the file goes on beyond it.
        truncated: bool,
    },
    /// Not previewable: metadata only.
    Metadata,
    /// An image whose bytes arrived but do not decode (damaged, or not what its name says):
    /// why, in words. Nothing to retry, unlike a failed read.
    Undecodable(String),
}

impl std::fmt::Debug for PreviewContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Image(i) => write!(f, "Image({}x{})", i.size[0], i.size[1]),
            Self::Text { text, truncated } => {
                write!(f, "Text({} chars, truncated: {truncated})", text.len())
            }
            Self::Metadata => write!(f, "Metadata"),
            Self::Undecodable(why) => write!(f, "Undecodable({why:?})"),
        }
    }
}

/// Answers from the worker.
#[derive(Debug)]
pub enum Event {
    /// Connected; `credentials_expiry` feeds the honest-expiry display.
    Connected {
        /// Where the connection goes.
        target: ConnectionTarget,
        /// A bucket to open when nothing was open before (the embedded store's own).
        default_bucket: Option<String>,
        /// The endpoint as the sidebar shows it.
        endpoint: String,
        /// When the signing credentials expire (`None`: they do not).
        credentials_expiry: Option<SystemTime>,
        /// Port of the embedded store, when that is the connection.
        local_port: Option<u16>,
    },
    /// Could not connect.
    ConnectFailed {
        /// The connection that failed.
        target: ConnectionTarget,
        /// Why, and what to do (credentials to renew among them).
        error: ErrorReport,
    },
    /// Bucket names (or why they cannot be listed: the user can type one).
    Buckets(Result<Vec<String>, ErrorReport>),
    /// A page of a listing.
    ListPage {
        /// The [`Command::List`] it answers.
        request: u64,
        /// Folders and files of this page.
        page: ListPage,
    },
    /// The listing is complete.
    ListDone {
        /// The [`Command::List`] it answers.
        request: u64,
    },
    /// The listing failed.
    ListFailed {
        /// The [`Command::List`] it answers.
        request: u64,
        /// Why (credentials to renew among them).
        error: ErrorReport,
    },
    /// An upload was planned: the UI asks about conflicts, then sends [`Command::Upload`].
    UploadPlanned {
        /// Bucket to upload into.
        bucket: String,
        /// The files found, each with a fresh transfer id.
        uploads: Vec<PlannedUpload>,
        /// Paths that cannot be uploaded, and why.
        errors: Vec<String>,
        /// What to do once they are uploaded, as asked in [`Command::PlanUpload`].
        then: AfterUpload,
    },
    /// A transfer ended (how far it is goes through its counters, not events).
    Transfer {
        /// The transfer.
        id: TransferId,
        /// What happened to it.
        event: TransferUpdate,
    },
    /// An upload finished under `key` (which may differ from the planned one after "keep both").
    Uploaded {
        /// The transfer.
        id: TransferId,
        /// Bucket it went to.
        bucket: String,
        /// The key it was stored under.
        key: String,
        /// Bytes uploaded.
        size: u64,
    },
    /// Objects deleted, and those that could not be.
    Deleted {
        /// Bucket deleted from.
        bucket: String,
        /// Keys that are gone.
        deleted: Vec<String>,
        /// Why the others are not.
        errors: Vec<ErrorReport>,
        /// Whether the connection it was asked on is still the one in use: when it is not,
        /// the keys were deleted there, and the listing on screen (another connection's,
        /// perhaps with a bucket of the same name) stays as it is.
        here: bool,
    },
    /// What lies below the folders a delete names (the answer to
    /// [`Command::ListForDelete`]): every key, the folders' own markers included.
    FolderContents {
        /// Bucket they are in.
        bucket: String,
        /// The folders asked about.
        folders: Vec<String>,
        /// Their keys and total size, or why they could not be listed.
        result: Result<(Vec<String>, u64), ErrorReport>,
    },
    /// A folder was created.
    FolderCreated {
        /// Bucket it is in.
        bucket: String,
        /// The folder's key, ending in `/`.
        prefix: String,
    },
    /// Could not create the folder.
    FolderFailed(ErrorReport),
    /// Links are ready (one per key, in order).
    Links {
        /// The [`Command::MakeLinks`] it answers.
        request: u64,
        /// `(key, link)` per key, or why none could be made (credentials that expired among
        /// them).
        result: Result<Vec<(String, Link)>, ErrorReport>,
    },
    /// A preview is ready.
    Preview {
        /// The object previewed.
        key: String,
        /// Its metadata (`None` if the HEAD failed).
        info: Option<ObjectInfo>,
        /// What to show, or why there is nothing.
        content: Result<PreviewContent, ErrorReport>,
    },
    /// Every transfer has ended after [`Command::StopAll`].
    AllStopped,
    /// Uploads to the connection just made that were interrupted (a kill, a crash, the
    /// network gone) and can be resumed or discarded.
    PendingUploads(Vec<PendingUploadInfo>),
    /// An interrupted upload was discarded (or why not).
    UploadDiscarded {
        /// The upload.
        pending: transfer::PendingUpload,
        /// Done, or why not.
        result: Result<(), ErrorReport>,
    },
    /// The relay runs; its links start with `url`.
    RelayStarted {
        /// The base of its links.
        url: String,
    },
    /// The relay was stopped.
    RelayStopped,
    /// The relay could not start (or was stopped because the connection went away).
    RelayFailed(ErrorReport),
    /// The relay links of a bucket's ledger.
    SharedLinks {
        /// The bucket.
        bucket: String,
        /// Its links, oldest first, or why they cannot be read.
        result: Result<Vec<crate::relay::LinkRecord>, ErrorReport>,
    },
    /// A relay link was revoked (or why not).
    LinkRevoked {
        /// The bucket of its ledger.
        bucket: String,
        /// The link id.
        id: String,
        /// Done, or why not.
        result: Result<(), ErrorReport>,
    },
}

/// What happened to one of the app's transfers: the state changes among the library's
/// [`TransferEvent`]s, without its batch index, since every app transfer is a batch of one and
/// is named by its [`TransferId`]. How far a transfer is (started, bytes moved) is not an
/// event: the UI reads it from the transfer's [`TransferProgress`](super::TransferProgress).
#[derive(Debug, Clone, PartialEq)]
pub enum TransferUpdate {
    /// It completed.
    Finished,
    /// The object already existed and the user chose to keep it.
    Skipped,
    /// It failed, with what went wrong for the user.
    Failed {
        /// What went wrong, for the user, and the facts the app acts on.
        error: ErrorReport,
    },
    /// It was cancelled (a multipart upload is aborted first).
    Cancelled,
}

impl TransferUpdate {
    /// The state change `event` is, if it is one (start and progress go through the
    /// transfer's counters instead).
    pub fn from_event(event: TransferEvent) -> Option<Self> {
        match event {
            TransferEvent::Started { .. } | TransferEvent::Progress { .. } => None,
            TransferEvent::Finished { .. } => Some(Self::Finished),
            TransferEvent::Skipped { .. } => Some(Self::Skipped),
            TransferEvent::Failed { error, .. } => Some(Self::Failed { error }),
            TransferEvent::Cancelled { .. } => Some(Self::Cancelled),
        }
    }
}
