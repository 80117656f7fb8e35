//! A download damaged on the way is refused: the bytes received are checked against the
//! object's CRC32C (which the server tells when the GET asks for checksum mode), and nothing
//! damaged is kept.

use s3share::s3::Timeouts;
use s3share::transfer::{DownloadJob, PARTIAL_SUFFIX, ResumeStore, UploadItem, UploadJob};

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

/// Partial files left in `dir`.
fn partials_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(PARTIAL_SUFFIX))
        .collect()
}

const MIB: usize = 1024 * 1024;

/// Stores `size` random bytes (from `seed`) as `key` in one PUT, so that the server keeps the
/// whole object's CRC32C; returns the local file they came from (in `dir`).
async fn store_whole(
    s: &TestServer,
    dir: &std::path::Path,
    key: &str,
    size: usize,
    seed: u64,
) -> std::path::PathBuf {
    let sent = random_file(dir, "sent.bin", size, seed);
    let item = UploadItem {
        path: sent.clone(),
        key: key.into(),
        size: size as u64,
    };
    let options = s3share::transfer::UploadOptions {
        multipart_threshold: 64 * MIB as u64,
        ..Default::default()
    };
    s.client
        .upload_file(UploadJob::new(&s.bucket, item).options(options))
        .await
        .unwrap();
    sent
}

/// From a server on this machine a big download comes in one stream. Asked for two ranges side
/// by side, the whole GET serves the first half, a GET of the second half (only while the ETag
/// is the same) the rest. The halves are checked
/// together against the object's CRC32C, so damage in the second is caught; a break in it is
/// continued from where it broke.
async fn a_big_download_comes_in_ranges_checked_whole(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB;
    let sent = store_whole(s, dir.path(), "big.bin", size, 9).await;
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let target = dir.path().join("got.bin");
    let same = || std::fs::read(&target).unwrap() == std::fs::read(&sent).unwrap();

    // From a server on this machine, one connection unless asked for more.
    let one = DownloadJob::file(&s.bucket, "big.bin", &target);
    assert_eq!(client.download_file(one).await.unwrap(), size as u64);
    assert!(same(), "{}", s.name);
    let gets = proxy.seen_of(Kind::GetObject);
    assert_eq!(gets.len(), 1, "{}", s.name);
    assert!(gets[0].header("range").is_empty(), "{}", s.name);
    std::fs::remove_file(&target).unwrap();

    let options = s3share::transfer::DownloadOptions {
        overwrite: true,
        ranges: Some(2),
        ..Default::default()
    };
    let job = || DownloadJob::file(&s.bucket, "big.bin", &target).options(options.clone());
    let before = proxy.seen_of(Kind::GetObject).len();
    assert_eq!(client.download_file(job()).await.unwrap(), size as u64);
    assert!(same(), "{}", s.name);
    let gets = &proxy.seen_of(Kind::GetObject)[before..];
    let ranges: Vec<Vec<&str>> = gets.iter().map(|g| g.header("range")).collect();
    assert_eq!(
        ranges,
        [vec![], vec!["bytes=20971520-41943039"]],
        "{}",
        s.name
    );
    assert!(gets[0].header("if-match").is_empty(), "{}", s.name);
    assert_eq!(gets[1].header("if-match").len(), 1, "{}", s.name);

    // The first GET goes through; the second half comes damaged.
    let untouched = Fault::SetResponseHeader("x-amz-meta-untouched", None);
    proxy.fault(Kind::GetObject, untouched.clone(), 1);
    proxy.fault(Kind::GetObject, Fault::CorruptAnswer { at: 1234 }, 1);
    let err = client.download_file(job()).await.unwrap_err().to_string();
    assert!(
        err.contains("do not match the object's CRC32C checksum"),
        "{}: {err}",
        s.name
    );
    assert!(same(), "{}: the file in place was replaced", s.name);
    assert!(partials_in(dir.path()).is_empty(), "{}", s.name);

    // The second half breaks after 1 MiB: the rest of it is asked for again.
    let before = proxy.seen_of(Kind::GetObject).len();
    proxy.fault(Kind::GetObject, untouched, 1);
    proxy.fault(Kind::GetObject, Fault::CutAnswer { after: MIB as u64 }, 1);
    std::fs::remove_file(&target).unwrap();
    client.download_file(job()).await.unwrap();
    assert!(same(), "{}", s.name);
    let gets = proxy.seen_of(Kind::GetObject);
    let ranges: Vec<Vec<&str>> = gets[before..].iter().map(|g| g.header("range")).collect();
    assert_eq!(
        ranges,
        [
            vec![],
            vec!["bytes=20971520-41943039"],
            vec!["bytes=22020096-41943039"]
        ],
        "{}",
        s.name
    );
    assert!(partials_in(dir.path()).is_empty(), "{}", s.name);
}

