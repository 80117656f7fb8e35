//! Upload bodies carry a CRC32C the server checks (`x-amz-checksum-crc32c`, signed into the
//! presigned URL): as safe as `Content-MD5`, for a fraction of its CPU. A server that does not
//! answer the checksum back is taken to ignore it: the body is checked by its ETag, and later
//! bodies carry `Content-MD5`. Against both servers, with the fault proxy in between.

use s3share::s3::{S3Client, Timeouts};
use s3share::transfer::{OnConflict, UploadItem, UploadJob, UploadOptions, UploadOutcome};

use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::{TestServer, assert_nothing_left, item, random_file, stored};

const MIB: usize = 1024 * 1024;
const CRC32C: &str = "x-amz-checksum-crc32c";

fn options(on_conflict: OnConflict, parts: bool) -> UploadOptions {
    UploadOptions {
        multipart_threshold: if parts {
            5 * MIB as u64
        } else {
            64 * MIB as u64
        },
        min_part_size: Some(5 * MIB as u64),
        concurrency: s3share::transfer::Concurrency {
            parts_in_flight: 2,
            ..Default::default()
        },
        on_conflict,
        ..Default::default()
    }
}

async fn upload(
    client: &S3Client,
    bucket: &str,
    it: &UploadItem,
    options: &UploadOptions,
) -> s3share::Result<UploadOutcome> {
    client
        .upload_file(UploadJob::new(bucket, it.clone()).options(options.clone()))
        .await
}

async fn corrupted_single_put_is_refused_and_the_old_object_kept(s: &TestServer) {
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let old = random_file(dir.path(), "old", MIB, 71);
    let new = random_file(dir.path(), "new", MIB, 72);
    let overwrite = options(OnConflict::Overwrite, false);
    upload(&client, &s.bucket, &item(&old, "kept.bin"), &overwrite)
        .await
        .unwrap();
    proxy.fault(Kind::PutObject, Fault::CorruptBody { at: 1000 }, 1);
    let r = upload(&client, &s.bucket, &item(&new, "kept.bin"), &overwrite).await;
    assert!(
        r.is_err(),
        "{}: a corrupted body was accepted: {r:?}",
        s.name
    );
    assert_eq!(
        stored(s, "kept.bin").await.as_deref(),
        Some(std::fs::read(&old).unwrap().as_slice()),
        "{}: the old object must survive a refused replacement",
        s.name
    );
    // The check the server made was the CRC32C, not an MD5 the client spent its CPU on.
    let puts = proxy.seen_of(Kind::PutObject);
    let last = puts.last().unwrap();
    assert_eq!(last.header(CRC32C).len(), 1, "{}: {last:?}", s.name);
    assert!(
        last.header("content-md5").is_empty(),
        "{}: {last:?}",
        s.name
    );
}

async fn a_corrupted_part_is_refused(s: &TestServer) {
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let path = random_file(dir.path(), "f", 11 * MIB, 73);
    proxy.fault(Kind::UploadPart, Fault::CorruptBody { at: 12_345 }, 1);
    let r = upload(
        &client,
        &s.bucket,
        &item(&path, "corrupt-part.bin"),
        &options(OnConflict::Fail, true),
    )
    .await;
    assert!(
        r.is_err(),
        "{}: a corrupted part was accepted: {r:?}",
        s.name
    );
    assert_nothing_left(s, "corrupt-part.bin").await;
    let first = proxy.seen_of(Kind::UploadPart)[0].clone();
    assert_eq!(first.header(CRC32C).len(), 1, "{}: {first:?}", s.name);
}

async fn a_server_that_ignores_the_checksum_gets_content_md5(s: &TestServer) {
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let a = random_file(dir.path(), "a", MIB, 74);
    let b = random_file(dir.path(), "b", MIB, 75);
    // As a server that ignores the header: it does not answer the checksum back.
    proxy.fault(
        Kind::PutObject,
        Fault::SetResponseHeader("x-amz-checksum-crc32c", None),
        1,
    );
    let create = options(OnConflict::Fail, false);
    for (path, key) in [(&a, "ignored-a.bin"), (&b, "ignored-b.bin")] {
        let r = upload(&client, &s.bucket, &item(path, key), &create).await;
        assert!(r.is_ok(), "{}: {key}: {r:?}", s.name);
        assert_eq!(
            stored(s, key).await.as_deref(),
            Some(std::fs::read(path).unwrap().as_slice()),
            "{}: {key}",
            s.name
        );
    }
    let puts = proxy.seen_of(Kind::PutObject);
    assert_eq!(puts[0].header(CRC32C).len(), 1, "{}: {:?}", s.name, puts[0]);
    // Learnt: what follows carries Content-MD5, which such a server checks.
    let last = puts.last().unwrap();
    assert!(last.header(CRC32C).is_empty(), "{}: {last:?}", s.name);
    assert_eq!(last.header("content-md5").len(), 1, "{}: {last:?}", s.name);
}

