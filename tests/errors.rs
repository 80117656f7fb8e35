//! Errors keep their facts: an S3 refusal from each path (an SDK call, a presigned PUT, a
//! presigned GET) carries the server's code, status and request id, and says the request id;
//! a wrong secret is a credential problem by its type, not by its message.

use s3share::s3::S3Client;
use s3share::transfer::{OnConflict, UploadItem, UploadOptions, no_events};
use s3share::{CredentialProblem, Error};
use tokio_util::sync::CancellationToken;

use crate::support::TestServer;

/// A client for `s`'s server whose secret key is wrong.
fn wrong_secret(s: &TestServer) -> S3Client {
    let creds = aws_credential_types::Credentials::new(&s.access_key, "wrong", None, None, "test");
    s3share::s3::static_client(&s.endpoint, "us-east-1", creds, true).unwrap()
}

/// `e` carries the server's `code` and `status` and a request id, and its message says it.
fn assert_facts(e: &Error, code: &str, status: u16) {
    let answer = e
        .s3_answer()
        .unwrap_or_else(|| panic!("no answer kept: {e:?}"));
    assert_eq!(answer.code.as_deref(), Some(code), "{e:?}");
    assert_eq!(answer.status, Some(status), "{e:?}");
    let id = e
        .request_id()
        .unwrap_or_else(|| panic!("no request id: {e:?}"));
    assert!(!id.is_empty(), "{e:?}");
    assert!(
        e.to_string().contains(&format!("(request id {id})")),
        "the message does not say the request id: {e}"
    );
}

/// A wrong secret is refused credentials, by type, with the server's facts.
fn assert_rejected(e: &Error) {
    assert_eq!(
        e.credential_problem(),
        Some(CredentialProblem::Rejected),
        "{e:?}"
    );
    assert_facts(e, "SignatureDoesNotMatch", 403);
    assert!(e.to_string().contains("access denied"), "{e}");
}

async fn sdk_refusals_keep_their_facts(s: &TestServer) {
    let missing = s.client.read_start(&s.bucket, "missing.txt", 10).await;
    let e = missing.unwrap_err();
    assert_facts(&e, "NoSuchKey", 404);
    assert_eq!(e.credential_problem(), None, "{e:?}");

    let e = wrong_secret(s).list_buckets().await.unwrap_err();
    assert_rejected(&e);
}

async fn presigned_put_refusals_keep_their_facts(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.txt");
    std::fs::write(&path, b"hello").unwrap();
    let items = [UploadItem {
        path,
        key: "a.txt".to_owned(),
        size: 5,
    }];
    let results = wrong_secret(s)
        .upload_many(
            &s.bucket,
            &items,
            // No HEAD first: the PUT itself is refused.
            &UploadOptions {
                on_conflict: OnConflict::Overwrite,
                ..UploadOptions::default()
            },
            no_events(),
            &CancellationToken::new(),
        )
        .await;
    let [Err(e)] = &results[..] else {
        panic!("{results:?}");
    };
    assert_rejected(e);
}

async fn presigned_get_refusals_keep_their_facts(s: &TestServer) {
    let e = s
        .client
        .get_via_link(&s.bucket, "missing.txt", 100)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Http { .. }), "{e:?}");
    assert_facts(&e, "NoSuchKey", 404);

    s.client.create_folder(&s.bucket, "here/").await.unwrap();
    let e = wrong_secret(s)
        .get_via_link(&s.bucket, "here/", 100)
        .await
        .unwrap_err();
    assert_rejected(&e);
}

