//! What the relay serves itself, against real S3 servers: bytes streamed through it (the
//! embedded store's mode, and uploads from the upload page) with the real `curl`, folder
//! index pages and their JSON, and the pages in a real headless Chromium driven over WebDriver
//! (`chromedriver`, Debian `chromium-driver`): the index renders, a file's link downloads the
//! right bytes, and a file picked on the upload page arrives byte for byte.
//!
//! Why WebDriver: it is plain HTTP + JSON, which the tests already speak (reqwest, serde_json),
//! so no new crate; and unlike `--dump-dom` it drives the real page — its file input, its
//! script's XMLHttpRequest PUT through the relay, its progress and outcome — rather than a test
//! mode of the page. A drop needs a real drag from the desktop, which no headless driver
//! performs: the test dispatches the drop event a browser would build (a `DataTransfer` with a
//! `File` of known bytes) to the page's own handler.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use s3share::relay::{
    Grant, Methods, RelayServer, RelayState, Scope, Secret, ServerConfig, make_link,
};

use crate::on_both_servers;
use crate::support::{TestServer, put_via_link, random_file, stored};

/// Runs curl off the runtime's threads; returns (stdout, exit code, stderr).
async fn curl(args: Vec<String>) -> (String, i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-sS", "--noproxy", "*", "--max-time", "30"])
            .args(&args)
            .output()
            .expect("the relay tests need the curl binary (Debian package `curl`)");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// curl printing only the status code (`-w %{http_code}`), body to `out`.
async fn curl_status(out: &Path, args: &[&str]) -> String {
    let mut v: Vec<String> = vec![
        "-o".into(),
        out.display().to_string(),
        "-w".into(),
        "%{http_code}".into(),
    ];
    v.extend(args.iter().map(|s| (*s).to_owned()));
    let (code, exit, err) = curl(v).await;
    assert_eq!(exit, 0, "curl {args:?}: {err}");
    code
}

struct Relay {
    server: RelayServer,
    secret: Secret,
}

impl Relay {
    fn link(&self, g: &Grant) -> String {
        make_link(
            g,
            &self.secret,
            &format!("http://{}", self.server.local_addr()),
        )
        .unwrap()
        .url
    }
}

/// A relay in front of `s`; `streaming`: every request streamed (the embedded store's mode).
async fn start_relay(s: &TestServer, streaming: bool, page_size: usize) -> Relay {
    start_relay_with(s, streaming, page_size, ServerConfig::default()).await
}

async fn start_relay_with(
    s: &TestServer,
    streaming: bool,
    page_size: usize,
    config: ServerConfig,
) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let secret = Secret::random();
    let mut state =
        RelayState::new(secret.clone(), Arc::new(s.client.clone()), addr, None).unwrap();
    if streaming {
        state = state.streaming_everything();
    }
    state.page_size = page_size;
    let config = ServerConfig {
        listen: addr,
        ..config
    };
    let server = RelayServer::serve(listener, Arc::new(state), config).unwrap();
    Relay { server, secret }
}

fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn methods(read: bool, put: bool, delete: bool) -> Methods {
    Methods { read, put, delete }
}

/// The response headers curl printed with `-D -` (lower-cased).
fn headers_of(dump: &str) -> String {
    dump.to_ascii_lowercase()
}

