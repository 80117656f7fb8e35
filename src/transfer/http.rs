//! Sending presigned requests: streamed file bodies, S3 error bodies, and what is worth a retry.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use md5::{Digest as _, Md5};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};

use tokio::io::AsyncSeekExt as _;

use super::ByteCounter;
use crate::error::{Error, S3Answer};
use crate::s3::Presigned;
use crate::s3::S3Client;

const CHANGED: &str = "file changed while it was being uploaded";

/// How one attempt at a request ended, when it did not succeed.
pub(crate) enum Failure {
    /// Worth another try: a 5xx, a throttle, a dropped or refused connection; in words, with
    /// the server's answer when there was one.
    Transient(String, Option<Box<S3Answer>>),
    /// The server went silent (no progress within the idle timeout): worth one more try, not
    /// more, or a dead server would hold the transfer for many timeouts.
    Stalled(Error),
    /// Retrying cannot help.
    Fatal(Error),
}

/// The delay before retry number `attempt` (1-based): 250 ms doubling up to 8 s, with jitter
/// so parallel parts do not all knock again at once.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 250u64
        .saturating_mul(1 << attempt.min(5).saturating_sub(1))
        .min(8000);
    let jitter = rand::random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// The MD5 of some bytes: base64 for `Content-MD5`, hex to compare with ETags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Md5Sum(pub [u8; 16]);

impl Md5Sum {
    /// For the `Content-MD5` header.
    pub(crate) fn base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// As S3 writes it in the ETag of an object stored in one piece (without SSE-KMS/SSE-C).
    pub(crate) fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The ETag S3 gives an object completed from parts with these sums: the MD5 of the
    /// parts' MD5s, a dash, the number of parts.
    pub(crate) fn multipart_etag(parts: &[Md5Sum]) -> String {
        let mut hasher = Md5::new();
        for p in parts {
            hasher.update(p.0);
        }
        format!("{}-{}", Md5Sum(hasher.finalize().into()).hex(), parts.len())
    }
}

/// The CRC32C (Castagnoli) of some bytes, for the `x-amz-checksum-crc32c` header: S3 (and
/// SeaweedFS, MinIO, the embedded store) verify it like `Content-MD5`, and it costs a small
/// fraction of MD5's CPU (hardware instructions), which on a busy machine is taken from the
/// server and the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crc32c(pub u32);

impl Crc32c {
    /// The header's name.
    pub(crate) const HEADER: &'static str = "x-amz-checksum-crc32c";

    /// For the header: base64 of the big-endian bytes.
    pub(crate) fn base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0.to_be_bytes())
    }
}

/// Which sums [`sums_of_range`] computes, and what it found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub md5: Option<Md5Sum>,
    pub crc32c: Option<Crc32c>,
}

/// Reads `len` bytes of `path` from `offset` and returns their MD5.
pub(crate) async fn md5_of_range(path: &Path, offset: u64, len: u64) -> Result<Md5Sum, Error> {
    let sums = sums_of_range(path, offset, len, true, false).await?;
    sums.md5
        .ok_or_else(|| Error::Bug("MD5 asked for but not computed".into()))
}

/// Reads `len` bytes of `path` from `offset` once and returns the sums asked for.
pub(crate) async fn sums_of_range(
    path: &Path,
    offset: u64,
    len: u64,
    md5: bool,
    crc32c: bool,
) -> Result<Sums, Error> {
    let (sums, _) = read_range(path, offset, len, md5, crc32c, None).await?;
    Ok(sums)
}

/// Reads `len` bytes of `path` from `offset` once, returning the sums asked for and, with
/// `keep`, the bytes themselves (in chunks of [`READ_CHUNK`]).
async fn read_range(
    path: &Path,
    offset: u64,
    len: u64,
    md5: bool,
    crc32c: bool,
    keep: Option<Arc<BodyMemory>>,
) -> Result<(Sums, Vec<Bytes>), Error> {
    let owned = path.to_owned();
    // One blocking task per part rather than an async read per buffer: hashing is CPU work,
    // and each async file read is a hop to the blocking pool.
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        use std::io::Seek as _;
        // Read through the file's own cursor (this task opened it, nobody shares it): `File`
        // reads into a vector's spare room without zeroing it first.
        let mut file = std::fs::File::open(&owned)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        let (sums, kept, seen) = read_chunks(&mut file, len, md5, crc32c, keep.as_ref())?;
        if seen != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{CHANGED} (expected {len} bytes from offset {offset}, found {seen})"),
            ));
        }
        Ok((sums, kept))
    })
    .await
    .map_err(|e| Error::TaskFailed {
        task: "hashing",
        detail: e.to_string(),
    })?;
    read.map_err(|source| Error::Local {
        what: "cannot read",
        path: path.to_owned(),
        source,
    })
}

