//! The listener: hyper 1 over TCP, with the limits that keep slow or idle clients from
//! holding the relay, and one access-log line per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::handler::{RelayState, handle_with_body};
use super::limits::{self, Busy, Limits, LimitsConfig};
use super::stream::{RelayBody, plain, request_body};
use crate::error::{Error, Result};

/// The listener's limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:8457` by default; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Most bytes of request line and headers (hyper answers 431 beyond).
    pub max_header_bytes: usize,
    /// Most bytes of a request's path and query (414 beyond), however small its headers.
    pub max_uri_bytes: usize,
    /// Longest time a client may take to send its request headers. hyper re-arms it while a
    /// kept-alive connection waits for its next request, so it is also the idle timeout.
    pub header_read_timeout: Duration,
    /// How long a connection is kept alive for more requests; a request under way when it
    /// ends (a long streamed transfer) still runs to its end.
    pub connection_lifetime: Duration,
    /// How long a connection being closed (relay stopping, idle connection evicted) gets to
    /// finish the request under way.
    pub shutdown_grace: Duration,
    /// How many connections, and how many refusals per client, it takes.
    pub limits: LimitsConfig,
    /// Threads that answer connections, each with a single-threaded runtime of its own; 0
    /// answers them on the runtime that started the relay. One per core is what `serve` uses: a
    /// redirect is a few microseconds of work, and a work-stealing runtime spends more than that
    /// waking and moving tasks between its threads. Each connection goes to the thread of the
    /// core its packets arrive on, so a client and its thread stay on one core (measured with
    /// `benches/relay.sh` on 2 cores: 72k redirects/s on the shared runtime, 84k on two threads
    /// taking connections in turn, 119k on two threads taking them by core).
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: super::DEFAULT_LISTEN.parse().expect("valid default"),
            max_header_bytes: 16 * 1024,
            // A token is at most 512 characters and an S3 key 1024 bytes (3072 encoded): a
            // longer URI is no link, and is refused before anything looks at it.
            max_uri_bytes: 8 * 1024,
            // A request head is a few hundred bytes: 5 s is ample on any link, and it bounds
            // how long an idle kept-alive connection lingers when no one needs its slot.
            header_read_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            limits: LimitsConfig::default(),
            workers: 0,
        }
    }
}

