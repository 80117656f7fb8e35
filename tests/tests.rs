//! Integration tests: every operation against real S3 servers over HTTP (the embedded store and
//! SeaweedFS). One test binary, so it builds once.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failure with its line"
)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use parking_lot::Mutex;
use s3share::Error;
use s3share::transfer::{
    self, OnConflict, TransferEvent, UploadItem, UploadOptions, UploadOutcome, no_events,
};
use support::{TestServer, item, put_via_link, random_file};
use tokio_util::sync::CancellationToken;

const MIB: usize = 1024 * 1024;

/// Keys that break naive signing or URL handling.
const AWKWARD_KEYS: &[&str] = &[
    "with space.txt",
    "ünïcødé/文件 名.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "hash#tag.txt",
    "question?mark.txt",
    "equals=and&amp.txt",
    " leading and trailing ",
    "parens (1) [x] {y} 'q' ~!@$^*,;.txt",
    "deep/a/b/c/d/e/f/g/h/i/j/file.txt",
    "new\nline\ttab.txt",
];

/// Uploads with the default options, no events, no cancellation.
async fn upload(s: &TestServer, items: &[UploadItem]) -> Vec<s3share::Result<UploadOutcome>> {
    let options = UploadOptions::default();
    s.client
        .upload_many(
            &s.bucket,
            items,
            &options,
            no_events(),
            &CancellationToken::new(),
        )
        .await
}

/// Downloads `key` to `path` (never overwriting), no events, no cancellation.
async fn download(s: &TestServer, key: &str, path: &std::path::Path) -> s3share::Result<u64> {
    s.client
        .download_file(s3share::transfer::DownloadJob::file(&s.bucket, key, path))
        .await
}

async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let r = reqwest::get(url).await.expect("link answers");
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

async fn all_keys(s: &TestServer, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = s
        .client
        .list_all(&s.bucket, prefix, true)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    keys
}

async fn awkward_keys_round_trip(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<UploadItem> = AWKWARD_KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| {
            item(
                random_file(dir.path(), &format!("f{i}"), 1000 + i, i as u64),
                key,
            )
        })
        .collect();
    let results = upload(s, &items).await;
    for (it, r) in items.iter().zip(&results) {
        assert!(
            matches!(r, Ok(UploadOutcome::Uploaded { .. })),
            "{}: upload of {:?}: {r:?}",
            s.name,
            it.key
        );
    }
    let mut expected: Vec<String> = AWKWARD_KEYS
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    expected.sort();
    assert_eq!(all_keys(s, "").await, expected, "{}: listing", s.name);

    // One level: the folders show as folders.
    let top = s.client.list_all(&s.bucket, "", false).await.unwrap();
    assert!(
        top.folders.contains(&"deep/".to_owned()),
        "{:?}",
        top.folders
    );
    assert!(
        top.folders.contains(&"ünïcødé/".to_owned()),
        "{:?}",
        top.folders
    );

    for it in &items {
        let link = s
            .client
            .link_get(&s.bucket, &it.key, Duration::from_secs(600), None)
            .await
            .unwrap();
        assert!(
            !link.url.contains("%25") || it.key.contains('%'),
            "double-encoded: {}",
            it.key
        );
        let (status, body) = fetch(&link.url).await;
        assert_eq!(status, 200, "{}: GET {:?}", s.name, it.key);
        assert_eq!(
            body,
            std::fs::read(&it.path).unwrap(),
            "{}: bytes of {:?}",
            s.name,
            it.key
        );
        let head = s
            .client
            .head(&s.bucket, &it.key)
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(head.size, it.size);
        if it.key.ends_with(".txt") {
            assert_eq!(
                head.content_type.as_deref(),
                Some("text/plain"),
                "{}: type of {:?}",
                s.name,
                it.key
            );
        }
    }
    for it in &items {
        s.client.delete(&s.bucket, &it.key).await.unwrap();
    }
    assert_eq!(
        all_keys(s, "").await,
        Vec::<String>::new(),
        "{}: after delete",
        s.name
    );
}

