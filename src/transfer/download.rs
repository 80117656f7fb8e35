//! Downloads streamed to disk, confined to the folder the user chose.
//!
//! S3 keys are not file names: `../x`, `/etc/x` and `a/../../x` are all legal keys, and `a/b`,
//! `a//b` and `./a/b` are three keys for one local path. Every key is mapped to a path below the
//! destination folder or refused, and two keys never share a path unreported.
//!
//! On disk, a download never follows a symbolic link below the destination folder: each folder it
//! creates or enters is checked, and the bytes land in a temporary file of its own (created
//! exclusively, never through a link), flushed to disk, then renamed into place; the rename
//! replaces a link rather than writing through it, and without `overwrite` it never replaces
//! anything, even when another process finishes the same file at the same moment.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;
use reqwest::header::{CONTENT_LENGTH, ETAG, HeaderMap, HeaderName};
use tokio_util::sync::CancellationToken;

use super::fetch::{GetFailed, NoRest, RangeFailed, RangeShared, STALL, answers_range, header};
use super::http::Crc32c;
use super::partial::Partial;
use super::ranges::{self, Span};
use super::receive::{BodyEnd, Pending, Sink};
use super::resume::{DOWNLOADS, DownloadRecord, ResumeNotice, ResumeStore, Slot};
use super::{ByteCounter, Concurrency, DownloadJob, EventSink, TransferEvent};
use crate::error::{Error, Result};
use crate::s3::{ObjectEntry, S3Client};

/// The suffix of the temporary files downloads write before renaming them into place.
pub const PARTIAL_SUFFIX: &str = ".s3share-partial";

/// One object to download and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadItem {
    /// The key.
    pub key: String,
    /// The local file.
    pub path: PathBuf,
    /// Size as listed.
    pub size: u64,
    /// The folder the download is confined to: `path` is below it, and the folders between the
    /// two are created by the download and never followed through a symbolic link. (`dest`
    /// itself is the user's choice and may be a link.)
    pub dest: PathBuf,
}

impl DownloadItem {
    /// One object to a file the user named: the folders above `path` are the user's own choice,
    /// so only `path` itself is guarded.
    pub fn file(key: impl Into<String>, path: impl Into<PathBuf>, size: u64) -> Self {
        let path = path.into();
        Self {
            key: key.into(),
            dest: folder_of(&path).to_owned(),
            path,
            size,
        }
    }
}

/// The folder `path` is in (`.` for a bare file name).
pub(super) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The path below `dest` for `relative` (a key, or the part of it below the listed prefix).
/// Empty and `.` segments and leading slashes are dropped; `..` segments are refused.
pub fn confined_path(dest: &Path, relative: &str) -> Result<PathBuf> {
    let unsafe_key = || Error::UnsafeKey {
        key: relative.to_owned(),
        dest: dest.to_owned(),
    };
    let mut path = dest.to_owned();
    let mut depth = 0;
    for segment in relative.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(unsafe_key()),
            s if s.contains('\0') => return Err(unsafe_key()),
            s => {
                // One segment must be one normal path component, on every platform we build for.
                let mut components = Path::new(s).components();
                if !matches!(
                    (components.next(), components.next()),
                    (Some(Component::Normal(_)), None)
                ) {
                    return Err(unsafe_key());
                }
                path.push(s);
                depth += 1;
            }
        }
    }
    if depth == 0 {
        return Err(unsafe_key());
    }
    Ok(path)
}

/// Plans downloading `objects` (listed under `prefix`) into `dest`, keeping their structure.
/// Keys that would escape `dest`, and keys that need a local path an earlier key already
/// takes, come back as errors; folder markers are skipped.
pub fn plan_download(
    objects: &[ObjectEntry],
    prefix: &str,
    dest: &Path,
) -> (Vec<DownloadItem>, Vec<Error>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (_, planned) in plan_download_each(objects, prefix, dest) {
        match planned {
            Ok(item) => items.push(item),
            Err(e) => errors.push(e),
        }
    }
    (items, errors)
}

/// [`plan_download`], one outcome per object (folder markers left out), in the given order:
/// for callers that show each key's fate, like the app's transfers panel.
///
/// Keys collide when they map to one file (`a/b`, `a//b`, `./a/b`) or when one needs as a
/// folder what another needs as a file (`a` and `a/b`). The first in order is planned; each
/// later one is an [`Error::PathCollision`] naming both keys and the path.
pub fn plan_download_each(
    objects: &[ObjectEntry],
    prefix: &str,
    dest: &Path,
) -> Vec<(String, Result<DownloadItem>)> {
    // Local path (as the file system compares names) -> the key that takes it.
    let mut files: HashMap<PathBuf, &str> = HashMap::new();
    let mut folders: HashMap<PathBuf, &str> = HashMap::new();
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| !o.key.ends_with('/')) {
        let relative = o.key.strip_prefix(prefix).unwrap_or(&o.key);
        let planned = confined_path(dest, relative).and_then(|path| {
            let between: Vec<&Path> = path
                .ancestors()
                .skip(1)
                .take_while(|a| *a != dest)
                .collect();
            let taken = |at: &Path, by: Option<&&str>| {
                by.map(|other| Error::PathCollision {
                    key: o.key.clone(),
                    other: (*other).to_owned(),
                    path: at.to_owned(),
                })
            };
            let name = fs_name(&path);
            let clash = taken(&path, files.get(&name))
                .or_else(|| taken(&path, folders.get(&name)))
                .or_else(|| {
                    between
                        .iter()
                        .find_map(|a| taken(a, files.get(&fs_name(a))))
                });
            if let Some(e) = clash {
                return Err(e);
            }
            files.insert(name, &o.key);
            for a in between {
                folders.entry(fs_name(a)).or_insert(&o.key);
            }
            Ok(DownloadItem {
                key: o.key.clone(),
                path,
                size: o.size,
                dest: dest.to_owned(),
            })
        });
        out.push((o.key.clone(), planned));
    }
    out
}

