//! Completing a multipart upload as S3 does: the parts named are the parts stored (their
//! ETags), a completion that fails leaves the upload open to be completed, and the object
//! completed is the new version whole, checksum included. The embedded store joins the parts
//! without reading them again; these are the rules it must keep while doing so.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use s3share::transfer::{DownloadJob, OnConflict, UploadItem, UploadJob, UploadOptions};

use crate::on_both_servers;
use crate::support::{TestServer, random_file, stored};

const MIB: usize = 1024 * 1024;

/// An SDK client of the test server's own: the parts and completions are made by hand.
fn sdk(s: &TestServer) -> aws_sdk_s3::Client {
    crate::presign::sdk(s, crate::presign::static_provider(s))
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn put_part(
    sdk: &aws_sdk_s3::Client,
    s: &TestServer,
    key: &str,
    id: &str,
    number: i32,
    body: &[u8],
) -> String {
    sdk.upload_part()
        .bucket(&s.bucket)
        .key(key)
        .upload_id(id)
        .part_number(number)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned()
}

async fn complete(
    sdk: &aws_sdk_s3::Client,
    s: &TestServer,
    key: &str,
    id: &str,
    etags: &[&str],
) -> Result<String, String> {
    let parts = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| {
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(*etag)
                .build()
        })
        .collect();
    sdk.complete_multipart_upload()
        .bucket(&s.bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map(|out| out.e_tag().unwrap_or_default().to_owned())
        .map_err(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata as _;
            e.code().unwrap_or("no code").to_owned()
        })
}

async fn open_uploads(s: &TestServer) -> Vec<(String, String)> {
    s.client.list_open_uploads(&s.bucket, "").await.unwrap()
}

/// A completion that names a part by another ETag is refused and changes nothing: the upload
/// stays open and completes with the right ETags, into the parts' bytes in order.
async fn a_completion_must_name_the_stored_parts(s: &TestServer) {
    let sdk = sdk(s);
    let key = "completion/x.bin";
    let id = sdk
        .create_multipart_upload()
        .bucket(&s.bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let (first, second) = (bytes(5 * MIB, 1), bytes(MIB + 7, 2));
    let a = put_part(&sdk, s, key, &id, 1, &first).await;
    let b = put_part(&sdk, s, key, &id, 2, &second).await;

    let wrong = "\"0123456789abcdef0123456789abcdef\"";
    let refused = complete(&sdk, s, key, &id, &[&a, wrong]).await;
    assert_eq!(refused, Err("InvalidPart".to_owned()), "{}", s.name);
    assert!(
        s.client.head(&s.bucket, key).await.unwrap().is_none(),
        "{}: a refused completion made an object",
        s.name
    );
    assert_eq!(
        open_uploads(s).await,
        [(key.to_owned(), id.clone())],
        "{}: the upload must stay open",
        s.name
    );

    let etag = complete(&sdk, s, key, &id, &[&a, &b]).await.unwrap();
    assert!(etag.trim_matches('"').ends_with("-2"), "{}: {etag}", s.name);
    let mut whole = first;
    whole.extend_from_slice(&second);
    assert!(
        stored(s, key).await.unwrap() == whole,
        "{}: the object is not the parts in order",
        s.name
    );
    assert!(open_uploads(s).await.is_empty(), "{}", s.name);
}

/// An object first written in one PUT (with its CRC32C), then replaced by a multipart upload,
/// downloads whole: the checksum it is checked against is the new version's, or none. On the
/// old code the embedded store kept the first version's CRC32C, and the download of the new
/// one was refused as damaged.
async fn an_object_replaced_in_parts_downloads_whole(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let small = random_file(dir.path(), "small.bin", 1000, 11);
    let big = random_file(dir.path(), "big.bin", 11 * MIB, 12);
    let options = UploadOptions {
        multipart_threshold: 5 * MIB as u64,
        min_part_size: Some(5 * MIB as u64),
        on_conflict: OnConflict::Overwrite,
        ..Default::default()
    };
    for path in [&small, &big] {
        let item = UploadItem {
            path: path.clone(),
            key: "replaced.bin".into(),
            size: std::fs::metadata(path).unwrap().len(),
        };
        s.client
            .upload_file(UploadJob::new(&s.bucket, item).options(options.clone()))
            .await
            .unwrap();
    }
    let target = dir.path().join("got.bin");
    let got = s
        .client
        .download_file(DownloadJob::file(&s.bucket, "replaced.bin", &target))
        .await;
    assert!(got.is_ok(), "{}: {got:?}", s.name);
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(&big).unwrap(),
        "{}",
        s.name
    );
}

on_both_servers!(
    a_completion_must_name_the_stored_parts,
    an_object_replaced_in_parts_downloads_whole,
);
