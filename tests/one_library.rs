//! Logic both faces need lives once, in the library (issue 9 part 2): these are the functions
//! the CLI and the app both call, against both real servers.

use crate::on_both_servers;
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

on_both_servers!(existing_keys_names_exactly_the_stored_ones);