async fn links_refuse_tampering_and_expiry(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let it = item(
        random_file(dir.path(), "x", 4096, 7),
        "shared/report 2024.pdf",
    );
    upload(s, std::slice::from_ref(&it)).await;

    let link = s
        .client
        .link_get(
            &s.bucket,
            &it.key,
            Duration::from_secs(3600),
            Some("résumé.pdf"),
        )
        .await
        .unwrap();
    assert!(!link.limited_by_credentials);
    let r = reqwest::get(&link.url).await.unwrap();
    assert_eq!(r.status(), 200);
    if s.name == "embedded" {
        let cd = r
            .headers()
            .get("content-disposition")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            cd.contains("filename*=UTF-8''r%C3%A9sum%C3%A9"),
            "content-disposition: {cd:?}"
        );
    }
    assert_eq!(r.bytes().await.unwrap().len(), 4096);

    let tampered = link.url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
    assert_ne!(tampered, link.url);
    assert_eq!(fetch(&tampered).await.0, 403, "{}: tampered expiry", s.name);
    let other_key = link.url.replace("2024", "2025");
    assert_eq!(fetch(&other_key).await.0, 403, "{}: tampered key", s.name);

    let short = s
        .client
        .link_get(&s.bucket, &it.key, Duration::from_secs(1), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(fetch(&short.url).await.0, 403, "{}: expired link", s.name);

    let too_long = s
        .client
        .link_get(&s.bucket, &it.key, Duration::from_secs(8 * 86400), None)
        .await;
    assert!(
        matches!(too_long, Err(Error::ExpiryTooLong(_))),
        "{too_long:?}"
    );
}

async fn put_links_upload_with_plain_http(s: &TestServer) {
    let r = put_via_link(
        &s.client,
        &s.bucket,
        "drop box/upload + me.txt",
        "uploaded through a link",
    )
    .await;
    assert!(
        r.status().is_success(),
        "{}: {}",
        s.name,
        r.text().await.unwrap()
    );
    let head = s
        .client
        .head(&s.bucket, "drop box/upload + me.txt")
        .await
        .unwrap()
        .expect("uploaded");
    assert_eq!(head.size, "uploaded through a link".len() as u64);
}

