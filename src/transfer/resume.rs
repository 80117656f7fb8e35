//! Remembering interrupted transfers, so that running the same command again continues them.
//!
//! A transfer the program could not clean up after (the process was killed, the machine
//! crashed, the network was gone when the clean-up was tried) leaves an unfinished multipart
//! upload on the server or a partial file on disk. Each transfer that may be resumed has a
//! small record in the resume folder (beside the app's own state, never in the bucket): written
//! when the transfer starts, updated as it goes, removed when the transfer ends in a way it
//! could clean up after (done, cancelled, failed and aborted).
//!
//! A record is named after what the user asked for (endpoint, bucket, key; for downloads also
//! the local file), and has a lock file held while its transfer runs, so two processes never
//! resume, abort or overwrite the same transfer: the second one simply starts afresh.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{OnConflict, UploadItem};
use crate::error::Result;
use crate::s3::S3Client;

/// Something the user should know about a transfer that was resumed, or could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeNotice {
    /// An interrupted upload goes on: `parts_kept` of `parts` parts were already on the server.
    UploadResumed {
        /// The local file.
        path: PathBuf,
        /// `s3://bucket/key`.
        target: String,
        /// Parts found on the server and matching the file, not sent again.
        parts_kept: usize,
        /// All parts of the upload.
        parts: usize,
        /// The bytes of the parts kept.
        bytes_kept: u64,
    },
    /// An interrupted upload of this file was found but the file is no longer what was being
    /// sent: that upload was discarded (aborted) and the file is sent from the start.
    UploadRestarted {
        /// The local file.
        path: PathBuf,
        /// `s3://bucket/key`.
        target: String,
        /// What differs.
        why: String,
    },
    /// An interrupted download goes on from byte `from` of `size`.
    DownloadResumed {
        /// `s3://bucket/key`.
        source: String,
        /// The local file.
        path: PathBuf,
        /// Bytes already on disk and kept.
        from: u64,
        /// The object's size.
        size: u64,
    },
    /// An interrupted download was found, but its bytes cannot be continued (the object
    /// changed since): they were discarded and the download starts over.
    DownloadRestarted {
        /// `s3://bucket/key`.
        source: String,
        /// The local file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

impl std::fmt::Display for ResumeNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UploadResumed {
                path,
                target,
                parts_kept,
                parts,
                bytes_kept,
            } => write!(
                f,
                "resuming the interrupted upload of {} → {target}: {parts_kept} of {parts} parts ({bytes_kept} bytes) already there",
                path.display()
            ),
            Self::UploadRestarted { path, target, why } => write!(
                f,
                "{} changed since its interrupted upload to {target} ({why}): discarded that upload, starting over",
                path.display()
            ),
            Self::DownloadResumed {
                source,
                path,
                from,
                size,
            } => write!(
                f,
                "resuming the interrupted download of {source} → {}: {from} of {size} bytes already there",
                path.display()
            ),
            Self::DownloadRestarted { source, path, why } => write!(
                f,
                "cannot resume the interrupted download of {source} → {} ({why}): starting over",
                path.display()
            ),
        }
    }
}

/// Receives [`ResumeNotice`]s; called from transfer tasks, so it must be quick.
pub type NoticeSink = Arc<dyn Fn(ResumeNotice) + Send + Sync>;

/// Where interrupted transfers are remembered (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct ResumeStore {
    dir: PathBuf,
    notices: Option<NoticeSink>,
}

