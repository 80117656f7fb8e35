//! Receiving download bodies on threads of their own, the way `curl` does: each chunk the
//! connection reads is written to the file right away, on the thread that read it.
//!
//! Measured on 2 cores (1 GiB from SeaweedFS on loopback to tmpfs), a body read on the main
//! runtime cost twice `curl`'s CPU: hyper's connection task and the task reading the body ran on
//! different worker threads (a futex wake-up and a context switch per chunk, 14,000 per GiB),
//! and chunks held for batched writes kept hyper from reusing its read buffer (130,000 page
//! faults per GiB on fresh memory). Here a connection, its body and the file writes share one
//! thread (a current-thread runtime): 2,700 context switches and 500 page faults per GiB, the
//! CPU of `curl`.
//!
//! A receiving thread blocks on its file writes (they go to the page cache; the disk flushes
//! for resume checkpoints and the final sync run elsewhere). Several downloads share a thread;
//! a few threads serve a client, each with its own HTTP client, since a pooled connection
//! belongs to the runtime that opened it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::sync::{Notify, oneshot};

use super::ByteCounter;

/// The receiving threads of one client, started as downloads need them.
pub(crate) struct Receivers {
    threads: parking_lot::Mutex<Vec<Arc<ReceiverThread>>>,
    /// At most this many threads: one per core, at most four.
    most: usize,
    next: AtomicUsize,
    connect: Duration,
    /// The server is on this machine: no proxy (see `s3::tls::client_builder`).
    loopback: bool,
}

struct ReceiverThread {
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    /// Dropped with the client: the thread then ends.
    _stop: oneshot::Sender<()>,
}

impl ReceiverThread {
    /// Starts a thread; `connect` bounds opening a connection.
    fn start(connect: Duration, loopback: bool) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("s3share-receive".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let http = crate::s3::tls::client_builder(loopback)
            .map_err(std::io::Error::other)?
            .connect_timeout(connect)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            runtime: handle,
            http,
            _stop: stop,
        })
    }
}

impl Receivers {
    /// No thread yet; `connect` bounds opening a connection; `loopback`: the server is on this
    /// machine.
    pub(crate) fn new(connect: Duration, loopback: bool) -> Self {
        Self {
            threads: parking_lot::Mutex::new(Vec::new()),
            most: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            next: AtomicUsize::new(0),
            connect,
            loopback,
        }
    }

    /// The next thread in turn, started if it is not yet.
    fn pick(&self) -> std::io::Result<Arc<ReceiverThread>> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.most;
        let mut threads = self.threads.lock();
        if let Some(t) = threads.get(at) {
            return Ok(t.clone());
        }
        let started = Arc::new(ReceiverThread::start(self.connect, self.loopback)?);
        threads.push(started.clone());
        Ok(started)
    }

    /// Sends a GET for `url` with `headers` on one of the threads and waits for the answer's
    /// head (at most `idle`). The body stays on that thread until [`Pending::receive`] says
    /// where it goes; dropping the [`Pending`] drops the request.
    pub(crate) async fn get(
        &self,
        url: String,
        headers: HeaderMap,
        idle: Duration,
    ) -> Result<Pending, Sent> {
        let thread = self.pick().map_err(|e| Sent::NoThread(e.to_string()))?;
        let (head_tx, head_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        let request = thread.http.get(url).headers(headers);
        let task = thread.runtime.spawn(receive(request, idle, head_tx, go_rx));
        let task = AbortOnDrop(task);
        match head_rx.await {
            Ok(Ok(headers)) => Ok(Pending {
                headers,
                go: go_tx,
                task,
            }),
            Ok(Err(failed)) => Err(failed),
            // The thread is gone (the client is being dropped).
            Err(_) => Err(Sent::Unreachable("the receiving thread stopped".to_owned())),
        }
    }
}

