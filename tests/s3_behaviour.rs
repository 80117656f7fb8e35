//! What AWS S3 does that the local servers do not: region redirects and throttling.
//!
//! AWS cannot be reached from here, so small HTTP servers play S3's part of the protocol that
//! matters: requests signed for the wrong region get `301 PermanentRedirect` with the bucket's
//! region in `x-amz-bucket-region`; a loaded S3 answers `503 SlowDown`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

const BUCKET_REGION: &str = "eu-west-2";
const BODY: &str = "from eu-west-2";

async fn s3_in_eu_west_2(
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The region is in the credential scope: in the Authorization header, or in the query of
    // a presigned URL (percent-encoded there).
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let query = req.uri().query().unwrap_or("").replace("%2F", "/");
    let scope = format!("/{BUCKET_REGION}/s3/aws4_request");
    let signed_right = auth.contains(&scope) || query.contains(&scope);
    let builder = Response::builder().header("x-amz-bucket-region", BUCKET_REGION);
    let response = if !signed_right {
        let body = "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>";
        builder
            .status(StatusCode::MOVED_PERMANENTLY)
            .body(Full::new(Bytes::from(body)))
    } else if req.method() == hyper::Method::HEAD {
        builder
            .header("content-length", BODY.len())
            .body(Full::new(Bytes::new()))
    } else {
        builder.body(Full::new(Bytes::from(BODY)))
    };
    Ok(response.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_is_found_and_used() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(s3_in_eu_west_2);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                .await;
            });
        }
    });

    let creds = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let client = s3share::s3::static_client(&endpoint, "us-east-1", creds, true).unwrap();
    let head = client
        .head("far-bucket", "file.txt")
        .await
        .expect("HEAD signed for the bucket's region");
    assert_eq!(head.map(|h| h.size), Some(BODY.len() as u64));

    let link = client
        .link_get("far-bucket", "file.txt", Duration::from_secs(60), None)
        .await
        .unwrap();
    assert!(
        link.url.contains("%2Feu-west-2%2Fs3%2Faws4_request"),
        "{}",
        link.url
    );
    let r = reqwest::get(&link.url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), BODY);
}

/// A server that answers the first two uploads with `503 SlowDown`, as S3 does under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_retry_after_server_errors() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt as _;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let puts = Arc::new(AtomicUsize::new(0));
    let md5s = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (p, m) = (puts.clone(), md5s.clone());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (p, m) = (p.clone(), m.clone());
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (p, m) = (p.clone(), m.clone());
                async move {
                    if req.method() != hyper::Method::PUT {
                        return Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())));
                    }
                    // The checksum the body carries (S3 checks either).
                    let checksum = ["x-amz-checksum-crc32c", "content-md5"]
                        .iter()
                        .find_map(|h| {
                            req.headers()
                                .get(*h)
                                .map(|v| format!("{h}: {}", v.to_str().unwrap()))
                        });
                    m.lock().push(checksum.clone());
                    let _ = req.into_body().collect().await;
                    let response = if p.fetch_add(1, Ordering::SeqCst) < 2 {
                        let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                        Response::builder()
                            .status(503)
                            .body(Full::new(Bytes::from(body)))
                            .unwrap()
                    } else {
                        // As S3 does, the checksum it checked is answered back.
                        let crc = checksum.and_then(|c| {
                            c.strip_prefix("x-amz-checksum-crc32c: ").map(str::to_owned)
                        });
                        let mut response = Response::builder().header("etag", "\"x\"");
                        if let Some(crc) = crc {
                            response = response.header("x-amz-checksum-crc32c", crc);
                        }
                        response.body(Full::new(Bytes::new())).unwrap()
                    };
                    Ok(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                .await;
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let path = crate::support::random_file(dir.path(), "f.bin", 10_000, 1);
    let item = s3share::transfer::UploadItem {
        path,
        key: "f.bin".into(),
        size: 10_000,
    };
    let creds = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let client = s3share::s3::static_client(&endpoint, "us-east-1", creds, true).unwrap();
    let options = s3share::transfer::UploadOptions {
        on_conflict: s3share::transfer::OnConflict::Overwrite,
        ..Default::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let r = client
        .upload_file(
            s3share::transfer::UploadJob::new("b", item.clone())
                .options(options.clone())
                .cancel(cancel.clone()),
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(puts.load(Ordering::SeqCst), 3, "two 503s, then success");
    let md5s = md5s.lock();
    assert!(
        md5s.iter().all(|m| m.is_some() && *m == md5s[0]),
        "every attempt carries the same checksum: {md5s:?}"
    );
}
