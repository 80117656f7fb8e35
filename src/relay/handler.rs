//! The request handler: a plain function of (request, now, state) → response, with no socket,
//! so every refusal is tested directly.
//!
//! The only `Location` it ever sends comes from the [`Signer`], built from the configured
//! endpoint and the token's bucket: never from the request's Host, query or `X-Forwarded-*`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use super::index::{self, FolderPage, PageInfo};
use super::path::{self, PathError};
use super::revoked::{RevocationConfig, Revocations};
use super::stream::{self, RelayBody, RequestBody, plain};
use super::token::{Grant, Scope, Token, TokenError};
use super::upload_page::{STREAM_HEADER, UploadInfo};
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
    /// How long each redirect's signature lives at most (less when the link expires sooner).
    pub redirect_lifetime: Duration,
    /// Stream every GET, HEAD, PUT and DELETE through the relay instead of redirecting: set
    /// for the embedded store, which listens on the sharer's `127.0.0.1` where teammates
    /// cannot follow a redirect. Otherwise only uploads that ask for it
    /// ([`STREAM_HEADER`], sent by the upload page) are streamed.
    pub stream_always: bool,
    /// The client that streams to storage.
    pub http: reqwest::Client,
    /// Most entries on one folder page.
    pub page_size: usize,
    /// The revoked links of the buckets served, kept fresh in the background (read from the
    /// signer's [`Signer::revocations`]).
    pub revoked: Arc<Revocations>,
    /// The path of the public URL (`/relay`, or empty), stripped from requests that carry it.
    pub path_prefix: String,
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
        let mut path_prefix = String::new();
        if let Some(url) = public_url {
            hosts.extend(public_hosts(url)?);
            path_prefix = public_path(url);
        }
        Ok(Self {
            path_prefix,
            secret,
            revoked: Revocations::new(signer.clone(), RevocationConfig::default()),
            signer,
            hosts,
            redirect_lifetime: super::REDIRECT_LIFETIME,
            stream_always: false,
            http: streaming_client()?,
            page_size: index::DEFAULT_PAGE_SIZE,
        })
    }

    /// Streams every request through the relay (for the embedded store; see
    /// [`RelayState::stream_always`]).
    pub fn streaming_everything(mut self) -> Self {
        self.stream_always = true;
        self
    }
}

/// The client that forwards streamed requests. No proxy from the environment: storage is
/// reached as the SDK reaches it (a loopback store through an HTTP proxy would fail). No
/// overall timeout (large files take long), but connecting and each read are bounded so a
/// silent store cannot hold a connection forever.
fn streaming_client() -> crate::Result<reqwest::Client> {
    crate::s3::tls::client_builder(true)?
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| crate::Error::Config(format!("cannot set up the relay's HTTP client: {e}")))
}

/// The Host values a public URL is reached under: `host:port`, and bare `host` where the port
/// is the scheme's default.
pub fn public_hosts(url: &str) -> crate::Result<Vec<String>> {
    let bad = |why: &str| {
        crate::Error::Config(format!(
            "--public-url {url:?} {why}; write it like http://files.example.com or http://192.168.1.5:8457"
        ))
    };
    // Every link starts with this URL: anything in it but where the relay is would end up in
    // every link — a query or fragment (`?x=1/<token>/…` is no relay path), or a user name and
    // password (sent to whoever receives a link). The URL is not repeated in that last
    // refusal, as it holds a password.
    if url.contains('#') {
        return Err(bad("has a fragment (#…)"));
    }
    let uri: http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(crate::Error::Config(
            "--public-url must not hold a user name or password (it would be in every link); write it like http://files.example.com or http://192.168.1.5:8457".into(),
        ));
    }
    if uri.query().is_some() {
        return Err(bad("has a query (?…)"));
    }
    // A path is where the relay sits behind a proxy (`https://host/relay`); the relay strips it
    // (see [`public_path`]). Plain segments only: it is matched byte for byte, undecoded.
    let path = uri.path().trim_end_matches('/');
    if !path.split('/').skip(1).all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    }) {
        return Err(bad(
            "has a path the relay cannot match (use letters, digits, '-', '_', '.' and '~' between slashes)",
        ));
    }
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