/// `path` as the file system tells names apart: the usual macOS and Windows file systems
/// ignore case, so there `A` and `a` are one file.
fn fs_name(path: &Path) -> PathBuf {
    if cfg!(any(target_os = "macos", windows)) {
        PathBuf::from(path.to_string_lossy().to_lowercase())
    } else {
        path.to_owned()
    }
}

impl S3Client {
    /// Downloads several objects, as many at a time as the options' [`Concurrency`] says; one
    /// failure never stops the others.
    /// Returns each item's result (its size), in order.
    ///
    /// With a resume store, the whole batch resumes: the record of each file it completed is
    /// kept until the batch ends, so that running it again after a kill continues the partial
    /// files and leaves the files it completed (the very files it made, same size and inode)
    /// instead of refusing to overwrite them.
    pub async fn download_many(
        &self,
        bucket: &str,
        items: &[DownloadItem],
        options: &DownloadOptions,
        events: EventSink,
        cancel: &CancellationToken,
    ) -> Vec<Result<u64>> {
        let results: Vec<Result<u64>> =
            futures::stream::iter(DownloadJob::batch(bucket, items, options, &events, cancel))
                .map(|job| self.run_download(job, true))
                .buffered(options.concurrency.files())
                .collect()
                .await;
        // The batch is done once every file is: until then (a file failed, the batch was
        // cancelled) the next run of it still needs to know which files are its own.
        if let Some(store) = &options.resume
            && results.iter().all(Result::is_ok)
        {
            let endpoint = self.endpoint_label();
            for item in items {
                if let Some(slot) = claim_download(store, &endpoint, bucket, item)
                    && slot.load::<DownloadRecord>().is_some_and(|r| r.done)
                {
                    slot.remove();
                }
            }
        }
        results
    }

    /// Downloads one object, reporting its events under the job's `id`; an existing file is
    /// kept unless the options say `overwrite`. On failure or cancellation nothing is left
    /// behind: no partial file, no replaced file. With a resume store, the partial file of an
    /// interrupted download of the same object to the same file is continued, and a download
    /// cut off by the network keeps its partial file for that (the error says so); a
    /// cancelled one still leaves nothing behind.
    pub async fn download_file(&self, job: DownloadJob) -> Result<u64> {
        self.run_download(job, false).await
    }

    /// [`Self::download_file`]; in a `batch`, a completed file's record is kept (see
    /// [`Self::download_many`]).
    async fn run_download(&self, job: DownloadJob, batch: bool) -> Result<u64> {
        let DownloadJob {
            bucket,
            item,
            options,
            id,
            events,
            cancel,
        } = &job;
        let (bucket, id) = (bucket.as_str(), *id);
        // Cancelling drops the download's future, and with it its partial file (see `Partial`).
        let result = tokio::select! {
            r = self.download_inner(bucket, item, options, id, events.clone(), batch) => r,
            () = cancel.cancelled() => Err(Error::Cancelled),
        };
        match &result {
            Ok(_) => events(TransferEvent::Finished { id }),
            Err(e) => events(TransferEvent::failed(id, e)),
        }
        result
    }

