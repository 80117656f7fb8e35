//! The listener: hyper 1 over TCP, with the limits that keep slow or idle clients from
//! holding the relay, and one access-log line per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::handler::{RelayState, handle_with_body};
use super::stream::request_body;
use crate::error::{Error, Result};

/// The listener's limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:8457` by default; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Most bytes of request line and headers (hyper answers 431 beyond).
    pub max_header_bytes: usize,
    /// Longest time a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// Longest life of one connection: requests are tiny, so this bounds idle keep-alive.
    pub connection_lifetime: Duration,
    /// Most connections served at once; more are closed at once rather than queued.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: super::DEFAULT_LISTEN.parse().expect("valid default"),
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// A running relay; dropping it (or [`RelayServer::stop`]) stops accepting.
#[derive(Debug)]
pub struct RelayServer {
    addr: SocketAddr,
    stop: CancellationToken,
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
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        Self::serve(listener, state, config)
    }

    /// Serves `state` on a listener already bound.
    pub fn serve(
        listener: TcpListener,
        state: Arc<RelayState>,
        config: ServerConfig,
    ) -> Result<Self> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("cannot read the listen address: {e}")))?;
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, state, config, stop.clone()));
        Ok(Self { addr, stop })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections (those under way finish within their lifetime).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<RelayState>,
    config: ServerConfig,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    loop {
        let (stream, client) = tokio::select! {
            () = stop.cancelled() => return,
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%client, "relay: connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        let state = state.clone();
        let config = config.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        // The body stays unread unless an upload is streamed through the
                        // relay, and then flows through chunk by chunk.
                        let reply =
                            handle_with_body(&parts, request_body(body), SystemTime::now(), &state)
                                .await;
                        // The access log: never the token, the secret or the Location.
                        tracing::info!(
                            target: "s3share::relay::access",
                            method = %parts.method,
                            link = reply.link_id.as_deref().unwrap_or("-"),
                            key = reply.key.as_deref().unwrap_or("-"),
                            status = reply.response.status().as_u16(),
                            %client,
                        );
                        Ok::<_, Infallible>(reply.response)
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
                () = tokio::time::sleep(config.connection_lifetime) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}
