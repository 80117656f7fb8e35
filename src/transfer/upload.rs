//! Uploads through presigned URLs, each body read from disk once (see `http::HeldBody`).
//!
//! Every request is presigned just before it is sent (so no signature can expire mid-upload)
//! and carries a signed checksum, so the server rejects a body that was corrupted on the way:
//! `x-amz-checksum-crc32c` (MD5 took more than half of the client's CPU, and on a machine the
//! client shares with the server every cycle of it was taken from the transfer), or
//! `Content-MD5` on a server that does not answer the CRC32C back (it ignores it; the body that
//! taught us so is checked by its ETag, or sent again). Small files go in one PUT; larger ones in parts, several in flight, each part a
//! presigned UploadPart. A failed or cancelled multipart upload is aborted: nothing is left
//! behind to cost storage.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::header::HeaderMap;
use std::sync::atomic::Ordering;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::http::{
    Activity, Crc32c, Failure, HeldBody, Md5Sum, Sums, Target, WhenFull, backoff, file_body,
    md5_of_range, opaque_etag, send, sums_of_range,
};
use super::resume::{ResumeNotice, ResumeStore, Slot, UPLOADS, UploadRecord, to_record_time};
use super::{ByteCounter, Concurrency, EventSink, TransferEvent, UploadItem, UploadJob};
use crate::error::{Error, Result};
use crate::s3::{PresignOp, S3Client, sdk_error};

mod earlier;
mod stream;

pub use earlier::UploadJournal;

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (but the last).
const MIN_PART: u64 = 5 * MIB;
/// S3's limit on the number of parts of one upload.
const MAX_PARTS: u64 = 10_000;
/// S3's largest object.
const MAX_OBJECT: u64 = 5 * 1024 * 1024 * MIB;

/// What to do when the destination key already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Replace the object.
    Overwrite,
    /// Keep the object, skip the file.
    Skip,
    /// Keep the object, report the file as failed ([`Error::AlreadyExists`]).
    Fail,
}

/// How uploads are carried out.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Files larger than this go in parts.
    pub multipart_threshold: u64,
    /// Smallest part (S3 requires 5 MiB for all parts but the last). `None`: by where the
    /// server is (see [`default_part_size`]).
    pub min_part_size: Option<u64>,
    /// Files sent at the same time by [`S3Client::upload_many`], and parts of one file.
    pub concurrency: Concurrency,
    /// Retries of one request after a 5xx, a throttle or a dropped connection.
    pub retries: u32,
    /// What to do with existing keys.
    pub on_conflict: OnConflict,
    /// Where interrupted multipart uploads are remembered: with a store, an upload of a file
    /// whose earlier upload to the same key was interrupted (killed, crashed, cut off) sends
    /// only the parts the server does not hold yet; `None` starts every upload afresh.
    pub resume: Option<ResumeStore>,
    /// The journal of the batch these uploads belong to (the CLI's `put` keeps one per
    /// command): each file uploaded is noted in it (path, state, the object's ETag), so that a
    /// rerun of a batch that was interrupted or failed in part knows its own uploads
    /// ([`S3Client::uploaded_earlier`]) from objects that were there before; the caller
    /// forgets it ([`UploadJournal::forget`]) once the whole batch is up.
    pub journal: Option<std::sync::Arc<UploadJournal>>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            multipart_threshold: 32 * MIB,
            min_part_size: None,
            concurrency: Concurrency::DEFAULT,
            retries: 4,
            on_conflict: OnConflict::Fail,
            resume: None,
            journal: None,
        }
    }
}

/// How an upload ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The object was written.
    Uploaded {
        /// Its size.
        bytes: u64,
        /// Whether it went in parts.
        multipart: bool,
    },
    /// The key existed and [`OnConflict::Skip`] kept it.
    Skipped,
}

/// The smallest part of a multipart upload unless the caller says: 16 MiB to a server on this
/// machine, 8 MiB to one elsewhere.
///
/// To this machine the bodies in flight share 32 MiB of memory (see
/// `transfer::http::HeldBody`), so this is also how many parts go at once: two, where the
/// server shares the CPU and two of 16 MiB measured fastest (1 GiB to SeaweedFS on 2 cores, 4
/// rounds: 5.19-5.61 s in 3 of them, against 5.65-6.39 for four of 8 MiB). Elsewhere, where one
/// connection carries less than the link, [`Concurrency::DEFAULT`] parts go at once: four
/// held in that memory, the others streamed from the file.
pub fn default_part_size(server_is_local: bool) -> u64 {
    if server_is_local { 16 * MIB } else { 8 * MIB }
}

/// The part size for a file of `size` bytes: at least `min`, and large enough that the whole
/// file fits in 10,000 parts (a 5 TiB file gets parts of 525 MiB), in whole MiB.
pub fn part_size_for(size: u64, min: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(min).max(MIB)
}

/// How long each request's signature lives: only until the request is sent (each attempt is
/// signed afresh, just before it goes).
const SIGNED_FOR: Duration = Duration::from_secs(900);

/// What identifies the version of a local file: if any of it differs at the end of an upload
/// from the start, the file changed while it was read, and the bytes sent may mix versions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a file replaced by another (editors save by renaming a new file over
    /// the old one) can have the same size and time.
    #[cfg(unix)]
    id: (u64, u64),
}

impl FileState {
    async fn of(path: &Path) -> Result<Self> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|source| Error::Local {
                what: "cannot read",
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            id: {
                use std::os::unix::fs::MetadataExt as _;
                (meta.dev(), meta.ino())
            },
        })
    }

    /// Device and inode, as resume records keep them.
    fn file_id(&self) -> Option<(u64, u64)> {
        #[cfg(unix)]
        return Some(self.id);
        #[cfg(not(unix))]
        None
    }

    /// Whether `path` is no longer this version (or no longer readable).
    async fn changed(&self, path: &Path) -> bool {
        Self::of(path).await.map_or(true, |now| now != *self)
    }
}

fn changed(item: &UploadItem, bucket: &str) -> Error {
    Error::Changed {
        path: item.path.clone(),
        target: format!("s3://{bucket}/{}", item.key),
    }
}

