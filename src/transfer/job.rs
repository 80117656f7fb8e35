//! One transfer as a value: what moves, where, how, who hears about it and what stops it; and
//! the one policy for how many transfers run at once.
//!
//! A job replaces the long argument lists the transfer functions used to take (bucket, item,
//! id, options, events, cancellation…), so that a caller names only what differs from the
//! defaults, and the functions that carry a transfer through its steps pass one value along.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::{DownloadItem, DownloadOptions, EventSink, UploadItem, UploadOptions, no_events};

/// How many transfers run at once: the one policy that the CLI, the app's worker and
/// [`S3Client::upload_many`](crate::s3::S3Client::upload_many) /
/// [`download_many`](crate::s3::S3Client::download_many) follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Files moving at the same time (uploads and downloads alike; in the app, all of its
    /// transfers together).
    pub files_in_flight: usize,
    /// Parts of one multipart upload sent at the same time.
    pub parts_in_flight: usize,
}

impl Concurrency {
    /// Eight files at a time, four parts of each: many small files are bound by round trips
    /// (more in flight hide them), a few large ones by bandwidth (four parts fill it).
    pub const DEFAULT: Self = Self {
        files_in_flight: 8,
        parts_in_flight: 4,
    };

    /// Files at the same time, at least one.
    pub fn files(&self) -> usize {
        self.files_in_flight.max(1)
    }

    /// Parts at the same time, at least one.
    pub fn parts(&self) -> usize {
        self.parts_in_flight.max(1)
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One file to upload, for [`S3Client::upload_file`](crate::s3::S3Client::upload_file).
#[derive(Clone)]
pub struct UploadJob {
    /// The destination bucket.
    pub bucket: String,
    /// The local file and its key.
    pub item: UploadItem,
    /// How the upload is carried out (conflicts, parts, retries, resuming).
    pub options: UploadOptions,
    /// The id its [`TransferEvent`](super::TransferEvent)s carry.
    pub id: usize,
    /// Where its events go.
    pub events: EventSink,
    /// Stops it; a cancelled upload leaves nothing behind.
    pub cancel: CancellationToken,
}

impl UploadJob {
    /// `item` into `bucket` with the default options, id 0, no events and nothing to cancel it.
    pub fn new(bucket: impl Into<String>, item: UploadItem) -> Self {
        Self {
            bucket: bucket.into(),
            item,
            options: UploadOptions::default(),
            id: 0,
            events: no_events(),
            cancel: CancellationToken::new(),
        }
    }

    /// With these options.
    #[must_use]
    pub fn options(mut self, options: UploadOptions) -> Self {
        self.options = options;
        self
    }

    /// Reporting its events under `id`.
    #[must_use]
    pub fn id(mut self, id: usize) -> Self {
        self.id = id;
        self
    }

    /// Reporting its events to `events`.
    #[must_use]
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Stopped by `cancel`.
    #[must_use]
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
}

impl std::fmt::Debug for UploadJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadJob")
            .field("bucket", &self.bucket)
            .field("item", &self.item)
            .field("options", &self.options)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One object to download, for [`S3Client::download_file`](crate::s3::S3Client::download_file).
#[derive(Clone)]
pub struct DownloadJob {
    /// The bucket it is in.
    pub bucket: String,
    /// The key and where it goes.
    pub item: DownloadItem,
    /// How the download is carried out (overwriting, resuming).
    pub options: DownloadOptions,
    /// The id its [`TransferEvent`](super::TransferEvent)s carry.
    pub id: usize,
    /// Where its events go.
    pub events: EventSink,
    /// Stops it; a cancelled download leaves nothing behind.
    pub cancel: CancellationToken,
}

impl DownloadJob {
    /// The planned `item` from `bucket`, with the default options (an existing file is kept,
    /// no resuming), id 0, no events and nothing to cancel it.
    pub fn new(bucket: impl Into<String>, item: DownloadItem) -> Self {
        Self {
            bucket: bucket.into(),
            item,
            options: DownloadOptions::default(),
            id: 0,
            events: no_events(),
            cancel: CancellationToken::new(),
        }
    }

    /// `key` to the file `path` the user named (see [`DownloadItem::file`]).
    pub fn file(
        bucket: impl Into<String>,
        key: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Self {
        Self::new(bucket, DownloadItem::file(key, path, 0))
    }

    /// With these options.
    #[must_use]
    pub fn options(mut self, options: DownloadOptions) -> Self {
        self.options = options;
        self
    }

    /// Replacing a local file that already exists, or not.
    #[must_use]
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.options.overwrite = overwrite;
        self
    }

    /// Reporting its events under `id`.
    #[must_use]
    pub fn id(mut self, id: usize) -> Self {
        self.id = id;
        self
    }

    /// Reporting its events to `events`.
    #[must_use]
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Stopped by `cancel`.
    #[must_use]
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
}

impl std::fmt::Debug for DownloadJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadJob")
            .field("bucket", &self.bucket)
            .field("item", &self.item)
            .field("options", &self.options)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
