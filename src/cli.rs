//! The command-line face: `ls`, `put`, `get`, `link`, `rm`, `mkdir`, `buckets`, `store`,
//! `serve`, `links`, `revoke`, `relay-secret`.
//!
//! Every command is a thin layer over the library; what it adds is terminal output (progress
//! bars on a terminal, plain lines or JSON otherwise), conflict questions, and exit codes:
//! non-zero whenever anything failed, even when the rest succeeded.

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt as _;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::links::{self, Link};
use crate::location::S3Location;
use crate::s3::{ConnectOptions, Connection, ObjectInfo, S3Client};
use crate::transfer::{self, OnConflict, TransferEvent, UploadItem, UploadOptions, UploadOutcome};

/// The Ctrl+C sentence of `--help`, shared by both builds.
macro_rules! ctrl_c_help {
    () => {
        "Ctrl+C during put or get cancels cleanly (multipart uploads aborted, partial files removed) and exits with code 130; a second Ctrl+C quits at once."
    };
}
#[cfg(feature = "gui")]
const AFTER_HELP: &str = concat!(
    "Without a command, s3share opens the desktop app.\n\n",
    ctrl_c_help!()
);
// Said in --help too, so that whoever installed the server build knows why no window opens.
#[cfg(not(feature = "gui"))]
const AFTER_HELP: &str = concat!(
    "This build has no desktop app (built without the `gui` feature): name a command.\n\n",
    ctrl_c_help!()
);

/// Share files through private S3 buckets.
///
/// With no AWS account configured (or with --local), s3share runs an embedded S3-compatible
/// store on 127.0.0.1 with a bucket named `s3share`.
#[derive(Debug, Parser)]
#[command(
    name = "s3share",
    version,
    about,
    long_about,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Where to connect (profile, endpoint, region, --local); global, so any command takes them.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do; none opens the desktop app (or, without the `gui` feature, explains why not).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where to connect.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// AWS profile from ~/.aws/config (default: $AWS_PROFILE, else "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL, else AWS).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Region to sign for (default: from the AWS config; buckets elsewhere are found anyway).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Force path-style addressing (automatic for IP addresses and localhost).
    #[arg(long, global = true)]
    pub path_style: bool,
    /// Use the embedded local store even when AWS credentials are configured.
    #[arg(long, global = true, conflicts_with_all = ["profile", "endpoint_url"])]
    pub local: bool,
}