impl S3Client {
    /// Uploads `items` into `bucket`, several at once; one failure never stops the others.
    /// Returns each item's result, in order.
    pub async fn upload_many(
        &self,
        bucket: &str,
        items: &[UploadItem],
        options: &UploadOptions,
        events: EventSink,
        cancel: &CancellationToken,
    ) -> Vec<Result<UploadOutcome>> {
        futures::stream::iter(UploadJob::batch(bucket, items, options, &events, cancel))
            .map(|job| self.upload_file(job))
            .buffered(options.concurrency.files())
            .collect()
            .await
    }

    /// Uploads one file, reporting its events under the job's `id`.
    ///
    /// Without [`OnConflict::Overwrite`], the object is only ever created, never replaced: the
    /// PUT or CompleteMultipartUpload carries `If-None-Match: *`, and a HEAD just before
    /// guards servers that ignore it; losing that race is [`Error::AlreadyExists`] (or
    /// [`UploadOutcome::Skipped`]). A file that changes while it is read fails with
    /// [`Error::Changed`] and leaves nothing behind.
    pub async fn upload_file(&self, job: UploadJob) -> Result<UploadOutcome> {
        let result = self.upload_file_inner(&job).await;
        report(&job, &result);
        result
    }

    /// Whether the job's key exists and its rule keeps what exists: looked at before anything
    /// is sent (the PUT or the completion then guards the race with `If-None-Match: *`).
    async fn key_is_kept(&self, job: &UploadJob) -> Result<bool> {
        Ok(job.options.on_conflict != OnConflict::Overwrite
            && self.head(&job.bucket, &job.item.key).await?.is_some())
    }

    async fn upload_file_inner(&self, job: &UploadJob) -> Result<UploadOutcome> {
        let (bucket, item, options, cancel) = job.parts();
        let (id, events) = (job.id, job.events.clone());
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        // Measure now, not when planned: the file may have changed in between.
        let before = FileState::of(&item.path).await?;
        let size = before.len;
        if size > MAX_OBJECT {
            return Err(Error::TooLarge {
                path: item.path.clone(),
                size,
            });
        }
        let skip = |e| skip_if_asked(options, e);
        if self.key_is_kept(job).await? {
            return skip(job.taken());
        }
        events(TransferEvent::Started { id, total: size });
        let counter = ByteCounter::new(id, events);
        let multipart = size > options.multipart_threshold;
        let result = if multipart {
            self.put_multipart(job, &before, &counter).await
        } else {
            // An interrupted multipart upload of an earlier, larger version of the file would
            // otherwise stay open: it is of no use now.
            let endpoint = self.endpoint_label();
            let identity = [endpoint.as_str(), bucket, item.key.as_str()];
            if let Some(store) = &options.resume
                && store.has_record(UPLOADS, &identity)
                && let Some(slot) = store.claim(UPLOADS, &identity)
                && let Some(record) = slot.load::<UploadRecord>()
            {
                self.abort_upload(&record.bucket, &record.key, &record.upload_id)
                    .await?;
                slot.remove();
                store.notify(ResumeNotice::UploadRestarted {
                    path: item.path.clone(),
                    target: format!("s3://{bucket}/{}", item.key),
                    why: format!("its size went from {} to {size} bytes", record.size),
                });
            }
            let put = self.put_single(job, &before, &counter);
            cancellable(cancel, put).await
        };
        match result {
            Ok(etag) => {
                if let (Some(journal), Some(etag)) = (&options.journal, etag) {
                    self.note_uploaded(journal, bucket, item, &before, &etag);
                }
                Ok(UploadOutcome::Uploaded {
                    bytes: size,
                    multipart,
                })
            }
            Err(e @ (Error::Cancelled | Error::Changed { .. } | Error::AlreadyExists { .. })) => {
                skip(e)
            }
            // A body the server refused (BadDigest, a short body) is most likely a file being
            // rewritten under us: say that, not the symptom.
            Err(e) if before.changed(&item.path).await => {
                tracing::debug!(key = %item.key, "failed on a file that changed: {e}");
                Err(changed(item, bucket))
            }
            Err(e) => Err(e),
        }
    }

    async fn put_single(
        &self,
        job: &UploadJob,
        before: &FileState,
        counter: &ByteCounter,
    ) -> Result<Option<String>> {
        let (bucket, item, _, _) = job.parts();
        let size = before.len;
        let (check, held, _streaming) = self.body_check(&item.path, 0, size, true).await?;
        let sent_body = BodySent {
            held: held.as_ref(),
            memory: self.body_memory(),
            path: &item.path,
            offset: 0,
            len: size,
        };
        // Changing already while it was hashed: nothing worth sending.
        if before.changed(&item.path).await {
            return Err(changed(item, bucket));
        }
        let stored = self.send_object(job, check, sent_body, counter).await?;
        // The server checked the bytes against the sum read before sending; but that read may
        // have caught the file mid-rewrite, and then what is stored is no version of the file.
        if before.changed(&item.path).await {
            if let Some(etag) = &stored {
                let client = self.try_for_bucket(bucket).await?;
                self.remove_if_ours(&client, bucket, &item.key, etag).await;
            }
            return Err(changed(item, bucket));
        }
        Ok(stored)
    }

