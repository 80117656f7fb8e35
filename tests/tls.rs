//! An endpoint over HTTPS whose certificate comes from a CA the user added (`SSL_CERT_FILE`):
//! the SDK's requests and the presigned ones (uploads, downloads, links) all trust it, and
//! without that CA nothing is sent. An endpoint over plain HTTP never reads the system's roots.

use std::process::{Command, Output};

use crate::support::{random_file, seaweed, seaweed_tls};

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_with_a_ca_of_its_own_works_end_to_end() {
    let server = seaweed().await;
    let (endpoint, ca_file) = seaweed_tls();
    let home = tempfile::tempdir().unwrap();
    // Over the multipart threshold: parts go through presigned UploadPart requests.
    let file = random_file(home.path(), "over tls.bin", 40 << 20, 9);
    let back = home.path().join("back.bin");
    let key = format!("s3://{}/secure/over tls.bin", server.bucket);
    let run = |args: &[&str], ca: Option<&std::path::Path>| -> Output {
        let mut cmd = crate::support::s3share_command(home.path());
        cmd.env("AWS_ACCESS_KEY_ID", &server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env_remove("SSL_CERT_DIR")
            .env_remove("AWS_CA_BUNDLE");
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.args(["--endpoint-url", &endpoint])
            .args(args)
            .output()
            .unwrap()
    };

    // Without the CA, the server is not trusted: a clear error, nothing sent.
    let out = run(&["put", file.to_str().unwrap(), &key], None);
    assert!(!out.status.success(), "an untrusted server must be refused");
    let err = text(&out.stderr);
    assert!(
        err.contains("not trusted") && err.contains("SSL_CERT_FILE"),
        "the error says what to do: {err}"
    );
    assert!(
        server
            .client
            .head(&server.bucket, "secure/over tls.bin")
            .await
            .unwrap()
            .is_none(),
        "nothing reached the server"
    );

    let ca = Some(ca_file.as_path());
    let out = run(&["put", file.to_str().unwrap(), &key], ca);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["get", &key, back.to_str().unwrap()], ca);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&file).unwrap(),
        "the download over TLS is the file uploaded over TLS"
    );
    let out = run(&["link", "--json", &key], ca);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // The link works for anyone who trusts the server, e.g. curl with the same CA.
    let out = Command::new("curl")
        .args(["-sSf", "--cacert", ca_file.to_str().unwrap(), "-o"])
        .arg(home.path().join("via-link.bin"))
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::metadata(home.path().join("via-link.bin"))
            .unwrap()
            .len(),
        40 << 20
    );
}

/// Over `http://` no connection is TLS, so the system's trusted roots are never read: with
/// the certificate paths broken, multipart `put`, `ls`, `get` and `rm` work and say nothing
/// about certificates, against SeaweedFS (keys in the environment, then in a profile) and the
/// embedded store. Before, the SDK loaded the roots at every command and warned that it found
/// none (a debug build panicked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_endpoint_never_reads_the_systems_roots() {
    let server = seaweed().await;
    let home = tempfile::tempdir().unwrap();
    // Over the multipart threshold: the SDK creates and completes the upload.
    let file = random_file(home.path(), "plain.bin", 40 << 20, 11);
    let back = home.path().join("back.bin");
    let broken = home.path().join("no roots here");
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[lab]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            server.access_key, server.secret_key
        ),
    )
    .unwrap();
    let run = |target: &[&str], args: &[&str]| -> Output {
        let mut cmd = crate::support::s3share_command(home.path());
        if !target.contains(&"--profile") {
            cmd.env("AWS_ACCESS_KEY_ID", &server.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &server.secret_key);
        }
        cmd.env("AWS_REGION", "us-east-1")
            .env("SSL_CERT_FILE", &broken)
            .env("SSL_CERT_DIR", &broken)
            .env_remove("AWS_CA_BUNDLE");
        for proxy in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(proxy);
        }
        let out = cmd.args(target).args(args).output().unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{target:?} {args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("certificate"),
            "{target:?} {args:?} read the system's roots: {err}"
        );
        out
    };

    let key = format!("s3://{}/plain/plain.bin", server.bucket);
    let folder = format!("s3://{}/plain/", server.bucket);
    let with_env = ["--endpoint-url", server.endpoint.as_str()];
    let with_profile = [
        "--endpoint-url",
        server.endpoint.as_str(),
        "--profile",
        "lab",
    ];
    for target in [&with_env[..], &with_profile[..]] {
        run(target, &["put", file.to_str().unwrap(), &key]);
        let listed = run(target, &["ls", &folder]);
        assert!(
            text(&listed.stdout).contains("plain.bin"),
            "{}",
            text(&listed.stdout)
        );
        run(
            target,
            &["get", "--overwrite", &key, back.to_str().unwrap()],
        );
        assert!(
            std::fs::read(&back).unwrap() == std::fs::read(&file).unwrap(),
            "the download is the file uploaded"
        );
        run(target, &["rm", &key]);
    }

    // The embedded store, as a first run without any account uses it.
    let local = ["--local"];
    run(
        &local,
        &["put", file.to_str().unwrap(), "s3://s3share/plain.bin"],
    );
    let listed = run(&local, &["ls", "s3://s3share/"]);
    assert!(
        text(&listed.stdout).contains("plain.bin"),
        "{}",
        text(&listed.stdout)
    );
}

