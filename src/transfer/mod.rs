//! Moving bytes: uploads through presigned PUT / UploadPart URLs streamed from disk, and
//! downloads streamed to disk, with progress, retries, cancellation and per-file outcomes.

mod download;
mod fetch;
mod http;
mod job;
mod partial;
mod plan;
pub(crate) mod ranges;
mod receive;
mod resume;
mod upload;

use std::sync::Arc;

pub use download::{
    DownloadItem, DownloadOptions, PARTIAL_SUFFIX, confined_path, plan_download, plan_download_each,
};
pub(crate) use http::BodyMemory;
pub use job::{Concurrency, DownloadJob, UploadJob};
pub use plan::{
    InputKind, LocalFile, LocalInput, UploadItem, empty_folder_keys, plan_keys, plan_upload,
    plan_upload_into, scan_inputs,
};
pub use ranges::MAX_RANGES;
pub(crate) use receive::Receivers;
pub use resume::{NoticeSink, PendingUpload, ResumeNotice, ResumeStore};
pub use upload::{
    OnConflict, UploadJournal, UploadOptions, UploadOutcome, default_part_size, part_size_for,
};

/// What happened to one transfer; `id` is the item's index in the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferEvent {
    /// The transfer began; `total` bytes to move.
    Started {
        /// Item index.
        id: usize,
        /// Bytes to move.
        total: u64,
    },
    /// `done` of the item's bytes have been sent or received (it can go down on a retry).
    Progress {
        /// Item index.
        id: usize,
        /// Bytes moved so far.
        done: u64,
    },
    /// The transfer completed.
    Finished {
        /// Item index.
        id: usize,
    },
    /// Skipped: the object already existed and the caller chose to keep it.
    Skipped {
        /// Item index.
        id: usize,
    },
    /// The transfer failed; the other items go on.
    Failed {
        /// Item index.
        id: usize,
        /// What went wrong: its words, and the facts a face acts on (credentials to renew).
        error: crate::ErrorReport,
    },
    /// The transfer was cancelled (multipart uploads are aborted first).
    Cancelled {
        /// Item index.
        id: usize,
    },
}

impl TransferEvent {
    /// The event for a transfer that ended with `error`.
    pub fn failed(id: usize, error: &crate::Error) -> Self {
        match error {
            crate::Error::Cancelled => Self::Cancelled { id },
            e => Self::Failed {
                id,
                error: e.into(),
            },
        }
    }
}

/// Receives transfer events; called from transfer tasks, so it must be quick (forward to a
/// channel or update a progress bar).
pub type EventSink = Arc<dyn Fn(TransferEvent) + Send + Sync>;

/// Counts the bytes of one item moved so far, across parts sent in parallel and retries.
///
/// Each count is reported while the count is locked, so reports leave in the order of the
/// counts: parts and ranges count from several threads, and with a lock-free count a thread
/// could report its older total after another thread's newer one, stepping a progress bar
/// back for a frame. A sink is quick (see [`EventSink`]), so the lock is held for a moment.
#[derive(Clone)]
pub(crate) struct ByteCounter {
    id: usize,
    done: Arc<parking_lot::Mutex<u64>>,
    sink: EventSink,
}

impl ByteCounter {
    pub(crate) fn new(id: usize, sink: EventSink) -> Self {
        Self {
            id,
            done: Arc::default(),
            sink,
        }
    }

    pub(crate) fn add(&self, n: u64) {
        let mut done = self.done.lock();
        *done += n;
        (self.sink)(TransferEvent::Progress {
            id: self.id,
            done: *done,
        });
    }

    /// Takes back the bytes of an attempt that failed and will be sent again.
    pub(crate) fn sub(&self, n: u64) {
        let mut done = self.done.lock();
        *done = done.saturating_sub(n);
        (self.sink)(TransferEvent::Progress {
            id: self.id,
            done: *done,
        });
    }
}

/// An event sink that drops everything.
pub fn no_events() -> EventSink {
    Arc::new(|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counting from several threads at once, the totals reported only ever grow.
    #[test]
    fn progress_reports_leave_in_order() {
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let sink: EventSink = {
            let seen = seen.clone();
            Arc::new(move |e| {
                if let TransferEvent::Progress { done, .. } = e {
                    seen.lock().push(done);
                }
            })
        };
        let counter = ByteCounter::new(1, sink);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        counter.add(1);
                    }
                });
            }
        });
        let seen = seen.lock();
        assert_eq!(seen.len(), 80_000);
        let backwards = seen.windows(2).filter(|w| w[1] <= w[0]).count();
        assert_eq!(backwards, 0, "reports out of order");
        assert_eq!(seen.last(), Some(&80_000));
    }
}
