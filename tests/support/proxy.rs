//! A strict HTTP/1.1 proxy of our own between s3share and a real S3 server, with faults on
//! demand; and a "black hole" that accepts connections and never answers.
//!
//! Strict like nginx and most fronting gateways: a request with a repeated header, or with both
//! `Content-Length` and `Transfer-Encoding`, is answered `400` and never reaches the server. The
//! faults are what a network or a server does to a client: drop an answer after the server acted
//! on the request, stop reading a body half-way and go silent, refuse one kind of request, or
//! alter an answer's header. Each request it sees is logged, so tests can check what was sent.
//!
//! Plain tokio TCP with a small HTTP/1.1 parser (no pipelining, which no client here uses).
#![allow(dead_code)] // each test uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::BufReader;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// The S3 operation a request is, told apart by method, path and query (path-style URLs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PutObject,
    UploadPart,
    CreateMultipart,
    CompleteMultipart,
    AbortMultipart,
    HeadObject,
    HeadBucket,
    GetObject,
    ListObjects,
    ListUploads,
    DeleteObject,
    /// `POST ?delete`: many keys in one request.
    DeleteObjects,
    Other,
}

/// What the proxy does to a request it matches.
#[derive(Clone)]
pub enum Fault {
    /// Forwards the request and lets the server answer, then closes the client's connection
    /// without sending a byte of the answer: the request took effect, its response was lost.
    DropResponse,
    /// Answers `status` with an S3 error body of `code` itself; the server never sees it.
    Fail { status: u16, code: &'static str },
    /// Forwards the head and the first `after` bytes of the body, then stops reading and never
    /// answers, keeping the connection open: a server that stopped answering mid-body.
    StallBody { after: u64 },
    /// Reads the whole request and never answers, keeping the connection open.
    Silence,
    /// Forwards all of the body but its last byte, waits until every party of the barrier got
    /// there too, then sends the last byte: requests that overlap on the server for certain.
    HoldLastByte(Arc<Barrier>),
    /// Forwards the body at `bytes_per_sec` (in tenths of a second): a slow link that keeps
    /// making progress.
    Throttle { bytes_per_sec: u64 },
    /// Forwards the request and replaces (or, with `None`, removes) a header of the answer.
    SetResponseHeader(&'static str, Option<String>),
    /// Forwards the body with the byte at offset `at` flipped (a body corrupted on the way),
    /// then the server's answer.
    CorruptBody { at: u64 },
    /// Forwards the answer's head and the first `after` bytes of its body, then closes the
    /// connection: a connection that broke in the middle of a download.
    CutAnswer { after: u64 },
    /// Forwards the answer with the body's byte at offset `at` flipped: a download damaged on
    /// the way.
    CorruptAnswer { at: u64 },
}

struct Rule {
    kind: Kind,
    fault: Fault,
    times: usize,
}

/// One request as it reached the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kind: Kind,
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Why the proxy refused it as malformed, if it did.
    pub refused: Option<String>,
}

impl Seen {
    /// The values of header `name` (any case), in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

struct State {
    upstream: SocketAddr,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// The proxy, listening (on loopback, unless started elsewhere) until the test's runtime ends.
pub struct Proxy {
    /// `http://127.0.0.1:PORT` (or the address it listens on), to use as the S3 endpoint.
    pub endpoint: String,
    state: Arc<State>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (an `http://host:port` endpoint).
    pub async fn start(upstream: &str) -> Proxy {
        Self::start_on(upstream, std::net::Ipv4Addr::LOCALHOST).await
    }