async fn a_part_answered_with_another_checksum_fails_the_upload(s: &TestServer) {
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let path = random_file(dir.path(), "f", 11 * MIB, 76);
    proxy.fault(
        Kind::UploadPart,
        Fault::SetResponseHeader("x-amz-checksum-crc32c", Some("AAAAAA==".into())),
        1,
    );
    let r = upload(
        &client,
        &s.bucket,
        &item(&path, "other-crc.bin"),
        &options(OnConflict::Fail, true),
    )
    .await;
    let message = r
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.contains("CRC32C"), "{}: {r:?}", s.name);
    assert_nothing_left(s, "other-crc.bin").await;
}

/// Every part of a multipart upload carries the CRC32C, the last as the first: the server
/// answers it back for each. On the old code the embedded store checked the CRC32C of a part
/// but did not answer it, so the client took it for a server that ignores the header and
/// hashed every later part with MD5 (two thirds of a 1 GiB upload's CPU).
async fn every_part_keeps_its_crc32c(s: &TestServer) {
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let path = random_file(dir.path(), "f", 16 * MIB, 77);
    let r = upload(
        &client,
        &s.bucket,
        &item(&path, "crc-parts.bin"),
        &options(OnConflict::Fail, true),
    )
    .await;
    assert!(r.is_ok(), "{}: {r:?}", s.name);
    assert_eq!(
        stored(s, "crc-parts.bin").await.as_deref(),
        Some(std::fs::read(&path).unwrap().as_slice()),
        "{}",
        s.name
    );
    let parts = proxy.seen_of(Kind::UploadPart);
    assert_eq!(parts.len(), 4, "{}: {parts:?}", s.name);
    for part in &parts {
        assert_eq!(part.header(CRC32C).len(), 1, "{}: {part:?}", s.name);
        assert!(
            part.header("content-md5").is_empty(),
            "{}: {part:?}",
            s.name
        );
    }
}

/// A body larger than the client's memory for held bodies (32 MiB) is streamed from the file,
/// read once for its checksum and once to send: the server still checks it, and refuses it
/// corrupted.
async fn a_body_too_large_to_hold_is_streamed_and_checked(s: &TestServer) {
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let path = random_file(dir.path(), "f", 40 * MIB, 78);
    let single = options(OnConflict::Overwrite, false);
    proxy.fault(
        Kind::PutObject,
        Fault::CorruptBody {
            at: 33 * MIB as u64,
        },
        1,
    );
    let r = upload(&client, &s.bucket, &item(&path, "streamed.bin"), &single).await;
    assert!(
        r.is_err(),
        "{}: a corrupted body was accepted: {r:?}",
        s.name
    );
    assert_nothing_left(s, "streamed.bin").await;
    let r = upload(&client, &s.bucket, &item(&path, "streamed.bin"), &single).await;
    assert!(
        matches!(
            r,
            Ok(UploadOutcome::Uploaded {
                multipart: false,
                ..
            })
        ),
        "{}: {r:?}",
        s.name
    );
    assert_eq!(
        stored(s, "streamed.bin").await.as_deref(),
        Some(std::fs::read(&path).unwrap().as_slice()),
        "{}",
        s.name
    );
    let puts = proxy.seen_of(Kind::PutObject);
    let last = puts.last().unwrap();
    assert_eq!(last.header(CRC32C).len(), 1, "{}: {last:?}", s.name);
}

crate::on_both_servers!(
    a_body_too_large_to_hold_is_streamed_and_checked,
    every_part_keeps_its_crc32c,
    corrupted_single_put_is_refused_and_the_old_object_kept,
    a_corrupted_part_is_refused,
    a_server_that_ignores_the_checksum_gets_content_md5,
    a_part_answered_with_another_checksum_fails_the_upload,
);