    /// The interrupted download recorded in `slot`, reopened and continued from its last
    /// checkpoints: the partial file and the answers to ranged GETs (guarded by the object's
    /// ETag) for what it lacks. `None` when there is nothing to continue (no record, the
    /// partial file is gone or not ours, the object changed); what cannot be continued is
    /// removed.
    async fn resume_download(
        &self,
        store: &ResumeStore,
        slot: &Slot,
        bucket: &str,
        item: &DownloadItem,
        ranges: usize,
    ) -> Result<Option<Underway>> {
        let Some(record) = slot.load::<DownloadRecord>() else {
            return Ok(None);
        };
        let source = format!("s3://{bucket}/{}", item.key);
        let kept = record.spans();
        let mut missing = ranges::gaps(record.size, &kept);
        if missing.is_empty() && record.size > 0 {
            // One byte is fetched again when all were there: a range must not be empty.
            missing.push((record.size - 1, record.size));
        }
        let kept_bytes = record.size - missing.iter().map(|(a, b)| b - a).sum::<u64>();
        let reopened = {
            let (record, owned, kept) = (record.clone(), item.clone(), kept.clone());
            tokio::task::spawn_blocking(move || {
                let item = owned;
                // The folders on the way are checked again (one may have become a link since),
                // and the partial file must be the one beside the target.
                prepare_folders(&item)?;
                let beside = std::path::absolute(&item.path)
                    .ok()
                    .is_some_and(|t| t.parent() == record.partial.parent());
                Ok::<_, Error>(beside.then(|| Partial::reopen(&record, kept)).flatten())
            })
            .await
            .map_err(|e| local("cannot write", &item.path)(std::io::Error::other(e)))??
        };
        let Some((mut partial, file)) = reopened else {
            tracing::info!(%source, "the recorded partial file is gone or not ours; starting over");
            slot.remove();
            return Ok(None);
        };
        let restart = |why: String| {
            store.notify(ResumeNotice::DownloadRestarted {
                source: source.clone(),
                path: item.path.clone(),
                why,
            });
            // The partial file goes when it is dropped, on return: its bytes are of another
            // version.
            slot.remove();
        };
        if record.size == 0 || kept_bytes == 0 {
            restart("nothing of it was kept".to_owned());
            return Ok(None);
        }
        let (spans, queued, extra) = self.plan_ranges(&missing, ranges);
        let answers = futures::future::join_all(
            spans
                .iter()
                .map(|&span| self.get_object(bucket, &item.key, Some((span, &record.etag)))),
        )
        .await;
        let mut answered = Vec::with_capacity(spans.len());
        for (&span, answer) in spans.iter().zip(answers) {
            let out = match answer {
                Ok(out) => out,
                Err(GetFailed::Changed) => {
                    restart("the object changed since".to_owned());
                    return Ok(None);
                }
                Err(GetFailed::NoSuchKey) => {
                    restart("the object is gone".to_owned());
                    return Err(Error::NoSuchKey {
                        bucket: bucket.to_owned(),
                        key: item.key.clone(),
                    });
                }
                Err(GetFailed::Other(e)) => {
                    // Not the object's fault (a network error, say): keep the partial file
                    // for the next try.
                    partial.keep();
                    return Err(e);
                }
            };
            // Servers that ignore If-Match (or Range) must not splice two versions either.
            if header(&out.headers, ETAG) != Some(record.etag.as_str()) {
                restart("the object changed since".to_owned());
                return Ok(None);
            }
            if !answers_range(&out.headers, span, record.size) {
                restart("the server did not send the missing range".to_owned());
                return Ok(None);
            }
            answered.push((span, out));
        }
        store.notify(ResumeNotice::DownloadResumed {
            source,
            path: item.path.clone(),
            from: kept_bytes,
            size: record.size,
        });
        Ok(Some(Underway {
            partial,
            file,
            ranges: answered,
            queued,
            kept: kept_bytes,
            etag: record.etag,
            size: Some(record.size),
            extra,
        }))
    }

    /// A fresh download: the GET of the whole object and its partial file. A big object is
    /// split into ranges fetched side by side (see `transfer::ranges`): the whole GET's body
    /// serves the first, ranged GETs guarded by its ETag the others. When those cannot be had,
    /// the whole GET serves all of it.
    async fn start_download(
        &self,
        bucket: &str,
        item: &DownloadItem,
        ranges: usize,
    ) -> Result<Underway> {
        let key = item.key.as_str();
        let out = self
            .get_object(bucket, key, None)
            .await
            .map_err(|e| e.of_whole(bucket, key))?;
        let (partial, file) = {
            let owned = item.clone();
            tokio::task::spawn_blocking(move || {
                prepare_folders(&owned)?;
                Partial::create(&owned.path)
            })
            .await
            .map_err(|e| local("cannot write", &item.path)(std::io::Error::other(e)))??
        };
        let size = header(&out.headers, CONTENT_LENGTH).and_then(|n| n.parse::<u64>().ok());
        let etag = header(&out.headers, ETAG).unwrap_or_default().to_owned();
        // One gap: never more ranges than connections, so nothing is queued.
        let (spans, _, mut extra) = match size {
            Some(size) if !etag.is_empty() => self.plan_ranges(&[(0, size)], ranges),
            _ => (Vec::new(), Vec::new(), None),
        };
        let mut answered = vec![((0, size.unwrap_or(u64::MAX)), out)];
        if let (Some(size), [first, others @ ..]) = (size, spans.as_slice())
            && !others.is_empty()
        {
            let rest = futures::future::join_all(
                others
                    .iter()
                    .map(|&span| self.rest_of(bucket, key, span, &etag, size)),
            )
            .await;
            if rest.iter().all(Result::is_ok) {
                answered[0].0 = *first;
                answered.extend(others.iter().copied().zip(rest.into_iter().flatten()));
            } else {
                tracing::debug!(bucket, key, "no ranges to be had; one connection then");
                extra = None;
            }
        }
        Ok(Underway {
            partial,
            file,
            ranges: answered,
            queued: Vec::new(),
            kept: 0,
            etag,
            size,
            extra,
        })
    }