/// Downloads, ranges, HEAD, uploads, refusals and deletes through a relay that streams (no
/// redirect ever), byte for byte.
async fn curl_streams_through_the_relay(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(s, true, 1000).await;
    let mut g = Grant::new(
        &s.bucket,
        Scope::Prefix("team drop/".into()),
        methods(true, true, true),
        later(),
    );
    g.max_size = Some(4 << 20);
    let base = relay.link(&g);
    let key = "team drop/ünï + #1.bin";
    let name = "%C3%BCn%C3%AF%20%2B%20%231.bin";
    let file = random_file(dir.path(), "up.bin", 3 << 20, 11);
    let out = dir.path().join("out");

    // Upload: plain `curl -T`, no -L: the relay takes the body and streams it on.
    let code = curl_status(
        &out,
        &["-T", &file.display().to_string(), &format!("{base}{name}")],
    )
    .await;
    assert_eq!(code, "200", "{}: upload: {}", s.name, read(&out));
    assert_eq!(
        stored(s, key).await.as_deref(),
        Some(std::fs::read(&file).unwrap().as_slice()),
        "{}: uploaded bytes",
        s.name
    );

    // Download, without -L: the bytes come from the relay itself.
    let (dump, exit, err) = curl(vec![
        "-D".into(),
        "-".into(),
        "-o".into(),
        out.display().to_string(),
        format!("{base}{name}"),
    ])
    .await;
    assert_eq!(exit, 0, "{err}");
    let h = headers_of(&dump);
    assert!(h.starts_with("http/1.1 200"), "{}: {dump}", s.name);
    assert!(
        !h.contains("\r\nlocation:"),
        "{}: redirected: {dump}",
        s.name
    );
    assert!(
        h.contains(&format!("\r\ncontent-length: {}\r\n", 3 << 20)),
        "{dump}"
    );
    assert!(
        !h.contains("x-amz-"),
        "storage's own headers stay behind: {dump}"
    );
    // Served from the relay's origin, a file never runs script there.
    assert!(
        h.contains("\r\ncontent-security-policy: sandbox\r\n"),
        "{dump}"
    );
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&file).unwrap());

    // A range, passed through to storage.
    let (dump, exit, err) = curl(vec![
        "-D".into(),
        "-".into(),
        "-o".into(),
        out.display().to_string(),
        "-r".into(),
        "1000-1999".into(),
        format!("{base}{name}"),
    ])
    .await;
    assert_eq!(exit, 0, "{err}");
    let h = headers_of(&dump);
    assert!(h.starts_with("http/1.1 206"), "{}: {dump}", s.name);
    assert!(
        h.contains(&format!("content-range: bytes 1000-1999/{}", 3 << 20)),
        "{dump}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&file).unwrap()[1000..2000]
    );

    // HEAD as HTTP says: the GET's headers, no body.
    let (dump, exit, err) = curl(vec!["-I".into(), format!("{base}{name}")]).await;
    assert_eq!(exit, 0, "{err}");
    let h = headers_of(&dump);
    assert!(h.starts_with("http/1.1 200"), "{dump}");
    assert!(
        h.contains(&format!("content-length: {}", 3 << 20)),
        "{dump}"
    );

    // No overwrite: refused, the stored bytes stay.
    let other = random_file(dir.path(), "other.bin", 1000, 12);
    let code = curl_status(
        &out,
        &["-T", &other.display().to_string(), &format!("{base}{name}")],
    )
    .await;
    assert_eq!(code, "412", "{}: {}", s.name, read(&out));
    assert_eq!(
        stored(s, key).await.unwrap().len(),
        3 << 20,
        "{}: replaced",
        s.name
    );

    // Over the cap: refused before any byte is taken, nothing stored.
    let big = random_file(dir.path(), "big.bin", (4 << 20) + 1, 13);
    let code = curl_status(
        &out,
        &["-T", &big.display().to_string(), &format!("{base}big.bin")],
    )
    .await;
    assert_eq!(code, "413", "{}: {}", s.name, read(&out));
    assert!(stored(s, "team drop/big.bin").await.is_none());

    // Missing file: the relay's own 404, not storage's XML.
    let code = curl_status(&out, &[&format!("{base}nothing.txt")]).await;
    assert_eq!(code, "404", "{}", s.name);
    assert!(!read(&out).contains("<?xml"), "{}", read(&out));

    // DELETE, allowed by this link.
    let code = curl_status(&out, &["-X", "DELETE", &format!("{base}{name}")]).await;
    assert!(code == "204" || code == "200", "{}: delete: {code}", s.name);
    assert!(stored(s, key).await.is_none(), "{}: still there", s.name);
    // A read-only link streams reads and refuses the rest.
    let ro = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix("team drop/".into()),
        Methods::READ,
        later(),
    ));
    let code = curl_status(
        &out,
        &["-T", &other.display().to_string(), &format!("{ro}x.bin")],
    )
    .await;
    assert_eq!(code, "403", "{}", s.name);
    assert!(stored(s, "team drop/x.bin").await.is_none());
}