/// A running relay; dropping it (or [`RelayServer::stop`]) stops accepting.
#[derive(Debug)]
pub struct RelayServer {
    addr: SocketAddr,
    stop: CancellationToken,
    limits: Arc<Limits>,
    /// The task that owns the listening socket: the address is free once it has ended.
    accepting: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for RelayServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RelayServer {
    /// Binds `config.listen` and serves `state` on the current tokio runtime.
    pub async fn start(state: Arc<RelayState>, config: ServerConfig) -> Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|reason| Error::Listen {
                address: config.listen.to_string(),
                reason,
            })?;
        Self::serve(listener, state, config)
    }

    /// Serves `state` on a listener already bound.
    pub fn serve(
        listener: TcpListener,
        state: Arc<RelayState>,
        config: ServerConfig,
    ) -> Result<Self> {
        let addr = listener.local_addr().map_err(|reason| Error::Listen {
            address: config.listen.to_string(),
            reason,
        })?;
        let stop = CancellationToken::new();
        let limits = Limits::new(config.limits.clone());
        let shared = Arc::new(Shared {
            state,
            config,
            limits: limits.clone(),
            stop: stop.clone(),
        });
        let workers = (0..shared.config.workers)
            .map(|i| Worker::start(i, shared.clone()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::TaskFailed {
                task: "starting the relay's threads",
                detail: e.to_string(),
            })?;
        let accepting = tokio::spawn(accept_loop(listener, shared, workers));
        Ok(Self {
            addr,
            stop,
            limits,
            accepting: parking_lot::Mutex::new(Some(accepting)),
        })
    }

    /// Clients whose refused requests are being counted (at most
    /// [`LimitsConfig::max_tracked_clients`]).
    pub fn tracked_clients(&self) -> usize {
        self.limits.tracked_clients()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.limits.connections()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections (those under way finish within their lifetime).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// [`RelayServer::stop`], returning once the listening socket is closed, so that a relay
    /// started next on the same address can bind it (right after `stop` it could not: the
    /// socket closes when the accepting task next runs).
    pub async fn stop_and_release(&self) {
        self.stop.cancel();
        let accepting = self.accepting.lock().take();
        if let Some(task) = accepting {
            let _ = task.await;
        }
    }
}

/// What every connection of one relay shares.
struct Shared {
    state: Arc<RelayState>,
    config: ServerConfig,
    limits: Arc<Limits>,
    stop: CancellationToken,
}

/// A connection accepted and admitted, on its way to a worker.
struct Handoff {
    stream: std::net::TcpStream,
    client: SocketAddr,
    ticket: limits::Ticket,
}

/// A thread answering the connections handed to it on a runtime of its own (see
/// [`ServerConfig::workers`]).
struct Worker {
    handoff: tokio::sync::mpsc::Sender<Handoff>,
}

impl Worker {
    fn start(index: usize, shared: Arc<Shared>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Small: a full queue holds back accepting, it never drops a connection.
        let (handoff, mut arrivals) = tokio::sync::mpsc::channel::<Handoff>(64);
        std::thread::Builder::new()
            .name(format!("relay-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut connections = tokio::task::JoinSet::new();
                    loop {
                        tokio::select! {
                            next = arrivals.recv() => {
                                let Some(h) = next else { break };
                                match tokio::net::TcpStream::from_std(h.stream) {
                                    Ok(stream) => {
                                        connections.spawn(serve_connection(
                                            stream,
                                            h.client,
                                            h.ticket,
                                            shared.clone(),
                                        ));
                                    }
                                    Err(e) => {
                                        tracing::debug!(client = %h.client, "relay: cannot take a connection over: {e}");
                                    }
                                }
                            }
                            Some(_) = connections.join_next(), if !connections.is_empty() => {}
                        }
                    }
                    // Stopped: the connections under way finish (within their grace).
                    while connections.join_next().await.is_some() {}
                });
            })?;
        Ok(Self { handoff })
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, workers: Vec<Worker>) {
    let mut turn = 0usize;
    loop {
        let (stream, client) = tokio::select! {
            () = shared.stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("relay: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Admitting may evict an idle connection to make room (see `limits`); refused only
        // when the slots (the relay's, or this client's) all hold requests under way.
        let ticket = match shared.limits.admit(client.ip()) {
            Ok(t) => t,
            Err(full) => {
                tracing::debug!(%client, ?full, "relay: no free slot; closing a new connection");
                drop(stream);
                continue;
            }
        };
        if workers.is_empty() {
            tokio::spawn(serve_connection(stream, client, ticket, shared.clone()));
            continue;
        }
        // The worker of the core the connection's packets arrive on (where the kernel handles
        // them): a client then talks to one worker, and the scheduler keeps the two together.
        turn = incoming_cpu(&stream).unwrap_or(turn + 1) % workers.len();
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%client, "relay: cannot hand a connection over: {e}");
                continue;
            }
        };
        let handoff = Handoff {
            stream,
            client,
            ticket,
        };
        tokio::select! {
            () = shared.stop.cancelled() => return,
            sent = workers[turn].handoff.send(handoff) => {
                if sent.is_err() {
                    tracing::warn!("relay: worker {turn} has stopped");
                }
            }
        }
    }
}

