//! `put`: uploads, with the questions and choices about keys that exist.

use super::*;

/// What `put` does with keys that exist, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PutConflict {
    /// `--overwrite`.
    Overwrite,
    /// `--skip-existing`.
    Skip,
    /// `--keep-both`: the file goes to the first free `name (n).ext`.
    KeepBoth,
}

/// Refuses a destination whose key has an empty segment (`a//b`, or a leading `/`) or a `.` or
/// `..` segment. S3 keeps such a key as written, but servers that keep objects as files (the
/// embedded store, SeaweedFS) store `a//b` as `a/b` and refuse dot segments with unrelated
/// errors, no download can write it back to the same path, and the relay cannot serve it:
/// almost always a typing slip.
pub(super) fn check_destination(dest: &S3Location) -> anyhow::Result<()> {
    let key = dest.key.strip_suffix('/').unwrap_or(&dest.key);
    if key.is_empty() {
        return Ok(());
    }
    let odd = key
        .split('/')
        .find(|segment| segment.is_empty() || *segment == "." || *segment == "..");
    match odd {
        Some("") => bail!(
            "{dest} has an empty path segment (`//`, or a `/` after the bucket); write it without"
        ),
        Some(dot) => bail!("{dest} has a `{dot}` segment; write the folder it means instead"),
        None => Ok(()),
    }
}

/// The link lifetime and the paths of `put`: clap gives `--link` the word after it, so
/// `put --link README.md s3://b/docs/` (the README's own example) handed it the file. A word
/// that is not a lifetime but names a file that exists (or `-`) is the first path, and the
/// link gets the default lifetime; one that is neither is an error about the lifetime.
pub(super) fn link_and_paths(
    link: Option<String>,
    mut args: Vec<String>,
) -> anyhow::Result<(Option<Duration>, Vec<String>)> {
    let expiry = match link {
        None => None,
        Some(word) => match links::parse_expiry(&word) {
            Ok(d) => Some(d),
            Err(_) if word == STDIN || std::fs::symlink_metadata(&word).is_ok() => {
                args.insert(0, word);
                Some(links::parse_expiry(DEFAULT_LINK_LIFETIME)?)
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "--link takes a lifetime (e.g. 1h) or nothing; {word:?} is neither that nor a file"
                )));
            }
        },
    };
    if args.len() < 2 {
        bail!("name what to upload, then where: s3share put FILE... s3://bucket/folder/");
    }
    Ok((expiry, args))
}

/// The lifetime `--link` gives links when it is given none.
pub(super) const DEFAULT_LINK_LIFETIME: &str = "1h";

