//! Logic both faces need lives once, in the library (issue 9 part 2): these are the functions
//! the CLI and the app both call, against both real servers.

use s3share::s3::Timeouts;

use crate::on_both_servers;
use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::{TestServer, random_file};

/// Stores a small object at each of `keys`.
async fn put_keys(s: &TestServer, keys: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| crate::item(random_file(dir.path(), &format!("f{n}"), 10, n as u64), key))
        .collect();
    let results = crate::upload(s, &items).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
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
    let mut keys: Vec<String> = s
        .client
        .list_all(&s.bucket, "", true)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    keys
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

on_both_servers!(
    existing_keys_names_exactly_the_stored_ones,
    delete_many_goes_key_by_key_where_there_is_no_delete_objects,
);
