//! The files a batch uploaded, remembered until the whole batch is done.
//!
//! A `put` of a folder that was killed, or that failed on some of its files, has already
//! created the objects of the files it finished. Run again, without this, every one of them is
//! a key that exists: refused without `--overwrite` (or asked about, or renamed by
//! `--keep-both`), so the very command the README says resumes fails. So while a batch runs,
//! each file it uploads is noted in the resume folder with the object's ETag, and the notes go
//! once every file of the batch is up. A rerun knows its own uploads from objects that were
//! there before: the same batch (the same command), the same file (path, size, modification
//! time, device and inode) and the object still the one it made (the same ETag). Another
//! command that meets the same key is not a rerun, and finds it taken as before.

use serde::{Deserialize, Serialize};

use super::*;

/// The resume folder's kind for these notes.
const UPLOADED: &str = "uploaded";

/// A file the batch uploaded, and the object it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UploadedRecord {
    /// The batch that uploaded it (see [`UploadOptions::note_batch`]).
    batch: String,
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

impl UploadedRecord {
    fn of(batch: &str, item: &UploadItem, file: &FileState, etag: &str) -> Self {
        Self {
            batch: batch.to_owned(),
            path: absolute(&item.path),
            size: file.len,
            modified: file.modified.and_then(to_record_time),
            file_id: file.file_id(),
            etag: etag.to_owned(),
        }
    }
}

impl S3Client {
    fn uploaded_slot(&self, store: &ResumeStore, bucket: &str, key: &str) -> Option<Slot> {
        store.claim(UPLOADED, &[&self.endpoint_label(), bucket, key])
    }

    /// Notes that `batch` uploaded `item`, as it was (`file`), to the object `etag`.
    pub(super) fn note_uploaded(
        &self,
        store: &ResumeStore,
        batch: &str,
        bucket: &str,
        item: &UploadItem,
        file: &FileState,
        etag: &str,
    ) {
        if let Some(slot) = self.uploaded_slot(store, bucket, &item.key) {
            // A note lost to a crash only makes the rerun ask about that key again.
            slot.save_quick_or_warn(&UploadedRecord::of(batch, item, file, etag));
        }
    }

    /// Whether an earlier run of `batch` (see [`UploadOptions::note_batch`]) uploaded `item`,
    /// the file is as it was then, and the object is still the one that run made: then the
    /// file is up already, and its key is not a conflict. A note that no longer matches its
    /// file or object is dropped (one of another batch stays for that batch).
    pub async fn uploaded_earlier(
        &self,
        store: &ResumeStore,
        batch: &str,
        bucket: &str,
        item: &UploadItem,
    ) -> Result<bool> {
        let endpoint = self.endpoint_label();
        let identity = [endpoint.as_str(), bucket, item.key.as_str()];
        if !store.has_record(UPLOADED, &identity) {
            return Ok(false);
        }
        let Some(slot) = store.claim(UPLOADED, &identity) else {
            return Ok(false);
        };
        let Some(record) = slot.load::<UploadedRecord>() else {
            return Ok(false);
        };
        if record.batch != batch {
            return Ok(false);
        }
        let same_file = match FileState::of(&item.path).await {
            Ok(now) => UploadedRecord::of(batch, item, &now, &record.etag) == record,
            Err(_) => false,
        };
        let same_object = same_file
            && self.head(bucket, &item.key).await?.is_some_and(|o| {
                o.size == record.size
                    && o.etag.as_deref().map(|t| t.trim_matches('"')) == Some(&record.etag)
            });
        if !same_object {
            slot.remove();
        }
        Ok(same_object)
    }

    /// Forgets the notes of `items`: their batch is done.
    pub fn forget_uploaded(&self, store: &ResumeStore, bucket: &str, items: &[UploadItem]) {
        let endpoint = self.endpoint_label();
        for item in items {
            let identity = [endpoint.as_str(), bucket, item.key.as_str()];
            if store.has_record(UPLOADED, &identity)
                && let Some(slot) = store.claim(UPLOADED, &identity)
            {
                slot.remove();
            }
        }
    }
}