    /// Sends `sent_body` in one PUT with `check`, tried again as the options say; returns the
    /// ETag (bare) of the object stored, once the server's answer vouched for its bytes.
    async fn send_object(
        &self,
        job: &UploadJob,
        mut check: BodyCheck,
        sent_body: BodySent<'_>,
        counter: &ByteCounter,
    ) -> Result<Option<String>> {
        let (bucket, item, options, cancel) = job.parts();
        let size = sent_body.len;
        let client = self.try_for_bucket(bucket).await?;
        let keep_existing = options.on_conflict != OnConflict::Overwrite;
        let target = Target {
            what: "upload",
            bucket,
            key: &item.key,
            path: &item.path,
        };
        let target = &target;
        // The ETag of the object we stored (bare), once the server's answer vouches for it.
        let stored = loop {
            let sending = check;
            let sent = with_retries(options.retries, cancel, &item.key, |attempt| async move {
                let (content_md5, extra) = sending.headers();
                let extra: Vec<(&str, &str)> =
                    extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let req = self
                    .presign_with(
                        bucket,
                        &item.key,
                        PresignOp::Put {
                            content_md5,
                            // Closes the race between our HEAD and this PUT where the server
                            // supports it.
                            if_none_match: keep_existing,
                            content_type: Some(content_type(&item.key)),
                            content_length: Some(size),
                        },
                        SIGNED_FOR,
                        &extra,
                    )
                    .await
                    .map_err(Failure::Fatal)?;
                let activity = Activity::new();
                let body = sent_body
                    .request_body(counter, &activity)
                    .await
                    .map_err(Failure::Fatal)?;
                let failure = match send(self, &req, body, size, &activity, target).await {
                    Ok(response) => return Ok(Sent::Answer(response.headers().clone())),
                    Err(f) => f,
                };
                counter.sub(activity.sent());
                // The server may have stored the object though its answer was lost: the whole
                // body went out before the connection failed, or a retry of our own
                // If-None-Match PUT finds the key taken (by the attempt before it). Exactly
                // our bytes there: done.
                let maybe_stored = match &failure {
                    Failure::Transient(..) | Failure::Stalled(_) => activity.sent() == size,
                    Failure::Fatal(Error::AlreadyExists { .. }) => attempt > 1,
                    Failure::Fatal(_) => false,
                };
                if maybe_stored {
                    let md5 = match sending {
                        BodyCheck::Md5(m) => m,
                        BodyCheck::Crc32c(_) => sent_body.md5().await.map_err(Failure::Fatal)?,
                    };
                    if self.holds(bucket, &item.key, &md5.hex(), size).await {
                        tracing::debug!(key = %item.key, "the answer was lost, the object is ours");
                        counter.add(size);
                        return Ok(Sent::Held(md5));
                    }
                }
                Err(failure)
            })
            .await?;
            let headers = match sent {
                Sent::Held(md5) => break Some(md5.hex()),
                Sent::Answer(headers) => headers,
            };
            let etag = bare_etag(&headers);
            match self.confirm(&headers, check, sent_body, false).await? {
                Confirmed::Stored(_) => break etag,
                // Stored, but nothing checked the bytes: replaced by a PUT the server checks.
                Confirmed::Resend(md5) => {
                    tracing::debug!(key = %item.key, "the server ignored the checksum; sending again with Content-MD5");
                    if let Some(etag) = &etag {
                        self.remove_if_ours(&client, bucket, &item.key, etag).await;
                    }
                    counter.sub(size);
                    check = BodyCheck::Md5(md5);
                }
                Confirmed::Wrong(why) => {
                    if let Some(etag) = &etag {
                        self.remove_if_ours(&client, bucket, &item.key, etag).await;
                    }
                    return Err(Error::S3 {
                        operation: format!("upload of s3://{bucket}/{}", item.key),
                        message: format!("{why}; the object was removed"),
                    });
                }
            }
        };
        Ok(stored)
    }

    /// The check a body of `len` bytes of `path` from `offset` carries: its CRC32C where the
    /// server may check that (`crc_allowed`, and not known to ignore it), else its MD5; with
    /// the bytes themselves, read in the same pass, when the client's body memory has room
    /// for them (see [`HeldBody`]; then the file is read once, not once more to send it).
    ///
    /// To a server on this machine a body waits for that room: the client shares the CPU
    /// with the server, and two parts held beat more parts read twice. To one elsewhere, a
    /// body the memory has no room for now is streamed from the file instead, while one of
    /// the client's [`STREAMED_BODIES`](super::http::STREAMED_BODIES) places is free: the
    /// third value holds that place until the body is sent (dropped).
    async fn body_check(
        &self,
        path: &Path,
        offset: u64,
        len: u64,
        crc_allowed: bool,
    ) -> Result<(BodyCheck, Option<HeldBody>, Option<OwnedSemaphorePermit>)> {
        let crc = crc_allowed && !self.md5_only();
        let sums = (!crc, crc);
        let memory = self.body_memory();
        let mut held = None;
        let mut slot = None;
        if HeldBody::fits(len) {
            if !self.is_on_this_machine() {
                held = HeldBody::read(memory, path, offset, len, sums, WhenFull::Stream).await?;
                if held.is_none() {
                    slot = memory.stream_slot();
                }
            }
            if held.is_none() && slot.is_none() {
                held = HeldBody::read(memory, path, offset, len, sums, WhenFull::Wait).await?;
            }
        }
        if let Some(held) = held {
            return Ok((BodyCheck::of_held(&held)?, Some(held), None));
        }
        Ok((streamed_check(path, offset, len, crc).await?, None, slot))
    }

    /// Whether this server is known to ignore `x-amz-checksum-crc32c`.
    fn md5_only(&self) -> bool {
        self.upload_checks().load(Ordering::Relaxed) == CHECKS_MD5_ONLY
    }

    /// What the server's answer to a body sent with `check` says about the bytes it stored.
    ///
    /// A server that checked the CRC32C answers it back (S3, SeaweedFS, MinIO, the embedded
    /// store). One that answers nothing ignored it: the client sends Content-MD5 from then on,
    /// and this body is checked by its ETag (the MD5 of what the server got), or, where the
    /// ETag cannot tell, sent again. With `etag_must_match` (parts, whose ETags go into the
    /// completion) an ETag that is not the MD5 sent is refused even after a Content-MD5.
    async fn confirm(
        &self,
        headers: &HeaderMap,
        check: BodyCheck,
        sent: BodySent<'_>,
        etag_must_match: bool,
    ) -> Result<Confirmed> {
        let by_etag = |md5: Md5Sum| match part_etag(headers, &md5) {
            Ok(_) => Confirmed::Stored(Some(md5)),
            Err(why) => Confirmed::Wrong(why),
        };
        match check {
            BodyCheck::Md5(md5) if etag_must_match => Ok(by_etag(md5)),
            BodyCheck::Md5(md5) => Ok(Confirmed::Stored(Some(md5))),
            BodyCheck::Crc32c(crc) => {
                let echo = headers.get(Crc32c::HEADER).and_then(|v| v.to_str().ok());
                match echo {
                    Some(v) if v == crc.base64() => {
                        let _ = self.upload_checks().compare_exchange(
                            CHECKS_UNKNOWN,
                            CHECKS_CRC32C,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        Ok(Confirmed::Stored(etag_md5(headers)))
                    }
                    Some(v) => Ok(Confirmed::Wrong(format!(
                        "the server answered the CRC32C {v:?} for it, not that of the bytes sent ({})",
                        crc.base64()
                    ))),
                    None => {
                        self.upload_checks()
                            .store(CHECKS_MD5_ONLY, Ordering::Relaxed);
                        tracing::debug!(
                            "the server does not answer x-amz-checksum-crc32c; using Content-MD5"
                        );
                        let md5 = sent.md5().await?;
                        let matches =
                            bare_etag(headers).is_some_and(|t| t.eq_ignore_ascii_case(&md5.hex()));
                        if matches {
                            Ok(Confirmed::Stored(Some(md5)))
                        } else if !etag_must_match || opaque_etag(headers) {
                            Ok(Confirmed::Resend(md5))
                        } else {
                            Ok(by_etag(md5))
                        }
                    }
                }
            }
        }
    }

    /// Whether `key` holds exactly the object with this ETag and size.
    async fn holds(&self, bucket: &str, key: &str, etag: &str, size: u64) -> bool {
        match self.head(bucket, key).await {
            Ok(Some(info)) => {
                info.size == size && info.etag.is_some_and(|t| t.eq_ignore_ascii_case(etag))
            }
            _ => false,
        }
    }

    /// Deletes the object at `key` if it is still the one we stored (ETag `etag`). If someone
    /// else wrote the key since, their object stays: deleting it would lose their data to
    /// undo ours. `If-Match` closes the gap between the HEAD and the delete where the server
    /// supports conditional deletes; elsewhere the HEAD is the guard.
    async fn remove_if_ours(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        etag: &str,
    ) {
        match self.head(bucket, key).await {
            Ok(Some(info))
                if info
                    .etag
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(etag)) => {}
            _ => return,
        }
        let deleted = client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .if_match(format!("\"{etag}\""))
            .send()
            .await;
        if let Err(e) = deleted {
            let e = sdk_error(
                "DeleteObject",
                &format!("s3://{bucket}/{key}"),
                &self.endpoint_label(),
                e,
            );
            tracing::warn!(
                key,
                "could not remove the object of a file that changed: {e}"
            );
        }
    }

