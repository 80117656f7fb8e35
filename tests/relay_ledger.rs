//! The link ledger, revocation and secret rotation, as users run them: `link --relay`, `links`,
//! `revoke` and `relay-secret rotate` as separate processes beside a running `s3share serve`,
//! against real S3 servers, with the real `curl`.

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::on_both_servers;
use crate::relay::{CliEnv, curl};
use crate::support::{TestServer, put_via_link};

/// A running `s3share serve` process; killed when dropped.
pub(crate) struct Serve {
    child: std::process::Child,
    pub(crate) addr: String,
    pub(crate) log: Arc<parking_lot::Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `serve` on a free port with `args` (leading NAME=VALUE are environment
    /// variables) and waits for the line naming its address.
    pub(crate) async fn start(env: &CliEnv, args: &[String]) -> Serve {
        let mut all: Vec<String> = args
            .iter()
            .take_while(|a| a.contains('=') && !a.starts_with('-'))
            .cloned()
            .collect();
        let rest = &args[all.len()..];
        all.extend(["serve".into(), "--listen".into(), "127.0.0.1:0".into()]);
        all.extend(rest.iter().cloned());
        let mut child = env
            .command(all)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let log = Arc::new(parking_lot::Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("relay on http://")
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                let mut l = log2.lock();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(20), rx).await;
        let Ok(Ok(addr)) = addr else {
            let _ = child.kill();
            panic!("serve did not start: {}", log.lock());
        };
        Serve { child, addr, log }
    }

    /// Stops it as Ctrl+C does (SIGINT), and waits for it to exit.
    pub(crate) fn interrupt(&mut self) -> std::process::ExitStatus {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::INT,
        )
        .unwrap();
        self.child.wait().unwrap()
    }

