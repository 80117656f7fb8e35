//! Uploads of a stream whose length nobody knows beforehand, like standard input (`put -`).
//!
//! A stream cannot be read twice, so each body is held in the client's body memory (the same
//! 32 MiB budget every upload shares) until the server vouched for it: a retry sends it again
//! from there. A stream that ends within its first part goes in one PUT; a longer one in the
//! parts of a multipart upload, the next part read while the ones before are sent. Such an
//! upload cannot be resumed (what was read is gone with the process): a failure or a cancel
//! aborts it, as for files.

use std::io::Read;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

use super::*;
use crate::transfer::http::HELD_BUDGET;

/// The size of part `number` (1-based) of a stream whose first parts are `first` bytes. Its
/// length is unknown, so the parts grow: each thousand parts twice the size of the thousand
/// before, up to what the client's body memory holds. With 8 MiB first parts, the 10,000
/// parts S3 allows then carry 273 GiB (see [`stream_capacity`]).
fn stream_part_size(number: u64, first: u64) -> u64 {
    let doublings = ((number.saturating_sub(1)) / 1000).min(16) as u32;
    first
        .saturating_mul(1u64 << doublings)
        .min(u64::from(HELD_BUDGET))
}

/// The most a stream with first parts of `first` bytes can carry in [`MAX_PARTS`] parts.
fn stream_capacity(first: u64) -> u64 {
    (1..=MAX_PARTS).map(|n| stream_part_size(n, first)).sum()
}

/// A body of `len` bytes read from the stream that `path` names, held in memory.
fn held_body<'a>(
    client: &'a S3Client,
    held: &'a HeldBody,
    path: &'a Path,
    len: u64,
) -> BodySent<'a> {
    BodySent {
        held: Some(held),
        memory: client.body_memory(),
        path,
        offset: 0,
        len,
    }
}

