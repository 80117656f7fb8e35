//! A thin layer over `s3s_fs::FileSystem` that fixes what the embedded store gets wrong.
//!
//! s3s-fs 0.14.1 checks `Content-MD5` on PutObject only *after* it has committed the bytes, so a
//! corrupted upload is answered with `BadDigest` yet stored; on UploadPart it ignores
//! `Content-MD5` altogether, and it has no ListMultipartUploads. Here the body is hashed while it
//! streams in and the stream fails *before its end* on a mismatch, so the file system never
//! renames its temporary file into place: a bad body is refused and nothing is stored.
//!
//! s3s-fs checks `If-None-Match: *` when a PutObject or CompleteMultipartUpload begins, but
//! writes the object only at its end: two creates of one key that overlap both pass the check,
//! and the later one silently replaces the earlier. Here the writes of one key take turns, so
//! the check and the write are one step, as on S3: the first create wins, the other gets 412.
//! A read that raced a write of its key is made again, so an object's bytes and its ETag are
//! always seen together.
//!
//! s3s-fs keeps folders as directories, so a folder emptied by deletes stayed listed (on S3 it
//! disappears: a folder is only the keys below it). Here a folder made as a `prefix/` marker
//! object ("New folder") is recorded beside the buckets, and deleting an object removes the
//! directories it leaves empty, up to the first one that holds a marker, as on S3.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use futures::Stream;
use md5::{Digest as _, Md5};
use s3s::dto::*;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3, S3Request, S3Response, S3Result, StdError, s3_error};

use super::body::{FileBody, range_start};
use super::conditions::{Conditions, Verdict, range_applies};
use super::listing;
use super::multipart::{Completion, PartSums, hex, identity, md5_of, part_path};

/// The embedded store's S3 implementation: s3s-fs plus integrity checks and upload listing.
pub struct VerifyingFs {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
    writes: KeyLocks,
    /// The MD5 of each part stored, for completing uploads without reading them again.
    part_sums: Arc<PartSums>,
    /// Writes of one part of one upload take turns, so its noted MD5 is that of its file.
    part_writes: KeyLocks,
}

/// Which file a path names (device and inode): a rename into place changes it.
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| identity(&m))
}

/// The identity (device and inode) of an open file.
fn file_identity_of(file: &std::fs::File) -> Option<(u64, u64)> {
    file.metadata().ok().map(|m| identity(&m))
}

/// The store keeps each part of a key between slashes as a file or folder name, of at most 255
/// bytes on common file systems. A longer one failed deep in s3s-fs with a bare 500, which
/// clients retried for seconds before reporting "InternalError"; refused at once, saying why.
fn fits_a_file_name(key: &str) -> S3Result<()> {
    const NAME_MAX: usize = 255;
    match key.split('/').find(|part| part.len() > NAME_MAX) {
        Some(part) => Err(s3_error!(
            KeyTooLongError,
            "the embedded store keeps objects as files: each part of a key between slashes is at most {NAME_MAX} bytes, and one here is {}",
            part.len()
        )),
        None => Ok(()),
    }
}

/// The conditions a GET carries.
fn conditions_of_get(input: &GetObjectInput) -> Conditions {
    Conditions {
        if_match: input.if_match.clone(),
        if_unmodified_since: input.if_unmodified_since.clone(),
        if_none_match: input.if_none_match.clone(),
        if_modified_since: input.if_modified_since.clone(),
    }
}

/// A verdict as S3 answers it.
fn check(verdict: Verdict) -> S3Result<()> {
    match verdict {
        Verdict::Proceed => Ok(()),
        Verdict::Failed => Err(s3_error!(PreconditionFailed)),
        Verdict::NotModified => Err(s3_error!(NotModified)),
    }
}

/// The MD5 of nothing: the ETag of an empty object, such as a folder's marker.
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// A bucket and a key.
type ObjectId = (String, String);

/// One lock per key being written, dropped when no write of that key is in progress.
#[derive(Default)]
struct KeyLocks {
    held: parking_lot::Mutex<HashMap<ObjectId, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds the write turn of one key; frees its map entry when the last holder or waiter goes.
struct KeyTurn<'a> {
    locks: &'a KeyLocks,
    id: ObjectId,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    async fn turn(&self, bucket: &str, key: &str) -> KeyTurn<'_> {
        let id = (bucket.to_owned(), key.to_owned());
        let lock = self.held.lock().entry(id.clone()).or_default().clone();
        let guard = lock.lock_owned().await;
        KeyTurn {
            locks: self,
            id,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyTurn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut held = self.locks.held.lock();
        // Only the map holds it now: no one else waits for this key.
        if held
            .get(&self.id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            held.remove(&self.id);
        }
    }
}

