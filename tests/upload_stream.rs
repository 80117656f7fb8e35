//! Uploads of a stream of unknown length (standard input, `put -`): stored byte for byte in one
//! PUT or in parts, resent from memory when a request fails, and never leaving an unfinished
//! upload behind, against the real servers.

use std::io::Read;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use s3share::Error;
use s3share::transfer::{
    Concurrency, OnConflict, UploadItem, UploadJob, UploadOptions, UploadOutcome,
};
use tokio_util::sync::CancellationToken;

use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::{TestServer, assert_nothing_left, quick_timeouts, stored};

const MIB: usize = 1024 * 1024;

/// The stream `-` as `key`, in 5 MiB first parts, two at a time.
fn job(s: &TestServer, key: &str, on_conflict: OnConflict) -> UploadJob {
    let item = UploadItem {
        path: "-".into(),
        key: key.to_owned(),
        size: 0,
    };
    UploadJob::new(&s.bucket, item).options(UploadOptions {
        min_part_size: Some(5 * MIB as u64),
        concurrency: Concurrency {
            parts_in_flight: 2,
            ..Default::default()
        },
        on_conflict,
        ..Default::default()
    })
}

/// `len` bytes that differ from part to part.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// A reader of `data` that gives at most `piece` bytes per read (as a pipe does), counts what
/// was read, and after `fail_after` bytes fails or cancels `cancel`.
struct Pipe {
    data: std::io::Cursor<Vec<u8>>,
    piece: usize,
    read: Arc<AtomicU64>,
    fail_after: Option<u64>,
    cancel: Option<CancellationToken>,
}

