//! Downloads stay where they were sent: keys that share a local path, symbolic links below the
//! destination, data flushed before it takes its name, and a server that stops sending.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use s3share::Error;
use s3share::s3::{S3Client, Timeouts};
use s3share::transfer::{self, DownloadItem, PARTIAL_SUFFIX, no_events};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::support::{TestServer, put_via_link, random_file, store_paths};

async fn put(s: &TestServer, key: &str, body: impl Into<reqwest::Body>) {
    put_via_link(&s.client, &s.bucket, key, body)
        .await
        .error_for_status()
        .unwrap();
}

async fn download_many(
    s: &TestServer,
    items: &[DownloadItem],
    overwrite: bool,
) -> Vec<s3share::Result<u64>> {
    s.client
        .download_many(
            &s.bucket,
            items,
            &s3share::transfer::DownloadOptions {
                overwrite,
                ..Default::default()
            },
            no_events(),
            &CancellationToken::new(),
        )
        .await
}

/// Every file below `dir`, links included (not followed).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(files_below(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn no_partial_files(dir: &Path) {
    let left: Vec<PathBuf> = files_below(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(PARTIAL_SUFFIX))
        .collect();
    assert!(left.is_empty(), "partial files left behind: {left:?}");
}

/// `a/b`, `a//b`, `./a/b` (one local file) and `a` (a file where the others need a folder):
/// one is downloaded, every other one is reported naming both keys; nothing is interleaved.
async fn keys_for_one_local_path_download_once(s: &TestServer) {
    let keys = ["one/a/b", "one/a//b", "one/./a/b", "one/a"];
    for key in keys {
        // Servers differ in which of these keys they keep apart; what they list is what counts.
        let r = put_via_link(&s.client, &s.bucket, key, format!("bytes of {key}")).await;
        if !r.status().is_success() {
            eprintln!("{}: {key:?} not stored: {}", s.name, r.status());
        }
    }
    let listing = s.client.list_all(&s.bucket, "one/", true).await.unwrap();
    let listed: Vec<&str> = listing.objects.iter().map(|o| o.key.as_str()).collect();
    eprintln!("{}: listed {listed:?}", s.name);
    assert!(listed.len() >= 2, "{}: {listed:?}", s.name);

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (items, errors) = transfer::plan_download(&listing.objects, "one/", &dest);
    assert_eq!(items.len(), 1, "{}: {items:?}", s.name);
    assert_eq!(errors.len(), listed.len() - 1, "{}: {errors:?}", s.name);
    for e in &errors {
        let Error::PathCollision { key, other, path } = e else {
            panic!("{}: {e}", s.name)
        };
        assert_eq!(other, &items[0].key);
        assert!(path.starts_with(&dest));
        let message = e.to_string();
        assert!(
            message.contains(&format!("{key:?}")) && message.contains(&format!("{other:?}")),
            "{message}"
        );
    }
    let results = download_many(s, &items, false).await;
    assert!(
        results.iter().all(std::result::Result::is_ok),
        "{results:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&items[0].path).unwrap(),
        format!("bytes of {}", items[0].key)
    );
    assert_eq!(files_below(&dest), [items[0].path.clone()]);
}

/// Two downloads to one path at once (as two processes could): each writes its own temporary
/// file, and the result is one object's bytes exactly, never a mix; without `overwrite` the
/// second is refused rather than replacing the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_downloads_to_one_path_never_share_a_file() {
    let s = crate::support::embedded().await;
    let src = tempfile::tempdir().unwrap();
    let len = 8 << 20;
    let first = std::fs::read(random_file(src.path(), "1", len, 1)).unwrap();
    let second = std::fs::read(random_file(src.path(), "2", len, 2)).unwrap();
    put(&s, "first.bin", first.clone()).await;
    put(&s, "second.bin", second.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("same.bin");
    let items = [
        DownloadItem::file("first.bin", &target, len as u64),
        DownloadItem::file("second.bin", &target, len as u64),
    ];
    for overwrite in [false, true] {
        let _ = std::fs::remove_file(&target);
        let results = download_many(&s, &items, overwrite).await;
        let bytes = std::fs::read(&target).unwrap();
        assert!(
            bytes == first || bytes == second,
            "overwrite {overwrite}: the file is a mix of both objects ({} bytes)",
            bytes.len()
        );
        if overwrite {
            assert!(
                results.iter().all(std::result::Result::is_ok),
                "{results:?}"
            );
        } else {
            let refused: Vec<String> = results
                .iter()
                .filter_map(|r| r.as_ref().err().map(std::string::ToString::to_string))
                .collect();
            assert_eq!(refused.len(), 1, "exactly one may land: {results:?}");
            assert!(refused[0].contains("will not overwrite"), "{}", refused[0]);
        }
        no_partial_files(dir.path());
    }
}