    /// How to fetch `gaps` over up to `ranges` connections side by side, as many as the
    /// client's shared extra connections allow now (see [`ranges::ExtraConnections`]): the
    /// ranges to ask for at once (one per connection), those queued behind them (when there
    /// are more gaps than connections, each asked for once a connection is free), and the
    /// hold on the extra connections.
    fn plan_ranges(
        &self,
        gaps: &[Span],
        ranges: usize,
    ) -> (
        Vec<Span>,
        Vec<Span>,
        Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let mut spans = ranges::split(gaps, ranges, ranges::MIN_RANGE);
        let wanted = spans.len().min(ranges).max(1);
        let extra = self.extra_connections().take(wanted - 1);
        let connections = 1 + extra
            .as_ref()
            .map_or(0, tokio::sync::OwnedSemaphorePermit::num_permits);
        if connections < wanted {
            spans = ranges::split(gaps, connections, ranges::MIN_RANGE);
        }
        let queued = spans.split_off(connections.min(spans.len()));
        (spans, queued, extra)
    }

    async fn download_inner(
        &self,
        bucket: &str,
        item: &DownloadItem,
        options: &DownloadOptions,
        id: usize,
        events: EventSink,
        batch: bool,
    ) -> Result<u64> {
        let mut overwrite = options.overwrite;
        let (key, path) = (item.key.as_str(), item.path.as_path());
        let endpoint = self.endpoint_label();
        let absolute_path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let slot = options
            .resume
            .as_ref()
            .and_then(|store| claim_download(store, &endpoint, bucket, item).map(|s| (store, s)));
        if let Some((_, slot)) = &slot
            && let Some(done) = completed_before(slot, path)
        {
            // A run of this batch that was killed or failed had completed this very file: it
            // counts as done if the object is still the one it fetched. A changed object is
            // fetched again, and replaces the file that run made (it is this batch's own,
            // untouched since; not one of the user's to keep).
            let now = self.head(bucket, key).await?;
            let unquoted = |t: &str| t.trim_matches('"').to_owned();
            if now.as_ref().is_some_and(|o| {
                o.size == done.size && o.etag.as_deref().map(unquoted) == Some(unquoted(&done.etag))
            }) {
                tracing::info!(path = %path.display(), "already downloaded by the interrupted run");
                events(TransferEvent::Started {
                    id,
                    total: done.size,
                });
                events(TransferEvent::Progress {
                    id,
                    done: done.size,
                });
                return Ok(done.size);
            }
            tracing::info!(
                path = %path.display(),
                "changed since the interrupted run downloaded it: downloading it again"
            );
            slot.remove();
            overwrite = true;
        }
        // Before the request, so a refusal costs nothing; the rename checks again atomically.
        check_target(path, overwrite)?;
        // A server that does not answer fails here, once, rather than in the signing below.
        self.try_for_bucket(bucket).await?;
        let target = format!("s3://{bucket}/{key}");
        let ranges = ranges::ranges_for(options.ranges, self.is_on_this_machine());
        let resumed = match &slot {
            Some((store, slot)) => {
                self.resume_download(store, slot, bucket, item, ranges)
                    .await?
            }
            None => None,
        };
        let slot = slot.map(|(_, s)| Arc::new(s));
        let Underway {
            mut partial,
            file,
            ranges: answered,
            kept,
            etag,
            size,
            queued,
            // Held until the ranges are in.
            extra: _extra,
        } = match resumed {
            Some(r) => r,
            None => self.start_download(bucket, item, ranges).await?,
        };
        // The object's CRC32C as the server tells it for the whole object (not for a range, not
        // a composite of parts): what the bytes received must add up to.
        let whole_crc = (kept == 0)
            .then(|| whole_object_crc(&answered[0].1.headers))
            .flatten();
        // Remember the download (once its file is ours and the object's version is known),
        // so that a kill or a crash can be continued.
        if let (Some(slot), None) = (&slot, &partial.record)
            && !etag.is_empty()
            && let Some(size) = size.filter(|&n| n > 0)
            && let Some(file_id) = file_id(&file)
        {
            let record = DownloadRecord {
                endpoint: endpoint.clone(),
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                target: absolute_path.clone(),
                partial: std::path::absolute(&partial.path).unwrap_or(partial.path.clone()),
                file_id,
                etag: etag.clone(),
                size,
                valid: 0,
                more: Vec::new(),
                done: false,
                done_modified: None,
            };
            slot.save_or_warn(&record);
            partial.record = Some(record);
        }
        partial.slot = slot;
        let spans: Vec<Span> = answered
            .iter()
            .map(|&(span, _)| span)
            .chain(queued.iter().copied())
            .collect();
        partial.progress = spans.iter().map(|&(start, _)| (start, start)).collect();

        events(TransferEvent::Started {
            id,
            total: size.unwrap_or(kept),
        });
        let counter = ByteCounter::new(id, events);
        if kept > 0 {
            counter.add(kept);
        }
        let write_error = local("cannot write", &partial.path);
        let file = Arc::new(file);
        let resumable = partial.slot.is_some();
        let partial = tokio::sync::Mutex::new(partial);
        let shared = RangeShared {
            bucket,
            key,
            target: &target,
            size,
            // The object's version and size: what a reconnection asks for again.
            version: size
                .filter(|_| !etag.is_empty())
                .map(|n| (etag.as_str(), n)),
            partial: &partial,
            file: &file,
            write_error: &write_error,
            counter: &counter,
            resumable,
            stop: CancellationToken::new(),
            serial: (answered.len() > 1).then(|| Arc::new(parking_lot::Mutex::new(()))),
        };
        // Each connection receives its answer, then the queued ranges that fall to it.
        let lanes = ranges::lanes(spans.len(), answered.len());
        let crc32c = whole_crc.is_some();
        let ends = futures::future::join_all(answered.into_iter().zip(lanes).map(
            |((span, out), lane)| {
                let next = lane[1..].iter().map(|&i| (i, spans[i])).collect();
                self.receive_lane(&shared, (lane[0], span, out), next, crc32c)
            },
        ))
        .await;
        let mut ends: Vec<_> = ends.into_iter().flatten().collect();
        ends.sort_by_key(|&(index, _)| index);
        let mut partial = partial.into_inner();
        let (mut crcs, mut have, mut kept_error) = (Vec::new(), kept, None);
        for ((_, end), (a, b)) in ends.into_iter().zip(spans) {
            let len = b - a;
            match end {
                Ok((crc, got)) => {
                    have += got;
                    crcs.push(crc.map(|c| (c, len)));
                }
                // The bytes so far are of no use: the partial file goes when dropped.
                Err(RangeFailed::Lose(e)) => return Err(e),
                Err(RangeFailed::Keep(e)) => kept_error = kept_error.or(Some(e)),
                Err(RangeFailed::Stopped) => {}
            }
        }
        if let Some(e) = kept_error {
            // What came is on disk and noted: the download can be continued.
            partial.keep();
            return Err(e);
        }
        let received_crc = crcs
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|pieces| ranges::combined_crc32c(&pieces));
        if let Some((want, got)) = crc_differs(whole_crc.as_deref(), received_crc) {
            // Dropping the partial file removes it (and its resume record).
            return Err(Error::S3 {
                operation: format!("download of {target}"),
                message: format!(
                    "the bytes received do not match the object's CRC32C checksum ({want} on the server, {got} received): they were damaged on the way; nothing was kept, download it again"
                ),
            });
        }
        // On disk before it takes the final name: after a crash the file is whole or absent.
        let synced = file.clone();
        tokio::task::spawn_blocking(move || synced.sync_all())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(&write_error)?;
        drop(file);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || partial.persist(&path, overwrite, batch))
            .await
            .map_err(|e| local("cannot write", &item.path)(std::io::Error::other(e)))??;
        Ok(size.unwrap_or(have))
    }
}