pub(super) async fn put(
    conn: &Connection,
    args: Vec<String>,
    on_conflict: Option<PutConflict>,
    link: Option<String>,
) -> anyhow::Result<bool> {
    let (link_expiry, mut args) = link_and_paths(link, args)?;
    let dest = S3Location::parse(&args.pop().expect("two arguments at least"))?;
    check_destination(&dest)?;
    if args.iter().any(|a| a == STDIN) {
        if args.len() > 1 {
            anyhow::bail!(
                "`-` (standard input) goes alone: `put - s3://bucket/key`; upload the files in another run"
            );
        }
        return put_stdin(conn, dest, on_conflict, link_expiry).await;
    }
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
        eprintln!("error: {}", shown_message(&e.to_string()));
    }
    let store = transfer::ResumeStore::for_user();
    // Files an interrupted (or partly failed) run of this same command uploaded are up: their
    // keys are not conflicts, nothing is asked or sent again for them.
    let journal = store
        .as_ref()
        .map(|s| Arc::new(transfer::UploadJournal::of(s, &batch_name(&paths, &dest))));
    let (earlier, items) = match &journal {
        Some(journal) => uploaded_earlier(client, journal, &dest.bucket, items).await?,
        None => (Vec::new(), items),
    };

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
        eprintln!("skipped {} (exists)", shown(&item.key));
    }
    // After the questions: Ctrl+C at a question just quits, nothing has started yet.
    let cancel = cancel_on_ctrl_c();

    let sizes: Vec<u64> = batches
        .iter()
        .flat_map(|(_, b)| b.iter().map(|i| i.size))
        .collect();
    let progress = BatchProgress::new(&sizes, "uploading");
    // An interrupted run of this same command left records there: its uploads continue.
    let resume = store.clone().map(|store| {
        let progress = progress.clone();
        store.with_notices(Arc::new(move |notice| progress.println(notice.to_string())))
    });
    // One batch after the other: each keeps its files in flight (Concurrency), and together
    // they never hold more.
    let mut first = 0;
    let mut results = Vec::with_capacity(batches.len());
    for (choice, batch) in &batches {
        let options = UploadOptions {
            on_conflict: *choice,
            resume: resume.clone(),
            journal: journal.clone(),
            ..UploadOptions::default()
        };
        let sink = progress.sink_from(first);
        first += batch.len();
        results.push(
            client
                .upload_many(&dest.bucket, batch, &options, sink, &cancel)
                .await,
        );
    }
    progress.total.finish_and_clear();
    let (mut uploaded, mut skipped, mut failed) = (0, skipped_by_answer.len(), 0);
    let mut output_open = true;
    let by_earlier_run = earlier.iter().map(|item| {
        let done = UploadOutcome::Uploaded {
            bytes: item.size,
            multipart: false,
        };
        ((item, Ok(done)), " by the interrupted run")
    });
    let all = batches
        .iter()
        .zip(results)
        .flat_map(|((_, batch), results)| batch.iter().zip(results))
        .map(|r| (r, ""));
    for ((item, result), when) in by_earlier_run.chain(all) {
        match result {
            Ok(UploadOutcome::Uploaded { bytes, .. }) => {
                uploaded += 1;
                progress.println(format!(
                    "uploaded {} → s3://{}/{} ({}){when}",
                    shown(&item.path.display().to_string()),
                    dest.bucket,
                    shown(&item.key),
                    byte_count(bytes)
                ));
                if let Some(expiry) = link_expiry
                    && output_open
                {
                    let l = client
                        .link_get(&dest.bucket, &item.key, expiry, None)
                        .await?;
                    // A reader that went away (`| head -1`) ends the links, not the report:
                    // the uploads are done, and failures still go to standard error.
                    if let Err(e) = print_link(conn, &l, false) {
                        output_open = false;
                        if !matches!(e, Error::OutputClosed) {
                            progress.println(format!("error: {}", shown_message(&e.to_string())));
                            ok = false;
                        }
                    }
                }
            }
            Ok(UploadOutcome::Skipped) => {
                skipped += 1;
                progress.println(format!(
                    "skipped {} (s3://{}/{} exists)",
                    shown(&item.path.display().to_string()),
                    dest.bucket,
                    shown(&item.key)
                ));
            }
            Err(Error::Cancelled) => failed += 1,
            Err(e) => {
                failed += 1;
                ok = false;
                let hint = conflict_hint(&e);
                progress.println(format!(
                    "error: {}: {}{hint}",
                    shown(&item.path.display().to_string()),
                    shown_message(&e.to_string())
                ));
            }
        }
    }
    // Empty folders go as folder markers (as "New folder" makes them): they held nothing to
    // upload, and were lost without a word.
    let mut folders = 0;
    for key in transfer::empty_folder_keys(&dest.key, &inputs) {
        if cancel.is_cancelled() {
            break;
        }
        match client.create_folder(&dest.bucket, &key).await {
            Ok(_) => {
                folders += 1;
                eprintln!("made folder s3://{}/{}", dest.bucket, shown(&key));
            }
            Err(e) => {
                failed += 1;
                ok = false;
                eprintln!("error: {}", shown_message(&e.to_string()));
            }
        }
    }
    let folders = match folders {
        0 => String::new(),
        1 => ", 1 empty folder".into(),
        n => format!(", {n} empty folders"),
    };
    eprintln!(
        "{uploaded} uploaded{folders}, {skipped} skipped, {} failed",
        failed + errors.len()
    );
    // Every file is up: the journal of this run is of no use to a later one, which is new.
    if ok
        && !cancel.is_cancelled()
        && let Some(journal) = &journal
    {
        journal.forget();
    }
    if cancel.is_cancelled() {
        return Err(Error::Cancelled.into());
    }
    Ok(ok)
}

/// Splits `items` into those an earlier run of this command uploaded, still as it left them
/// (see `S3Client::uploaded_earlier`), and the rest; several are looked at side by side, as
/// each costs a HEAD where a note is found.
async fn uploaded_earlier(
    client: &S3Client,
    journal: &transfer::UploadJournal,
    bucket: &str,
    items: Vec<UploadItem>,
) -> anyhow::Result<(Vec<UploadItem>, Vec<UploadItem>)> {
    let found: Vec<(UploadItem, bool)> = futures::stream::iter(items)
        .map(|item| async move {
            let earlier = client.uploaded_earlier(journal, bucket, &item).await?;
            Ok::<_, Error>((item, earlier))
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, Error>>()?;
    let (earlier, rest): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, e)| *e);
    Ok((
        earlier.into_iter().map(|(i, _)| i).collect(),
        rest.into_iter().map(|(i, _)| i).collect(),
    ))
}

