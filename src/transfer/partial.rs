//! A download's partial file: a temporary file of its own beside the target, created
//! exclusively and never through a link, noted in the resume record as its ranges reach the
//! disk, renamed into place when whole (never over anything without `overwrite`), and removed
//! when the download fails, unless it can be continued.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::PARTIAL_SUFFIX;
use super::download::{folder_of, local, will_not_overwrite};
use super::ranges::{self, Span};
use super::resume::{DownloadRecord, Slot};
use crate::error::Result;

/// A download's temporary file beside its target, removed when dropped unless persisted.
pub(super) struct Partial {
    pub(super) path: PathBuf,
    persisted: bool,
    /// Left on disk when dropped: a resumable download cut off by the network.
    kept: bool,
    /// The resume record of this download, when it has one.
    pub(super) record: Option<DownloadRecord>,
    /// The record's slot, held while the download runs.
    pub(super) slot: Option<Arc<Slot>>,
    /// Spans of the file on disk and right before this run (of an interrupted download).
    known: Vec<Span>,
    /// The ranges this run receives: where each starts and how far it is on disk.
    pub(super) progress: Vec<Span>,
}

impl Partial {
    /// Creates a temporary file of this download's own for `target`: a fresh name, created
    /// exclusively and never through a link, so two downloads to one path (in this process or
    /// another) never write into one file.
    pub(super) fn create(target: &Path) -> Result<(Self, std::fs::File)> {
        let mut last = None;
        for _ in 0..4 {
            let path = partial_path(target);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
            match options.open(&path) {
                Ok(file) => {
                    let partial = Self {
                        path,
                        persisted: false,
                        kept: false,
                        record: None,
                        slot: None,
                        known: Vec::new(),
                        progress: Vec::new(),
                    };
                    return Ok((partial, file));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(local("cannot write", &path)(e)),
            }
        }
        Err(local("cannot write", target)(last.unwrap_or_else(|| {
            std::io::Error::other("no free temporary name")
        })))
    }

    /// Reopens the partial file of an interrupted download, whose `kept` spans are on disk:
    /// only if it is still the very file that download created (never through a link, same
    /// device and inode) and is long enough to hold them; what lies beyond them is cut off.
    pub(super) fn reopen(
        record: &DownloadRecord,
        kept: Vec<Span>,
    ) -> Option<(Self, std::fs::File)> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let file = options.open(&record.partial).ok()?;
        let meta = file.metadata().ok()?;
        #[cfg(unix)]
        let same = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino()) == record.file_id
        };
        #[cfg(not(unix))]
        let same = false;
        let end = kept.last().map_or(0, |&(_, end)| end);
        if !meta.is_file() || !same {
            return None;
        }
        if meta.len() < end {
            // Ours (the same file), but cut short since: of no use, and nobody else's to keep.
            drop(file);
            let _ = std::fs::remove_file(&record.partial);
            return None;
        }
        file.set_len(end).ok()?;
        let partial = Self {
            path: record.partial.clone(),
            persisted: false,
            kept: false,
            record: Some(record.clone()),
            slot: None,
            known: kept,
            progress: Vec::new(),
        };
        Some((partial, file))
    }

    /// Leaves the file on disk when dropped, if the download can be continued from it;
    /// returns whether it can.
    pub(super) fn keep(&mut self) -> bool {
        self.kept = self.record.is_some();
        self.kept
    }

    /// Notes that range `index` is written up to byte `upto`: once its bytes are on disk, the
    /// record says so (a crash then costs only what came after).
    pub(super) async fn checkpoint(&mut self, file: &Arc<std::fs::File>, index: usize, upto: u64) {
        if self.record.is_none() || self.slot.is_none() {
            return;
        }
        let Some(&(start, now)) = self.progress.get(index) else {
            return;
        };
        if upto <= now {
            return;
        }
        let synced = file.clone();
        let flushed = tokio::task::spawn_blocking(move || synced.sync_data())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        if let Err(e) = flushed {
            tracing::warn!(path = %self.path.display(), "cannot flush the partial file: {e}");
            return;
        }
        // Only after the flush: every range's progress counts bytes already on disk.
        self.progress[index] = (start, upto);
        let on_disk = ranges::merged(self.known.iter().chain(&self.progress).copied());
        if let (Some(record), Some(slot)) = (self.record.as_mut(), &self.slot) {
            record.set_spans(&on_disk);
            slot.save_quick_or_warn(record);
        }
    }

    /// Renames the finished file to `target` (replacing what is there only if `overwrite`),
    /// then makes the rename durable.
    /// Gives the partial file its final name; `keep_record`: the record stays, marked done
    /// (see [`S3Client::download_many`]), else it goes.
    pub(super) fn persist(
        mut self,
        target: &Path,
        overwrite: bool,
        keep_record: bool,
    ) -> Result<()> {
        let placed = if overwrite {
            // rename(2) replaces a link at `target` itself; it never writes through it.
            std::fs::rename(&self.path, target)
        } else {
            rename_no_replace(&self.path, target)
        };
        placed.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                will_not_overwrite(target)
            } else {
                local("cannot write", target)(e)
            }
        })?;
        self.persisted = true;
        if let Some(slot) = &self.slot {
            match self.record.take() {
                Some(mut record) if keep_record => {
                    record.done = true;
                    record.done_modified = std::fs::symlink_metadata(target)
                        .and_then(|m| m.modified())
                        .ok();
                    record.set_spans(&[(0, record.size)]);
                    slot.save_or_warn(&record);
                }
                _ => slot.remove(),
            }
        }
        #[cfg(unix)]
        if let Err(e) = std::fs::File::open(folder_of(target)).and_then(|d| d.sync_all()) {
            // The file is complete and in place; only its durability across a crash is unsure.
            tracing::warn!("cannot flush the folder of {}: {e}", target.display());
        }
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.persisted && !self.kept {
            let _ = std::fs::remove_file(&self.path);
            if let Some(slot) = &self.slot {
                slot.remove();
            }
        }
    }
}

/// Renames `from` to `to` unless something (a file, a link, a folder) already is at `to`,
/// atomically where the platform allows: between a check and a plain rename, another download
/// could finish the same file and lose its bytes.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both are valid NUL-terminated paths that outlive the call.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        // Only file systems without RENAME_NOREPLACE go on to the fallback below.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Err(e);
        }
    }
    #[cfg(unix)]
    {
        // link(2) fails if `to` exists, and does not follow a link there.
        match std::fs::hard_link(from, to) {
            Ok(()) => return std::fs::remove_file(from),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
            // No hard links here (FAT, some network file systems): check, then rename.
            Err(_) => {}
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

/// A fresh temporary name beside `target`, ending in [`PARTIAL_SUFFIX`].
pub(super) fn partial_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    // Room for the suffix within the usual 255-byte limit on names.
    let mut cut = name.len().min(200);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let unique: u64 = rand::random();
    target.with_file_name(format!("{}.{unique:016x}{PARTIAL_SUFFIX}", &name[..cut]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_fresh_and_beside_the_target() {
        let target = Path::new("/d/sub/file.txt");
        let (a, b) = (partial_path(target), partial_path(target));
        assert_ne!(a, b);
        for p in [&a, &b] {
            assert_eq!(p.parent(), target.parent());
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("file.txt.") && name.ends_with(PARTIAL_SUFFIX),
                "{name}"
            );
        }
        let long = Path::new("/d").join("é".repeat(127));
        assert!(partial_path(&long).file_name().unwrap().len() <= 255);
    }
}
