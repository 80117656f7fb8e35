//! The GETs of a download and the ranges they are received in: each answer's body received on
//! a thread of its own (see `transfer::receive`) into its part of the partial file, a
//! connection that breaks asked again for the rest of its range, the ranges of one connection
//! received in turn, and how far each got noted for a rerun.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH, RANGE};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ByteCounter;
use super::http::s3_answer;
use super::partial::Partial;
use super::ranges::Span;
use super::receive::{BodyEnd, Pending, Sent, Sink};
use crate::error::Error;
use crate::s3::{S3Client, from_answer};

/// Connections opened again for the rest of a download whose connection broke.
const RECONNECTS: u32 = 3;

/// What the ranges of one download share.
pub(super) struct RangeShared<'a> {
    pub(super) bucket: &'a str,
    pub(super) key: &'a str,
    pub(super) target: &'a str,
    /// The object's size, when known.
    pub(super) size: Option<u64>,
    /// The object's ETag and size: what a reconnection asks for again.
    pub(super) version: Option<(&'a str, u64)>,
    pub(super) partial: &'a tokio::sync::Mutex<Partial>,
    pub(super) file: &'a Arc<std::fs::File>,
    /// The error for a write to the partial file that failed.
    pub(super) write_error: &'a (dyn Fn(std::io::Error) -> Error + Sync),
    pub(super) counter: &'a ByteCounter,
    /// The download has a resume record to checkpoint into.
    pub(super) resumable: bool,
    /// Cancelled when a range failed: the others stop.
    pub(super) stop: CancellationToken,
    /// Taken by each write when several ranges write into the file (see [`Sink::serial`]).
    pub(super) serial: Option<Arc<parking_lot::Mutex<()>>>,
}

impl RangeShared<'_> {
    /// Notes that range `index` is on disk up to byte `upto` (see [`Partial::checkpoint`]).
    async fn checkpoint(&self, index: usize, upto: u64) {
        self.partial
            .lock()
            .await
            .checkpoint(self.file, index, upto)
            .await;
    }

    /// The error for a range cut off by the network at byte `have`: what came is made durable
    /// and noted, and the message says how to continue when the download can be.
    async fn cut_off(&self, index: usize, have: u64, message: String) -> Error {
        let mut partial = self.partial.lock().await;
        partial.checkpoint(self.file, index, have).await;
        let resumable = partial.record.is_some();
        Error::S3 {
            operation: format!("download of {}", self.target),
            message: if resumable {
                format!("{message}; run the same download again to continue it")
            } else {
                message
            },
        }
    }
}

/// How a range of a download ended that did not get all its bytes.
pub(super) enum RangeFailed {
    /// Cut off by the network: what came is on disk and noted; the partial file is kept.
    Keep(Error),
    /// The bytes so far are of no use (another version) or cannot be written.
    Lose(Error),
    /// Another range failed; this one stopped and noted how far it got.
    Stopped,
}

/// Whether `headers` answer the GET of `span` of an object of `size` bytes.
pub(super) fn answers_range(headers: &HeaderMap, (start, end): Span, size: u64) -> bool {
    header(headers, CONTENT_RANGE).and_then(parse_content_range)
        == Some((start, end.saturating_sub(1), size))
}

/// Why the rest of a download could not be asked for.
pub(super) enum NoRest {
    /// Not asked: no version to guard the rest with (no ETag or size), or the connection
    /// broke too often already.
    GaveUp,
    /// The object changed, is gone, or the server sent something else than the rest: the
    /// bytes so far are of no use.
    Useless(Error),
    /// The request failed: the bytes so far are still good.
    Failed(Error),
}

/// How a GET of the object ended that brought no body.
pub(super) enum GetFailed {
    /// 412: the object is no longer the version asked for.
    Changed,
    /// 404, NoSuchKey.
    NoSuchKey,
    /// Anything else.
    Other(Error),
}

impl GetFailed {
    /// The error for a GET of the whole object (no conditions) that failed.
    pub(super) fn of_whole(self, bucket: &str, key: &str) -> Error {
        match self {
            Self::NoSuchKey => Error::NoSuchKey {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            },
            Self::Changed => Error::S3 {
                operation: format!("GetObject on s3://{bucket}/{key}"),
                message: "the server answered 412 to a request without conditions".to_owned(),
            },
            Self::Other(e) => e,
        }
    }
}