/// The relay forwards an upload while its body is still arriving (nothing buffered whole),
/// sends storage one `Content-Length` (a strict proxy refuses repeated headers) and the
/// signed `If-None-Match`, and passes a `Range` on rather than slicing the bytes itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_reaches_storage_before_its_body_ends() {
    use crate::support::proxy::{Kind, Proxy};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = crate::support::embedded().await;
    let proxy = Proxy::start(&s.endpoint).await;
    let via_proxy = TestServer {
        client: s.client_at(&proxy.endpoint, Default::default()),
        name: "embedded via proxy",
        bucket: s.bucket.clone(),
        _connection: None,
        _dir: None,
        endpoint: proxy.endpoint.clone(),
        access_key: s.access_key.clone(),
        secret_key: s.secret_key.clone(),
    };
    let relay = start_relay(&via_proxy, true, 1000).await;
    let base = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix("big/".into()),
        methods(true, true, false),
        later(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::read(random_file(dir.path(), "f", 2 << 20, 21)).unwrap();
    let addr = relay.server.local_addr();
    let path = base.split_once(&addr.to_string()).unwrap().1.to_owned();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!(
            "PUT {path}f.bin HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            file.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    conn.write_all(&file[..1 << 20]).await.unwrap();
    // Half the body sent, the rest held back: storage must already have the request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.seen_of(Kind::PutObject).is_empty() {
        assert!(
            Instant::now() < deadline,
            "storage saw no upload while the body was still arriving: {:?}",
            proxy.seen()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.write_all(&file[1 << 20..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer))
        .await
        .expect("the relay answers")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(stored(&s, "big/f.bin").await.unwrap(), file);
    let put = &proxy.seen_of(Kind::PutObject)[0];
    assert_eq!(put.header("content-length"), [(2 << 20).to_string()]);
    assert_eq!(put.header("if-none-match"), ["*"]);
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());

    // A client that gives up half-way: an error, and no partial object.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!(
            "PUT {path}partial.bin HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
            file.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    conn.write_all(&file[..1 << 20]).await.unwrap();
    conn.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer))
        .await
        .expect("the relay answers or closes");
    let answer = String::from_utf8_lossy(&answer);
    // The answer comes once the forwarded request has failed: a safe moment to look.
    assert!(
        answer.starts_with("HTTP/1.1 502") && answer.contains("broke off"),
        "{answer}"
    );
    assert!(stored(&s, "big/partial.bin").await.is_none());

    let out = dir.path().join("out");
    let code = curl_status(&out, &["-r", "10-19", &format!("{base}f.bin")]).await;
    assert_eq!(code, "206");
    assert_eq!(std::fs::read(&out).unwrap(), file[10..20]);
    let get = proxy.seen_of(Kind::GetObject);
    assert_eq!(get.last().unwrap().header("range"), ["bytes=10-19"]);
}

fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

/// Keys whose names break naive HTML or URL handling.
const PAGE_KEYS: &[&str] = &[
    "idx/<img src=x onerror=alert(1)> & \"quoted\" 's'.txt",
    "idx/with space #1?.txt",
    "idx/100% + plus.txt",
    "idx/ünïcødé 文件.txt",
    "idx/sub/inner.txt",
    "idx/zz last.txt",
];

