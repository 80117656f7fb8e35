//! The embedded S3-compatible store: s3share's zero-configuration default.
//!
//! With no cloud account configured, s3share serves a real S3 API (s3s-fs over a data folder)
//! on `127.0.0.1`, so that everything else, presigned links included, works exactly as it does
//! against AWS. Its credentials are generated once and kept in a 0600 file; its port is chosen
//! once and remembered, so a link signed today still points at the right place tomorrow. All its
//! folders are 0700 and all its files 0600: other users of the machine see nothing of it.
//!
//! Several s3share processes share one store:
//! - The state (port, credentials) is created under an exclusive lock on a file in the config
//!   folder, so processes starting at the same moment on a fresh machine agree on one state.
//! - An exclusive lock on a file in the data folder says who serves. The first process takes it
//!   and serves; later ones use that server and wait on the lock in the background, so when the
//!   serving process exits the next one takes over on the same port and links keep working as
//!   long as any s3share process runs. A server lets go of its listener before its lock.
//! - A process that does not hold the lock sends nothing to the port before whoever answers
//!   there has proven it knows the store's secret (a challenge on [`PROOF_PATH`]): another
//!   program could have taken the port, and it must not receive the user's files.

mod body;
mod conditions;
mod listing;
mod multipart;
mod private;
mod verify;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit as _, Mac as _};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use private::PrivateFs;
pub use verify::VerifyingFs;

/// Name of the bucket the embedded store creates on first use.
pub const DEFAULT_BUCKET: &str = "s3share";
/// Region the embedded store signs with; any value works as long as both sides agree.
pub const REGION: &str = "us-east-1";
/// The store's challenge route: `GET /.s3share/proof?nonce=HEX` answers the lowercase hex of
/// HMAC-SHA256(secret key, `s3share-store:` + nonce). No bucket can be named `.s3share`, so the
/// route hides no S3 request. The context string keeps the answers apart from SigV4's own HMACs
/// (which are keyed with `AWS4` + secret), so the route signs nothing S3 would accept.
pub const PROOF_PATH: &str = "/.s3share/proof";
const PROOF_CONTEXT: &[u8] = b"s3share-store:";

/// How long a process that does not serve waits for the store to answer when it starts.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long a process taking over keeps trying to listen on the port the previous one left.
const TAKEOVER_BIND_WAIT: Duration = Duration::from_secs(10);
/// How long one challenge may take; a store on loopback answers in milliseconds.
const PROOF_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of the embedded store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the store's folders or files failed.
    #[error("embedded store: {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The state file exists but cannot be understood.
    #[error("embedded store: {} is damaged ({reason}); move it away to start afresh (links it signed will stop working)", path.display())]
    BadState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process holds the store but does not answer on its port.
    #[error("embedded store: another s3share process holds {} but nothing answers on 127.0.0.1:{port}; stop that process and retry", path.display())]
    Unreachable {
        /// The data folder.
        path: PathBuf,
        /// The remembered port.
        port: u16,
    },
    /// Something answers on the store's port but cannot prove it knows the store's secret.
    #[error("embedded store: the program answering on 127.0.0.1:{port} is not the store in {} ({detail}); nothing was sent to it. Stop that program (an older s3share, or anything else listening there) and retry", path.display())]
    NotTheStore {
        /// The data folder.
        path: PathBuf,
        /// The remembered port.
        port: u16,
        /// How it failed the challenge.
        detail: String,
    },
}

/// Where the store keeps its state (credentials, port) and its objects.
#[derive(Debug, Clone)]
pub struct StorePaths {
    /// Folder of `local-store.json` (credentials and port, mode 0600).
    pub config_dir: PathBuf,
    /// Folder of the objects, one subfolder per bucket.
    pub data_dir: PathBuf,
}

