//! The request handler: a plain function of (request, now, state) → response, with no socket,
//! so every refusal is tested directly.
//!
//! The only `Location` it ever sends comes from the [`Signer`], built from the configured
//! endpoint and the token's bucket: never from the request's Host, query or `X-Forwarded-*`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use super::path::{self, PathError};
use super::revoked::{RevocationConfig, Revocations};
use super::token::{Grant, Scope, Token, TokenError};
use super::{Secret, SignMethod, SignRequest, Signer};

/// The methods the relay knows, for `Allow`.
const ALLOW: &str = "GET, HEAD, PUT, DELETE, OPTIONS";

/// What the handler works with.
pub struct RelayState {
    /// Verifies tokens.
    pub secret: Secret,
    /// Signs the redirects.
    pub signer: Arc<dyn Signer>,
    /// The `Host` values accepted (lower case, with the port where one is needed). Anything
    /// else is refused, so a DNS-rebinding page cannot talk to the relay under another name.
    pub hosts: Vec<String>,
    /// How long each redirect's signature lives.
    pub redirect_lifetime: Duration,
    /// The revoked links of the buckets served, kept fresh in the background (read from the
    /// signer's [`Signer::revocations`]).
    pub revoked: Arc<Revocations>,
}

impl std::fmt::Debug for RelayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayState")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl RelayState {
    /// A state accepting the names of `listen` (its address, and `localhost` with its port)
    /// and of `public_url`.
    pub fn new(
        secret: Secret,
        signer: Arc<dyn Signer>,
        listen: std::net::SocketAddr,
        public_url: Option<&str>,
    ) -> crate::Result<Self> {
        let port = listen.port();
        // Loopback names cannot be rebound by a hostile page's DNS: always accepted.
        let mut hosts = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        if !listen.ip().is_unspecified() {
            hosts.push(match listen.ip() {
                std::net::IpAddr::V4(ip) => format!("{ip}:{port}"),
                std::net::IpAddr::V6(ip) => format!("[{ip}]:{port}"),
            });
        }
        if port == 80 {
            // Clients leave the default port out of Host.
            let bare: Vec<String> = hosts
                .iter()
                .filter_map(|h| h.strip_suffix(":80").map(str::to_owned))
                .collect();
            hosts.extend(bare);
        }
        if let Some(url) = public_url {
            hosts.extend(public_hosts(url)?);
        }
        Ok(Self {
            secret,
            revoked: Revocations::new(signer.clone(), RevocationConfig::default()),
            signer,
            hosts,
            redirect_lifetime: super::REDIRECT_LIFETIME,
        })
    }
}

