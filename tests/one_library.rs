//! Logic both faces need lives once, in the library (issue 9 part 2): these are the functions
//! the CLI and the app both call, against both real servers.

use s3share::s3::Timeouts;

use crate::on_both_servers;
use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::{TestServer, random_file};

/// Stores a small object at each of `keys`.
async fn put_keys(s: &TestServer, keys: &[String]) {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    crate::cli_safety::put_keys(s, &keys).await;
}

/// More keys than are asked at once: exactly the stored ones are named, awkward names too; a
/// client the server refuses gets an error, not an empty answer.
async fn existing_keys_names_exactly_the_stored_ones(s: &TestServer) {
    let stored: Vec<String> = (0..20)
        .map(|n| format!("docs/{n:02}.txt"))
        .chain(crate::AWKWARD_KEYS.iter().map(|k| (*k).to_owned()))
        .collect();
    put_keys(s, &stored).await;
    let asked: Vec<String> = (0..40).map(|n| format!("docs/{n:02}.txt")).collect();
    let asked = asked.into_iter().chain(stored.iter().skip(20).cloned());
    let found = s.client.existing_keys(&s.bucket, asked).await.unwrap();
    let mut found: Vec<String> = found.into_iter().collect();
    found.sort();
    let mut expected = stored.clone();
    expected.sort();
    assert_eq!(found, expected, "{}", s.name);

    let creds = aws_credential_types::Credentials::new(&s.access_key, "wrong", None, None, "test");
    let wrong = s3share::s3::static_client(&s.endpoint, "us-east-1", creds, true).unwrap();
    let r = wrong.existing_keys(&s.bucket, stored).await;
    assert!(r.is_err(), "{}: {r:?}", s.name);
}

/// The keys left in the bucket, sorted.
async fn keys_left(s: &TestServer) -> Vec<String> {
    crate::all_keys(s, "").await
}

/// Deleting many keys through a server without DeleteObjects goes key by key; a key the
/// server refuses is reported with its error, and every other key is deleted all the same.
async fn delete_many_goes_key_by_key_where_there_is_no_delete_objects(s: &TestServer) {
    let keys: Vec<String> = (0..20).map(|n| format!("old/{n:02}.txt")).collect();
    put_keys(s, &keys).await;
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Timeouts::default());
    let not_implemented = Fault::Fail {
        status: 501,
        code: "NotImplemented",
    };
    proxy.fault(Kind::DeleteObjects, not_implemented, usize::MAX);
    let denied = Fault::Fail {
        status: 403,
        code: "AccessDenied",
    };
    proxy.fault(Kind::DeleteObject, denied, 1);

    let report = client.delete_many(&s.bucket, &keys).await;
    assert_eq!(report.failed.len(), 1, "{}: {:?}", s.name, report.failed);
    let (refused, e) = &report.failed[0];
    assert!(matches!(e, s3share::Error::AccessDenied { .. }), "{e}");
    assert_eq!(report.deleted.len(), 19, "{}", s.name);
    assert!(!report.deleted.contains(refused));
    assert_eq!(
        keys_left(s).await,
        std::slice::from_ref(refused),
        "{}",
        s.name
    );
    assert_eq!(proxy.seen_of(Kind::DeleteObjects).len(), 1, "{}", s.name);
    assert_eq!(proxy.seen_of(Kind::DeleteObject).len(), 20, "{}", s.name);
}

/// The bytes stored at `key`.
async fn stored(s: &TestServer, key: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("got");
    crate::download(s, key, &path).await.unwrap();
    std::fs::read(path).unwrap()
}

/// `put --keep-both` names copies as the app's "Keep both" does: a taken key gets the first
/// free `name (n).ext`, never one another file of the same run goes to; a free key keeps its
/// name; nothing is replaced. It does not go with `--overwrite` or `--skip-existing`.
async fn put_keep_both_uploads_beside_what_exists(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let files = home.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let first = random_file(&files, "photo.jpg", 100, 1);
    let b = &s.bucket;
    let put = |args: &[&str]| {
        let out = crate::cli_safety::cli(s, home.path())
            .arg("put")
            .args(args)
            .output()
            .expect("s3share runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), err)
    };
    let docs = format!("s3://{b}/docs/");
    let (ok, err) = put(&[first.to_str().unwrap(), &docs]);
    assert!(ok, "{}: {err}", s.name);

    // The next run: `photo.jpg` is taken, and `photo (1).jpg` is this run's own.
    let again = home.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    let second = random_file(&again, "photo.jpg", 200, 2);
    let own = random_file(&again, "photo (1).jpg", 300, 3);
    let (ok, err) = put(&[
        "--keep-both",
        second.to_str().unwrap(),
        own.to_str().unwrap(),
        &docs,
    ]);
    assert!(ok, "{}: {err}", s.name);
    assert!(err.contains("docs/photo (2).jpg"), "{}: {err}", s.name);
    assert_eq!(
        keys_left(s).await,
        ["docs/photo (1).jpg", "docs/photo (2).jpg", "docs/photo.jpg"],
        "{}",
        s.name
    );
    let bytes = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(stored(s, "docs/photo.jpg").await, bytes(&first));
    assert_eq!(stored(s, "docs/photo (1).jpg").await, bytes(&own));
    assert_eq!(stored(s, "docs/photo (2).jpg").await, bytes(&second));

    for other in ["--overwrite", "--skip-existing"] {
        let (ok, err) = put(&["--keep-both", other, first.to_str().unwrap(), &docs]);
        assert!(!ok, "{}: {other}: {err}", s.name);
        assert!(err.contains("cannot be used with"), "{other}: {err}");
    }
    assert_eq!(keys_left(s).await.len(), 3, "{}", s.name);
}

on_both_servers!(
    put_keep_both_uploads_beside_what_exists,
    existing_keys_names_exactly_the_stored_ones,
    delete_many_goes_key_by_key_where_there_is_no_delete_objects,
);