/// Parts refused for expired credentials, and the abort refused too: the upload stays on the
/// server and the error says so, but it is still an expired-credentials error by its type, so
/// the app offers to sign in again (it used to become words only).
async fn an_upload_that_cannot_be_aborted_keeps_its_causes_facts(s: &TestServer) {
    use crate::support::proxy::{Fault, Kind, Proxy};
    let dir = tempfile::tempdir().unwrap();
    let size = 34 << 20;
    let path = crate::support::random_file(dir.path(), "big.bin", size, 3);
    let proxy = Proxy::start(&s.endpoint).await;
    let client = s.client_at(&proxy.endpoint, Default::default());
    let expired = Fault::Fail {
        status: 400,
        code: "ExpiredToken",
    };
    proxy.fault(Kind::UploadPart, expired, usize::MAX);
    let denied = Fault::Fail {
        status: 403,
        code: "AccessDenied",
    };
    proxy.fault(Kind::AbortMultipart, denied, usize::MAX);
    let item = UploadItem {
        path,
        key: "big.bin".to_owned(),
        size: size as u64,
    };
    let e = client
        .upload_file(s3share::transfer::UploadJob::new(&s.bucket, item))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unaborted { .. }), "{e:?}");
    assert!(e.to_string().contains("could not be aborted"), "{e}");
    assert_eq!(
        e.credential_problem(),
        Some(CredentialProblem::Expired),
        "{e:?}"
    );
    let answer = e.s3_answer().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(answer.code.as_deref(), Some("ExpiredToken"));
    let report = s3share::ErrorReport::from(&e);
    assert_eq!(report.credentials, Some(CredentialProblem::Expired));
}

/// Through an HTTP proxy (`HTTP_PROXY`), to an endpoint whose name only the proxy reaches: a
/// server that does not take the bucket in the host name answers a virtual-hosted listing with
/// its own list of buckets, and s3share says to use path-style addressing (before: "failed:
/// HTTP 200: OK"). With `--path-style`, everything goes through the proxy: the SDK's requests
/// and the presigned parts and download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_proxy_a_server_without_buckets_in_its_host_name_asks_for_path_style() {
    use crate::support::proxy::{Kind, Proxy};
    let s = crate::support::seaweed().await;
    let proxy = Proxy::start(&s.endpoint).await;
    let home = tempfile::tempdir().unwrap();
    let file = crate::support::random_file(home.path(), "via proxy.bin", 40 << 20, 21);
    let back = home.path().join("back.bin");
    // `.test` names never resolve: only the proxy can reach this endpoint.
    let endpoint = "http://s3.through-a-proxy.test:8333";
    let run = |args: &[&str]| {
        crate::support::s3share_through_proxy(home.path(), &s, &proxy.endpoint)
            .args(["--endpoint-url", endpoint])
            .args(args)
            .output()
            .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let folder = format!("s3://{}/", s.bucket);
    let out = run(&["ls", &folder]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("not with S3's answer") && err.contains("--path-style"),
        "says what to do: {err}"
    );

    let key = format!("s3://{}/proxied/via proxy.bin", s.bucket);
    for args in [
        &["--path-style", "put", file.to_str().unwrap(), &key][..],
        &["--path-style", "get", &key, back.to_str().unwrap()],
        &["--path-style", "ls", &folder],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&file).unwrap());
    let parts = proxy.seen_of(Kind::UploadPart);
    assert!(
        parts.len() >= 3
            && parts
                .iter()
                .all(|p| p.target.starts_with("http://s3.through-a-proxy.test:8333/")),
        "the presigned parts went through the proxy: {:?}",
        parts.iter().map(|p| &p.target).collect::<Vec<_>>()
    );
    // (The proxy's kinds read paths, not the absolute URLs sent to a proxy: look at those.)
    let object = format!("{endpoint}/{}/proxied/via%20proxy.bin?", s.bucket);
    assert!(
        proxy
            .seen()
            .iter()
            .any(|r| r.method == "GET" && r.target.starts_with(&object)),
        "the download went through the proxy"
    );
}

/// SeaweedFS only: the embedded store (s3s) sends no request ids.
macro_rules! on_seaweed {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn seaweedfs() {
                    super::$name(&crate::support::seaweed().await).await
                }
            }
        )*
    };
}

on_seaweed!(
    an_upload_that_cannot_be_aborted_keeps_its_causes_facts,
    sdk_refusals_keep_their_facts,
    presigned_put_refusals_keep_their_facts,
    presigned_get_refusals_keep_their_facts,
);
