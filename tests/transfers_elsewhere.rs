//! How many connections a transfer opens depends on where the server is. Reached at an
//! address of this machine that is not loopback (through the proxy), a server is taken for one
//! elsewhere: an upload sends more parts at once than the memory held bodies share (the rest
//! streamed from the file, eight parts in flight for all files together), and a big download
//! comes in eight ranges. To a server on this machine, parts of 16 MiB go two at a time. The
//! bytes arrive right either way.

use std::sync::Arc;
use std::time::Duration;

use s3share::s3::Timeouts;
use s3share::transfer::{DownloadJob, UploadItem, UploadJob, UploadOptions, no_events};
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

use crate::on_both_servers;
use crate::support::proxy::{Fault, Kind, Proxy, address_elsewhere};
use crate::support::{TestServer, item, random_file, stored};

const MIB: usize = 1024 * 1024;

/// This machine's address that is not loopback, or `None` (saying the test cannot run).
fn elsewhere(test: &str) -> Option<std::net::Ipv4Addr> {
    let ip = address_elsewhere();
    if ip.is_none() {
        eprintln!("{test}: not run, this machine has no address but loopback");
    }
    ip
}

async fn uploads_elsewhere_send_more_parts_than_memory_holds(s: &TestServer) {
    let Some(ip) = elsewhere("uploads_elsewhere_send_more_parts_than_memory_holds") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Twelve parts of the default size elsewhere (8 MiB); the memory holds four of them.
    let sent = random_file(dir.path(), "far.bin", 96 * MIB, 41);
    let proxy = Proxy::start_on(&s.endpoint, ip).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    assert!(!client.is_on_this_machine(), "{}", proxy.endpoint);
    // No part finishes until eight are in flight together.
    let eight = Arc::new(Barrier::new(8));
    proxy.fault(Kind::UploadPart, Fault::HoldLastByte(eight), 8);
    let upload = client.upload_file(UploadJob::new(&s.bucket, item(&sent, "far.bin")));
    let done = tokio::time::timeout(Duration::from_secs(60), upload).await;
    let parts = proxy.seen_of(Kind::UploadPart).len();
    assert!(
        done.is_ok(),
        "{}: fewer than eight parts went at once ({parts} part requests seen)",
        s.name
    );
    done.unwrap().unwrap();
    assert_eq!(parts, 12, "{}", s.name);
    assert!(
        stored(s, "far.bin").await.unwrap() == std::fs::read(&sent).unwrap(),
        "{}: the object differs from the file",
        s.name
    );
}

async fn uploads_elsewhere_share_eight_parts_between_files(s: &TestServer) {
    let Some(ip) = elsewhere("uploads_elsewhere_share_eight_parts_between_files") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Two files of five 8 MiB parts: ten parts, each file's within the eight one file may send.
    let items: Vec<UploadItem> = (0..2)
        .map(|i| {
            let path = random_file(dir.path(), &format!("f{i}.bin"), 40 * MIB, 50 + i);
            item(&path, &format!("many/f{i}.bin"))
        })
        .collect();
    let proxy = Proxy::start_on(&s.endpoint, ip).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    // Parts are held until nine are in flight: the client's eight at a time never are.
    let nine = Arc::new(Barrier::new(9));
    proxy.fault(Kind::UploadPart, Fault::HoldLastByte(nine), 9);
    let options = UploadOptions::default();
    let cancel = CancellationToken::new();
    let upload = client.upload_many(&s.bucket, &items, &options, no_events(), &cancel);
    let done = held_at(&proxy, 8, upload).await;
    assert!(done.is_none(), "{}: nine parts went at once", s.name);
    assert_eq!(proxy.seen_of(Kind::UploadPart).len(), 8, "{}", s.name);
}

/// Runs `upload` until `n` parts are held at the proxy (however loaded the machine, within
/// 30 s), then a second more: `None` while it is still held there, as when no part beyond
/// the `n` was sent to free the others.
async fn held_at<T>(
    proxy: &Proxy,
    n: usize,
    upload: impl std::future::Future<Output = T>,
) -> Option<T> {
    let upload = std::pin::pin!(upload);
    let parts_seen = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while proxy.seen_of(Kind::UploadPart).len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::select! {
        done = upload => Some(done),
        () = parts_seen => None,
    }
}

async fn uploads_here_send_two_parts_at_once(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    // Four parts of the default size on this machine (16 MiB).
    let sent = random_file(dir.path(), "near.bin", 64 * MIB, 42);
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    assert!(client.is_on_this_machine(), "{}", proxy.endpoint);
    // Parts are held until three are in flight: two at a time, they never are.
    let three = Arc::new(Barrier::new(3));
    proxy.fault(Kind::UploadPart, Fault::HoldLastByte(three), 3);
    let upload = client.upload_file(UploadJob::new(&s.bucket, item(&sent, "near.bin")));
    let done = held_at(&proxy, 2, upload).await;
    assert!(done.is_none(), "{}: three parts went at once", s.name);
    assert_eq!(proxy.seen_of(Kind::UploadPart).len(), 2, "{}", s.name);
}

async fn big_downloads_from_elsewhere_come_in_eight_ranges(s: &TestServer) {
    let Some(ip) = elsewhere("big_downloads_from_elsewhere_come_in_eight_ranges") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Eight ranges of at least 16 MiB each.
    let sent = random_file(dir.path(), "sent.bin", 128 * MIB, 43);
    s.client
        .upload_file(UploadJob::new(&s.bucket, item(&sent, "far.bin")))
        .await
        .unwrap();
    let proxy = Proxy::start_on(&s.endpoint, ip).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let target = dir.path().join("got.bin");
    client
        .download_file(DownloadJob::file(&s.bucket, "far.bin", &target))
        .await
        .unwrap();
    let gets = proxy.seen_of(Kind::GetObject);
    let ranged = gets
        .iter()
        .filter(|g| !g.header("range").is_empty())
        .count();
    assert_eq!(
        (gets.len(), ranged),
        (8, 7),
        "{}: one whole GET and seven ranged ones expected",
        s.name
    );
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(&sent).unwrap(),
        "{}: the file differs from the object",
        s.name
    );
}

on_both_servers!(
    uploads_elsewhere_send_more_parts_than_memory_holds,
    uploads_elsewhere_share_eight_parts_between_files,
    uploads_here_send_two_parts_at_once,
    big_downloads_from_elsewhere_come_in_eight_ranges,
);
