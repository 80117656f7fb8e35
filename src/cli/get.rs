//! `get`: downloads, confined to the destination and resumed where they stopped.

use super::*;

pub(super) async fn get(
    conn: &Connection,
    location: S3Location,
    dest: Option<PathBuf>,
    recursive: bool,
    overwrite: bool,
    ranges: Option<usize>,
) -> anyhow::Result<bool> {
    let client = &conn.client;
    let dest = dest.unwrap_or_else(|| PathBuf::from("."));
    if is_standard_output(&dest) && ranges.is_some() {
        bail!("--ranges does not apply to standard output: it receives the object in order");
    }
    let found = probe(client, &location).await?;
    if is_standard_output(&dest) {
        return to_standard_output(client, &location, recursive, found).await;
    }
    // A trailing `/` (or the bucket alone) names a folder even without -r.
    let want_folder = recursive || location.is_prefix();
    // The folders to make even with no file in them: the destination of a folder, and each
    // folder marker below it (an empty folder made with "New folder" or `mkdir`).
    let mut folders: Vec<PathBuf> = Vec::new();
    let (items, mut errors) = match (found.folder, found.object) {
        (Some(prefix), _) if want_folder => {
            let listing = client.list_all(&location.bucket, &prefix, true).await?;
            folders.push(dest.clone());
            let mut errors = Vec::new();
            for marker in listing.objects.iter().filter(|o| o.key.ends_with('/')) {
                let relative = marker
                    .key
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(&marker.key);
                match transfer::confined_path(&dest, relative.trim_end_matches('/')) {
                    Ok(path) => folders.push(path),
                    Err(e) => errors.push(e),
                }
            }
            let (items, more) = transfer::plan_download(&listing.objects, &prefix, &dest);
            errors.extend(more);
            (items, errors)
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
        ranges,
    };
    let results = client
        .download_many(&location.bucket, &items, &options, progress.sink(), &cancel)
        .await;
    progress.total.finish_and_clear();
    for (item, r) in items.iter().zip(results) {
        match r {
            Ok(n) => progress.println(format!(
                "downloaded s3://{}/{} → {} ({})",
                location.bucket,
                shown(&item.key),
                shown(&item.path.display().to_string()),
                byte_count(n)
            )),
            Err(Error::Cancelled) => {}
            Err(e) => errors.push(e),
        }
    }
    // Not after a Ctrl+C: the run stops there.
    for folder in folders.iter().filter(|_| !cancel.is_cancelled()) {
        let existed = folder.is_dir();
        match std::fs::create_dir_all(folder) {
            Ok(()) if !existed && folder != &dest => progress.println(format!(
                "made folder {}",
                shown(&folder.display().to_string())
            )),
            Ok(()) => {}
            Err(source) => errors.push(Error::Local {
                what: "cannot make folder",
                path: folder.clone(),
                source,
            }),
        }
    }
    for e in &errors {
        eprintln!("error: {}", shown_message(&e.to_string()));
    }
    if cancel.is_cancelled() {
        return Err(Error::Cancelled.into());
    }
    Ok(errors.is_empty())
}

/// Whether `dest` names standard output: `-`, as for most tools, or `/dev/stdout` (a link, which
/// a download would otherwise refuse to write through).
fn is_standard_output(dest: &std::path::Path) -> bool {
    dest.as_os_str() == "-" || dest.as_os_str() == "/dev/stdout"
}

/// `get KEY -`: the object's bytes on standard output as they arrive (`| tar x` starts at
/// once), checked as a download to a file is; nothing else is printed there.
async fn to_standard_output(
    client: &S3Client,
    location: &S3Location,
    recursive: bool,
    found: Probe,
) -> anyhow::Result<bool> {
    if recursive || location.is_prefix() {
        bail!("a folder cannot be written to standard output; give a folder to download it into");
    }
    match (found.folder, found.object) {
        (_, Some(_)) => {}
        (Some(_), None) => {
            bail!("{location} is a folder; give a folder to download it into, with -r")
        }
        (None, None) => return Err(no_such_key(location).into()),
    }
    let out = standard_output()?;
    let cancel = cancel_on_ctrl_c();
    match client
        .stream_object(&location.bucket, &location.key, out, &cancel)
        .await
    {
        Ok(_) => Ok(true),
        Err(e @ (Error::Cancelled | Error::OutputClosed)) => Err(e.into()),
        Err(e) => {
            eprintln!("error: {}", shown_message(&e.to_string()));
            Ok(false)
        }
    }
}

/// Standard output as a file of its own, written without Rust's line buffer.
fn standard_output() -> anyhow::Result<std::fs::File> {
    #[cfg(unix)]
    let owned = std::os::fd::AsFd::as_fd(&std::io::stdout()).try_clone_to_owned();
    #[cfg(windows)]
    let owned = std::os::windows::io::AsHandle::as_handle(&std::io::stdout()).try_clone_to_owned();
    Ok(std::fs::File::from(
        owned.context("cannot open standard output")?,
    ))
}