impl ConnectionArgs {
    /// The library's view of these flags.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            force_path_style: self.path_style,
            local: self.local,
            store_paths: None,
            aws_files: None,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List buckets.
    Buckets {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List a folder (or everything below it with -r).
    ///
    /// `s3://bucket/docs` lists the folder `docs/` when there is one, else the object `docs`;
    /// a path that names neither is an error.
    Ls {
        /// s3://bucket/folder (default: the embedded store's bucket).
        location: Option<S3Location>,
        /// List every key below the folder.
        #[arg(short, long)]
        recursive: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Upload files and folders (folders recursively) through presigned URLs.
    ///
    /// Destinations work like `cp -r`: folders and several files go under the destination
    /// folder, with or without a trailing `/` (`put DIR s3://b/backup` gives backup/DIR/...);
    /// one file sent to s3://bucket/key becomes that key, unless `key/` is an existing folder
    /// (then key/FILE). Two files that would get the same key: the second is reported, not sent.
    ///
    /// A multipart upload that was interrupted without a clean-up (the process killed, a crash,
    /// the network gone) continues when the same command runs again: the parts the server
    /// holds are checked against the file and kept, only the rest is sent. If the file changed
    /// in between, the old upload is aborted and the file sent from the start (and it says so).
    Put {
        /// Files or folders, then the destination s3://bucket/folder (or s3://bucket/key for one file).
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
        /// Replace objects that already exist.
        #[arg(long, conflicts_with_all = ["skip_existing", "keep_both"])]
        overwrite: bool,
        /// Keep objects that already exist and skip those files.
        #[arg(long, conflicts_with = "keep_both")]
        skip_existing: bool,
        /// Keep objects that already exist and upload those files beside them, as
        /// `name (1).ext` (the first number free), as the app's "Keep both" does.
        #[arg(long)]
        keep_both: bool,
        /// Print a download link for each uploaded file, valid this long (e.g. 1h).
        #[arg(long, value_name = "EXPIRES", num_args = 0..=1, default_missing_value = "1h")]
        link: Option<String>,
    },
    /// Download an object, or a folder with -r.
    ///
    /// With -r, `s3://bucket/docs` means the folder `docs/` (its keys, not every key starting
    /// with "docs"); without -r it means the object `docs`.
    ///
    /// A download interrupted without a clean-up (the process killed, a crash, the network
    /// gone) continues when the same command runs again: it fetches only the missing bytes,
    /// and only while the object is the same version (its ETag); a changed object is
    /// downloaded from the start.
    Get {
        /// s3://bucket/key (or s3://bucket/folder with -r).
        location: S3Location,
        /// Destination file or folder (default: the current folder).
        dest: Option<PathBuf>,
        /// Download everything in the folder, keeping its structure.
        #[arg(short, long)]
        recursive: bool,
        /// Replace local files that already exist.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print a presigned link to download (or with --put, upload) an object; with --relay, a
    /// stable link served by `s3share serve`.
    Link {
        /// s3://bucket/key (with --relay, also s3://bucket/folder/ for a folder link).
        location: S3Location,
        /// How long the link works: 15m, 1h, 1d, 7d (at most 7 days; relay links: any length,
        /// e.g. 30d).
        #[arg(long, default_value = "1h")]
        expires: String,
        /// File name the browser saves the download as (direct and relay links to one file).
        #[arg(long)]
        filename: Option<String>,
        /// A link that uploads with `curl -T FILE URL` instead of downloading.
        #[arg(long)]
        put: bool,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
        /// A stable link through the relay (`s3share serve`) instead of a presigned URL: signed
        /// afresh on every request, so it can last past 7 days (e.g. --expires 30d). A location
        /// ending in `/` makes a folder link (with --put, `curl -T FILE <link>NAME` uploads).
        #[arg(long)]
        relay: bool,
        /// Relay link: allow DELETE (`curl -L -X DELETE <link>`).
        #[arg(long, requires = "relay")]
        delete: bool,
        /// Relay link with --put: allow replacing existing objects.
        #[arg(long, requires = "relay")]
        overwrite: bool,
        /// Relay link with --put: largest upload accepted, e.g. 100M.
        #[arg(long, requires = "relay", value_name = "SIZE")]
        max_size: Option<String>,
        /// Relay link: a note kept with the link in the ledger (shown by `s3share links`).
        #[arg(long, requires = "relay")]
        note: Option<String>,
        /// Relay link: the relay's address as teammates reach it (default:
        /// $S3SHARE_RELAY_PUBLIC_URL, else the address the last `serve` with the same secret
        /// noted, else http://127.0.0.1:8457).
        #[arg(long, requires = "relay", value_name = "URL")]
        public_url: Option<String>,
        /// Relay link: the relay's secret file (default: $S3SHARE_RELAY_SECRET_FILE, else
        /// relay-secret in the config folder); must be the one `serve` uses.
        #[arg(long, requires = "relay", value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// Delete objects (or folders with -r).
    ///
    /// `rm s3://bucket/key` deletes that one object (a key that does not exist is an error).
    /// `rm -r s3://bucket/docs` deletes the folder `docs/` and everything in it, never other
    /// keys that merely start with "docs" (when both an object `docs` and a folder `docs/`
    /// exist, -r means the folder and plain rm the object). Before deleting, -r shows how many
    /// objects and bytes will go and asks (y/N) on a terminal; without a terminal it refuses
    /// unless --yes is given. Emptying a whole bucket needs it named on its own (s3://bucket)
    /// and, on a terminal, its name typed to confirm.
    Rm {
        /// s3://bucket/key ...
        #[arg(required = true)]
        locations: Vec<S3Location>,
        /// Delete folders and everything in them.
        #[arg(short, long)]
        recursive: bool,
        /// Do not ask before deleting (for scripts; without it and without a terminal, rm -r
        /// refuses).
        #[arg(short, long)]
        yes: bool,
        /// Print what would be deleted and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create an empty folder.
    Mkdir {
        /// s3://bucket/prefix/
        location: S3Location,
    },
    /// Keep the embedded store running (so its links work) until Ctrl+C.
    Store,
    /// Run the relay: answer `link --relay` links with redirects to freshly signed S3 URLs,
    /// until Ctrl+C. With -v, one access-log line per request (never tokens or signed URLs).
    ///
    /// Links revoked with `s3share revoke` are refused within a second (the relay polls each
    /// served bucket's small revocation list; requests are checked in memory). The secret file
    /// is re-read when it changes, so `s3share relay-secret rotate` needs no restart. Several
    /// instances with one secret file serve the same links (e.g. behind a load balancer, each
    /// with the same --public-url).
    Serve {
        /// Address to listen on; anything but loopback is reachable from other machines.
        #[arg(long, value_name = "ADDR:PORT", default_value = crate::relay::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// The relay's address as teammates reach it (e.g. https://files.example.com); its
        /// host name is accepted in the Host header besides the listen address and localhost.
        #[arg(long, value_name = "URL", env = "S3SHARE_RELAY_PUBLIC_URL")]
        public_url: Option<String>,
        /// The secret file (default: $S3SHARE_RELAY_SECRET_FILE, else relay-secret in the
        /// config folder; created when missing).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// List the relay links recorded in a bucket: id, state, expiry, methods, scope, note.
    ///
    /// Every link `link --relay` makes is recorded (under `.s3share/` in its bucket, which
    /// listings hide); its state is active, expired or revoked. Tokens are never stored, so the
    /// ledger holds no working link.
    Links {
        /// s3://bucket (default: the embedded store's bucket, else every bucket).
        location: Option<S3Location>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a relay link by its id: every running `serve` refuses it within a second.
    Revoke {
        /// The link id (printed by `link --relay`, listed by `s3share links`).
        id: String,
        /// s3://bucket the link is for (default: the embedded store's bucket, else the bucket
        /// whose ledger holds the id).
        location: Option<S3Location>,
    },
    /// Manage the relay's secret.
    #[command(subcommand)]
    RelaySecret(RelaySecretCommand),
}

/// `s3share relay-secret …`.
#[derive(Debug, Subcommand)]
pub enum RelaySecretCommand {
    /// Replace the secret: new links use the new one, links of the old one keep working for
    /// the grace period, then stop. A running `serve` with this secret file picks the change up
    /// within a second, without a restart. After a leak, use --grace 0.
    Rotate {
        /// How long links of the old secret keep working (e.g. 0, 1h, 7d).
        #[arg(long, default_value = "7d")]
        grace: String,
        /// The secret file (default: $S3SHARE_RELAY_SECRET_FILE, else relay-secret in the
        /// config folder).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
}

/// Runs a subcommand (without one, the binary opens the desktop app instead); `Ok(false)`
/// means some items failed (exit code 1).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let Some(command) = cli.command else {
        use clap::CommandFactory as _;
        Cli::command().print_help()?;
        return Ok(true);
    };
    if let Command::RelaySecret(RelaySecretCommand::Rotate { grace, secret_file }) = &command {
        // Local only: no S3 connection needed.
        return relay_secret_rotate(grace, secret_file.as_deref());
    }
    let conn = cli.connection.options().connect().await?;
    match command {
        Command::Buckets { json } => buckets(&conn, json).await,
        Command::Ls {
            location,
            recursive,
            json,
        } => ls(&conn, location, recursive, json).await,
        Command::Put {
            args,
            overwrite,
            skip_existing,
            keep_both,
            link,
        } => {
            let on_conflict = match (overwrite, skip_existing, keep_both) {
                (true, _, _) => Some(PutConflict::Overwrite),
                (_, true, _) => Some(PutConflict::Skip),
                (_, _, true) => Some(PutConflict::KeepBoth),
                _ => None,
            };
            put(&conn, args, on_conflict, link).await
        }
        Command::Get {
            location,
            dest,
            recursive,
            overwrite,
        } => get(&conn, location, dest, recursive, overwrite).await,
        Command::Link {
            location,
            expires,
            filename,
            put,
            json,
            relay: true,
            delete,
            overwrite,
            max_size,
            note,
            public_url,
            secret_file,
        } => {
            let options = RelayLinkOptions {
                filename,
                put,
                delete,
                overwrite,
                max_size,
                note,
                public_url,
                secret_file,
            };
            relay_link(&conn, location, &expires, options, json).await
        }
        Command::Link {
            location,
            expires,
            filename,
            put,
            json,
            ..
        } => link(&conn, location, &expires, filename, put, json).await,
        Command::Rm {
            locations,
            recursive,
            yes,
            dry_run,
        } => rm(&conn, locations, recursive, yes, dry_run).await,
        Command::Mkdir { location } => {
            let key = conn
                .client
                .create_folder(&location.bucket, &location.key)
                .await?;
            println!("created s3://{}/{key}", location.bucket);
            Ok(true)
        }
        Command::Store => store(&conn).await,
        Command::Serve {
            listen,
            public_url,
            secret_file,
        } => serve(&conn, listen, public_url, secret_file).await,
        Command::Links { location, json } => list_links(&conn, location, json).await,
        Command::Revoke { id, location } => revoke(&conn, &id, location).await,
        Command::RelaySecret(_) => unreachable!("handled before connecting"),
    }
}

async fn buckets(conn: &Connection, json: bool) -> anyhow::Result<bool> {
    for name in conn.client.list_buckets().await? {
        if json {
            println!("{}", serde_json::json!({ "bucket": name }));
        } else {
            println!("{name}");
        }
    }
    Ok(true)
}

fn default_location(conn: &Connection, location: Option<S3Location>) -> anyhow::Result<S3Location> {
    match (location, conn.default_bucket()) {
        (Some(l), _) => Ok(l),
        (None, Some(b)) => Ok(S3Location {
            bucket: b.to_owned(),
            key: String::new(),
        }),
        (None, None) => bail!("name a location: s3://bucket/folder"),
    }
}

/// What a path on S3 names: an object, a folder, both, or nothing. A path names a folder or a
/// key, never "every key starting with these letters".
#[derive(Debug, Default)]
struct Probe {
    /// The object at exactly this key, when the path does not end with `/`.
    object: Option<ObjectInfo>,
    /// The folder `key/` (or the whole bucket, `""`) when it exists.
    folder: Option<String>,
}

/// The folder prefix a key names: itself when empty or ending with `/`, else `key/`.
fn folder_of(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_owned()
    } else {
        format!("{key}/")
    }
}

/// Finds out what `location` names. Listing first also names the bucket's problems (it does
/// not exist, access denied), which HEAD cannot: it answers a bare 404 or 403 for all of them.
async fn probe(client: &S3Client, location: &S3Location) -> anyhow::Result<Probe> {
    let (bucket, key) = (&location.bucket, &location.key);
    let prefix = folder_of(key);
    let first_page = {
        let mut pages = std::pin::pin!(client.list(bucket, &prefix, true));
        pages.next().await.transpose()?.unwrap_or_default()
    };
    let mut folder_exists = prefix.is_empty() || !first_page.objects.is_empty();
    if !folder_exists {
        // A folder with nothing in it but its own `folder/` marker.
        folder_exists = client.head(bucket, &prefix).await?.is_some();
    }
    let object = if key.is_empty() || key.ends_with('/') {
        None
    } else if folder_exists {
        // Servers that keep objects as files (SeaweedFS, the embedded store) answer HEAD on a
        // folder's name as if it were an object (200, or an error): only a listing tells.
        // The key itself sorts first among the keys it prefixes, so the first page has it.
        let mut pages = std::pin::pin!(client.list(bucket, key, true));
        let page = pages.next().await.transpose()?.unwrap_or_default();
        page.objects
            .into_iter()
            .find(|o| o.key == *key)
            .map(|o| ObjectInfo {
                size: o.size,
                modified: o.modified,
                etag: o.etag,
                content_type: None,
            })
    } else {
        client.head(bucket, key).await?
    };
    Ok(Probe {
        object,
        folder: folder_exists.then_some(prefix),
    })
}

fn no_such_key(location: &S3Location) -> Error {
    Error::NoSuchKey {
        bucket: location.bucket.clone(),
        key: location.key.clone(),
    }
}

async fn ls(
    conn: &Connection,
    location: Option<S3Location>,
    recursive: bool,
    json: bool,
) -> anyhow::Result<bool> {
    use std::io::Write as _;
    let location = default_location(conn, location)?;
    let found = probe(&conn.client, &location).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let prefix = match (found.folder, found.object) {
        (Some(prefix), _) => prefix,
        (None, Some(o)) => {
            // `ls` of an object shows that object, as `ls FILE` does.
            let entry = crate::s3::ObjectEntry {
                key: location.key.clone(),
                size: o.size,
                modified: o.modified,
                etag: o.etag,
            };
            write_entry(&mut out, &entry, json)?;
            out.flush()?;
            return Ok(true);
        }
        (None, None) => return Err(no_such_key(&location).into()),
    };
    let mut pages = std::pin::pin!(conn.client.list(&location.bucket, &prefix, recursive));
    while let Some(page) = pages.next().await {
        let page = page?;
        for folder in &page.folders {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "type": "folder", "key": folder })
                )?;
            } else {
                writeln!(out, "{:>12}  {:16}  {folder}", "DIR", "")?;
            }
        }
        for o in &page.objects {
            write_entry(&mut out, o, json)?;
        }
        // Show each page as it arrives: a huge folder starts printing at once.
        out.flush()?;
    }
    Ok(true)
}

fn write_entry(
    out: &mut impl std::io::Write,
    o: &crate::s3::ObjectEntry,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let rfc3339 = o.modified.map(links::format_rfc3339);
        writeln!(
            out,
            "{}",
            serde_json::json!({ "type": "file", "key": o.key, "size": o.size, "modified": rfc3339, "etag": o.etag })
        )
    } else {
        let modified = o.modified.map(links::format_time_short).unwrap_or_default();
        writeln!(out, "{:>12}  {:16}  {}", o.size, modified, o.key)
    }
}