/// A header's value, when it is text.
pub(super) fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A download that receives nothing for this long checkpoints what it has (see [`CHECKPOINT`]).
pub(super) const STALL: std::time::Duration = std::time::Duration::from_millis(250);

/// How often (in bytes written) a resumable download makes its bytes durable and notes how far
/// it got: a crash costs at most this much again.
const CHECKPOINT: u64 = 8 * 1024 * 1024;

/// `(start, end, total)` of a `Content-Range: bytes START-END/TOTAL` (`end` is the last byte).
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

impl S3Client {
    /// GETs the object through a presigned URL, whole or only `range` of it (and then only
    /// while the object's ETag is the one given), on one of the receiving threads (see
    /// `transfer::receive`); the body waits there. Failures a retry may cure (no connection, a
    /// server error, a throttle) are tried again, three attempts in all, as the SDK would.
    pub(super) async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(Span, &str)>,
    ) -> std::result::Result<Pending, GetFailed> {
        let target = format!("s3://{bucket}/{key}");
        let endpoint = self.endpoint_label();
        // Used at once: the lifetime only has to cover the request's start.
        // Checksum mode: the server then tells the object's checksum (S3 answers it only when
        // asked), and the bytes received are checked against it.
        let link = self
            .presign_with(
                bucket,
                key,
                crate::s3::PresignOp::Get {
                    filename: None,
                    inline: false,
                },
                std::time::Duration::from_secs(15 * 60),
                &[("x-amz-checksum-mode", "ENABLED")],
            )
            .await
            .map_err(GetFailed::Other)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &link.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        }
        if let Some(((start, end), etag)) = range {
            let bad = |e: &dyn std::fmt::Display| {
                GetFailed::Other(Error::Bug(format!("bad range header: {e}")))
            };
            let last = end.checked_sub(1).filter(|&l| l >= start).ok_or_else(|| {
                GetFailed::Other(Error::Bug(format!("an empty range: {start}..{end}")))
            })?;
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={start}-{last}")).map_err(|e| bad(&e))?,
            );
            headers.insert(IF_MATCH, HeaderValue::from_str(etag).map_err(|e| bad(&e))?);
        }
        let receivers = self.receivers();
        let idle = self.timeouts().idle;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, tries) = match receivers
                .get(link.url.to_string(), headers.clone(), idle)
                .await
            {
                Ok(pending) => return Ok(pending),
                Err(Sent::Refused(status, answer_headers, body)) => {
                    let answer = s3_answer(status, &answer_headers, &body);
                    let code = answer.code.as_deref();
                    if status == 412 {
                        return Err(GetFailed::Changed);
                    }
                    if status == 404 && matches!(code, None | Some("NoSuchKey")) {
                        return Err(GetFailed::NoSuchKey);
                    }
                    let transient = status >= 500
                        || status == 429
                        || matches!(code, Some("SlowDown" | "RequestTimeout"));
                    let error = from_answer("GetObject", &target, answer);
                    (error, if transient { 3 } else { 1 })
                }
                Err(Sent::NoThread(detail)) => {
                    return Err(GetFailed::Other(Error::TaskFailed {
                        task: "receiving a download",
                        detail,
                    }));
                }
                Err(Sent::Unreachable(message)) => (
                    Error::Unreachable {
                        endpoint: endpoint.clone(),
                        message,
                    },
                    3,
                ),
                // A silent server costs two timeouts, not three.
                Err(Sent::Silent) => (
                    Error::Unresponsive {
                        endpoint: endpoint.clone(),
                        detail: format!(
                            "GetObject on {target}: no answer within {}",
                            humantime::format_duration(idle)
                        ),
                    },
                    2,
                ),
            };
            if attempt >= tries {
                return Err(GetFailed::Other(error));
            }
            tracing::debug!(%target, attempt, "GetObject failed, trying again: {error}");
            tokio::time::sleep(super::http::backoff(attempt)).await;
        }
    }

    /// Receives the ranges of one connection in turn: the first from its answer, each next
    /// one asked for (guarded by the object's ETag) once the one before is in. Returns how
    /// each ended, by its index; those not reached because a range failed are `Stopped`.
    pub(super) async fn receive_lane(
        &self,
        shared: &RangeShared<'_>,
        (index, span, out): (usize, Span, Pending),
        next: Vec<(usize, Span)>,
        crc32c: bool,
    ) -> Vec<(usize, std::result::Result<(Option<u32>, u64), RangeFailed>)> {
        let mut ends = vec![(
            index,
            self.receive_range(shared, index, span, out, crc32c).await,
        )];
        for (index, span) in next {
            let failed = |e: RangeFailed| {
                shared.stop.cancel();
                Err(e)
            };
            let end = match shared.version {
                _ if shared.stop.is_cancelled() => Err(RangeFailed::Stopped),
                // Only a resumed download queues ranges, and it knows its version.
                None => failed(RangeFailed::Lose(Error::Bug(
                    "a queued range of a download without a known version".to_owned(),
                ))),
                Some((etag, size)) => {
                    let rest = tokio::select! {
                        rest = self.rest_of(shared.bucket, shared.key, span, etag, size) => rest,
                        () = shared.stop.cancelled() => Err(NoRest::GaveUp),
                    };
                    match rest {
                        Ok(out) => self.receive_range(shared, index, span, out, false).await,
                        Err(NoRest::Useless(e)) => failed(RangeFailed::Lose(e)),
                        Err(NoRest::Failed(e)) => failed(RangeFailed::Keep(e)),
                        Err(NoRest::GaveUp) => Err(RangeFailed::Stopped),
                    }
                }
            };
            ends.push((index, end));
        }
        ends
    }

    /// Receives `span` of the object into the file from `out`: a connection that broke (or
    /// closed early) is opened again for the rest of the span, guarded by the object's ETag, a
    /// few times, so that a flaky network costs a moment, not the download. Returns the span's
    /// CRC32C (when asked for and it came in one piece) and the bytes it received. A range
    /// that fails stops the download's other ranges; each notes how far it got.
    async fn receive_range(
        &self,
        shared: &RangeShared<'_>,
        index: usize,
        (start, end): Span,
        out: Pending,
        crc32c: bool,
    ) -> std::result::Result<(Option<u32>, u64), RangeFailed> {
        let result = self
            .receive_range_inner(shared, index, (start, end), out, crc32c)
            .await;
        if result.is_err() {
            shared.stop.cancel();
        }
        result.map(|(crc, have)| (crc, have - start))
    }

    async fn receive_range_inner(
        &self,
        shared: &RangeShared<'_>,
        index: usize,
        (start, end): Span,
        mut out: Pending,
        mut crc32c: bool,
    ) -> std::result::Result<(Option<u32>, u64), RangeFailed> {
        let size = shared.size;
        let idle = self.timeouts().idle;
        let mut have = start;
        let mut reconnects = 0;
        let stopped = |have| async move {
            shared.checkpoint(index, have).await;
            RangeFailed::Stopped
        };
        let crc = loop {
            let (end_of_body, written) = self
                .receive_into(shared, index, out, have, end, crc32c)
                .await;
            have += written;
            // A failure of the network (not of the disk) keeps the partial file when it can be
            // continued, and says so; what was received is on disk and noted first.
            let message = match end_of_body {
                None => return Err(stopped(have).await),
                Some(BodyEnd::Done(crc)) if end == u64::MAX || have == end => break crc,
                Some(BodyEnd::Done(_)) => format!(
                    "connection closed at byte {have} of {}",
                    size.unwrap_or_default()
                ),
                Some(BodyEnd::Disk(e)) => return Err(RangeFailed::Lose((shared.write_error)(e))),
                Some(BodyEnd::Broken(message)) => message,
                Some(BodyEnd::Stalled) => {
                    // A server that went silent is not asked again: that would double the
                    // wait for one that stopped for good.
                    let message = format!(
                        "the server ({}) stopped sending: nothing for {} s at byte {have} of {}; try again",
                        self.endpoint_label(),
                        idle.as_secs_f32(),
                        size.map_or("?".to_owned(), |n| n.to_string()),
                    );
                    return Err(RangeFailed::Keep(
                        shared.cut_off(index, have, message).await,
                    ));
                }
            };
            let rest = self.rest_after_break(
                shared.bucket,
                shared.key,
                (have, end),
                shared.version,
                &mut reconnects,
                &message,
            );
            let rest = tokio::select! {
                rest = rest => rest,
                () = shared.stop.cancelled() => return Err(stopped(have).await),
            };
            out = match rest {
                Ok(again) => again,
                Err(NoRest::GaveUp) => {
                    return Err(RangeFailed::Keep(
                        shared.cut_off(index, have, message).await,
                    ));
                }
                Err(NoRest::Useless(e)) => return Err(RangeFailed::Lose(e)),
                Err(NoRest::Failed(e)) => {
                    shared.checkpoint(index, have).await;
                    return Err(RangeFailed::Keep(e));
                }
            };
            // A body in pieces has no whole to check (the ETag guards the version).
            crc32c = false;
        };
        Ok((crc.filter(|_| crc32c), have))
    }

    /// After the connection of a download broke (`why`) in `span` (at its start): a moment
    /// later, the rest of the span of `version` (ETag and size), a few times per range
    /// (`reconnects` counts them), so that a flaky network costs a moment, not the download.
    pub(super) async fn rest_after_break(
        &self,
        bucket: &str,
        key: &str,
        span: Span,
        version: Option<(&str, u64)>,
        reconnects: &mut u32,
        why: &str,
    ) -> std::result::Result<Pending, NoRest> {
        let Some((etag, size)) = version.filter(|_| *reconnects < RECONNECTS) else {
            return Err(NoRest::GaveUp);
        };
        *reconnects += 1;
        tracing::info!(
            bucket,
            key,
            have = span.0,
            reconnects,
            "the connection broke ({why}); continuing"
        );
        tokio::time::sleep(super::http::backoff(*reconnects)).await;
        self.rest_of(bucket, key, (span.0, span.1.min(size)), etag, size)
            .await
    }

    /// Asks for `span` of `key`, only while it is the version `etag` of `size` bytes: the
    /// answer to go on with, or why not.
    pub(super) async fn rest_of(
        &self,
        bucket: &str,
        key: &str,
        span: Span,
        etag: &str,
        size: u64,
    ) -> std::result::Result<Pending, NoRest> {
        let target = format!("s3://{bucket}/{key}");
        let changed = || Error::S3 {
            operation: format!("download of {target}"),
            message: "the object changed while it was being downloaded; download it again"
                .to_owned(),
        };
        match self.get_object(bucket, key, Some((span, etag))).await {
            Ok(again)
                if header(&again.headers, ETAG) == Some(etag)
                    && answers_range(&again.headers, span, size) =>
            {
                Ok(again)
            }
            Err(GetFailed::Changed) => Err(NoRest::Useless(changed())),
            // Another version, or not the range asked for (a server that ignores Range):
            // nothing to splice.
            Ok(again) if header(&again.headers, ETAG) != Some(etag) => {
                Err(NoRest::Useless(changed()))
            }
            Ok(_) => Err(NoRest::Useless(Error::S3 {
                operation: format!("download of {target}"),
                message: "the connection broke and the server did not send the rest on its own; download it again"
                    .to_owned(),
            })),
            Err(GetFailed::NoSuchKey) => Err(NoRest::Useless(Error::NoSuchKey {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })),
            Err(GetFailed::Other(e)) => Err(NoRest::Failed(e)),
        }
    }

    /// Receives the body of `out` into the file from byte `at` up to byte `until` (on its
    /// receiving thread), as range `index` of the download, making what was written durable
    /// and noted whenever the receiver says so (every [`CHECKPOINT`] bytes, and when the body
    /// pauses) without holding the body up while the disk flushes. Returns how the body ended
    /// (`None`: stopped, another range failed) and the bytes written.
    async fn receive_into(
        &self,
        shared: &RangeShared<'_>,
        index: usize,
        out: Pending,
        at: u64,
        until: u64,
        crc32c: bool,
    ) -> (Option<BodyEnd>, u64) {
        let written = Arc::new(AtomicU64::new(0));
        let checkpoints = shared.resumable.then(|| Arc::new(Notify::new()));
        let mut receiving = out.receive(Sink {
            file: shared.file.clone(),
            at,
            until: until.saturating_sub(at),
            stream: false,
            serial: shared.serial.clone(),
            counter: shared.counter.clone(),
            written: written.clone(),
            checkpoint: checkpoints.clone().map(|n| (n, CHECKPOINT)),
            stall: STALL,
            idle: self.timeouts().idle,
            crc32c,
        });
        let end = loop {
            let checkpoint = async {
                match &checkpoints {
                    Some(notify) => notify.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                end = &mut receiving => break Some(end),
                () = checkpoint => {
                    let upto = at + written.load(Ordering::Acquire);
                    shared.checkpoint(index, upto).await;
                }
                () = shared.stop.cancelled() => break None,
            }
        };
        // Stopped, the receiving task ends at its next step: what it counted is written.
        drop(receiving);
        (end, written.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, 9, 10)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 0, 1)));
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("bytes 5-9/*"), None);
        assert_eq!(parse_content_range("items 5-9/10"), None);
    }
}