/// A download under way, fresh or resumed: its partial file and the answers to receive into it.
struct Underway {
    partial: Partial,
    file: std::fs::File,
    /// Each range of the object to receive and the answer that serves it, in order.
    ranges: Vec<(Span, Pending)>,
    /// Ranges beyond those, each asked for on a connection once the range before it there is
    /// in (a resumed download with more gaps than connections).
    queued: Vec<Span>,
    /// Bytes already in the file (of an interrupted download), not in any range.
    kept: u64,
    /// The object's ETag (empty when the server gave none) and size (when the server said).
    etag: String,
    size: Option<u64>,
    /// The client's extra connections its ranges use, given back when it is dropped.
    extra: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The object's CRC32C as the answer's `headers` tell it for the whole object (not for a
/// range, not a composite of parts): what the bytes received must add up to.
fn whole_object_crc(headers: &HeaderMap) -> Option<String> {
    header(headers, HeaderName::from_static(Crc32c::HEADER))
        .filter(|v| !v.contains('-'))
        .filter(|_| {
            header(headers, HeaderName::from_static("x-amz-checksum-type")) != Some("COMPOSITE")
        })
        .map(str::to_owned)
}

/// The object's CRC32C (`want`, as the server tells it) and the received bytes' (`got`), both
/// in base64, when both are known and they differ: the bytes were damaged on the way.
fn crc_differs(want: Option<&str>, got: Option<u32>) -> Option<(String, String)> {
    let (want, got) = (want?, Crc32c(got?).base64());
    (want != got).then(|| (want.to_owned(), got))
}

impl S3Client {
    /// Streams object `key` into `out` in order (standard output, a pipe), the way a download
    /// to a file receives it: a connection that breaks is opened again for the rest, guarded
    /// by the object's ETag, and the bytes are checked against the object's CRC32C when the
    /// server tells it. Bytes written cannot be taken back: after an error the output is
    /// incomplete (or, when the checksum differs, damaged), and the error says so.
    pub async fn stream_object(
        &self,
        bucket: &str,
        key: &str,
        out: std::fs::File,
        cancel: &CancellationToken,
    ) -> Result<u64> {
        tokio::select! {
            r = self.stream_inner(bucket, key, out) => r,
            () = cancel.cancelled() => Err(Error::Cancelled),
        }
    }

    async fn stream_inner(&self, bucket: &str, key: &str, out: std::fs::File) -> Result<u64> {
        let target = format!("s3://{bucket}/{key}");
        self.try_for_bucket(bucket).await?;
        let mut answer = self
            .get_object(bucket, key, None)
            .await
            .map_err(|e| e.of_whole(bucket, key))?;
        let size = header(&answer.headers, CONTENT_LENGTH).and_then(|n| n.parse::<u64>().ok());
        let version = header(&answer.headers, ETAG).map(str::to_owned).zip(size);
        let mut whole_crc = whole_object_crc(&answer.headers);
        let incomplete = |have: u64, why: &dyn std::fmt::Display| Error::S3 {
            operation: format!("download of {target} to the output"),
            message: format!(
                "{why}; the output is incomplete ({have} of {} bytes written): download it again",
                size.map_or("?".to_owned(), |n| n.to_string())
            ),
        };
        let file = Arc::new(out);
        let counter = ByteCounter::new(0, super::no_events());
        let idle = self.timeouts().idle;
        let mut have = 0u64;
        let mut reconnects = 0;
        let received_crc = loop {
            let written = Arc::new(AtomicU64::new(0));
            let end = answer
                .receive(Sink {
                    file: file.clone(),
                    at: have,
                    until: u64::MAX,
                    stream: true,
                    serial: None,
                    counter: counter.clone(),
                    written: written.clone(),
                    checkpoint: None,
                    stall: STALL,
                    idle,
                    crc32c: whole_crc.is_some(),
                })
                .await;
            have += written.load(Ordering::Acquire);
            let message = match end {
                BodyEnd::Done(crc) if size.is_none_or(|size| have == size) => break crc,
                BodyEnd::Done(_) => "the connection closed early".to_owned(),
                BodyEnd::Disk(source) => return Err(Error::writing_output(source)),
                BodyEnd::Broken(message) => message,
                BodyEnd::Stalled => {
                    let why = format!(
                        "the server ({}) stopped sending: nothing for {} s",
                        self.endpoint_label(),
                        idle.as_secs_f32()
                    );
                    return Err(incomplete(have, &why));
                }
            };
            let rest = self.rest_after_break(
                bucket,
                key,
                (have, u64::MAX),
                version.as_ref().map(|(etag, size)| (etag.as_str(), *size)),
                &mut reconnects,
                &message,
            );
            answer = match rest.await {
                Ok(again) => again,
                Err(NoRest::GaveUp) => return Err(incomplete(have, &message)),
                Err(NoRest::Useless(e) | NoRest::Failed(e)) => return Err(incomplete(have, &e)),
            };
            // A body in pieces has no whole to check (the ETag guards the version).
            whole_crc = None;
        };
        if let Some((want, got)) = crc_differs(whole_crc.as_deref(), received_crc) {
            return Err(Error::S3 {
                operation: format!("download of {target} to the output"),
                message: format!(
                    "the bytes written do not match the object's CRC32C checksum ({want} on the server, {got} received): they were damaged on the way; discard the output and download it again"
                ),
            });
        }
        Ok(have)
    }
}

/// How downloads are carried out.
#[derive(Debug, Clone, Default)]
pub struct DownloadOptions {
    /// Replace local files that already exist.
    pub overwrite: bool,
    /// Where interrupted downloads are remembered, to continue them; `None`: never.
    pub resume: Option<ResumeStore>,
    /// Files downloaded at the same time by [`S3Client::download_many`].
    pub concurrency: Concurrency,
    /// Connections one big file is fetched over side by side at most, each with a range of at
    /// least 16 MiB of it (at most [`MAX_RANGES`](super::MAX_RANGES)). `None`: one from a
    /// server on this machine (there, one is fastest: see `transfer::ranges`), eight from one
    /// elsewhere. A client's downloads share 15 connections beyond one each: a file that finds
    /// none free comes in one stream.
    pub ranges: Option<usize>,
}

/// The resume slot of a download, named by where it comes from and the local file it becomes.
fn claim_download(
    store: &ResumeStore,
    endpoint: &str,
    bucket: &str,
    item: &DownloadItem,
) -> Option<Slot> {
    let absolute = std::path::absolute(&item.path).unwrap_or_else(|_| item.path.clone());
    let identity = [endpoint, bucket, &item.key, &absolute.to_string_lossy()];
    store.claim(DOWNLOADS, &identity)
}

/// The record of `path` when `slot` records that an earlier run completed it and it is still
/// the very file that run made (same device, inode, size and modification time). A record
/// that no longer matches is dropped: the file is the user's, and the download goes on as if
/// new.
fn completed_before(slot: &Slot, path: &Path) -> Option<DownloadRecord> {
    let record = slot.load::<DownloadRecord>().filter(|r| r.done)?;
    let same = std::fs::symlink_metadata(path).ok().is_some_and(|m| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            m.is_file()
                && (m.dev(), m.ino()) == record.file_id
                && m.len() == record.size
                && record
                    .done_modified
                    .is_none_or(|t| m.modified().is_ok_and(|now| now == t))
        }
        #[cfg(not(unix))]
        {
            let _ = m;
            false
        }
    });
    if same {
        Some(record)
    } else {
        slot.remove();
        None
    }
}