impl StorePaths {
    /// The user's folders: `$S3SHARE_HOME/{config,data}` when set, else the XDG config and data
    /// folders (`~/.config/s3share`, `~/.local/share/s3share`).
    pub fn for_user() -> Option<Self> {
        if let Some(home) = std::env::var_os("S3SHARE_HOME") {
            let home = PathBuf::from(home);
            return Some(Self {
                config_dir: home.join("config"),
                data_dir: home.join("data"),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "s3share")?;
        Some(Self {
            config_dir: dirs.config_dir().to_owned(),
            data_dir: dirs.data_dir().to_owned(),
        })
    }

    fn state_file(&self) -> PathBuf {
        self.config_dir.join("local-store.json")
    }

    /// Locked while the state is read or created.
    fn state_lock_file(&self) -> PathBuf {
        self.config_dir.join("local-store.lock")
    }

    fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

    /// Locked for as long as a process serves the store.
    fn lock_file(&self) -> PathBuf {
        self.data_dir.join("serve.lock")
    }
}

/// What the store remembers between runs. Secrets live only in this 0600 file.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoreState {
    /// The loopback port links point at.
    pub port: u16,
    /// Access key id of the store's only identity.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreState")
            .field("port", &self.port)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// A running (here or in another s3share process) embedded store.
#[derive(Debug)]
pub struct LocalStore {
    state: StoreState,
    paths: StorePaths,
    /// Whether this process answers on the port right now (it may start to, on a takeover).
    serving: Arc<watch::Sender<bool>>,
    stop: CancellationToken,
}

impl LocalStore {
    /// Opens the store at `paths`: creates its state and default bucket on first use, then
    /// serves it from this process or finds the s3share process that already does.
    ///
    /// Must be called within a tokio runtime, which then runs the server.
    pub async fn open(paths: StorePaths) -> Result<Self, StoreError> {
        let mut state = {
            let (paths, data_dir) = (paths.clone(), paths.data_dir.clone());
            // File locks block; the state lock is only ever held for a moment.
            tokio::task::spawn_blocking(move || {
                private::prepare_folders(&paths)?;
                load_or_create_state(&paths)
            })
            .await
            .map_err(|e| StoreError::Io {
                what: "cannot prepare",
                path: data_dir,
                source: std::io::Error::other(e),
            })??
        };
        let lock_path = paths.lock_file();
        let lock = private::open_private_file(&lock_path).map_err(|source| StoreError::Io {
            what: "cannot open",
            path: lock_path.clone(),
            source,
        })?;
        let stop = CancellationToken::new();
        let serving = Arc::new(watch::Sender::new(false));

        // Until the port answers with proof, keep trying the lock too: the process serving a
        // moment ago may have exited, and then this one serves.
        let deadline = Instant::now() + ANSWER_WAIT;
        let serve_here = loop {
            match fs4::fs_std::FileExt::try_lock_exclusive(&lock) {
                Ok(true) => break true,
                Ok(false) => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        what: "cannot lock",
                        path: lock_path,
                        source,
                    });
                }
            }
            match probe(state.port, &state.secret_key).await {
                Probe::Proven => break false,
                Probe::Refused(detail) => {
                    return Err(StoreError::NotTheStore {
                        path: paths.data_dir.clone(),
                        port: state.port,
                        detail,
                    });
                }
                Probe::NoAnswer => {}
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Unreachable {
                    path: paths.data_dir.clone(),
                    port: state.port,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            // The serving process may have moved the store to another port.
            if let Some(s) = read_state(&paths)? {
                state = s;
            }
        };

        if serve_here {
            if let Some(s) = read_state(&paths)? {
                state = s;
            }
            let listener = listen_here(&paths, &mut state).await?;
            spawn_server(
                listener,
                &paths,
                &state,
                lock,
                stop.clone(),
                serving.clone(),
            )?;
        } else {
            spawn_takeover(
                lock,
                paths.clone(),
                state.clone(),
                stop.clone(),
                serving.clone(),
            );
        }
        tracing::info!(
            port = state.port,
            access_key = %state.access_key,
            serving_here = serve_here,
            "embedded store ready"
        );
        Ok(Self {
            state,
            paths,
            serving,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.state.port)
    }

    /// The store's port, credentials included.
    pub fn state(&self) -> &StoreState {
        &self.state
    }

    /// Where the store lives.
    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }

    /// Whether this process is the one answering on the port right now.
    pub fn serving_here(&self) -> bool {
        *self.serving.borrow()
    }

    /// Waits until this process answers on the port: at once when it does, else when it has
    /// taken over from the process that served before. A takeover that fails (logged as an
    /// error) never ends this wait: bound it with a timeout.
    pub async fn wait_until_serving_here(&self) {
        let mut serving = self.serving.subscribe();
        // The sender lives as long as `self`, so this ends only when serving.
        let _ = serving.wait_for(|here| *here).await;
    }

    /// Waits until this process is stopped (Ctrl+C), serving the store meanwhile.
    pub async fn serve_until_ctrl_c(&self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Reads the state, or creates it, under the state lock: of several processes starting at once
/// on a fresh machine, one creates it and the others read what it wrote.
fn load_or_create_state(paths: &StorePaths) -> Result<StoreState, StoreError> {
    let _lock = lock_state(paths)?;
    if let Some(state) = read_state(paths)? {
        return Ok(state);
    }
    let file = paths.state_file();
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|source| StoreError::Io {
            what: "cannot find a free port for",
            path: file,
            source,
        })?
        .port();
    let state = StoreState {
        port,
        access_key: random_token(20, false),
        secret_key: random_token(40, true),
    };
    save_state(paths, &state)?;
    Ok(state)
}

/// Takes the state lock; it is released when the returned file is dropped.
fn lock_state(paths: &StorePaths) -> Result<std::fs::File, StoreError> {
    let path = paths.state_lock_file();
    let file = private::open_private_file(&path)
        .and_then(|f| fs4::fs_std::FileExt::lock_exclusive(&f).map(|()| f))
        .map_err(|source| StoreError::Io {
            what: "cannot lock",
            path,
            source,
        })?;
    Ok(file)
}

/// The state as saved, or `None` when there is none yet. Writers replace the file atomically,
/// so reading needs no lock.
fn read_state(paths: &StorePaths) -> Result<Option<StoreState>, StoreError> {
    let file = paths.state_file();
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::BadState {
                path: file,
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            what: "cannot read",
            path: file,
            source,
        }),
    }
}

