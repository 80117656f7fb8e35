//! A bucket in another region than the client's is found and used.
//!
//! AWS cannot be reached from here, so a small HTTP server plays S3's part of the protocol
//! that matters: requests signed for the wrong region get `301 PermanentRedirect` with the
//! bucket's region in `x-amz-bucket-region`; requests signed for the right one succeed.

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
