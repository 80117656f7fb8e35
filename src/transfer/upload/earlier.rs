//! The files a batch uploaded, remembered until the whole batch is done.
//!
//! A `put` of a folder that was killed, or that failed on some of its files, has already
//! created the objects of the files it finished. Run again, without this, every one of them is
//! a key that exists: refused without `--overwrite` (or asked about, or renamed by
//! `--keep-both`), so the very command the README says resumes fails. So while a batch runs,
//! each file it uploads is noted, with the object's ETag, in the batch's journal, and the
//! journal goes once every file of the batch is up. A rerun knows its own uploads from objects
//! that were there before: the same batch (the same command), the same file (path, size,
//! modification time, device and inode) and the object still the one it made (the same ETag).
//! Another command that meets the same key is not a rerun, and finds it taken as before.
//!
//! One journal file per batch, appended to: a file per upload (a lock, a record and a rename
//! each) doubled the time of a `put` of 2,000 small files.

use std::collections::HashMap;
use std::io::Write as _;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::*;

/// The resume folder's kind for the journals.
const UPLOADED: &str = "uploaded";

/// A file the batch uploaded, and the object it became: one line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UploadedRecord {
    endpoint: String,
    bucket: String,
    key: String,
    /// The local file, absolute.
    path: PathBuf,
    size: u64,
    /// Modification time (seconds, nanoseconds since the epoch).
    modified: Option<(u64, u32)>,
    /// Device and inode.
    file_id: Option<(u64, u64)>,
    /// The object's ETag, bare.
    etag: String,
}

/// The journal of one batch of uploads (see [`UploadOptions::journal`]): what it uploaded,
/// for a rerun of the same batch ([`S3Client::uploaded_earlier`]).
#[derive(Debug)]
pub struct UploadJournal {
    path: PathBuf,
    /// Opened for appending at the first note.
    file: Mutex<Option<std::fs::File>>,
    /// What an earlier run noted, read once, by (endpoint, bucket, key).
    earlier: std::sync::OnceLock<HashMap<(String, String, String), UploadedRecord>>,
}

impl UploadJournal {
    /// The journal of the batch named `batch` (any text: the CLI's `put` names its command)
    /// in `store`'s folder.
    pub fn of(store: &ResumeStore, batch: &str) -> Self {
        use md5::Digest as _;
        let name: String = md5::Md5::digest(batch.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            path: store.dir().join(UPLOADED).join(format!("{name}.jsonl")),
            file: Mutex::new(None),
            earlier: std::sync::OnceLock::new(),
        }
    }

    /// Appends one line. A line lost (a crash, a full disk) only makes the rerun find that key
    /// taken, as without a journal.
    fn note(&self, record: &UploadedRecord) {
        let mut line = serde_json::to_vec(record).expect("a record serializes");
        line.push(b'\n');
        let mut file = self.file.lock();
        if file.is_none() {
            let opened =
                super::super::resume::create_private_dir(self.path.parent().expect("in a folder"))
                    .and_then(|()| {
                        let mut options = std::fs::OpenOptions::new();
                        options.append(true).create(true);
                        #[cfg(unix)]
                        {
                            use std::os::unix::fs::OpenOptionsExt as _;
                            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
                        }
                        options.open(&self.path)
                    });
            match opened {
                Ok(f) => *file = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), "cannot keep the batch's journal: {e}");
                    return;
                }
            }
        }
        if let Some(f) = file.as_mut()
            && let Err(e) = f.write_all(&line)
        {
            tracing::warn!(path = %self.path.display(), "cannot write the batch's journal: {e}");
        }
    }

    /// What an earlier run of the batch noted (the last line of a key wins).
    fn earlier(&self) -> &HashMap<(String, String, String), UploadedRecord> {
        self.earlier.get_or_init(|| {
            let Ok(text) = std::fs::read_to_string(&self.path) else {
                return HashMap::new();
            };
            text.lines()
                .filter_map(|l| serde_json::from_str::<UploadedRecord>(l).ok())
                .map(|r| ((r.endpoint.clone(), r.bucket.clone(), r.key.clone()), r))
                .collect()
        })
    }

    /// Forgets the batch: every file of it is up, and a later run of the command is a new one.
    pub fn forget(&self) {
        *self.file.lock() = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %self.path.display(), "cannot remove: {e}"),
        }
    }
}

impl S3Client {
    fn uploaded_record(
        &self,
        bucket: &str,
        item: &UploadItem,
        file: &FileState,
        etag: &str,
    ) -> UploadedRecord {
        UploadedRecord {
            endpoint: self.endpoint_label(),
            bucket: bucket.to_owned(),
            key: item.key.clone(),
            path: absolute(&item.path),
            size: file.len,
            modified: file.modified.and_then(to_record_time),
            file_id: file.file_id(),
            etag: etag.to_owned(),
        }
    }

    /// Notes in `journal` that the batch uploaded `item`, as it was (`file`), to the object
    /// `etag`.
    pub(super) fn note_uploaded(
        &self,
        journal: &UploadJournal,
        bucket: &str,
        item: &UploadItem,
        file: &FileState,
        etag: &str,
    ) {
        journal.note(&self.uploaded_record(bucket, item, file, etag));
    }

    /// Whether an earlier run of `journal`'s batch uploaded `item`, the file is as it was
    /// then, and the object is still the one that run made: then the file is up already, and
    /// its key is not a conflict.
    pub async fn uploaded_earlier(
        &self,
        journal: &UploadJournal,
        bucket: &str,
        item: &UploadItem,
    ) -> Result<bool> {
        let id = (self.endpoint_label(), bucket.to_owned(), item.key.clone());
        let Some(record) = journal.earlier().get(&id) else {
            return Ok(false);
        };
        let same_file = match FileState::of(&item.path).await {
            Ok(now) => self.uploaded_record(bucket, item, &now, &record.etag) == *record,
            Err(_) => false,
        };
        Ok(same_file
            && self.head(bucket, &item.key).await?.is_some_and(|o| {
                o.size == record.size
                    && o.etag.as_deref().map(|t| t.trim_matches('"')) == Some(&record.etag)
            }))
    }
}