    async fn put_multipart(
        &self,
        job: &UploadJob,
        before: &FileState,
        counter: &ByteCounter,
    ) -> Result<Option<String>> {
        let (bucket, item, options, cancel) = job.parts();
        let size = before.len;
        let client = self.try_for_bucket(bucket).await?;
        let endpoint = self.endpoint_label();
        // The record of this destination, held while this upload runs (`None`: no resume).
        let slot = options.resume.as_ref().and_then(|r| {
            r.claim(UPLOADS, &[&endpoint, bucket, &item.key])
                .map(|s| (r, s))
        });
        let fingerprint = match &slot {
            Some(_) => Some(fingerprint(&item.path, size).await?),
            None => None,
        };
        let resumed = match (&slot, &fingerprint) {
            (Some((store, slot)), Some(fp)) => {
                self.find_resumable(store, slot, bucket, item, before, fp)
                    .await?
            }
            _ => None,
        };
        let (upload_id, part_size, stored, crc32c) = match resumed {
            Some(r) => r,
            None => {
                // Parts with CRC32C checksums (S3 wants the upload created for them, and their
                // checksums listed at completion), unless this server is known to ignore them.
                let crc32c = !self.md5_only();
                let upload_id = self.create_upload(&client, job, crc32c).await?;
                let min = options
                    .min_part_size
                    .unwrap_or_else(|| default_part_size(self.is_on_this_machine()));
                let part_size = part_size_for(size, min);
                if let (Some((_, slot)), Some(fp)) = (&slot, fingerprint) {
                    slot.save_or_warn(&UploadRecord {
                        endpoint: endpoint.clone(),
                        bucket: bucket.to_owned(),
                        key: item.key.clone(),
                        upload_id: upload_id.clone(),
                        path: absolute(&item.path),
                        size,
                        modified: before.modified.and_then(to_record_time),
                        file_id: before.file_id(),
                        part_size,
                        fingerprint: fp,
                        overwrite: options.on_conflict == OnConflict::Overwrite,
                        started: to_record_time(SystemTime::now()).map_or(0, |t| t.0),
                        crc32c,
                    });
                }
                (upload_id, part_size, HashMap::new(), crc32c)
            }
        };
        let slot = slot.map(|(_, s)| s);
        let slot = slot.as_ref();

        let parts = size.div_ceil(part_size);
        let work = async {
            // The first part that fails for good ends the upload: the parts in flight are
            // dropped and no other starts (collecting every result first tried each part of
            // the file, with its retries, after the server had gone).
            let mut parts: Vec<(CompletedPart, Option<Md5Sum>)> = futures::stream::iter(1..=parts)
                .map(|number| {
                    let offset = (number - 1) * part_size;
                    let len = part_size.min(size - offset);
                    let part = Part {
                        upload_id: &upload_id,
                        number: number as i32,
                        offset,
                        len,
                        stored: stored.get(&(number as i32)),
                        crc32c,
                    };
                    self.put_part(job, part, counter)
                })
                .buffer_unordered(options.concurrency.parts())
                .try_collect()
                .await?;
            parts.sort_by_key(|(p, _)| p.part_number());
            Ok(parts)
        };
        let parts = match cancellable(cancel, work).await {
            Ok(parts) => parts,
            Err(e) => {
                return Err(self.abort(&client, job, &upload_id, slot, e).await);
            }
        };
        // Once sent, Complete is seen through, not cancelled: the server may act on it anyway.
        let completed = self.complete(&client, job, before, &upload_id, parts).await;
        match completed {
            Ok(etag) => {
                if let Some(slot) = slot {
                    slot.remove();
                }
                Ok(etag)
            }
            // Whatever went wrong, no unfinished upload stays behind to cost storage.
            Err(e) => Err(self.abort(&client, job, &upload_id, slot, e).await),
        }
    }