impl VerifyingFs {
    /// Serves the objects under `root` (one folder per bucket).
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        let inner =
            s3s_fs::FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let root = root.canonicalize()?;
        Ok(Self {
            inner,
            root,
            writes: KeyLocks::default(),
            part_sums: Arc::default(),
            part_writes: KeyLocks::default(),
        })
    }

    /// The file of object `key`, when `key` is a plain path below its bucket.
    fn object_file(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let plain =
            |s: &str| !s.is_empty() && s.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
        (plain(bucket) && plain(key)).then(|| self.root.join(bucket).join(key))
    }

    /// Whether `key` ends in `/` and the file s3s-fs would take for it is an object's, not a
    /// folder's: s3s-fs maps `name/` to the same path as `name`, so a HEAD or GET of `name/`
    /// answered with the object `name` (and `put FILE s3://b/name` took `name` for a folder
    /// and went to `name/FILE`), and a DELETE of `name/` failed with an internal error.
    fn object_taken_for_folder(&self, bucket: &str, key: &str) -> bool {
        key.ends_with('/')
            && self
                .object_file(bucket, key.trim_end_matches('/'))
                .and_then(|p| std::fs::metadata(p).ok())
                .is_some_and(|m| !m.is_dir())
    }

    /// The folder `key` (ending in `/`) when it is a directory: answered as S3 answers a
    /// folder's marker, an empty object. s3s-fs tried to hash the directory and answered 500,
    /// so `mkdir s3://s3share/new` followed by `put FILE s3://s3share/new` failed.
    fn folder_marker(&self, bucket: &str, key: &str) -> Option<std::fs::Metadata> {
        let dir = self.object_file(bucket, key.strip_suffix('/')?)?;
        std::fs::metadata(dir)
            .ok()
            .filter(std::fs::Metadata::is_dir)
    }

    /// Where the marker of folder `key` (ending in `/`) is recorded: a file beside the buckets
    /// (never inside one, so it is not listed as an object).
    fn marker_path(&self, bucket: &str, key: &str) -> PathBuf {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        self.root.join(format!(
            ".s3share-folder.{}.{}",
            encode(bucket),
            encode(key)
        ))
    }

    /// The folder markers recorded in `bucket` whose keys start with `prefix`, with when each
    /// was made.
    fn markers_below(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Vec<(String, Option<std::time::SystemTime>)> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tag = format!(".s3share-folder.{}.", URL_SAFE_NO_PAD.encode(bucket));
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let key = URL_SAFE_NO_PAD.decode(name.strip_prefix(&tag)?).ok()?;
                let key = String::from_utf8(key).ok()?;
                // A marker whose folder is gone (removed behind the store's back) is no folder.
                let here = key.starts_with(prefix) && self.folder_marker(bucket, &key).is_some();
                here.then(|| (key, e.metadata().ok().and_then(|m| m.modified().ok())))
            })
            .collect()
    }

    /// After a delete of `key`: a folder marker is forgotten; a file's now-empty folders go,
    /// up to the first folder that holds a marker (or anything else).
    fn forget(&self, bucket: &str, key: &str) {
        if key.ends_with('/') {
            let _ = std::fs::remove_file(self.marker_path(bucket, key));
        }
        if key.split('/').any(|s| s == ".." || s == ".") {
            return;
        }
        let bucket_dir = self.root.join(bucket);
        let mut folder = key.trim_end_matches('/');
        while let Some((parent, _)) = folder.rsplit_once('/') {
            folder = parent;
            if parent.is_empty() || self.marker_path(bucket, &format!("{parent}/")).exists() {
                return;
            }
            // Fails (and stops the walk) when the folder still holds anything.
            if std::fs::remove_dir(bucket_dir.join(parent)).is_err() {
                return;
            }
        }
    }
}