async fn multipart_upload_matches_byte_for_byte(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let path = random_file(dir.path(), "big.bin", 12 * MIB + 12345, 42);
    let options = UploadOptions {
        multipart_threshold: 5 * MIB as u64,
        min_part_size: Some(5 * MIB as u64),
        concurrency: s3share::transfer::Concurrency {
            parts_in_flight: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: transfer::EventSink = {
        let events = events.clone();
        Arc::new(move |e| events.lock().push(e))
    };
    let it = item(path.clone(), "videos/big file.bin");
    let r = s
        .client
        .upload_file(
            s3share::transfer::UploadJob::new(&s.bucket, it.clone())
                .options(options.clone())
                .events(sink),
        )
        .await;
    assert_eq!(
        r.unwrap(),
        UploadOutcome::Uploaded {
            bytes: it.size,
            multipart: true
        }
    );
    let events = events.lock().clone();
    assert_eq!(
        events.first(),
        Some(&TransferEvent::Started {
            id: 0,
            total: it.size
        })
    );
    assert_eq!(events.last(), Some(&TransferEvent::Finished { id: 0 }));
    assert!(
        events.contains(&TransferEvent::Progress {
            id: 0,
            done: it.size
        }),
        "progress reaches the total"
    );

    let out = dir.path().join("out");
    let n = download(s, &it.key, &out.join("copy.bin")).await.unwrap();
    assert_eq!(n, it.size);
    assert!(
        std::fs::read(&path).unwrap() == std::fs::read(out.join("copy.bin")).unwrap(),
        "{}: bytes differ",
        s.name
    );
    assert!(
        s.client
            .list_open_uploads(&s.bucket, "")
            .await
            .unwrap()
            .is_empty()
    );

    // Refusing to overwrite a local file loses nothing.
    let again = download(s, &it.key, &out.join("copy.bin")).await;
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("will not overwrite")
    );
}

async fn cancel_leaves_no_multipart_upload(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let it = item(
        random_file(dir.path(), "big.bin", 40 * MIB, 3),
        "cancelled.bin",
    );
    let options = UploadOptions {
        multipart_threshold: 5 * MIB as u64,
        min_part_size: Some(5 * MIB as u64),
        concurrency: s3share::transfer::Concurrency {
            parts_in_flight: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let sink: transfer::EventSink = {
        let cancel = cancel.clone();
        // Cancel once the first part is under way, so an upload id exists.
        Arc::new(move |e| {
            if matches!(e, TransferEvent::Progress { done, .. } if done > MIB as u64) {
                cancel.cancel();
            }
        })
    };
    let r = s
        .client
        .upload_file(
            s3share::transfer::UploadJob::new(&s.bucket, it.clone())
                .options(options.clone())
                .events(sink)
                .cancel(cancel.clone()),
        )
        .await;
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(
        s.client
            .list_open_uploads(&s.bucket, "")
            .await
            .unwrap()
            .is_empty(),
        "{}: upload left behind",
        s.name
    );
    assert!(s.client.head(&s.bucket, &it.key).await.unwrap().is_none());
}

async fn zero_byte_and_folders(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let (items, errors) = transfer::plan_upload(&[empty], "z/");
    assert!(errors.is_empty());
    let r = upload(s, &items).await;
    assert_eq!(
        r[0].as_ref().unwrap(),
        &UploadOutcome::Uploaded {
            bytes: 0,
            multipart: false
        }
    );
    let link = s
        .client
        .link_get(&s.bucket, "z/empty", Duration::from_secs(60), None)
        .await
        .unwrap();
    assert_eq!(fetch(&link.url).await, (200, Vec::new()));

    let key = s
        .client
        .create_folder(&s.bucket, "new folder")
        .await
        .unwrap();
    assert_eq!(key, "new folder/");
    let top = s.client.list_all(&s.bucket, "", false).await.unwrap();
    assert!(
        top.folders.contains(&"new folder/".to_owned()),
        "{}: {:?}",
        s.name,
        top.folders
    );
    let inside = s
        .client
        .list_all(&s.bucket, "new folder/", false)
        .await
        .unwrap();
    assert!(
        inside.objects.is_empty(),
        "the folder's own marker is not listed as a file: {:?}",
        inside.objects
    );
}

async fn one_bad_file_never_stops_the_others(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let good1 = random_file(dir.path(), "good1.txt", 100, 1);
    let good2 = random_file(dir.path(), "good2.txt", 200, 2);
    let vanishing = random_file(dir.path(), "vanishing.txt", 300, 3);
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();

    let (items, errors) = transfer::plan_upload(
        &[good1, dangling.clone(), vanishing.clone(), good2],
        "batch/",
    );
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("dangling"), "{}", errors[0]);
    // Gone between planning and uploading.
    std::fs::remove_file(&vanishing).unwrap();
    let results = upload(s, &items).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(std::string::ToString::to_string))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("vanishing.txt") && failed[0].contains("cannot read"),
        "{}",
        failed[0]
    );
    assert_eq!(
        all_keys(s, "batch/").await,
        ["batch/good1.txt", "batch/good2.txt"]
    );
}

