//! Bodies, and the bytes the relay carries itself.
//!
//! Most answers are short texts or pages held in memory ([`RelayBody::text`]). Where the relay
//! cannot redirect — the embedded store on the sharer's `127.0.0.1`, which a teammate cannot
//! reach, and uploads from the relay's own upload page, which a browser could not send across
//! origins to a bucket without a CORS rule — it forwards the request to a freshly signed URL
//! with `reqwest` and streams the bytes both ways ([`forward`]): chunk by chunk, never a whole
//! body in memory, with the same checks as a redirect (the handler decides before anything is
//! sent).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};

use super::Presigned;

/// Errors of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as the handler takes it: hyper's incoming body boxed, or anything a test
/// builds. Never collected: uploads flow through.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// A request body with no bytes (requests whose body the handler never reads).
pub fn empty_request_body() -> RequestBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body as a [`RequestBody`] (hyper's `Incoming` in the server).
pub fn request_body<B>(body: B) -> RequestBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A response body: a short text or page held in memory, or bytes streamed from storage.
pub struct RelayBody(Inner);

enum Inner {
    Full(Option<Bytes>, String),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

impl RelayBody {
    /// A body held in memory.
    pub fn text(s: impl Into<String>) -> Self {
        let s = s.into();
        Self(Inner::Full(
            (!s.is_empty()).then(|| Bytes::from(s.clone())),
            s,
        ))
    }

    /// No body (HEAD answers, 204).
    pub fn empty() -> Self {
        Self::text(String::new())
    }

    /// A streamed body.
    pub fn stream(body: UnsyncBoxBody<Bytes, BoxError>) -> Self {
        Self(Inner::Stream(body))
    }

    /// The text of a body held in memory; `""` for a streamed one (tests and logs read it
    /// without a socket).
    pub fn as_text(&self) -> &str {
        match &self.0 {
            Inner::Full(_, s) => s,
            Inner::Stream(_) => "",
        }
    }

    /// Whether the bytes are streamed rather than held.
    pub fn is_stream(&self) -> bool {
        matches!(self.0, Inner::Stream(_))
    }
}

impl std::fmt::Debug for RelayBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Full(_, s) => f.debug_tuple("RelayBody").field(s).finish(),
            Inner::Stream(_) => f.write_str("RelayBody(stream)"),
        }
    }
}

impl Body for RelayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Inner::Full(b, _) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(b, _) => b.is_none(),
            Inner::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(b, _) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Stream(s) => s.size_hint(),
        }
    }
}

/// Request headers passed on to storage for reads: ranges and conditional requests, so resumed
/// downloads, video seeking and caches work through the relay as they do against S3.
const READ_HEADERS: &[HeaderName] = &[
    header::RANGE,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// Request headers passed on for uploads (unsigned: SigV4 lets a presigned PUT carry them).
const WRITE_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CACHE_CONTROL,
];

/// Response headers passed back from storage: what describes the bytes, nothing of the
/// storage's own (`x-amz-*`, `Server`, CORS).
const RESPONSE_HEADERS: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::ETAG,
    header::LAST_MODIFIED,
];