    /// Creates the job's multipart upload (for CRC32C part checksums with `crc32c`); returns
    /// its id.
    async fn create_upload(
        &self,
        client: &aws_sdk_s3::Client,
        job: &UploadJob,
        crc32c: bool,
    ) -> Result<String> {
        let (bucket, key, target) = (&job.bucket, &job.item.key, job.target());
        let created = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type(key))
            .set_checksum_algorithm(crc32c.then_some(ChecksumAlgorithm::Crc32C))
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", &target, &self.endpoint_label(), e))?;
        let id = created.upload_id().ok_or_else(|| Error::S3 {
            operation: format!("CreateMultipartUpload on {target}"),
            message: "no upload id in the answer".into(),
        })?;
        Ok(id.to_owned())
    }

    /// The interrupted upload recorded in `slot`, if it can be continued: its id, part size
    /// and the parts the server holds. One for a file that changed since is aborted (saying
    /// so); one the server no longer has is forgotten.
    async fn find_resumable(
        &self,
        store: &ResumeStore,
        slot: &Slot,
        bucket: &str,
        item: &UploadItem,
        now: &FileState,
        fingerprint: &str,
    ) -> Result<Option<Resumable>> {
        let Some(record) = slot.load::<UploadRecord>() else {
            return Ok(None);
        };
        let target = format!("s3://{bucket}/{}", item.key);
        let why = if record.path != absolute(&item.path) {
            Some(format!("another file: {}", record.path.display()))
        } else if record.size != now.len {
            Some(format!(
                "its size went from {} to {} bytes",
                record.size, now.len
            ))
        } else if record.modified != now.modified.and_then(to_record_time) {
            Some("its modification time differs".to_owned())
        } else if record.file_id != now.file_id() {
            Some("it was replaced by another file".to_owned())
        } else if record.fingerprint != fingerprint {
            Some("its content differs".to_owned())
        } else if !part_size_fits(record.size, record.part_size) {
            Some(format!("unusable part size {}", record.part_size))
        } else {
            None
        };
        if let Some(why) = why {
            // Whatever the old upload holds is of another version: it must never be completed.
            self.abort_upload(&record.bucket, &record.key, &record.upload_id)
                .await?;
            slot.remove();
            store.notify(ResumeNotice::UploadRestarted {
                path: item.path.clone(),
                target,
                why,
            });
            return Ok(None);
        }
        let listed = self
            .list_parts(bucket, &item.key, &record.upload_id)
            .await?;
        let open = match &listed {
            Some(parts) if !parts.is_empty() => true,
            Some(_) => {
                self.upload_is_open(bucket, &item.key, &record.upload_id)
                    .await?
            }
            None => false,
        };
        let Some(listed) = listed.filter(|_| open) else {
            tracing::info!(%target, "the recorded upload is gone from the server; starting over");
            slot.remove();
            return Ok(None);
        };
        let (size, part_size, crc32c) = (record.size, record.part_size, record.crc32c);
        let parts = size.div_ceil(part_size);
        // A part is kept only if it holds exactly this file's bytes for its range: same size,
        // and the server's ETag is the MD5 of the file's bytes there.
        let checks = listed
            .into_iter()
            .filter(|p| (1..=parts).contains(&(p.number as u64)))
            .filter_map(|p| {
                let offset = (p.number as u64 - 1) * part_size;
                let len = part_size.min(size - offset);
                let etag = p.etag.filter(|_| p.size == len)?;
                Some(async move {
                    let sums = sums_of_range(&item.path, offset, len, true, crc32c).await?;
                    let Some(md5) = sums.md5 else {
                        return Ok(None);
                    };
                    let same = etag.trim_matches('"').eq_ignore_ascii_case(&md5.hex());
                    let part = StoredPart {
                        etag,
                        md5,
                        crc32c: sums.crc32c,
                    };
                    Ok::<_, Error>(same.then_some((p.number, part)))
                })
            });
        let stored: HashMap<i32, StoredPart> = futures::stream::iter(checks)
            .buffer_unordered(2)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        store.notify(ResumeNotice::UploadResumed {
            path: item.path.clone(),
            target,
            parts_kept: stored.len(),
            parts: parts as usize,
            bytes_kept: stored
                .keys()
                .map(|&n| part_size.min(size - (n as u64 - 1) * part_size))
                .sum(),
        });
        Ok(Some((
            record.upload_id,
            record.part_size,
            stored,
            record.crc32c,
        )))
    }

    /// Checks that the file did not change and the key is still free, then completes the
    /// upload (with `If-None-Match: *` unless overwriting).
    async fn complete(
        &self,
        client: &aws_sdk_s3::Client,
        job: &UploadJob,
        before: &FileState,
        upload_id: &str,
        parts: Vec<(CompletedPart, Option<Md5Sum>)>,
    ) -> Result<Option<String>> {
        let (bucket, item, _, _) = job.parts();
        // Parts read at different times may come from different versions of the file.
        if before.changed(&item.path).await {
            return Err(changed(item, bucket));
        }
        self.finish(client, job, before.len, upload_id, parts).await
    }

    /// Completes the upload of `size` bytes from `parts` (with `If-None-Match: *` unless
    /// overwriting), once the key is checked to be still free; returns the object's ETag
    /// (bare), when known.
    async fn finish(
        &self,
        client: &aws_sdk_s3::Client,
        job: &UploadJob,
        size: u64,
        upload_id: &str,
        parts: Vec<(CompletedPart, Option<Md5Sum>)>,
    ) -> Result<Option<String>> {
        let (bucket, item, options, _) = job.parts();
        let target = job.target();
        let keep_existing = options.on_conflict != OnConflict::Overwrite;
        // For servers that ignore If-None-Match on CompleteMultipartUpload.
        if keep_existing && self.head(bucket, &item.key).await?.is_some() {
            return Err(Error::AlreadyExists {
                bucket: bucket.to_owned(),
                key: item.key.clone(),
            });
        }
        // The ETag the completed object gets, when every part's MD5 is known.
        let etag = parts
            .iter()
            .map(|(_, m)| *m)
            .collect::<Option<Vec<_>>>()
            .map(|sums| Md5Sum::multipart_etag(&sums));
        let parts: Vec<CompletedPart> = parts.into_iter().map(|(p, _)| p).collect();
        let mut conflicts = 0;
        loop {
            let result = client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(&item.key)
                .upload_id(upload_id)
                .set_if_none_match(keep_existing.then(|| "*".to_owned()))
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                )
                .send()
                .await;
            let e = match result {
                Ok(out) => {
                    let answered = out.e_tag().map(|t| t.trim_matches('"').to_owned());
                    return Ok(answered.or(etag));
                }
                Err(e) => e,
            };
            let status = e.raw_response().map(|r| r.status().as_u16());
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
            // S3 answers 409 when another conditional write to the key was under way at the
            // same moment, and asks for a retry; the retry then meets its outcome.
            if code == "ConditionalRequestConflict" && conflicts < options.retries {
                conflicts += 1;
                tokio::time::sleep(backoff(conflicts)).await;
                continue;
            }
            let error = if status == Some(412) || code == "PreconditionFailed" {
                Error::AlreadyExists {
                    bucket: bucket.to_owned(),
                    key: item.key.clone(),
                }
            } else if code == "InvalidPart" {
                Error::S3 {
                    operation: format!("CompleteMultipartUpload on {target}"),
                    message: format!(
                        "InvalidPart: the server holds no part with the ETag (or checksum) it answered for one of the parts ({})",
                        e.as_service_error()
                            .and_then(|s| s.message())
                            .unwrap_or("no message")
                    ),
                }
            } else {
                sdk_error(
                    "CompleteMultipartUpload",
                    &target,
                    &self.endpoint_label(),
                    e,
                )
            };
            // The server may have completed the upload though its answer was lost (a retry then
            // gets 412 or NoSuchUpload): if the key holds exactly our parts, it worked.
            let held = match &etag {
                Some(etag) => self.holds(bucket, &item.key, etag, size).await,
                None => false,
            };
            if held {
                tracing::debug!(key = %item.key, "Complete's answer was lost, the object is ours");
                return Ok(etag);
            }
            return Err(error);
        }
    }

    /// Aborts an unfinished upload after `cause`; returns the error to report.
    async fn abort(
        &self,
        client: &aws_sdk_s3::Client,
        job: &UploadJob,
        upload_id: &str,
        slot: Option<&Slot>,
        cause: Error,
    ) -> Error {
        let (bucket, key) = (&job.bucket, &job.item.key);
        let target = format!("s3://{bucket}/{key}");
        let aborted = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        let Err(abort) = aborted else {
            if let Some(slot) = slot {
                slot.remove();
            }
            return cause;
        };
        let abort = sdk_error(
            "AbortMultipartUpload",
            &target,
            &self.endpoint_label(),
            abort,
        );
        tracing::warn!(%upload_id, "could not abort the unfinished upload: {abort}");
        // The record stays: the same upload run again resumes it (or, if the file changed by
        // then, aborts it).
        Error::Unaborted {
            target,
            cause: Box::new(cause),
            upload_id: upload_id.to_owned(),
            abort: abort.to_string(),
            resumable: slot.is_some(),
        }
    }

    /// Sends one part; returns it with the MD5 of its bytes when known, once the server
    /// vouched for the bytes it stored (its CRC32C answered back, or its ETag the MD5 sent).
    async fn put_part(
        &self,
        job: &UploadJob,
        part: Part<'_>,
        counter: &ByteCounter,
    ) -> Result<(CompletedPart, Option<Md5Sum>)> {
        let item = &job.item;
        let Part {
            number,
            offset,
            len,
            stored,
            crc32c: crc_upload,
            ..
        } = part;
        if let Some(stored) = stored {
            // Already on the server with exactly these bytes (checked when resuming).
            counter.add(len);
            let part = CompletedPart::builder()
                .part_number(number)
                .e_tag(&stored.etag)
                .set_checksum_crc32_c(stored.crc32c.filter(|_| crc_upload).map(|c| c.base64()))
                .build();
            return Ok((part, Some(stored.md5)));
        }
        let (check, held, _streaming) =
            self.body_check(&item.path, offset, len, crc_upload).await?;
        let sent_body = BodySent {
            held: held.as_ref(),
            memory: self.body_memory(),
            path: &item.path,
            offset,
            len,
        };
        self.send_part(job, part, check, sent_body, counter).await
    }

    /// Sends `sent_body` as `part` with `check`, tried again as the options say; returns it
    /// with the MD5 of its bytes when known, once the server vouched for the bytes it stored.
    async fn send_part(
        &self,
        job: &UploadJob,
        part: Part<'_>,
        mut check: BodyCheck,
        sent_body: BodySent<'_>,
        counter: &ByteCounter,
    ) -> Result<(CompletedPart, Option<Md5Sum>)> {
        let (bucket, item, options, cancel) = job.parts();
        let Part {
            upload_id,
            number,
            len,
            crc32c: crc_upload,
            ..
        } = part;
        let key = item.key.as_str();
        let target = Target {
            what: "upload part",
            bucket,
            key,
            path: &item.path,
        };
        let abandoned = |why: String| Error::S3 {
            operation: format!("upload of part {number} of s3://{bucket}/{key}"),
            message: format!("{why}; the upload was abandoned"),
        };
        loop {
            let sending = check;
            let target = &target;
            let headers = with_retries(options.retries, cancel, key, |_| async move {
                let (content_md5, extra) = sending.headers();
                let extra: Vec<(&str, &str)> =
                    extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let req = self
                    .presign_with(
                        bucket,
                        key,
                        PresignOp::UploadPart {
                            upload_id: upload_id.to_owned(),
                            part_number: number,
                            content_md5,
                            content_length: len,
                        },
                        SIGNED_FOR,
                        &extra,
                    )
                    .await
                    .map_err(Failure::Fatal)?;
                let activity = Activity::new();
                let body = sent_body
                    .request_body(counter, &activity)
                    .await
                    .map_err(Failure::Fatal)?;
                match send(self, &req, body, len, &activity, target).await {
                    Ok(resp) => Ok(resp.headers().clone()),
                    Err(e) => {
                        counter.sub(activity.sent());
                        Err(e)
                    }
                }
            })
            .await?;
            let Some(etag) = headers
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .filter(|t| !t.trim_matches('"').is_empty())
                .map(str::to_owned)
            else {
                return Err(abandoned(
                    "the server's answer has no ETag, so the part cannot be checked".to_owned(),
                ));
            };
            match self.confirm(&headers, check, sent_body, true).await? {
                Confirmed::Stored(md5) => {
                    let crc = match check {
                        BodyCheck::Crc32c(c) if crc_upload => Some(c.base64()),
                        _ => None,
                    };
                    let part = CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .set_checksum_crc32_c(crc)
                        .build();
                    return Ok((part, md5));
                }
                // Sent again under the same number: the new part replaces the unchecked one.
                Confirmed::Resend(md5) => {
                    counter.sub(len);
                    check = BodyCheck::Md5(md5);
                }
                Confirmed::Wrong(why) => return Err(abandoned(why)),
            }
        }
    }
}