/// Wraps a request body so that it errors at its end when its MD5 is not `expected` or its
/// CRC32C not `crc32c` (base64, as in `x-amz-checksum-crc32c`, which s3s-fs checks only after
/// committing the bytes, and on UploadPart not at all).
fn verified_body(
    body: StreamingBlob,
    expected: Option<&str>,
    crc32c: Option<&str>,
) -> S3Result<(StreamingBlob, Arc<AtomicBool>)> {
    let mismatch = Arc::new(AtomicBool::new(false));
    if expected.is_none() && crc32c.is_none() {
        return Ok((body, mismatch));
    }
    let decode = |v: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|_| s3_error!(InvalidDigest, "{what} is not valid base64"))
    };
    let expected = expected.map(|v| decode(v, "Content-MD5")).transpose()?;
    let crc32c = crc32c
        .map(|v| decode(v, "x-amz-checksum-crc32c"))
        .transpose()?;
    let stream = Md5CheckStream {
        inner: body,
        hasher: expected.is_some().then(Md5::new),
        expected: expected.unwrap_or_default(),
        crc: crc32c
            .is_some()
            .then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi)),
        crc_expected: crc32c.unwrap_or_default(),
        mismatch: mismatch.clone(),
    };
    Ok((StreamingBlob::new(stream), mismatch))
}

struct Md5CheckStream {
    inner: StreamingBlob,
    hasher: Option<Md5>,
    expected: Vec<u8>,
    crc: Option<crc_fast::Digest>,
    crc_expected: Vec<u8>,
    mismatch: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the body does not match its Content-MD5")]
struct DigestMismatch;

impl Stream for Md5CheckStream {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                if let Some(h) = self.crc.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                let md5_ok = self
                    .hasher
                    .take()
                    .is_none_or(|h| h.finalize().as_slice() == self.expected.as_slice());
                let crc_ok = self.crc.take().is_none_or(|h| {
                    (h.finalize() as u32).to_be_bytes().as_slice() == self.crc_expected.as_slice()
                });
                if md5_ok && crc_ok {
                    Poll::Ready(None)
                } else {
                    self.mismatch.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err(Box::new(DigestMismatch))))
                }
            }
            other => other,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ByteStream for Md5CheckStream {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

fn bad_digest<T>(result: S3Result<T>, mismatch: &AtomicBool) -> S3Result<T> {
    if mismatch.load(Ordering::SeqCst) {
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 or checksum you specified did not match what was received."
        ));
    }
    result
}

/// Delegates each operation s3s-fs implements; the macro keeps the list honest and short.
/// (`async_trait` must see the expanded methods, so the macro writes the whole impl.)
macro_rules! impl_s3_delegating {
    ($($name:ident($input:ty) -> $output:ty;)* { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl S3 for VerifyingFs {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.inner.$name(req).await
                }
            )*
            $($own)*
        }
    };
}