    /// Kills it (SIGKILL: no chance to clean up), and waits for it to exit.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn public_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The status of a GET on `url` without following, and the redirect target if any.
async fn status(url: &str) -> (String, String) {
    let (out, _, _) = curl(vec![
        "-o".into(),
        "/dev/null".into(),
        "-w".into(),
        "%{http_code} %{redirect_url}".into(),
        url.into(),
    ])
    .await;
    let (code, location) = out.split_once(' ').unwrap_or((&out, ""));
    (code.to_owned(), location.trim().to_owned())
}

/// Polls `url` until its status is `want`, at most `limit`; how long it took.
async fn until_status(url: &str, want: &str, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let (code, _) = status(url).await;
        if code == want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(code);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `link --relay` records each link; `links --json` lists them (no token anywhere); `revoke`
/// in another process makes a running `serve` refuse the link within a second; the ledger is
/// hidden from `ls`, `get -r` and `rm -r` of the bucket.
async fn revoked_links_are_refused_within_a_second(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let env = CliEnv::of(s, home.path());
    let secret = home.path().join("relay-secret");
    let secret_arg = || vec!["--secret-file".to_owned(), secret.display().to_string()];
    put_via_link(&s.client, &s.bucket, "shared/a.txt", "alpha")
        .await
        .error_for_status()
        .unwrap();
    let serve = Serve::start(&env, &secret_arg()).await;
    // A second instance with the same secret (as behind a load balancer) serves the same links.
    let second = Serve::start(&env, &secret_arg()).await;
    let bucket_url = format!("s3://{}", s.bucket);
    let run = |args: Vec<String>| env.clone().run_async(args);
    let link = |extra: Vec<String>, target: String| {
        let mut a = vec!["link".to_owned(), "--relay".into(), "--json".into()];
        a.extend(secret_arg());
        a.extend(extra);
        a.push(target);
        run(a)
    };
    let one = link(
        vec![
            "--note".into(),
            "for Ann".into(),
            "--expires".into(),
            "30d".into(),
        ],
        format!("{bucket_url}/shared/a.txt"),
    )
    .await;
    let one: serde_json::Value = serde_json::from_str(&ok(&one, "link")).unwrap();
    let two = link(
        vec!["--put".into(), "--max-size".into(), "1M".into()],
        format!("{bucket_url}/drop/"),
    )
    .await;
    let two: serde_json::Value = serde_json::from_str(&ok(&two, "link --put")).unwrap();
    let url = one["url"].as_str().unwrap().to_owned();
    let id = one["id"].as_str().unwrap().to_owned();
    // Minted for the relay that started last (it noted its address beside the secret).
    assert!(url.starts_with(&second.public_url()), "{url}");
    assert!(one["created_at"].is_string(), "{one}");
    let (body, exit, err) = curl(vec!["-L".into(), "-w".into(), String::new(), url.clone()]).await;
    assert_eq!((body.as_str(), exit), ("alpha", 0), "{}: {err}", s.name);
    // The same link through the other instance.
    let url2 = url.replacen(&second.public_url(), &serve.public_url(), 1);
    let (body, exit, err) = curl(vec!["-L".into(), "-w".into(), String::new(), url2.clone()]).await;
    assert_eq!(
        (body.as_str(), exit),
        ("alpha", 0),
        "{}: second relay: {err}",
        s.name
    );

    // The ledger lists both, with what they allow, and never a token.
    let listed = ok(
        &run(vec!["links".into(), "--json".into(), bucket_url.clone()]).await,
        "links",
    );
    let token = url.split('/').nth(3).unwrap();
    assert!(!listed.contains(token), "{listed}");
    let records = json_lines(&listed);
    assert_eq!(records.len(), 2, "{listed}");
    let rec = |id: &str| {
        records
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
            .clone()
    };
    let r1 = rec(&id);
    assert_eq!(r1["state"], "active");
    assert_eq!(r1["scope"], "shared/a.txt");
    assert_eq!(r1["note"], "for Ann");
    assert_eq!(r1["methods"], serde_json::json!(["GET", "HEAD"]));
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(r1["expires_at"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(one["expires_at"].as_str().unwrap()).unwrap()
    );
    let r2 = rec(two["id"].as_str().unwrap());
    assert_eq!(
        (r2["scope"].as_str(), r2["folder"].as_bool()),
        (Some("drop/"), Some(true))
    );
    assert_eq!(r2["methods"], serde_json::json!(["PUT"]));
    assert_eq!(r2["max_size"], 1 << 20);
    let table = ok(
        &run(vec!["links".into(), bucket_url.clone()]).await,
        "links",
    );
    assert!(
        table.contains(&id) && table.contains("active") && table.contains("for Ann"),
        "{table}"
    );

    // Revoked in another process: the running relay refuses it within a second.
    let out = run(vec!["revoke".into(), id.clone(), bucket_url.clone()]).await;
    let revoked_at = Instant::now();
    ok(&out, "revoke");
    let took = until_status(&url, "403", Duration::from_secs(3))
        .await
        .unwrap_or_else(|code| {
            panic!(
                "{}: still {code} 3 s after revoke\n{}",
                s.name,
                serve.log.lock()
            )
        });
    eprintln!(
        "{}: refused {:?} after revoke returned",
        s.name,
        revoked_at.elapsed()
    );
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "{}: refused only after {:?} (polling took {took:?})",
        s.name,
        revoked_at.elapsed()
    );
    until_status(&url2, "403", Duration::from_secs(3))
        .await
        .unwrap_or_else(|code| panic!("{}: second relay still {code}", s.name));
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "{}: the second relay refused only after {:?}",
        s.name,
        revoked_at.elapsed()
    );
    for u in [&url, &url2] {
        let (code, location) = status(u).await;
        assert_eq!(
            (code.as_str(), location.as_str()),
            ("403", ""),
            "{}",
            s.name
        );
    }
    let (body, _, _) = curl(vec!["-L".into(), "-w".into(), String::new(), url.clone()]).await;
    assert!(body.contains("revoked"), "{body}");
    // The other link is untouched.
    let small = home.path().join("small.txt");
    std::fs::write(&small, "hello").unwrap();
    let (code, _, _) = curl(vec![
        "-o".into(),
        "/dev/null".into(),
        "-T".into(),
        small.display().to_string(),
        format!("{}x.bin", two["url"].as_str().unwrap()),
    ])
    .await;
    // Stored by the relay itself: a plain upload to a link without --overwrite is streamed.
    assert_eq!(code, "200", "{}: the upload link was refused too", s.name);
    let records = json_lines(&ok(
        &run(vec!["links".into(), "--json".into(), bucket_url.clone()]).await,
        "links",
    ));
    let r1 = records.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(r1["state"], "revoked");
    assert!(r1["revoked_at"].is_string());

    // Clear errors: revoking again says so; unknown and malformed ids are named.
    let again = ok(
        &run(vec!["revoke".into(), id.clone(), bucket_url.clone()]).await,
        "revoke again",
    );
    assert!(again.is_empty());
    let unknown = run(vec!["revoke".into(), "AAAAAAAA".into(), bucket_url.clone()]).await;
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("no relay link with id AAAAAAAA"), "{err}");
    // One id in 64 starts with '-' (base64url): it is an id, not an option.
    let dashed = run(vec!["revoke".into(), "-AAAAAAA".into(), bucket_url.clone()]).await;
    let err = String::from_utf8_lossy(&dashed.stderr);
    assert!(err.contains("no relay link with id -AAAAAAA"), "{err}");
    let bad = run(vec!["revoke".into(), "../../x".into(), bucket_url.clone()]).await;
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a link id"));