/// The JSON listing, page by page (following `next`), and the HTML page's escaping and headers.
async fn folder_index_lists_escapes_and_pages(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    for key in PAGE_KEYS.iter().chain([&".s3share/ledger/secret-link"]) {
        put_via_link(&s.client, &s.bucket, key, format!("bytes of {key}"))
            .await
            .error_for_status()
            .unwrap();
    }
    // Two entries a page: the listing takes several pages.
    let relay = start_relay(s, false, 2).await;
    let base = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix("idx/".into()),
        Methods::READ,
        later(),
    ));
    let out = dir.path().join("out");
    let mut names = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let code = curl_status(
            &out,
            &["-H", "Accept: application/json", &format!("{base}{next}")],
        )
        .await;
        assert_eq!(code, "200", "{}: {}", s.name, read(&out));
        let v: serde_json::Value = serde_json::from_str(&read(&out)).unwrap();
        for f in v["folders"].as_array().unwrap() {
            names.push(f["name"].as_str().unwrap().to_owned());
        }
        for f in v["files"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap().to_owned();
            // Each href, followed with curl -L, gives that file's bytes.
            let href = f["href"].as_str().unwrap();
            let code = curl_status(&out, &["-L", &format!("{base}{}", &href[2..])]).await;
            assert_eq!(code, "200", "{}: {name}", s.name);
            assert_eq!(read(&out), format!("bytes of idx/{name}"));
            names.push(name);
        }
        pages += 1;
        match v["next"].as_str() {
            Some(n) => next = n.to_owned(),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert!(pages >= 3, "{}: {pages} pages", s.name);
    let mut expected: Vec<String> = PAGE_KEYS
        .iter()
        .map(|k| k.strip_prefix("idx/").unwrap().to_owned())
        .filter(|k| !k.starts_with("sub/"))
        .chain(["sub/".to_owned()])
        .collect();
    expected.sort();
    names.sort();
    assert_eq!(names, expected, "{}", s.name);

    // The HTML page: escaped names, strict headers, no redirect, no ledger.
    let (dump, exit, err) = curl(vec![
        "-D".into(),
        dir.path().join("h").display().to_string(),
        "-H".into(),
        "Accept: text/html".into(),
        base.clone(),
    ])
    .await;
    assert_eq!(exit, 0, "{err}");
    let h = read(&dir.path().join("h")).to_ascii_lowercase();
    assert!(h.starts_with("http/1.1 200"), "{h}");
    assert!(
        h.contains("content-security-policy: default-src 'none'"),
        "{h}"
    );
    assert!(h.contains("referrer-policy: no-referrer"), "{h}");
    assert!(h.contains("x-content-type-options: nosniff"), "{h}");
    assert!(!h.contains("access-control-allow"), "{h}");
    assert!(
        dump.contains(
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot; &#39;s&#39;.txt"
        )
    );
    assert!(!dump.contains("<img"), "{dump}");
    assert!(!dump.contains("s3share/ledger") && !dump.contains("secret-link"));
    // The bucket root's reserved folder cannot be listed even by a link that covers it.
    let root = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix(".s3share/".into()),
        Methods::READ,
        later(),
    ));
    let code = curl_status(&out, &["-H", "Accept: application/json", &root]).await;
    assert_eq!(code, "404", "{}", s.name);
    // HEAD: the page's length, no body.
    let (dump, _, _) = curl(vec![
        "-I".into(),
        "-H".into(),
        "Accept: text/html".into(),
        base,
    ])
    .await;
    let h = dump.to_ascii_lowercase();
    assert!(
        h.starts_with("http/1.1 200") && h.contains("content-length: "),
        "{dump}"
    );
}