impl std::fmt::Debug for ResumeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ResumeStore {
    /// Records kept in `dir` (created, private to the user, when first needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            notices: None,
        }
    }

    /// The user's resume folder: `resume/` in s3share's data folder (`$S3SHARE_HOME/data`, else
    /// `~/.local/share/s3share`); `None` without a home folder.
    pub fn for_user() -> Option<Self> {
        crate::store::StorePaths::for_user().map(|p| Self::new(p.data_dir.join("resume")))
    }

    /// Sends what the user should know (a transfer resumed, or restarted) to `sink`.
    pub fn with_notices(mut self, sink: NoticeSink) -> Self {
        self.notices = Some(sink);
        self
    }

    /// The folder the records are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn notify(&self, notice: ResumeNotice) {
        tracing::info!("{notice}");
        if let Some(sink) = &self.notices {
            sink(notice);
        }
    }

    /// Whether a record for `identity` in `kind` exists (a cheap look, no lock).
    pub(crate) fn has_record(&self, kind: &str, identity: &[&str]) -> bool {
        let name = identity_hash(identity);
        self.dir.join(kind).join(format!("{name}.json")).exists()
    }

    /// Takes the record slot for `identity` in `kind` (`uploads`, `downloads`): `None` when
    /// another transfer (in any process) holds it, or the folder cannot be used; the transfer
    /// then runs without resume, as before.
    pub(crate) fn claim(&self, kind: &str, identity: &[&str]) -> Option<Slot> {
        let dir = self.dir.join(kind);
        let name = identity_hash(identity);
        match Slot::claim(&dir, &name) {
            Ok(slot) => slot,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot use the resume folder: {e}");
                None
            }
        }
    }

    /// Interrupted uploads that can be resumed (or discarded): for the app to offer "Resume /
    /// Discard" at its start. Uploads running right now (in this or another process) are left
    /// out. To resume one, upload [`PendingUpload::item`] again with this store in
    /// [`UploadOptions::resume`](super::UploadOptions::resume) and
    /// [`PendingUpload::on_conflict`]; to discard it, [`S3Client::discard_upload`].
    pub fn pending_uploads(&self) -> Vec<PendingUpload> {
        let dir = self.dir.join(UPLOADS);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut found: Vec<PendingUpload> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?;
                let slot = Slot::claim(&dir, stem).ok()??;
                let record: UploadRecord = slot.load()?;
                Some(record.pending())
            })
            .collect();
        found.sort_by_key(|p| p.started);
        found
    }
}

pub(crate) const UPLOADS: &str = "uploads";
pub(crate) const DOWNLOADS: &str = "downloads";

/// A short, file-name-safe name for what a record is about.
fn identity_hash(identity: &[&str]) -> String {
    let mut h = Md5::new();
    for part in identity {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One record and its lock, held for as long as this value lives.
pub(crate) struct Slot {
    lock: File,
    lock_path: PathBuf,
    record: PathBuf,
}

impl Slot {
    fn claim(dir: &Path, name: &str) -> std::io::Result<Option<Slot>> {
        create_private_dir(dir)?;
        let lock_path = dir.join(format!("{name}.lock"));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let lock = options.open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(Some(Slot {
            lock,
            lock_path,
            record: dir.join(format!("{name}.json")),
        }))
    }

    /// The record, if there is one that can be read.
    pub(crate) fn load<T: DeserializeOwned>(&self) -> Option<T> {
        let text = std::fs::read(&self.record).ok()?;
        match serde_json::from_slice(&text) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(record = %self.record.display(), "ignoring an unreadable resume record: {e}");
                None
            }
        }
    }

    /// Writes the record durably: a crash leaves the old one or the new one, never a mix.
    pub(crate) fn save<T: Serialize>(&self, record: &T) -> std::io::Result<()> {
        self.write(record, true)
    }

    fn write<T: Serialize>(&self, record: &T, durable: bool) -> std::io::Result<()> {
        let tmp = self.record.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
        if durable {
            file.sync_data()?;
        }
        std::fs::rename(&tmp, &self.record)
    }

    /// Writes the record without waiting for the disk: a crash may leave the previous one,
    /// never a mix (for records that only ever grow safer to lose, like download progress).
    pub(crate) fn save_quick_or_warn<T: Serialize>(&self, record: &T) {
        if let Err(e) = self.write(record, false) {
            tracing::warn!(record = %self.record.display(), "cannot write the resume record: {e}");
        }
    }

    /// [`Slot::save`], logging a failure: the transfer goes on, only its resume is at stake.
    pub(crate) fn save_or_warn<T: Serialize>(&self, record: &T) {
        if let Err(e) = self.save(record) {
            tracing::warn!(record = %self.record.display(), "cannot write the resume record: {e}");
        }
    }

    /// Forgets the record (the transfer ended, or was discarded).
    pub(crate) fn remove(&self) {
        match std::fs::remove_file(&self.record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(record = %self.record.display(), "cannot remove: {e}"),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Without a record the lock file has nothing to guard: removed, so that the folder
        // does not fill up with one per file ever sent. Still locked here: a process that
        // opened it meanwhile fails to take it and runs without resume; one that comes later
        // creates a new one.
        if !self.record.exists() {
            let _ = std::fs::remove_file(&self.lock_path);
        }
        // Released here, not left to the close: a process this one is spawning right now (in
        // any thread) holds a copy of the descriptor until its exec, and the lock belongs to
        // what both copies share. Left to the close, the slot would look taken for that
        // moment: the app's list of interrupted uploads would miss one, and an upload would
        // run without resume.
        let _ = self.lock.unlock();
    }
}

pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Seconds and nanoseconds since the epoch, as records keep times.
pub(crate) fn to_record_time(t: SystemTime) -> Option<(u64, u32)> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some((d.as_secs(), d.subsec_nanos()))
}