    // The ledger is in the bucket but hidden from ls, get -r and rm -r of the bucket root.
    assert!(
        s.client
            .head(&s.bucket, ".s3share/revoked.json")
            .await
            .unwrap()
            .is_some()
    );
    for args in [
        vec!["ls".to_owned()],
        vec!["ls".into(), "-r".into(), "--json".into()],
    ] {
        let mut a = args.clone();
        a.push(bucket_url.clone());
        let out = ok(&run(a).await, "ls");
        assert!(out.contains("shared"), "{out}");
        assert!(!out.contains(".s3share"), "{args:?}: {out}");
    }
    let dest = home.path().join("download");
    ok(
        &run(vec![
            "get".into(),
            "-r".into(),
            bucket_url.clone(),
            dest.display().to_string(),
        ])
        .await,
        "get -r",
    );
    assert!(dest.join("shared/a.txt").exists());
    assert!(
        !dest.join(".s3share").exists(),
        "{}: get -r took the ledger",
        s.name
    );
    let rm = run(vec![
        "rm".into(),
        "-r".into(),
        "--yes".into(),
        bucket_url.clone(),
    ])
    .await;
    let rm_err = String::from_utf8_lossy(&rm.stderr).into_owned();
    ok(&rm, "rm -r");
    assert!(!rm_err.contains(".s3share"), "{rm_err}");
    assert!(
        s.client
            .head(&s.bucket, "shared/a.txt")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.client
            .head(&s.bucket, ".s3share/revoked.json")
            .await
            .unwrap()
            .is_some()
    );
    // No link points into it.
    for key in ["revoked.json", "links/", "nothing-here"] {
        let into = link(vec!["--put".into()], format!("{bucket_url}/.s3share/{key}")).await;
        assert!(!into.status.success(), "{key}");
        assert!(
            String::from_utf8_lossy(&into.stderr).contains("ledger"),
            "{key}"
        );
    }
    // Named explicitly, it is listed like any folder.
    let out = ok(
        &run(vec![
            "ls".into(),
            "-r".into(),
            format!("{bucket_url}/.s3share/"),
        ])
        .await,
        "ls .s3share",
    );
    assert!(out.contains(&format!(".s3share/links/{id}.json")), "{out}");
    // After the purge, the revoked link stays refused (known to the relay, and in the list).
    assert_eq!(status(&url).await.0, "403");
}

on_both_servers!(revoked_links_are_refused_within_a_second);

