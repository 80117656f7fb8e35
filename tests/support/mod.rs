//! Real S3 servers for the integration tests: the embedded store (in-process, fresh per test)
//! and SeaweedFS (one process per test binary, a fresh bucket per test). No mocks.

pub mod proxy;
pub mod seaweed;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use s3share::s3::{
    ConnectOptions, Connection, S3Client, Timeouts, static_client, static_client_with_timeouts,
};
use s3share::store::StorePaths;

/// A server with a bucket of its own for one test.
pub struct TestServer {
    /// Which server this is, for messages.
    pub name: &'static str,
    pub client: S3Client,
    pub bucket: String,
    /// Keeps the embedded store (and its folders) alive for the test.
    pub _connection: Option<Connection>,
    pub _dir: Option<tempfile::TempDir>,
    /// Credentials, to build other clients against the same server.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl TestServer {
    /// A second client for the same server signing with credentials that expire at `expiry`.
    pub fn client_expiring_at(&self, expiry: std::time::SystemTime) -> S3Client {
        let creds = aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            Some(expiry),
            "test",
        );
        static_client(&self.endpoint, "us-east-1", creds, true).unwrap()
    }

    /// A client with this server's credentials that talks to `endpoint` (a proxy in front of
    /// the server, or a server that never answers), with `timeouts`.
    pub fn client_at(&self, endpoint: &str, timeouts: Timeouts) -> S3Client {
        let creds = aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "test",
        );
        static_client_with_timeouts(endpoint, "us-east-1", creds, true, timeouts).unwrap()
    }
}

/// Timeouts short enough for tests that wait for them to fire.
pub fn quick_timeouts() -> Timeouts {
    Timeouts {
        connect: std::time::Duration::from_secs(2),
        idle: std::time::Duration::from_secs(1),
        request: std::time::Duration::from_secs(3),
    }
}

/// Store folders inside `dir`.
pub fn store_paths(dir: &Path) -> StorePaths {
    StorePaths {
        config_dir: dir.join("config"),
        data_dir: dir.join("data"),
    }
}

/// A fresh embedded store in a temporary folder, served by this test's runtime.
pub async fn embedded() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let options = ConnectOptions {
        local: true,
        store_paths: Some(store_paths(dir.path())),
        ..Default::default()
    };
    let connection = options.connect().await.expect("embedded store starts");
    let store = connection.local_store.as_ref().unwrap();
    let state = store.state().clone();
    TestServer {
        name: "embedded",
        client: connection.client.clone(),
        bucket: connection.default_bucket().unwrap().to_owned(),
        endpoint: store.endpoint(),
        access_key: state.access_key,
        secret_key: state.secret_key,
        _connection: Some(connection),
        _dir: Some(dir),
    }
}

static SEAWEED: OnceLock<seaweed::Seaweed> = OnceLock::new();

/// The shared SeaweedFS's HTTPS endpoint and the PEM file of the CA its certificate comes
/// from; call after [`seaweed`] (which starts it).
pub fn seaweed_tls() -> (String, std::path::PathBuf) {
    let server = SEAWEED.get().expect("seaweed() starts the server first");
    (server.https_endpoint.clone(), server.ca_file.clone())
}

/// SeaweedFS (started once per test binary, stopped at exit) with a new bucket for this test.
pub async fn seaweed() -> TestServer {
    let server = tokio::task::spawn_blocking(|| {
        // Never dropped: its watchdog kills weed when this test process exits, however it exits.
        SEAWEED.get_or_init(seaweed::Seaweed::start)
    })
    .await
    .unwrap();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let bucket = format!(
        "t{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let creds = aws_credential_types::Credentials::new(
        &server.access_key,
        &server.secret_key,
        None,
        None,
        "test",
    );
    let client = static_client(&server.endpoint, &server.region, creds, true).unwrap();
    // Right after start the filer may not take buckets yet.
    let mut last = None;
    for _ in 0..60 {
        match client.create_bucket(&bucket).await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if let Some(e) = last {
        panic!(
            "cannot create bucket on SeaweedFS: {e}\n{}",
            server.log_tail(40)
        );
    }
    TestServer {
        name: "seaweedfs",
        client,
        bucket,
        endpoint: server.endpoint.clone(),
        access_key: server.access_key.clone(),
        secret_key: server.secret_key.clone(),
        _connection: None,
        _dir: None,
    }
}

/// Stores `body` at `key` with a plain HTTP PUT to a presigned link, as `curl -T` would.
pub async fn put_via_link(
    client: &S3Client,
    bucket: &str,
    key: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let link = client
        .link_put(bucket, key, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    reqwest::Client::new()
        .put(&link.url)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The object's bytes, read through a link as anyone would; `None` when there is none.
pub async fn stored(s: &TestServer, key: &str) -> Option<Vec<u8>> {
    s.client.head(&s.bucket, key).await.unwrap()?;
    let link = s
        .client
        .link_get(&s.bucket, key, std::time::Duration::from_secs(60), None)
        .await
        .unwrap();
    let r = reqwest::get(&link.url).await.unwrap();
    assert_eq!(r.status(), 200, "{}: GET {key}", s.name);
    Some(r.bytes().await.unwrap().to_vec())
}

/// The `s3share` binary as a new user runs it: a private home (the embedded store lives in
/// `home/s3share`) and none of the caller's AWS settings, so only what a test sets applies.
pub fn s3share_command(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_s3share"));
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("S3SHARE_HOME", home.join("s3share"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    cmd
}

/// [`s3share_command`] with `s`'s keys, and `proxy` as its only proxy setting (`HTTP_PROXY`).
pub fn s3share_through_proxy(home: &Path, s: &TestServer, proxy: &str) -> std::process::Command {
    let mut cmd = s3share_command(home);
    for var in [
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "http_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HTTP_PROXY", proxy)
        .env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
        .env("AWS_REGION", "us-east-1");
    cmd
}

/// The upload of the file at `path` (its size as it is now) to `key`.
pub fn item(path: impl AsRef<Path>, key: &str) -> s3share::transfer::UploadItem {
    let path = path.as_ref();
    s3share::transfer::UploadItem {
        path: path.to_owned(),
        key: key.to_owned(),
        size: std::fs::metadata(path).unwrap().len(),
    }
}

/// Writes `len` pseudo-random bytes (a cheap, seeded generator: tests need variety, not secrecy).
pub fn random_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Neither an object at `key` nor an unfinished upload anywhere in the bucket.
pub async fn assert_nothing_left(s: &TestServer, key: &str) {
    assert!(
        s.client.head(&s.bucket, key).await.unwrap().is_none(),
        "{}: an object was left at {key}",
        s.name
    );
    let open = s.client.list_open_uploads(&s.bucket, "").await.unwrap();
    assert!(open.is_empty(), "{}: uploads left open: {open:?}", s.name);
}

/// Runs one async test body against both servers, as two tests.
#[macro_export]
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$name(&$crate::support::embedded().await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn seaweedfs() {
                    super::$name(&$crate::support::seaweed().await).await
                }
            }
        )*
    };
}