/// Over TLS, transfers offer HTTP/1.1 alone, even to a server that would take HTTP/2 (SeaweedFS
/// does, as Cloudflare R2 does): the parts an upload sends side by side then go on connections
/// of their own. As streams of one HTTP/2 connection they would share its one window (through a
/// proxy delaying 25 ms each way, 256 MiB went up at 17 MiB/s that way, at 125 on connections
/// of their own; `benches/tls.sh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_over_tls_take_http1_connections_of_their_own() {
    let server = seaweed().await;
    let (endpoint, ca_file) = seaweed_tls();
    let tap = HelloTap::start(&endpoint).await;
    let home = tempfile::tempdir().unwrap();
    // Three 16 MiB parts, two at a time (the server is on this machine).
    let file = random_file(home.path(), "parts.bin", 40 << 20, 12);
    let back = home.path().join("back.bin");
    let key = format!("s3://{}/h1/parts.bin", server.bucket);
    let run = |args: &[&str]| {
        let out = crate::support::s3share_command(home.path())
            .env("AWS_ACCESS_KEY_ID", &server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env("SSL_CERT_FILE", &ca_file)
            .env_remove("SSL_CERT_DIR")
            .env_remove("AWS_CA_BUNDLE")
            .args(["--endpoint-url", &tap.endpoint])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    run(&["put", file.to_str().unwrap(), &key]);
    let after_put = tap.hellos();
    run(&["get", &key, back.to_str().unwrap()]);
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&file).unwrap(),
        "the download is the file uploaded"
    );

    // The SDK's own requests (creating and completing the upload) offer HTTP/2 too: they are
    // small. Every other connection is a transfer's.
    let http1_only = |hellos: &[Vec<u8>]| {
        hellos
            .iter()
            .filter(|h| contains(h, b"\x08http/1.1") && !contains(h, b"\x02h2"))
            .count()
    };
    let put_connections = http1_only(&after_put);
    assert!(
        put_connections >= 2,
        "the two parts in flight offered HTTP/1.1 alone, each on a connection of its own: \
         {put_connections} of {} connections did",
        after_put.len()
    );
    let all = tap.hellos();
    assert!(
        http1_only(&all) > put_connections,
        "the download offered HTTP/1.1 alone ({} of {} connections)",
        http1_only(&all),
        all.len()
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A TCP relay in front of an `https://` endpoint that keeps each connection's first TLS
/// record, the ClientHello, whose ALPN extension lists in clear the protocols offered.
struct HelloTap {
    endpoint: String,
    hellos: std::sync::Arc<parking_lot::Mutex<Vec<Vec<u8>>>>,
}

impl HelloTap {
    async fn start(upstream: &str) -> HelloTap {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let upstream = upstream
            .strip_prefix("https://")
            .expect("an https:// endpoint")
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hellos = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let kept = hellos.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let kept = kept.clone();
                tokio::spawn(async move {
                    // A TLS record: type, version (2 bytes), length (2 bytes), then its body.
                    let mut header = [0u8; 5];
                    client.read_exact(&mut header).await?;
                    let len = u16::from_be_bytes([header[3], header[4]]) as usize;
                    let mut hello = header.to_vec();
                    hello.resize(5 + len, 0);
                    client.read_exact(&mut hello[5..]).await?;
                    kept.lock().push(hello.clone());
                    let mut server = tokio::net::TcpStream::connect(&upstream).await?;
                    server.write_all(&hello).await?;
                    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
                    std::io::Result::Ok(())
                });
            }
        });
        HelloTap {
            endpoint: format!("https://127.0.0.1:{port}"),
            hellos,
        }
    }

    fn hellos(&self) -> Vec<Vec<u8>> {
        self.hellos.lock().clone()
    }
}