/// Reads up to `len` bytes of `reader` (fewer only at its end), returning the sums asked for,
/// with `keep` the bytes themselves (in chunks of [`READ_CHUNK`], in that memory's buffers),
/// and how many bytes there were.
fn read_chunks(
    reader: &mut dyn std::io::Read,
    len: u64,
    md5: bool,
    crc32c: bool,
    keep: Option<&Arc<BodyMemory>>,
) -> std::io::Result<(Sums, Vec<Bytes>, u64)> {
    use std::io::Read as _;
    let mut md5 = md5.then(Md5::new);
    let mut crc = crc32c.then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi));
    let chunk = READ_CHUNK.min(len as usize).max(1);
    let mut kept = Vec::new();
    // Without `keep`, this one buffer serves every read.
    let mut reused = Vec::with_capacity(chunk);
    let mut seen = 0u64;
    while seen < len {
        let want = chunk.min((len - seen) as usize);
        let mut buf = match keep {
            Some(memory) => memory.buffer(want),
            None => std::mem::take(&mut reused),
        };
        buf.clear();
        // A pipe gives what it has, a little at a time: the chunk is filled to the end.
        let n = reader.take(want as u64).read_to_end(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(h) = md5.as_mut() {
            h.update(&buf);
        }
        if let Some(h) = crc.as_mut() {
            h.update(&buf);
        }
        seen += n as u64;
        match keep {
            Some(memory) => kept.push(Bytes::from_owner(Pooled {
                buf,
                home: memory.clone(),
            })),
            None => reused = buf,
        }
    }
    let sums = Sums {
        md5: md5.map(|h| Md5Sum(h.finalize().into())),
        crc32c: crc.map(|h| Crc32c(h.finalize() as u32)),
    };
    Ok((sums, kept, seen))
}

/// The memory request bodies may hold at once (see [`HeldBody`]): two parts of 16 MiB (to a
/// server on this machine) or four of 8 MiB (elsewhere, where the parts beyond those are
/// streamed from the file), which keeps an upload's peak RSS near 55 MiB (68 elsewhere) however
/// many files and parts are in flight; a body larger than this is streamed from the file too.
pub(crate) const HELD_BUDGET: u32 = 32 * 1024 * 1024;

/// The memory that request bodies held whole share (see [`HeldBody`]), one per client: a
/// budget, and the buffers of bodies sent, kept for the next ones while uploads run. Fresh
/// memory for each body cost a page fault and a zeroed page per 4 KiB: a fifth of an upload's
/// CPU.
pub(crate) struct BodyMemory {
    budget: Arc<tokio::sync::Semaphore>,
    spare: parking_lot::Mutex<Vec<Vec<u8>>>,
    /// The bodies that may be streamed at once because the budget had no room for them (see
    /// [`STREAMED_BODIES`]).
    streams: Arc<tokio::sync::Semaphore>,
}

/// Bodies a client streams from their files at once because the memory had no room for them
/// (to a server elsewhere): with four held parts of 8 MiB, eight parts in flight for all of a
/// client's uploads together, as aws-cli's ten requests in flight are for all of its files.
/// Without a shared cap, eight big files would send 64 parts at once.
pub(crate) const STREAMED_BODIES: usize = 4;

