//! Uploads through presigned URLs, streamed from disk.
//!
//! Every request is presigned just before it is sent (so no signature can expire mid-upload)
//! and carries a signed `Content-MD5`, so the server rejects a body that was corrupted on the
//! way. Small files go in one PUT; larger ones in parts, several in flight, each part a
//! presigned UploadPart. A failed or cancelled multipart upload is aborted: nothing is left
//! behind to cost storage.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::http::{Failure, backoff, file_body, md5_of_range, send};
use super::{ByteCounter, EventSink, TransferEvent, UploadItem};
use crate::error::{Error, Result};
use crate::s3::{S3Client, sdk_error};

const MIB: u64 = 1024 * 1024;
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
    /// Smallest part (S3 requires 5 MiB for all parts but the last).
    pub min_part_size: u64,
    /// Parts of one file sent at the same time.
    pub parts_in_flight: usize,
    /// Files sent at the same time by [`S3Client::upload_many`].
    pub files_in_flight: usize,
    /// Retries of one request after a 5xx, a throttle or a dropped connection.
    pub retries: u32,
    /// What to do with existing keys.
    pub on_conflict: OnConflict,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            multipart_threshold: 32 * MIB,
            min_part_size: 16 * MIB,
            parts_in_flight: 4,
            files_in_flight: 8,
            retries: 4,
            on_conflict: OnConflict::Fail,
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

/// The part size for a file of `size` bytes: at least `min`, and large enough that the whole
/// file fits in 10,000 parts (a 5 TiB file gets parts of 525 MiB), in whole MiB.
pub fn part_size_for(size: u64, min: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(min).max(MIB)
}

