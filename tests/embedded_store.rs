//! The embedded store as a user meets it: shared between processes, stable across restarts,
//! and an upload that meets a dying server fails clearly.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use s3share::s3::ConnectOptions;
use s3share::transfer::{self, TransferEvent, UploadItem, UploadOptions};

use crate::support::{random_file, store_paths};

fn local(dir: &std::path::Path) -> ConnectOptions {
    ConnectOptions {
        local: true,
        store_paths: Some(store_paths(dir)),
        ..Default::default()
    }
}

async fn put_text(client: &s3share::s3::S3Client, key: &str, text: &str) -> reqwest::StatusCode {
    crate::support::put_via_link(client, "s3share", key, text.to_owned())
        .await
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_user_shares_the_running_store_and_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let first = local(dir.path()).connect().await.unwrap();
    let second = local(dir.path()).connect().await.unwrap();
    let (a, b) = (
        first.local_store.as_ref().unwrap(),
        second.local_store.as_ref().unwrap(),
    );
    assert!(a.serving_here());
    assert!(
        !b.serving_here(),
        "a second process must not serve the same folder"
    );
    assert_eq!(a.endpoint(), b.endpoint());

    assert!(
        put_text(&second.client, "from-second.txt", "hi")
            .await
            .is_success()
    );
    let link = first
        .client
        .link_get("s3share", "from-second.txt", Duration::from_secs(600), None)
        .await
        .unwrap();
    drop(first);
    // The second process notices and serves on the same port: the old link keeps working.
    let b = second.local_store.as_ref().unwrap();
    tokio::time::timeout(Duration::from_secs(5), b.wait_until_serving_here())
        .await
        .expect("the second process takes over within 5 s");
    let r = reqwest::get(&link.url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hi");
    assert!(
        put_text(&second.client, "after-takeover.txt", "still")
            .await
            .is_success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_and_credentials_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = local(dir.path()).connect().await.unwrap();
    assert!(
        put_text(&first.client, "kept.txt", "still here")
            .await
            .is_success()
    );
    let link = first
        .client
        .link_get("s3share", "kept.txt", Duration::from_secs(600), None)
        .await
        .unwrap();
    let port = first.local_store.as_ref().unwrap().state().port;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let state_file = dir.path().join("config/local-store.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&state_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "credentials must be private");

    let again = local(dir.path()).connect().await.unwrap();
    assert_eq!(again.local_store.as_ref().unwrap().state().port, port);
    let r = reqwest::get(&link.url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_a_server_that_dies_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let connection = local(dir.path()).connect().await.unwrap();
    let client = connection.client.clone();
    let holder = Arc::new(Mutex::new(Some(connection)));
    let path = random_file(dir.path(), "big.bin", 30 << 20, 9);
    let item = UploadItem {
        key: "dies.bin".into(),
        size: 30 << 20,
        path,
    };
    let options = UploadOptions {
        multipart_threshold: 5 << 20,
        min_part_size: Some(5 << 20),
        concurrency: s3share::transfer::Concurrency {
            parts_in_flight: 1,
            ..Default::default()
        },
        retries: 2,
        ..Default::default()
    };
    let sink: transfer::EventSink = {
        let holder = holder.clone();
        Arc::new(move |e| {
            if matches!(e, TransferEvent::Progress { done, .. } if done > 6 << 20) {
                // The server goes away mid-upload.
                holder.lock().take();
            }
        })
    };
    let started = std::time::Instant::now();
    let r = client
        .upload_file(
            s3share::transfer::UploadJob::new("s3share", item.clone())
                .options(options.clone())
                .events(sink),
        )
        .await;
    let err = r.expect_err("the upload cannot succeed").to_string();
    assert!(
        err.contains("gave up after 3 attempts") || err.contains("cannot reach"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // Presigned URLs are secrets: no message may carry one.
    assert!(!err.contains("X-Amz-Signature"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_multipart_uploads_shows_open_ones() {
    // The embedded store adds ListMultipartUploads, which the cancel tests rely on: it must see
    // an upload that is really open, or those tests prove nothing.
    let dir = tempfile::tempdir().unwrap();
    let connection = local(dir.path()).connect().await.unwrap();
    let creds_state = connection.local_store.as_ref().unwrap().state().clone();
    let creds = aws_credential_types::Credentials::new(
        creds_state.access_key,
        creds_state.secret_key,
        None,
        None,
        "t",
    );
    let sdk = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(connection.local_store.as_ref().unwrap().endpoint())
            .force_path_style(true)
            .build(),
    );
    let created = sdk
        .create_multipart_upload()
        .bucket("s3share")
        .key("open/one")
        .send()
        .await
        .unwrap();
    let open = connection
        .client
        .list_open_uploads("s3share", "open/")
        .await
        .unwrap();
    assert_eq!(
        open,
        vec![(
            "open/one".to_owned(),
            created.upload_id().unwrap().to_owned()
        )]
    );
    sdk.abort_multipart_upload()
        .bucket("s3share")
        .key("open/one")
        .upload_id(created.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        connection
            .client
            .list_open_uploads("s3share", "")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_says_so_readably() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let creds = aws_credential_types::Credentials::new("AKID", "secret", None, None, "test");
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = s3share::s3::static_client(&endpoint, "us-east-1", creds, true).unwrap();
    let err = client
        .list_buckets()
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, s3share::Error::Unreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&endpoint) && text.contains("Connection refused"),
        "{text}"
    );
    assert!(
        !text.contains("DispatchFailure") && !text.contains("ConnectorError"),
        "no Debug dumps: {text}"
    );
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Every file and folder at or below `dir`, with its permission bits (symlinks not followed).
fn modes_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, bool, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mut out = vec![(
        dir.to_owned(),
        meta.is_dir(),
        meta.permissions().mode() & 0o7777,
    )];
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            out.extend(modes_below(&entry.unwrap().path()));
        }
    }
    out
}

/// Asserts that the whole store below `root` is private: folders 0700, files 0600.
fn assert_private(root: &std::path::Path, when: &str) {
    let mut wrong = Vec::new();
    let mut files = 0;
    for dir in ["config", "data"] {
        for (path, is_dir, mode) in modes_below(&root.join(dir)) {
            let wanted = if is_dir { 0o700 } else { 0o600 };
            files += usize::from(!is_dir);
            if mode != wanted {
                wrong.push(format!("{:o} {}", mode, path.display()));
            }
        }
    }
    assert!(files > 0, "{when}: no files found");
    assert!(
        wrong.is_empty(),
        "{when}: not private to the user:\n{}",
        wrong.join("\n")
    );
}

fn sdk_client(store: &s3share::store::LocalStore) -> aws_sdk_s3::Client {
    let state = store.state();
    let creds = aws_credential_types::Credentials::new(
        &state.access_key,
        &state.secret_key,
        None,
        None,
        "t",
    );
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(store.endpoint())
            .force_path_style(true)
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_files_and_folders_are_private_to_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let connection = local(dir.path()).connect().await.unwrap();
    let client = &connection.client;
    let store = connection.local_store.as_ref().unwrap();

    // A single PUT into nested folders, a folder marker, and a multipart upload left open.
    assert!(
        put_text(client, "deep/er/single.txt", "one")
            .await
            .is_success()
    );
    client
        .create_folder("s3share", "empty folder")
        .await
        .unwrap();
    let sdk = sdk_client(store);
    let open = sdk
        .create_multipart_upload()
        .bucket("s3share")
        .key("parts/open.bin")
        .send()
        .await
        .unwrap();
    let id = open.upload_id().unwrap();
    let part = sdk
        .upload_part()
        .bucket("s3share")
        .key("parts/open.bin")
        .upload_id(id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"part one"))
        .send()
        .await
        .unwrap();
    let parts = std::fs::read_dir(dir.path().join("data/objects"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".upload_id-")
        })
        .count();
    assert_eq!(parts, 1, "the open upload's part is on disk");
    assert_private(dir.path(), "with a multipart upload open");

    sdk.complete_multipart_upload()
        .bucket("s3share")
        .key("parts/open.bin")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // s3share's own multipart path, as the app and the CLI upload big files.
    let path = random_file(dir.path(), "big.bin", (6 << 20) + 7, 4);
    let item = UploadItem {
        key: "videos/big.bin".into(),
        size: (6 << 20) + 7,
        path,
    };
    let options = UploadOptions {
        multipart_threshold: 5 << 20,
        min_part_size: Some(5 << 20),
        ..Default::default()
    };
    let r = client
        .upload_file(
            s3share::transfer::UploadJob::new("s3share", item.clone()).options(options.clone()),
        )
        .await
        .unwrap();
    assert!(matches!(
        r,
        transfer::UploadOutcome::Uploaded {
            multipart: true,
            ..
        }
    ));
    std::fs::remove_file(&item.path).unwrap();
    assert!(
        dir.path()
            .join("data/objects/s3share/videos/big.bin")
            .is_file()
    );
    assert_private(dir.path(), "after uploads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_store_is_made_private_when_opened() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    // An install as older versions left it: folders 0755, files 0644.
    let objects = dir.path().join("data/objects");
    std::fs::create_dir_all(objects.join("s3share/photos/2024")).unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    for file in [
        objects.join("s3share/photos/2024/beach.jpg"),
        objects.join(".bucket-czNzaGFyZQ.object-cGhvdG9zLzIwMjQvYmVhY2guanBn.internal.json"),
        dir.path().join("data/serve.lock"),
    ] {
        std::fs::write(&file, b"x").unwrap();
    }
    let set = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    for (path, is_dir, _) in modes_below(dir.path()) {
        if path != dir.path() {
            set(&path, if is_dir { 0o755 } else { 0o644 });
        }
    }

    let connection = local(dir.path()).connect().await.unwrap();
    assert_private(dir.path(), "after opening an older store");
    assert_eq!(
        std::fs::read(objects.join("s3share/photos/2024/beach.jpg")).unwrap(),
        b"x",
        "nothing is lost"
    );
    drop(connection);
}

#[test]
fn processes_starting_at_once_agree_on_one_port_and_credentials() {
    let home = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| {
            crate::support::s3share_command(home.path())
                .args(["-v", "ls", "s3://s3share/"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("s3share runs")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut seen = Vec::new();
    for out in &outputs {
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        let ready = err
            .lines()
            .find(|l| l.contains("embedded store ready"))
            .unwrap_or_else(|| panic!("no `embedded store ready` line in:\n{err}"));
        let field = |name: &str| {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {ready:?}"))
                .to_owned()
        };
        seen.push((field("port"), field("access_key")));
    }
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.path().join("s3share/config/local-store.json")).unwrap(),
    )
    .unwrap();
    let saved = (
        state["port"].to_string(),
        state["access_key"].as_str().unwrap().to_owned(),
    );
    for s in &seen {
        assert_eq!(s, &saved, "every process uses the saved state: {seen:?}");
    }
}

/// One request as an impostor server saw it.
#[derive(Debug, Clone)]
struct SeenRequest {
    head: String,
    has_body: bool,
}

/// A program that is not the store, answering `200 ok` to every request on its port.
async fn impostor() -> (u16, Arc<Mutex<Vec<SeenRequest>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let lower = head.to_ascii_lowercase();
                let has_body = lower.contains("transfer-encoding: chunked")
                    || lower.lines().any(|l| {
                        l.strip_prefix("content-length:")
                            .is_some_and(|n| n.trim() != "0")
                    });
                log.lock().push(SeenRequest { head, has_body });
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_on_the_port_is_sent_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = impostor().await;
    // The store remembers the impostor's port, and is (seemingly) served by another process.
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let state = serde_json::json!({
        "port": port,
        "access_key": "AKSTORETEST000000000",
        "secret_key": "store-secret-store-secret-store-secret-1",
    });
    std::fs::write(
        dir.path().join("config/local-store.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let lock = std::fs::File::create(dir.path().join("data/serve.lock")).unwrap();
    assert!(fs4::fs_std::FileExt::try_lock_exclusive(&lock).unwrap());

    let err = match local(dir.path()).connect().await {
        Err(e) => e,
        Ok(connection) => {
            // What trusting the port would cost: the user's file goes to the impostor.
            let _ = put_text(&connection.client, "private.txt", "my private notes").await;
            panic!(
                "connected through an impostor, which received: {:#?}",
                seen.lock()
            );
        }
    };
    assert!(
        matches!(
            err,
            s3share::Error::Store(s3share::store::StoreError::NotTheStore { port: p, .. }) if p == port
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("Stop that program"),
        "{message}"
    );
    let seen = seen.lock().clone();
    assert!(!seen.is_empty(), "the port was never challenged");
    assert!(
        seen.iter().all(|r| !r.has_body),
        "the impostor received a body: {seen:#?}"
    );
    assert!(
        seen.iter().all(|r| !r.head.contains("store-secret")),
        "{seen:#?}"
    );
    drop(lock);
}

#[test]
fn verbose_logs_carry_no_secret_or_signature() {
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "notes.txt", 3000, 8);
    let runs: [&[&str]; 3] = [
        &["-vv", "put", file.to_str().unwrap(), "s3://s3share/docs/"],
        &["-vv", "link", "s3://s3share/docs/notes.txt"],
        &["-vv", "ls", "-r", "s3://s3share/"],
    ];
    let mut logs = Vec::new();
    for args in runs {
        let out = crate::support::s3share_command(home.path())
            .args(args)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("DEBUG"),
            "{args:?} logged nothing at -vv: {err}"
        );
        logs.push((args, err));
    }
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.path().join("s3share/config/local-store.json")).unwrap(),
    )
    .unwrap();
    let secret = state["secret_key"].as_str().unwrap();
    for (args, err) in logs {
        let lower = err.to_ascii_lowercase();
        for (leak, found) in [
            ("the store's secret key", err.contains(secret)),
            ("a presigned signature", lower.contains("x-amz-signature=")),
            ("an Authorization signature", lower.contains("signature=")),
            ("a credential scope", lower.contains("x-amz-credential")),
        ] {
            assert!(!found, "{args:?} logged {leak}:\n{err}");
        }
    }
}

/// Keys the embedded store cannot keep as file names (a part over 255 bytes) are refused at once
/// with the reason; it answered a bare 500, retried for seconds, after warnings. A long key whose
/// parts fit works, with no warning about bookkeeping files s3s-fs could not name.
#[test]
fn keys_longer_than_a_file_name_are_refused_saying_why() {
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "f.txt", 100, 41);
    let put = |key: &str| {
        crate::support::s3share_command(home.path())
            .args([
                "--local",
                "put",
                file.to_str().unwrap(),
                &format!("s3://s3share/{key}"),
            ])
            .output()
            .unwrap()
    };
    let out = put(&"y".repeat(300));
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("each part of a key between slashes is at most 255 bytes"),
        "{err}"
    );
    assert!(!err.contains("WARN"), "{err}");
    assert!(!err.contains("InternalError"), "{err}");

    let long = format!(
        "{}/{}/{}/f.txt",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60)
    );
    let out = put(&long);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("WARN"), "{err}");
}