/// The record of an unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    /// The local file, absolute.
    pub path: PathBuf,
    pub size: u64,
    /// Modification time (seconds, nanoseconds since the epoch).
    pub modified: Option<(u64, u32)>,
    /// Device and inode.
    pub file_id: Option<(u64, u64)>,
    pub part_size: u64,
    /// MD5s of the first and the last MiB: catches a rewrite that kept size and time.
    pub fingerprint: String,
    /// Whether the upload may replace an existing object.
    pub overwrite: bool,
    /// When the upload started (seconds since the epoch).
    pub started: u64,
    /// Whether the upload was created for CRC32C part checksums: its parts must then carry
    /// one, and its completion list them (records from before had none).
    #[serde(default)]
    pub crc32c: bool,
}

impl UploadRecord {
    fn pending(&self) -> PendingUpload {
        PendingUpload {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            path: self.path.clone(),
            size: self.size,
            started: UNIX_EPOCH + std::time::Duration::from_secs(self.started),
            overwrite: self.overwrite,
            upload_id: self.upload_id.clone(),
        }
    }
}

/// An interrupted upload found in the resume folder (see [`ResumeStore::pending_uploads`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// The endpoint it was going to ([`S3Client::endpoint_label`]): resume or discard it with
    /// a client for that endpoint.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The local file.
    pub path: PathBuf,
    /// Its size when the upload started.
    pub size: u64,
    /// When the upload started.
    pub started: SystemTime,
    /// Whether it was allowed to replace an existing object.
    pub overwrite: bool,
    /// The multipart upload on the server (its parts say how much is done).
    pub upload_id: String,
}

impl PendingUpload {
    /// The item to upload again to resume it.
    pub fn item(&self) -> UploadItem {
        UploadItem {
            path: self.path.clone(),
            key: self.key.clone(),
            size: self.size,
        }
    }

    /// The conflict rule it ran with.
    pub fn on_conflict(&self) -> OnConflict {
        if self.overwrite {
            OnConflict::Overwrite
        } else {
            OnConflict::Fail
        }
    }
}

impl S3Client {
    /// Discards an interrupted upload: aborts it on the server (nothing stays to cost
    /// storage) and forgets it. One that is running right now is left alone.
    pub async fn discard_upload(&self, store: &ResumeStore, pending: &PendingUpload) -> Result<()> {
        let identity = [
            pending.endpoint.as_str(),
            pending.bucket.as_str(),
            pending.key.as_str(),
        ];
        let Some(slot) = store.claim(UPLOADS, &identity) else {
            return Ok(());
        };
        let Some(record) = slot.load::<UploadRecord>() else {
            return Ok(());
        };
        self.abort_upload(&record.bucket, &record.key, &record.upload_id)
            .await?;
        slot.remove();
        Ok(())
    }
}