async fn conflicts_are_never_silent(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let first = item(random_file(dir.path(), "a", 10, 1), "same.txt");
    let second = item(random_file(dir.path(), "b", 20, 2), "same.txt");
    let up = |it: UploadItem, on_conflict| {
        let client = s.client.clone();
        let bucket = s.bucket.clone();
        async move {
            let options = UploadOptions {
                on_conflict,
                ..Default::default()
            };
            client
                .upload_file(
                    s3share::transfer::UploadJob::new(&bucket, it.clone()).options(options.clone()),
                )
                .await
        }
    };
    up(first.clone(), OnConflict::Fail).await.unwrap();
    let r = up(second.clone(), OnConflict::Fail).await;
    assert!(matches!(r, Err(Error::AlreadyExists { .. })), "{r:?}");
    assert_eq!(
        up(second.clone(), OnConflict::Skip).await.unwrap(),
        UploadOutcome::Skipped
    );
    assert_eq!(
        s.client
            .head(&s.bucket, "same.txt")
            .await
            .unwrap()
            .unwrap()
            .size,
        10
    );
    up(second, OnConflict::Overwrite).await.unwrap();
    assert_eq!(
        s.client
            .head(&s.bucket, "same.txt")
            .await
            .unwrap()
            .unwrap()
            .size,
        20
    );
}

async fn corrupted_bodies_are_refused_and_not_stored(s: &TestServer) {
    use base64::Engine as _;
    use md5::Digest as _;
    let client = aws_sdk_s3_client(s);
    // Existing good bytes must survive a corrupted replacement attempt.
    put_via_link(&s.client, &s.bucket, "integrity.txt", "good")
        .await
        .error_for_status()
        .unwrap();

    let wrong_md5 =
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b"something else"));
    let presigned = client
        .put_object()
        .bucket(&s.bucket)
        .key("integrity.txt")
        .content_md5(&wrong_md5)
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60)).unwrap(),
        )
        .await
        .unwrap();
    let mut req = reqwest::Client::new().put(presigned.uri());
    for (k, v) in presigned.headers() {
        req = req.header(k, v);
    }
    let r = req.body("corrupted").send().await.unwrap();
    assert_eq!(r.status(), 400, "{}: {}", s.name, r.text().await.unwrap());
    let link = s
        .client
        .link_get(&s.bucket, "integrity.txt", Duration::from_secs(60), None)
        .await
        .unwrap();
    assert_eq!(
        fetch(&link.url).await,
        (200, b"good".to_vec()),
        "{}: bad bytes were stored",
        s.name
    );
}

fn aws_sdk_s3_client(s: &TestServer) -> aws_sdk_s3::Client {
    let creds =
        aws_credential_types::Credentials::new(&s.access_key, &s.secret_key, None, None, "test");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .credentials_provider(creds)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&s.endpoint)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn honest_expiry_with_temporary_credentials(s: &TestServer) {
    let expiring = s.client_expiring_at(SystemTime::now() + Duration::from_secs(600));
    let link = expiring
        .link_get(&s.bucket, "any", Duration::from_secs(3600), None)
        .await
        .unwrap();
    assert!(link.limited_by_credentials);
    let left = link.expires_at.duration_since(SystemTime::now()).unwrap();
    assert!(
        left <= Duration::from_secs(600) && left > Duration::from_secs(590),
        "{left:?}"
    );
    assert!(
        link.warning()
            .unwrap()
            .contains("sooner than the 1h asked for"),
        "{:?}",
        link.warning()
    );

    let shorter = expiring
        .link_get(&s.bucket, "any", Duration::from_secs(60), None)
        .await
        .unwrap();
    assert!(!shorter.limited_by_credentials && shorter.warning().is_none());

    let expired = s.client_expiring_at(SystemTime::now() - Duration::from_secs(1));
    let r = expired
        .link_get(&s.bucket, "any", Duration::from_secs(60), None)
        .await;
    assert!(
        matches!(
            r,
            Err(Error::Credentials {
                problem: s3share::CredentialProblem::Expired,
                ..
            })
        ),
        "{r:?}"
    );
}