/// A link below the destination (`dest/a -> elsewhere`) never carries a download out of it,
/// and an existing link at the target is replaced (with overwrite) or refused, never written
/// through; nor is a link planted at a temporary file's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_below_the_destination_are_never_followed() {
    let s = crate::support::embedded().await;
    for key in ["in/a/x", "in/b/y", "in/t", "in/u"] {
        put(&s, key, format!("bytes of {key}")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let victim = elsewhere.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&elsewhere, dest.join("a")).unwrap();
    std::os::unix::fs::symlink(&victim, dest.join("t")).unwrap();
    // A link where the old code put its temporary file for `u`.
    std::os::unix::fs::symlink(&victim, dest.join(format!("u{PARTIAL_SUFFIX}"))).unwrap();

    let listing = s.client.list_all(&s.bucket, "in/", true).await.unwrap();
    let (items, errors) = transfer::plan_download(&listing.objects, "in/", &dest);
    assert!(errors.is_empty(), "{errors:?}");
    let results = download_many(&s, &items, false).await;
    let outcome = |key: &str| {
        let i = items.iter().position(|i| i.key == key).unwrap();
        results[i]
            .as_ref()
            .map_err(std::string::ToString::to_string)
    };
    let err = outcome("in/a/x").unwrap_err();
    assert!(
        err.contains("symbolic link") && err.contains(&dest.join("a").display().to_string()),
        "{err}"
    );
    assert!(!elsewhere.join("x").exists(), "written through dest/a");
    assert_eq!(
        std::fs::read_to_string(dest.join("b/y")).unwrap(),
        "bytes of in/b/y"
    );
    let err = outcome("in/t").unwrap_err();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(outcome("in/u").is_ok(), "{:?}", outcome("in/u"));
    assert_eq!(
        std::fs::read_to_string(dest.join("u")).unwrap(),
        "bytes of in/u"
    );
    assert!(!dest.join("u").is_symlink());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // With overwrite, the link at the target is replaced by the file, its target untouched.
    let t = items.iter().find(|i| i.key == "in/t").unwrap();
    download_many(&s, std::slice::from_ref(t), true).await[0]
        .as_ref()
        .unwrap();
    assert!(!dest.join("t").is_symlink());
    assert_eq!(
        std::fs::read_to_string(dest.join("t")).unwrap(),
        "bytes of in/t"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        1,
        "nothing new outside the destination"
    );
    let planted = dest.join(format!("u{PARTIAL_SUFFIX}"));
    assert_eq!(std::fs::read_link(&planted).unwrap(), victim);
    std::fs::remove_file(planted).unwrap();
    no_partial_files(&dest);
}