    /// A proxy as [`start`](Self::start), listening on `ip`: at an address of this machine
    /// that is not loopback, s3share takes the server behind it for one elsewhere.
    pub async fn start_on(upstream: &str, ip: std::net::Ipv4Addr) -> Proxy {
        let authority = upstream.trim_start_matches("http://").trim_end_matches('/');
        let upstream = tokio::net::lookup_host(authority)
            .await
            .expect("upstream resolves")
            .next()
            .expect("upstream has an address");
        // A modest receive buffer, as across a real network: on loopback the kernel would
        // otherwise buffer tens of MiB of a body the proxy has not read yet, and a client
        // could not tell a slow reader from a stalled one.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(128 * 1024).unwrap();
        socket.bind(SocketAddr::from((ip, 0))).unwrap();
        let listener = socket.listen(1024).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    // Errors end that connection only, as they would on a real proxy.
                    let _ = connection(socket, state).await;
                });
            }
        });
        Proxy { endpoint, state }
    }

    /// Applies `fault` to the next `times` requests of `kind` (`usize::MAX`: all of them).
    pub fn fault(&self, kind: Kind, fault: Fault, times: usize) {
        self.state.rules.lock().push(Rule { kind, fault, times });
    }

    /// Drops every fault not used up yet: from now on requests just go through.
    pub fn clear_faults(&self) {
        self.state.rules.lock().clear();
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().clone()
    }

    /// The requests of `kind` seen so far.
    pub fn seen_of(&self, kind: Kind) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.kind == kind).collect()
    }

    /// The reasons of every request refused as malformed.
    pub fn refused(&self) -> Vec<String> {
        self.seen().into_iter().filter_map(|s| s.refused).collect()
    }
}

/// An IPv4 address of this machine that is not loopback (the one its traffic would leave
/// from), if it has one. No packet is sent: connecting a UDP socket only picks the route.
pub fn address_elsewhere() -> Option<std::net::Ipv4Addr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// An endpoint that accepts connections, reads whatever is sent and never answers.
pub async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut socket, &mut tokio::io::sink()).await;
                // The client closed its side; keep ours open until the test ends.
                std::future::pending::<()>().await;
            });
        }
    });
    endpoint
}

struct Head {
    raw: Vec<u8>,
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy)]
enum BodyLen {
    Fixed(u64),
    Chunked,
    UntilClose,
}

fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads a message head; `None` at a clean end of the connection.
async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = r.read_until(b'\n', &mut raw).await?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io_err("connection closed inside a message head"))
            };
        }
        let line = &raw[before..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if raw.len() > 64 * 1024 {
            return Err(io_err("message head too large"));
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Some(Head {
        raw,
        first,
        headers,
    }))
}

/// Why a request would be refused by a strict server, if it would.
fn strict_violation(head: &Head) -> Option<String> {
    let mut names: Vec<String> = head
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Some(format!("repeated header {}", w[0]));
    }
    if head.get("content-length").is_some() && head.get("transfer-encoding").is_some() {
        return Some("both Content-Length and Transfer-Encoding".to_owned());
    }
    None
}

fn classify(method: &str, target: &str, head: &Head) -> Kind {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let has = |name: &str| {
        query
            .split('&')
            .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name)
    };
    let has_key = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .contains('/');
    match method {
        "PUT" if has("partNumber") && has("uploadId") => Kind::UploadPart,
        "PUT" if has_key && head.get("x-amz-copy-source").is_none() => Kind::PutObject,
        "POST" if has("uploads") => Kind::CreateMultipart,
        "POST" if has("uploadId") => Kind::CompleteMultipart,
        "POST" if has("delete") => Kind::DeleteObjects,
        "DELETE" if has("uploadId") => Kind::AbortMultipart,
        "DELETE" if has_key => Kind::DeleteObject,
        "HEAD" if has_key => Kind::HeadObject,
        "HEAD" => Kind::HeadBucket,
        "GET" if has("uploads") => Kind::ListUploads,
        "GET" if has_key => Kind::GetObject,
        "GET" => Kind::ListObjects,
        _ => Kind::Other,
    }
}

fn request_body(head: &Head) -> BodyLen {
    if head
        .get("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        return BodyLen::Chunked;
    }
    BodyLen::Fixed(
        head.get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// Copies one body from `r` to `w`; with `limit`, stops after that many bytes (returns whether
/// the whole body went through).
async fn copy_body<R, W>(
    r: &mut BufReader<R>,
    w: &mut W,
    len: BodyLen,
    limit: Option<u64>,
) -> std::io::Result<bool>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut budget = limit.unwrap_or(u64::MAX);
    match len {
        BodyLen::Fixed(n) => {
            let take = n.min(budget);
            let copied = tokio::io::copy(&mut (&mut *r).take(take), w).await?;
            if copied < take {
                return Err(io_err("body ended early"));
            }
            w.flush().await?;
            Ok(take == n)
        }
        BodyLen::UntilClose => {
            let copied = tokio::io::copy(&mut (&mut *r).take(budget), w).await?;
            w.flush().await?;
            Ok(copied < budget)
        }
        BodyLen::Chunked => {
            loop {
                let mut line = Vec::new();
                r.read_until(b'\n', &mut line).await?;
                let text = String::from_utf8_lossy(&line);
                let size_hex = text.trim().split(';').next().unwrap_or("");
                let size = u64::from_str_radix(size_hex, 16)
                    .map_err(|_| io_err(format!("bad chunk size {text:?}")))?;
                w.write_all(&line).await?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let mut t = Vec::new();
                        r.read_until(b'\n', &mut t).await?;
                        w.write_all(&t).await?;
                        if t == b"\r\n" || t == b"\n" || t.is_empty() {
                            break;
                        }
                    }
                    w.flush().await?;
                    return Ok(true);
                }
                let take = (size + 2).min(budget);
                let copied = tokio::io::copy(&mut (&mut *r).take(take), w).await?;
                if copied < take {
                    return Err(io_err("chunk ended early"));
                }
                budget -= take;
                if budget == 0 {
                    w.flush().await?;
                    return Ok(false);
                }
            }
        }
    }
}

