//! The `s3share` binary as a user runs it: exit codes, messages, JSON, the embedded default.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{random_file, store_paths};

/// `s3share` with a private home: no AWS configuration at all, so the embedded default applies.
fn s3share(home: &Path, args: &[&str]) -> Output {
    crate::support::s3share_command(home)
        .args(args)
        .output()
        .expect("s3share runs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_ls_link_get_rm_on_the_embedded_default() {
    let home = tempfile::tempdir().unwrap();
    // This test process serves the store, so links made by the CLI keep working after it exits.
    let serving = s3share::s3::ConnectOptions {
        local: true,
        store_paths: Some(store_paths(&home.path().join("s3share"))),
        ..Default::default()
    }
    .connect()
    .await
    .unwrap();
    assert!(serving.local_store.as_ref().unwrap().serving_here());

    let files = home.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let good = random_file(&files, "notes & plans.txt", 1000, 1);
    let also = random_file(&files, "ünï.bin", 3000, 2);
    let missing = files.join("missing.txt");
    let out = s3share(
        home.path(),
        &[
            "put",
            good.to_str().unwrap(),
            missing.to_str().unwrap(),
            also.to_str().unwrap(),
            "s3://s3share/docs/",
        ],
    );
    assert!(
        !out.status.success(),
        "a missing file makes the exit code non-zero"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("missing.txt") && err.contains("No such file"),
        "{err}"
    );
    assert!(err.contains("2 uploaded"), "{err}");

    let out = s3share(home.path(), &["ls", "--json", "-r", "s3://s3share/docs/"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<&str> = lines.iter().map(|v| v["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["docs/notes & plans.txt", "docs/ünï.bin"]);
    assert_eq!(lines[1]["size"], 3000);

    // Uploading the same file again without a choice fails and keeps the object.
    let out = s3share(
        home.path(),
        &["put", good.to_str().unwrap(), "s3://s3share/docs/"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--overwrite"),
        "{}",
        text(&out.stderr)
    );
    let out = s3share(
        home.path(),
        &[
            "put",
            "--skip-existing",
            good.to_str().unwrap(),
            "s3://s3share/docs/",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = s3share(
        home.path(),
        &[
            "link",
            "--json",
            "--expires",
            "15m",
            "s3://s3share/docs/ünï.bin",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(link["requested"], 900);
    assert!(
        link["local_store_note"]
            .as_str()
            .unwrap()
            .contains("while an s3share process runs")
    );
    let body = reqwest::get(link["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.as_ref(), std::fs::read(&also).unwrap().as_slice());

    let out = s3share(
        home.path(),
        &["link", "--expires", "8d", "s3://s3share/docs/ünï.bin"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("at most 7 days"),
        "{}",
        text(&out.stderr)
    );

    let dest = home.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let out = s3share(
        home.path(),
        &["get", "s3://s3share/docs/ünï.bin", dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dest.join("ünï.bin")).unwrap(),
        std::fs::read(&also).unwrap()
    );

    let out = s3share(home.path(), &["rm", "s3://s3share/docs/ünï.bin"]);
    assert!(out.status.success());
    let out = s3share(home.path(), &["link", "s3://s3share/docs/ünï.bin"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    drop(serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_against_seaweedfs_with_an_endpoint() {
    let server = crate::support::seaweed().await;
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "report.pdf", 2 << 20, 5);
    let location = format!("s3://{}/in/", server.bucket);
    let run_with_secret = |secret: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_s3share"))
            .env("HOME", home.path())
            .env("AWS_ACCESS_KEY_ID", &server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--endpoint-url", &server.endpoint])
            .args(args)
            .output()
            .unwrap()
    };
    let run = |args: &[&str]| run_with_secret(&server.secret_key, args);
    let out = run(&["put", file.to_str().unwrap(), &location]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["link", "--json", &format!("{location}report.pdf")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(link["local_store_note"].is_null());
    let r = reqwest::get(link["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 2 << 20);
    let out = run(&["ls", &location]);
    assert!(text(&out.stdout).contains("report.pdf"));

    // A refusal names the path as it was typed: finding out what `report.pdf` is lists
    // `report.pdf/` first, and the error named that folder.
    let key = format!("{location}report.pdf");
    for args in [["get", &key, "-"].as_slice(), &["ls", &key], &["rm", &key]] {
        let out = run_with_secret("wrong", args);
        let said = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(said.contains("credentials"), "{args:?}: {said}");
        assert!(said.contains(&format!("{key}:")), "{args:?}: {said}");
        assert!(!said.contains("report.pdf/"), "{args:?}: {said}");
    }
}

#[test]
fn help_lists_serve_in_every_build() {
    let home = tempfile::tempdir().unwrap();
    let out = s3share(home.path(), &["--help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(help.contains("Usage") && help.contains("serve"), "{help}");
    // Each build says what it does without a command.
    if cfg!(feature = "gui") {
        assert!(help.contains("opens the desktop app"), "{help}");
    } else {
        assert!(help.contains("has no desktop app"), "{help}");
    }
}

#[cfg(feature = "gui")]
#[test]
fn help_and_no_display() {
    let home = tempfile::tempdir().unwrap();
    let out = s3share(home.path(), &["--help"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("Usage") && text(&out.stdout).contains("desktop app"),
        "{}",
        text(&out.stdout)
    );

    // Without a display the app says so and exits non-zero, no panic.
    let out = Command::new(env!("CARGO_BIN_EXE_s3share"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("HOME", home.path())
        .env("S3SHARE_HOME", home.path().join("s3share"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot open the window") && !err.contains("panicked"),
        "{err}"
    );
}

/// A proxy in the environment (`HTTP_PROXY`, as on many company machines) is for servers
/// elsewhere: requests to one on this machine go straight to it, since a proxy cannot reach
/// this machine's loopback. The embedded default (a first run) and SeaweedFS on 127.0.0.1 both
/// work with a proxy set, and the proxy sees none of their requests: the SDK's, the presigned
/// parts, the download. Before, every request went to the proxy (and the embedded store was
/// unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_in_the_environment_is_not_used_for_servers_on_this_machine() {
    let s = crate::support::seaweed().await;
    // A working proxy, in front of SeaweedFS: it would carry what it is sent, and counts it.
    let proxy = crate::support::proxy::Proxy::start(&s.endpoint).await;
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "straight.bin", 40 << 20, 31);
    let back = home.path().join("back.bin");
    let run = |args: &[&str]| {
        let out = crate::support::s3share_through_proxy(home.path(), &s, &proxy.endpoint)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        out
    };

    let key = format!("s3://{}/straight.bin", s.bucket);
    let seaweed = ["--endpoint-url", s.endpoint.as_str()];
    run(&[&seaweed[..], &["put", file.to_str().unwrap(), &key]].concat());
    run(&[&seaweed[..], &["get", &key, back.to_str().unwrap()]].concat());
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&file).unwrap());
    let listed = run(&[&seaweed[..], &["ls", &format!("s3://{}/", s.bucket)]].concat());
    assert!(text(&listed.stdout).contains("straight.bin"));

    // The embedded store, as a first run without any account uses it.
    run(&[
        "--local",
        "put",
        file.to_str().unwrap(),
        "s3://s3share/straight.bin",
    ]);
    let listed = run(&["--local", "ls", "s3://s3share/"]);
    assert!(text(&listed.stdout).contains("straight.bin"));

    let seen = proxy.seen();
    assert!(
        seen.is_empty(),
        "the proxy carried {} requests, e.g. {:?}",
        seen.len(),
        seen.first().map(|r| (&r.method, &r.target))
    );
}

/// A server that is not AWS, with no region configured (usual for MinIO or SeaweedFS): the EC2
/// metadata service is never asked for one. Away from EC2 that cost every command three
/// seconds and three warnings. The region comes from the environment, else the profile, else
/// us-east-1; a link's signature says which, and works with each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_aws_never_waits_on_the_metadata_service_for_a_region() {
    let s = crate::support::seaweed().await;
    // A metadata service that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let home = tempfile::tempdir().unwrap();
    let aws_config = home.path().join("aws-config");
    std::fs::write(&aws_config, "[profile lab]\nregion = eu-central-1\n").unwrap();
    let file = random_file(home.path(), "hello.bin", 1000, 32);
    let key = format!("s3://{}/hello.bin", s.bucket);
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = crate::support::s3share_command(home.path());
        for var in [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_EC2_METADATA_DISABLED",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .env(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://{}", silent.local_addr().unwrap()),
            )
            .env("AWS_CONFIG_FILE", &aws_config)
            .env("AWS_ACCESS_KEY_ID", &s.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
            .envs(env.iter().copied())
            .args(["--endpoint-url", s.endpoint.as_str()])
            .args(args)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{env:?} {args:?}: {stderr}");
        assert!(!stderr.contains("IMDS"), "{env:?} {args:?}: {stderr}");
        text(&out.stdout)
    };

    run(&[], &["put", file.to_str().unwrap(), &key]);
    for (env, args, region) in [
        (&[][..], &[][..], "us-east-1"),
        (&[("AWS_REGION", "ap-south-1")][..], &[][..], "ap-south-1"),
        (&[][..], &["--profile", "lab"][..], "eu-central-1"),
    ] {
        let link = run(env, &[args, &["link", &key]].concat());
        let url = link.lines().find(|l| l.starts_with("http")).unwrap();
        assert!(
            url.contains(&format!("%2F{region}%2Fs3%2Faws4_request")),
            "{env:?} {args:?}: {url}"
        );
        let got = reqwest::get(url).await.unwrap();
        assert_eq!(got.status(), 200, "{region}");
        assert!(got.bytes().await.unwrap() == std::fs::read(&file).unwrap());
    }
    assert!(
        silent
            .accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the metadata service was asked"
    );
}

/// AWS with no region configured: the EC2 metadata service is asked once (the SDK's default
/// chain asked four times, 1 s each where it does not answer, and printed three warnings),
/// quietly, and the command goes on to S3 (here a proxy that refuses, so it fails fast).
#[test]
fn aws_without_a_region_asks_the_metadata_service_once_and_quietly() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let home = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_proxy = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut cmd = crate::support::s3share_command(home.path());
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_DISABLED",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "https_proxy",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{}", silent.local_addr().unwrap()),
        )
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("HTTPS_PROXY", &dead_proxy)
        .args(["ls", "s3://s3share-region-test/"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(!stderr.contains("IMDS"), "{stderr}");
    let mut asked = 0;
    while silent.accept().is_ok() {
        asked += 1;
    }
    assert_eq!(asked, 1, "connections to the metadata service");
}

/// A destination with an empty or a dot segment is refused before anything is sent, saying
/// what is wrong. The embedded store (as SeaweedFS) stored `d//e/f.txt` as `d/e/f.txt` while
/// `put` reported the key as typed, `s3://s3share//abs.txt` failed with HTTP 500 and `x/../y`
/// with "the server does not accept these AWS credentials".
#[test]
fn put_and_mkdir_refuse_a_destination_with_empty_or_dot_segments() {
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "f.txt", 10, 40);
    for (dest, says) in [
        ("s3://s3share/d//e/f.txt", "empty path segment"),
        ("s3://s3share//abs.txt", "empty path segment"),
        ("s3://s3share/d//", "empty path segment"),
        ("s3://s3share/x/../y.txt", "has a `..` segment"),
        ("s3://s3share/./z.txt", "has a `.` segment"),
    ] {
        let out = crate::support::s3share_command(home.path())
            .args(["--local", "put", file.to_str().unwrap(), dest])
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{dest}: {err}");
        assert!(err.contains(says), "{dest}: {err}");
    }
    let out = crate::support::s3share_command(home.path())
        .args(["--local", "ls", "-r", "s3://s3share/"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "", "nothing was stored");

    // mkdir: the same refusal, and a folder that is there is said to be there.
    let mkdir = |dest: &str| {
        crate::support::s3share_command(home.path())
            .args(["--local", "mkdir", dest])
            .output()
            .unwrap()
    };
    let out = mkdir("s3://s3share/a//b/");
    assert!(!out.status.success() && text(&out.stderr).contains("empty path segment"));
    let out = mkdir("s3://s3share/made");
    assert_eq!(text(&out.stdout), "created s3://s3share/made/\n");
    let out = mkdir("s3://s3share/made/");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "s3://s3share/made/ exists already\n");
    // Dots inside a name are names like any other.
    let out = crate::support::s3share_command(home.path())
        .args([
            "--local",
            "put",
            file.to_str().unwrap(),
            "s3://s3share/v1..2/.f.txt",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `--link` right before the files, as the README's example writes it: the file is the first
/// path, not the link's lifetime (it failed with "2 values required", or with `cannot read the
/// expiry "p1.txt"` for two files). A lifetime still works in every spelling, and a word
/// that is neither a lifetime nor a file says so.
#[test]
fn put_link_takes_the_file_after_it_as_a_file() {
    let home = tempfile::tempdir().unwrap();
    let a = random_file(home.path(), "a.txt", 10, 41);
    let b = random_file(home.path(), "b.txt", 20, 42);
    let put = |args: &[&str]| {
        let out = s3share(home.path(), &[&["--local", "put"], args].concat());
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let links = |stdout: &str| stdout.lines().filter(|l| l.starts_with("http")).count();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (ok, out, err) = put(&["--link", a, "s3://s3share/one/"]);
    assert!(ok && links(&out) == 1, "{out}{err}");
    assert!(
        out.contains("X-Amz-Expires=3600"),
        "the default hour: {out}"
    );
    let (ok, out, err) = put(&["--link", a, b, "s3://s3share/two/"]);
    assert!(ok && links(&out) == 2, "{out}{err}");
    for spelled in [
        &["--link", "2h", a][..],
        &["--link=2h", a],
        &[a, "--link", "2h"],
    ] {
        let (ok, out, err) = put(&[spelled, &["s3://s3share/three/", "--overwrite"]].concat());
        assert!(
            ok && out.contains("X-Amz-Expires=7200"),
            "{spelled:?}: {out}{err}"
        );
    }
    let (ok, _, err) = put(&["--link", "soon", a, "s3://s3share/four/"]);
    assert!(!ok && err.contains("\"soon\" is neither"), "{err}");
    let (ok, _, err) = put(&["--link", a, "s3://s3share/five/"][..1]);
    assert!(!ok, "{err}");
}

/// A path ending in `/` can only name a folder: `get` downloads it as `get -r` does (as
/// `--help` and the README say), while `rm` still wants `-r`, since it deletes.
#[test]
fn a_path_ending_in_a_slash_is_a_folder_to_get_but_rm_wants_r() {
    let home = tempfile::tempdir().unwrap();
    let a = random_file(home.path(), "a.txt", 10, 43);
    let run = |args: &[&str]| s3share(home.path(), &[&["--local"], args].concat());
    let out = run(&["put", a.to_str().unwrap(), "s3://s3share/dir/sub/"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dest = home.path().join("out");
    let out = run(&["get", "s3://s3share/dir/", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dest.join("sub/a.txt")).unwrap(),
        std::fs::read(&a).unwrap()
    );
    let out = run(&["rm", "s3://s3share/dir/"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("-r"), "{}", text(&out.stderr));
}

/// `rm` of several locations, one of which names nothing: the others go, the exit code says
/// something failed, and so does the last line (it said "2 deleted, 0 failed").
#[test]
fn rm_counts_a_location_that_names_nothing_as_failed() {
    let home = tempfile::tempdir().unwrap();
    let a = random_file(home.path(), "a.txt", 10, 44);
    let run = |args: &[&str]| s3share(home.path(), &[&["--local"], args].concat());
    let out = run(&["put", a.to_str().unwrap(), "s3://s3share/x/"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["put", a.to_str().unwrap(), "s3://s3share/y/"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&[
        "rm",
        "-r",
        "--yes",
        "s3://s3share/x",
        "s3://s3share/nothere",
        "s3://s3share/y/a.txt",
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("2 deleted, 1 failed"), "{err}");
    let out = run(&["ls", "-r", "s3://s3share/"]);
    assert_eq!(text(&out.stdout), "", "both deleted");
}
