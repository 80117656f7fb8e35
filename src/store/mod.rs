//! The embedded S3-compatible store: s3share's zero-configuration default.
//!
//! With no cloud account configured, s3share serves a real S3 API (s3s-fs over a data folder)
//! on `127.0.0.1`, so that everything else, presigned links included, works exactly as it does
//! against AWS. Its credentials are generated once and kept in a 0600 file; its port is chosen
//! once and remembered, so a link signed today still points at the right place tomorrow.
//!
//! Several s3share processes share one store: an exclusive lock on the data folder says who
//! serves it. The first process takes the lock and serves; later ones use that server and wait
//! on the lock in the background, so when the serving process exits the next one takes over on
//! the same port and links keep working as long as any s3share process runs.

mod verify;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use verify::VerifyingFs;

/// Name of the bucket the embedded store creates on first use.
pub const DEFAULT_BUCKET: &str = "s3share";
/// Region the embedded store signs with; any value works as long as both sides agree.
pub const REGION: &str = "us-east-1";

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

    fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

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
    serving_here: bool,
    stop: CancellationToken,
}

impl LocalStore {
    /// Opens the store at `paths`: creates its state and default bucket on first use, then
    /// serves it from this process or finds the s3share process that already does.
    ///
    /// Must be called within a tokio runtime, which then runs the server.
    pub async fn open(paths: StorePaths) -> Result<Self, StoreError> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { what, path, source }
        };
        std::fs::create_dir_all(paths.objects_dir().join(DEFAULT_BUCKET))
            .map_err(io("cannot create", &paths.objects_dir()))?;
        let mut state = load_or_create_state(&paths)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(paths.lock_file())
            .map_err(io("cannot open", &paths.lock_file()))?;
        let stop = CancellationToken::new();

        let serving_here = match fs4::fs_std::FileExt::try_lock_exclusive(&lock) {
            Ok(true) => {
                let listener = match bind(state.port).await {
                    Ok(l) => l,
                    Err(_) => {
                        // The remembered port is taken by a stranger: links signed for it are
                        // lost whatever we do, so move on to a new port and remember it.
                        let l = bind(0)
                            .await
                            .map_err(io("cannot listen on loopback for", &paths.data_dir))?;
                        let port = l
                            .local_addr()
                            .map_err(io("cannot listen for", &paths.data_dir))?
                            .port();
                        tracing::warn!(
                            old = state.port,
                            new = port,
                            "embedded store port was taken; links signed for the old port stop working"
                        );
                        state.port = port;
                        save_state(&paths, &state)?;
                        l
                    }
                };
                spawn_server(listener, &paths, &state, lock, stop.clone())?;
                true
            }
            _ => {
                wait_until_answering(state.port)
                    .await
                    .map_err(|()| StoreError::Unreachable {
                        path: paths.data_dir.clone(),
                        port: state.port,
                    })?;
                spawn_takeover(lock, paths.clone(), state.clone(), stop.clone());
                false
            }
        };
        tracing::info!(port = state.port, serving_here, "embedded store ready");
        Ok(Self {
            state,
            paths,
            serving_here,
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
        self.serving_here
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

fn load_or_create_state(paths: &StorePaths) -> Result<StoreState, StoreError> {
    let file = paths.state_file();
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::BadState {
            path: file.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(|source| StoreError::Io {
                    what: "cannot find a free port for",
                    path: file.clone(),
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
        Err(source) => Err(StoreError::Io {
            what: "cannot read",
            path: file,
            source,
        }),
    }
}

fn save_state(paths: &StorePaths, state: &StoreState) -> Result<(), StoreError> {
    use std::io::Write as _;
    let file = paths.state_file();
    let err = |what| {
        let path = file.clone();
        move |source| StoreError::Io { what, path, source }
    };
    std::fs::create_dir_all(&paths.config_dir).map_err(err("cannot create the folder of"))?;
    let tmp = file.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&tmp).map_err(err("cannot write"))?;
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

async fn wait_until_answering(port: u16) -> Result<(), ()> {
    for _ in 0..50 {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(())
}

fn spawn_server(
    listener: TcpListener,
    paths: &StorePaths,
    state: &StoreState,
    lock: std::fs::File,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;

    let fs = VerifyingFs::new(paths.objects_dir()).map_err(|source| StoreError::Io {
        what: "cannot open",
        path: paths.objects_dir(),
        source,
    })?;
    let service = {
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(
            state.access_key.clone(),
            state.secret_key.clone(),
        ));
        b.build()
    };
    tokio::spawn(async move {
        // Held for as long as we serve: the lock is what tells other processes we do.
        let _lock = lock;
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let socket = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(e) => {
                        tracing::warn!("embedded store: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = conn => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    });
    Ok(())
}

/// Waits (on a named thread, since file locks block) for the serving process to exit, then
/// serves the store from here on the same port.
fn spawn_takeover(
    lock: std::fs::File,
    paths: StorePaths,
    state: StoreState,
    stop: CancellationToken,
) {
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("s3share-store-takeover".into())
        .spawn(move || {
            if fs4::fs_std::FileExt::lock_exclusive(&lock).is_err() || stop.is_cancelled() {
                return;
            }
            runtime.block_on(async move {
                match bind(state.port).await {
                    Ok(listener) => {
                        if let Err(e) = spawn_server(listener, &paths, &state, lock, stop) {
                            tracing::warn!("embedded store: takeover failed: {e}");
                        } else {
                            tracing::info!(port = state.port, "embedded store: took over serving");
                        }
                    }
                    Err(e) => tracing::warn!(
                        port = state.port,
                        "embedded store: takeover could not listen: {e}"
                    ),
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("embedded store: cannot watch for takeover: {e}");
    }
}