impl_s3_delegating! {
        create_bucket(CreateBucketInput) -> CreateBucketOutput;
        copy_object(CopyObjectInput) -> CopyObjectOutput;
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
        head_bucket(HeadBucketInput) -> HeadBucketOutput;
        list_buckets(ListBucketsInput) -> ListBucketsOutput;
        list_objects(ListObjectsInput) -> ListObjectsOutput;
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
{

    // s3s-fs renames an object's new bytes into place and then, separately, writes the record
    // holding its ETag. A GET that opened the old file but read the new record answered old
    // bytes under the new ETag, and a compare-and-swap (`If-Match`) built on that read replaced
    // a write it never saw (a revocation was lost that way). Reads never wait for writes (a
    // stalled upload would stall them); a GET during which the file was replaced is made again.
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        if self.object_taken_for_folder(&req.input.bucket, &req.input.key) {
            return Err(s3_error!(NoSuchKey));
        }
        if let Some(meta) = self.folder_marker(&req.input.bucket, &req.input.key) {
            let empty = futures::stream::empty::<Result<Bytes, std::io::Error>>();
            return Ok(S3Response::new(GetObjectOutput {
                body: Some(StreamingBlob::wrap(empty)),
                content_length: Some(0),
                e_tag: Some(ETag::Strong(EMPTY_MD5.to_owned())),
                last_modified: meta.modified().ok().map(Timestamp::from),
                ..Default::default()
            }));
        }
        let mut req = req;
        let if_range = req
            .headers
            .get(http::header::IF_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let path = self.object_file(&req.input.bucket, &req.input.key);
        let mut attempts = 0;
        loop {
            let before = path.as_deref().and_then(file_identity);
            let mut response = self.inner.get_object(req.clone()).await?;
            attempts += 1;
            // Judged on the answer itself: its ETag and time are those of the bytes it carries.
            let (etag, modified) = (&response.output.e_tag, &response.output.last_modified);
            check(conditions_of_get(&req.input).verdict(etag.as_ref(), modified.as_ref()))?;
            if req.input.range.is_some()
                && if_range
                    .as_deref()
                    .is_some_and(|v| !range_applies(v, etag.as_ref(), modified.as_ref()))
            {
                // Another object than the client holds part of: all of it, as a 200.
                req.input.range = None;
                continue;
            }
            // The body from a file of our own, read in large chunks (see `body`), when it is
            // the file the answer describes.
            if let (Some(path), Some(before)) = (&path, before)
                && let Ok(file) = std::fs::File::open(path)
                && file_identity_of(&file) == Some(before)
            {
                let start = response
                    .output
                    .content_range
                    .as_deref()
                    .map_or(Some(0), range_start);
                let len = response
                    .output
                    .content_length
                    .and_then(|n| u64::try_from(n).ok());
                if let (Some(start), Some(len)) = (start, len) {
                    response.output.body =
                        Some(StreamingBlob::new(FileBody::new(file, start, len)));
                }
            }
            if attempts >= 5 || before == path.as_deref().and_then(file_identity) {
                return Ok(response);
            }
        }
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        if self.object_taken_for_folder(bucket, key) {
            return Err(s3_error!(NoSuchKey));
        }
        if let Some(meta) = self.folder_marker(bucket, key) {
            return Ok(S3Response::new(HeadObjectOutput {
                content_length: Some(0),
                e_tag: Some(ETag::Strong(EMPTY_MD5.to_owned())),
                last_modified: meta.modified().ok().map(Timestamp::from),
                ..Default::default()
            }));
        }
        let conditions = Conditions {
            if_match: req.input.if_match.clone(),
            if_unmodified_since: req.input.if_unmodified_since.clone(),
            if_none_match: req.input.if_none_match.clone(),
            if_modified_since: req.input.if_modified_since.clone(),
        };
        let response = self.inner.head_object(req).await?;
        let (etag, modified) = (&response.output.e_tag, &response.output.last_modified);
        check(conditions.verdict(etag.as_ref(), modified.as_ref()))?;
        Ok(response)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        if self.object_taken_for_folder(&bucket, &key) {
            // No such key: deleted already, as S3 answers (and the object `name` stays).
            return Ok(S3Response::new(DeleteObjectOutput::default()));
        }
        let response = self.inner.delete_object(req).await?;
        self.forget(&bucket, &key);
        Ok(response)
    }

    async fn delete_objects(&self, mut req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let quiet = req.input.delete.quiet == Some(true);
        let (absent, objects): (Vec<_>, Vec<_>) = std::mem::take(&mut req.input.delete.objects)
            .into_iter()
            .partition(|o| self.object_taken_for_folder(&bucket, &o.key));
        req.input.delete.objects = objects;
        let keys: Vec<String> = req.input.delete.objects.iter().map(|o| o.key.clone()).collect();
        let mut response = if keys.is_empty() {
            S3Response::new(DeleteObjectsOutput::default())
        } else {
            self.inner.delete_objects(req).await?
        };
        for key in keys {
            self.forget(&bucket, &key);
        }
        // As `delete_object` answers them: deleted (they do not exist), the objects stay.
        if !quiet {
            let deleted = response.output.deleted.get_or_insert_with(Vec::new);
            deleted.extend(absent.into_iter().map(|o| DeletedObject {
                key: Some(o.key),
                ..Default::default()
            }));
        }
        Ok(response)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        fits_a_file_name(&req.input.key)?;
        self.inner.create_multipart_upload(req).await
    }

    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        fits_a_file_name(&req.input.key)?;
        let _turn = self.writes.turn(&req.input.bucket, &req.input.key).await;
        if req.input.key.ends_with('/') {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let response = self.inner.put_object(req).await?;
            // Private like every file of the store (0600).
            super::private::open_private_file(&self.marker_path(&bucket, &key))
                .map_err(|e| s3_error!(InternalError, "cannot record the folder: {e}"))?;
            return Ok(response);
        }
        let Some(body) = req.input.body.take() else {
            return self.inner.put_object(req).await;
        };
        let (body, mismatch) = verified_body(
            body,
            req.input.content_md5.as_deref(),
            req.input.checksum_crc32c.as_deref(),
        )?;
        // The inner check would only repeat ours, after committing the bytes. (The CRC32C stays:
        // s3s-fs then answers it back, as S3 does, which is how a client knows it was checked.)
        req.input.content_md5 = None;
        req.input.body = Some(body);
        bad_digest(self.inner.put_object(req).await, &mismatch)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _turn = self.writes.turn(&req.input.bucket, &req.input.key).await;
        let input = &req.input;
        let object = self.object_file(&input.bucket, &input.key);
        let (Some(object), Some(id)) = (object, uuid_like(&input.upload_id)) else {
            // A key s3s-fs resolves its own way: its completion, as before.
            return self.inner.complete_multipart_upload(req).await;
        };
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let completion = Completion {
            root: self.root.clone(),
            object,
            bucket: bucket.clone(),
            key: key.clone(),
            id,
            access_key: req.credentials.as_ref().map(|c| c.access_key.clone()),
            parts: (input.multipart_upload.as_ref())
                .and_then(|m| m.parts.clone())
                .unwrap_or_default(),
            if_match: input.if_match.clone(),
            if_none_match: input.if_none_match.clone(),
        };
        let sums = self.part_sums.clone();
        let etag = tokio::task::spawn_blocking(move || completion.run(&sums))
            .await
            .map_err(|e| s3_error!(InternalError, "completing the upload failed: {e}"))??;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(bucket),
            key: Some(key),
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let id = uuid_like(&req.input.upload_id);
        let response = self.inner.abort_multipart_upload(req).await;
        if let Some(id) = id {
            self.part_sums.forget(&id);
        }
        response
    }

    async fn upload_part(&self, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let Some(body) = req.input.body.take() else {
            return self.inner.upload_part(req).await;
        };
        let crc32c = req.input.checksum_crc32c.clone();
        let (id, number) = (uuid_like(&req.input.upload_id), req.input.part_number);
        let _turn = match &id {
            Some(id) => Some(self.part_writes.turn(id, &number.to_string()).await),
            None => None,
        };
        let (body, mismatch) = verified_body(
            body,
            req.input.content_md5.as_deref(),
            crc32c.as_deref(),
        )?;
        req.input.body = Some(body);
        let mut response = bad_digest(self.inner.upload_part(req).await, &mismatch)?;
        // Checked above, so answered back as S3 does: a client that hears nothing concludes
        // the server ignores the header and falls back to Content-MD5 (s3share did, and spent
        // two thirds of an upload's CPU on MD5 against its own store).
        response.output.checksum_crc32c = crc32c;
        // The ETag s3s-fs answered is the MD5 of the part it stored: kept for the completion.
        if let (Some(id), Some(etag)) = (&id, &response.output.e_tag)
            && let Some(file) = file_identity(&part_path(&self.root, id, number))
        {
            self.part_sums.note(id, number, etag.value(), file);
        }
        Ok(response)
    }

    async fn list_objects_v2(&self, mut req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let token_sent = req.input.continuation_token.take();
        req.input.continuation_token = token_sent.as_deref().map(listing::key_of_token);
        let url_encoded = req.input.encoding_type.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL);
        let input = &req.input;
        // s3s-fs's continuation tokens are keys: this page covers the keys after `start` and
        // up to its next token.
        let start = match (input.continuation_token.clone(), input.start_after.clone()) {
            (Some(c), Some(s)) => Some(c.max(s)),
            (c, s) => c.or(s),
        };
        let folders_wanted = input.delimiter.as_deref() == Some("/");
        let bucket_dir = self.root.join(&input.bucket);
        let bucket = input.bucket.clone();
        let prefix = input.prefix.clone().unwrap_or_default();
        let recursive = input.delimiter.is_none();
        let mut response = self.inner.list_objects_v2(req).await?;
        // What s3s-fs leaves out is added on the one page whose key range holds it, so paging
        // never repeats or skips it.
        let end = response.output.next_continuation_token.clone();
        let in_page = |k: &String| start.as_ref().is_none_or(|s| k > s) && end.as_ref().is_none_or(|e| k <= e);
        if recursive {
            // A recursive listing shows folder markers as S3 does (as empty objects): s3s-fs
            // lists files only, so `get -r` never saw an empty folder to make.
            let contents = response.output.contents.get_or_insert_with(Vec::new);
            for (key, modified) in self.markers_below(&bucket, &prefix) {
                if in_page(&key) && !contents.iter().any(|o| o.key.as_deref() == Some(key.as_str())) {
                    contents.push(Object {
                        key: Some(key),
                        size: Some(0),
                        e_tag: Some(ETag::Strong(EMPTY_MD5.to_owned())),
                        last_modified: modified.map(Timestamp::from),
                        ..Default::default()
                    });
                }
            }
            contents.sort_by(|a, b| a.key.cmp(&b.key));
        }
        if folders_wanted {
            // s3s-fs derives folders from the files below them, so a new, empty folder (the
            // `prefix/` marker, stored as a bare directory) would never show.
            let prefixes = response.output.common_prefixes.get_or_insert_with(Vec::new);
            for folder in folders_at(&bucket_dir, &prefix) {
                if in_page(&folder) && !prefixes.iter().any(|p| p.prefix.as_deref() == Some(folder.as_str())) {
                    prefixes.push(CommonPrefix { prefix: Some(folder) });
                }
            }
            prefixes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        }
        if recursive || folders_wanted {
            let out = &response.output;
            let count = out.common_prefixes.as_ref().map_or(0, Vec::len) + out.contents.as_ref().map_or(0, Vec::len);
            response.output.key_count = Some(count as i32);
        }
        let out = &mut response.output;
        out.continuation_token = token_sent;
        out.next_continuation_token = out.next_continuation_token.as_deref().map(listing::token_of_key);
        if url_encoded {
            listing::url_encode(out);
        }
        Ok(response)
    }

    /// s3s-fs lists parts without their ETags, and an unknown upload as an empty list; a
    /// resumed upload needs both (it keeps only parts whose ETag is the MD5 of its bytes).
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let id = uuid_like(&req.input.upload_id).ok_or_else(|| s3_error!(NoSuchUpload))?;
        if !self.root.join(format!(".upload-{id}.json")).exists() {
            return Err(s3_error!(NoSuchUpload));
        }
        let mut response = self.inner.list_parts(req).await?;
        if let Some(parts) = response.output.parts.as_mut() {
            for part in parts.iter_mut() {
                let Some(n) = part.part_number else { continue };
                let path = part_path(&self.root, &id, n);
                let sums = self.part_sums.clone();
                let id = id.clone();
                // A part this store noted as it was stored is not hashed again.
                let md5 = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
                    let file = std::fs::File::open(path)?;
                    let noted = sums.md5_of_file(&id, n, identity(&file.metadata()?));
                    Ok(hex(&match noted {
                        Some(md5) => md5,
                        None => md5_of(&file)?,
                    }))
                })
                .await
                .map_err(|e| s3_error!(InternalError, "hashing a part failed: {e}"))?
                .map_err(|e| s3_error!(InternalError, "reading a part failed: {e}"))?;
                part.e_tag = Some(ETag::Strong(md5));
            }
            parts.sort_by_key(|p| p.part_number);
        }
        Ok(response)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let uploads = pending_uploads(&self.root, &input.bucket, input.prefix.as_deref().unwrap_or(""))
            .map_err(|e| s3_error!(InternalError, "listing uploads failed: {e}"))?;
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
}