/// `s3share get` under strace: the temporary file is created exclusively and without following
/// links, flushed (fsync) before it is renamed into place, and the folder is flushed after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_flushed_before_the_rename() {
    let strace = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("strace"))
                .find(|p| p.is_file())
        })
        .expect("this test watches system calls with strace: install it (apt-get install strace)");
    let home = tempfile::tempdir().unwrap();
    // This process serves the store; the CLI uses it as a second s3share process would.
    let serving = s3share::s3::ConnectOptions {
        local: true,
        store_paths: Some(store_paths(&home.path().join("s3share"))),
        ..Default::default()
    }
    .connect()
    .await
    .unwrap();
    put_via_link(&serving.client, "s3share", "synced.bin", vec![7u8; 300_000])
        .await
        .error_for_status()
        .unwrap();
    let dest = home.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let target = dest.join("synced.bin");
    let trace = home.path().join("trace.txt");
    let out = tokio::process::Command::new(&strace)
        .args(["-f", "-y", "-qq", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=open,openat,fsync,fdatasync,rename,renameat,renameat2,link,linkat",
            env!("CARGO_BIN_EXE_s3share"),
            "get",
            "s3://s3share/synced.bin",
        ])
        .arg(&target)
        .env("HOME", home.path())
        .env("S3SHARE_HOME", home.path().join("s3share"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .output()
        .await
        .expect("strace runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), vec![7u8; 300_000]);
    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let find = |what: &str, from: usize, pred: &dyn Fn(&str) -> bool| {
        lines[from..]
            .iter()
            .position(|l| pred(l))
            .map(|i| i + from)
            .unwrap_or_else(|| panic!("no {what} in the trace:\n{trace}"))
    };
    let open = find("open of the temporary file", 0, &|l| {
        l.contains("open") && l.contains(PARTIAL_SUFFIX) && l.contains("O_CREAT")
    });
    assert!(
        lines[open].contains("O_EXCL") && lines[open].contains("O_NOFOLLOW"),
        "the temporary file is created exclusively, never through a link: {}",
        lines[open]
    );
    let synced = find("fsync of the temporary file", open, &|l| {
        (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains(PARTIAL_SUFFIX)
    });
    let quoted_target = format!("\"{}\"", target.display());
    let renamed = find("rename into place", synced, &|l| {
        (l.contains("rename") || l.contains("link")) && l.contains(&quoted_target)
    });
    assert!(synced < renamed);
    let folder = format!("<{}>", dest.display());
    find("fsync of the folder after the rename", renamed, &|l| {
        l.contains("fsync(") && l.contains(&folder)
    });
}

/// A TCP proxy to `upstream` that, once a request containing `marker` goes through, forwards
/// only `after` more bytes of the answer, then keeps the connection open and silent.
async fn stalling_proxy(upstream: SocketAddr, marker: &'static [u8], after: u64) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let limit = Arc::new(AtomicU64::new(u64::MAX));
                let sent = Arc::new(AtomicU64::new(0));
                let requests = {
                    let (limit, sent) = (limit.clone(), sent.clone());
                    async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from_client.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // HTTP/1.1 without pipelining: every earlier answer is through.
                            if buf[..n].windows(marker.len()).any(|w| w == marker) {
                                limit.store(sent.load(Ordering::SeqCst) + after, Ordering::SeqCst);
                            }
                            if to_server.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                };
                let answers = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from_server.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let room = limit.load(Ordering::SeqCst) - sent.load(Ordering::SeqCst);
                        let pass = (n as u64).min(room) as usize;
                        if to_client.write_all(&buf[..pass]).await.is_err() {
                            break;
                        }
                        sent.fetch_add(pass as u64, Ordering::SeqCst);
                        if pass < n || sent.load(Ordering::SeqCst) == limit.load(Ordering::SeqCst) {
                            // Silent from here on, the connection held open.
                            std::future::pending::<()>().await;
                        }
                    }
                    // Keep the client's side open whatever the server does.
                    std::future::pending::<()>().await;
                };
                tokio::join!(requests, answers);
            });
        }
    });
    addr
}

/// A server that stops sending mid-body fails the download within the idle timeout, with a
/// message saying so, and leaves neither a partial nor a final file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_sending_fails_the_download_in_bounded_time() {
    let s = crate::support::embedded().await;
    let src = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(random_file(src.path(), "big", 2 << 20, 5)).unwrap();
    put(&s, "stall.bin", bytes).await;

    let upstream: SocketAddr = s
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = stalling_proxy(upstream, b"/stall.bin", 64 * 1024).await;
    let endpoint = format!("http://{proxy}");
    let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new(&s.access_key, &s.secret_key, None, None, "test"),
    );
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .credentials_provider(credentials.clone())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .force_path_style(true)
        .build();
    let idle = Duration::from_secs(1);
    let client = S3Client::with_timeouts(
        aws_sdk_s3::Client::from_conf(conf),
        Some(endpoint),
        Some(credentials),
        Timeouts {
            connect: Duration::from_secs(2),
            idle,
            request: Duration::from_secs(10),
        },
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("stall.bin");
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        client.download_file(s3share::transfer::DownloadJob::file(
            &s.bucket,
            "stall.bin",
            &target,
        )),
    )
    .await
    .expect("the download still hangs after 15 s on a server that stopped sending");
    let took = started.elapsed();
    let err = result.unwrap_err().to_string();
    assert!(err.contains("stopped sending"), "{err}");
    // The client's own idle timeout decides, not some longer default.
    assert!(took < idle * 4, "took {took:?}");
    assert!(took >= idle, "failed before the idle timeout: {took:?}");
    assert!(!target.exists());
    assert_eq!(
        files_below(dir.path()),
        Vec::<PathBuf>::new(),
        "nothing is left behind"
    );
}

/// On SeaweedFS, whose keys are names, not file paths: the embedded store keeps its objects in
/// files, so it folds `a//b` and `./a/b` into `a/b` and cannot hold both `a` and `a/b`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_for_one_local_path_download_once_seaweedfs() {
    keys_for_one_local_path_download_once(&crate::support::seaweed().await).await;
}