/// Tells the job's events how it ended.
fn report(job: &UploadJob, result: &Result<UploadOutcome>) {
    let (id, events) = (job.id, &job.events);
    match result {
        Ok(UploadOutcome::Uploaded { .. }) => events(TransferEvent::Finished { id }),
        Ok(UploadOutcome::Skipped) => events(TransferEvent::Skipped { id }),
        Err(e) => {
            tracing::info!(key = %job.item.key, "upload failed: {e}");
            events(TransferEvent::failed(id, e));
        }
    }
}

/// `e`, or a skip where it is a taken key and the options say to skip those.
fn skip_if_asked(options: &UploadOptions, e: Error) -> Result<UploadOutcome> {
    match e {
        Error::AlreadyExists { .. } if options.on_conflict == OnConflict::Skip => {
            Ok(UploadOutcome::Skipped)
        }
        e => Err(e),
    }
}

/// What [`S3Client::upload_checks`] knows of a server: nothing yet, that it checks
/// `x-amz-checksum-crc32c`, or that it ignores it (then bodies carry `Content-MD5`).
const CHECKS_UNKNOWN: u8 = 0;
const CHECKS_CRC32C: u8 = 1;
const CHECKS_MD5_ONLY: u8 = 2;

/// The integrity check a request body carries, signed into its URL: the server refuses a
/// body that does not match.
#[derive(Debug, Clone, Copy)]
enum BodyCheck {
    /// `x-amz-checksum-crc32c`: a fraction of MD5's CPU.
    Crc32c(Crc32c),
    /// `Content-MD5`, for servers that ignore the other.
    Md5(Md5Sum),
}