async fn downloads_stay_in_their_folder(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    for key in ["share/a.txt", "share/sub/b.txt", "share//double.txt"] {
        put_via_link(&s.client, &s.bucket, key, key.to_owned())
            .await
            .error_for_status()
            .unwrap();
    }
    let dest = dir.path().join("dest");
    let listing = s.client.list_all(&s.bucket, "share/", true).await.unwrap();
    let mut objects = listing.objects.clone();
    // Keys like these are legal in S3 (servers differ in whether they store them); they must
    // never be written outside the chosen folder.
    objects.push(s3share::s3::ObjectEntry {
        key: "share/../../escape.txt".into(),
        size: 1,
        modified: None,
        etag: None,
    });
    objects.push(s3share::s3::ObjectEntry {
        key: "share/../escape.txt".into(),
        size: 1,
        modified: None,
        etag: None,
    });
    let (items, errors) = transfer::plan_download(&objects, "share/", &dest);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| matches!(e, Error::UnsafeKey { .. })));
    let results = s
        .client
        .download_many(
            &s.bucket,
            &items,
            &Default::default(),
            no_events(),
            &CancellationToken::new(),
        )
        .await;
    assert!(
        results.iter().all(std::result::Result::is_ok),
        "{results:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/b.txt")).unwrap(),
        "share/sub/b.txt"
    );
    assert!(
        !dir.path().join("escape.txt").exists()
            && !dest.parent().unwrap().join("escape.txt").exists()
    );
    for entry in walk(dir.path()) {
        assert!(
            entry.starts_with(&dest),
            "{} is outside the destination",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn listing_streams_page_by_page(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("e");
    std::fs::write(&empty, b"").unwrap();
    let items: Vec<UploadItem> = (0..1100)
        .map(|i| item(empty.clone(), &format!("many/{i:05}")))
        .collect();
    let options = UploadOptions {
        concurrency: s3share::transfer::Concurrency {
            files_in_flight: 32,
            ..Default::default()
        },
        on_conflict: OnConflict::Overwrite,
        ..Default::default()
    };
    let results = s
        .client
        .upload_many(
            &s.bucket,
            &items,
            &options,
            no_events(),
            &CancellationToken::new(),
        )
        .await;
    assert!(results.iter().all(std::result::Result::is_ok));
    let mut pages = std::pin::pin!(s.client.list(&s.bucket, "many/", false));
    let first = pages.next().await.unwrap().unwrap();
    assert!(
        !first.objects.is_empty() && first.objects.len() < 1100,
        "{}: first page has {}",
        s.name,
        first.objects.len()
    );
    let mut total = first.objects.len();
    let mut count = 1;
    while let Some(p) = pages.next().await {
        total += p.unwrap().objects.len();
        count += 1;
    }
    assert_eq!(total, 1100);
    assert!(count >= 2);
}

on_both_servers!(
    awkward_keys_round_trip,
    links_refuse_tampering_and_expiry,
    put_links_upload_with_plain_http,
    multipart_upload_matches_byte_for_byte,
    cancel_leaves_no_multipart_upload,
    zero_byte_and_folders,
    one_bad_file_never_stops_the_others,
    conflicts_are_never_silent,
    corrupted_bodies_are_refused_and_not_stored,
    honest_expiry_with_temporary_credentials,
    downloads_stay_in_their_folder,
    listing_streams_page_by_page,
);

mod cli;
mod cli_interrupts;
mod cli_safety;
mod download_integrity;
mod download_reconnect;
mod download_safety;
mod embedded_store;
mod errors;
mod multipart_completion;
mod one_library;
mod presign;
mod relay;
mod relay_hardening;
mod relay_ledger;
mod relay_pages;
mod resume;
mod s3_behaviour;
mod tls;
mod transfers_elsewhere;
#[cfg(feature = "gui")]
mod ui;
#[cfg(feature = "gui")]
mod ui_connections;
#[cfg(feature = "gui")]
mod ui_credentials;
#[cfg(feature = "gui")]
mod ui_failures;
#[cfg(feature = "gui")]
mod ui_links;
#[cfg(feature = "gui")]
mod ui_relay;
#[cfg(feature = "gui")]
mod ui_resume;
#[cfg(feature = "gui")]
mod ui_worker;
mod upload_checksums;
mod upload_safety;
mod upload_stream;