/// The name of this command's batch of uploads: what it uploads (the paths, absolute) and
/// where. The same command run again (with any choice about existing keys) has the same name.
fn batch_name(paths: &[PathBuf], dest: &S3Location) -> String {
    let mut name: Vec<String> = paths
        .iter()
        .map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    name.push(dest.to_string());
    name.join("\0")
}

/// What to add to an upload's error so the user knows the choices: for a key that exists,
/// the flags that decide.
fn conflict_hint(e: &Error) -> &'static str {
    if matches!(e, Error::AlreadyExists { .. }) {
        " (use --overwrite, --skip-existing or --keep-both)"
    } else {
        ""
    }
}

/// The source that names standard input.
const STDIN: &str = "-";

/// `put - s3://bucket/key`: standard input, to its end, as that object.
async fn put_stdin(
    conn: &Connection,
    dest: S3Location,
    on_conflict: Option<PutConflict>,
    link_expiry: Option<std::time::Duration>,
) -> anyhow::Result<bool> {
    let client = &conn.client;
    let bucket = &dest.bucket;
    if dest.key.is_empty() || dest.key.ends_with('/') {
        anyhow::bail!(
            "standard input has no name to go by: give the object's whole key, e.g. s3://{bucket}/{}stdin.bin",
            dest.key
        );
    }
    let found = probe(client, &dest).await?;
    if found.folder.is_some() {
        anyhow::bail!(
            "s3://{bucket}/{} is a folder: give the key of the object standard input becomes, e.g. s3://{bucket}/{}/stdin.bin",
            dest.key,
            dest.key
        );
    }
    let item = UploadItem {
        path: PathBuf::from(STDIN),
        key: dest.key.clone(),
        size: 0,
    };
    let (on_conflict, item) = match on_conflict {
        Some(PutConflict::Overwrite) => (OnConflict::Overwrite, item),
        Some(PutConflict::Skip) => (OnConflict::Skip, item),
        Some(PutConflict::KeepBoth) => {
            let renamed = keep_both(client, bucket, vec![item]).await?;
            (
                OnConflict::Fail,
                renamed.into_iter().next().expect("one item"),
            )
        }
        // No question asked: standard input is the data, not the user's answers.
        None => (OnConflict::Fail, item),
    };
    let key = item.key.clone();
    let cancel = cancel_on_ctrl_c();
    let bar = ProgressBar::new_spinner();
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} uploading standard input: {binary_bytes} {binary_bytes_per_sec}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = bar.clone();
    let events: transfer::EventSink = Arc::new(move |e| {
        if let TransferEvent::Progress { done, .. } = e {
            shown.set_position(done);
        }
    });
    let options = UploadOptions {
        on_conflict,
        ..UploadOptions::default()
    };
    let job = transfer::UploadJob::new(bucket.as_str(), item)
        .options(options)
        .events(events)
        .cancel(cancel.clone());
    let result = client.upload_stream(job, std::io::stdin()).await;
    bar.finish_and_clear();
    let target = format!("s3://{bucket}/{key}");
    let ok = match result {
        Ok(UploadOutcome::Uploaded { bytes, .. }) => {
            eprintln!("uploaded standard input → {target} ({})", byte_count(bytes));
            if let Some(expiry) = link_expiry {
                let l = client.link_get(bucket, &key, expiry, None).await?;
                match print_link(conn, &l, false) {
                    Ok(()) | Err(Error::OutputClosed) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            true
        }
        Ok(UploadOutcome::Skipped) => {
            eprintln!("skipped standard input ({target} exists)");
            true
        }
        Err(Error::Cancelled) => return Err(Error::Cancelled.into()),
        Err(e) => {
            let hint = conflict_hint(&e);
            eprintln!("error: standard input: {e}{hint}");
            false
        }
    };
    Ok(ok)
}

/// `items` with each key that exists renamed to the first free `name (n).ext`, never one that
/// another item of the batch goes to.
pub(super) async fn keep_both(
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
pub(super) struct ConflictAnswers {
    /// Keys that exist and may be replaced.
    pub(super) overwrite: Vec<UploadItem>,
    /// Keys that did not exist: they must still not replace anything created meanwhile.
    pub(super) create: Vec<UploadItem>,
    /// Keys that exist and are kept.
    pub(super) skip: Vec<UploadItem>,
}

/// Asks, for each file whose key exists, whether to overwrite it.
pub(super) async fn ask_about_conflicts(
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