impl BodyCheck {
    /// The check of a body held in memory: the sum read with its bytes (its CRC32C when that
    /// was asked for, else its MD5).
    fn of_held(held: &HeldBody) -> Result<Self> {
        match held.sums() {
            Sums {
                crc32c: Some(c), ..
            } => Ok(Self::Crc32c(c)),
            Sums { md5: Some(m), .. } => Ok(Self::Md5(m)),
            Sums { .. } => Err(Error::Bug("a held body without its sum".into())),
        }
    }

    /// `Content-MD5`, and the other headers to sign.
    fn headers(&self) -> (Option<String>, Vec<(&'static str, String)>) {
        match self {
            Self::Md5(m) => (Some(m.base64()), Vec::new()),
            Self::Crc32c(c) => (None, vec![(Crc32c::HEADER, c.base64())]),
        }
    }
}

/// How a request's answer ended, when it did not fail.
enum Sent {
    /// The server answered, with these headers.
    Answer(HeaderMap),
    /// The answer was lost, but the key holds exactly our bytes (this MD5).
    Held(Md5Sum),
}

/// What an answer says about the stored bytes (see [`S3Client::confirm`]).
enum Confirmed {
    /// They are the bytes sent (their MD5, when known).
    Stored(Option<Md5Sum>),
    /// Nothing checked them: send again with this `Content-MD5`.
    Resend(Md5Sum),
    /// They are not the bytes sent: why.
    Wrong(String),
}

/// The check of a body streamed from the file, read for it now (see `S3Client::body_check`).
async fn streamed_check(path: &Path, offset: u64, len: u64, crc: bool) -> Result<BodyCheck> {
    if crc {
        let sums = sums_of_range(path, offset, len, false, true).await?;
        if let Some(c) = sums.crc32c {
            return Ok(BodyCheck::Crc32c(c));
        }
    }
    Ok(BodyCheck::Md5(md5_of_range(path, offset, len).await?))
}

/// What a request body is: `len` bytes of `path` from `offset`, held in memory or streamed.
#[derive(Clone, Copy)]
struct BodySent<'a> {
    held: Option<&'a HeldBody>,
    /// Where a streamed body's read buffers come from (see [`file_body`]).
    memory: &'a std::sync::Arc<crate::transfer::BodyMemory>,
    path: &'a Path,
    offset: u64,
    len: u64,
}

impl BodySent<'_> {
    /// A request body of these bytes (from memory, or streamed from the file afresh),
    /// counting them as they go.
    async fn request_body(
        &self,
        counter: &ByteCounter,
        activity: &std::sync::Arc<Activity>,
    ) -> Result<reqwest::Body> {
        match self.held {
            Some(h) => Ok(h.body(counter.clone(), activity.clone())),
            None => {
                file_body(
                    self.path,
                    self.offset,
                    self.len,
                    counter.clone(),
                    activity.clone(),
                    std::sync::Arc::clone(self.memory),
                )
                .await
            }
        }
    }

    /// Its MD5: from memory when it was held, else from the file, read again.
    async fn md5(&self) -> Result<Md5Sum> {
        match self.held {
            Some(h) => h.md5().await,
            None => md5_of_range(self.path, self.offset, self.len).await,
        }
    }
}

/// The ETag of an answer without its quotes.
fn bare_etag(headers: &HeaderMap) -> Option<String> {
    headers
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
}

/// The MD5 an answer's ETag is (S3 ETags of bodies stored in one piece), when it is one.
fn etag_md5(headers: &HeaderMap) -> Option<Md5Sum> {
    if opaque_etag(headers) {
        return None;
    }
    let hex = bare_etag(headers)?;
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Md5Sum(out))
}

/// Where one part lies in the file, and which upload it belongs to.
struct Part<'a> {
    upload_id: &'a str,
    number: i32,
    offset: u64,
    len: u64,
    /// What the server already holds of this part (a resumed upload).
    stored: Option<&'a StoredPart>,
    /// Whether the upload was created for CRC32C part checksums.
    crc32c: bool,
}

/// A part the server holds of an interrupted upload, checked against the file.
struct StoredPart {
    etag: String,
    md5: Md5Sum,
    /// Its CRC32C, when the upload is one with part checksums.
    crc32c: Option<Crc32c>,
}

/// An interrupted upload to continue: its id, part size, the parts already stored (by part
/// number), and whether it takes CRC32C part checksums.
type Resumable = (String, u64, HashMap<i32, StoredPart>, bool);

/// Whether `part_size` is one S3 accepts for a file of `size` bytes.
fn part_size_fits(size: u64, part_size: u64) -> bool {
    part_size >= MIN_PART && size.div_ceil(part_size) <= MAX_PARTS
}

/// `path` made absolute (so that the same file named from another folder is recognised).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A cheap fingerprint of a file's content: the MD5s of its first and last MiB. Together
/// with size, time and inode it tells whether a file is still the one an upload started with.
async fn fingerprint(path: &Path, size: u64) -> Result<String> {
    let head = md5_of_range(path, 0, size.min(MIB)).await?;
    let tail_len = size.min(MIB);
    let tail = md5_of_range(path, size - tail_len, tail_len).await?;
    Ok(format!("{}:{}", head.hex(), tail.hex()))
}