impl BodyMemory {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            budget: Arc::new(tokio::sync::Semaphore::new(HELD_BUDGET as usize)),
            spare: parking_lot::Mutex::new(Vec::new()),
            streams: Arc::new(tokio::sync::Semaphore::new(STREAMED_BODIES)),
        })
    }

    /// `len` bytes of the budget, once it has room for them (or, with [`WhenFull::Stream`],
    /// only if it has now); `None` when it never will (more than the whole budget) or has not
    /// now.
    async fn reserve(
        &self,
        len: u64,
        when_full: WhenFull,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Error> {
        let closed =
            |e: &dyn std::fmt::Display| Error::Bug(format!("the body memory budget closed: {e}"));
        let Some(bytes) = u32::try_from(len).ok().filter(|_| HeldBody::fits(len)) else {
            return Ok(None);
        };
        let budget = self.budget.clone();
        match when_full {
            WhenFull::Wait => budget
                .acquire_many_owned(bytes)
                .await
                .map(Some)
                .map_err(|e| closed(&e)),
            WhenFull::Stream => match budget.try_acquire_many_owned(bytes) {
                Ok(permit) => Ok(Some(permit)),
                Err(tokio::sync::TryAcquireError::NoPermits) => Ok(None),
                Err(e) => Err(closed(&e)),
            },
        }
    }

    /// A place among the bodies streamed for want of memory, if one is free now (held until
    /// dropped).
    pub(crate) fn stream_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.streams.clone().try_acquire_owned().ok()
    }

    /// An empty buffer with room for `want` bytes (at most a [`READ_CHUNK`]): a spare one, else
    /// a new one of just that size (a small file's body takes no more than it needs).
    fn buffer(&self, want: usize) -> Vec<u8> {
        self.spare
            .lock()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(want))
    }

    /// Takes back a buffer that was sent.
    fn give_back(&self, mut buf: Vec<u8>) {
        let mut spare = self.spare.lock();
        if buf.capacity() >= READ_CHUNK && spare.len() < HELD_BUDGET as usize / READ_CHUNK {
            buf.clear();
            spare.push(buf);
        }
    }

    /// Frees the spare buffers once no body holds memory: idle, the app keeps none of it.
    fn release_if_idle(&self) {
        if self.budget.available_permits() == HELD_BUDGET as usize {
            self.spare.lock().clear();
        }
    }
}

/// What a body does when the memory budget has no room for it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Waits for room: to a server on this machine, where the second read of a streamed body
    /// costs CPU the server needs, fewer parts at once go faster.
    Wait,
    /// Is streamed from the file instead, at once: to a server elsewhere, where more
    /// connections carry more and a second read costs nothing the transfer waits for.
    Stream,
}

/// A buffer of a [`BodyMemory`], back there once the last `Bytes` of it is dropped.
struct Pooled {
    buf: Vec<u8>,
    home: Arc<BodyMemory>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.home.give_back(std::mem::take(&mut self.buf));
        // The last buffer of a streamed body may come back after every held body is gone.
        self.home.release_if_idle();
    }
}

/// A range of a file read into memory once, with its sums, to be sent from there.
///
/// A streamed body reads its range twice: once for the checksum signed into the URL, once to
/// send it. That second read was a third of the client's CPU in an upload (the kernel's copy
/// from the page cache), and on a machine the client shares with the server every cycle of it
/// is taken from the transfer; from a cold disk, it is the file read twice. Retries send these
/// very bytes. The memory is taken from the client's budget ([`HELD_BUDGET`]) until dropped.
pub(crate) struct HeldBody {
    chunks: Vec<Bytes>,
    sums: Sums,
    memory: Arc<BodyMemory>,
    /// Its share of the budget, given back when it is dropped.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        self.chunks.clear();
        self.permit.take();
        self.memory.release_if_idle();
    }
}

impl HeldBody {
    /// Whether a body of `len` bytes can ever be held (it is no larger than the whole budget).
    pub(crate) fn fits(len: u64) -> bool {
        len <= u64::from(HELD_BUDGET)
    }

    /// Reads `len` bytes of `path` from `offset` with the sums asked for, once `memory`'s
    /// budget has room for them (or at once, see [`WhenFull`]); `None` when the range is
    /// larger than the whole budget, or the budget is spent and `when_full` says stream.
    pub(crate) async fn read(
        memory: &Arc<BodyMemory>,
        path: &Path,
        offset: u64,
        len: u64,
        sums: (bool, bool),
        when_full: WhenFull,
    ) -> Result<Option<Self>, Error> {
        let (md5, crc32c) = sums;
        let Some(permit) = memory.reserve(len, when_full).await? else {
            return Ok(None);
        };
        let read = read_range(path, offset, len, md5, crc32c, Some(memory.clone())).await;
        // Built before the read's result is looked at: a failed read gives its memory back
        // the same way.
        let mut held = Self {
            chunks: Vec::new(),
            sums: Sums::default(),
            memory: memory.clone(),
            permit: Some(permit),
        };
        (held.sums, held.chunks) = read?;
        Ok(Some(held))
    }