/// Device and inode of an open file.
fn file_id(file: &std::fs::File) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let m = file.metadata().ok()?;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}

/// Maps an I/O error about `path` to [`Error::Local`].
pub(super) fn local(what: &'static str, path: &Path) -> impl Fn(std::io::Error) -> Error + use<> {
    let path = path.to_owned();
    move |source| Error::Local {
        what,
        path: path.clone(),
        source,
    }
}

pub(super) fn will_not_overwrite(path: &Path) -> Error {
    Error::Local {
        what: "will not overwrite",
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the file exists; pass --overwrite to replace it",
        ),
    }
}

/// Whether `path` may receive a download: nothing there, or a file (or, replaced itself and
/// never written through, a symbolic link) when `overwrite`.
fn check_target(path: &Path, overwrite: bool) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(local("cannot check", path)(e)),
        Ok(m) if m.is_dir() => Err(local("cannot download to", path)(std::io::Error::other(
            "it is a folder",
        ))),
        Ok(m) if m.file_type().is_symlink() && !overwrite => Err(Error::Local {
            what: "will not replace the symbolic link",
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a download never writes through a link; pass --overwrite to replace the link itself",
            ),
        }),
        Ok(_) if !overwrite => Err(will_not_overwrite(path)),
        Ok(_) => Ok(()),
    }
}