/// The ETag of a part as the server answered it, once it is known to be the MD5 of the bytes
/// sent: a part stored otherwise than sent must never become part of an object.
fn part_etag(headers: &reqwest::header::HeaderMap, md5: &Md5Sum) -> Result<String, String> {
    let etag = headers
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.trim_matches('"').is_empty())
        .ok_or("the server's answer has no ETag, so the part cannot be checked")?;
    let bare = etag.trim_matches('"');
    if bare.eq_ignore_ascii_case(&md5.hex()) || opaque_etag(headers) {
        Ok(etag.to_owned())
    } else {
        Err(format!(
            "the server answered ETag {bare:?} for it, not the MD5 of the bytes sent ({})",
            md5.hex()
        ))
    }
}

/// The content type a browser needs to show the object rather than download a blob: from the
/// key's extension, `application/octet-stream` when unknown.
fn content_type(key: &str) -> String {
    mime_guess2::from_path(key)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

/// Runs `fut` unless `cancel` fires first.
async fn cancellable<T>(
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = fut => r,
        () = cancel.cancelled() => Err(Error::Cancelled),
    }
}

/// Repeats `attempt` (given its number, from 1) after transient failures, with backoff, up
/// to `retries` more times; a stall is retried once only.
async fn with_retries<T, F, Fut>(
    retries: u32,
    cancel: &CancellationToken,
    key: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut tries = 0;
    let mut stalls = 0;
    loop {
        tries += 1;
        let why = match attempt(tries).await {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Stalled(e)) => {
                stalls += 1;
                if stalls > 1 || tries > retries {
                    return Err(e);
                }
                e.to_string()
            }
            Err(Failure::Transient(last, answer)) if tries > retries => {
                return Err(Error::RetriesExhausted {
                    operation: format!("upload of {key}"),
                    attempts: tries,
                    last,
                    answer,
                });
            }
            Err(Failure::Transient(why, _)) => why,
        };
        tracing::debug!(key, tries, "retrying after: {why}");
        tokio::select! {
            () = tokio::time::sleep(backoff(tries)) => {}
            () = cancel.cancelled() => return Err(Error::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::S3Answer;

    /// Retries that run out keep the server's last answer (its status, code and request id),
    /// not just its words.
    #[tokio::test]
    async fn retries_that_run_out_keep_the_last_answer() {
        let answer = S3Answer {
            status: Some(503),
            code: Some("SlowDown".into()),
            request_id: Some("REQ123".into()),
            ..Default::default()
        };
        let result: Result<()> = with_retries(1, &CancellationToken::new(), "k", |_| {
            let answer = answer.clone();
            async move {
                Err(Failure::Transient(
                    answer.describe(true),
                    Some(Box::new(answer)),
                ))
            }
        })
        .await;
        let e = result.unwrap_err();
        assert!(
            matches!(e, Error::RetriesExhausted { attempts: 2, .. }),
            "{e:?}"
        );
        assert_eq!(e.request_id(), Some("REQ123"));
        assert_eq!(e.s3_answer().and_then(|a| a.status), Some(503));
        assert!(e.to_string().contains("gave up after 2 attempts"), "{e}");
    }

    #[test]
    fn content_types_from_extensions() {
        assert_eq!(content_type("a/photo.JPG"), "image/jpeg");
        assert_eq!(content_type("notes.txt"), "text/plain");
        assert_eq!(content_type("no-extension"), "application/octet-stream");
    }

    #[test]
    fn part_etags_must_be_the_md5_sent() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let md5 = Md5Sum([0x11; 16]);
        let with = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        let right = format!("\"{}\"", md5.hex());
        assert_eq!(
            part_etag(&with(&[("etag", &right)]), &md5),
            Ok(right.clone())
        );
        let upper = right.to_ascii_uppercase();
        assert!(part_etag(&with(&[("etag", &upper)]), &md5).is_ok());
        assert!(part_etag(&with(&[]), &md5).unwrap_err().contains("no ETag"));
        assert!(part_etag(&with(&[("etag", "\"\"")]), &md5).is_err());
        let wrong = with(&[("etag", "\"0123456789abcdef0123456789abcdef\"")]);
        assert!(part_etag(&wrong, &md5).unwrap_err().contains(&md5.hex()));
        // SSE-KMS ETags are not MD5s: nothing to compare, the server checked Content-MD5.
        let kms = with(&[
            ("etag", "\"0123456789abcdef0123456789abcdef\""),
            ("x-amz-server-side-encryption", "aws:kms"),
        ]);
        assert!(part_etag(&kms, &md5).is_ok());
    }

    #[tokio::test]
    async fn a_stall_is_retried_once_only() {
        let cancel = CancellationToken::new();
        let mut attempts = Vec::new();
        let r: Result<()> = with_retries(4, &cancel, "k", |n| {
            attempts.push(n);
            async {
                Err(Failure::Stalled(Error::Unresponsive {
                    endpoint: "e".into(),
                    detail: "d".into(),
                }))
            }
        })
        .await;
        assert!(matches!(r, Err(Error::Unresponsive { .. })), "{r:?}");
        assert_eq!(attempts, [1, 2]);
    }

    /// Two default parts fill the memory bodies share to this machine; elsewhere, more go at
    /// once than that memory holds (the rest are streamed from the file).
    #[test]
    fn default_parts_and_the_held_memory() {
        let budget = u64::from(crate::transfer::http::HELD_BUDGET);
        assert_eq!(default_part_size(true), 16 * MIB);
        assert_eq!(budget / default_part_size(true), 2);
        let remote = Concurrency::DEFAULT.parts() as u64;
        assert!(budget / default_part_size(false) < remote);
        assert!(default_part_size(false) >= 5 * MIB, "S3's smallest part");
    }

    #[test]
    fn parts_fit_in_ten_thousand() {
        assert_eq!(part_size_for(100 * MIB, 16 * MIB), 16 * MIB);
        let five_tib = 5 * 1024 * 1024 * MIB;
        let part = part_size_for(five_tib, 16 * MIB);
        assert!(five_tib.div_ceil(part) <= MAX_PARTS, "{part}");
        assert_eq!(part % MIB, 0);
        let six_gib = 6 * 1024 * MIB;
        assert_eq!(six_gib.div_ceil(part_size_for(six_gib, 5 * MIB)), 1229);
    }
}