/// Writes the state atomically (temporary file, then rename). Callers hold the state lock.
fn save_state(paths: &StorePaths, state: &StoreState) -> Result<(), StoreError> {
    use std::io::Write as _;
    let file = paths.state_file();
    let err = |what| {
        let path = file.clone();
        move |source| StoreError::Io { what, path, source }
    };
    private::create_private_dir(&paths.config_dir).map_err(err("cannot create the folder of"))?;
    let tmp = file.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, private::FILE_MODE);
    let mut out = options.open(&tmp).map_err(err("cannot write"))?;
    // A leftover temporary file keeps its old mode when opened again.
    private::make_private(&tmp).map_err(err("cannot write"))?;
    let json = serde_json::to_vec_pretty(state).expect("state serializes");
    out.write_all(&json)
        .and_then(|()| out.sync_all())
        .map_err(err("cannot write"))?;
    std::fs::rename(&tmp, &file).map_err(err("cannot write"))
}

fn random_token(len: usize, mixed: bool) -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const MIXED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let alphabet = if mixed { MIXED } else { UPPER };
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

async fn bind(port: u16) -> std::io::Result<TcpListener> {
    // tokio sets SO_REUSEADDR, so a port just left by an exiting owner can be taken over.
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Listens on the remembered port as the lock holder; when a stranger has taken that port,
/// moves the store to a new one and remembers it.
async fn listen_here(
    paths: &StorePaths,
    state: &mut StoreState,
) -> Result<TcpListener, StoreError> {
    if let Ok(listener) = bind(state.port).await {
        return Ok(listener);
    }
    // Links signed for the old port are lost whatever we do.
    let listener = bind(0).await.map_err(|source| StoreError::Io {
        what: "cannot listen on loopback for",
        path: paths.data_dir.clone(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| StoreError::Io {
            what: "cannot listen for",
            path: paths.data_dir.clone(),
            source,
        })?
        .port();
    tracing::warn!(
        old = state.port,
        new = port,
        "embedded store port was taken; links signed for the old port stop working"
    );
    state.port = port;
    let (paths, moved, file) = (paths.clone(), state.clone(), paths.state_file());
    tokio::task::spawn_blocking(move || {
        let _lock = lock_state(&paths)?;
        save_state(&paths, &moved)
    })
    .await
    .map_err(|e| StoreError::Io {
        what: "cannot write",
        path: file,
        source: std::io::Error::other(e),
    })??;
    Ok(listener)
}

/// How whoever answers on the store's port met the challenge.
#[derive(Debug, PartialEq)]
enum Probe {
    /// It knows the secret: it is the store.
    Proven,
    /// Nothing answered (refused, closed, or too slow).
    NoAnswer,
    /// Something answered without the proof; why.
    Refused(String),
}

/// Challenges whoever answers on `port` to prove it knows `secret`. The request carries no body
/// and nothing of the secret.
async fn probe(port: u16, secret: &str) -> Probe {
    let mut nonce = [0u8; 32];
    rand::rng().fill(&mut nonce);
    let nonce = hex(&nonce);
    // Plain HTTP on loopback: the shared TLS set-up keeps the system's roots unread.
    let builder = match crate::s3::tls::client_builder(true) {
        Ok(builder) => builder,
        Err(e) => return Probe::Refused(format!("cannot send the challenge: {e}")),
    };
    let client = match builder
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROOF_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Probe::Refused(format!("cannot send the challenge: {e}")),
    };
    let url = format!("http://127.0.0.1:{port}{PROOF_PATH}?nonce={nonce}");
    let Ok(mut response) = client.get(&url).send().await else {
        return Probe::NoAnswer;
    };
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Probe::Refused(format!("it answered the challenge with HTTP {status}"));
    }
    let mut answer = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                answer.extend_from_slice(&chunk);
                if answer.len() > 256 {
                    return Probe::Refused("its answer to the challenge is too long".into());
                }
            }
            Ok(None) => break,
            Err(_) => return Probe::NoAnswer,
        }
    }
    let expected = proof(secret.as_bytes(), &nonce);
    if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), answer.trim_ascii()).into() {
        Probe::Proven
    } else {
        Probe::Refused("its answer to the challenge is wrong".into())
    }
}

