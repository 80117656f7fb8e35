//! A download damaged on the way is refused: the bytes received are checked against the
//! object's CRC32C (which the server tells when the GET asks for checksum mode), and nothing
//! damaged is kept.

use s3share::s3::Timeouts;
use s3share::transfer::{DownloadJob, PARTIAL_SUFFIX, UploadItem, UploadJob};

use crate::on_both_servers;
use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::{TestServer, random_file};

async fn a_download_damaged_on_the_way_is_refused(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let size = 300_000;
    let sent = random_file(dir.path(), "sent.bin", size, 5);
    let item = UploadItem {
        path: sent.clone(),
        key: "checked.bin".into(),
        size: size as u64,
    };
    // Uploaded by s3share: with its CRC32C, which the server keeps.
    s.client
        .upload_file(UploadJob::new(&s.bucket, item))
        .await
        .unwrap();
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    proxy.fault(Kind::GetObject, Fault::CorruptAnswer { at: 1234 }, 1);
    let target = dir.path().join("got.bin");
    let job = || DownloadJob::file(&s.bucket, "checked.bin", &target);
    let err = client.download_file(job()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("do not match the object's CRC32C checksum"),
        "{}: {err}",
        s.name
    );
    assert!(!target.exists(), "{}: the damaged file was kept", s.name);
    let partial = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX));
    assert!(!partial, "{}: a partial file was left", s.name);
    // Undamaged, the same download arrives.
    client.download_file(job()).await.unwrap();
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(&sent).unwrap(),
        "{}",
        s.name
    );
}

on_both_servers!(a_download_damaged_on_the_way_is_refused);
