//! The command-line face: `ls`, `put`, `get`, `link`, `rm`, `mkdir`, `buckets`, `store`,
//! `serve`, `links`, `revoke`, `relay-secret`.
//!
//! Every command is a thin layer over the library; what it adds is terminal output (progress
//! bars on a terminal, plain lines or JSON otherwise), conflict questions, and exit codes:
//! non-zero whenever anything failed, even when the rest succeeded.
//!
//! This file holds the arguments (clap), the dispatch and what several commands share (probing
//! a location, progress bars, questions); each command group has its own file: `listing.rs`,
//! `put.rs`, `get.rs`, `link.rs` (presigned and relay links, the ledger, the secret), `rm.rs`,
//! `serve.rs` (the embedded store and the relay).

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
pub use crate::location::{shown, shown_message};
use crate::s3::{ConnectOptions, Connection, ObjectInfo, S3Client};
use crate::transfer::{self, OnConflict, TransferEvent, UploadItem, UploadOptions, UploadOutcome};

mod get;
mod link;
mod listing;
mod put;
mod rm;
mod serve;

use get::*;
use link::*;
use listing::*;
use put::*;
use rm::*;
use serve::*;

/// `println!` for what a command prints on standard output: a reader that went away (`| head`)
/// is [`Error::OutputClosed`], which ends the command quietly, where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}
use say;

/// One line on standard output (see [`say!`]).
fn write_line(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(Error::writing_output)
}