/// Hex of HMAC-SHA256(key, [`PROOF_CONTEXT`] + nonce).
fn proof(key: &[u8], nonce: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(PROOF_CONTEXT);
    mac.update(nonce.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The answer to a request on [`PROOF_PATH`].
fn proof_response<B>(key: &[u8], req: &http::Request<B>) -> http::Response<s3s::Body> {
    let nonce = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("nonce=")))
        .filter(|n| (32..=128).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_hexdigit()));
    let (status, body) = match nonce {
        Some(nonce) if req.method() == http::Method::GET => {
            (http::StatusCode::OK, proof(key, nonce))
        }
        _ => (
            http::StatusCode::BAD_REQUEST,
            format!("expected GET {PROOF_PATH}?nonce=HEX (32 to 128 hex digits)"),
        ),
    };
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(s3s::Body::from(body))
        .expect("a static response is valid")
}

/// What a serving process holds, in the order it lets go of it (fields drop in declaration
/// order, so even a task dropped with its runtime closes the listener before it unlocks).
struct Serving {
    listener: TcpListener,
    connections: JoinSet<()>,
    lock: std::fs::File,
}

impl Serving {
    /// Stops serving: closes the listener, ends the open connections, then unlocks, so that
    /// whoever gets the lock next finds the port free.
    async fn release(self, serving: &watch::Sender<bool>) {
        let Self {
            listener,
            mut connections,
            lock,
        } = self;
        drop(listener);
        connections.shutdown().await;
        serving.send_replace(false);
        let _ = fs4::fs_std::FileExt::unlock(&lock);
        drop(lock);
    }
}