/// A link to a whole bucket (`link --relay s3://bucket/`): its index page and JSON, a
/// sub-folder's breadcrumb back to it, its upload page, never the reserved `.s3share/`.
async fn bucket_root_links_work(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    for key in ["top.txt", "sub/inner.txt", ".s3share/ledger/secret-link"] {
        put_via_link(&s.client, &s.bucket, key, format!("bytes of {key}"))
            .await
            .error_for_status()
            .unwrap();
    }
    let relay = start_relay(s, false, 1000).await;
    let base = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix(String::new()),
        Methods::READ,
        later(),
    ));
    assert!(base.ends_with('/'), "{base}");
    let out = dir.path().join("out");
    let code = curl_status(&out, &["-H", "Accept: application/json", &base]).await;
    assert_eq!(code, "200", "{}: the root's JSON: {}", s.name, read(&out));
    let v: serde_json::Value = serde_json::from_str(&read(&out)).unwrap();
    assert_eq!(v["folder"], "", "{}", s.name);
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("files"), ["top.txt"], "{}", s.name);
    assert_eq!(names("folders"), ["sub/"], "{}: no .s3share/", s.name);
    let href = v["files"][0]["href"].as_str().unwrap();
    let code = curl_status(&out, &["-L", &format!("{base}{}", &href[2..])]).await;
    assert_eq!(
        (code.as_str(), read(&out).as_str()),
        ("200", "bytes of top.txt")
    );

    let code = curl_status(&out, &["-H", "Accept: text/html", &base]).await;
    assert_eq!(code, "200", "{}: the root's page", s.name);
    let html = read(&out);
    assert!(html.contains("href=\"./top.txt\""), "{html}");
    assert!(
        !html.contains("s3share/") && !html.contains("secret-link"),
        "{html}"
    );

    // A sub-folder's page leads back to the root, which opens.
    let code = curl_status(&out, &["-H", "Accept: text/html", &format!("{base}sub/")]).await;
    assert_eq!(code, "200", "{}", s.name);
    let html = read(&out);
    let crumb = html
        .split("<nav")
        .nth(1)
        .and_then(|n| n.split("href=\"").nth(1))
        .and_then(|h| h.split('"').next())
        .unwrap_or_else(|| panic!("no breadcrumb: {html}"));
    let back = reqwest::Url::parse(&format!("{base}sub/"))
        .unwrap()
        .join(crumb)
        .unwrap();
    assert_eq!(back.as_str(), base, "{}: the breadcrumb", s.name);
    let code = curl_status(&out, &["-H", "Accept: text/html", back.as_str()]).await;
    assert_eq!(code, "200", "{}: back at the root", s.name);

    // The reserved prefix stays hidden, and path tricks stay refused, at the root too.
    for tail in [".s3share/", ".s3share/ledger/secret-link"] {
        let code = curl_status(&out, &["-L", &format!("{base}{tail}")]).await;
        assert_eq!(code, "404", "{}: {tail}", s.name);
        assert!(!read(&out).contains("bytes of"), "{}: {tail}", s.name);
    }
    for tail in ["/", "%2e%2e/", "..%2ftop.txt", "%2Ftop.txt"] {
        let code = curl_status(&out, &["--path-as-is", &format!("{base}{tail}")]).await;
        assert_eq!(code, "400", "{}: {tail}", s.name);
    }

    // An upload link to the whole bucket: its page opens, and a file sent from it arrives.
    let up = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix(String::new()),
        Methods::UPLOAD,
        later(),
    ));
    let code = curl_status(&out, &["-H", "Accept: text/html", &up]).await;
    assert_eq!(code, "200", "{}: the upload page", s.name);
    assert!(read(&out).contains("<h1>Upload to "), "{}", read(&out));
    let file = random_file(dir.path(), "up.bin", 5000, 3);
    let code = curl_status(
        &out,
        &[
            "-H",
            "X-S3share-Stream: 1",
            "-T",
            &file.display().to_string(),
            &format!("{up}from%20page.bin"),
        ],
    )
    .await;
    assert_eq!(code, "200", "{}: {}", s.name, read(&out));
    assert_eq!(
        stored(s, "from page.bin").await.as_deref(),
        Some(std::fs::read(&file).unwrap().as_slice())
    );
}

/// A range beyond the end of a streamed file: the relay's own short answer with the file's
/// size (`Content-Range: bytes */SIZE`), never storage's XML error.
async fn unsatisfiable_ranges_get_the_relays_answer(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    put_via_link(&s.client, &s.bucket, "ranged.bin", vec![7u8; 1000])
        .await
        .error_for_status()
        .unwrap();
    let relay = start_relay(s, true, 1000).await;
    let url = relay.link(&Grant::new(
        &s.bucket,
        Scope::Key("ranged.bin".into()),
        Methods::READ,
        later(),
    ));
    let out = dir.path().join("out");
    let (dump, exit, err) = curl(vec![
        "-D".into(),
        "-".into(),
        "-o".into(),
        out.display().to_string(),
        "-r".into(),
        "5000-5999".into(),
        url,
    ])
    .await;
    assert_eq!(exit, 0, "{err}");
    let h = headers_of(&dump);
    assert!(h.starts_with("http/1.1 416"), "{}: {dump}", s.name);
    assert!(
        h.contains("\r\ncontent-range: bytes */1000\r\n"),
        "{}: no size: {dump}",
        s.name
    );
    assert!(
        h.contains("\r\ncontent-type: text/plain") && !h.contains("x-amz-"),
        "{}: {dump}",
        s.name
    );
    let body = read(&out);
    assert!(
        !body.contains('<') && !body.contains("InvalidRange"),
        "{}: storage's body: {body}",
        s.name
    );
    assert!(body.contains("not within the file"), "{}: {body}", s.name);
}