/// How a request ended that brought no body to receive.
#[derive(Debug)]
pub(crate) enum Sent {
    /// The server refused: its status, headers and body (an S3 error document).
    Refused(u16, HeaderMap, String),
    /// No connection (or it broke before the answer's head); in words, without the URL.
    Unreachable(String),
    /// The answer's head did not come within the idle timeout.
    Silent,
    /// No receiving thread could be started (the system is out of threads or memory).
    NoThread(String),
}

/// An answer (2xx) whose body waits on its receiving thread.
pub(crate) struct Pending {
    pub headers: HeaderMap,
    go: oneshot::Sender<Sink>,
    task: AbortOnDrop,
}

impl Pending {
    /// Receives the body into `sink`; resolves when it ended, one way or another.
    /// Dropping the future stops the receiving.
    pub(crate) fn receive(self, sink: Sink) -> Receiving {
        // The task only ends before this when the answer was not a success.
        let _ = self.go.send(sink);
        Receiving(self.task)
    }
}

/// A body being received; resolves to how it ended.
pub(crate) struct Receiving(AbortOnDrop);

impl std::future::Future for Receiving {
    type Output = BodyEnd;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<BodyEnd> {
        std::pin::Pin::new(&mut self.0.0).poll(cx).map(|r| match r {
            Ok(end) => end,
            Err(e) => BodyEnd::Broken(format!("the receiving task failed: {e}")),
        })
    }
}

/// Where a body goes.
pub(crate) struct Sink {
    /// The file, written at `at` onwards (positional writes: no shared cursor), or in order
    /// when `stream` says it is a stream.
    pub file: Arc<std::fs::File>,
    pub at: u64,
    /// Body bytes wanted: receiving stops there (the rest of the answer is not read; its
    /// connection closes). `u64::MAX`: all of it.
    pub until: u64,
    /// The file is a stream (standard output, a pipe): it has no positions, and nothing is
    /// flushed to a disk.
    pub stream: bool,
    /// Held while writing, when other bodies write into the same file: writes to one file
    /// are serialised by the kernel anyway, and a writer waiting there spins (6% of the CPU
    /// with two ranges into one file); waiting here, it sleeps.
    pub serial: Option<Arc<parking_lot::Mutex<()>>>,
    pub counter: ByteCounter,
    /// Body bytes written to the file so far (in the page cache: a flush makes them durable).
    pub written: Arc<AtomicU64>,
    /// Told every `checkpoint_every` bytes, and when the body pauses for `stall`: time to make
    /// what came durable. `None`: nobody checkpoints.
    pub checkpoint: Option<(Arc<Notify>, u64)>,
    pub stall: Duration,
    /// The longest silence of the server before the body counts as stalled.
    pub idle: Duration,
    /// Compute the body's CRC32C as it comes (returned with [`BodyEnd::Done`]), to check it
    /// against the object's checksum.
    pub crc32c: bool,
}

/// How a body ended. (The bytes written are in [`Sink::written`].)
#[derive(Debug)]
pub(crate) enum BodyEnd {
    /// All of it came (as much as the server sent: the caller checks the length), with its
    /// CRC32C when [`Sink::crc32c`] asked for it.
    Done(Option<u32>),
    /// Nothing came for the idle timeout.
    Stalled,
    /// The connection broke; in words.
    Broken(String),
    /// The file could not be written.
    Disk(std::io::Error),
}

/// Aborts its task when dropped (a cancelled download stops receiving).
struct AbortOnDrop(tokio::task::JoinHandle<BodyEnd>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The receiving task: the request, its head sent back, then (when told) the body.
async fn receive(
    request: reqwest::RequestBuilder,
    idle: Duration,
    head: oneshot::Sender<Result<HeaderMap, Sent>>,
    go: oneshot::Receiver<Sink>,
) -> BodyEnd {
    let response = match tokio::time::timeout(idle, request.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            // The URL is a secret (its signature works for anyone): never in messages or logs.
            let text = crate::error::error_chain(&e.without_url());
            let _ = head.send(Err(Sent::Unreachable(text)));
            return BodyEnd::Done(None);
        }
        Err(_) => {
            let _ = head.send(Err(Sent::Silent));
            return BodyEnd::Done(None);
        }
    };
    let status = response.status();
    if !status.is_success() {
        let headers = response.headers().clone();
        let refused = match tokio::time::timeout(idle, response.text()).await {
            Ok(text) => Sent::Refused(status.as_u16(), headers, text.unwrap_or_default()),
            Err(_) => Sent::Silent,
        };
        let _ = head.send(Err(refused));
        return BodyEnd::Done(None);
    }
    if head.send(Ok(response.headers().clone())).is_err() {
        return BodyEnd::Done(None);
    }
    let Ok(sink) = go.await else {
        // Not wanted after all (a resume that must start over, say).
        return BodyEnd::Done(None);
    };
    receive_body(response, sink).await
}

