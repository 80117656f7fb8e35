//! A download whose connection breaks goes on where it broke, in the same run: the rest is asked
//! for again with a Range guarded by the object's ETag.

use s3share::s3::Timeouts;
use s3share::transfer::{DownloadJob, PARTIAL_SUFFIX};

use crate::on_both_servers;
use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::{TestServer, put_via_link};

const MIB: u64 = 1024 * 1024;

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
    let ranges: Vec<Vec<&str>> = gets.iter().map(|g| g.header("range")).collect();
    assert_eq!(
        ranges,
        [vec![], vec!["bytes=1048576-"], vec!["bytes=2097152-"]],
        "{}",
        s.name
    );
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

on_both_servers!(a_broken_connection_continues_where_it_broke);