    /// Reads up to `len` bytes of `reader` (fewer only at its end: a stream, like standard
    /// input, that `path` names in messages) with the sums asked for, once `memory`'s budget
    /// has room for `len` of them; returns the body, how many bytes it has, and the reader for
    /// what follows.
    pub(crate) async fn read_stream<R: std::io::Read + Send + 'static>(
        memory: &Arc<BodyMemory>,
        path: &Path,
        mut reader: R,
        len: u64,
        sums: (bool, bool),
    ) -> Result<(Self, u64, R), Error> {
        let (md5, crc32c) = sums;
        let permit = memory
            .reserve(len, WhenFull::Wait)
            .await?
            .ok_or_else(|| Error::Bug(format!("a stream body of {len} bytes")))?;
        let keep = memory.clone();
        let (read, reader) = tokio::task::spawn_blocking(move || {
            let read = read_chunks(&mut reader, len, md5, crc32c, Some(&keep));
            (read, reader)
        })
        .await
        .map_err(|e| Error::TaskFailed {
            task: "reading",
            detail: e.to_string(),
        })?;
        let mut held = Self {
            chunks: Vec::new(),
            sums: Sums::default(),
            memory: memory.clone(),
            permit: Some(permit),
        };
        let seen;
        (held.sums, held.chunks, seen) = read.map_err(|source| Error::Local {
            what: "cannot read",
            path: path.to_owned(),
            source,
        })?;
        Ok((held, seen, reader))
    }

    /// The sums read with the bytes.
    pub(crate) fn sums(&self) -> Sums {
        self.sums
    }

    /// The MD5 of the bytes (computed now, off the async threads).
    pub(crate) async fn md5(&self) -> Result<Md5Sum, Error> {
        if let Some(m) = self.sums.md5 {
            return Ok(m);
        }
        let chunks = self.chunks.clone();
        tokio::task::spawn_blocking(move || {
            let mut h = Md5::new();
            for c in &chunks {
                h.update(c);
            }
            Md5Sum(h.finalize().into())
        })
        .await
        .map_err(|e| Error::TaskFailed {
            task: "hashing",
            detail: e.to_string(),
        })
    }

    /// A request body of these bytes, counting them as they go.
    pub(crate) fn body(&self, counter: ByteCounter, activity: Arc<Activity>) -> reqwest::Body {
        let slices = self.chunks.clone().into_iter().flat_map(|c| {
            (0..c.len())
                .step_by(SEND_SLICE)
                .map(move |at| c.slice(at..(at + SEND_SLICE).min(c.len())))
        });
        let stream = futures::stream::iter(slices).map(move |slice| {
            counter.add(slice.len() as u64);
            Ok::<_, std::io::Error>(slice)
        });
        reqwest::Body::wrap_stream(activity.watch(stream))
    }
}

/// Read size for hashing and sending: large enough that syscalls and task hops are rare,
/// small enough that parts in flight stay a few MiB of memory.
const READ_CHUNK: usize = 1024 * 1024;

/// The size of the slices a request body is handed to the connection in.
const SEND_SLICE: usize = 64 * 1024;

/// The progress of one request's body: how much of it went out, and when the last of it did.
/// A request whose body stopped moving, or whose answer does not come, is stalled.
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last progress.
    last: AtomicU64,
    sent: AtomicU64,
    /// Two checkpoints (milliseconds after `start`, bytes sent), the newer at least
    /// [`RATE_WINDOW_MS`] after the older: the rate the body went at lately.
    marks: parking_lot::Mutex<[(u64, u64); 2]>,
    /// The connection took a slice and has not asked for the next one yet: it is waiting for
    /// room in the socket, which only the network's pace can make (see [`KERNEL_WATCHES`]).
    waiting_for_room: AtomicBool,
}

/// Whether the kernel aborts a connection whose sent bytes stay unacknowledged, or whose
/// receiver's window stays shut, for the idle timeout (`TCP_USER_TIMEOUT`, set on the upload
/// client where the platform has it). There, a body waiting for room in its socket is the
/// kernel's to judge: it sees every acknowledgement, where the body only sees the moments
/// the kernel frees a third of its buffer, which a slow link (or a proxy that takes megabytes
/// at once) can space further apart than the idle timeout.
pub(crate) const KERNEL_WATCHES: bool = cfg!(any(
    target_os = "android",
    target_os = "fuchsia",
    target_os = "linux"
));

/// What may still be on its way once a body has been handed over: the kernel's send buffer
/// (Linux grows it to 4 MiB by default) and what the path holds, twice that to be safe.
const IN_FLIGHT_BOUND: u64 = 8 * 1024 * 1024;

/// The longest time given to those bytes (8 MiB at 28 KiB/s).
const MAX_DRAIN: Duration = Duration::from_secs(300);