/// The Host values a public URL is reached under: `host:port`, and bare `host` where the port
/// is the scheme's default.
pub fn public_hosts(url: &str) -> crate::Result<Vec<String>> {
    let bad = |why: &str| {
        crate::Error::Config(format!(
            "--public-url {url:?} {why}; write it like http://files.example.com or http://192.168.1.5:8457"
        ))
    };
    let uri: http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(bad("must start with http:// or https://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| bad("has no host"))?
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(default_port);
    let mut v = vec![format!("{host}:{port}")];
    if port == default_port {
        v.push(host);
    }
    Ok(v)
}

/// The handler's answer, and what the access log records (never the token).
#[derive(Debug)]
pub struct Reply {
    /// The response.
    pub response: Response<String>,
    /// The link id, once the token parsed.
    pub link_id: Option<String>,
    /// The decoded key, once the path parsed.
    pub key: Option<String>,
}

fn text(status: StatusCode, body: &str) -> Response<String> {
    let mut r = Response::new(format!("{body}\n"));
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

/// Answers one request. `now` decides expiry; `state` holds the secret and the signer.
pub async fn handle(parts: &http::request::Parts, now: SystemTime, state: &RelayState) -> Reply {
    let mut reply = Reply {
        response: text(StatusCode::NOT_FOUND, "not found"),
        link_id: None,
        key: None,
    };
    reply.response = answer(parts, now, state, &mut reply.link_id, &mut reply.key).await;
    reply
}

async fn answer(
    parts: &http::request::Parts,
    now: SystemTime,
    state: &RelayState,
    link_id: &mut Option<String>,
    logged_key: &mut Option<String>,
) -> Response<String> {
    if let Some(refusal) = check_host(&parts.headers, &parts.uri, &state.hosts) {
        return refusal;
    }
    let sign_method = match parts.method {
        Method::GET => SignMethod::Get,
        Method::HEAD => SignMethod::Head,
        Method::PUT => SignMethod::Put,
        Method::DELETE => SignMethod::Delete,
        Method::OPTIONS => {
            // What HTTP asks of OPTIONS: the methods, no body. No CORS headers: browsers on
            // other origins get no permission from the relay.
            let mut r = Response::new(String::new());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            return r;
        }
        _ => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            return r;
        }
    };
    let parsed = match path::parse(parts.uri.path()) {
        Ok(p) => p,
        Err(PathError::NoToken) => return text(StatusCode::NOT_FOUND, "no link here"),
        Err(e @ PathError::Bad(_)) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    *logged_key = Some(parsed.key.clone());
    let grant = match Token::parse(parsed.token) {
        Ok(t) => {
            *link_id = Some(t.id_text());
            match t.verify(&state.secret, &parsed.key, now) {
                Ok(g) => g,
                Err(e) => return text(StatusCode::FORBIDDEN, &e.to_string()),
            }
        }
        Err(e) => return text(StatusCode::FORBIDDEN, &e.to_string()),
    };
    debug_assert!(in_scope(&grant, &parsed.key));
    if !in_scope(&grant, &parsed.key) {
        return text(StatusCode::FORBIDDEN, &TokenError::Invalid.to_string());
    }
    if let Some((status, why)) = check_revoked(&grant, &parsed.key, now, state).await {
        return text(status, &why);
    }
    let allowed = match sign_method {
        SignMethod::Get | SignMethod::Head => grant.methods.read,
        SignMethod::Put => grant.methods.put,
        SignMethod::Delete => grant.methods.delete,
    };
    if !allowed {
        let mut r = text(
            StatusCode::FORBIDDEN,
            &format!("this link does not allow {}", parts.method),
        );
        if let Ok(v) = HeaderValue::from_str(&grant.methods.names().join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return r;
    }
    if parsed.key.ends_with('/') || parsed.key.is_empty() {
        return text(
            StatusCode::NOT_FOUND,
            "this is a folder: add a file name to the link (folder pages are not available yet)",
        );
    }
    let mut req = SignRequest {
        method: sign_method,
        bucket: grant.bucket.clone(),
        key: parsed.key.clone(),
        lifetime: state.redirect_lifetime,
        if_none_match: false,
        content_length: None,
    };
    if sign_method == SignMethod::Put
        && let Some(refusal) = check_upload(&parts.headers, &grant, &mut req, state).await
    {
        return refusal;
    }
    match state.signer.sign(&req).await {
        Ok(signed) => {
            let Ok(location) = HeaderValue::from_str(&signed.url) else {
                return text(StatusCode::BAD_GATEWAY, "cannot build the redirect");
            };
            let mut r = text(StatusCode::TEMPORARY_REDIRECT, "redirecting to storage");
            let h = r.headers_mut();
            h.insert(header::LOCATION, location);
            // The Location carries a signature: keep it out of caches and Referer headers.
            h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            r
        }
        Err(e) => {
            tracing::warn!(link = ?link_id, "cannot sign a redirect: {e}");
            text(
                StatusCode::BAD_GATEWAY,
                "the storage cannot be reached; try again later",
            )
        }
    }
}

/// The link ledger's prefix is never served, and a revoked link is refused: from memory,
/// except for the first request for a bucket (see [`super::revoked`]). `Some` is the refusal.
async fn check_revoked(
    grant: &Grant,
    key: &str,
    now: SystemTime,
    state: &RelayState,
) -> Option<(StatusCode, String)> {
    if crate::s3::is_reserved(key) {
        return Some((
            StatusCode::FORBIDDEN,
            "s3share keeps its records here".into(),
        ));
    }
    match state.revoked.check(&grant.bucket, &grant.id, now).await {
        Ok(false) => None,
        Ok(true) => Some((StatusCode::FORBIDDEN, "this link has been revoked".into())),
        Err(e) => Some((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

fn in_scope(grant: &Grant, key: &str) -> bool {
    match &grant.scope {
        Scope::Key(k) => k == key,
        Scope::Prefix(p) => key.starts_with(p.as_str()),
    }
}

/// `Host` (or the authority of an absolute URI) must be one of the relay's names; `Some` is
/// the refusal.
fn check_host(headers: &HeaderMap, uri: &http::Uri, hosts: &[String]) -> Option<Response<String>> {
    let host = match (uri.authority(), headers.get(header::HOST)) {
        (Some(a), _) => a.as_str().to_ascii_lowercase(),
        (None, Some(h)) => match h.to_str() {
            Ok(s) => s.trim().to_ascii_lowercase(),
            Err(_) => return Some(text(StatusCode::BAD_REQUEST, "bad Host header")),
        },
        (None, None) => return Some(text(StatusCode::BAD_REQUEST, "no Host header")),
    };
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Some(text(StatusCode::BAD_REQUEST, "more than one Host header"));
    }
    if hosts.contains(&host) {
        None
    } else {
        Some(text(
            StatusCode::MISDIRECTED_REQUEST,
            "this relay does not serve that host name",
        ))
    }
}

/// PUT: the size cap and the no-overwrite rule, before anything is signed; `Some` is the
/// refusal.
async fn check_upload(
    headers: &HeaderMap,
    grant: &Grant,
    req: &mut SignRequest,
    state: &RelayState,
) -> Option<Response<String>> {
    let length = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => return Some(text(StatusCode::BAD_REQUEST, "bad Content-Length")),
        },
    };
    if let Some(max) = grant.max_size {
        let Some(n) = length else {
            return Some(text(
                StatusCode::LENGTH_REQUIRED,
                "this link limits the upload size: send a Content-Length",
            ));
        };
        if n > max {
            return Some(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("this link accepts at most {max} bytes"),
            ));
        }
        // Signed, so S3 refuses a body of any other size sent to the same URL.
        req.content_length = Some(n);
    }
    if !grant.overwrite {
        let client_sent_inm = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == b"*");
        if client_sent_inm {
            // The client repeats it to S3 after the redirect: signed, S3 enforces it atomically.
            req.if_none_match = true;
        } else {
            // A redirect cannot add a header to the client's next request, so signing
            // If-None-Match would break plain `curl -T`; check first instead.
            match state.signer.exists(&grant.bucket, &req.key).await {
                Ok(false) => {}
                Ok(true) => {
                    return Some(text(
                        StatusCode::PRECONDITION_FAILED,
                        "an object with this name already exists and this link does not replace objects",
                    ));
                }
                Err(e) => {
                    tracing::warn!("cannot check for an existing object: {e}");
                    return Some(text(
                        StatusCode::BAD_GATEWAY,
                        "the storage cannot be reached; try again later",
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::token::Methods;
    use crate::relay::{Presigned, path::encode_key};
    use parking_lot::Mutex;
    use proptest::prelude::*;

    /// Records what it is asked to sign; the only place a `Location` can come from.
    #[derive(Default)]
    struct Recorder {
        signed: Mutex<Vec<SignRequest>>,
        existing: Vec<String>,
    }

    #[async_trait::async_trait]
    impl Signer for Recorder {
        async fn sign(&self, req: &SignRequest) -> crate::Result<Presigned> {
            self.signed.lock().push(req.clone());
            Ok(Presigned {
                method: http::Method::GET,
                url: format!(
                    "http://s3.test/{}/{}?sig=1",
                    req.bucket,
                    encode_key(&req.key)
                ),
                headers: vec![],
                expires_at: SystemTime::now() + req.lifetime,
                limited_by_credentials: false,
            })
        }
        async fn exists(&self, _bucket: &str, key: &str) -> crate::Result<bool> {
            Ok(self.existing.iter().any(|k| k == key))
        }
    }

    const LISTEN: &str = "127.0.0.1:8457";

    fn state(rec: Arc<Recorder>) -> RelayState {
        RelayState::new(
            Secret::from_bytes([7; 32]),
            rec,
            LISTEN.parse().unwrap(),
            Some("https://files.example.com"),
        )
        .unwrap()
    }

    fn link(st: &RelayState, g: &Grant) -> String {
        let l = crate::relay::make_link(g, &st.secret, "").unwrap();
        l.url
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(path);
        let mut has_host = false;
        for (k, v) in headers {
            has_host |= k.eq_ignore_ascii_case("host");
            b = b.header(*k, *v);
        }
        if !has_host {
            b = b.header("host", LISTEN);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    async fn run(st: &RelayState, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        handle(&request(method, path, headers), SystemTime::now(), st).await
    }

    fn assert_refused(r: &Reply, status: u16) {
        assert_eq!(r.response.status().as_u16(), status, "{:?}", r.response);
        assert!(r.response.headers().get(header::LOCATION).is_none());
    }

    #[tokio::test]
    async fn redirects_only_what_the_token_allows() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let g = Grant::new(
            "bkt",
            Scope::Key("docs/a b.txt".into()),
            Methods::READ,
            later(),
        );
        let url = link(&st, &g);
        let r = run(&st, "GET", &url, &[("x-forwarded-host", "evil.test")]).await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            r.response.headers()[header::LOCATION],
            "http://s3.test/bkt/docs/a%20b.txt?sig=1"
        );
        assert_eq!(r.link_id.as_deref(), Some(g.id_text().as_str()));
        assert_eq!(r.key.as_deref(), Some("docs/a b.txt"));
        let signed = rec.signed.lock().clone();
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].method, SignMethod::Get);
        assert!(signed[0].lifetime <= Duration::from_secs(600));

        let r = run(&st, "HEAD", &url, &[("host", "files.example.com")]).await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        for m in ["PUT", "DELETE"] {
            let r = run(&st, m, &url, &[]).await;
            assert_refused(&r, 403);
            assert!(r.response.body().contains(m));
        }
        // Another key under the same token, an expired token, a forged one.
        let token = url.split('/').nth(1).unwrap();
        assert_refused(
            &run(&st, "GET", &format!("/{token}/docs/b.txt"), &[]).await,
            403,
        );
        let expired = handle(&request("GET", &url, &[]), g.expires_at(), &st).await;
        assert_refused(&expired, 403);
        assert!(expired.response.body().contains("expired"));
        let other = Secret::from_bytes([8; 32]);
        let forged = crate::relay::make_link(&g, &other, "").unwrap().url;
        assert_refused(&run(&st, "GET", &forged, &[]).await, 403);
        assert_refused(&run(&st, "GET", "/", &[]).await, 404);
        assert_refused(&run(&st, "GET", "/garbage/docs/a%20b.txt", &[]).await, 403);
        assert_eq!(
            rec.signed.lock().len(),
            2,
            "refusals never reach the signer"
        );
    }

    #[tokio::test]
    async fn host_methods_and_options() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let g = Grant::new("bkt", Scope::Key("k".into()), Methods::READ, later());
        let url = link(&st, &g);
        for host in ["evil.test", "127.0.0.1:9999", "files.example.com:8080", ""] {
            let r = run(&st, "GET", &url, &[("host", host)]).await;
            assert!(r.response.status().is_client_error(), "{host}");
            assert!(r.response.headers().get(header::LOCATION).is_none());
        }
        assert_eq!(
            run(&st, "GET", &url, &[("host", "LOCALHOST:8457")])
                .await
                .response
                .status(),
            StatusCode::TEMPORARY_REDIRECT
        );
        let r = run(&st, "POST", &url, &[]).await;
        assert_refused(&r, 405);
        assert_eq!(r.response.headers()[header::ALLOW], ALLOW);
        let r = run(&st, "OPTIONS", &url, &[("origin", "http://evil.test")]).await;
        assert_eq!(r.response.status(), StatusCode::NO_CONTENT);
        assert!(
            r.response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        assert_eq!(rec.signed.lock().len(), 1);

        // Listening on every address: loopback names and the public URL's host, nothing else.
        let wide = RelayState::new(
            Secret::from_bytes([7; 32]),
            rec,
            "0.0.0.0:80".parse().unwrap(),
            Some("http://files.lan:8080"),
        )
        .unwrap();
        for ok in [
            "127.0.0.1:80",
            "127.0.0.1",
            "localhost",
            "[::1]:80",
            "files.lan:8080",
        ] {
            assert!(wide.hosts.iter().any(|h| h == ok), "{ok}: {:?}", wide.hosts);
        }
        for bad in ["0.0.0.0:80", "files.lan", "192.168.1.5:80"] {
            assert!(
                !wide.hosts.iter().any(|h| h == bad),
                "{bad}: {:?}",
                wide.hosts
            );
        }
    }

    #[tokio::test]
    async fn uploads_respect_size_and_overwrite() {
        let rec = Arc::new(Recorder {
            existing: vec!["drop/taken.txt".into()],
            ..Default::default()
        });
        let st = state(rec.clone());
        let mut g = Grant::new(
            "bkt",
            Scope::Prefix("drop/".into()),
            Methods {
                read: false,
                put: true,
                delete: false,
            },
            later(),
        );
        g.max_size = Some(100);
        let base = link(&st, &g);
        let put = |name: &str| format!("{base}{name}");
        assert_refused(&run(&st, "PUT", &put("a.txt"), &[]).await, 411);
        assert_refused(
            &run(&st, "PUT", &put("a.txt"), &[("content-length", "101")]).await,
            413,
        );
        assert_refused(
            &run(&st, "PUT", &put("taken.txt"), &[("content-length", "5")]).await,
            412,
        );
        assert_refused(&run(&st, "GET", &put("a.txt"), &[]).await, 403);
        assert_refused(
            &run(
                &st,
                "PUT",
                &format!("{base}../x"),
                &[("content-length", "5")],
            )
            .await,
            400,
        );
        let r = run(
            &st,
            "PUT",
            &put("sub/new.txt"),
            &[("content-length", "100")],
        )
        .await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        let r = run(
            &st,
            "PUT",
            &put("b.txt"),
            &[("content-length", "3"), ("if-none-match", "*")],
        )
        .await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        let signed = rec.signed.lock().clone();
        assert_eq!(signed.len(), 2);
        assert_eq!(signed[0].key, "drop/sub/new.txt");
        assert_eq!(signed[0].content_length, Some(100));
        assert!(!signed[0].if_none_match);
        assert!(signed[1].if_none_match);

        // With --overwrite, an existing key is replaced.
        g.overwrite = true;
        g.max_size = None;
        let base = link(&st, &g);
        let r = run(&st, "PUT", &format!("{base}taken.txt"), &[]).await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever the path after a folder token, nothing outside the folder is signed.
        #[test]
        fn nothing_outside_the_scope_is_signed(
            segs in proptest::collection::vec(
                prop_oneof![
                    Just(".."), Just("."), Just(""), Just("%2e%2e"), Just("%2E."), Just("in"),
                    Just("a"), Just("b%2fc"), Just("x\\y"), Just("%00"), Just("%5c"), Just("%2F"),
                    Just("%"), Just("%e2%80%ae"),
                ],
                0..6,
            ),
            method in 0usize..4,
        ) {
            let tail = segs.join("/");
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let rec = Arc::new(Recorder::default());
            let st = state(rec.clone());
            let g = Grant::new(
                "bkt",
                Scope::Prefix("in/".into()),
                Methods { read: true, put: true, delete: true },
                later(),
            );
            let token = g.mint(&st.secret).unwrap();
            let m = ["GET", "HEAD", "PUT", "DELETE"][method];
            for path in [format!("/{token}/in/{tail}"), format!("/{token}/{tail}"), format!("/{token}/in{tail}")] {
                rt.block_on(run(&st, m, &path, &[("content-length", "1")]));
            }
            for req in rec.signed.lock().iter() {
                prop_assert!(req.key.starts_with("in/"), "{:?}", req.key);
                let rest = &req.key["in/".len()..];
                prop_assert!(!rest.is_empty());
                for seg in rest.split('/') {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'));
                }
            }
        }
    }
}
