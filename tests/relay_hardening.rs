//! The relay under hostile load, over real sockets against an in-process relay on the embedded
//! store: slow and idle clients, token guessers, huge requests. Clients on other addresses are
//! real sockets bound to other loopback addresses (127.0.0.0/8 is all loopback on Linux).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use s3share::relay::{
    Grant, Methods, RelayServer, RelayState, Scope, Secret, ServerConfig, limits::LimitsConfig,
    make_link,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::TestServer;

struct Relay {
    server: RelayServer,
    secret: Secret,
    s: TestServer,
}

impl Relay {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The path of a read link to `key` made with `secret`.
    fn path(&self, secret: &Secret, key: &str) -> String {
        let grant = Grant::new(
            &self.s.bucket,
            Scope::Key(key.into()),
            Methods::READ,
            SystemTime::now() + Duration::from_secs(3600),
        );
        let url = make_link(&grant, secret, "").unwrap().url;
        assert!(url.starts_with('/'), "{url}");
        url
    }

    fn valid(&self) -> String {
        self.path(&self.secret, "k.txt")
    }

    fn forged(&self) -> String {
        self.path(&Secret::random(), "k.txt")
    }
}

async fn start(config: ServerConfig) -> Relay {
    let s = crate::support::embedded().await;
    let secret = Secret::random();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = RelayState::new(secret.clone(), Arc::new(s.client.clone()), addr, None).unwrap();
    let server = RelayServer::serve(
        listener,
        Arc::new(state),
        ServerConfig {
            listen: addr,
            ..config
        },
    )
    .unwrap();
    Relay { server, secret, s }
}

/// A connection from `from` (a loopback address) to the relay.
async fn connect(from: &str, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(to).await
}

/// What one request got: status (0 when the connection was closed without an answer), the
/// response head (lower case), and how long it took.
struct Answer {
    status: u16,
    head: String,
    took: Duration,
}

/// Sends one request on a new connection from `from` and reads the answer (bounded wait).
async fn send(from: &str, to: SocketAddr, request: &[u8]) -> Answer {
    let started = Instant::now();
    let mut buf = Vec::new();
    if let Ok(mut c) = connect(from, to).await {
        // The relay may answer and close before taking a huge request whole: that is fine.
        let _ = c.write_all(request).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf)).await;
    }
    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head,
        took: started.elapsed(),
    }
}

fn get(relay: &Relay, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        relay.addr()
    )
    .into_bytes()
}

/// The test holds both ends of hundreds of connections: make sure it may.
fn raise_fd_limit() {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(8192);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// 600 connections (more than the relay's 512 slots), half idle, half sending a request head
/// byte by byte, all from loopback like the real client: the real client is still answered at
/// once, again and again, with the shipped settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_never_keep_others_waiting() {
    raise_fd_limit();
    let relay = start(ServerConfig::default()).await;
    let addr = relay.addr();
    let mut slow = Vec::new();
    for _ in 0..600 {
        slow.push(connect("127.0.0.1", addr).await.unwrap());
    }
    let head = format!("GET /abc HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        tokio::spawn(async move {
            // Every other connection sends one more byte of its head every 50 ms.
            for byte in head.bytes().chain(std::iter::repeat(b'x')) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for c in slow.iter_mut().step_by(2) {
                    let _ = c.write_all(&[byte]).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            slow
        })
    };
    for i in 0..5 {
        let a = send("127.0.0.1", addr, &get(&relay, &relay.valid())).await;
        assert_eq!(
            a.status, 307,
            "request {i}: {:?} after {:?}",
            a.head, a.took
        );
        assert!(a.took < Duration::from_secs(2), "request {i}: {:?}", a.took);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(trickle.await.unwrap());
}

