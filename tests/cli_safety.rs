//! The command line does exactly what the user named (issue 7): folders are folders, `rm -r`
//! asks, upload destinations follow `cp -r`, errors are named. Against both real servers, with
//! the real binary pointed at them through `--endpoint-url`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::on_both_servers;
use crate::support::{TestServer, random_file};

/// `s3share --endpoint-url <server>` with the server's keys in the environment (as a user of
/// any S3-compatible server runs it), a private home and no terminal on stdin.
pub(crate) fn cli(s: &TestServer, home: &Path) -> Command {
    cli_with_secret(s, home, &s.secret_key)
}

pub(crate) fn cli_with_secret(s: &TestServer, home: &Path, secret: &str) -> Command {
    let mut cmd = crate::support::s3share_command(home);
    cmd.env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .args(["--endpoint-url", &s.endpoint])
        .stdin(Stdio::null());
    cmd
}

fn run(s: &TestServer, home: &Path, args: &[&str]) -> Output {
    cli(s, home).args(args).output().expect("s3share runs")
}

pub(crate) fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

async fn keys(s: &TestServer) -> Vec<String> {
    let mut keys: Vec<String> = s
        .client
        .list_all(&s.bucket, "", true)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    keys
}

pub(crate) async fn put_keys(s: &TestServer, keys: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let path = random_file(dir.path(), &format!("f{n}"), 10 + n, n as u64);
            s3share::transfer::UploadItem {
                path,
                key: (*key).to_owned(),
                size: 10 + n as u64,
            }
        })
        .collect();
    let results = s
        .client
        .upload_many(
            &s.bucket,
            &items,
            &Default::default(),
            s3share::transfer::no_events(),
            &Default::default(),
        )
        .await;
    assert!(
        results.iter().all(std::result::Result::is_ok),
        "{results:?}"
    );
}

const DOCS: &[&str] = &["docs-old/y.txt", "docs.txt", "docs/a", "docs/sub/b"];

