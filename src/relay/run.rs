//! Starting a relay the way `s3share serve` and the desktop app's switch both do: one place,
//! so the two never disagree on the secret file, the noted links base or streaming.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::{RelayServer, RelayState, Secret, ServerConfig};
use crate::error::{Error, Result};
use crate::s3::S3Client;

/// How to start a relay.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The base of the links as teammates reach the relay (default: `http://` + the address
    /// it listens on).
    pub public_url: Option<String>,
    /// The secret file ([`Secret::path`] when `None`).
    pub secret_file: Option<PathBuf>,
    /// Stream every request instead of redirecting: for the embedded store, which listens on
    /// this machine's loopback where a teammate cannot follow a redirect.
    pub stream_everything: bool,
    /// Threads of its own that answer connections (see [`ServerConfig::workers`]); 0: the
    /// runtime that starts it does.
    pub workers: usize,
}

/// A relay that runs until [`RunningRelay::stop`] or until it is dropped.
#[derive(Debug)]
pub struct RunningRelay {
    server: RelayServer,
    watch: tokio::task::JoinHandle<()>,
    /// The secret it verifies with (clones share the keys: a rotation reaches them all).
    pub secret: Secret,
    /// The secret file.
    pub secret_path: PathBuf,
    /// The base of its links.
    pub public_url: String,
    /// Why the links base could not be noted beside the secret (then `link --relay` in another
    /// process needs it given explicitly).
    pub note_failed: Option<String>,
    /// Whether its note beside the secret is still to be taken back when it stops.
    noted: std::sync::atomic::AtomicBool,
}

impl RunningRelay {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops accepting connections and watching the secret file.
    pub fn stop(&self) {
        self.server.stop();
        self.watch.abort();
        self.forget_note();
    }

    /// [`RunningRelay::stop`], returning once its address is free to listen on again.
    pub async fn stop_and_release(self) {
        self.watch.abort();
        self.forget_note();
        self.server.stop_and_release().await;
    }

    /// Takes its links base back from beside the secret (once), so `link --relay` stops
    /// minting links for an address nothing answers on.
    fn forget_note(&self) {
        if self.noted.swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Err(e) = super::forget_public_url(&self.secret_path, &self.public_url)
        {
            tracing::warn!("cannot take the relay's address back from beside its secret: {e}");
        }
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a relay for `client` on the current tokio runtime: reads (or creates) the secret,
/// binds, serves, watches the secret file so a rotation needs no restart, and notes the base of
/// its links beside the secret so that `link --relay` in another process mints links it
/// accepts.
pub async fn start(client: S3Client, options: RelayOptions) -> Result<RunningRelay> {
    let secret_path = Secret::path(options.secret_file.as_deref())?;
    let secret = Secret::load_or_create(&secret_path)?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|reason| Error::Listen {
            address: options.listen.to_string(),
            reason,
        })?;
    let addr = listener.local_addr().map_err(|reason| Error::Listen {
        address: options.listen.to_string(),
        reason,
    })?;
    let public_url = options.public_url.filter(|u| !u.is_empty());
    let mut state = RelayState::new(
        secret.clone(),
        Arc::new(client),
        addr,
        public_url.as_deref(),
    )?;
    if options.stream_everything {
        state = state.streaming_everything();
    }
    let config = ServerConfig {
        listen: addr,
        workers: options.workers,
        ..Default::default()
    };
    // `relay-secret rotate` (or a new file from a deployment) reaches this relay without a
    // restart: the file is re-read when it changes.
    let watch = state.secret.watch(&secret_path);
    let server = match RelayServer::serve(listener, Arc::new(state), config) {
        Ok(s) => s,
        Err(e) => {
            watch.abort();
            return Err(e);
        }
    };
    let public_url = public_url.unwrap_or_else(|| format!("http://{}", server.local_addr()));
    let note_failed = super::remember_public_url(&secret_path, &public_url)
        .err()
        .map(|e| e.to_string());
    Ok(RunningRelay {
        server,
        watch,
        secret,
        secret_path,
        public_url,
        noted: std::sync::atomic::AtomicBool::new(note_failed.is_none()),
        note_failed,
    })
}