/// A client spamming forged tokens gets slowed and then 429 with Retry-After, while the same
/// client with a valid link, and another client, are answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guessing_is_slowed_but_valid_links_are_not() {
    let relay = start(ServerConfig::default()).await;
    let addr = relay.addr();
    let forged = get(&relay, &relay.forged());
    let valid = get(&relay, &relay.valid());
    let mut throttled = None;
    for i in 0..200 {
        let a = send("127.0.0.1", addr, &forged).await;
        if a.status == 429 {
            throttled = Some((i, a));
            break;
        }
        assert_eq!(a.status, 403, "forged token #{i}: {}", a.head);
    }
    let (i, a) = throttled.expect("200 forged tokens in a row were never throttled");
    assert!(i >= 30, "throttled after only {i} refusals");
    assert!(
        a.head.contains("\r\nretry-after: "),
        "429 without Retry-After: {}",
        a.head
    );
    assert!(
        a.took >= Duration::from_millis(500),
        "the 429 was not slowed: {:?}",
        a.took
    );
    // The same client with a valid link: a redirect, at once.
    let a = send("127.0.0.1", addr, &valid).await;
    assert_eq!(a.status, 307, "{}", a.head);
    assert!(a.took < Duration::from_millis(500), "{:?}", a.took);
    // Another client: its mistakes are its own.
    let a = send("127.0.0.2", addr, &forged).await;
    assert_eq!(a.status, 403, "{}", a.head);
    assert!(a.took < Duration::from_millis(500), "{:?}", a.took);
    let a = send("127.0.0.2", addr, &valid).await;
    assert_eq!(a.status, 307, "{}", a.head);
    // The guesser is still slowed (its bucket regains one refusal a second, no more).
    let mut again = Vec::new();
    for _ in 0..2 {
        again.push(send("127.0.0.1", addr, &forged).await.status);
    }
    assert!(again.contains(&429), "{again:?}");
}

/// A URI longer than any link can be and headers beyond the limit are refused before any
/// token is looked at; the relay keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_uri_and_headers_are_refused() {
    let relay = start(ServerConfig::default()).await;
    let addr = relay.addr();
    // A real token followed by a path no S3 key can be (keys are at most 1024 bytes).
    let long = format!("{}/{}", relay.valid(), "a".repeat(9000));
    let a = send("127.0.0.1", addr, &get(&relay, &long)).await;
    assert_eq!(a.status, 414, "{}", a.head);
    let big_header = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        relay.valid(),
        "b".repeat(20 * 1024)
    );
    let a = send("127.0.0.1", addr, big_header.as_bytes()).await;
    assert_eq!(a.status, 431, "{}", a.head);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_headers = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\n{many}Connection: close\r\n\r\n",
        relay.valid()
    );
    let a = send("127.0.0.1", addr, many_headers.as_bytes()).await;
    assert_eq!(a.status, 431, "{}", a.head);
    assert!(!a.head.contains("location:"));
    let a = send("127.0.0.1", addr, &get(&relay, &relay.valid())).await;
    assert_eq!(a.status, 307, "{}", a.head);
}

/// Refusals from many addresses keep the table of tracked clients within its cap, without
/// letting a guesser shake off its record by flooding the table from other addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_table_stays_bounded() {
    let relay = start(ServerConfig {
        limits: LimitsConfig {
            refusal_burst: 3,
            refusal_refill: Duration::from_secs(3600),
            refusal_delay: Duration::from_millis(20),
            max_tracked_clients: 8,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let addr = relay.addr();
    let forged = get(&relay, &relay.forged());
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(send("127.0.0.2", addr, &forged).await.status);
        }
        v
    };
    assert_eq!(statuses, [403, 403, 403, 429]);
    for i in 10..60 {
        let a = send(&format!("127.0.0.{i}"), addr, &forged).await;
        assert!(matches!(a.status, 403 | 429), "127.0.0.{i}: {}", a.head);
        assert!(
            relay.server.tracked_clients() <= 8,
            "{} clients tracked",
            relay.server.tracked_clients()
        );
    }
    assert_eq!(send("127.0.0.2", addr, &forged).await.status, 429);
    let a = send("127.0.0.200", addr, &get(&relay, &relay.valid())).await;
    assert_eq!(a.status, 307, "{}", a.head);
}