/// An index lists names in the order people expect (`f2` before `f10`, case aside), in the
/// page and its JSON alike, not in storage's byte order (f1, f10, f100, f2).
async fn index_lists_names_naturally(s: &TestServer) {
    for key in [
        "n/f10.txt",
        "n/f1.txt",
        "n/F3.txt",
        "n/f100.txt",
        "n/f2.txt",
        "n/d10/x",
        "n/d9/x",
    ] {
        put_via_link(&s.client, &s.bucket, key, "x")
            .await
            .error_for_status()
            .unwrap();
    }
    let relay = start_relay(s, false, 1000).await;
    let base = relay.link(&Grant::new(
        &s.bucket,
        Scope::Prefix("n/".into()),
        Methods::READ,
        later(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let code = curl_status(&out, &["-H", "Accept: application/json", &base]).await;
    assert_eq!(code, "200", "{}: {}", s.name, read(&out));
    let v: serde_json::Value = serde_json::from_str(&read(&out)).unwrap();
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names("files"),
        ["f1.txt", "f2.txt", "F3.txt", "f10.txt", "f100.txt"],
        "{}",
        s.name
    );
    assert_eq!(names("folders"), ["d9/", "d10/"], "{}", s.name);
    let code = curl_status(&out, &["-H", "Accept: text/html", &base]).await;
    assert_eq!(code, "200", "{}", s.name);
    let html = read(&out);
    let at = |name: &str| html.find(&format!(">{name}</a>")).unwrap();
    assert!(
        at("d9/") < at("d10/")
            && at("f2.txt") < at("F3.txt")
            && at("F3.txt") < at("f10.txt")
            && at("f10.txt") < at("f100.txt"),
        "{}: {html}",
        s.name
    );
}

on_both_servers!(
    curl_streams_through_the_relay,
    index_lists_names_naturally,
    folder_index_lists_escapes_and_pages,
    bucket_root_links_work,
    unsatisfiable_ranges_get_the_relays_answer
);

// ---- Headless Chromium over WebDriver ----

/// `chromedriver` and one browser session; both end when this is dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn start() -> Self {
        for tool in ["chromium", "chromedriver"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "the relay page tests need {tool} (Debian packages `chromium` and `chromium-driver`): install them"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-proxy-server"]
            }
        }}});
        let mut b = Self {
            driver,
            base,
            session: String::new(),
            http,
        };
        let v = b.call("POST", "/session", caps).await;
        b.session = v["sessionId"].as_str().expect("a session").to_owned();
        b
    }

    async fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "POST" => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let r = req.timeout(Duration::from_secs(60)).send().await.unwrap();
        let status = r.status();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        if !status.is_success() {
            return Err(format!("WebDriver {method} {path}: {v}"));
        }
        Ok(v["value"].clone())
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", serde_json::json!({ "url": url }))
            .await;
    }

    async fn js(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            "/execute/sync",
            serde_json::json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Polls `script` until it returns something other than `null` (bounded).
    async fn wait_for(&self, script: &str, what: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A script may meet a page between two documents (a navigation under way): an
            // error then only means "not yet".
            let v = self
                .try_call(
                    "POST",
                    "/execute/sync",
                    serde_json::json!({ "script": script, "args": [] }),
                )
                .await;
            match v {
                Ok(v) if !v.is_null() => return v,
                Ok(_) => {}
                Err(e) if Instant::now() >= deadline => panic!("waiting for {what}: {e}"),
                Err(_) => {}
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Quits the browser, then (on drop) the driver.
    async fn quit(mut self) {
        self.call("DELETE", "", serde_json::Value::Null).await;
        self.session.clear();
    }

    /// Picks `file` in the page's file input, as a user choosing it in the dialog.
    async fn pick(&self, selector: &str, file: &Path) {
        let el = self
            .call(
                "POST",
                "/element",
                serde_json::json!({"using": "css selector", "value": selector}),
            )
            .await;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .expect("element id")
            .to_owned();
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            serde_json::json!({ "text": file.display().to_string() }),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed half-way still quits the browser (a killed driver would leave
        // Chromium running): a last, blocking DELETE of the session, answered within seconds.
        if !self.session.is_empty() {
            use std::io::{Read as _, Write as _};
            let addr = self.base.trim_start_matches("http://").to_owned();
            if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = write!(
                    c,
                    "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                    self.session
                );
                // The answer's first bytes: the session is gone by then.
                let _ = c.read(&mut [0u8; 64]);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One page visit and one upload per server, in one browser: the embedded store (every
/// request streamed) and SeaweedFS (downloads redirected, page uploads streamed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_index_downloads_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let (embedded, seaweed) = tokio::join!(crate::support::embedded(), crate::support::seaweed());
    let browser = Browser::start().await;
    for (i, (s, streaming)) in [(&embedded, true), (&seaweed, false)]
        .into_iter()
        .enumerate()
    {
        browser_round(&browser, s, streaming, dir.path(), i as u64).await;
    }
    // Dropping the browser quits it (blocking briefly): off the runtime's threads.
    browser.quit().await;
}

async fn browser_round(b: &Browser, s: &TestServer, streaming: bool, dir: &Path, seed: u64) {
    // ASCII: a text file stored without a charset is shown by browsers as windows-1252.
    let text = format!("hello from {} <not markup> & more\n", s.name);
    put_via_link(
        &s.client,
        &s.bucket,
        "page/hello wörld #1.txt",
        text.clone(),
    )
    .await
    .error_for_status()
    .unwrap();
    put_via_link(&s.client, &s.bucket, "page/sub/x.txt", "x")
        .await
        .error_for_status()
        .unwrap();
    let relay = start_relay(s, streaming, 1000).await;
    let mut g = Grant::new(
        &s.bucket,
        Scope::Prefix("page/".into()),
        methods(true, true, false),
        later(),
    );
    g.max_size = Some(8 << 20);
    let link = relay.link(&g);

    // The index renders: its rows, as the browser parsed them.
    b.goto(&link).await;
    let rows = b
        .js("return Array.from(document.querySelectorAll('tbody tr td.n a')).map(a => a.textContent)")
        .await;
    assert_eq!(
        rows,
        serde_json::json!(["sub/", "hello wörld #1.txt"]),
        "{}",
        s.name
    );
    assert_eq!(b.js("return document.title").await, "page");

    // Following a file's link: the browser shows the file's bytes.
    b.js("document.querySelector('a[href*=\"hello\"]').click(); return null")
        .await;
    let shown = b
        .wait_for(
            "return (location.href.indexOf('hello') >= 0 && document.readyState === 'complete') ? document.body.innerText : null",
            "the file's page",
        )
        .await;
    assert_eq!(
        shown.as_str().unwrap().trim_end(),
        text.trim_end(),
        "{}",
        s.name
    );

    // The upload page: pick a file; it arrives byte for byte.
    b.goto(&link).await;
    let file: PathBuf = random_file(dir, &format!("picked {seed} ü.bin"), (2 << 20) + 17, seed);
    b.pick("#pick", &file).await;
    let outcome = b
        .wait_for(
            "var s = document.querySelector('#files .state.ok, #files .state.err'); return s ? s.textContent : null",
            "the upload's outcome",
        )
        .await;
    assert_eq!(outcome.as_str().unwrap().trim(), "uploaded", "{}", s.name);
    let key = format!("page/picked {seed} ü.bin");
    assert!(
        stored(s, &key).await.as_deref() == Some(std::fs::read(&file).unwrap().as_slice()),
        "{}: the picked file's bytes",
        s.name
    );
    // The same file again: a clear refusal, the stored bytes untouched.
    b.pick("#pick", &file).await;
    let outcome = b
        .wait_for(
            "var s = document.querySelectorAll('#files .state.ok, #files .state.err'); return s.length > 1 ? s[1].textContent : null",
            "the second upload's outcome",
        )
        .await;
    assert!(
        outcome.as_str().unwrap().contains("already exists"),
        "{}: {outcome}",
        s.name
    );

    // A drop: no headless driver drags from a desktop, so the test builds the drop event a
    // browser would (a DataTransfer holding a File of known bytes) and hands it to the page's
    // own drop handler; the page's code takes it from there.
    use base64::Engine as _;
    let dropped: Vec<u8> = (0..100_000u32)
        .map(|i| (i * 31 + seed as u32) as u8)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&dropped);
    b.call(
        "POST",
        "/execute/sync",
        serde_json::json!({
            "script": "var bytes = Uint8Array.from(atob(arguments[0]), function (c) { return c.charCodeAt(0); });\
                var dt = new DataTransfer();\
                dt.items.add(new File([bytes], arguments[1]));\
                document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));\
                return null;",
            "args": [b64, "dropped & 文件 #1.bin"],
        }),
    )
    .await;
    let outcome = b
        .wait_for(
            "var s = document.querySelectorAll('#files .state.ok, #files .state.err'); return s.length > 2 ? s[2].textContent : null",
            "the dropped file's outcome",
        )
        .await;
    assert_eq!(outcome.as_str().unwrap().trim(), "uploaded", "{}", s.name);
    assert!(
        stored(s, "page/dropped & 文件 #1.bin").await.as_deref() == Some(dropped.as_slice()),
        "{}: the dropped file's bytes",
        s.name
    );

    // A file over the link's cap is refused by the page itself, with the cap as people read
    // it (it said "up to 8388608 bytes").
    b.js("var dt = new DataTransfer();\
          dt.items.add(new File([new Uint8Array((8 << 20) + 1)], 'too big.bin'));\
          document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));\
          return null;")
        .await;
    let outcome = b
        .wait_for(
            "var s = document.querySelectorAll('#files .state.ok, #files .state.err'); return s.length > 3 ? s[3].textContent : null",
            "the too big file's outcome",
        )
        .await;
    assert_eq!(
        outcome.as_str().unwrap().trim(),
        "not sent: this link accepts files up to 8.00 MiB",
        "{}",
        s.name
    );
    assert!(stored(s, "page/too big.bin").await.is_none(), "{}", s.name);
}

/// `s3share serve` on the embedded store streams (a teammate could not follow a redirect to
/// the sharer's 127.0.0.1): a `link --relay` link answers with the bytes, no `Location`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_the_embedded_store_streams() {
    use std::io::BufRead as _;
    let home = tempfile::tempdir().unwrap();
    let secret = home.path().join("secret");
    let file = random_file(home.path(), "shared.bin", 300_000, 31);
    let mut child = crate::support::s3share_command(home.path())
        .args([
            "--local",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
        ])
        .arg(&secret)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    #[expect(
        clippy::disallowed_methods,
        reason = "drains the child's stderr for good: a bounded one would stop the drain once the \
                  test stops reading, and the child would block on a full pipe"
    )]
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let mut addr = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if let Some(rest) = line.strip_prefix("relay on http://") {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            log.push_str(&line);
            log.push('\n');
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve did not start: {log}");
    };
    let run = |args: Vec<String>| {
        let mut cmd = crate::support::s3share_command(home.path());
        cmd.arg("--local").args(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let put = run(vec![
        "put".into(),
        file.display().to_string(),
        "s3://s3share/shared.bin".into(),
    ])
    .await
    .unwrap();
    let link = run(vec![
        "link".into(),
        "--relay".into(),
        "--secret-file".into(),
        secret.display().to_string(),
        "s3://s3share/shared.bin".into(),
    ])
    .await
    .unwrap();
    let url = String::from_utf8_lossy(&link.stdout).trim().to_owned();
    let out = home.path().join("out");
    let (dump, exit, err) = curl(vec![
        "-D".into(),
        "-".into(),
        "-o".into(),
        out.display().to_string(),
        url.clone(),
    ])
    .await;
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.try_recv() {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert!(url.starts_with(&format!("http://{addr}/")), "{url}");
    assert_eq!(exit, 0, "{err}");
    let h = dump.to_ascii_lowercase();
    assert!(h.starts_with("http/1.1 200"), "{dump}\n{log}");
    assert!(!h.contains("\r\nlocation:"), "{dump}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());
    assert!(log.contains("streams its files itself"), "{log}");
}

/// A streamed upload that outlasts the connection lifetime (which bounds keep-alive) plus the
/// shutdown grace still arrives whole: the lifetime never cuts a transfer under way.
#[tokio::test]
async fn a_streamed_transfer_outlives_the_connection_lifetime() {
    let s = crate::support::embedded().await;
    let relay = start_relay_with(
        &s,
        true,
        1000,
        ServerConfig {
            connection_lifetime: Duration::from_millis(200),
            shutdown_grace: Duration::from_millis(200),
            ..ServerConfig::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key = "lifetime/slow.bin";
    let file = random_file(dir.path(), "slow.bin", 1536 << 10, 5);
    let g = Grant::new(
        &s.bucket,
        Scope::Key(key.into()),
        methods(false, true, false),
        later(),
    );
    let out = dir.path().join("out");
    // 1.5 MiB at 1 MiB/s: the body is still arriving long after lifetime and grace.
    let code = curl_status(
        &out,
        &[
            "--limit-rate",
            "1M",
            "-T",
            &file.display().to_string(),
            &relay.link(&g),
        ],
    )
    .await;
    assert_eq!(code, "200", "upload: {}", read(&out));
    assert_eq!(
        stored(&s, key).await.as_deref(),
        Some(std::fs::read(&file).unwrap().as_slice()),
        "the upload arrived whole"
    );
}
