//! The command line under Ctrl+C and on a terminal (issue 7): the real binary, a real SIGINT,
//! a real pseudo-terminal. The server is the embedded store served by this test process, behind
//! a small TCP proxy of our own that can hold a transfer open (so it is surely still running when
//! the signal comes).

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::cli_safety::cli;
use crate::support::{TestServer, embedded, random_file};

const MIB: u64 = 1024 * 1024;

/// When the proxy stops forwarding.
#[derive(Clone, Copy)]
enum Hold {
    /// A connection stops forwarding (both ways) once `limit` bytes went one way on it; other
    /// connections go on.
    Connection { upload: bool, limit: u64 },
    /// Like `Connection`, and from then on every connection stops: nothing gets through.
    Everything { limit: u64 },
}

/// A TCP proxy to a server; `held` is set once it holds a transfer.
struct Proxy {
    addr: SocketAddr,
    held: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(to: &str, hold: Hold) -> Proxy {
        let upstream: SocketAddr = to.trim_start_matches("http://").parse().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = Arc::new(AtomicBool::new(false));
        let all_held = held.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let this = Arc::new(AtomicBool::new(false));
                let (up_limit, down_limit, everything) = match hold {
                    Hold::Connection {
                        upload: true,
                        limit,
                    } => (limit, u64::MAX, false),
                    Hold::Connection {
                        upload: false,
                        limit,
                    } => (u64::MAX, limit, false),
                    Hold::Everything { limit } => (limit, u64::MAX, true),
                };
                for (r, w, limit) in [(cr, sw, up_limit), (sr, cw, down_limit)] {
                    let (this, all) = (this.clone(), all_held.clone());
                    tokio::spawn(pump(r, w, limit, this, all, everything));
                }
            }
        });
        Proxy { addr, held }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    limit: u64,
    this: Arc<AtomicBool>,
    all: Arc<AtomicBool>,
    everything: bool,
) {
    let forwarded = AtomicU64::new(0);
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if forwarded.fetch_add(n as u64, Ordering::Relaxed) >= limit {
            this.store(true, Ordering::SeqCst);
            all.store(true, Ordering::SeqCst);
        }
        if this.load(Ordering::SeqCst) || (everything && all.load(Ordering::SeqCst)) {
            // Hold the connection open, forward nothing more: a transfer that cannot finish.
            let _keep = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Waits (bounded) until `ready` says so.
async fn wait_until<F: Future<Output = bool>>(what: &str, mut ready: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) for the process to exit; kills it and fails the test if it does not.
async fn exit_of(mut child: Child, within: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("s3share did not exit within {within:?}; its output:\n{err}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn interrupt(child: &Child) {
    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
}

/// A server seen through a proxy: the CLI talks to the proxy, the test to the server.
fn through(s: &TestServer, proxy: &Proxy) -> TestServer {
    TestServer {
        name: s.name,
        client: s.client.clone(),
        bucket: s.bucket.clone(),
        _connection: None,
        _dir: None,
        endpoint: proxy.endpoint(),
        access_key: s.access_key.clone(),
        secret_key: s.secret_key.clone(),
    }
}

/// Ctrl+C during a multipart `put`: the CLI aborts the upload before it exits, says
/// "cancelled", exits non-zero, and leaves no object and no open multipart upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_put_aborts_the_multipart_upload() {
    let s = embedded().await;
    let proxy = Proxy::start(
        &s.endpoint,
        Hold::Connection {
            upload: true,
            limit: MIB,
        },
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "big.bin", 40 * MIB as usize, 7);
    let child = cli(&through(&s, &proxy), home.path())
        .args([
            "put",
            file.to_str().unwrap(),
            &format!("s3://{}/in/", s.bucket),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = &s.client;
    let bucket = &s.bucket;
    wait_until("an open multipart upload", || async move {
        !client
            .list_open_uploads(bucket, "")
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let held = proxy.held.clone();
    wait_until("a part in flight", || {
        let held = held.clone();
        async move { held.load(Ordering::SeqCst) }
    })
    .await;
    interrupt(&child);
    let (code, err) = exit_of(child, Duration::from_secs(15)).await;
    // 130, as a shell reports a command stopped by Ctrl+C; by itself, not killed by the signal.
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");
    assert!(
        client
            .list_open_uploads(bucket, "")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(client.head(bucket, "in/big.bin").await.unwrap().is_none());
}

/// Ctrl+C during `get`: the partial file is removed. On the old code SIGINT killed the process
/// and left `*.s3share-partial` behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_get_removes_the_partial_file() {
    let s = embedded().await;
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "big.bin", 8 * MIB as usize, 8);
    let item = s3share::transfer::UploadItem {
        path: file,
        key: "big.bin".into(),
        size: 8 * MIB,
    };
    let r = s
        .client
        .upload_file(s3share::transfer::UploadJob::new(&s.bucket, item.clone()))
        .await;
    assert!(r.is_ok(), "{r:?}");
    let proxy = Proxy::start(
        &s.endpoint,
        Hold::Connection {
            upload: false,
            limit: MIB,
        },
    )
    .await;
    let dest = home.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let child = cli(&through(&s, &proxy), home.path())
        .args([
            "get",
            &format!("s3://{}/big.bin", s.bucket),
            dest.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Temporary names carry a random part: look for any file with the partial suffix.
    let partials = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.to_string_lossy()
                    .ends_with(s3share::transfer::PARTIAL_SUFFIX)
            })
            .collect()
    };
    let (held, d) = (proxy.held.clone(), dest.clone());
    wait_until("the partial file and a held download", || {
        let ready = held.load(Ordering::SeqCst) && !partials(&d).is_empty();
        async move { ready }
    })
    .await;
    interrupt(&child);
    let (code, err) = exit_of(child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");
    assert!(partials(&dest).is_empty(), "partial file left behind");
    assert!(!dest.join("big.bin").exists());
}

/// A second Ctrl+C quits at once (130) even while the clean-up cannot get through. On the old
/// code the second signal was swallowed and the process waited on the stuck abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_quits_at_once() {
    let s = embedded().await;
    let proxy = Proxy::start(&s.endpoint, Hold::Everything { limit: MIB }).await;
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "big.bin", 40 * MIB as usize, 9);
    let mut child = cli(&through(&s, &proxy), home.path())
        .args([
            "put",
            file.to_str().unwrap(),
            &format!("s3://{}/in/", s.bucket),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Stderr::collect(&mut child);
    let held = proxy.held.clone();
    wait_until("a held upload", || {
        let held = held.load(Ordering::SeqCst);
        async move { held }
    })
    .await;
    interrupt(&child);
    // The first Ctrl+C starts the clean-up, which the proxy now holds; the second must not wait.
    err.wait_for("cancelling").await;
    interrupt(&child);
    let code = exit_code(child, Duration::from_secs(5)).await;
    assert_eq!(code, Some(130), "{}", err.text());
}

/// A pseudo-terminal for a child's stdin; the test answers through `master`.
struct Pty {
    master: std::fs::File,
    slave: Option<OwnedFd>,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two new descriptors into the given ints; name, termios and
        // window size may be null.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned by nothing else.
        unsafe {
            Pty {
                master: std::fs::File::from_raw_fd(master),
                slave: Some(OwnedFd::from_raw_fd(slave)),
            }
        }
    }

    fn answer(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }
}

/// A child's stderr, collected as it comes, to wait for a question.
struct Stderr(Arc<Mutex<String>>);

impl Stderr {
    fn collect(child: &mut Child) -> Stderr {
        let mut pipe = child.stderr.take().unwrap();
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Stderr(text)
    }

    async fn wait_for(&self, needle: &str) {
        let text = self.0.clone();
        wait_until(needle, || {
            let found = text.lock().contains(needle);
            async move { found }
        })
        .await;
    }

    fn text(&self) -> String {
        self.0.lock().clone()
    }
}

/// Spawns the CLI with a terminal on stdin.
fn on_terminal(s: &TestServer, home: &Path, args: &[&str]) -> (Child, Pty, Stderr) {
    let mut pty = Pty::open();
    let mut child = cli(s, home)
        .args(args)
        .stdin(Stdio::from(pty.slave.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Stderr::collect(&mut child);
    (child, pty, err)
}

async fn exit_code(mut child: Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("s3share did not exit");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn body(s: &TestServer, key: &str) -> Vec<u8> {
    s.client.read_start(&s.bucket, key, 1 << 20).await.unwrap()
}

/// The user approves overwriting one existing key; a new key of the same batch keeps its
/// If-None-Match protection: created by someone else while the question was open, it is a
/// conflict, not overwritten. On the old code it was silently replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_one_overwrite_does_not_unprotect_new_keys() {
    let s = embedded().await;
    let home = tempfile::tempdir().unwrap();
    let old = random_file(home.path(), "old.txt", 100, 1);
    let new = random_file(home.path(), "new.txt", 100, 2);
    let b = &s.bucket;
    crate::support::put_via_link(&s.client, b, "c/old.txt", "before").await;

    let (child, mut pty, err) = on_terminal(
        &s,
        home.path(),
        &[
            "put",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            &format!("s3://{b}/c/"),
        ],
    );
    err.wait_for("Overwrite?").await;
    // Someone else creates the "new" key while the user reads the question.
    crate::support::put_via_link(&s.client, b, "c/new.txt", "theirs").await;
    pty.answer("y");
    let code = exit_code(child, Duration::from_secs(20)).await;
    let err = err.text();
    assert_ne!(code, Some(0), "{err}");
    assert_eq!(
        body(&s, "c/old.txt").await,
        std::fs::read(&old).unwrap(),
        "{err}"
    );
    assert_eq!(body(&s, "c/new.txt").await, b"theirs", "{err}");
    assert!(
        err.contains("new.txt") && err.contains("already exists"),
        "{err}"
    );
}

/// `rm -r` on a terminal asks; no (the default) keeps everything, yes deletes the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_r_asks_on_a_terminal() {
    let s = embedded().await;
    let home = tempfile::tempdir().unwrap();
    let b = &s.bucket;
    for key in ["docs/a", "docs/b", "keep"] {
        crate::support::put_via_link(&s.client, b, key, "x").await;
    }
    let count = || async { s.client.list_all(b, "", true).await.unwrap().objects.len() };
    let docs = format!("s3://{b}/docs");

    let (child, mut pty, err) = on_terminal(&s, home.path(), &["rm", "-r", &docs]);
    err.wait_for("[y/N]").await;
    assert!(err.text().contains("2 object(s)"), "{}", err.text());
    pty.answer("");
    assert_ne!(exit_code(child, Duration::from_secs(20)).await, Some(0));
    assert_eq!(count().await, 3);

    let (child, mut pty, err) = on_terminal(&s, home.path(), &["rm", "-r", &docs]);
    err.wait_for("[y/N]").await;
    pty.answer("y");
    assert_eq!(
        exit_code(child, Duration::from_secs(20)).await,
        Some(0),
        "{}",
        err.text()
    );
    assert_eq!(count().await, 1);

    // A whole bucket: the user types its name.
    let whole = format!("s3://{b}");
    let (child, mut pty, err) = on_terminal(&s, home.path(), &["rm", "-r", &whole]);
    err.wait_for("Type its name").await;
    pty.answer("y");
    assert_ne!(exit_code(child, Duration::from_secs(20)).await, Some(0));
    assert_eq!(count().await, 1);
    let (child, mut pty, err) = on_terminal(&s, home.path(), &["rm", "-r", &whole]);
    err.wait_for("Type its name").await;
    pty.answer(b);
    assert_eq!(
        exit_code(child, Duration::from_secs(20)).await,
        Some(0),
        "{}",
        err.text()
    );
    assert_eq!(count().await, 0);
}

/// Log lines on a terminal are coloured, unless `NO_COLOR` asks for none
/// (https://no-color.org): they kept their colour codes when every other message had none.
#[test]
fn no_color_takes_the_colour_out_of_log_lines_on_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let logged = |no_color: Option<&str>| {
        let mut pty = Pty::open();
        let mut cmd = crate::support::s3share_command(home.path());
        cmd.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let status = cmd
            .args(["-v", "--local", "ls", "s3://s3share/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(pty.slave.take().unwrap()))
            .status()
            .unwrap();
        assert!(status.success());
        // The command holds a copy of the terminal's other end until it is dropped.
        drop(cmd);
        // Everything the command wrote is in the terminal's buffer; once it is read, the
        // closed terminal answers an error.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = pty.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let coloured = logged(None);
    assert!(
        coloured.contains("INFO") && coloured.contains('\x1b'),
        "{coloured:?}"
    );
    let plain = logged(Some("1"));
    assert!(
        plain.contains("INFO") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    // An empty NO_COLOR asks for nothing.
    assert!(logged(Some("")).contains('\x1b'));
}