/// Ctrl+C handling for transfers: the first cancels `token` (the transfers then clean up:
/// multipart uploads aborted, partial files removed) and the command exits "cancelled"; a
/// second exits at once with code 130.
fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    #[cfg(unix)]
    {
        // Registered here, before any transfer starts, so an early Ctrl+C is never lost to
        // the default handler (which would kill the process and leave uploads open).
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(mut signals) => {
                tokio::spawn(async move {
                    if signals.recv().await.is_some() {
                        eprintln!("cancelling (cleaning up; press Ctrl+C again to quit at once)");
                        cancel.cancel();
                    }
                    if signals.recv().await.is_some() {
                        std::process::exit(130);
                    }
                });
            }
            Err(e) => tracing::warn!("cannot handle Ctrl+C: {e}"),
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling (cleaning up; press Ctrl+C again to quit at once)");
            cancel.cancel();
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    token
}

/// Terminal progress for a batch of transfers: one bar for the bytes of the whole batch.
struct BatchProgress {
    bars: MultiProgress,
    total: ProgressBar,
    /// Bytes done per item, to turn per-item totals into a batch total.
    done: Mutex<Vec<u64>>,
}

impl BatchProgress {
    fn new(sizes: &[u64], verb: &str) -> Arc<Self> {
        let bars = MultiProgress::new();
        if !std::io::stderr().is_terminal() {
            bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let total = bars.add(ProgressBar::new(sizes.iter().sum()));
        total.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        total.set_message(format!("{verb} {} file(s)", sizes.len()));
        Arc::new(Self {
            bars,
            total,
            done: Mutex::new(vec![0; sizes.len()]),
        })
    }

    fn sink(self: &Arc<Self>) -> transfer::EventSink {
        self.sink_from(0)
    }

    /// A sink for a sub-batch whose item `id` is item `first + id` of this batch.
    fn sink_from(self: &Arc<Self>, first: usize) -> transfer::EventSink {
        let me = self.clone();
        Arc::new(move |e| {
            if let TransferEvent::Progress { id, done } = e {
                let mut all = me.done.lock();
                if let Some(slot) = all.get_mut(first + id) {
                    *slot = done;
                }
                me.total.set_position(all.iter().sum());
            }
        })
    }

    fn println(&self, line: String) {
        if self.bars.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.bars.println(line);
        }
    }
}