/// How far back the recent rate of a body is measured, at least.
const RATE_WINDOW_MS: u64 = 500;

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            marks: parking_lot::Mutex::new([(0, 0); 2]),
            waiting_for_room: AtomicBool::new(false),
        })
    }

    /// `body` with its slices counted as handed over, and with the moments the connection asks
    /// for the next one noted (see `waiting_for_room`).
    fn watch<S>(
        self: Arc<Self>,
        body: S,
    ) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static
    where
        S: futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let mut body = Box::pin(body);
        futures::stream::poll_fn(move |cx| {
            self.waiting_for_room.store(false, Ordering::Relaxed);
            let next = body.as_mut().poll_next(cx);
            if let std::task::Poll::Ready(Some(Ok(slice))) = &next {
                self.touch(slice.len() as u64);
                self.waiting_for_room.store(true, Ordering::Relaxed);
            }
            next
        })
    }

    fn touch(&self, bytes: u64) {
        let sent = self.sent.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let now = self.start.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
        let mut marks = self.marks.lock();
        if now.saturating_sub(marks[1].0) >= RATE_WINDOW_MS {
            *marks = [marks[1], (now, sent)];
        }
    }

    /// How long the bytes handed over but perhaps not sent yet may take to go, at the rate
    /// the body went lately: on a slow link, the kernel holds up to its send buffer of a body
    /// for many seconds after the last byte was handed over, and the answer cannot come
    /// before they are through.
    fn drain(&self) -> Duration {
        let sent = self.sent();
        let last = self.last.load(Ordering::Relaxed);
        let (since, then) = self.marks.lock()[0];
        let (span, moved) = (last.saturating_sub(since), sent.saturating_sub(then));
        if span == 0 || moved == 0 {
            return Duration::ZERO;
        }
        let ms = u128::from(IN_FLIGHT_BOUND.min(sent)) * u128::from(span) / u128::from(moved);
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)).min(MAX_DRAIN)
    }

    /// Body bytes handed to the connection so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Resolves once nothing has moved for `idle`, beyond the time what was handed over may
    /// still take to go (see [`drain`](Self::drain)). While the connection waits for room in
    /// its socket and the kernel watches it ([`KERNEL_WATCHES`]), the kernel judges a stall
    /// and this only stops a wait of [`MAX_DRAIN`] beyond `idle`.
    async fn stalled(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let quiet = self.start.elapsed().saturating_sub(last);
            let allowed = if KERNEL_WATCHES && self.waiting_for_room.load(Ordering::Relaxed) {
                idle + MAX_DRAIN
            } else {
                idle + self.drain()
            };
            if quiet >= allowed {
                return;
            }
            // Looked at again within `idle`: the connection may stop waiting for room.
            tokio::time::sleep(allowed.saturating_sub(quiet).min(idle)).await;
        }
    }
}

/// A request body streaming `len` bytes of `path` from `offset`, counting them as they go. Its
/// read buffers come from `memory`'s spare ones and go back there (outside its budget: a
/// streamed body holds a buffer or two at a time), so streamed parts reuse the same few MiB
/// instead of leaving freed buffers behind in each thread's allocator arena.
pub(crate) async fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    counter: ByteCounter,
    activity: Arc<Activity>,
    memory: Arc<BodyMemory>,
) -> Result<reqwest::Body, Error> {
    let err = |source| Error::Local {
        what: "cannot read",
        path: path.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(err)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(err)?;
    let file = Arc::new(file.into_std().await);
    // Each read goes straight into the buffer the connection will send from (one copy, from
    // the page cache, into memory nobody zeroed first), in one blocking task per
    // `READ_CHUNK`: tokio's own file reads would copy every byte twice. The chunks are read
    // one after the other, so the file's own position walks through the range.
    let chunks = futures::stream::try_unfold(0u64, move |at| {
        let file = file.clone();
        let memory = memory.clone();
        async move {
            if at >= len {
                return Ok::<_, std::io::Error>(None);
            }
            let want = READ_CHUNK.min((len - at) as usize);
            let chunk = tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
                use std::io::Read as _;
                let mut buf = memory.buffer(want);
                buf.clear();
                (&*file).take(want as u64).read_to_end(&mut buf)?;
                Ok(Bytes::from_owner(Pooled { buf, home: memory }))
            })
            .await
            .map_err(std::io::Error::other)??;
            if chunk.is_empty() {
                // The file ended early: the shortfall check below says so.
                return Ok(None);
            }
            let next = at + chunk.len() as u64;
            Ok(Some((chunk, next)))
        }
    });
    let stream = chunks
        // Handed on in slices: the connection takes a slice whenever it has room, so a slow
        // link that keeps moving shows progress well within the idle timeout, where a whole
        // read buffer could take longer than that to drain.
        .map_ok(|c: Bytes| {
            let slices: Vec<std::io::Result<Bytes>> = (0..c.len())
                .step_by(SEND_SLICE)
                .map(|at| Ok(c.slice(at..(at + SEND_SLICE).min(c.len()))))
                .collect();
            futures::stream::iter(slices)
        })
        .try_flatten()
        .map(move |chunk: std::io::Result<Bytes>| {
            if let Ok(c) = &chunk {
                counter.add(c.len() as u64);
            }
            chunk
        });
    let stream = activity.clone().watch(stream);
    // A file that shrank since it was measured must fail clearly, not as a short body.
    let shortfall = futures::stream::once(async move {
        let seen = activity.sent();
        (seen < len).then(|| {
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{CHANGED} (expected {len} bytes, read {seen})"),
            ))
        })
    })
    .filter_map(futures::future::ready);
    let stream = stream.chain(shortfall);
    Ok(reqwest::Body::wrap_stream(stream))
}

