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
    /// Parts of one multipart upload sent at the same time, at most. To a server on this
    /// machine every body sent is held in memory that all of a client's uploads share
    /// (32 MiB), so parts of the default size ([`default_part_size`](super::default_part_size),
    /// 16 MiB there) go two at a time whatever this says. To one elsewhere, bodies that do not
    /// fit in that memory are streamed from the file, four at a time for all of a client's
    /// uploads: parts of 8 MiB go eight at a time, of one file or of several.
    pub parts_in_flight: usize,
}

impl Concurrency {
    /// Eight files at a time, eight parts of each: many small files are bound by round trips
    /// (more in flight hide them), a few large ones by what each connection carries. Through
    /// a proxy capping each connection at 40 MiB/s with 25 ms each way (`benches/elsewhere.sh`),
    /// 256 MiB went up in 2.6 s four parts at a time and 1.5-1.6 s eight at a time, against
    /// aws-cli's 2.0 s with ten.
    pub const DEFAULT: Self = Self {
        files_in_flight: 8,
        parts_in_flight: 8,
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

/// The builder methods, the batch and the `Debug` both kinds of job share: each holds the same
/// `bucket`, `item`, `options`, `id`, `events` and `cancel` fields.
macro_rules! job_common {
    ($job:ident, $item:ty, $options:ty) => {
        impl $job {
            /// `item` into (or from) `bucket` with the default options, id 0, no events and
            /// nothing to cancel it.
            pub fn new(bucket: impl Into<String>, item: $item) -> Self {
                Self {
                    bucket: bucket.into(),
                    item,
                    options: <$options>::default(),
                    id: 0,
                    events: no_events(),
                    cancel: CancellationToken::new(),
                }
            }

            /// With these options.
            #[must_use]
            pub fn options(mut self, options: $options) -> Self {
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

            /// The jobs of a batch: the `n`th of `items` gets id `n`; all share the options,
            /// the events and the cancellation.
            pub(crate) fn batch<'a>(
                bucket: &'a str,
                items: &'a [$item],
                options: &'a $options,
                events: &'a EventSink,
                cancel: &'a CancellationToken,
            ) -> impl Iterator<Item = Self> + 'a {
                items.iter().enumerate().map(move |(id, item)| {
                    Self::new(bucket, item.clone())
                        .options(options.clone())
                        .id(id)
                        .events(events.clone())
                        .cancel(cancel.clone())
                })
            }
        }

        impl std::fmt::Debug for $job {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($job))
                    .field("bucket", &self.bucket)
                    .field("item", &self.item)
                    .field("options", &self.options)
                    .field("id", &self.id)
                    .finish_non_exhaustive()
            }
        }
    };
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

job_common!(UploadJob, UploadItem, UploadOptions);

impl UploadJob {
    /// Its destination, `s3://bucket/key`, as messages name it.
    pub fn target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.item.key)
    }

    /// The error for its key being taken.
    pub(crate) fn taken(&self) -> crate::Error {
        crate::Error::AlreadyExists {
            bucket: self.bucket.clone(),
            key: self.item.key.clone(),
        }
    }

    /// The pieces the upload's steps use: bucket, item, options and what cancels it.
    pub(crate) fn parts(&self) -> (&str, &UploadItem, &UploadOptions, &CancellationToken) {
        (&self.bucket, &self.item, &self.options, &self.cancel)
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

job_common!(DownloadJob, DownloadItem, DownloadOptions);

impl DownloadJob {
    /// `key` to the file `path` the user named (see [`DownloadItem::file`]).
    pub fn file(
        bucket: impl Into<String>,
        key: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Self {
        Self::new(bucket, DownloadItem::file(key, path, 0))
    }

    /// Replacing a local file that already exists, or not.
    #[must_use]
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.options.overwrite = overwrite;
        self
    }
}