/// The sub-folders of `bucket_dir` one level below `prefix`, as `prefix…/` keys.
fn folders_at(bucket_dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let (parent, partial) = prefix
        .rsplit_once('/')
        .map_or(("", prefix), |(p, n)| (p, n));
    if parent.split('/').any(|s| s == ".." || s == ".") {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(bucket_dir.join(parent)) else {
        return Vec::new();
    };
    let base = if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}/")
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with(partial))
        .map(|name| format!("{base}{name}/"))
        .collect()
}

/// Reads s3s-fs's bookkeeping: each open upload leaves `.upload-<id>.json`, and its object's
/// attributes in `.bucket-<b64>.object-<b64>.upload-<id>.metadata.json`.
fn pending_uploads(
    root: &std::path::Path,
    bucket: &str,
    prefix: &str,
) -> std::io::Result<Vec<MultipartUpload>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bucket_tag = format!(".bucket-{}.object-", URL_SAFE_NO_PAD.encode(bucket));
    let mut uploads = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&bucket_tag) else {
            continue;
        };
        let Some(rest) = rest.strip_suffix(".metadata.json") else {
            continue;
        };
        let Some((key_b64, upload_id)) = rest.split_once(".upload-") else {
            continue;
        };
        let Ok(key) = URL_SAFE_NO_PAD.decode(key_b64).map(String::from_utf8) else {
            continue;
        };
        let Ok(key) = key else { continue };
        let still_open = root.join(format!(".upload-{upload_id}.json")).exists();
        if still_open && key.starts_with(prefix) {
            uploads.push(MultipartUpload {
                key: Some(key),
                upload_id: Some(upload_id.to_owned()),
                ..Default::default()
            });
        }
    }
    uploads.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(uploads)
}

/// `id` as s3s-fs names an upload's files (a lower-case UUID), or `None` if it is not one.
fn uuid_like(id: &str) -> Option<String> {
    let ok = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then(|| id.to_ascii_lowercase())
}