/// What a presigned upload request is for, for messages.
pub(crate) struct Target<'a> {
    /// "upload", "upload part".
    pub what: &'static str,
    pub bucket: &'a str,
    pub key: &'a str,
    /// The local file the body comes from.
    pub path: &'a Path,
}

/// The headers to send with a presigned request: exactly the signed ones, each once, and
/// `Content-Length` once (the signed one when it was signed, and it must say `len`).
fn request_headers(req: &Presigned, len: u64) -> Result<HeaderMap, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Bug(format!("bad presigned header: {e}"));
    let mut headers = HeaderMap::new();
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        // Insert, not append: a header the signer listed twice still goes once.
        headers.insert(name, value);
    }
    match headers.get(CONTENT_LENGTH) {
        Some(signed) if signed.to_str().ok() != Some(len.to_string().as_str()) => {
            return Err(Error::Bug(format!(
                "the signed Content-Length ({signed:?}) is not the body's length ({len})"
            )));
        }
        Some(_) => {}
        None => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    Ok(headers)
}

/// Sends a presigned request with `body` of `len` bytes; returns the response on 2xx. A
/// request that makes no progress for the client's idle timeout (body not taken, answer not
/// coming) fails as [`Failure::Stalled`].
pub(crate) async fn send(
    s3: &S3Client,
    req: &Presigned,
    body: reqwest::Body,
    len: u64,
    activity: &Activity,
    target: &Target<'_>,
) -> Result<reqwest::Response, Failure> {
    let Target {
        what, bucket, key, ..
    } = *target;
    let idle = s3.timeouts().idle;
    let stalled = || {
        Failure::Stalled(Error::Unresponsive {
            endpoint: s3.endpoint_label(),
            detail: format!(
                "nothing moved for {} during the {what} of s3://{bucket}/{key}",
                humantime::format_duration(idle)
            ),
        })
    };
    let headers = request_headers(req, len).map_err(Failure::Fatal)?;
    let request = s3
        .upload_http()
        .request(req.method.clone(), req.url.as_str())
        .headers(headers)
        .body(body)
        .send();
    let result = tokio::select! {
        r = request => r,
        () = activity.stalled(idle) => return Err(stalled()),
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            // The kernel gave up on the connection: nothing was acknowledged, or the server's
            // window stayed shut, for the idle timeout (see `KERNEL_WATCHES`).
            if timed_out(&e) {
                return Err(stalled());
            }
            // The URL is a secret (its signature works for anyone): never in messages or logs.
            let text = crate::error::error_chain(&e.without_url());
            // A local read error surfaces as a body error: retrying would read the same file.
            if text.contains(CHANGED) {
                return Err(Failure::Fatal(Error::Changed {
                    path: target.path.to_owned(),
                    target: format!("s3://{bucket}/{key}"),
                }));
            }
            return Err(Failure::Transient(text, None));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let text = match tokio::time::timeout(idle, response.text()).await {
        Ok(text) => text.unwrap_or_default(),
        Err(_) => return Err(stalled()),
    };
    let answer = s3_answer(status.as_u16(), &headers, &text);
    let code = answer.code.as_deref().unwrap_or("");
    if status.is_server_error()
        || status.as_u16() == 429
        || code == "SlowDown"
        || code == "RequestTimeout"
    {
        return Err(Failure::Transient(
            answer.describe(true),
            Some(Box::new(answer)),
        ));
    }
    Err(Failure::Fatal(refusal(what, bucket, key, answer)))
}

/// Whether a request failed because its connection timed out (`ETIMEDOUT` from the socket).
fn timed_out(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The error for a presigned request's refusal: a taken key, the credentials, a denied
/// access, or the answer as it came.
pub(crate) fn refusal(what: &'static str, bucket: &str, key: &str, answer: S3Answer) -> Error {
    let target = format!("s3://{bucket}/{key}");
    if answer.status == Some(412) {
        return Error::AlreadyExists {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
    }
    if let Some(e) = Error::from_credentials_answer(&target, answer.clone()) {
        return e;
    }
    if answer.status == Some(403) {
        return Error::AccessDenied {
            target,
            answer: Box::new(answer),
        };
    }
    Error::Http {
        operation: what,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        answer: Box::new(answer),
    }
}

impl S3Client {
    /// The first `max` bytes of `bucket`/`key`, fetched through a presigned GET as anyone
    /// holding a link would (the app's image previews). A refusal is told like a presigned
    /// upload's: code, status and request id kept.
    pub async fn get_via_link(&self, bucket: &str, key: &str, max: u64) -> Result<Bytes, Error> {
        let op = crate::s3::PresignOp::Get {
            filename: None,
            inline: false,
        };
        let link = self
            .presign(bucket, key, op, Duration::from_secs(300))
            .await?;
        // The URL is a secret (its signature works for anyone): never in messages or logs.
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            endpoint: self.endpoint_label(),
            message: crate::error::error_chain(&e.without_url()),
        };
        let mut response = self
            .http()
            .get(link.url.as_str())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            let answer = s3_answer(status.as_u16(), &headers, &text);
            return Err(refusal("download", bucket, key, answer));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 >= max {
                bytes.truncate(usize::try_from(max).unwrap_or(usize::MAX));
                break;
            }
        }
        Ok(Bytes::from(bytes))
    }
}

/// Whether an answer's ETag is something other than the MD5 of the body (SSE-KMS and SSE-C
/// objects get opaque ETags), so it cannot be compared with what was sent.
pub(crate) fn opaque_etag(headers: &HeaderMap) -> bool {
    let kms = headers
        .get("x-amz-server-side-encryption")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("aws:kms"));
    kms || headers.contains_key("x-amz-server-side-encryption-customer-algorithm")
}