/// A download in two ranges breaks in both and cannot reconnect: what came is kept, leaving
/// two gaps. Continued over one connection, the gaps come one after the other on it (the
/// second is not asked for while the first is under way, nor when it failed); over two, side
/// by side. Either way only the gaps come, the file is whole and nothing is left behind.
async fn gaps_take_turns_on_the_connections_allowed(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let size = 40 * MIB;
    let sent = store_whole(s, dir.path(), "gaps.bin", size, 11).await;
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let store = ResumeStore::new(dir.path().join("resume"));
    let target = dir.path().join("got.bin");
    let job = |ranges| {
        let options = s3share::transfer::DownloadOptions {
            ranges: Some(ranges),
            resume: Some(store.clone()),
            ..Default::default()
        };
        DownloadJob::file(&s.bucket, "gaps.bin", &target).options(options)
    };
    let refused = || Fault::Fail {
        status: 403,
        code: "AccessDenied",
    };
    let gaps = ["bytes=1048576-20971519", "bytes=22020096-41943039"];
    let gets_after = |before: usize| {
        let gets = proxy.seen_of(Kind::GetObject)[before..].to_vec();
        assert!(
            gets.iter().all(|g| g.header("if-match").len() == 1),
            "{}: a range without If-Match",
            s.name
        );
        gets.iter()
            .flat_map(|g| g.header("range").into_iter().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    for connections in [1, 2] {
        // Both halves break after 1 MiB, and the server refuses to go on.
        proxy.fault(Kind::GetObject, Fault::CutAnswer { after: MIB as u64 }, 2);
        proxy.fault(Kind::GetObject, refused(), 2);
        let err = client.download_file(job(2)).await.unwrap_err().to_string();
        assert!(err.contains("AccessDenied"), "{}: {err}", s.name);
        proxy.clear_faults();
        assert_eq!(partials_in(dir.path()).len(), 1, "{}", s.name);

        if connections == 1 {
            // The first gap is refused: the second, waiting for the connection, is not asked.
            proxy.fault(Kind::GetObject, refused(), 1);
            let before = proxy.seen_of(Kind::GetObject).len();
            let err = client.download_file(job(1)).await.unwrap_err().to_string();
            assert!(err.contains("AccessDenied"), "{}: {err}", s.name);
            assert_eq!(gets_after(before), gaps[..1], "{}", s.name);
            assert_eq!(partials_in(dir.path()).len(), 1, "{}", s.name);
        }

        let before = proxy.seen_of(Kind::GetObject).len();
        let got = client.download_file(job(connections)).await.unwrap();
        assert_eq!(got, size as u64, "{}", s.name);
        let mut ranges = gets_after(before);
        // Side by side, they reach the server in either order.
        ranges.sort();
        assert_eq!(ranges, gaps, "{} ({connections})", s.name);
        assert!(
            std::fs::read(&target).unwrap() == std::fs::read(&sent).unwrap(),
            "{} ({connections})",
            s.name
        );
        assert!(partials_in(dir.path()).is_empty(), "{}", s.name);
        std::fs::remove_file(&target).unwrap();
    }
}

/// A GET's conditions hold on either server: `If-Match` and `If-Range` guard a resumed download
/// against splicing two versions of an object (the CLI's resume and a browser's, through the
/// relay, count on them). The embedded store ignored them all: after the object changed, a
/// range under the old ETag came from the new bytes.
async fn conditions_on_a_get_hold_after_the_object_changed(s: &TestServer) {
    let key = "changing.txt";
    let old = crate::support::put_via_link(&s.client, &s.bucket, key, "the first version").await;
    assert!(old.status().is_success());
    let old_etag = old.headers()["etag"].to_str().unwrap().to_owned();
    let new = crate::support::put_via_link(&s.client, &s.bucket, key, "THE SECOND VERSION").await;
    let new_etag = new.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(old_etag, new_etag);
    let link = s
        .client
        .link_get(&s.bucket, key, std::time::Duration::from_secs(60), None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get = |headers: &[(&str, &str)]| {
        let mut req = http.get(&link.url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
    };
    let name = s.name;
    let got = get(&[("if-match", &old_etag)]).await.unwrap();
    assert_eq!(got.status(), 412, "{name}: If-Match of the old version");
    let got = get(&[("if-match", &new_etag)]).await.unwrap();
    assert_eq!(got.status(), 200, "{name}: If-Match of this version");
    let got = get(&[("if-none-match", &new_etag)]).await.unwrap();
    assert_eq!(got.status(), 304, "{name}: If-None-Match of this version");
    let got = get(&[("if-none-match", &old_etag)]).await.unwrap();
    assert_eq!(
        got.status(),
        200,
        "{name}: If-None-Match of the old version"
    );

    // A range under the old version's ETag: the whole new object, never a piece of it. Not
    // asked of SeaweedFS, which ignores If-Range (4.48 answers 206 from the new bytes; S3's API
    // does not name the header); the embedded store honours it, as the relay's streaming of
    // it passes browsers' resumed downloads through.
    if s.name != "embedded" {
        return;
    }
    let got = get(&[("range", "bytes=4-9"), ("if-range", &old_etag)])
        .await
        .unwrap();
    assert_eq!(got.status(), 200, "{name}: If-Range of the old version");
    assert_eq!(got.bytes().await.unwrap(), "THE SECOND VERSION", "{name}");
    let got = get(&[("range", "bytes=4-9"), ("if-range", &new_etag)])
        .await
        .unwrap();
    assert_eq!(got.status(), 206, "{name}: If-Range of this version");
    assert_eq!(got.bytes().await.unwrap(), "SECOND", "{name}");
}

on_both_servers!(
    conditions_on_a_get_hold_after_the_object_changed,
    a_download_damaged_on_the_way_is_refused,
    gaps_take_turns_on_the_connections_allowed,
    a_big_download_comes_in_ranges_checked_whole
);
