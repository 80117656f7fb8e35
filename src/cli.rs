//! The command-line face: `ls`, `put`, `get`, `link`, `rm`, `mkdir`, `buckets`, `store`.
//!
//! Every command is a thin layer over the library; what it adds is terminal output (progress
//! bars on a terminal, plain lines or JSON otherwise), conflict questions, and exit codes:
//! non-zero whenever anything failed, even when the rest succeeded.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt as _;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::links::{self, Link};
use crate::location::S3Location;
use crate::s3::{ConnectOptions, Connection, S3Client};
use crate::transfer::{self, OnConflict, TransferEvent, UploadItem, UploadOptions, UploadOutcome};

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
    after_help = "Without a command, s3share opens the desktop app."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    Ls {
        /// s3://bucket/prefix (default: the embedded store's bucket).
        location: Option<S3Location>,
        /// List every key below the prefix.
        #[arg(short, long)]
        recursive: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Upload files and folders (folders recursively) through presigned URLs.
    Put {
        /// Files or folders, then the destination s3://bucket/prefix/ (or s3://bucket/key for one file).
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
        /// Replace objects that already exist.
        #[arg(long, conflicts_with = "skip_existing")]
        overwrite: bool,
        /// Keep objects that already exist and skip those files.
        #[arg(long)]
        skip_existing: bool,
        /// Print a download link for each uploaded file, valid this long (e.g. 1h).
        #[arg(long, value_name = "EXPIRES", num_args = 0..=1, default_missing_value = "1h")]
        link: Option<String>,
    },
    /// Download an object, or a folder with -r.
    Get {
        /// s3://bucket/key (or s3://bucket/prefix/ with -r).
        location: S3Location,
        /// Destination file or folder (default: the current folder).
        dest: Option<PathBuf>,
        /// Download everything below the prefix, keeping its structure.
        #[arg(short, long)]
        recursive: bool,
        /// Replace local files that already exist.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print a presigned link to download (or with --put, upload) an object.
    Link {
        /// s3://bucket/key.
        location: S3Location,
        /// How long the link works: 15m, 1h, 1d, 7d (at most 7 days).
        #[arg(long, default_value = "1h")]
        expires: String,
        /// File name the browser saves the download as.
        #[arg(long)]
        filename: Option<String>,
        /// A link that uploads with `curl -T FILE URL` instead of downloading.
        #[arg(long)]
        put: bool,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Delete objects (or everything below a prefix with -r).
    Rm {
        /// s3://bucket/key ...
        #[arg(required = true)]
        locations: Vec<S3Location>,
        /// Delete every key below each prefix.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Create an empty folder.
    Mkdir {
        /// s3://bucket/prefix/
        location: S3Location,
    },
    /// Keep the embedded store running (so its links work) until Ctrl+C.
    Store,
}

/// Runs a subcommand (without one, the binary opens the desktop app instead); `Ok(false)`
/// means some items failed (exit code 1).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let Some(command) = cli.command else {
        use clap::CommandFactory as _;
        Cli::command().print_help()?;
        return Ok(true);
    };
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
            link,
        } => {
            let on_conflict = match (overwrite, skip_existing) {
                (true, _) => Some(OnConflict::Overwrite),
                (_, true) => Some(OnConflict::Skip),
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
        } => link(&conn, location, &expires, filename, put, json).await,
        Command::Rm {
            locations,
            recursive,
        } => rm(&conn, locations, recursive).await,
        Command::Mkdir { location } => {
            let key = conn
                .client
                .create_folder(&location.bucket, &location.key)
                .await?;
            println!("created s3://{}/{key}", location.bucket);
            Ok(true)
        }
        Command::Store => store(&conn).await,
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
        (None, None) => bail!("name a location: s3://bucket/prefix"),
    }
}

