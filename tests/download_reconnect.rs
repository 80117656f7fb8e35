//! A download whose connection breaks goes on where it broke, in the same run: the rest is asked
//! for again with a Range guarded by the object's ETag.

use s3share::s3::Timeouts;
use s3share::transfer::{DownloadJob, PARTIAL_SUFFIX, UploadItem, UploadJob};

use crate::on_both_servers;
use crate::support::proxy::{Fault, Kind, Proxy, Seen};
use crate::support::{TestServer, put_via_link};

const MIB: u64 = 1024 * 1024;

/// The GETs of an object of 3 MiB whose answer was cut after 1 MiB twice: the whole object,
/// then the rest from 1 MiB, then from 2 MiB.
fn assert_rest_asked_twice(gets: &[Seen], s: &TestServer) {
    let ranges: Vec<Vec<&str>> = gets.iter().map(|g| g.header("range")).collect();
    assert_eq!(
        ranges,
        [
            vec![],
            vec!["bytes=1048576-3145727"],
            vec!["bytes=2097152-3145727"]
        ],
        "{}",
        s.name
    );
}

/// The answer to the download's GET is cut after 1 MiB, twice: the download asks for the rest
/// twice (from byte 1 MiB, then 2 MiB, each only while the ETag is the same), succeeds, and the
/// file is right byte for byte.
async fn a_broken_connection_continues_where_it_broke(s: &TestServer) {
    let body: Vec<u8> = (0..3 * MIB).map(|i| (i * 7 % 251) as u8).collect();
    put_via_link(&s.client, &s.bucket, "flaky.bin", body.clone())
        .await
        .error_for_status()
        .unwrap();
    let proxy = Proxy::start(&s.endpoint).await;
    proxy.fault(Kind::GetObject, Fault::CutAnswer { after: MIB }, 2);
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("flaky.bin");
    let got = client
        .download_file(DownloadJob::file(&s.bucket, "flaky.bin", &target))
        .await;
    assert_eq!(got.unwrap(), 3 * MIB, "{}", s.name);
    assert!(std::fs::read(&target).unwrap() == body, "{}", s.name);
    let gets = proxy.seen_of(Kind::GetObject);
    assert_rest_asked_twice(&gets, s);
    let guards: Vec<Vec<&str>> = gets.iter().map(|g| g.header("if-match")).collect();
    assert!(guards[0].is_empty(), "{}: {guards:?}", s.name);
    assert!(
        guards[1].len() == 1 && guards[1] == guards[2] && guards[1][0].len() > 2,
        "{}: {guards:?}",
        s.name
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(PARTIAL_SUFFIX))
        .collect();
    assert!(left.is_empty(), "{}: {left:?}", s.name);
}

/// The same for a download streamed in order (`get KEY -`): the rest is asked for from where
/// the output stopped, and the output is the object, byte for byte. A body damaged on the way
/// is caught by the object's CRC32C, and the error says the output must be thrown away.
async fn a_streamed_download_continues_and_is_checked(s: &TestServer) {
    let body: Vec<u8> = (0..3 * MIB).map(|i| (i * 13 % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::write(&source, &body).unwrap();
    // Uploaded by s3share: with its CRC32C, which the server keeps and tells.
    let item = UploadItem {
        path: source,
        key: "streamed.bin".into(),
        size: 3 * MIB,
    };
    s.client
        .upload_file(UploadJob::new(&s.bucket, item))
        .await
        .unwrap();
    let proxy = Proxy::start(&s.endpoint).await;
    proxy.fault(Kind::GetObject, Fault::CutAnswer { after: MIB }, 2);
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let target = dir.path().join("out");
    let cancel = tokio_util::sync::CancellationToken::new();
    let out = std::fs::File::create(&target).unwrap();
    let got = client
        .stream_object(&s.bucket, "streamed.bin", out, &cancel)
        .await;
    assert_eq!(got.unwrap(), 3 * MIB, "{}", s.name);
    assert!(std::fs::read(&target).unwrap() == body, "{}", s.name);
    assert_rest_asked_twice(&proxy.seen_of(Kind::GetObject), s);

    proxy.fault(Kind::GetObject, Fault::CorruptAnswer { at: MIB + 5 }, 1);
    let out = std::fs::File::create(&target).unwrap();
    let err = client
        .stream_object(&s.bucket, "streamed.bin", out, &cancel)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CRC32C") && err.contains("discard the output"),
        "{}: {err}",
        s.name
    );
}

on_both_servers!(
    a_broken_connection_continues_where_it_broke,
    a_streamed_download_continues_and_is_checked
);