/// What `put` does with keys that exist, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PutConflict {
    /// `--overwrite`.
    Overwrite,
    /// `--skip-existing`.
    Skip,
    /// `--keep-both`: the file goes to the first free `name (n).ext`.
    KeepBoth,
}

async fn put(
    conn: &Connection,
    mut args: Vec<String>,
    on_conflict: Option<PutConflict>,
    link: Option<String>,
) -> anyhow::Result<bool> {
    let dest = S3Location::parse(&args.pop().expect("clap requires two arguments"))?;
    let link_expiry = link.as_deref().map(links::parse_expiry).transpose()?;
    let paths: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    let client = &conn.client;
    // Up front: a missing bucket or refused credentials are named once, not once per file; and
    // a single file sent to `s3://b/docs` goes into the folder `docs/` when there is one.
    let found = probe(client, &dest).await?;
    let dest_is_folder = found.folder.is_some() && !dest.key.is_empty();
    let (inputs, scan_errors) = transfer::scan_inputs(&paths);
    let (items, plan_errors) = transfer::plan_keys(&dest.key, dest_is_folder, &inputs);
    let errors: Vec<Error> = scan_errors.into_iter().chain(plan_errors).collect();
    let mut ok = errors.is_empty();
    for e in &errors {
        eprintln!("error: {e}");
    }

    // Batches with their own conflict rule: overwriting only what the user allowed, and
    // If-None-Match protection for everything else (a key created meanwhile is a conflict).
    let mut batches: Vec<(OnConflict, Vec<UploadItem>)> = Vec::new();
    let mut skipped_by_answer = Vec::new();
    match on_conflict {
        Some(PutConflict::Overwrite) => batches.push((OnConflict::Overwrite, items)),
        Some(PutConflict::Skip) => batches.push((OnConflict::Skip, items)),
        // Renamed copies are still only created, never replace anything.
        Some(PutConflict::KeepBoth) => batches.push((
            OnConflict::Fail,
            keep_both(client, &dest.bucket, items).await?,
        )),
        None if std::io::stdin().is_terminal() => {
            let answers = ask_about_conflicts(client, &dest.bucket, items).await?;
            skipped_by_answer = answers.skip;
            batches.push((OnConflict::Overwrite, answers.overwrite));
            batches.push((OnConflict::Fail, answers.create));
        }
        None => batches.push((OnConflict::Fail, items)),
    }
    for item in &skipped_by_answer {
        eprintln!("skipped {} (exists)", item.key);
    }
    // After the questions: Ctrl+C at a question just quits, nothing has started yet.
    let cancel = cancel_on_ctrl_c();

    let sizes: Vec<u64> = batches
        .iter()
        .flat_map(|(_, b)| b.iter().map(|i| i.size))
        .collect();
    let progress = BatchProgress::new(&sizes, "uploading");
    // An interrupted run of this same command left records there: its uploads continue.
    let resume = transfer::ResumeStore::for_user().map(|store| {
        let progress = progress.clone();
        store.with_notices(Arc::new(move |notice| progress.println(notice.to_string())))
    });
    let mut first = 0;
    let runs = batches.iter().map(|(choice, batch)| {
        let options = UploadOptions {
            on_conflict: *choice,
            resume: resume.clone(),
            ..UploadOptions::default()
        };
        let sink = progress.sink_from(first);
        first += batch.len();
        let cancel = &cancel;
        let bucket = &dest.bucket;
        async move {
            client
                .upload_many(bucket, batch, &options, sink, cancel)
                .await
        }
    });
    let results = futures::future::join_all(runs).await;
    progress.total.finish_and_clear();
    let (mut uploaded, mut skipped, mut failed) = (0, skipped_by_answer.len(), 0);
    let all = batches
        .iter()
        .zip(results)
        .flat_map(|((_, batch), results)| batch.iter().zip(results));
    for (item, result) in all {
        match result {
            Ok(UploadOutcome::Uploaded { bytes, .. }) => {
                uploaded += 1;
                progress.println(format!(
                    "uploaded {} → s3://{}/{} ({bytes} bytes)",
                    item.path.display(),
                    dest.bucket,
                    item.key
                ));
                if let Some(expiry) = link_expiry {
                    let l = client
                        .link_get(&dest.bucket, &item.key, expiry, None)
                        .await?;
                    print_link(conn, &l, false);
                }
            }
            Ok(UploadOutcome::Skipped) => {
                skipped += 1;
                progress.println(format!(
                    "skipped {} (s3://{}/{} exists)",
                    item.path.display(),
                    dest.bucket,
                    item.key
                ));
            }
            Err(Error::Cancelled) => failed += 1,
            Err(e) => {
                failed += 1;
                ok = false;
                let hint = if matches!(e, Error::AlreadyExists { .. }) {
                    " (use --overwrite, --skip-existing or --keep-both)"
                } else {
                    ""
                };
                progress.println(format!("error: {}: {e}{hint}", item.path.display()));
            }
        }
    }
    eprintln!(
        "{uploaded} uploaded, {skipped} skipped, {} failed",
        failed + errors.len()
    );
    if cancel.is_cancelled() {
        return Err(Error::Cancelled.into());
    }
    Ok(ok)
}