/// `relay-secret rotate --grace`: a running `serve` (its secret file named by the environment)
/// picks the new secret up without a restart; links made after rotation work, links of the
/// old secret work during the grace period and are refused after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_links_for_the_grace_period() {
    let s = crate::support::seaweed().await;
    let home = tempfile::tempdir().unwrap();
    let env = CliEnv::of(&s, home.path());
    let secret = home.path().join("servers/relay-secret");
    put_via_link(&s.client, &s.bucket, "r.txt", "rotated")
        .await
        .error_for_status()
        .unwrap();
    let by_env = format!("S3SHARE_RELAY_SECRET_FILE={}", secret.display());
    let serve = Serve::start(&env, std::slice::from_ref(&by_env)).await;
    let mint = || {
        env.clone().run_async(vec![
            "link".into(),
            "--relay".into(),
            "--secret-file".into(),
            secret.display().to_string(),
            format!("s3://{}/r.txt", s.bucket),
        ])
    };
    let old = ok(&mint().await, "link").trim().to_owned();
    assert_eq!(status(&old).await.0, "307");

    let grace = Duration::from_secs(3);
    let rotated = env
        .clone()
        .run_async(vec![
            "relay-secret".into(),
            "rotate".into(),
            "--grace".into(),
            "3s".into(),
            "--secret-file".into(),
            secret.display().to_string(),
        ])
        .await;
    let rotated_at = Instant::now();
    ok(&rotated, "rotate");
    let new = ok(&mint().await, "link after rotation").trim().to_owned();
    assert_ne!(new.split('/').nth(3), old.split('/').nth(3));
    // The running relay re-reads the file: the new link works without a restart.
    until_status(&new, "307", Duration::from_secs(2))
        .await
        .unwrap_or_else(|code| panic!("new link: {code}\n{}", serve.log.lock()));
    // Still inside the grace period, the old link works.
    assert!(rotated_at.elapsed() < grace);
    assert_eq!(
        status(&old).await.0,
        "307",
        "old link during the grace period"
    );
    let (body, exit, err) = curl(vec!["-L".into(), "-w".into(), String::new(), new.clone()]).await;
    assert_eq!((body.as_str(), exit), ("rotated", 0), "{err}");
    // After it, refused (with no redirect); the new one keeps working.
    until_status(&old, "403", grace + Duration::from_secs(3))
        .await
        .unwrap_or_else(|code| panic!("old link after grace: {code}"));
    assert!(rotated_at.elapsed() >= grace, "{:?}", rotated_at.elapsed());
    assert_eq!(status(&old).await, ("403".to_owned(), String::new()));
    assert_eq!(status(&new).await.0, "307");
}

/// `revoke` of a link that has already expired succeeds at once and marks it revoked: it
/// looped for seconds on the revocation list (which keeps no expired ids) and then failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_expired_link_succeeds_at_once() {
    let s = crate::support::seaweed().await;
    put_via_link(&s.client, &s.bucket, "gone.txt", "x")
        .await
        .error_for_status()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = CliEnv::of(&s, home.path());
    let secret = home.path().join("relay-secret").display().to_string();
    let out = env
        .clone()
        .run_async(vec![
            "link".into(),
            "--relay".into(),
            "--json".into(),
            "--expires".into(),
            "1s".into(),
            "--secret-file".into(),
            secret,
            format!("s3://{}/gone.txt", s.bucket),
        ])
        .await;
    let v: serde_json::Value = serde_json::from_str(ok(&out, "link").trim()).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let started = Instant::now();
    let out = env
        .clone()
        .run_async(vec![
            "revoke".into(),
            id.clone(),
            format!("s3://{}", s.bucket),
        ])
        .await;
    ok(&out, "revoke of an expired link");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already expired"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let listed = ok(
        &env.clone()
            .run_async(vec![
                "links".into(),
                "--json".into(),
                format!("s3://{}", s.bucket),
            ])
            .await,
        "links",
    );
    let records = json_lines(&listed);
    let record = records.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(record["state"], "revoked", "{listed}");
}

/// `links` prints a note (bucket-sourced text anyone who can write there can set) escaped:
/// a line break no longer splits the link's line and no escape sequence reaches the
/// terminal; `--json` keeps it exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_show_notes_escaped() {
    let s = crate::support::seaweed().await;
    put_via_link(&s.client, &s.bucket, "noted.txt", "x")
        .await
        .error_for_status()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = CliEnv::of(&s, home.path());
    let note = "first\nsecond \u{1b}[31mred";
    let out = env
        .clone()
        .run_async(vec![
            "link".into(),
            "--relay".into(),
            "--json".into(),
            "--note".into(),
            note.into(),
            "--secret-file".into(),
            home.path().join("relay-secret").display().to_string(),
            format!("s3://{}/noted.txt", s.bucket),
        ])
        .await;
    let v: serde_json::Value = serde_json::from_str(ok(&out, "link").trim()).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    let bucket = format!("s3://{}", s.bucket);
    let human = ok(
        &env.clone()
            .run_async(vec!["links".into(), bucket.clone()])
            .await,
        "links",
    );
    let lines: Vec<&str> = human.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line per link: {human:?}");
    assert!(lines[0].starts_with(&id), "{human:?}");
    assert!(
        lines[0].ends_with("first\\nsecond \\x1b[31mred") && !human.contains('\u{1b}'),
        "{human:?}"
    );
    let json = ok(
        &env.clone()
            .run_async(vec!["links".into(), "--json".into(), bucket])
            .await,
        "links --json",
    );
    assert_eq!(json_lines(&json)[0]["note"], note);
}