/// Sends `signed` with the client's body (for PUT) and streams the answer back.
///
/// `request_headers` are the client's; only the range, conditional and content headers listed
/// above go on, plus the headers the signature requires. The answer keeps storage's status for
/// success, ranges and conditional outcomes (200, 204, 206, 304, 412, 416), and turns storage's
/// errors (416 included) into short texts of the relay's own (never storage's error body, which
/// names the bucket and the signature).
pub async fn forward(
    http: &reqwest::Client,
    signed: &Presigned,
    request_headers: &HeaderMap,
    body: Option<(RequestBody, u64)>,
) -> Response<RelayBody> {
    let is_put = body.is_some();
    let mut req = http.request(signed.method.clone(), &signed.url);
    let passed = if is_put { WRITE_HEADERS } else { READ_HEADERS };
    let signs = |name: &str| {
        signed
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    for name in passed {
        if signs(name.as_str()) {
            continue;
        }
        for v in request_headers.get_all(name) {
            req = req.header(name, v);
        }
    }
    for (k, v) in &signed.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some((body, length)) = body {
        // The length is the client's Content-Length, already checked against the link's cap;
        // stated explicitly so the streamed body goes out with it rather than chunked (S3
        // refuses chunked uploads to presigned URLs).
        if !signs("content-length") {
            req = req.header(header::CONTENT_LENGTH, length);
        }
        req = req.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let upstream = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            // reqwest's error text can hold the URL (and with it the signature): say less.
            let why = if e.is_connect() {
                "cannot connect"
            } else if e.is_timeout() {
                "timed out"
            } else if e.is_body() || e.is_request() {
                "the request body broke off"
            } else {
                "transfer failed"
            };
            tracing::warn!("relay: forwarding to storage failed: {why}");
            return plain(
                StatusCode::BAD_GATEWAY,
                &format!("the storage cannot be reached ({why}); try again later"),
            );
        }
    };
    let status = upstream.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        // Storage's body here is its XML error (naming the bucket and key): the relay's own
        // words instead, with storage's `Content-Range: bytes */SIZE` when it sent one (the
        // handler adds it otherwise), so a client knows the file's size.
        let mut r = plain(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "the range asked for is not within the file",
        );
        if let Some(v) = upstream
            .headers()
            .get(header::CONTENT_RANGE)
            .filter(|v| v.as_bytes().starts_with(b"bytes */"))
        {
            r.headers_mut().insert(header::CONTENT_RANGE, v.clone());
        }
        security_headers(r.headers_mut());
        return r;
    }
    let passes = status.is_success() || status == StatusCode::NOT_MODIFIED;
    if !passes {
        return match status {
            StatusCode::NOT_FOUND => plain(StatusCode::NOT_FOUND, "no such file"),
            StatusCode::PRECONDITION_FAILED if is_put => plain(
                StatusCode::PRECONDITION_FAILED,
                "an object with this name already exists and this link does not replace objects",
            ),
            StatusCode::PRECONDITION_FAILED => {
                plain(StatusCode::PRECONDITION_FAILED, "precondition failed")
            }
            StatusCode::BAD_REQUEST if is_put => plain(
                StatusCode::BAD_REQUEST,
                "the storage refused the upload (was the body shorter than its Content-Length?)",
            ),
            s => {
                tracing::warn!("relay: storage answered {s} to a forwarded request");
                plain(
                    StatusCode::BAD_GATEWAY,
                    &format!("the storage answered {}", s.as_u16()),
                )
            }
        };
    }
    let mut head = Response::new(RelayBody::empty());
    *head.status_mut() = status;
    let h = head.headers_mut();
    for name in RESPONSE_HEADERS {
        for v in upstream.headers().get_all(name) {
            h.append(name, v.clone());
        }
    }
    security_headers(h);
    if is_put || signed.method == http::Method::DELETE {
        // A short confirmation instead of storage's (empty or XML) body.
        h.remove(header::CONTENT_LENGTH);
        h.remove(header::CONTENT_TYPE);
        let (parts, _) = head.into_parts();
        let mut r = plain(status, if is_put { "stored" } else { "deleted" });
        for (k, v) in parts.headers.iter() {
            if k == header::ETAG {
                r.headers_mut().insert(k, v.clone());
            }
        }
        if status == StatusCode::NO_CONTENT {
            *r.body_mut() = RelayBody::empty();
        }
        return r;
    }
    // Files come from whoever could upload them, and here they are served from the relay's
    // own origin: a stored HTML page must not run script there (it could read the relay's
    // pages and their tokens). A sandboxed document gets an opaque origin and no script;
    // images, media and text show as before.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    if signed.method == http::Method::HEAD {
        return head;
    }
    let stream = futures::StreamExt::map(upstream.bytes_stream(), |chunk| {
        chunk.map(Frame::data).map_err(|e| {
            let e = e.without_url();
            tracing::warn!("relay: the storage's body broke off: {e}");
            BoxError::from(e)
        })
    });
    *head.body_mut() = RelayBody::stream(http_body_util::StreamBody::new(stream).boxed_unsync());
    head
}

/// Headers every answer of the relay's own carries: nothing sniffed, nothing cached, no
/// Referer (a relay URL carries its token).
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// A short text answer.
pub fn plain(status: StatusCode, body: &str) -> Response<RelayBody> {
    let mut r = Response::new(RelayBody::text(format!("{body}\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