/// The path of a public URL (checked by [`public_hosts`]): `/relay` for
/// `https://host/relay/`, empty for a bare origin. Links start with it, so the relay strips
/// it from requests; requests without it (from a proxy that strips it itself) are answered too.
pub fn public_path(url: &str) -> String {
    url.parse::<http::Uri>()
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// `path` without the public URL's path `prefix`, when it starts with it.
fn strip_public_path<'a>(path: &'a str, prefix: &str) -> &'a str {
    if prefix.is_empty() {
        return path;
    }
    match path.strip_prefix(prefix) {
        // Never a token: tokens are far longer than one segment's match could fake, and the
        // MAC decides anyway.
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The handler's answer, and what the access log records (never the token).
#[derive(Debug)]
pub struct Reply {
    /// The response.
    pub response: Response<RelayBody>,
    /// The link id, once the token parsed.
    pub link_id: Option<String>,
    /// The decoded key, once the path parsed.
    pub key: Option<String>,
}

fn text(status: StatusCode, body: &str) -> Response<RelayBody> {
    plain(status, body)
}

/// Answers one request without a body (an empty one). `now` decides expiry; `state` holds the
/// secret and the signer.
pub async fn handle(parts: &http::request::Parts, now: SystemTime, state: &RelayState) -> Reply {
    handle_with_body(parts, stream::empty_request_body(), now, state).await
}

/// Answers one request: the plain function of (request, now, state) the listener calls. The
/// body is read only when an upload is streamed through the relay, chunk by chunk.
pub async fn handle_request(
    req: http::Request<RequestBody>,
    now: SystemTime,
    state: &RelayState,
) -> Reply {
    let (parts, body) = req.into_parts();
    handle_with_body(&parts, body, now, state).await
}

/// [`handle_request`] with the request already split.
pub async fn handle_with_body(
    parts: &http::request::Parts,
    body: RequestBody,
    now: SystemTime,
    state: &RelayState,
) -> Reply {
    let mut reply = Reply {
        response: text(StatusCode::NOT_FOUND, "not found"),
        link_id: None,
        key: None,
    };
    reply.response = answer(parts, body, now, state, &mut reply.link_id, &mut reply.key).await;
    reply
}

async fn answer(
    parts: &http::request::Parts,
    body: RequestBody,
    now: SystemTime,
    state: &RelayState,
    link_id: &mut Option<String>,
    logged_key: &mut Option<String>,
) -> Response<RelayBody> {
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
            let mut r = Response::new(RelayBody::empty());
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
    let request_path = strip_public_path(parts.uri.path(), &state.path_prefix);
    if matches!(sign_method, SignMethod::Get | SignMethod::Head) {
        // What browsers and crawlers ask of every site, answered so that they never count
        // as a client's refused guesses: a browser asks for the icon after each file it
        // shows, and those 404s emptied a teammate's refusal allowance into 429s. Links
        // are private, so crawlers are asked to stay out.
        match request_path {
            "/favicon.ico" => {
                let mut r = Response::new(RelayBody::empty());
                *r.status_mut() = StatusCode::NO_CONTENT;
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                );
                return r;
            }
            "/robots.txt" => return text(StatusCode::OK, "User-agent: *\nDisallow: /"),
            _ => {}
        }
    }
    let parsed = match path::parse(request_path) {
        Ok(p) => p,
        Err(PathError::NoToken) => return text(StatusCode::NOT_FOUND, "no link here"),
        Err(e @ PathError::Bad(_)) => {
            // `/<token>`: a whole-bucket link with its slash trimmed.
            let token = request_path.trim_start_matches('/');
            if let Some(r) = add_the_slash(parts, token, "", now, state, link_id, logged_key) {
                return r;
            }
            return text(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let token = match Token::parse(parsed.token) {
        Ok(t) => t,
        Err(e) => return text(StatusCode::FORBIDDEN, &e.to_string()),
    };
    let grant = match token.verify(&state.secret, &parsed.key, now) {
        Ok(g) => g,
        Err(e) => {
            // The log names a link only once its MAC is verified (an expired link is checked
            // for expiry after its MAC): an unverified id is whatever the sender wrote, and a
            // real link's id with its MAC altered would put the refusal on that link.
            // The key likewise: until the token verifies, the path is whatever was sent, and
            // `/files/<token>/x` (a link pasted after a prefix) has the real token in its "key".
            if e == TokenError::Expired {
                *link_id = Some(token.id_text());
                *logged_key = Some(parsed.key.clone());
            } else if !parsed.key.is_empty()
                && !parsed.key.ends_with('/')
                && let Some(r) = add_the_slash(
                    parts,
                    parsed.token,
                    &parsed.key,
                    now,
                    state,
                    link_id,
                    logged_key,
                )
            {
                return r;
            }
            return text(StatusCode::FORBIDDEN, &e.to_string());
        }
    };
    *link_id = Some(grant.id_text());
    *logged_key = Some(parsed.key.clone());
    debug_assert!(in_scope(&grant, &parsed.key));
    if !in_scope(&grant, &parsed.key) {
        return text(StatusCode::FORBIDDEN, &TokenError::Invalid.to_string());
    }
    if let Some((status, why)) = check_revoked(&grant, &parsed.key, now, state).await {
        return text(status, &why);
    }
    let is_folder = parsed.key.ends_with('/') || parsed.key.is_empty();
    // Folder pages for folder links only: a link to one key that ends with `/` (a folder
    // marker) gives no view of what lies below it.
    if is_folder
        && matches!(grant.scope, Scope::Prefix(_))
        && matches!(sign_method, SignMethod::Get | SignMethod::Head)
    {
        return folder(parts, &grant, &parsed.key, state).await;
    }
    let allowed = match sign_method {
        SignMethod::Get | SignMethod::Head => grant.methods.read,
        SignMethod::Put => grant.methods.put,
        SignMethod::Delete => grant.methods.delete,
    };
    if !allowed {
        // Someone opening an upload link (in curl or a browser) learns what it is for; the
        // link itself is not repeated: the relay cannot know the address it was reached by.
        let why = if grant.methods.put && matches!(sign_method, SignMethod::Get | SignMethod::Head)
        {
            "this link is for uploading one file, not for downloading: send the file with curl -T FILE 'LINK' (LINK: this address)".to_owned()
        } else {
            format!("this link does not allow {}", parts.method)
        };
        let mut r = text(StatusCode::FORBIDDEN, &why);
        if let Ok(v) = HeaderValue::from_str(&grant.methods.names().join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return r;
    }
    if is_folder {
        return text(
            StatusCode::NOT_FOUND,
            "this is a folder: add a file name to the link",
        );
    }
    let mut req = SignRequest {
        method: sign_method,
        bucket: grant.bucket.clone(),
        key: parsed.key.clone(),
        lifetime: signature_lifetime(state.redirect_lifetime, &grant, now),
        if_none_match: false,
        content_length: None,
        filename: None,
        inline: false,
    };
    if sign_method == SignMethod::Get {
        // Only the name of the requester's own download: it grants nothing, so it need not be
        // in the token (and one link serves any name asked for).
        match download_name(parts.uri.query()) {
            Ok(Some(name)) => req.filename = Some(name),
            Ok(None) => {
                // Without a name of its own, a client that names files after the response
                // (`wget --content-disposition`, `curl -OJ`) took the redirect's URL: the
                // signed query, access key and signature included, or `a%20b.txt`. The key's
                // base name, inline so browsers still show images and PDFs. Past 255 bytes no
                // file system takes the name, so it would only lengthen the Location.
                let base = parsed.key.rsplit('/').next().unwrap_or_default();
                if !base.is_empty() && base.len() <= 255 {
                    req.filename = Some(base.to_owned());
                    req.inline = true;
                }
            }
            Err(why) => return text(StatusCode::BAD_REQUEST, why),
        }
    }
    let client_sent_inm = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*");
    // A link that never replaces objects cannot redirect a client that does not send
    // `If-None-Match: *` (plain `curl -T`): a redirect cannot add the header to the client's
    // next request, and an unguarded PUT URL could be replayed, or raced by another uploader,
    // to replace the object. The relay sends such an upload on itself, with the header.
    let guarded_here = sign_method == SignMethod::Put && !grant.overwrite && !client_sent_inm;
    let streamed = state.stream_always
        || (sign_method == SignMethod::Put
            && (parts.headers.contains_key(STREAM_HEADER) || guarded_here));
    if sign_method == SignMethod::Put {
        if parsed.key.chars().any(index::is_bidi_control) {
            // A name that shows as another (`invoice\u{202e}gpj.exe`): refused on the way in, as
            // control characters are (existing ones still download, and show escaped).
            return text(
                StatusCode::BAD_REQUEST,
                "bad name: it holds a character that reverses the text around it (U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)",
            );
        }
        if streamed && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            // The relay sends the body on with its length (S3 takes no chunked uploads to a
            // presigned URL) and never holds a whole body to count it.
            return text(
                StatusCode::LENGTH_REQUIRED,
                "send a Content-Length with the upload",
            );
        }
        if let Some(refusal) = check_upload(&parts.headers, &grant, &mut req, state).await {
            return refusal;
        }
    }
    if streamed {
        let mut upload = None;
        if sign_method == SignMethod::Put {
            let length = content_length(&parts.headers).unwrap_or(0);
            // The relay sends these headers itself: S3 enforces the size and, atomically,
            // no-overwrite (the check above only gave an early, clear answer).
            req.content_length = Some(length);
            req.if_none_match = !grant.overwrite;
            upload = Some((body, length));
        }
        return match state.signer.sign(&req).await {
            Ok(signed) => {
                let mut r = stream::forward(&state.http, &signed, &parts.headers, upload).await;
                if r.status() == StatusCode::RANGE_NOT_SATISFIABLE
                    && !r.headers().contains_key(header::CONTENT_RANGE)
                    && let Some(size) = stored_size(state, &req).await
                {
                    // What HTTP asks of a 416: the size, so a client can ask again within it.
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                }
                r
            }
            Err(e) => {
                tracing::warn!(link = ?link_id, "cannot sign a streamed request: {e}");
                text(
                    StatusCode::BAD_GATEWAY,
                    "the storage cannot be reached; try again later",
                )
            }
        };
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

/// A folder link whose trailing slash was trimmed (chat clients often do): `/<token>/docs`
/// for the link `/<token>/docs/`, or `/<token>` for a whole-bucket link. When the token
/// verifies for exactly that folder, a GET or HEAD is redirected (308) to the same path with
/// the slash, so browsers and `curl -L` land on the index instead of a refusal; `None`
/// otherwise (the caller refuses as before). The Location is the request's own path: it grants
/// nothing the request did not hold.
fn add_the_slash(
    parts: &http::request::Parts,
    token: &str,
    key: &str,
    now: SystemTime,
    state: &RelayState,
    link_id: &mut Option<String>,
    logged_key: &mut Option<String>,
) -> Option<Response<RelayBody>> {
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        return None;
    }
    let folder = if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    };
    let grant = Token::parse(token)
        .ok()?
        .verify(&state.secret, &folder, now)
        .ok()?;
    if !matches!(&grant.scope, Scope::Prefix(p) if *p == folder) {
        return None;
    }
    *link_id = Some(grant.id_text());
    *logged_key = Some(folder);
    let location = HeaderValue::from_str(&format!("{}/", parts.uri.path())).ok()?;
    let mut r = text(
        StatusCode::PERMANENT_REDIRECT,
        "this link is a folder: its address ends with a slash",
    );
    r.headers_mut().insert(header::LOCATION, location);
    Some(r)
}

/// How long a signature for `grant` may live at `now`: `longest`, cut to what is left of the
/// link, so that a Location (or a streamed request) never outlives the link it came from — a
/// link made for 2 s must not hand out a URL good for 5 min. Whole seconds, rounded down (S3's
/// `X-Amz-Expires`), and at least the 1 s S3 accepts: a link in its last second gives a
/// signature that may outlive it by less than a second.
fn signature_lifetime(longest: Duration, grant: &Grant, now: SystemTime) -> Duration {
    let left = grant
        .expires_at()
        .duration_since(now)
        .unwrap_or_default()
        .as_secs();
    longest.min(Duration::from_secs(left.max(1)))
}

/// The size of the object `req` names, from a HEAD of its own to storage; `None` when storage
/// does not say (the answer then goes without it).
async fn stored_size(state: &RelayState, req: &SignRequest) -> Option<u64> {
    let head = SignRequest {
        method: SignMethod::Head,
        filename: None,
        if_none_match: false,
        content_length: None,
        ..req.clone()
    };
    let signed = state.signer.sign(&head).await.ok()?;
    let mut r = state.http.head(&signed.url);
    for (k, v) in &signed.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    let answer = r.send().await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    content_length(answer.headers())
}

/// The request's `Content-Length`, when it is a number.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// GET or HEAD on a folder: the index page (or JSON) on links that read, the upload page on
/// links that only take uploads.
async fn folder(
    parts: &http::request::Parts,
    grant: &Grant,
    folder: &str,
    state: &RelayState,
) -> Response<RelayBody> {
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let json = index::wants_json(accept);
    let scope = match &grant.scope {
        Scope::Prefix(p) => p.as_str(),
        Scope::Key(k) => k.as_str(),
    };
    let upload = grant.methods.put.then_some(UploadInfo {
        max_size: grant.max_size,
        overwrite: grant.overwrite,
    });
    let nonce = new_nonce();
    let mut info = PageInfo {
        bucket: &grant.bucket,
        scope,
        folder,
        page: None,
        nonce: &nonce,
        read: grant.methods.read,
        upload,
    };
    let mut r = if !grant.methods.read {
        if !grant.methods.put || json || !index::wants_html(accept) {
            let mut r = text(
                StatusCode::FORBIDDEN,
                if grant.methods.put {
                    "this link takes uploads and shows no listing: open it in a browser, or `curl -L -T FILE` to this address followed by the file name"
                } else {
                    "this link does not allow listing"
                },
            );
            if let Ok(v) = HeaderValue::from_str(&grant.methods.names().join(", ")) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        page(
            index::render_html(&info, &FolderPage::default()),
            "text/html; charset=utf-8",
            &nonce,
            true,
        )
    } else {
        let token = match index::page_token(parts.uri.query()) {
            Ok(t) => t,
            Err(why) => return text(StatusCode::BAD_REQUEST, why),
        };
        info.page = token.as_deref();
        let mut listing = match state
            .signer
            .list_page(&grant.bucket, folder, token.as_deref(), state.page_size)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("relay: cannot list a folder: {e}");
                return text(
                    StatusCode::BAD_GATEWAY,
                    "the storage cannot be reached; try again later",
                );
            }
        };
        listing.hide_reserved(folder);
        listing.sort_for_people();
        if json {
            page(
                index::render_json(&info, &listing),
                "application/json",
                &nonce,
                false,
            )
        } else {
            page(
                index::render_html(&info, &listing),
                "text/html; charset=utf-8",
                &nonce,
                upload.is_some(),
            )
        }
    };
    if parts.method == Method::HEAD {
        // What GET would send, without the body.
        let len = r.body().as_text().len();
        *r.body_mut() = RelayBody::empty();
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

/// A fresh CSP nonce: 128 random bits.
fn new_nonce() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// A page of the relay's own with its security headers: a CSP that allows only the style
/// (and, on upload pages, the script) carrying `nonce`, and connections back to the relay for
/// uploads; no framing, no sniffing, no caching, no Referer (relay URLs carry tokens, which must
/// not leak to storage or anywhere a link leads).
fn page(
    body: String,
    content_type: &'static str,
    nonce: &str,
    script: bool,
) -> Response<RelayBody> {
    let mut r = Response::new(RelayBody::text(body));
    let csp = if script {
        format!(
            "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    } else {
        format!(
            "default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    stream::security_headers(h);
    r
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
        // As if absent: listings hide the prefix too.
        return Some((StatusCode::NOT_FOUND, "not found".into()));
    }
    match state.revoked.check(&grant.bucket, &grant.id, now).await {
        Ok(false) => None,
        Ok(true) => Some((StatusCode::FORBIDDEN, "this link has been revoked".into())),
        Err(e) => Some((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// The `?filename=` of a download: at most 255 bytes, no control characters, no `/` or `\\`.
fn download_name(query: Option<&str>) -> Result<Option<String>, &'static str> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "filename" {
            continue;
        }
        let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8()
            .map_err(|_| "the file name is not UTF-8")?
            .into_owned();
        if v.is_empty()
            || v.len() > 255
            || v.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err("bad file name: 1 to 255 bytes, no control characters, no / or \\");
        }
        return Ok(Some(v));
    }
    Ok(None)
}

fn in_scope(grant: &Grant, key: &str) -> bool {
    match &grant.scope {
        Scope::Key(k) => k == key,
        Scope::Prefix(p) => key.starts_with(p.as_str()),
    }
}

/// `Host` (or the authority of an absolute URI) must be one of the relay's names; `Some` is
/// the refusal.
fn check_host(
    headers: &HeaderMap,
    uri: &http::Uri,
    hosts: &[String],
) -> Option<Response<RelayBody>> {
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
) -> Option<Response<RelayBody>> {
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
            // Such an upload is streamed with the header signed and sent, which S3 enforces
            // atomically; this check only refuses a taken name before the body is read.
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
        /// The folder listings asked for: (prefix, continuation).
        listed: Mutex<Vec<(String, Option<String>)>>,
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
        async fn list_page(
            &self,
            _bucket: &str,
            prefix: &str,
            continuation: Option<&str>,
            _max: usize,
        ) -> crate::Result<FolderPage> {
            self.listed
                .lock()
                .push((prefix.to_owned(), continuation.map(str::to_owned)));
            Ok(FolderPage {
                folders: vec![format!("{prefix}sub/"), ".s3share/".into()],
                files: vec![
                    crate::s3::ObjectEntry {
                        key: format!("{prefix}a <b>.txt"),
                        size: 3,
                        modified: None,
                        etag: None,
                    },
                    crate::s3::ObjectEntry {
                        key: ".s3share/ledger/1".into(),
                        size: 3,
                        modified: None,
                        etag: None,
                    },
                ],
                next: Some("NEXT+1".into()),
            })
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
    async fn a_download_name_is_passed_on_and_checked() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let g = Grant::new("bkt", Scope::Key("r.pdf".into()), Methods::READ, later());
        let url = link(&st, &g);
        let r = run(
            &st,
            "GET",
            &format!("{url}?filename=Report%202026%20%C3%A9.pdf"),
            &[],
        )
        .await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            rec.signed.lock()[0].filename.as_deref(),
            Some("Report 2026 é.pdf")
        );
        for bad in ["..%2Fx", "a%0Ab", "a%5Cb", "", "%FF"] {
            let r = run(&st, "GET", &format!("{url}?filename={bad}"), &[]).await;
            assert_refused(&r, 400);
        }
        assert_eq!(rec.signed.lock().len(), 1, "nothing else was signed");
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
            assert!(r.response.body().as_text().contains(m));
        }
        // Another key under the same token, an expired token, a forged one.
        let token = url.split('/').nth(1).unwrap();
        assert_refused(
            &run(&st, "GET", &format!("/{token}/docs/b.txt"), &[]).await,
            403,
        );
        let expired = handle(&request("GET", &url, &[]), g.expires_at(), &st).await;
        assert_refused(&expired, 403);
        assert!(expired.response.body().as_text().contains("expired"));
        let other = Secret::from_bytes([8; 32]);
        let forged = crate::relay::make_link(&g, &other, "").unwrap().url;
        let r = run(&st, "GET", &forged, &[]).await;
        assert_refused(&r, 403);
        assert_eq!(
            r.link_id, None,
            "a forged token's id is not logged as the link's"
        );
        // The real token with one character of its MAC changed.
        let mut tampered: Vec<char> = url.chars().collect();
        let at = url[1..].find('/').unwrap() - 4;
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let r = run(&st, "GET", &tampered, &[]).await;
        assert_refused(&r, 403);
        assert_eq!(r.link_id, None, "{tampered}");
        // An expired link is still that link: its id is verified.
        assert_eq!(expired.link_id.as_deref(), Some(g.id_text().as_str()));
        assert_refused(&run(&st, "GET", "/", &[]).await, 404);
        assert_refused(&run(&st, "GET", "/garbage/docs/a%20b.txt", &[]).await, 403);
        // A browser's icon request and a crawler's robots.txt are answered, not refused, so
        // they never drain the client's refusal allowance.
        for (path, status) in [("/favicon.ico", 204), ("/robots.txt", 200)] {
            for method in ["GET", "HEAD"] {
                let r = run(&st, method, path, &[]).await;
                let got = r.response.status().as_u16();
                assert_eq!(got, status, "{method} {path}");
                assert!(!crate::relay::limits::is_refusal(got), "{method} {path}");
            }
        }
        let robots = run(&st, "GET", "/robots.txt", &[]).await.response;
        let robots = http_body_util::BodyExt::collect(robots.into_body()).await;
        let robots = robots.unwrap().to_bytes();
        assert_eq!(&robots[..], b"User-agent: *\nDisallow: /\n");
        assert_eq!(
            rec.signed.lock().len(),
            2,
            "refusals never reach the signer"
        );
    }

    #[tokio::test]
    async fn signatures_never_outlive_the_link() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        // Half a second past a whole second, as link expiries are whole seconds.
        let second = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = std::time::UNIX_EPOCH + Duration::from_millis(second * 1000 + 500);
        // (link expires after `now` by, the signature's lifetime)
        for (ahead, want) in [(3600, 300), (3, 2), (1, 1)] {
            let mut g = Grant::new(
                "bkt",
                Scope::Key("k".into()),
                Methods {
                    read: true,
                    put: true,
                    delete: true,
                },
                std::time::UNIX_EPOCH + Duration::from_secs(second + ahead),
            );
            g.overwrite = true;
            let url = link(&st, &g);
            for m in ["GET", "HEAD", "PUT", "DELETE"] {
                let r = handle(&request(m, &url, &[]), now, &st).await;
                assert_eq!(
                    r.response.status(),
                    StatusCode::TEMPORARY_REDIRECT,
                    "{m} {ahead}"
                );
                let signed = rec.signed.lock().last().unwrap().lifetime;
                assert_eq!(
                    signed,
                    Duration::from_secs(want),
                    "{m}: a link {ahead} s ahead (less half a second)"
                );
            }
        }
    }

    #[test]
    fn public_urls_hold_only_where_the_relay_is() {
        assert_eq!(
            public_hosts("http://files.lan:8457").unwrap(),
            ["files.lan:8457"]
        );
        assert_eq!(
            public_hosts("https://Files.Example.com/").unwrap(),
            ["files.example.com:443", "files.example.com"]
        );
        for (bad, why) in [
            ("http://files.lan:8457?x=1", "query"),
            ("http://files.lan:8457/?x=1", "query"),
            ("http://files.lan:8457?", "query"),
            ("http://files.lan#top", "fragment"),
            ("http://files.lan/#", "fragment"),
            ("http://user:pw@files.lan", "password"),
            ("http://user@files.lan:8457", "password"),
            ("http://files.lan:8457/a%2Fb", "path"),
            ("http://files.lan/a//b", "path"),
            ("http://files.lan/a/../b", "path"),
            ("ftp://files.lan", "http://"),
            ("files.lan:8457", "http://"),
        ] {
            let e = public_hosts(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("pw@"), "{bad}: the password repeated: {e}");
        }
    }

    /// A public URL with a path (a proxy under `/relay`): links carry the path, and the relay
    /// answers them with it or without it (a proxy that strips it); an unverified path logs
    /// no key, since it may hold a working token.
    #[tokio::test]
    async fn a_public_url_path_is_stripped_and_unverified_keys_are_not_logged() {
        let rec = Arc::new(Recorder::default());
        let st = RelayState::new(
            Secret::from_bytes([7; 32]),
            rec.clone(),
            LISTEN.parse().unwrap(),
            Some("https://files.example.com/relay/"),
        )
        .unwrap();
        let g = Grant::new("bkt", Scope::Key("k".into()), Methods::READ, later());
        let url = crate::relay::make_link(&g, &st.secret, "/relay")
            .unwrap()
            .url;
        assert!(url.starts_with("/relay/"), "{url}");
        let stripped = url.strip_prefix("/relay").unwrap();
        for path in [url.as_str(), stripped] {
            let r = run(&st, "GET", path, &[]).await;
            assert_eq!(
                r.response.status(),
                StatusCode::TEMPORARY_REDIRECT,
                "{path}"
            );
            assert_eq!(r.key.as_deref(), Some("k"));
        }
        let r = run(&st, "GET", &format!("/files{stripped}"), &[]).await;
        assert_refused(&r, 403);
        assert_eq!((r.link_id.as_deref(), r.key.as_deref()), (None, None));
        // Not a prefix of a longer segment.
        assert_refused(
            &run(&st, "GET", &format!("/relayx{stripped}"), &[]).await,
            403,
        );
        assert_eq!(rec.signed.lock().len(), 2);
    }

    /// A folder link with its trailing slash trimmed (as chat clients do) is redirected to
    /// the same path with it, for the folder it names only: no longer refused as invalid (the
    /// folder) or as a bad path (the whole bucket).
    #[tokio::test]
    async fn a_folder_link_without_its_slash_is_redirected_to_it() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let browser = [("accept", "text/html")];
        for scope in ["docs/", ""] {
            let g = Grant::new("bkt", Scope::Prefix(scope.into()), Methods::READ, later());
            let url = link(&st, &g);
            let trimmed = url.strip_suffix('/').unwrap();
            for m in ["GET", "HEAD"] {
                let r = run(&st, m, trimmed, &browser).await;
                assert_eq!(
                    r.response.status(),
                    StatusCode::PERMANENT_REDIRECT,
                    "{m} {scope}"
                );
                assert_eq!(header(&r, "location"), url, "{m} {scope}");
                assert_eq!(r.link_id.as_deref(), Some(g.id_text().as_str()));
            }
            assert_eq!(
                run(&st, "GET", &url, &browser).await.response.status(),
                StatusCode::OK
            );
            // Not for other methods, nor for a forged token.
            // (`/<token>` is no path a PUT can use.)
            let want = if scope.is_empty() { 400 } else { 403 };
            assert_refused(
                &run(&st, "PUT", trimmed, &[("content-length", "1")]).await,
                want,
            );
            let forged = trimmed.replacen('/', "/A", 1);
            let r = run(&st, "GET", &forged, &browser).await;
            assert!(r.response.status().is_client_error(), "{forged}");
            assert!(r.link_id.is_none());
        }
        // A link to one key, or a name inside the folder, is not redirected.
        let file = Grant::new("bkt", Scope::Key("docs".into()), Methods::READ, later());
        let r = run(&st, "GET", &link(&st, &file), &[]).await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        let folder = Grant::new("bkt", Scope::Prefix("docs/".into()), Methods::READ, later());
        let other = format!("{}other", link(&st, &folder).strip_suffix("docs/").unwrap());
        assert_refused(&run(&st, "GET", &other, &[]).await, 403);
    }

    /// A single-file upload link opened with GET says what it is for and how to use it.
    #[tokio::test]
    async fn a_file_upload_link_opened_for_reading_says_how_to_upload() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let g = Grant::new(
            "bkt",
            Scope::Key("one.txt".into()),
            Methods::UPLOAD,
            later(),
        );
        let url = link(&st, &g);
        for accept in ["*/*", "text/html"] {
            let r = run(&st, "GET", &url, &[("accept", accept)]).await;
            assert_refused(&r, 403);
            let body = r.response.body().as_text();
            assert!(
                body.contains("uploading one file") && body.contains("curl -T FILE"),
                "{body}"
            );
        }
        let read = Grant::new("bkt", Scope::Key("one.txt".into()), Methods::READ, later());
        let r = run(&st, "PUT", &link(&st, &read), &[("content-length", "1")]).await;
        assert_refused(&r, 403);
        assert_eq!(
            r.response.body().as_text(),
            "this link does not allow PUT\n"
        );
        assert!(rec.signed.lock().is_empty());
    }

    /// Bidi controls in names: shown escaped on the index (the link still names the key
    /// byte for byte), refused in uploads through the relay.
    #[tokio::test]
    async fn bidi_controls_are_shown_escaped_and_refused_in_uploads() {
        let html = index::escape_html("invoice\u{202e}gpj.exe \u{2066}\u{200f}");
        assert_eq!(html, "invoice\\u{202e}gpj.exe \\u{2066}\\u{200f}");
        assert_eq!(
            index::entry_href("d/", "d/a\u{202e}b").as_deref(),
            Some("./a%E2%80%AEb")
        );
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let mut g = Grant::new(
            "bkt",
            Scope::Prefix("drop/".into()),
            Methods::UPLOAD,
            later(),
        );
        g.overwrite = true;
        let base = link(&st, &g);
        for name in ["invoice%E2%80%AEgpj.exe", "a%E2%81%A6b", "a%E2%80%8Eb"] {
            let r = run(
                &st,
                "PUT",
                &format!("{base}{name}"),
                &[("content-length", "1")],
            )
            .await;
            assert_refused(&r, 400);
        }
        let r = run(
            &st,
            "PUT",
            &format!("{base}plain.txt"),
            &[("content-length", "1")],
        )
        .await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(rec.signed.lock().len(), 1);
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
            Methods::UPLOAD,
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
        // Without If-None-Match, no PUT URL is handed out: the relay sends the body on itself
        // with the header signed (here to a storage that does not exist: 502).
        let r = run(
            &st,
            "PUT",
            &put("sub/new.txt"),
            &[("content-length", "100")],
        )
        .await;
        assert_refused(&r, 502);
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
        assert!(signed[0].if_none_match);
        assert!(signed[1].if_none_match);

        // With --overwrite, an existing key is replaced.
        g.overwrite = true;
        g.max_size = None;
        let base = link(&st, &g);
        let r = run(&st, "PUT", &format!("{base}taken.txt"), &[]).await;
        assert_eq!(r.response.status(), StatusCode::TEMPORARY_REDIRECT);
    }

    fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
        r.response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn folder_links_show_an_index_page_or_json() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let g = Grant::new("bkt", Scope::Prefix("docs/".into()), Methods::READ, later());
        let base = link(&st, &g);
        let browser = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
        let r = run(&st, "GET", &base, &browser).await;
        assert_eq!(r.response.status(), StatusCode::OK);
        let html = r.response.body().as_text();
        assert!(
            html.contains("<a href=\"./a%20%3Cb%3E.txt\">a &lt;b&gt;.txt</a>"),
            "{html}"
        );
        assert!(html.contains("href=\"./sub/\""));
        assert!(!html.contains(".s3share"), "{html}");
        assert!(html.contains("href=\"?page=NEXT%2B1\""));
        assert!(header(&r, "content-type").starts_with("text/html"));
        let csp = header(&r, "content-security-policy");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("script-src"),
            "no script on a read-only index: {csp}"
        );
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap();
        assert!(html.contains(&format!("<style nonce=\"{nonce}\">")));
        assert_eq!(header(&r, "referrer-policy"), "no-referrer");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        assert_eq!(header(&r, "cache-control"), "no-store");
        assert!(header(&r, "access-control-allow-origin").is_empty());
        assert!(r.response.headers().get(header::LOCATION).is_none());
        // Each response has its own nonce.
        let again = run(&st, "GET", &base, &browser).await;
        assert_ne!(header(&again, "content-security-policy"), csp);

        // HEAD: GET's headers, no body.
        let head = run(&st, "HEAD", &base, &browser).await;
        assert_eq!(head.response.status(), StatusCode::OK);
        assert!(head.response.body().as_text().is_empty());
        assert_eq!(
            header(&head, "content-length"),
            html.len().to_string().as_str()
        );

        let r = run(
            &st,
            "GET",
            &format!("{base}sub/?page=NEXT%2B1"),
            &[("accept", "application/json")],
        )
        .await;
        assert_eq!(r.response.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), "application/json");
        let v: serde_json::Value = serde_json::from_str(r.response.body().as_text()).unwrap();
        assert_eq!(v["folder"], "docs/sub/");
        assert_eq!(v["files"][0]["name"], "a <b>.txt");
        assert_eq!(v["files"].as_array().unwrap().len(), 1);
        assert_eq!(v["folders"].as_array().unwrap().len(), 1);
        assert_eq!(
            rec.listed.lock().last().unwrap(),
            &("docs/sub/".to_owned(), Some("NEXT+1".to_owned()))
        );
        assert_refused(
            &run(&st, "GET", &format!("{base}?page=%0a"), &[]).await,
            400,
        );
        // Never the reserved prefix, whatever the scope.
        let root = Grant::new(
            "bkt",
            Scope::Prefix(".s3share/".into()),
            Methods::READ,
            later(),
        );
        assert_refused(&run(&st, "GET", &link(&st, &root), &browser).await, 404);
        // A link to one key that ends with `/` lists nothing.
        let marker = Grant::new("bkt", Scope::Key("docs/".into()), Methods::READ, later());
        assert_refused(&run(&st, "GET", &link(&st, &marker), &browser).await, 404);
        assert_eq!(rec.listed.lock().len(), 4);
        assert!(rec.signed.lock().is_empty(), "pages sign nothing");
    }

    #[tokio::test]
    async fn upload_links_show_the_upload_page_to_browsers() {
        let rec = Arc::new(Recorder::default());
        let st = state(rec.clone());
        let mut g = Grant::new(
            "bkt",
            Scope::Prefix("drop/".into()),
            Methods::UPLOAD,
            later(),
        );
        g.max_size = Some(1000);
        let base = link(&st, &g);
        let r = run(&st, "GET", &base, &[("accept", "text/html,*/*;q=0.8")]).await;
        assert_eq!(r.response.status(), StatusCode::OK);
        let html = r.response.body().as_text();
        let csp = header(&r, "content-security-policy");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap();
        assert!(
            csp.contains(&format!("script-src 'nonce-{nonce}'")),
            "{csp}"
        );
        assert!(csp.contains("connect-src 'self'"));
        assert!(html.contains(&format!("<script nonce=\"{nonce}\">")));
        assert!(html.contains("data-max=\"1000\""));
        assert!(
            !html.contains("<table"),
            "an upload-only link lists nothing"
        );
        assert!(html.contains("<h1>Upload to drop</h1>"));
        assert!(rec.listed.lock().is_empty());
        // curl and JSON clients get a refusal that says what to do.
        for accept in ["*/*", "application/json"] {
            let r = run(&st, "GET", &base, &[("accept", accept)]).await;
            assert_refused(&r, 403);
            assert!(r.response.body().as_text().contains("curl -L -T"));
        }
        // Streamed uploads need a length, and the cap is checked before anything is signed.
        let put = format!("{base}f.bin");
        let stream = ("x-s3share-stream", "1");
        assert_refused(&run(&st, "PUT", &put, &[stream]).await, 411);
        assert_refused(
            &run(&st, "PUT", &put, &[stream, ("content-length", "1001")]).await,
            413,
        );
        assert!(rec.signed.lock().is_empty());
        // A link that reads and takes uploads: the index with the upload panel.
        g.methods.read = true;
        let r = run(&st, "GET", &link(&st, &g), &[("accept", "text/html")]).await;
        let html = r.response.body().as_text();
        assert!(html.contains("<table") && html.contains("id=\"drop\""));
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