/// `links` lists links in the order they were made, newest last, also when several were made
/// within one second (they were ordered by their random ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_listed_oldest_first() {
    use s3share::relay::ledger::Ledger;
    use s3share::relay::{Grant, Methods, Scope, Secret};
    let s = crate::support::seaweed().await;
    let secret = Secret::random();
    let expires = std::time::SystemTime::now() + Duration::from_secs(3600);
    let ledger = Ledger::new(s.client.clone(), &s.bucket);
    let mut ids = Vec::new();
    for i in 0..8 {
        let g = Grant::new(
            &s.bucket,
            Scope::Key(format!("k{i}")),
            Methods::READ,
            expires,
        );
        let (link, _) = ledger
            .mint(&g, &secret, "http://relay.test", None)
            .await
            .unwrap();
        ids.push(link.id);
        // Made a few milliseconds apart, as a script's calls are; many within one second.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let home = tempfile::tempdir().unwrap();
    let env = CliEnv::of(&s, home.path());
    let bucket = format!("s3://{}", s.bucket);
    let json = ok(
        &env.clone()
            .run_async(vec!["links".into(), "--json".into(), bucket.clone()])
            .await,
        "links --json",
    );
    let listed: Vec<String> = json_lines(&json)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids, "in the order they were made");
    let human = ok(&env.run_async(vec!["links".into(), bucket]).await, "links");
    let last = human.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    assert!(last.starts_with(&ids[7]), "the newest last: {human}");
}

/// Revocations at the same moment (from several machines) all land in the bucket's list: none
/// is lost to another's write. Through the library, as the app will call it.
async fn concurrent_revocations_all_land(s: &TestServer) {
    use s3share::relay::ledger::{Fetched, Ledger};
    use s3share::relay::{Grant, LinkState, Methods, Scope, Secret};
    let secret = Secret::random();
    let expires = std::time::SystemTime::now() + Duration::from_secs(3600);
    let mut ids = Vec::new();
    for i in 0..8 {
        let g = Grant::new(
            &s.bucket,
            Scope::Key(format!("k{i}")),
            Methods::READ,
            expires,
        );
        let ledger = Ledger::new(s.client.clone(), &s.bucket);
        let (link, record) = ledger
            .mint(&g, &secret, "http://relay.test", Some(format!("n{i}")))
            .await
            .unwrap();
        assert_eq!(link.id, record.id);
        ids.push(record.id);
    }
    // Each revocation through its own ledger (as separate processes would).
    let results = futures::future::join_all(ids.iter().map(|id| {
        let ledger = Ledger::new(s.client.clone(), &s.bucket);
        async move { ledger.revoke(id).await }
    }))
    .await;
    for r in results {
        assert_eq!(
            r.unwrap().state(std::time::SystemTime::now()),
            LinkState::Revoked
        );
    }
    let ledger = Ledger::new(s.client.clone(), &s.bucket);
    let Fetched::List { list, etag } = ledger.fetch_revoked(None).await.unwrap() else {
        panic!("{}: no revocation list", s.name);
    };
    // What relays poll with: a conditional GET, answered 304 while unchanged (SeaweedFS; the
    // embedded store ignores If-None-Match and sends the list again, known by its ETag).
    assert_eq!(
        ledger.fetch_revoked(etag.as_deref()).await.unwrap(),
        Fetched::Unchanged,
        "{}",
        s.name
    );
    for id in &ids {
        assert!(
            list.revoked.contains_key(id),
            "{}: {id} lost: {list:?}",
            s.name
        );
    }
    let listed = ledger.list().await.unwrap();
    assert_eq!(listed.len(), 8);
    assert!(listed.iter().all(|r| r.revoked));
    // The library's listings (the app's browser, ls, get -r, rm -r) leave the ledger out
    // unless it is named.
    let root = s.client.list_all(&s.bucket, "", false).await.unwrap();
    assert!(
        root.folders.is_empty() && root.objects.is_empty(),
        "{root:?}"
    );
    let all = s.client.list_all(&s.bucket, "", true).await.unwrap();
    assert!(all.objects.is_empty(), "{all:?}");
    let named = s
        .client
        .list_all(&s.bucket, ".s3share/", true)
        .await
        .unwrap();
    assert_eq!(named.objects.len(), 9, "{named:?}");
    assert!(ledger.revoke("AAAAAAAA").await.is_err());
    assert!(ledger.get("../../x").await.unwrap().is_none());
}

on_both_servers!(concurrent_revocations_all_land);