impl S3Client {
    /// Uploads what `reader` gives, until its end, as the job's key; the job's item names the
    /// stream in messages by its path (`-` for standard input), and its size is not used.
    ///
    /// Conflicts are handled as for files ([`S3Client::upload_file`]): without
    /// [`OnConflict::Overwrite`] the object is only created, never replaced, and a key that
    /// exists is found before the stream is read. Bodies are held in memory until the server
    /// vouched for them (a stream cannot be read again), so a retry resends them; a failure or
    /// a cancel aborts the upload. Not resumable. A stream longer than 10,000 growing parts
    /// hold (273 GiB elsewhere, 296 GiB to a server on this machine) fails, and nothing of it
    /// stays on the server.
    pub async fn upload_stream<R: Read + Send + 'static>(
        &self,
        job: UploadJob,
        reader: R,
    ) -> Result<UploadOutcome> {
        let result = self.upload_stream_inner(&job, reader).await;
        report(&job, &result);
        result
    }

    async fn upload_stream_inner<R: Read + Send + 'static>(
        &self,
        job: &UploadJob,
        reader: R,
    ) -> Result<UploadOutcome> {
        if job.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let skip = |e| skip_if_asked(&job.options, e);
        // Before a byte is read: a stream refused now is still whole for another try.
        if self.key_is_kept(job).await? {
            return skip(job.taken());
        }
        (job.events)(TransferEvent::Started {
            id: job.id,
            total: 0,
        });
        let counter = ByteCounter::new(job.id, job.events.clone());
        // Not cancelled from here: a cancelled multipart upload is aborted, not dropped.
        match self.put_stream(job, reader, &counter).await {
            Ok((bytes, multipart)) => Ok(UploadOutcome::Uploaded { bytes, multipart }),
            Err(e @ (Error::Cancelled | Error::AlreadyExists { .. })) => skip(e),
            Err(e) => Err(e),
        }
    }

    /// Sends the stream in one PUT or in parts; returns its length and whether it went in
    /// parts.
    async fn put_stream<R: Read + Send + 'static>(
        &self,
        job: &UploadJob,
        reader: R,
        counter: &ByteCounter,
    ) -> Result<(u64, bool)> {
        let (bucket, item, options, cancel) = job.parts();
        let first = options
            .min_part_size
            .unwrap_or_else(|| default_part_size(self.is_on_this_machine()))
            .clamp(MIN_PART, u64::from(HELD_BUDGET));
        let crc = !self.md5_only();
        let read = |reader: R, len: u64| {
            HeldBody::read_stream(self.body_memory(), &item.path, reader, len, (!crc, crc))
        };
        let (held, len, reader) = cancellable(cancel, read(reader, first)).await?;
        if len < first {
            // The whole stream: one PUT, as a small file.
            let check = BodyCheck::of_held(&held)?;
            let body = held_body(self, &held, &item.path, len);
            cancellable(cancel, self.send_object(job, check, body, counter)).await?;
            return Ok((len, false));
        }

        let client = self.try_for_bucket(bucket).await?;
        let upload_id = self.create_upload(&client, job, crc).await?;
        let upload_id = upload_id.as_str();

        let send = |number: u64, held: HeldBody, len: u64| async move {
            let part = Part {
                upload_id,
                number: number as i32,
                offset: 0,
                len,
                stored: None,
                crc32c: crc,
            };
            let check = BodyCheck::of_held(&held)?;
            let body = held_body(self, &held, &item.path, len);
            self.send_part(job, part, check, body, counter).await
        };
        let work = async {
            let mut sending = FuturesUnordered::new();
            sending.push(send(1, held, len));
            let mut total = len;
            let mut number = 1;
            // The next part, read while the ones before are sent (its memory waited for).
            let mut reading = Some(Box::pin(read(reader, stream_part_size(2, first))));
            let mut parts = Vec::new();
            loop {
                tokio::select! {
                    got = async { reading.as_mut().expect("guarded").await },
                        if reading.is_some() && sending.len() < options.concurrency.parts() =>
                    {
                        reading = None;
                        let (held, len, reader) = got?;
                        let full = stream_part_size(number + 1, first);
                        if len > 0 {
                            number += 1;
                            if number > MAX_PARTS {
                                return Err(Error::StreamTooLarge {
                                    path: item.path.clone(),
                                    limit: stream_capacity(first),
                                });
                            }
                            total += len;
                            sending.push(send(number, held, len));
                        }
                        if len == full {
                            reading = Some(Box::pin(read(reader, stream_part_size(number + 1, first))));
                        }
                    }
                    Some(sent) = sending.next() => parts.push(sent?),
                    else => break,
                }
            }
            parts.sort_by_key(|(p, _): &(CompletedPart, _)| p.part_number());
            Ok((total, parts))
        };
        let (total, parts) = match cancellable(cancel, work).await {
            Ok(done) => done,
            Err(e) => return Err(self.abort(&client, job, upload_id, None, e).await),
        };
        match self.finish(&client, job, total, upload_id, parts).await {
            Ok(_) => Ok((total, true)),
            // Whatever went wrong, no unfinished upload stays behind to cost storage.
            Err(e) => Err(self.abort(&client, job, upload_id, None, e).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_parts_grow_to_the_held_memory() {
        let mib = 1024 * 1024;
        assert_eq!(stream_part_size(1, 8 * mib), 8 * mib);
        assert_eq!(stream_part_size(1000, 8 * mib), 8 * mib);
        assert_eq!(stream_part_size(1001, 8 * mib), 16 * mib);
        assert_eq!(stream_part_size(2001, 8 * mib), 32 * mib);
        assert_eq!(stream_part_size(MAX_PARTS, 8 * mib), 32 * mib);
        assert_eq!(stream_capacity(8 * mib), 280_000 * mib);
        assert_eq!(stream_capacity(16 * mib), 304_000 * mib);
    }
}