/// `items` with each key that exists renamed to the first free `name (n).ext`, never one that
/// another item of the batch goes to.
async fn keep_both(
    client: &S3Client,
    bucket: &str,
    mut items: Vec<UploadItem>,
) -> anyhow::Result<Vec<UploadItem>> {
    let existing = client
        .existing_keys(bucket, items.iter().map(|i| i.key.clone()))
        .await?;
    let mut reserved: HashSet<String> = items.iter().map(|i| i.key.clone()).collect();
    for item in items.iter_mut().filter(|i| existing.contains(&i.key)) {
        let free = client.free_key(bucket, &item.key, &reserved).await?;
        reserved.insert(free.clone());
        item.key = free;
    }
    Ok(items)
}

/// The user's answers about existing keys.
#[derive(Debug, Default)]
struct ConflictAnswers {
    /// Keys that exist and may be replaced.
    overwrite: Vec<UploadItem>,
    /// Keys that did not exist: they must still not replace anything created meanwhile.
    create: Vec<UploadItem>,
    /// Keys that exist and are kept.
    skip: Vec<UploadItem>,
}

/// Asks, for each file whose key exists, whether to overwrite it.
async fn ask_about_conflicts(
    client: &S3Client,
    bucket: &str,
    items: Vec<UploadItem>,
) -> anyhow::Result<ConflictAnswers> {
    let existing = client
        .existing_keys(bucket, items.iter().map(|i| i.key.clone()))
        .await?;
    let mut answers = ConflictAnswers::default();
    let mut all: Option<bool> = None;
    for item in items {
        if !existing.contains(&item.key) {
            answers.create.push(item);
            continue;
        }
        let overwrite = match all {
            Some(a) => a,
            None => {
                let answer = prompt(&format!(
                    "s3://{bucket}/{} exists. Overwrite? [y]es, [n]o, [a]ll, n[o]ne: ",
                    item.key
                ))?;
                match answer.as_str() {
                    "y" | "yes" => true,
                    "a" | "all" => {
                        all = Some(true);
                        true
                    }
                    "o" | "none" => {
                        all = Some(false);
                        false
                    }
                    _ => false,
                }
            }
        };
        if overwrite {
            answers.overwrite.push(item);
        } else {
            answers.skip.push(item);
        }
    }
    Ok(answers)
}

/// Asks on the terminal; the answer trimmed and in lower case.
fn prompt(question: &str) -> anyhow::Result<String> {
    Ok(prompt_verbatim(question)?.to_ascii_lowercase())
}