async fn ls(
    conn: &Connection,
    location: Option<S3Location>,
    recursive: bool,
    json: bool,
) -> anyhow::Result<bool> {
    let location = default_location(conn, location)?;
    let mut pages = std::pin::pin!(conn.client.list(&location.bucket, &location.key, recursive));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write as _;
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
            let modified = o.modified.map(links::format_time_short).unwrap_or_default();
            if json {
                let rfc3339 = o.modified.map(links::format_rfc3339);
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "type": "file", "key": o.key, "size": o.size, "modified": rfc3339, "etag": o.etag })
                )?;
            } else {
                writeln!(out, "{:>12}  {:16}  {}", o.size, modified, o.key)?;
            }
        }
        // Show each page as it arrives: a huge folder starts printing at once.
        out.flush()?;
    }
    Ok(true)
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
        let me = self.clone();
        Arc::new(move |e| {
            if let TransferEvent::Progress { id, done } = e {
                let mut all = me.done.lock();
                if let Some(slot) = all.get_mut(id) {
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

async fn put(
    conn: &Connection,
    mut args: Vec<String>,
    on_conflict: Option<OnConflict>,
    link: Option<String>,
) -> anyhow::Result<bool> {
    let dest = S3Location::parse(&args.pop().expect("clap requires two arguments"))?;
    let link_expiry = link.as_deref().map(links::parse_expiry).transpose()?;
    let paths: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    let (mut items, errors) = transfer::plan_upload(&paths, &dest.key);
    let mut ok = errors.is_empty();
    for e in &errors {
        eprintln!("error: {e}");
    }
    let client = &conn.client;
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });

    let mut options = UploadOptions::default();
    let mut skipped_by_answer = Vec::new();
    match on_conflict {
        Some(choice) => options.on_conflict = choice,
        None if std::io::stdin().is_terminal() => {
            let (keep, skip) = ask_about_conflicts(client, &dest.bucket, items).await?;
            items = keep;
            skipped_by_answer = skip;
            // Approved overwrites and new keys go in one batch; new keys are still protected
            // against a race by If-None-Match where the server supports it.
            options.on_conflict = OnConflict::Overwrite;
        }
        None => options.on_conflict = OnConflict::Fail,
    }
    for item in &skipped_by_answer {
        eprintln!("skipped {} (exists)", item.key);
    }

    let sizes: Vec<u64> = items.iter().map(|i| i.size).collect();
    let progress = BatchProgress::new(&sizes, "uploading");
    let results = client
        .upload_many(&dest.bucket, &items, &options, progress.sink(), &cancel)
        .await;
    progress.total.finish_and_clear();
    let (mut uploaded, mut skipped, mut failed) = (0, skipped_by_answer.len(), 0);
    for (item, result) in items.iter().zip(results) {
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
            Err(e) => {
                failed += 1;
                ok = false;
                let hint = if matches!(e, Error::AlreadyExists { .. }) {
                    " (use --overwrite or --skip-existing)"
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
    Ok(ok)
}

/// Asks, for each file whose key exists, whether to overwrite it; returns the files to
/// upload and the files to skip.
async fn ask_about_conflicts(
    client: &S3Client,
    bucket: &str,
    items: Vec<UploadItem>,
) -> anyhow::Result<(Vec<UploadItem>, Vec<UploadItem>)> {
    let exists: Vec<bool> = futures::stream::iter(items.iter())
        .map(|i| async move { client.head(bucket, &i.key).await.map(|h| h.is_some()) })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut keep = Vec::new();
    let mut skip = Vec::new();
    let mut all: Option<bool> = None;
    for (item, exists) in items.into_iter().zip(exists) {
        if !exists {
            keep.push(item);
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
            keep.push(item)
        } else {
            skip.push(item)
        }
    }
    Ok((keep, skip))
}

fn prompt(question: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_ascii_lowercase())
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
    let cancel = CancellationToken::new();
    let (items, mut errors) = if recursive || location.is_prefix() {
        let prefix = if location.key.is_empty() || location.key.ends_with('/') {
            location.key.clone()
        } else {
            format!("{}/", location.key)
        };
        let listing = client.list_all(&location.bucket, &prefix, true).await?;
        transfer::plan_download(&listing.objects, &prefix, &dest)
    } else {
        let path = if dest.is_dir() || dest.as_os_str().to_string_lossy().ends_with('/') {
            transfer::confined_path(&dest, location.file_name())?
        } else {
            dest.clone()
        };
        (
            vec![transfer::DownloadItem::file(location.key.clone(), path, 0)],
            Vec::new(),
        )
    };
    let sizes: Vec<u64> = items.iter().map(|i| i.size).collect();
    let progress = BatchProgress::new(&sizes, "downloading");
    let results = client
        .download_many(
            &location.bucket,
            &items,
            overwrite,
            progress.sink(),
            &cancel,
        )
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
            Err(e) => errors.push(e),
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
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
    let link = if put {
        client
            .link_put(&location.bucket, &location.key, expires)
            .await?
    } else {
        if client
            .head(&location.bucket, &location.key)
            .await?
            .is_none()
        {
            return Err(Error::NoSuchKey {
                bucket: location.bucket,
                key: location.key,
            })
            .context("cannot link to it");
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

async fn rm(
    conn: &Connection,
    locations: Vec<S3Location>,
    recursive: bool,
) -> anyhow::Result<bool> {
    let client = &conn.client;
    let mut ok = true;
    for location in locations {
        let keys = if recursive {
            client
                .list_all(&location.bucket, &location.key, true)
                .await?
                .objects
                .into_iter()
                .map(|o| o.key)
                .collect()
        } else {
            vec![location.key.clone()]
        };
        for key in keys {
            match client.delete(&location.bucket, &key).await {
                Ok(()) => eprintln!("deleted s3://{}/{key}", location.bucket),
                Err(e) => {
                    ok = false;
                    eprintln!("error: {e}");
                }
            }
        }
    }
    Ok(ok)
}

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
