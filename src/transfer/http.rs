//! Sending presigned requests: streamed file bodies, S3 error bodies, and what is worth a retry.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::presigning::PresignedRequest;
use bytes::Bytes;
use futures::StreamExt as _;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::ByteCounter;
use crate::error::Error;

const CHANGED: &str = "file changed while it was being uploaded";

/// How one attempt at a request ended, when it did not succeed.
pub(crate) enum Failure {
    /// Worth another try: a 5xx, a throttle, a dropped or refused connection.
    Transient(String),
    /// Retrying cannot help.
    Fatal(Error),
}

/// The delay before retry number `attempt` (1-based): 250 ms doubling up to 8 s, with jitter
/// so parallel parts do not all knock again at once.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 250u64
        .saturating_mul(1 << attempt.min(5).saturating_sub(1))
        .min(8000);
    let jitter = rand::random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// Reads `len` bytes of `path` from `offset` to compute their base64 MD5, for Content-MD5.
pub(crate) async fn md5_of_range(path: &Path, offset: u64, len: u64) -> Result<String, Error> {
    use base64::Engine as _;
    let owned = path.to_owned();
    // One blocking task per part rather than an async read per buffer: hashing is CPU work,
    // and each async file read is a hop to the blocking pool.
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        use std::io::{Read as _, Seek as _};
        let mut file = std::fs::File::open(&owned)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        let mut reader = file.take(len);
        let mut hasher = Md5::new();
        let mut buf = vec![0u8; READ_CHUNK.min(len as usize).max(1)];
        let mut seen = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            seen += n as u64;
        }
        if seen != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{CHANGED} (expected {len} bytes from offset {offset}, found {seen})"),
            ));
        }
        Ok(hasher.finalize())
    })
    .await
    .map_err(|e| Error::Config(format!("hashing task failed: {e}")))?;
    let digest = digest.map_err(|source| Error::Local {
        what: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Read size for hashing and sending: large enough that syscalls and task hops are rare,
/// small enough that parts in flight stay a few MiB of memory.
const READ_CHUNK: usize = 1024 * 1024;

/// A request body streaming `len` bytes of `path` from `offset`, counting them as they go.
pub(crate) async fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    counter: ByteCounter,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<reqwest::Body, Error> {
    let err = |source| Error::Local {
        what: "cannot read",
        path: path.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(err)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(err)?;
    let counted = sent.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(
        file.take(len),
        READ_CHUNK.min(len as usize).max(1),
    )
    .map(move |chunk: std::io::Result<Bytes>| {
        if let Ok(c) = &chunk {
            counter.add(c.len() as u64);
            counted.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        chunk
    });
    // A file that shrank since it was measured must fail clearly, not as a short body.
    let shortfall = futures::stream::once(async move {
        let seen = sent.load(std::sync::atomic::Ordering::Relaxed);
        (seen < len).then(|| {
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{CHANGED} (expected {len} bytes, read {seen})"),
            ))
        })
    })
    .filter_map(futures::future::ready);
    let stream = stream.chain(shortfall);
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Sends a presigned request with `body` of `len` bytes; returns the response on 2xx.
pub(crate) async fn send(
    http: &reqwest::Client,
    req: &PresignedRequest,
    body: reqwest::Body,
    len: u64,
    what: &'static str,
    bucket: &str,
    key: &str,
) -> Result<reqwest::Response, Failure> {
    let method = reqwest::Method::from_bytes(req.method().as_bytes())
        .map_err(|e| Failure::Fatal(Error::Config(e.to_string())))?;
    let mut builder = http.request(method, req.uri());
    for (name, value) in req.headers() {
        builder = builder.header(name, value);
    }
    let result = builder
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(body)
        .send()
        .await;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            // The URL is a secret (its signature works for anyone): never in messages or logs.
            let text = crate::error::error_chain(&e.without_url());
            // A local read error surfaces as a body error: retrying would read the same file.
            if text.contains(CHANGED) {
                return Err(Failure::Fatal(Error::Config(format!(
                    "s3://{bucket}/{key}: the local {CHANGED}; upload it again when it is complete"
                ))));
            }
            return Err(Failure::Transient(text));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (code, message) = parse_s3_error(&text);
    let detail = match (code.is_empty(), message.is_empty()) {
        (true, _) => status.canonical_reason().unwrap_or("error").to_owned(),
        (false, true) => code.clone(),
        (false, false) => format!("{code}: {message}"),
    };
    if status.is_server_error()
        || status.as_u16() == 429
        || code == "SlowDown"
        || code == "RequestTimeout"
    {
        return Err(Failure::Transient(format!(
            "HTTP {}: {detail}",
            status.as_u16()
        )));
    }
    let error = match (status.as_u16(), code.as_str()) {
        (412, _) => Error::AlreadyExists {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        },
        (_, "ExpiredToken") => Error::ExpiredCredentials(detail),
        (403, _) => Error::AccessDenied {
            target: format!("s3://{bucket}/{key}"),
            message: detail,
        },
        _ => Error::Http {
            operation: what,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            status: status.as_u16(),
            message: detail,
        },
    };
    Err(Failure::Fatal(error))
}

/// Pulls `<Code>` and `<Message>` out of an S3 XML error body (no XML parser for two fields).
pub(crate) fn parse_s3_error(body: &str) -> (String, String) {
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        body.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(v, _)| v.trim().to_owned())
            .unwrap_or_default()
    };
    (field("Code"), field("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_error_bodies() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message></Error>";
        assert_eq!(
            parse_s3_error(body),
            ("SignatureDoesNotMatch".into(), "bad sig".into())
        );
        assert_eq!(parse_s3_error(""), (String::new(), String::new()));
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert!(
            backoff(1) >= Duration::from_millis(250) && backoff(1) <= Duration::from_millis(313)
        );
        assert!(backoff(3) >= Duration::from_millis(1000));
        assert!(backoff(30) <= Duration::from_millis(10_000));
    }
}