async fn receive_body(mut response: reqwest::Response, sink: Sink) -> BodyEnd {
    let Sink {
        file,
        at,
        until,
        stream,
        serial,
        counter,
        written,
        checkpoint,
        stall,
        idle,
        crc32c,
    } = sink;
    let mut crc = crc32c.then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi));
    let mut done = 0u64;
    // Where the disk was last asked to start writing back (see `start_writeback`).
    let mut written_back = 0u64;
    let mut next_checkpoint = checkpoint.as_ref().map_or(u64::MAX, |(_, every)| *every);
    let tell = |done: u64| {
        written.store(done, Ordering::Release);
        if let Some((notify, _)) = &checkpoint {
            notify.notify_one();
        }
    };
    loop {
        let next = match tokio::time::timeout(stall, response.chunk()).await {
            Ok(next) => next,
            Err(_) => {
                // A pause: a good moment to make what came durable.
                tell(done);
                match tokio::time::timeout(idle.saturating_sub(stall), response.chunk()).await {
                    Ok(next) => next,
                    Err(_) => return BodyEnd::Stalled,
                }
            }
        };
        let mut chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return BodyEnd::Done(crc.map(|h| h.finalize() as u32)),
            Err(e) => return BodyEnd::Broken(crate::error::error_chain(&e.without_url())),
        };
        let room = until - done;
        if chunk.len() as u64 > room {
            chunk.truncate(room as usize);
        }
        let wrote = {
            let _turn = serial.as_ref().map(|m| m.lock());
            if stream {
                std::io::Write::write_all(&mut &*file, &chunk)
            } else {
                write_all_at(&file, &chunk, at + done)
            }
        };
        if let Err(e) = wrote {
            return BodyEnd::Disk(e);
        }
        if let Some(h) = crc.as_mut() {
            h.update(&chunk);
        }
        done += chunk.len() as u64;
        counter.add(chunk.len() as u64);
        if !stream && done - written_back >= WRITEBACK {
            start_writeback(&file, at + written_back, done - written_back);
            written_back = done;
        }
        if done >= next_checkpoint {
            tell(done);
            next_checkpoint = done.saturating_add(checkpoint.as_ref().map_or(u64::MAX, |c| c.1));
        } else {
            written.store(done, Ordering::Release);
        }
        if done == until {
            return BodyEnd::Done(crc.map(|h| h.finalize() as u32));
        }
    }
}

/// How often (in bytes received) the disk is asked to start writing a body back.
const WRITEBACK: u64 = 8 * 1024 * 1024;

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to the disk, without
/// waiting for it. Left alone, it starts only once gigabytes are dirty, so the final flush of a
/// download (and each resume checkpoint's) would wait for all of it; started as the bytes come,
/// the disk works while the network does. 1 GiB to ext4 on this machine's disk, made durable
/// at the end: 507-638 MiB/s without, 849-934 with (8 MiB steps); with a checkpoint's flush
/// every 8 MiB as well, 813-842 without, 842-863 with.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: a plain system call on an open file descriptor; it reads no memory of ours.
        // A failure only loses the head start (the flushes that matter are fsyncs).
        let _ = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt as _;
        let (mut bytes, mut offset) = (bytes, offset);
        while !bytes.is_empty() {
            let n = file.seek_write(bytes, offset)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
            offset += n as u64;
        }
        Ok(())
    }
}
