//! The embedded store as a user meets it: shared between processes, stable across restarts,
//! and an upload that meets a dying server fails clearly.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use s3share::s3::ConnectOptions;
use s3share::transfer::{self, TransferEvent, UploadItem, UploadOptions};
use tokio_util::sync::CancellationToken;

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
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(&link.url).await
            && r.status().is_success()
        {
            body = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body, "hi");
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
        min_part_size: 5 << 20,
        parts_in_flight: 1,
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
            "s3share",
            &item,
            0,
            &options,
            sink,
            &CancellationToken::new(),
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