/// On the old code `rm -r s3://b/docs` deleted `docs-old/y.txt` and `docs.txt` too, without
/// asking.
async fn rm_r_deletes_the_folder_and_nothing_else(s: &TestServer) {
    put_keys(s, DOCS).await;
    let home = tempfile::tempdir().unwrap();
    let docs = format!("s3://{}/docs", s.bucket);

    // No terminal to ask on and no --yes: nothing is deleted.
    let out = run(s, home.path(), &["rm", "-r", &docs]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--yes") && err.contains("2 object(s)"),
        "{err}"
    );
    assert_eq!(keys(s).await, DOCS);

    let out = run(s, home.path(), &["rm", "-r", "--dry-run", &docs]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        listed,
        [
            format!("would delete s3://{}/docs/a", s.bucket),
            format!("would delete s3://{}/docs/sub/b", s.bucket)
        ]
    );
    assert_eq!(keys(s).await, DOCS);

    let out = run(s, home.path(), &["rm", "-r", "--yes", &docs]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(keys(s).await, ["docs-old/y.txt", "docs.txt"]);
}

/// On the old code `ls s3://b/docs` listed `docs-old/` and `docs.txt` beside `docs/`.
async fn ls_and_get_name_the_folder(s: &TestServer) {
    put_keys(s, DOCS).await;
    let home = tempfile::tempdir().unwrap();
    let docs = format!("s3://{}/docs", s.bucket);
    let out = run(s, home.path(), &["ls", "--json", &docs]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].to_string())
        .collect();
    assert_eq!(listed, ["\"docs/sub/\"", "\"docs/a\""]);

    let dest = home.path().join("dest");
    let out = run(
        s,
        home.path(),
        &["get", "-r", &docs, dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut got: Vec<String> = walk(&dest);
    got.sort();
    assert_eq!(got, ["a", "sub/b"]);

    // Without -r a folder is not an object.
    let out = run(s, home.path(), &["get", &docs, dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is a folder; use -r"),
        "{}",
        text(&out.stderr)
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
        } else {
            out.push(name);
        }
    }
    out
}

/// Plain `rm` deletes one object and names what it cannot: a folder (use -r) or a key that is
/// not there. On the old code `rm` of a missing key or of a folder succeeded in silence.
/// (A key `docs` beside a folder `docs/` cannot exist on either test server: both keep objects
/// as files.)
async fn rm_of_a_key_a_folder_and_nothing(s: &TestServer) {
    put_keys(s, &["docs/a", "docs/b", "file"]).await;
    let home = tempfile::tempdir().unwrap();
    let b = &s.bucket;

    for folder in ["docs", "docs/"] {
        let out = run(s, home.path(), &["rm", &format!("s3://{b}/{folder}")]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("is a folder; use rm -r"), "{err}");
    }
    assert_eq!(keys(s).await, ["docs/a", "docs/b", "file"]);

    let out = run(s, home.path(), &["rm", &format!("s3://{b}/missing.txt")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("missing.txt does not exist"), "{err}");

    let out = run(s, home.path(), &["rm", &format!("s3://{b}/file")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(keys(s).await, ["docs/a", "docs/b"]);

    let out = run(
        s,
        home.path(),
        &["rm", "-r", "-y", &format!("s3://{b}/docs/")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(keys(s).await.is_empty());
}

/// A key is never taken for a folder of the same name. On the old code the embedded store
/// answered a HEAD (and a GET) of `single/` with the object `single`, so `put --overwrite FILE
/// s3://b/single` took `single` for a folder and sent `single/FILE` (refused, with an upload
/// left behind that could not be aborted), and `rm -r s3://b/single` offered to delete
/// `single/`.
async fn a_key_is_never_taken_for_a_folder(s: &TestServer) {
    put_keys(s, &["single"]).await;
    let home = tempfile::tempdir().unwrap();
    let b = &s.bucket;
    let file = random_file(home.path(), "new.bin", 20, 7);
    let new = std::fs::read(&file).unwrap();
    let p = file.to_str().unwrap();

    let out = run(s, home.path(), &["put", p, &format!("s3://{b}/single")]);
    assert!(
        !out.status.success(),
        "an existing key is not replaced unasked"
    );
    let err = text(&out.stderr);
    assert!(err.contains("single") && !err.contains("single/"), "{err}");
    let out = run(
        s,
        home.path(),
        &["put", "--overwrite", p, &format!("s3://{b}/single")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(keys(s).await, ["single"]);
    assert_eq!(crate::support::stored(s, "single").await.unwrap(), new);

    assert!(s.client.head(b, "single/").await.unwrap().is_none());
    let out = run(
        s,
        home.path(),
        &["rm", "-r", "-y", &format!("s3://{b}/single/")],
    );
    let said = text(&out.stderr);
    assert!(!said.contains("1 object"), "{said}");
    assert_eq!(keys(s).await, ["single"], "{said}");
    // A delete of `single/` (a folder marker, absent) succeeds and leaves the object alone,
    // alone and in a batch.
    s.client.delete(b, "single/").await.unwrap();
    let report = s.client.delete_many(b, &["single/".to_owned()]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(keys(s).await, ["single"]);
    assert_eq!(crate::support::stored(s, "single").await.unwrap(), new);
}

/// A folder just made with `mkdir` takes a file named into it without a trailing slash, as
/// `cp` would. On the old code the embedded store answered the HEAD (and a GET) of `new/` with
/// a 500, and the put failed ("HTTP 500: Internal Server Error").
async fn put_into_an_empty_folder(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let b = &s.bucket;
    let file = random_file(home.path(), "f.txt", 20, 8);
    let out = run(s, home.path(), &["mkdir", &format!("s3://{b}/new")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let head = s.client.head(b, "new/").await.unwrap();
    assert_eq!(head.map(|h| h.size), Some(0), "the folder's marker");
    assert_eq!(crate::support::stored(s, "new/").await, Some(Vec::new()));
    let out = run(
        s,
        home.path(),
        &["put", file.to_str().unwrap(), &format!("s3://{b}/new")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let keys = keys(s).await;
    assert!(keys.contains(&"new/f.txt".to_owned()), "{keys:?}");
    assert!(!keys.contains(&"new".to_owned()), "{keys:?}");
}

/// Emptying a bucket takes the bucket named alone, and a confirmation.
async fn emptying_a_bucket_needs_it_named(s: &TestServer) {
    put_keys(s, &["a", "b/c"]).await;
    let home = tempfile::tempdir().unwrap();
    let b = &s.bucket;
    let out = run(s, home.path(), &["rm", &format!("s3://{b}")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("whole bucket"),
        "{}",
        text(&out.stderr)
    );
    let out = run(s, home.path(), &["rm", "-r", &format!("s3://{b}/")]);
    assert!(!out.status.success());
    assert_eq!(keys(s).await, ["a", "b/c"]);
    let out = run(s, home.path(), &["rm", "-r", "--yes", &format!("s3://{b}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(keys(s).await.is_empty());
}

/// On the old code `put DIR s3://b/backup` went to `DIR/…` and `put a b s3://b/x` to `xa`,
/// `xb`; two files with one name were uploaded one over the other.
async fn put_destinations_follow_cp(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let files = home.path().join("files");
    let dir = files.join("DIR");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    random_file(&dir, "f.txt", 10, 1);
    random_file(&dir.join("sub"), "g.txt", 10, 2);
    let a = random_file(&files, "a", 10, 3);
    let bb = random_file(&files, "b", 10, 4);
    std::fs::create_dir_all(files.join("d1")).unwrap();
    std::fs::create_dir_all(files.join("d2")).unwrap();
    let x1 = random_file(&files.join("d1"), "x.txt", 10, 5);
    let x2 = random_file(&files.join("d2"), "x.txt", 11, 6);
    let b = &s.bucket;
    let p = |p: &Path| p.to_str().unwrap().to_owned();

    let out = run(
        s,
        home.path(),
        &["put", &p(&dir), &format!("s3://{b}/backup")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        s,
        home.path(),
        &["put", &p(&a), &p(&bb), &format!("s3://{b}/x")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        s,
        home.path(),
        &["put", &p(&a), &format!("s3://{b}/single")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // `backup` is a folder now: a single file goes inside it.
    let out = run(
        s,
        home.path(),
        &["put", &p(&a), &format!("s3://{b}/backup")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        s,
        home.path(),
        &["put", &p(&x1), &p(&x2), &format!("s3://{b}/same")],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("d2/x.txt") && err.contains("same/x.txt"),
        "{err}"
    );
    assert_eq!(
        keys(s).await,
        [
            "backup/DIR/f.txt",
            "backup/DIR/sub/g.txt",
            "backup/a",
            "same/x.txt",
            "single",
            "x/a",
            "x/b"
        ]
    );
    let kept = s.client.head(b, "same/x.txt").await.unwrap().unwrap();
    assert_eq!(kept.size, 10, "the first file keeps the key");
}

/// Symbolic links in a folder being uploaded: a linked file goes under its own name, a linked
/// folder is not followed and says so (the run fails, the rest is uploaded), and naming the
/// linked folder itself uploads it. On the old code the linked file was refused as a second
/// `real.txt` and the linked folder was left out in silence, with a successful exit.
async fn put_names_what_links_leave_out(s: &TestServer) {
    use std::os::unix::fs::symlink;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("L");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    random_file(&dir, "real.txt", 10, 1);
    random_file(&dir.join("sub"), "s.txt", 10, 2);
    symlink("real.txt", dir.join("link.txt")).unwrap();
    symlink("sub", dir.join("linked")).unwrap();
    let b = &s.bucket;
    let out = run(
        s,
        home.path(),
        &["put", dir.to_str().unwrap(), &format!("s3://{b}/links/")],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("L/linked is a symbolic link to a folder") && err.contains("not followed"),
        "{err}"
    );
    assert!(err.contains("3 uploaded, 0 skipped, 1 failed"), "{err}");
    let linked = dir.join("linked");
    let out = run(
        s,
        home.path(),
        &["put", linked.to_str().unwrap(), &format!("s3://{b}/links/")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let under: Vec<String> = keys(s)
        .await
        .into_iter()
        .filter(|k| k.starts_with("links/"))
        .collect();
    assert_eq!(
        under,
        [
            "links/L/link.txt",
            "links/L/real.txt",
            "links/L/sub/s.txt",
            "links/linked/s.txt"
        ]
    );
}

/// `get KEY -` (and `/dev/stdout`) writes the object to standard output and nothing else; a
/// folder or a missing key there is an error. On the old code `-` was taken for a file name
/// (a file called `-` appeared) and `/dev/stdout` was refused as a link.
async fn get_to_standard_output(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "up.bin", 300_000, 7);
    let bytes = std::fs::read(&file).unwrap();
    let b = &s.bucket;
    let out = run(
        s,
        home.path(),
        &[
            "put",
            file.to_str().unwrap(),
            &format!("s3://{b}/out/up.bin"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for dest in ["-", "/dev/stdout"] {
        let out = cli(s, home.path())
            .current_dir(home.path())
            .args(["get", &format!("s3://{b}/out/up.bin"), dest])
            .output()
            .unwrap();
        assert!(out.status.success(), "{dest}: {}", text(&out.stderr));
        assert!(out.stdout == bytes, "{dest}: {} bytes", out.stdout.len());
    }
    assert!(!home.path().join("-").exists(), "a file named -");
    for (args, says) in [
        (
            vec!["get", "-r", "out", "-"],
            "cannot be written to standard output",
        ),
        (vec!["get", "out", "-"], "is a folder"),
        (vec!["get", "out/nope.bin", "-"], "does not exist"),
        (
            vec!["get", "--ranges", "2", "out/up.bin", "-"],
            "--ranges does not apply to standard output",
        ),
        (
            vec!["get", "--ranges", "0", "out/up.bin", "x"],
            "0 is not in 1..=16",
        ),
    ] {
        let at = format!("s3://{b}/{}", args[args.len() - 2]);
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let n = args.len();
        args[n - 2] = at;
        let out = cli(s, home.path()).args(&args).output().unwrap();
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A reader that stops reading (`| head`, here a pipe closed before the command writes) ends
/// each command that prints on standard output quietly, with the status of a command stopped
/// by SIGPIPE (141), as `cat` or `ls` end; `put --link` still uploads everything and reports
/// it. On the old code `ls` and `get -` said "error: ... Broken pipe" and exited 1, and
/// `buckets`, `link` and `put --link` panicked.
async fn a_closed_output_ends_quietly(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "up.bin", 300_000, 8);
    let second = random_file(home.path(), "two.bin", 10, 9);
    let b = &s.bucket;
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let out = run(
        s,
        home.path(),
        &["put", file.to_str().unwrap(), &format!("s3://{b}/pipe/")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let object = format!("s3://{b}/pipe/up.bin");
    for args in [
        vec!["ls", "-r", &*format!("s3://{b}/pipe/")],
        vec!["buckets"],
        vec!["link", &object],
        vec!["get", &object, "-"],
        vec!["rm", "-r", "--dry-run", &*format!("s3://{b}/pipe/")],
    ] {
        let out = cli(s, home.path())
            .args(&args)
            .stdout(closed())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("error") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    let out = cli(s, home.path())
        .args([
            "put",
            "--link",
            "1h",
            file.to_str().unwrap(),
            second.to_str().unwrap(),
        ])
        .arg(format!("s3://{b}/links/"))
        .stdout(closed())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 uploaded, 0 skipped, 0 failed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let stored = keys(s).await;
    assert!(
        stored.iter().any(|k| k == "links/up.bin") && stored.iter().any(|k| k == "links/two.bin"),
        "{stored:?}"
    );
}

/// A missing bucket, refused credentials and a missing key are each named as such, with a
/// non-zero exit. On the old code `link` on a missing bucket said the key was missing.
async fn errors_are_named(s: &TestServer) {
    put_keys(s, &["here.txt"]).await;
    let home = tempfile::tempdir().unwrap();
    let file = random_file(home.path(), "up.txt", 10, 1);
    let up = file.to_str().unwrap();
    let nope = format!("nope-{}", s.bucket);
    let cases = |bucket: &str, key: &str| -> Vec<Vec<String>> {
        let at = format!("s3://{bucket}/{key}");
        [
            vec!["link", &at],
            vec!["get", &at, home.path().join("dl").to_str().unwrap()],
            vec!["ls", &at],
            vec!["rm", &at],
            vec!["put", up, &at],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .collect()
    };
    for args in cases(&nope, "here.txt") {
        let out = cli(s, home.path()).args(&args).output().unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains(&format!("bucket \"{nope}\" does not exist")),
            "{args:?}: {err}"
        );
    }
    for args in cases(&s.bucket, "here.txt") {
        let out = cli_with_secret(s, home.path(), "wrong-secret")
            .args(&args)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("access denied"), "{args:?}: {err}");
    }
    // Every command but put (which creates it) on a key that is not there.
    for args in cases(&s.bucket, "missing.txt").into_iter().take(4) {
        let out = cli(s, home.path()).args(&args).output().unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("missing.txt does not exist"),
            "{args:?}: {err}"
        );
    }
}

/// DeleteObjects goes in batches of at most 1000 keys.
async fn delete_many_in_batches(s: &TestServer) {
    use futures::StreamExt as _;
    let keys: Vec<String> = (0..1003).map(|n| format!("many/{n:04}/")).collect();
    futures::stream::iter(&keys)
        .for_each_concurrent(32, |k| async move {
            s.client.create_folder(&s.bucket, k).await.unwrap();
        })
        .await;
    let failed = s.client.delete_many(&s.bucket, &keys).await.failed;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(self::keys(s).await.is_empty());
}

/// A refused DeleteObjects names every key it carried, as refused credentials (the secret is
/// wrong), and deletes nothing.
async fn delete_many_reports_every_key_that_failed(s: &TestServer) {
    put_keys(s, &["a", "b"]).await;
    let creds = aws_credential_types::Credentials::new(&s.access_key, "wrong", None, None, "test");
    let wrong = s3share::s3::static_client(&s.endpoint, "us-east-1", creds, true).unwrap();
    let failed = wrong
        .delete_many(&s.bucket, &["a".to_owned(), "b".to_owned()])
        .await
        .failed;
    let names: Vec<&str> = failed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    for (_, e) in &failed {
        assert!(
            matches!(
                e,
                s3share::Error::Credentials {
                    problem: s3share::CredentialProblem::Rejected,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("access denied"), "{e}");
    }
    assert_eq!(keys(s).await, ["a", "b"]);
}

/// Keys that XML cannot carry as they are (an escape sequence, a carriage return) beside keys
/// with `+`, `%`, spaces and unicode: listed by their exact names, downloaded, deleted one by
/// one and with `-r`. Before, the embedded store's listing failed as a whole (with a wrong
/// hint about path-style), SeaweedFS's named them with U+FFFD, `get -r` found nothing,
/// `rm -r` said "deleted" and left them, and `rm` of the key failed with MalformedXML.
async fn keys_with_control_characters_are_listed_fetched_and_deleted(s: &TestServer) {
    let odd = [
        "odd/x\u{1b}[31mRED\u{1b}[0m\r.txt",
        "odd/a b+c%d é.txt",
        "odd/\u{1}bell",
    ];
    put_keys(s, &odd).await;
    let home = tempfile::tempdir().unwrap();
    let listed = keys(s).await;
    let mut want: Vec<String> = odd.iter().map(|k| (*k).to_owned()).collect();
    want.sort();
    assert_eq!(listed, want, "{}", s.name);
    let out = run(
        s,
        home.path(),
        &["ls", "--json", &format!("s3://{}/odd/", s.bucket)],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    for key in &odd {
        let json = serde_json::to_string(key).unwrap();
        assert!(
            text(&out.stdout).contains(&json),
            "{}: {key:?} in {}",
            s.name,
            text(&out.stdout)
        );
    }
    // Printed for a person, a key's control characters are escapes: an escape sequence in
    // someone's key must not drive the reader's terminal, nor a line break split an entry.
    let out = run(s, home.path(), &["ls", &format!("s3://{}/odd/", s.bucket)]);
    let listed = text(&out.stdout);
    assert!(
        !listed.contains('\u{1b}') && !listed.contains('\r'),
        "{}: {listed:?}",
        s.name
    );
    assert!(
        listed.contains("x\\x1b[31mRED\\x1b[0m\\r.txt"),
        "{}: {listed}",
        s.name
    );
    assert_eq!(listed.lines().count(), odd.len(), "{}: {listed}", s.name);
    let dest = home.path().join("back");
    let out = run(
        s,
        home.path(),
        &[
            "get",
            "-r",
            &format!("s3://{}/odd", s.bucket),
            dest.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    let got = std::fs::read_dir(&dest).unwrap().count();
    assert_eq!(got, odd.len(), "{}: files downloaded", s.name);

    let out = run(
        s,
        home.path(),
        &["rm", &format!("s3://{}/{}", s.bucket, odd[0])],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    assert_eq!(
        keys(s).await.len(),
        odd.len() - 1,
        "{}: rm of one key",
        s.name
    );
    let out = run(
        s,
        home.path(),
        &["rm", "-r", "--yes", &format!("s3://{}/odd", s.bucket)],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    assert_eq!(keys(s).await, Vec::<String>::new(), "{}: rm -r", s.name);
}

/// `link --put` names one object: a folder gets an error that says what to do (a presigned
/// URL for `up/` made `curl -T FILE URL` fail with SignatureDoesNotMatch), and an existing key
/// gets a note that the link replaces it.
async fn an_upload_link_names_one_object(s: &TestServer) {
    put_keys(s, &["up/there.txt"]).await;
    let home = tempfile::tempdir().unwrap();
    for folder in ["up/", "up"] {
        let at = format!("s3://{}/{folder}", s.bucket);
        let out = run(s, home.path(), &["link", "--put", &at]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{}: {folder}: {err}", s.name);
        assert!(
            err.contains("is a folder; an upload link names one object"),
            "{}: {err}",
            s.name
        );
        assert!(out.stdout.is_empty(), "{}: no link printed", s.name);
    }
    let out = run(
        s,
        home.path(),
        &["link", "--put", &format!("s3://{}/up/there.txt", s.bucket)],
    );
    assert!(out.status.success(), "{}", s.name);
    assert!(text(&out.stderr).contains("exists: an upload through this link replaces it"));
    let out = run(
        s,
        home.path(),
        &["link", "--put", &format!("s3://{}/up/new.txt", s.bucket)],
    );
    assert!(out.status.success(), "{}", s.name);
    assert!(!text(&out.stderr).contains("replaces it"));
}

/// Empty folders make the round trip: `put` of a tree sends its empty folders as folder
/// markers, and `get -r` makes a folder for each marker (and the destination of a folder with
/// nothing but markers). Both dropped them without a word ("0 uploaded, 0 failed").
async fn empty_folders_go_up_and_come_back(s: &TestServer) {
    let home = tempfile::tempdir().unwrap();
    let tree = home.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::create_dir_all(tree.join("c")).unwrap();
    std::fs::write(tree.join("a/f.txt"), "f").unwrap();
    let out = run(
        s,
        home.path(),
        &[
            "put",
            tree.to_str().unwrap(),
            &format!("s3://{}/up/", s.bucket),
        ],
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{}: {err}", s.name);
    assert!(
        err.contains("1 uploaded, 2 empty folders, 0 skipped, 0 failed"),
        "{}: {err}",
        s.name
    );
    let listed = keys(s).await;
    for key in ["up/tree/a/b/", "up/tree/c/", "up/tree/a/f.txt"] {
        assert!(
            listed.iter().any(|k| k == key),
            "{}: {key} in {listed:?}",
            s.name
        );
    }

    let back = home.path().join("back");
    let out = run(
        s,
        home.path(),
        &[
            "get",
            "-r",
            &format!("s3://{}/up/tree", s.bucket),
            back.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    assert!(
        back.join("a/b").is_dir() && back.join("c").is_dir(),
        "{}",
        s.name
    );
    assert_eq!(std::fs::read(back.join("a/f.txt")).unwrap(), b"f");

    // A folder with nothing but its marker.
    let out = run(
        s,
        home.path(),
        &["mkdir", &format!("s3://{}/bare/", s.bucket)],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    let bare = home.path().join("bare-copy");
    let out = run(
        s,
        home.path(),
        &[
            "get",
            "-r",
            &format!("s3://{}/bare", s.bucket),
            bare.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}: {}", s.name, text(&out.stderr));
    assert!(bare.is_dir(), "{}: the folder is made", s.name);
}

on_both_servers!(
    empty_folders_go_up_and_come_back,
    an_upload_link_names_one_object,
    keys_with_control_characters_are_listed_fetched_and_deleted,
    delete_many_reports_every_key_that_failed,
    rm_r_deletes_the_folder_and_nothing_else,
    ls_and_get_name_the_folder,
    rm_of_a_key_a_folder_and_nothing,
    emptying_a_bucket_needs_it_named,
    put_destinations_follow_cp,
    put_names_what_links_leave_out,
    get_to_standard_output,
    a_closed_output_ends_quietly,
    a_key_is_never_taken_for_a_folder,
    put_into_an_empty_folder,
    errors_are_named,
    delete_many_in_batches,
);