impl Pipe {
    fn new(data: Vec<u8>) -> Self {
        Self {
            data: std::io::Cursor::new(data),
            piece: 100_000,
            read: Arc::new(AtomicU64::new(0)),
            fail_after: None,
            cancel: None,
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let at = self.read.load(Ordering::SeqCst);
        if self.fail_after.is_some_and(|f| at >= f) {
            match &self.cancel {
                Some(c) => c.cancel(),
                None => return Err(std::io::Error::other("the pipe broke")),
            }
        }
        let n = buf.len().min(self.piece);
        let n = self.data.read(&mut buf[..n])?;
        self.read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// 23 MiB in 5 MiB parts: five parts (the last 3 MiB), stored byte for byte, nothing left open.
async fn a_long_stream_goes_in_parts(s: &TestServer) {
    let bytes = data(23 * MIB, 1);
    let r = s
        .client
        .upload_stream(
            job(s, "long.bin", OnConflict::Fail),
            Pipe::new(bytes.clone()),
        )
        .await;
    assert!(
        matches!(r, Ok(UploadOutcome::Uploaded { bytes: b, multipart: true }) if b == 23 * MIB as u64),
        "{}: {r:?}",
        s.name
    );
    assert!(stored(s, "long.bin").await.unwrap() == bytes, "{}", s.name);
    let etag = s
        .client
        .head(&s.bucket, "long.bin")
        .await
        .unwrap()
        .unwrap()
        .etag
        .unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-5"), "{}: {etag}", s.name);
    let open = s.client.list_open_uploads(&s.bucket, "").await.unwrap();
    assert!(open.is_empty(), "{}: {open:?}", s.name);
}

/// Streams that end within the first part go in one PUT, the empty one too; one of exactly one
/// part's length is a multipart upload of one part.
async fn short_streams_go_in_one_put(s: &TestServer) {
    for (key, len, multipart) in [
        ("short.txt", 1000, false),
        ("empty", 0, false),
        ("one-part.bin", 5 * MIB, true),
    ] {
        let bytes = data(len, 2);
        let r = s
            .client
            .upload_stream(job(s, key, OnConflict::Fail), Pipe::new(bytes.clone()))
            .await;
        assert!(
            matches!(r, Ok(UploadOutcome::Uploaded { bytes: b, multipart: m }) if b == len as u64 && m == multipart),
            "{}: {key}: {r:?}",
            s.name
        );
        assert!(stored(s, key).await.unwrap() == bytes, "{}: {key}", s.name);
    }
}

/// A key that exists is found before the stream is read: refused without `--overwrite`,
/// skipped with `--skip-existing`, and the stream is left whole for another try.
async fn a_taken_key_leaves_the_stream_unread(s: &TestServer) {
    crate::support::put_via_link(&s.client, &s.bucket, "taken", "old").await;
    for (on_conflict, skipped) in [(OnConflict::Fail, false), (OnConflict::Skip, true)] {
        let pipe = Pipe::new(data(MIB, 3));
        let read = pipe.read.clone();
        let r = s
            .client
            .upload_stream(job(s, "taken", on_conflict), pipe)
            .await;
        match r {
            Ok(UploadOutcome::Skipped) => assert!(skipped, "{}", s.name),
            Err(Error::AlreadyExists { .. }) => assert!(!skipped, "{}", s.name),
            other => panic!("{}: {on_conflict:?}: {other:?}", s.name),
        }
        assert_eq!(
            read.load(Ordering::SeqCst),
            0,
            "{}: the stream was read",
            s.name
        );
    }
    assert!(stored(s, "taken").await.unwrap() == b"old", "{}", s.name);
}

/// A stream that fails after two parts' worth fails the upload, naming it, and leaves neither
/// an object nor an unfinished upload.
async fn a_broken_stream_leaves_nothing(s: &TestServer) {
    let mut pipe = Pipe::new(data(20 * MIB, 4));
    pipe.fail_after = Some(12 * MIB as u64);
    let r = s
        .client
        .upload_stream(job(s, "broken.bin", OnConflict::Fail), pipe)
        .await;
    let Err(e) = r else {
        panic!("{}: a broken stream was uploaded: {r:?}", s.name);
    };
    let message = e.to_string();
    assert!(
        matches!(e, Error::Local { .. })
            && message.contains("the pipe broke")
            && message.contains('-'),
        "{}: {message}",
        s.name
    );
    assert_nothing_left(s, "broken.bin").await;
}

/// Cancelled while it is read: the multipart upload is aborted, nothing is left.
async fn a_cancelled_stream_leaves_nothing(s: &TestServer) {
    let cancel = CancellationToken::new();
    let mut pipe = Pipe::new(data(40 * MIB, 5));
    pipe.fail_after = Some(11 * MIB as u64);
    pipe.cancel = Some(cancel.clone());
    let job = job(s, "cancelled.bin", OnConflict::Fail).cancel(cancel);
    let r = s.client.upload_stream(job, pipe).await;
    assert!(matches!(r, Err(Error::Cancelled)), "{}: {r:?}", s.name);
    assert_nothing_left(s, "cancelled.bin").await;
}

crate::on_both_servers!(
    a_long_stream_goes_in_parts,
    short_streams_go_in_one_put,
    a_taken_key_leaves_the_stream_unread,
    a_broken_stream_leaves_nothing,
    a_cancelled_stream_leaves_nothing,
);

/// Parts and single PUTs the server failed (500) are sent again from memory, the stream being
/// read once: the objects are byte for byte what was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_are_resent_from_memory() {
    let s = crate::support::embedded().await;
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, quick_timeouts());
    let fail = Fault::Fail {
        status: 500,
        code: "InternalError",
    };
    proxy.fault(Kind::UploadPart, fail.clone(), 2);
    proxy.fault(Kind::PutObject, fail, 1);
    for (key, len) in [("parts.bin", 17 * MIB), ("one.bin", 3 * MIB)] {
        let bytes = data(len, 6);
        let pipe = Pipe::new(bytes.clone());
        let read = pipe.read.clone();
        let r = client
            .upload_stream(job(&s, key, OnConflict::Fail), pipe)
            .await;
        assert!(
            matches!(r, Ok(UploadOutcome::Uploaded { .. })),
            "{key}: {r:?}"
        );
        assert_eq!(read.load(Ordering::SeqCst), len as u64, "{key}: read once");
        assert!(stored(&s, key).await.unwrap() == bytes, "{key}");
    }
    // Four parts, two of them sent twice; one PUT sent twice.
    assert_eq!(proxy.seen_of(Kind::UploadPart).len(), 6);
    assert_eq!(proxy.seen_of(Kind::PutObject).len(), 2);
}

/// `put -` uploads standard input as the key named; a folder or a key ending in `/` is refused
/// with a message that says what to give, and `-` does not mix with files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_dash_uploads_standard_input() {
    use std::io::Write as _;
    let s = crate::support::seaweed().await;
    let home = tempfile::tempdir().unwrap();
    let bytes = data(7 * MIB + 3, 7);
    let dest = format!("s3://{}/in/stdin.bin", s.bucket);
    let mut child = crate::cli_safety::cli(&s, home.path())
        .args(["put", "-", &dest])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let sent = bytes.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&sent).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "uploaded standard input → {dest} ({} bytes)",
            bytes.len()
        )),
        "{err}"
    );
    assert!(stored(&s, "in/stdin.bin").await.unwrap() == bytes);

    for (args, says) in [
        (
            vec!["put", "-", &format!("s3://{}/in", s.bucket)],
            "is a folder",
        ),
        (
            vec!["put", "-", &format!("s3://{}/in/", s.bucket)],
            "no name to go by",
        ),
        (vec!["put", "-", "Cargo.toml", &dest], "goes alone"),
    ] {
        let out = crate::cli_safety::cli(&s, home.path())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    let open = s.client.list_open_uploads(&s.bucket, "").await.unwrap();
    assert!(open.is_empty(), "{open:?}");
}