/// The record of a partial download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DownloadRecord {
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    /// The file the download will become.
    pub target: PathBuf,
    /// The partial file the bytes go to.
    pub partial: PathBuf,
    /// Device and inode of the partial file: only a file we created is ever continued.
    pub file_id: (u64, u64),
    /// The object's ETag (quoted, as the server gave it) and size.
    pub etag: String,
    pub size: u64,
    /// Bytes of the partial file known to be on disk (flushed) and right, from its start.
    pub valid: u64,
    /// Further spans `[start, end)` on disk and right, beyond `valid`: a download fetches
    /// ranges side by side (see `transfer::ranges`). Records written before had none.
    #[serde(default)]
    pub more: Vec<(u64, u64)>,
    /// The download completed (the partial file became the target, same device and inode):
    /// kept until the rest of its batch is done, so that running a killed `get -r` again
    /// knows this file is the one it made, not one of the user's to keep.
    #[serde(default)]
    pub done: bool,
    /// The completed file's modification time: with its device, inode and size, what shows
    /// that it is still as the download left it (records written before had none).
    #[serde(default)]
    pub done_modified: Option<std::time::SystemTime>,
}

impl DownloadRecord {
    /// The spans of the partial file on disk and right, merged, in order, within the object.
    pub fn spans(&self) -> Vec<(u64, u64)> {
        let clip = |(a, b): (u64, u64)| (a.min(self.size), b.min(self.size));
        super::ranges::merged(
            std::iter::once((0, self.valid))
                .chain(self.more.iter().copied())
                .map(clip),
        )
    }

    /// Notes `spans` (merged, in order) as what is on disk and right.
    pub fn set_spans(&mut self, spans: &[(u64, u64)]) {
        let (valid, more) = match spans.split_first() {
            Some((&(0, end), rest)) => (end, rest),
            _ => (0, spans),
        };
        self.valid = valid;
        self.more = more.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The release must not wait for processes spawned meanwhile (they hold the descriptor
    /// until their exec): with the lock left to the close, most claims here failed.
    #[test]
    fn a_released_slot_can_be_claimed_at_once_while_processes_are_spawned() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store = ResumeStore::new(dir.path());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let spawners: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = std::process::Command::new("true").status();
                    }
                })
            })
            .collect();
        let mut refused = 0;
        for _ in 0..500 {
            match store.claim(UPLOADS, &["e", "b", "k"]) {
                Some(slot) => {
                    slot.save(&1u8).unwrap();
                    std::thread::yield_now();
                }
                None => refused += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        for s in spawners {
            s.join().unwrap();
        }
        assert_eq!(refused, 0, "claims refused after the slot was released");
    }

    #[test]
    fn a_slot_is_held_by_one_claimant_and_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResumeStore::new(dir.path());
        let a = store.claim(UPLOADS, &["e", "b", "k"]).unwrap();
        assert!(store.claim(UPLOADS, &["e", "b", "k"]).is_none(), "held");
        assert!(
            store.claim(UPLOADS, &["e", "b", "k2"]).is_some(),
            "another key"
        );
        assert_eq!(a.load::<DownloadRecord>(), None);
        let r = DownloadRecord {
            endpoint: "e".into(),
            bucket: "b".into(),
            key: "k".into(),
            target: "/t".into(),
            partial: "/t.p".into(),
            file_id: (1, 2),
            etag: "\"x\"".into(),
            size: 9,
            valid: 3,
            more: vec![(5, 7)],
            done: false,
            done_modified: None,
        };
        a.save(&r).unwrap();
        assert_eq!(a.load::<DownloadRecord>(), Some(r));
        drop(a);
        let b = store.claim(UPLOADS, &["e", "b", "k"]).unwrap();
        assert!(b.load::<DownloadRecord>().is_some(), "kept across claims");
        b.remove();
        assert_eq!(b.load::<DownloadRecord>(), None);
        drop(b);
        let left: Vec<_> = std::fs::read_dir(dir.path().join(UPLOADS))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "nothing left without a record: {left:?}");
        assert!(!store.has_record(UPLOADS, &["e", "b", "k"]));
    }
}