/// How long each request's signature lives: only until the request is sent.
fn signing(duration_secs: u64) -> Result<PresigningConfig> {
    PresigningConfig::expires_in(Duration::from_secs(duration_secs))
        .map_err(|e| Error::Config(e.to_string()))
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
        futures::stream::iter(items.iter().enumerate())
            .map(|(id, item)| self.upload_file(bucket, item, id, options, events.clone(), cancel))
            .buffered(options.files_in_flight.max(1))
            .collect()
            .await
    }

    /// Uploads one file, reporting its events under `id`.
    pub async fn upload_file(
        &self,
        bucket: &str,
        item: &UploadItem,
        id: usize,
        options: &UploadOptions,
        events: EventSink,
        cancel: &CancellationToken,
    ) -> Result<UploadOutcome> {
        let result = self
            .upload_file_inner(bucket, item, id, options, events.clone(), cancel)
            .await;
        match &result {
            Ok(UploadOutcome::Uploaded { .. }) => events(TransferEvent::Finished { id }),
            Ok(UploadOutcome::Skipped) => events(TransferEvent::Skipped { id }),
            Err(e) => {
                tracing::info!(key = %item.key, "upload failed: {e}");
                events(TransferEvent::failed(id, e));
            }
        }
        result
    }

    async fn upload_file_inner(
        &self,
        bucket: &str,
        item: &UploadItem,
        id: usize,
        options: &UploadOptions,
        events: EventSink,
        cancel: &CancellationToken,
    ) -> Result<UploadOutcome> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        // Measure now, not when planned: the file may have changed in between.
        let size = tokio::fs::metadata(&item.path)
            .await
            .map_err(|source| Error::Local {
                what: "cannot read",
                path: item.path.clone(),
                source,
            })?
            .len();
        if size > MAX_OBJECT {
            return Err(Error::TooLarge {
                path: item.path.clone(),
                size,
            });
        }
        if options.on_conflict != OnConflict::Overwrite
            && self.head(bucket, &item.key).await?.is_some()
        {
            return match options.on_conflict {
                OnConflict::Skip => Ok(UploadOutcome::Skipped),
                _ => Err(Error::AlreadyExists {
                    bucket: bucket.to_owned(),
                    key: item.key.clone(),
                }),
            };
        }
        events(TransferEvent::Started { id, total: size });
        let counter = ByteCounter::new(id, events);
        if size <= options.multipart_threshold {
            let put = self.put_single(bucket, item, size, options, &counter, cancel);
            match cancellable(cancel, put).await {
                Err(Error::AlreadyExists { .. }) if options.on_conflict == OnConflict::Skip => {
                    Ok(UploadOutcome::Skipped)
                }
                other => other.map(|()| UploadOutcome::Uploaded {
                    bytes: size,
                    multipart: false,
                }),
            }
        } else {
            self.put_multipart(bucket, item, size, options, &counter, cancel)
                .await?;
            Ok(UploadOutcome::Uploaded {
                bytes: size,
                multipart: true,
            })
        }
    }

    async fn put_single(
        &self,
        bucket: &str,
        item: &UploadItem,
        size: u64,
        options: &UploadOptions,
        counter: &ByteCounter,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let md5 = md5_of_range(&item.path, 0, size).await?;
        let client = self.for_bucket(bucket).await;
        let keep_existing = options.on_conflict != OnConflict::Overwrite;
        with_retries(options.retries, cancel, &item.key, || async {
            let req = client
                .put_object()
                .bucket(bucket)
                .key(&item.key)
                .content_length(size as i64)
                .content_md5(&md5)
                .content_type(content_type(&item.key))
                // Closes the race between our HEAD and this PUT where the server supports it.
                .set_if_none_match(keep_existing.then(|| "*".to_owned()))
                .presigned(signing(900).map_err(Failure::Fatal)?)
                .await
                .map_err(|e| {
                    Failure::Fatal(sdk_error(
                        "presign PutObject",
                        &item.key,
                        &self.endpoint_label(),
                        e,
                    ))
                })?;
            let sent = Arc::new(AtomicU64::new(0));
            let body = file_body(&item.path, 0, size, counter.clone(), sent.clone())
                .await
                .map_err(Failure::Fatal)?;
            let result = send(self.http(), &req, body, size, "upload", bucket, &item.key).await;
            if result.is_err() {
                counter.sub(sent.load(std::sync::atomic::Ordering::Relaxed));
            }
            result.map(drop)
        })
        .await
    }

    async fn put_multipart(
        &self,
        bucket: &str,
        item: &UploadItem,
        size: u64,
        options: &UploadOptions,
        counter: &ByteCounter,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let client = self.for_bucket(bucket).await;
        let target = format!("s3://{bucket}/{}", item.key);
        let created = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(&item.key)
            .content_type(content_type(&item.key))
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", &target, &self.endpoint_label(), e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Error::S3 {
                operation: format!("CreateMultipartUpload on {target}"),
                message: "no upload id in the answer".into(),
            })?
            .to_owned();

        let part_size = part_size_for(size, options.min_part_size);
        let parts = size.div_ceil(part_size);
        let work = async {
            let done: Vec<Result<CompletedPart>> = futures::stream::iter(1..=parts)
                .map(|number| {
                    let offset = (number - 1) * part_size;
                    let len = part_size.min(size - offset);
                    self.put_part(
                        &client,
                        bucket,
                        &item.key,
                        &upload_id,
                        number as i32,
                        &item.path,
                        offset,
                        len,
                        options,
                        counter,
                        cancel,
                    )
                })
                .buffer_unordered(options.parts_in_flight.max(1))
                .collect()
                .await;
            let mut parts = done.into_iter().collect::<Result<Vec<_>>>()?;
            parts.sort_by_key(|p| p.part_number());
            if options.on_conflict != OnConflict::Overwrite
                && self.head(bucket, &item.key).await?.is_some()
            {
                return Err(Error::AlreadyExists {
                    bucket: bucket.to_owned(),
                    key: item.key.clone(),
                });
            }
            Ok(parts)
        };
        let parts = match cancellable(cancel, work).await {
            Ok(parts) => parts,
            Err(e) => {
                let aborted = client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(&item.key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(abort) = aborted {
                    let abort = sdk_error(
                        "AbortMultipartUpload",
                        &target,
                        &self.endpoint_label(),
                        abort,
                    );
                    tracing::warn!(%upload_id, "could not abort the unfinished upload: {abort}");
                    let cause = match e {
                        Error::S3 { message, .. } => message,
                        other => other.to_string(),
                    };
                    return Err(Error::S3 {
                        operation: format!("upload of {target}"),
                        message: format!(
                            "{cause}; the unfinished multipart upload {upload_id} could not be aborted ({abort}) and may keep costing storage until a lifecycle rule removes it"
                        ),
                    });
                }
                return Err(e);
            }
        };
        client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&item.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    "CompleteMultipartUpload",
                    &target,
                    &self.endpoint_label(),
                    e,
                )
            })?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_part(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: i32,
        path: &std::path::Path,
        offset: u64,
        len: u64,
        options: &UploadOptions,
        counter: &ByteCounter,
        cancel: &CancellationToken,
    ) -> Result<CompletedPart> {
        let md5 = md5_of_range(path, offset, len).await?;
        let etag = with_retries(options.retries, cancel, key, || async {
            let req = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(len as i64)
                .content_md5(&md5)
                .presigned(signing(900).map_err(Failure::Fatal)?)
                .await
                .map_err(|e| {
                    Failure::Fatal(sdk_error(
                        "presign UploadPart",
                        key,
                        &self.endpoint_label(),
                        e,
                    ))
                })?;
            let sent = Arc::new(AtomicU64::new(0));
            let body = file_body(path, offset, len, counter.clone(), sent.clone())
                .await
                .map_err(Failure::Fatal)?;
            match send(self.http(), &req, body, len, "upload part", bucket, key).await {
                Ok(resp) => Ok(resp
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()),
                Err(e) => {
                    counter.sub(sent.load(std::sync::atomic::Ordering::Relaxed));
                    Err(e)
                }
            }
        })
        .await?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .e_tag(etag)
            .build())
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

/// Repeats `attempt` after transient failures, with backoff, up to `retries` more times.
async fn with_retries<T, F, Fut>(
    retries: u32,
    cancel: &CancellationToken,
    key: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(why)) if tries > retries => {
                return Err(Error::S3 {
                    operation: format!("upload of {key}"),
                    message: format!("gave up after {tries} attempts; last error: {why}"),
                });
            }
            Err(Failure::Transient(why)) => {
                tracing::debug!(key, tries, "retrying after: {why}");
                tokio::select! {
                    () = tokio::time::sleep(backoff(tries)) => {}
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_from_extensions() {
        assert_eq!(content_type("a/photo.JPG"), "image/jpeg");
        assert_eq!(content_type("notes.txt"), "text/plain");
        assert_eq!(content_type("no-extension"), "application/octet-stream");
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