/// What an S3 error answer says: `<Code>`, `<Message>`, `<RequestId>` and `<HostId>` from
/// the XML body (no XML parser for four fields), the ids from the headers when the body has
/// none (HEAD answers have no body).
pub(crate) fn s3_answer(status: u16, headers: &HeaderMap, body: &str) -> S3Answer {
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        body.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(v, _)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .filter(|v| !v.is_empty())
    };
    S3Answer {
        status: Some(status),
        code: field("Code"),
        message: field("Message"),
        request_id: header("x-amz-request-id").or_else(|| field("RequestId")),
        host_id: header("x-amz-id-2").or_else(|| field("HostId")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies held in memory share one budget: a body waits until the ones before it give
    /// their memory back (or, if it may be streamed, is not held and does not wait), one
    /// larger than the whole budget is not held, and the buffers are
    /// kept for the next bodies only while some body holds memory.
    #[tokio::test]
    async fn held_bodies_share_one_budget() {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..40 * MIB).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let memory = BodyMemory::new();
        let hold = |offset: u64, len: u64| {
            HeldBody::read(&memory, &path, offset, len, (true, true), WhenFull::Wait)
        };
        let first = hold(0, 16 * MIB).await.unwrap().expect("16 MiB is held");
        let second = hold(16 * MIB, 16 * MIB).await.unwrap().expect("held");
        // The bytes and sums are those of the file's range.
        let body: Vec<u8> = second
            .chunks
            .iter()
            .flat_map(|c| c.iter().copied())
            .collect();
        assert_eq!(body, &data[16 * MIB as usize..32 * MIB as usize]);
        let sums = sums_of_range(&path, 16 * MIB, 16 * MIB, true, true)
            .await
            .unwrap();
        assert_eq!(second.sums(), sums);
        // The budget is spent: a third body waits.
        let third = tokio::time::timeout(Duration::from_millis(200), hold(32 * MIB, 8 * MIB)).await;
        assert!(third.is_err(), "a third body was held beyond the budget");
        // Unless it would rather be streamed: then it is not held, and does not wait.
        let streamed = HeldBody::read(
            &memory,
            &path,
            32 * MIB,
            8 * MIB,
            (true, true),
            WhenFull::Stream,
        );
        let streamed = tokio::time::timeout(Duration::from_millis(200), streamed).await;
        assert!(
            matches!(streamed, Ok(Ok(None))),
            "a body that may be streamed waited for memory, or was held beyond the budget"
        );
        drop(first);
        assert!(
            !memory.spare.lock().is_empty(),
            "the buffers of a sent body are kept while others run"
        );
        let third = hold(32 * MIB, 8 * MIB).await.unwrap().expect("held");
        assert_eq!(
            third.md5().await.unwrap(),
            md5_of_range(&path, 32 * MIB, 8 * MIB).await.unwrap()
        );
        // Larger than the whole budget: streamed from the file instead.
        assert!(hold(0, 33 * MIB).await.unwrap().is_none());
        drop((second, third));
        assert!(memory.spare.lock().is_empty(), "idle, no memory is kept");
        // With room, a body that may be streamed is held all the same.
        let room = HeldBody::read(&memory, &path, 0, 8 * MIB, (true, true), WhenFull::Stream);
        assert!(
            room.await.unwrap().is_some(),
            "not held though there was room"
        );
        assert_eq!(memory.budget.available_permits(), HELD_BUDGET as usize);
        // A range the file no longer has fails as a changed file, and gives its memory back.
        let short = hold(32 * MIB, 16 * MIB).await;
        assert!(
            matches!(&short, Err(e) if e.to_string().contains(CHANGED)),
            "{:?}",
            short.err()
        );
        assert_eq!(memory.budget.available_permits(), HELD_BUDGET as usize);
    }

    #[test]
    fn parses_error_bodies() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message><RequestId>R1</RequestId><HostId>H1</HostId></Error>";
        let a = s3_answer(403, &HeaderMap::new(), body);
        assert_eq!(a.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(a.message.as_deref(), Some("bad sig"));
        assert_eq!(a.request_id.as_deref(), Some("R1"));
        assert_eq!(a.host_id.as_deref(), Some("H1"));
        // A HEAD answer has no body: the ids come from the headers.
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-request-id", HeaderValue::from_static("R2"));
        let a = s3_answer(404, &headers, "");
        assert_eq!((a.code, a.request_id.as_deref()), (None, Some("R2")));
        assert_eq!(a.status, Some(404));
    }

    #[test]
    fn etags_from_sums() {
        let a = Md5Sum(Md5::digest(b"hello").into());
        assert_eq!(a.hex(), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(a.base64(), "XUFAKrxLKna5cZ2REBfFkg==");
        // The multipart ETag of one part is the MD5 of its MD5, not the part's own ETag.
        assert_eq!(
            Md5Sum::multipart_etag(&[a]),
            format!("{}-1", Md5Sum(Md5::digest(a.0).into()).hex())
        );
    }

    /// A body whose connection took a slice and has not asked for more is waiting for room in
    /// its socket: where the kernel watches sockets, that is not a stall of the body's own
    /// making. Once the connection asks again and nothing comes, it is.
    #[tokio::test]
    async fn a_body_waiting_for_room_is_left_to_the_kernel() {
        let idle = Duration::from_millis(50);
        let activity = Activity::new();
        let slices = futures::stream::iter([Ok(Bytes::from_static(b"one"))])
            .chain(futures::stream::pending());
        let mut body = Box::pin(activity.clone().watch(slices));
        assert_eq!(body.next().await.unwrap().unwrap(), "one");
        assert_eq!(activity.sent(), 3);
        let waited = tokio::time::timeout(Duration::from_millis(400), activity.stalled(idle)).await;
        assert_eq!(
            waited.is_ok(),
            !KERNEL_WATCHES,
            "stalled while waiting for room"
        );
        // The connection asks for more, and the body has none to give: stalled within `idle`.
        assert!(futures::poll!(body.next()).is_pending());
        tokio::time::timeout(idle * 4, activity.stalled(idle))
            .await
            .expect("stalled once the body is what is waited for");
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert!(
            backoff(1) >= Duration::from_millis(250) && backoff(1) <= Duration::from_millis(313)
        );
        assert!(backoff(3) >= Duration::from_millis(1000));
        assert!(backoff(30) <= Duration::from_millis(10_000));
    }
}