/// Asks on the terminal; the answer trimmed of its line end and spaces.
fn prompt_verbatim(question: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

async fn get(
    conn: &Connection,
    location: S3Location,
    dest: Option<PathBuf>,
    recursive: bool,
    overwrite: bool,
) -> anyhow::Result<bool> {
    let client = &conn.client;
    let dest = dest.unwrap_or_else(|| PathBuf::from("."));
    let found = probe(client, &location).await?;
    // A trailing `/` (or the bucket alone) names a folder even without -r.
    let want_folder = recursive || location.is_prefix();
    let (items, mut errors) = match (found.folder, found.object) {
        (Some(prefix), _) if want_folder => {
            let listing = client.list_all(&location.bucket, &prefix, true).await?;
            transfer::plan_download(&listing.objects, &prefix, &dest)
        }
        (_, Some(object)) => {
            let path = if dest.is_dir() || dest.as_os_str().to_string_lossy().ends_with('/') {
                transfer::confined_path(&dest, location.file_name())?
            } else {
                dest.clone()
            };
            (
                vec![transfer::DownloadItem::file(
                    location.key.clone(),
                    path,
                    object.size,
                )],
                Vec::new(),
            )
        }
        (Some(_), None) => bail!("{location} is a folder; use -r to download it"),
        (None, None) => return Err(no_such_key(&location).into()),
    };
    let cancel = cancel_on_ctrl_c();
    let sizes: Vec<u64> = items.iter().map(|i| i.size).collect();
    let progress = BatchProgress::new(&sizes, "downloading");
    // A download interrupted by a kill, a crash or the network continues where it stopped.
    let resume = transfer::ResumeStore::for_user().map(|store| {
        let progress = progress.clone();
        store.with_notices(Arc::new(move |notice| progress.println(notice.to_string())))
    });
    let options = transfer::DownloadOptions {
        overwrite,
        resume,
        concurrency: transfer::Concurrency::DEFAULT,
    };
    let results = client
        .download_many(&location.bucket, &items, &options, progress.sink(), &cancel)
        .await;
    progress.total.finish_and_clear();
    for (item, r) in items.iter().zip(results) {
        match r {
            Ok(n) => progress.println(format!(
                "downloaded s3://{}/{} → {} ({n} bytes)",
                location.bucket,
                item.key,
                item.path.display()
            )),
            Err(Error::Cancelled) => {}
            Err(e) => errors.push(e),
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    if cancel.is_cancelled() {
        return Err(Error::Cancelled.into());
    }
    Ok(errors.is_empty())
}

async fn link(
    conn: &Connection,
    location: S3Location,
    expires: &str,
    filename: Option<String>,
    put: bool,
    json: bool,
) -> anyhow::Result<bool> {
    if location.key.is_empty() {
        bail!("name an object: s3://{}/KEY", location.bucket);
    }
    let expires = links::parse_expiry(expires)?;
    let client = &conn.client;
    // HEAD answers a bare 404 both for a missing key and a missing bucket (and 403 without a
    // reason): the probe's listing tells them apart.
    let found = probe(client, &location).await?;
    let link = if put {
        client
            .link_put(&location.bucket, &location.key, expires)
            .await?
    } else {
        if found.object.is_none() {
            if found.folder.is_some() {
                bail!("{location} is a folder; links point at single objects");
            }
            return Err(no_such_key(&location)).context("cannot link to it");
        }
        client
            .link_get(
                &location.bucket,
                &location.key,
                expires,
                filename.as_deref(),
            )
            .await?
    };
    print_link(conn, &link, json);
    Ok(true)
}

fn print_link(conn: &Connection, link: &Link, json: bool) {
    let local_note = conn.local_store.as_ref().map(|s| {
        format!(
            "this link points at the embedded store on 127.0.0.1:{}; it works on this machine while an s3share process runs (keep one with `s3share store`)",
            s.state().port
        )
    });
    if json {
        let mut v = serde_json::to_value(link).expect("links serialize");
        v["warning"] = serde_json::json!(link.warning());
        v["local_store_note"] = serde_json::json!(local_note);
        println!("{v}");
        return;
    }
    println!("{}", link.url);
    eprintln!(
        "expires {} (in {})",
        links::format_time(link.expires_at),
        links::format_duration(
            link.expires_at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        )
    );
    if let Some(w) = link.warning() {
        eprintln!("warning: {w}");
    }
    if let Some(note) = local_note {
        eprintln!("note: {note}");
    }
}

/// How many keys `rm -r` shows before asking.
const SHOWN_BEFORE_ASKING: usize = 10;

async fn rm(
    conn: &Connection,
    locations: Vec<S3Location>,
    recursive: bool,
    yes: bool,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let client = &conn.client;
    let mut ok = true;
    // What each location names, resolved before anything is deleted.
    let mut targets: Vec<(String, Vec<ObjectEntryLite>)> = Vec::new();
    let mut whole_buckets: Vec<String> = Vec::new();
    let mut markers: Vec<(String, String)> = Vec::new();
    for location in &locations {
        let found = probe(client, location).await?;
        let keys = match (found.folder, found.object) {
            (Some(prefix), _) if recursive => {
                if prefix.is_empty() {
                    whole_buckets.push(location.bucket.clone());
                }
                let keys: Vec<ObjectEntryLite> = client
                    .list_all(&location.bucket, &prefix, true)
                    .await?
                    .objects
                    .into_iter()
                    .map(|o| (o.key, o.size))
                    .collect();
                if keys.is_empty() && !prefix.is_empty() {
                    // An empty folder: only its own `folder/` marker (which listings leave out).
                    vec![(prefix, 0)]
                } else {
                    if !prefix.is_empty() {
                        // The folder's own empty marker, if it has one, goes with it.
                        markers.push((location.bucket.clone(), prefix));
                    }
                    keys
                }
            }
            (_, Some(object)) => vec![(location.key.clone(), object.size)],
            (Some(prefix), None) if prefix.is_empty() => {
                ok = false;
                eprintln!(
                    "error: {location} is a whole bucket; to delete everything in it use rm -r s3://{}",
                    location.bucket
                );
                continue;
            }
            (Some(_), None) => {
                ok = false;
                eprintln!(
                    "error: {location} is a folder; use rm -r to delete it and everything in it"
                );
                continue;
            }
            (None, None) => {
                ok = false;
                eprintln!("error: {}", no_such_key(location));
                continue;
            }
        };
        targets.push((location.bucket.clone(), keys));
    }

    let count: usize = targets.iter().map(|(_, k)| k.len()).sum();
    let bytes: u64 = targets
        .iter()
        .flat_map(|(_, k)| k.iter().map(|(_, s)| s))
        .sum();
    if dry_run {
        for (bucket, keys) in &targets {
            for (key, _) in keys {
                println!("would delete s3://{bucket}/{key}");
            }
        }
        eprintln!(
            "{count} object(s), {}: nothing deleted (--dry-run)",
            HumanBytes(bytes)
        );
        return Ok(ok);
    }
    if recursive && count > 0 && !yes {
        eprintln!("about to delete {count} object(s), {}:", HumanBytes(bytes));
        let all = targets
            .iter()
            .flat_map(|(b, keys)| keys.iter().map(move |(k, _)| (b, k)));
        for (bucket, key) in all.take(SHOWN_BEFORE_ASKING) {
            eprintln!("  s3://{bucket}/{key}");
        }
        if count > SHOWN_BEFORE_ASKING {
            eprintln!("  … and {} more", count - SHOWN_BEFORE_ASKING);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "not deleting without confirmation: there is no terminal to ask on; pass --yes to delete them (or --dry-run to list them)"
            );
        }
        for bucket in &whole_buckets {
            let answer = prompt_verbatim(&format!(
                "This empties the whole bucket {bucket}. Type its name to confirm: "
            ))?;
            if answer != *bucket {
                bail!("not deleting: the name typed was not {bucket:?}");
            }
        }
        if whole_buckets.is_empty() {
            let answer = prompt("Delete them? [y/N]: ")?;
            if !matches!(answer.as_str(), "y" | "yes") {
                bail!("not deleting: not confirmed");
            }
        }
    }

    let (mut deleted, mut failed) = (0usize, 0usize);
    for (bucket, keys) in &targets {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let report = client.delete_many(bucket, &names).await;
        for key in &report.deleted {
            deleted += 1;
            eprintln!("deleted s3://{bucket}/{key}");
        }
        for (key, e) in &report.failed {
            failed += 1;
            eprintln!("error: not deleted: s3://{bucket}/{key}: {e}");
        }
    }
    if failed == 0 {
        for (bucket, marker) in &markers {
            // Not an object the user sees (listings leave it out): S3 reports success whether
            // or not it exists, some servers an error, which means nothing here.
            if let Err(e) = client.delete(bucket, marker).await {
                tracing::debug!(bucket, marker, "folder marker not deleted: {e}");
            }
        }
    }
    if recursive || failed > 0 {
        eprintln!("{deleted} deleted, {failed} failed");
    }
    Ok(ok && failed == 0)
}

/// A key and its size.
type ObjectEntryLite = (String, u64);

async fn store(conn: &Connection) -> anyhow::Result<bool> {
    let Some(store) = &conn.local_store else {
        bail!("`s3share store` serves the embedded store; it takes no --profile or --endpoint-url");
    };
    eprintln!(
        "embedded store on {} (bucket `{}`, data in {}){}; Ctrl+C stops it",
        store.endpoint(),
        crate::store::DEFAULT_BUCKET,
        store.paths().data_dir.display(),
        if store.serving_here() {
            ""
        } else {
            ", served by another s3share process; this one takes over when it exits"
        }
    );
    store.serve_until_ctrl_c().await;
    // Give in-flight requests a moment to finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(true)
}

/// The relay flags of `link --relay`.
struct RelayLinkOptions {
    filename: Option<String>,
    put: bool,
    delete: bool,
    overwrite: bool,
    max_size: Option<String>,
    note: Option<String>,
    public_url: Option<String>,
    secret_file: Option<PathBuf>,
}

async fn relay_link(
    conn: &Connection,
    location: S3Location,
    expires: &str,
    o: RelayLinkOptions,
    json: bool,
) -> anyhow::Result<bool> {
    use crate::relay::{self, Grant, Methods, Scope, Secret};
    let expires = relay::parse_link_expiry(expires)?;
    let max_size = o.max_size.as_deref().map(relay::parse_size).transpose()?;
    if (o.overwrite || max_size.is_some()) && !o.put {
        bail!("--overwrite and --max-size are for upload links: add --put");
    }
    let folder = location.key.is_empty() || location.key.ends_with('/');
    if let Some(name) = &o.filename {
        if o.put || folder {
            bail!("--filename names a download: it is for a link to one file, without --put");
        }
        if name.is_empty()
            || name.len() > 255
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            bail!("--filename {name:?}: use 1 to 255 bytes, no control characters, no / or \\");
        }
    }
    if crate::s3::is_reserved(&location.key) {
        bail!(
            "{} is where s3share keeps its link ledger; no link can point into it",
            crate::s3::RESERVED_PREFIX
        );
    }
    if !folder {
        // Keys the relay refuses to serve (dot segments, control characters…) get no link.
        let url = format!("/t/{}", relay::path::encode_key(&location.key));
        if let Err(e) = relay::path::parse(&url) {
            bail!("the relay cannot serve {location}: {e}");
        }
        if !o.put {
            let found = probe(&conn.client, &location).await?;
            if found.object.is_none() {
                if found.folder.is_some() {
                    bail!(
                        "{location} is a folder; for a folder link end it with a slash: s3://{}/{}/",
                        location.bucket,
                        location.key
                    );
                }
                return Err(no_such_key(&location)).context("cannot link to it");
            }
        }
    }
    let secret_path = Secret::path(o.secret_file.as_deref())?;
    let public_url = o
        .public_url
        .or_else(|| std::env::var("S3SHARE_RELAY_PUBLIC_URL").ok())
        .filter(|u| !u.is_empty())
        .or_else(|| relay::remembered_public_url(&secret_path))
        .unwrap_or_else(|| format!("http://{}", relay::DEFAULT_LISTEN));
    relay::handler::public_hosts(&public_url)?;
    let secret = Secret::load_or_create(&secret_path)?;
    let scope = if folder {
        Scope::Prefix(location.key.clone())
    } else {
        Scope::Key(location.key.clone())
    };
    let methods = Methods {
        read: !o.put,
        put: o.put,
        delete: o.delete,
    };
    let mut grant = Grant::new(
        &location.bucket,
        scope,
        methods,
        std::time::SystemTime::now() + expires,
    );
    grant.overwrite = o.overwrite;
    grant.max_size = max_size;
    // Recorded in the bucket's ledger before it is shown: every link can be listed and revoked.
    let ledger = relay::Ledger::new(conn.client.clone(), &location.bucket);
    let (mut link, record) = ledger
        .mint(&grant, &secret, &public_url, o.note.clone())
        .await
        .context("the link was not made: it could not be recorded in the bucket's ledger")?;
    if let Some(name) = &o.filename {
        // The relay passes it on as the download's name; it grants nothing, so it is a query
        // parameter rather than part of the token.
        link.url = format!(
            "{}?filename={}",
            link.url,
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        );
    }
    let local_note = conn.local_store.as_ref().map(|_| {
        "the relay streams the embedded store's bytes itself; teammates on other machines reach this link when `serve` listens where they can reach it (--listen 0.0.0.0:8457 --public-url http://THIS-MACHINE:8457)".to_owned()
    });
    if json {
        let mut v = serde_json::to_value(&link).expect("links serialize");
        v["note"] = serde_json::json!(o.note);
        v["local_store_note"] = serde_json::json!(local_note);
        v["created_at"] = serde_json::json!(record.created_at);
        println!("{v}");
        return Ok(true);
    }
    println!("{}", link.url);
    eprintln!(
        "link id {}; allows {}; expires {} (in {}); served by `s3share serve` with the secret in {}",
        link.id,
        link.methods.join(", "),
        links::format_time(grant.expires_at()),
        links::format_duration(expires),
        secret_path.display()
    );
    if folder && o.put {
        eprintln!("upload with: curl -L -T FILE '{}NAME'", link.url);
    }
    eprintln!(
        "recorded in the ledger of s3://{}; revoke it with: s3share revoke {}",
        location.bucket, link.id
    );
    if let Some(note) = o.note {
        eprintln!("note: {note}");
    }
    if let Some(note) = local_note {
        eprintln!("note: {note}");
    }
    Ok(true)
}

async fn serve(
    conn: &Connection,
    listen: std::net::SocketAddr,
    public_url: Option<String>,
    secret_file: Option<PathBuf>,
) -> anyhow::Result<bool> {
    let public_url = public_url.filter(|u| !u.is_empty());
    let options = crate::relay::run::RelayOptions {
        listen,
        public_url: public_url.clone(),
        secret_file,
        stream_everything: conn.local_store.is_some(),
    };
    let relay = crate::relay::run::start(conn.client.clone(), options).await?;
    let (addr, links_base, secret_path) = (
        relay.local_addr(),
        relay.public_url.clone(),
        relay.secret_path.clone(),
    );
    if let Some(e) = &relay.note_failed {
        eprintln!(
            "warning: cannot note the relay's address beside its secret ({e}); pass --public-url {links_base} to `link --relay`"
        );
    }
    eprintln!(
        "relay on http://{addr} (links: {links_base}; secret in {}); Ctrl+C stops it",
        secret_path.display()
    );
    if conn.local_store.is_some() {
        eprintln!(
            "note: the embedded store listens on 127.0.0.1 only, so this relay streams its files itself instead of redirecting"
        );
    }
    if !addr.ip().is_loopback() && public_url.is_none() {
        eprintln!(
            "note: listening beyond loopback; pass --public-url with the address teammates use, or the relay refuses their Host header"
        );
    }
    tokio::signal::ctrl_c().await?;
    relay.stop();
    Ok(true)
}

/// The buckets whose ledgers `links` and `revoke` look at: the one named, else the embedded
/// store's, else every bucket the credentials can list.
async fn ledger_buckets(
    conn: &Connection,
    location: Option<S3Location>,
) -> anyhow::Result<Vec<String>> {
    if let Some(l) = location {
        if !l.key.is_empty() {
            bail!("name a bucket, not a key: s3://{}", l.bucket);
        }
        return Ok(vec![l.bucket]);
    }
    if let Some(b) = conn.default_bucket() {
        return Ok(vec![b.to_owned()]);
    }
    conn.client
        .list_buckets()
        .await
        .context("cannot list the buckets to look for relay links; name one: s3://bucket")
}

async fn list_links(
    conn: &Connection,
    location: Option<S3Location>,
    json: bool,
) -> anyhow::Result<bool> {
    use crate::relay::Ledger;
    let named = location.is_some();
    let buckets = ledger_buckets(conn, location).await?;
    let now = std::time::SystemTime::now();
    let mut ok = true;
    let mut shown = 0usize;
    for bucket in &buckets {
        let records = match Ledger::new(conn.client.clone(), bucket).list().await {
            Ok(r) => r,
            Err(e) if named => return Err(e.into()),
            Err(e) => {
                // Looking through every bucket: one that cannot be read does not hide the rest.
                ok = false;
                eprintln!("error: cannot read the links of s3://{bucket}: {e}");
                continue;
            }
        };
        for r in records {
            shown += 1;
            let state = r.state(now);
            if json {
                let mut v = serde_json::to_value(&r).expect("records serialize");
                v["state"] = serde_json::json!(state.as_str());
                println!("{v}");
            } else {
                let expires = links::format_time_short(r.expires());
                let scope = format!("s3://{}/{}", r.bucket, r.scope);
                let note = r.note.as_deref().unwrap_or("");
                println!(
                    "{:8}  {:7}  {:16}  {:17}  {scope}  {note}",
                    r.id,
                    state.as_str(),
                    expires,
                    r.methods.join(",")
                );
            }
        }
    }
    if shown == 0 && !json {
        eprintln!("no relay links recorded in {}", buckets.join(", "));
    }
    Ok(ok)
}

async fn revoke(conn: &Connection, id: &str, location: Option<S3Location>) -> anyhow::Result<bool> {
    use crate::relay::{Ledger, ledger::parse_id};
    if parse_id(id).is_none() {
        bail!(
            "{id:?} is not a link id (ids are 8 characters, as `link --relay` prints and `s3share links` lists)"
        );
    }
    let buckets = ledger_buckets(conn, location).await?;
    for bucket in &buckets {
        let ledger = Ledger::new(conn.client.clone(), bucket);
        let found = match ledger.get(id).await {
            Ok(f) => f,
            Err(e) if buckets.len() == 1 => return Err(e.into()),
            Err(e) => {
                tracing::debug!(bucket, "no ledger readable: {e}");
                continue;
            }
        };
        let Some(before) = found else { continue };
        let record = ledger.revoke(id).await?;
        let what = format!("s3://{}/{}", record.bucket, record.scope);
        if before.revoked {
            eprintln!(
                "link {id} ({what}) was already revoked ({})",
                before.revoked_at.as_deref().unwrap_or("earlier")
            );
        } else {
            eprintln!("revoked link {id} ({what}); running relays refuse it within a second");
        }
        return Ok(true);
    }
    bail!(
        "no relay link with id {id} in {} (see `s3share links`)",
        if buckets.len() == 1 {
            format!("the ledger of s3://{}", buckets[0])
        } else {
            format!("the ledgers of {} bucket(s)", buckets.len())
        }
    )
}

fn relay_secret_rotate(grace: &str, secret_file: Option<&std::path::Path>) -> anyhow::Result<bool> {
    use crate::relay::Secret;
    let grace = crate::relay::secret::parse_grace(grace)?;
    let path = Secret::path(secret_file)?;
    let until = Secret::rotate(&path, grace)?;
    eprintln!(
        "new relay secret in {}; new links use it, and running relays with this file pick it up within a second",
        path.display()
    );
    if grace.is_zero() {
        eprintln!("links made with the old secret stop working now");
    } else {
        eprintln!(
            "links made with the old secret keep working until {} (in {}), then stop",
            links::format_time(until),
            links::format_duration(grace)
        );
    }
    Ok(true)
}