fn spawn_server(
    listener: TcpListener,
    paths: &StorePaths,
    state: &StoreState,
    lock: std::fs::File,
    stop: CancellationToken,
    serving: Arc<watch::Sender<bool>>,
) -> Result<(), StoreError> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;

    let objects = paths.objects_dir();
    let fs = VerifyingFs::new(objects.clone())
        .and_then(|fs| PrivateFs::new(fs, &objects))
        .map_err(|source| StoreError::Io {
            what: "cannot open",
            path: objects.clone(),
            source,
        })?;
    let s3 = {
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(
            state.access_key.clone(),
            state.secret_key.clone(),
        ));
        b.build()
    };
    let key: Arc<[u8]> = state.secret_key.as_bytes().into();
    // The challenge route in front of the S3 service: the secret never leaves this process.
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let s3 = s3.clone();
        let key = key.clone();
        async move {
            if req.uri().path() == PROOF_PATH {
                return Ok(proof_response(&key, &req));
            }
            hyper::service::Service::call(&s3, req).await
        }
    });
    serving.send_replace(true);
    tokio::spawn(async move {
        let mut held = Serving {
            listener,
            connections: JoinSet::new(),
            lock,
        };
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                Some(_) = held.connections.join_next(), if !held.connections.is_empty() => {}
                accepted = held.listener.accept() => match accepted {
                    Ok((socket, _)) => {
                        let conn = http
                            .serve_connection(TokioIo::new(socket), service.clone())
                            .into_owned();
                        held.connections.spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    Err(e) => {
                        tracing::warn!("embedded store: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        held.release(&serving).await;
    });
    Ok(())
}

/// Waits (on a named thread, since file locks block) for the serving process to let go, then
/// serves the store from here on the same port.
fn spawn_takeover(
    lock: std::fs::File,
    paths: StorePaths,
    state: StoreState,
    stop: CancellationToken,
    serving: Arc<watch::Sender<bool>>,
) {
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("s3share-store-takeover".into())
        .spawn(move || {
            if fs4::fs_std::FileExt::lock_exclusive(&lock).is_err() || stop.is_cancelled() {
                return;
            }
            runtime.block_on(async move {
                match listen_for_takeover(&paths, &state, &stop).await {
                    Ok(Some(listener)) => {
                        match spawn_server(listener, &paths, &state, lock, stop, serving) {
                            Ok(()) => tracing::info!(
                                port = state.port,
                                "embedded store: took over serving"
                            ),
                            Err(e) => tracing::error!("embedded store: takeover failed: {e}"),
                        }
                    }
                    Ok(None) => {}
                    // The lock is let go (dropped here), so that a new s3share process can
                    // start serving the store, on another port if it must.
                    Err(e) => tracing::error!("{e}"),
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("embedded store: cannot watch for takeover: {e}");
    }
}

/// Listens on the store's port after the previous owner let go, retrying for a while: its
/// socket may still be closing. A program on the port that cannot prove it is the store is a
/// stranger, not a closing owner, and is not waited for. `None` when stopped meanwhile.
async fn listen_for_takeover(
    paths: &StorePaths,
    state: &StoreState,
    stop: &CancellationToken,
) -> Result<Option<TcpListener>, StoreError> {
    let deadline = Instant::now() + TAKEOVER_BIND_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        let error = match bind(state.port).await {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) => e,
        };
        if error.kind() == std::io::ErrorKind::AddrInUse
            && let Probe::Refused(detail) = probe(state.port, &state.secret_key).await
        {
            return Err(StoreError::NotTheStore {
                path: paths.data_dir.clone(),
                port: state.port,
                detail,
            });
        }
        if stop.is_cancelled() {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Io {
                what: "cannot take over serving",
                path: paths.data_dir.clone(),
                source: error,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_answer_only_well_formed_challenges() {
        let nonce = "00ff".repeat(8);
        let ok = http::Request::get(format!("{PROOF_PATH}?nonce={nonce}"))
            .body(())
            .unwrap();
        let r = proof_response(b"secret", &ok);
        assert_eq!(r.status(), 200);
        assert_eq!(proof(b"secret", &nonce).len(), 64);
        assert_ne!(proof(b"secret", &nonce), proof(b"other", &nonce));
        for bad in ["", "?nonce=abc", "?nonce=zz", "?other=1"] {
            let req = http::Request::get(format!("{PROOF_PATH}{bad}"))
                .body(())
                .unwrap();
            assert_eq!(proof_response(b"secret", &req).status(), 400, "{bad}");
        }
        let put = http::Request::put(format!("{PROOF_PATH}?nonce={nonce}"))
            .body(())
            .unwrap();
        assert_eq!(proof_response(b"secret", &put).status(), 400);
    }

    /// An HTTP server that answers 200 "ok" to everything, on a port of its own.
    async fn impostor() -> (TcpListener, u16) {
        let listener = bind(0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    fn answer_everything(listener: TcpListener) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_takeover_does_not_wait_for_a_stranger_on_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths {
            config_dir: dir.path().join("config"),
            data_dir: dir.path().join("data"),
        };
        let (listener, port) = impostor().await;
        answer_everything(listener);
        let state = StoreState {
            port,
            access_key: "AK".into(),
            secret_key: "secret".into(),
        };
        assert_eq!(
            probe(port, "secret").await,
            Probe::Refused("its answer to the challenge is wrong".into())
        );
        let started = Instant::now();
        let r = listen_for_takeover(&paths, &state, &CancellationToken::new()).await;
        assert!(
            matches!(r, Err(StoreError::NotTheStore { port: p, .. }) if p == port),
            "{r:?}"
        );
        assert!(started.elapsed() < TAKEOVER_BIND_WAIT / 2);
    }
}