/// The core whose network processing received the connection (`SO_INCOMING_CPU`).
#[cfg(target_os = "linux")]
fn incoming_cpu(stream: &tokio::net::TcpStream) -> Option<usize> {
    use std::os::fd::AsRawFd as _;
    let mut cpu: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, and a c_int with its length, as getsockopt(2) asks.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_INCOMING_CPU,
            (&raw mut cpu).cast(),
            &raw mut len,
        )
    };
    (r == 0).then(|| usize::try_from(cpu).ok()).flatten()
}

#[cfg(not(target_os = "linux"))]
fn incoming_cpu(_: &tokio::net::TcpStream) -> Option<usize> {
    None
}

/// Answers the requests of one connection until it closes, its lifetime ends, it is evicted
/// or the relay stops.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    client: SocketAddr,
    ticket: limits::Ticket,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let (config, stop) = (&shared.config, &shared.stop);
    let conn_state = ticket.conn.clone();
    let max_uri_bytes = config.max_uri_bytes;
    let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
        // Busy from here until the response is written out: not evictable.
        let busy = conn_state.begin();
        let shared = shared.clone();
        async move {
            let (parts, body) = req.into_parts();
            let uri_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
            let (mut response, link_id, key) = if uri_len > max_uri_bytes {
                (uri_too_long(), None, None)
            } else {
                // The body stays unread unless an upload is streamed through
                // the relay, and then flows through chunk by chunk.
                let r =
                    handle_with_body(&parts, request_body(body), SystemTime::now(), &shared.state)
                        .await;
                (r.response, r.link_id, r.key)
            };
            // Only refusals drain the client's bucket, and only they are slowed: a
            // valid token is answered at once whatever the client did before.
            if limits::is_refusal(response.status().as_u16())
                && let Some(retry) = shared.limits.refused(client.ip())
            {
                // Held back, this connection still counts toward the client's
                // own cap (so a guesser cannot open more to go faster) but may be
                // evicted for anyone else.
                busy.set_held(true);
                tokio::time::sleep(shared.limits.refusal_delay()).await;
                busy.set_held(false);
                response = too_many(retry.saturating_sub(shared.limits.refusal_delay()));
            }
            // The access log: never the token, the secret or the Location.
            tracing::info!(
                target: "s3share::relay::access",
                method = %parts.method,
                link = link_id.as_deref().unwrap_or("-"),
                key = key.as_deref().unwrap_or("-"),
                status = response.status().as_u16(),
                %client,
            );
            let (head, body) = response.into_parts();
            Ok::<_, Infallible>(hyper::Response::from_parts(
                head,
                Tracked { body, _busy: busy },
            ))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%client, "relay connection ended: {e}");
            }
        }
        () = ticket.conn.evicted() => {
            // Chosen while idle; should a request have begun since, it finishes.
            if ticket.conn.busy() {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(config.shutdown_grace, conn).await;
            }
            // Otherwise dropping the connection closes the socket at once.
        }
        () = tokio::time::sleep(config.connection_lifetime) => {
            // The lifetime ends keep-alive, not a transfer: a request under way (a
            // large file streamed through the relay takes minutes) runs to its end,
            // then the connection closes. An idle one closes now.
            conn.as_mut().graceful_shutdown();
            if ticket.conn.busy() {
                let _ = conn.await;
            } else {
                let _ = tokio::time::timeout(config.shutdown_grace, conn).await;
            }
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(config.shutdown_grace, conn).await;
        }
    }
    drop(ticket);
}

/// The answer to a refusal once the client's burst is spent.
fn too_many(retry_after: Duration) -> http::Response<RelayBody> {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut r = plain(
        http::StatusCode::TOO_MANY_REQUESTS,
        "too many refused requests; try again later",
    );
    r.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(secs.max(1)),
    );
    r
}

fn uri_too_long() -> http::Response<RelayBody> {
    plain(
        http::StatusCode::URI_TOO_LONG,
        "this address is longer than any link",
    )
}

/// A response body that keeps its connection marked busy until hyper has written it out
/// and dropped it.
struct Tracked<B> {
    body: B,
    _busy: Busy,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