/// Creates the folders between `item.dest` and `item.path`, refusing to enter a symbolic link
/// or anything else that is not a real folder: a link planted below the destination (by an
/// unpacked archive, another user, an earlier key) must not carry the download elsewhere.
fn prepare_folders(item: &DownloadItem) -> Result<()> {
    let unsafe_item = || Error::UnsafeKey {
        key: item.key.clone(),
        dest: item.dest.clone(),
    };
    if !matches!(
        item.path.components().next_back(),
        Some(Component::Normal(_))
    ) {
        return Err(unsafe_item());
    }
    let below = folder_of(&item.path)
        .strip_prefix(&item.dest)
        .map_err(|_| unsafe_item())?;
    std::fs::create_dir_all(&item.dest).map_err(local("cannot create the folder", &item.dest))?;
    let mut at = item.dest.clone();
    for component in below.components() {
        let Component::Normal(name) = component else {
            return Err(unsafe_item());
        };
        at.push(name);
        ensure_folder(&at)?;
    }
    Ok(())
}

/// `at` is a real folder afterwards (created if missing), or an error says what is in the way.
fn ensure_folder(at: &Path) -> Result<()> {
    let error = local("cannot create the folder", at);
    // Twice: another download may create the folder between the look and the creation.
    for _ in 0..2 {
        match std::fs::symlink_metadata(at) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Local {
                    what: "refusing to follow the symbolic link",
                    path: at.to_owned(),
                    source: std::io::Error::other(
                        "a download never follows a link below the folder it was sent to",
                    ),
                });
            }
            Ok(_) => {
                return Err(error(std::io::Error::other(
                    "a file of that name is in the way",
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(at) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(error(e)),
            },
            Err(e) => return Err(error(e)),
        }
    }
    Err(error(std::io::Error::other("it keeps changing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(key: &str) -> ObjectEntry {
        ObjectEntry {
            key: key.into(),
            size: 1,
            modified: None,
            etag: None,
        }
    }

    #[test]
    fn keys_stay_inside_the_destination() {
        let dest = Path::new("/tmp/dl");
        assert_eq!(
            confined_path(dest, "a/b c.txt").unwrap(),
            dest.join("a/b c.txt")
        );
        assert_eq!(
            confined_path(dest, "/etc/passwd").unwrap(),
            dest.join("etc/passwd")
        );
        assert_eq!(confined_path(dest, "./a//b").unwrap(), dest.join("a/b"));
        for bad in ["../x", "a/../../x", "a/..", "..", "", "/", "a/\0b"] {
            let err = confined_path(dest, bad).unwrap_err();
            assert!(matches!(err, Error::UnsafeKey { .. }), "{bad:?} gave {err}");
        }
    }

    #[test]
    fn plans_skip_markers_and_refuse_escapes() {
        let (items, errors) = plan_download(
            &[o("p/"), o("p/a"), o("p/d/b"), o("p/../x")],
            "p/",
            Path::new("/d"),
        );
        assert_eq!(
            items.iter().map(|i| i.path.clone()).collect::<Vec<_>>(),
            [PathBuf::from("/d/a"), PathBuf::from("/d/d/b")]
        );
        assert!(items.iter().all(|i| i.dest == Path::new("/d")));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn keys_for_one_local_path_are_reported_not_shared() {
        let dest = Path::new("/d");
        let planned = plan_download_each(
            &[
                o("a/b"),
                o("a//b"),
                o("./a/b"),
                o("a"),
                o("x/y/z"),
                o("x/y"),
                o("q"),
                o("q/r"),
            ],
            "",
            dest,
        );
        /// Planned to a path, or left out for another key (named) and the contested path.
        type Outcome<'a> = (&'a str, Result<&'a Path, (String, PathBuf)>);
        let outcome: Vec<Outcome> = planned
            .iter()
            .map(|(key, r)| {
                let r = match r {
                    Ok(item) => Ok(item.path.as_path()),
                    Err(Error::PathCollision {
                        key: k,
                        other,
                        path,
                    }) => {
                        assert_eq!(k, key);
                        Err((other.clone(), path.clone()))
                    }
                    Err(e) => panic!("{key}: {e}"),
                };
                (key.as_str(), r)
            })
            .collect();
        let clash = |other: &str, path: &str| Err((other.to_owned(), dest.join(path)));
        assert_eq!(
            outcome,
            [
                ("a/b", Ok(dest.join("a/b").as_path())),
                ("a//b", clash("a/b", "a/b")),
                ("./a/b", clash("a/b", "a/b")),
                // `a` would be a file where `a/b` needs a folder.
                ("a", clash("a/b", "a")),
                ("x/y/z", Ok(dest.join("x/y/z").as_path())),
                ("x/y", clash("x/y/z", "x/y")),
                ("q", Ok(dest.join("q").as_path())),
                // `q/r` needs a folder where `q` is a file.
                ("q/r", clash("q", "q")),
            ]
        );
        let Err(e) = &planned[1].1 else { panic!() };
        let message = e.to_string();
        assert!(
            message.contains("\"a//b\"")
                && message.contains("\"a/b\"")
                && message.contains("/d/a/b"),
            "{message}"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Key segments that stress the mapping: dots, separators of other systems, NUL,
        /// unicode, case, and plain names that collide with each other.
        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                Just(".".to_owned()),
                Just("..".to_owned()),
                Just("...".to_owned()),
                Just("a".to_owned()),
                Just("A".to_owned()),
                Just("b".to_owned()),
                Just("a\\b".to_owned()),
                Just("\\".to_owned()),
                Just("C:".to_owned()),
                Just("x\0y".to_owned()),
                Just("é".to_owned()),
                Just("e\u{301}".to_owned()),
                "\\PC{0,6}",
                any::<String>(),
            ]
        }

        fn key() -> impl Strategy<Value = String> {
            prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
        }

        fn check(keys: &[String], prefix: &str) -> std::result::Result<(), TestCaseError> {
            let dest = Path::new("/dl/dest");
            let objects: Vec<ObjectEntry> = keys
                .iter()
                .map(|k| ObjectEntry {
                    key: format!("{prefix}{k}"),
                    size: 0,
                    modified: None,
                    etag: None,
                })
                .collect();
            let planned = plan_download_each(&objects, prefix, dest);
            let files = objects.iter().filter(|o| !o.key.ends_with('/')).count();
            prop_assert_eq!(planned.len(), files, "every file has an outcome");
            let items: Vec<&DownloadItem> = planned
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .collect();
            for item in &items {
                prop_assert!(item.path.starts_with(dest), "{:?}", item.path);
                prop_assert!(item.path != dest);
                let below = item.path.strip_prefix(dest).unwrap();
                prop_assert!(
                    below
                        .components()
                        .all(|c| matches!(c, Component::Normal(n) if !n.is_empty())),
                    "{:?} from {:?}",
                    item.path,
                    item.key
                );
                prop_assert!(!item.path.to_string_lossy().contains('\0'));
            }
            // Never two keys into one path, nor one key's file where another needs a folder.
            for (i, a) in items.iter().enumerate() {
                for b in &items[i + 1..] {
                    let (pa, pb) = (fs_name(&a.path), fs_name(&b.path));
                    prop_assert!(
                        !pa.starts_with(&pb) && !pb.starts_with(&pa),
                        "{:?} and {:?} share {:?} / {:?}",
                        a.key,
                        b.key,
                        a.path,
                        b.path
                    );
                }
            }
            // Whatever was not planned says why, naming its own key.
            for (key, r) in &planned {
                match r {
                    Ok(_) => {}
                    Err(Error::UnsafeKey { .. }) => {}
                    Err(Error::PathCollision { key: k, path, .. }) => {
                        prop_assert_eq!(k, key);
                        prop_assert!(path.starts_with(dest));
                    }
                    Err(e) => prop_assert!(false, "{}: unexpected {}", key, e),
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn keys_map_inside_the_destination_and_never_share_a_path(
                keys in prop::collection::vec(key(), 0..12),
                prefix in prop_oneof![Just(""), Just("p/"), Just("a/")],
            ) {
                check(&keys, prefix)?;
            }

            #[test]
            fn confined_path_never_panics_nor_escapes(relative in any::<String>()) {
                let dest = Path::new("/dl");
                if let Ok(p) = confined_path(dest, &relative) {
                    prop_assert!(p.starts_with(dest) && p != dest);
                    prop_assert!(
                        p.strip_prefix(dest).unwrap().components().all(|c| matches!(c, Component::Normal(_)))
                    );
                }
            }
        }
    }
}