/// The Ctrl+C sentence of `--help`, shared by both builds.
macro_rules! ctrl_c_help {
    () => {
        "Ctrl+C during put or get cancels cleanly (multipart uploads aborted, partial files removed) and exits with code 130; a second Ctrl+C quits at once. A closed standard output (`| head`) ends a command quietly with code 141."
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
    /// Region to sign for (default: $AWS_REGION, else the profile's, else us-east-1; buckets
    /// elsewhere are found anyway).
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
    /// A symbolic link goes by its own name; inside a folder, a link to a folder is not followed
    /// but reported (the run fails, the rest is uploaded): name that folder itself to upload it.
    /// Named pipes, sockets and devices are reported the same way, never read. A destination
    /// with an empty segment (a//b) or a `.` or `..` segment is refused.
    ///
    /// `-` uploads standard input, to its end, as the destination's key (`tar c docs | s3share
    /// put - s3://b/docs.tar`): held in memory part by part as it is read (at most 32 MiB), in
    /// one PUT when it is short, else in parts that grow as it goes on (up to 273 GiB in all).
    /// It cannot be resumed; a failure or Ctrl+C aborts it and leaves nothing on the server.
    ///
    /// A multipart upload that was interrupted without a clean-up (the process killed, a crash,
    /// the network gone) continues when the same command runs again: the parts the server
    /// holds are checked against the file and kept, only the rest is sent. If the file changed
    /// in between, the old upload is aborted and the file sent from the start (and it says so).
    /// The files that run (or one that failed on some files) uploaded whole are its own: run
    /// again, they are reported "by the interrupted run", not refused or asked about as keys
    /// that exist, as long as the file and the object are unchanged since.
    Put {
        /// Files or folders, then the destination s3://bucket/folder (or s3://bucket/key for one
        /// file); `-` alone for standard input, then s3://bucket/key.
        // One or more: `put --link FILE DEST` gives the link option the file (see
        // `put::link_and_paths`), leaving one here.
        #[arg(required = true, num_args = 1..)]
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
        /// Print a download link for each uploaded file, valid this long (e.g. 1h; 1h when
        /// no value is given). `--link FILE... DEST` works too: a value that is not a lifetime
        /// but a file that exists is the first file to upload.
        #[arg(long, value_name = "EXPIRES", num_args = 0..=1, default_missing_value = put::DEFAULT_LINK_LIFETIME)]
        link: Option<String>,
    },
    /// Download an object, or a folder with -r.
    ///
    /// With -r, `s3://bucket/docs` means the folder `docs/` (its keys, not every key starting
    /// with "docs"); without -r it means the object `docs`. A path ending in `/` can only name
    /// a folder: `get s3://bucket/docs/` downloads it as -r does.
    ///
    /// A download interrupted without a clean-up (the process killed, a crash, the network
    /// gone) continues when the same command runs again: it fetches only the missing bytes,
    /// and only while the object is the same version (its ETag); a changed object is
    /// downloaded from the start.
    Get {
        /// s3://bucket/key (or s3://bucket/folder with -r).
        location: S3Location,
        /// Destination file or folder (default: the current folder); `-` (or /dev/stdout)
        /// writes the object to standard output as it arrives. With -r, the folder's files go
        /// into this folder (`get -r s3://b/docs out` gives out/FILE...).
        dest: Option<PathBuf>,
        /// Download everything in the folder, keeping its structure.
        #[arg(short, long)]
        recursive: bool,
        /// Replace local files that already exist.
        #[arg(long)]
        overwrite: bool,
        /// Fetch each big file over up to N connections side by side, each with a range of at
        /// least 16 MiB of it, 1-16. Default: one from a server on this machine (there one is
        /// fastest), eight from a server elsewhere (one connection carries less than the link).
        /// Files downloading at once share 15 connections beyond one each.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=16))]
        ranges: Option<u8>,
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
        /// File name the browser saves the download as (direct and relay links to one file;
        /// without it, relay downloads are named after the key, shown inline where browsers can).
        #[arg(long)]
        filename: Option<String>,
        /// A link that uploads with `curl -T FILE URL` instead of downloading. Presigned: to one
        /// key, replacing what is there; with --relay, also to a folder, never replacing
        /// without --overwrite.
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
        /// Relay link with --put: allow replacing existing objects (every upload is then
        /// redirected; without it, an upload that does not send `If-None-Match: *` is streamed
        /// through the relay, which sends that header itself).
        #[arg(long, requires = "relay")]
        overwrite: bool,
        /// Relay link with --put: largest upload accepted, e.g. 100M (not 0: leave it out for
        /// no limit).
        #[arg(long, requires = "relay", value_name = "SIZE")]
        max_size: Option<String>,
        /// Relay link: a note kept with the link in the ledger (shown by `s3share links`).
        #[arg(long, requires = "relay")]
        note: Option<String>,
        /// Relay link: the relay's address as teammates reach it, with no query, fragment or
        /// user name (default: $S3SHARE_RELAY_PUBLIC_URL, else the address of the newest
        /// `serve` still running with the same secret, else http://127.0.0.1:8457).
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
    /// Create an empty folder (one that is there already is left as it is, and said to be).
    Mkdir {
        /// s3://bucket/prefix/
        location: S3Location,
    },
    /// Keep the embedded store running (so its links work) until Ctrl+C.
    Store,
    /// Run the relay: answer `link --relay` links with redirects to freshly signed S3 URLs,
    /// until Ctrl+C. Logs one access line per request to stderr (never tokens or signed URLs;
    /// RUST_LOG=warn turns them off).
    ///
    /// Uploads to links made without --overwrite, from clients that do not send
    /// `If-None-Match: *` (plain `curl -L -T`), are not redirected: the relay streams them to
    /// S3 itself with that header, so S3 refuses to replace an object.
    ///
    /// At start it checks once that storage accepts the credentials, and refuses to start
    /// with keys storage rejects (credentials that may only read some buckets are fine).
    ///
    /// Links revoked with `s3share revoke` are refused within a second (the relay polls each
    /// served bucket's small revocation list; requests are checked in memory). The secret file
    /// is re-read when it changes, so `s3share relay-secret rotate` needs no restart. Several
    /// instances with one secret file serve the same links (e.g. behind a load balancer, each
    /// with the same --public-url).
    Serve {
        /// Address to listen on (`localhost:PORT` is 127.0.0.1); anything but loopback is
        /// reachable from other machines, and every address (0.0.0.0 or [::]) needs
        /// --public-url.
        #[arg(long, value_name = "ADDR:PORT", default_value = crate::relay::DEFAULT_LISTEN,
              value_parser = parse_listen)]
        listen: std::net::SocketAddr,
        /// The relay's address as teammates reach it (e.g. https://files.example.com; no
        /// query, fragment or user name: it starts every link; a path, for a proxy under one,
        /// is stripped from requests that carry it); its host name is accepted in the Host
        /// header besides the listen address and localhost.
        /// Required with --listen 0.0.0.0:PORT: links need a name other machines can use.
        #[arg(long, value_name = "URL", env = "S3SHARE_RELAY_PUBLIC_URL")]
        public_url: Option<String>,
        /// The secret file (default: $S3SHARE_RELAY_SECRET_FILE, else relay-secret in the
        /// config folder; created when missing).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// List the relay links recorded in a bucket, oldest first: id, state, expiry, methods,
    /// scope, note.
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
        // One id in 64 starts with '-' (base64url).
        #[arg(allow_hyphen_values = true)]
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
    /// within a second, without a restart. After a leak, use --grace 0: it drops the old
    /// secret and every earlier one still in its grace period.
    Rotate {
        /// How long links of the old secret keep working (e.g. 0, 1h, 7d). 0 ends them now,
        /// with those of every earlier secret.
        #[arg(long, default_value = "7d")]
        grace: String,
        /// The secret file (default: $S3SHARE_RELAY_SECRET_FILE, else relay-secret in the
        /// config folder).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
}

/// `serve --listen`: an IP address and port, or `localhost:PORT` (127.0.0.1, the address
/// the relay's loopback names stand for; never a DNS lookup, which could name anything).
fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let bad = || {
        format!(
            "cannot read {text:?} as an address to listen on; write ADDRESS:PORT, e.g. 127.0.0.1:8457, localhost:8457 or 0.0.0.0:8457"
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    if let Some(port) = lower.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok((std::net::Ipv4Addr::LOCALHOST, port).into());
    }
    lower.parse().map_err(|_| bad())
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
            ranges,
        } => {
            let ranges = ranges.map(usize::from);
            get(&conn, location, dest, recursive, overwrite, ranges).await
        }
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
            if location.key.trim_matches('/').is_empty() {
                bail!(
                    "name the folder to create: s3://{}/FOLDER/",
                    location.bucket
                );
            }
            put::check_destination(&location)?;
            // As `mkdir -p`: a folder that is there already is no error, but not "created".
            if let Some(folder) = probe(&conn.client, &location).await?.folder {
                say!("s3://{}/{folder} exists already", location.bucket)?;
                return Ok(true);
            }
            let key = conn
                .client
                .create_folder(&location.bucket, &location.key)
                .await?;
            say!("created s3://{}/{key}", location.bucket)?;
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
    let named = location.to_string();
    let first_page = {
        let mut pages = std::pin::pin!(client.list_for(bucket, &prefix, true, &named));
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

/// `1 byte`, `300 bytes`: the exact count, for lines that report a transfer.
fn byte_count(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

fn no_such_key(location: &S3Location) -> Error {
    Error::NoSuchKey {
        bucket: location.bucket.clone(),
        key: location.key.clone(),
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
    done: Mutex<BatchDone>,
}

/// Bytes done per item and their sum, kept together: each event changes one item, so the
/// total moves by that item's change instead of being summed again over the whole batch
/// (a batch of 10,000 files sends hundreds of thousands of events).
#[derive(Debug, Default)]
struct BatchDone {
    items: Vec<u64>,
    sum: u64,
}

impl BatchDone {
    fn new(items: usize) -> Self {
        Self {
            items: vec![0; items],
            sum: 0,
        }
    }

    /// Item `item` has moved `done` bytes (it can go down on a retry); the batch's total.
    fn set(&mut self, item: usize, done: u64) -> u64 {
        if let Some(slot) = self.items.get_mut(item) {
            // `sum` holds `*slot`, so this cannot underflow.
            self.sum = self.sum - *slot + done;
            *slot = done;
        }
        self.sum
    }
}

/// How long a batch runs before its ETA is shown.
const ETA_AFTER: Duration = Duration::from_secs(2);

/// The time left, once there is a rate to tell it by. Before anything moved indicatif says
/// "0s", and in the first moments (handshakes, TCP's slow start) its rate is a fraction of what
/// follows: a transfer of seconds said "ETA 9m" through a proxy 25 ms away.
fn eta_text(elapsed: Duration, done: u64, eta: Duration) -> String {
    if done == 0 || elapsed < ETA_AFTER {
        "…".to_owned()
    } else {
        format!("{:#}", indicatif::HumanDuration(eta))
    }
}

impl BatchProgress {
    fn new(sizes: &[u64], verb: &str) -> Arc<Self> {
        let bars = MultiProgress::new();
        if !std::io::stderr().is_terminal() {
            bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let total = bars.add(ProgressBar::new(sizes.iter().sum()));
        total.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta_settled}")
                .expect("valid template")
                .with_key(
                    "eta_settled",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&eta_text(s.elapsed(), s.pos(), s.eta()));
                    },
                )
                .progress_chars("=> "),
        );
        total.set_message(format!("{verb} {} file(s)", sizes.len()));
        Arc::new(Self {
            bars,
            total,
            done: Mutex::new(BatchDone::new(sizes.len())),
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
                // Set under the lock, so a total computed later is never drawn first.
                let mut all = me.done.lock();
                me.total.set_position(all.set(first + id, done));
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

#[cfg(test)]
mod tests {
    use super::BatchDone;

    #[test]
    fn the_eta_waits_for_a_rate() {
        use super::eta_text;
        use std::time::Duration;
        let minutes = Duration::from_secs(540);
        assert_eq!(eta_text(Duration::from_millis(300), 0, Duration::ZERO), "…");
        assert_eq!(eta_text(Duration::from_millis(1500), 1 << 20, minutes), "…");
        assert_eq!(eta_text(Duration::from_secs(5), 0, Duration::ZERO), "…");
        assert_eq!(eta_text(Duration::from_secs(3), 1 << 20, minutes), "9m");
    }

    #[test]
    fn the_batch_total_follows_each_items_latest_count() {
        let mut done = BatchDone::new(3);
        assert_eq!(done.set(0, 10), 10);
        assert_eq!(done.set(2, 5), 15);
        assert_eq!(done.set(0, 30), 35);
        // A retry takes an item's bytes back.
        assert_eq!(done.set(0, 0), 5);
        // An id outside the batch changes nothing.
        assert_eq!(done.set(7, 100), 5);
        assert_eq!(done.set(1, 8), 13);
        assert_eq!(done.items, vec![0, 8, 5]);
    }
}