/// Reads one whole response (following any `100 Continue`) into memory; returns it raw and
/// whether the connection must close after it.
async fn read_response<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    method: &str,
) -> std::io::Result<(Vec<u8>, Head, bool)> {
    let mut interim = Vec::new();
    loop {
        let mut head = read_head(r)
            .await?
            .ok_or_else(|| io_err("server closed without answering"))?;
        let status: u16 = head
            .first
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io_err(format!("bad status line {:?}", head.first)))?;
        if (100..200).contains(&status) {
            interim.extend_from_slice(&head.raw);
            continue;
        }
        let close = head
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let len = if method == "HEAD" || status == 204 || status == 304 {
            BodyLen::Fixed(0)
        } else if head
            .get("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
        {
            BodyLen::Chunked
        } else if let Some(n) = head.get("content-length").and_then(|v| v.parse().ok()) {
            BodyLen::Fixed(n)
        } else {
            BodyLen::UntilClose
        };
        let mut body = Vec::new();
        copy_body(r, &mut body, len, None).await?;
        let close = close || matches!(len, BodyLen::UntilClose);
        interim.extend_from_slice(&head.raw);
        head.raw = interim;
        return Ok((body, head, close));
    }
}

fn with_header(head: &Head, name: &str, value: Option<&str>) -> Vec<u8> {
    let mut out = format!("{}\r\n", head.first);
    for (n, v) in &head.headers {
        if !n.eq_ignore_ascii_case(name) {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if let Some(v) = value {
        out.push_str(&format!("{name}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

async fn answer<W: AsyncWrite + Unpin>(
    w: &mut W,
    status: u16,
    code: &str,
    close: bool,
) -> std::io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>refused by the test proxy</Message></Error>"
    );
    let connection = if close { "close" } else { "keep-alive" };
    let response = format!(
        "HTTP/1.1 {status} {code}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    );
    w.write_all(response.as_bytes()).await?;
    w.flush().await
}

impl State {
    fn take_fault(&self, kind: Kind) -> Option<Fault> {
        let mut rules = self.rules.lock();
        let rule = rules.iter_mut().find(|r| r.kind == kind && r.times > 0)?;
        rule.times -= 1;
        Some(rule.fault.clone())
    }
}

async fn connection(client: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut upstream = None;
    loop {
        let Some(head) = read_head(&mut client_read).await? else {
            return Ok(());
        };
        let mut words = head.first.split_whitespace();
        let method = words.next().unwrap_or_default().to_owned();
        let target = words.next().unwrap_or_default().to_owned();
        let kind = classify(&method, &target, &head);
        let refused = strict_violation(&head);
        state.seen.lock().push(Seen {
            kind,
            method: method.clone(),
            target,
            headers: head.headers.clone(),
            refused: refused.clone(),
        });
        if refused.is_some() {
            // As nginx does: 400, and the connection is closed.
            return answer(&mut client_write, 400, "BadRequest", true).await;
        }
        let body = request_body(&head);
        let fault = state.take_fault(kind);
        match &fault {
            Some(Fault::Fail { status, code }) => {
                copy_body(&mut client_read, &mut tokio::io::sink(), body, None).await?;
                answer(&mut client_write, *status, code, false).await?;
                continue;
            }
            Some(Fault::Silence) => {
                copy_body(&mut client_read, &mut tokio::io::sink(), body, None).await?;
                std::future::pending::<()>().await;
            }
            _ => {}
        }
        if upstream.is_none() {
            let (r, w) = TcpStream::connect(state.upstream).await?.into_split();
            upstream = Some((BufReader::new(r), w));
        }
        let (up_read, up_write) = upstream.as_mut().unwrap();
        up_write.write_all(&head.raw).await?;
        let whole_body = match &fault {
            Some(Fault::StallBody { after }) => {
                copy_body(&mut client_read, up_write, body, Some(*after)).await?;
                // Neither reads on nor answers; the connection stays open.
                std::future::pending::<()>().await;
                unreachable!()
            }
            Some(Fault::Throttle { bytes_per_sec }) => {
                let BodyLen::Fixed(mut left) = body else {
                    return Err(io_err("Throttle needs a Content-Length body"));
                };
                let slice = (bytes_per_sec / 10).max(1);
                while left > 0 {
                    let n = slice.min(left);
                    copy_body(&mut client_read, up_write, BodyLen::Fixed(n), None).await?;
                    left -= n;
                    // The slowness is the fault itself, not a wait for something to happen.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                true
            }
            Some(Fault::CorruptBody { at }) => {
                let BodyLen::Fixed(n) = body else {
                    return Err(io_err("CorruptBody needs a Content-Length body"));
                };
                let at = (*at).min(n.saturating_sub(1));
                copy_body(&mut client_read, up_write, BodyLen::Fixed(at), None).await?;
                let mut byte = [0u8; 1];
                client_read.read_exact(&mut byte).await?;
                byte[0] ^= 0x01;
                up_write.write_all(&byte).await?;
                copy_body(&mut client_read, up_write, BodyLen::Fixed(n - at - 1), None).await?
            }
            Some(Fault::HoldLastByte(barrier)) => {
                let BodyLen::Fixed(n) = body else {
                    return Err(io_err("HoldLastByte needs a Content-Length body"));
                };
                let first = n.saturating_sub(1);
                copy_body(&mut client_read, up_write, BodyLen::Fixed(first), None).await?;
                barrier.wait().await;
                copy_body(&mut client_read, up_write, BodyLen::Fixed(n - first), None).await?
            }
            _ => {
                // The body goes up while the answer is awaited: a server may answer early.
                let send = copy_body(&mut client_read, up_write, body, None);
                let receive = read_response(up_read, &method);
                tokio::pin!(send, receive);
                let mut sent = None;
                let response = loop {
                    tokio::select! {
                        r = &mut send, if sent.is_none() => sent = Some(r?),
                        r = &mut receive => break r?,
                    }
                };
                let whole_body = sent == Some(true);
                deliver(&mut client_write, response, &fault).await?;
                if !whole_body {
                    return Ok(());
                }
                continue;
            }
        };
        let response = read_response(up_read, &method).await?;
        let close = response.2;
        deliver(&mut client_write, response, &fault).await?;
        if close || !whole_body {
            return Ok(());
        }
    }
}

/// Sends the server's answer to the client, altered by `fault`; an error ends the connection
/// (for `DropResponse`, before a byte of the answer).
async fn deliver<W: AsyncWrite + Unpin>(
    w: &mut W,
    (body, head, close): (Vec<u8>, Head, bool),
    fault: &Option<Fault>,
) -> std::io::Result<()> {
    let head = match fault {
        Some(Fault::DropResponse) => return Err(io_err("answer dropped on purpose")),
        Some(Fault::SetResponseHeader(name, value)) => with_header(&head, name, value.as_deref()),
        Some(Fault::CorruptAnswer { at }) => {
            let mut body = body;
            if let Some(byte) = usize::try_from(*at).ok().and_then(|at| body.get_mut(at)) {
                *byte ^= 0x01;
            }
            w.write_all(&head.raw).await?;
            w.write_all(&body).await?;
            w.flush().await?;
            return Ok(());
        }
        Some(Fault::CutAnswer { after }) => {
            let cut = usize::try_from(*after)
                .unwrap_or(usize::MAX)
                .min(body.len());
            w.write_all(&head.raw).await?;
            w.write_all(&body[..cut]).await?;
            w.flush().await?;
            return Err(io_err("answer cut on purpose"));
        }
        _ => head.raw,
    };
    w.write_all(&head).await?;
    w.write_all(&body).await?;
    w.flush().await?;
    if close {
        return Err(io_err("server closed the connection"));
    }
    Ok(())
}
