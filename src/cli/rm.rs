//! `rm`: deleting objects and folders, asking first.

use super::*;

/// How many keys `rm -r` shows before asking.
pub(super) const SHOWN_BEFORE_ASKING: usize = 10;

pub(super) async fn rm(
    conn: &Connection,
    locations: Vec<S3Location>,
    recursive: bool,
    yes: bool,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let client = &conn.client;
    let mut ok = true;
    // Locations refused before anything is deleted: failures of the command as much as a
    // delete the server refused, so the last line counts them (it said "0 failed").
    let mut refused = 0usize;
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
                refused += 1;
                eprintln!(
                    "error: {location} is a whole bucket; to delete everything in it use rm -r s3://{}",
                    location.bucket
                );
                continue;
            }
            (Some(_), None) => {
                ok = false;
                refused += 1;
                eprintln!(
                    "error: {location} is a folder; use rm -r to delete it and everything in it"
                );
                continue;
            }
            (None, None) => {
                ok = false;
                refused += 1;
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
                say!("would delete s3://{bucket}/{}", shown(key))?;
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
            eprintln!("  s3://{bucket}/{}", shown(key));
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
            eprintln!("deleted s3://{bucket}/{}", shown(key));
        }
        for (key, e) in &report.failed {
            failed += 1;
            eprintln!(
                "error: not deleted: s3://{bucket}/{}: {}",
                shown(key),
                shown_message(&e.to_string())
            );
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
    if recursive || failed + refused > 0 {
        eprintln!("{deleted} deleted, {} failed", failed + refused);
    }
    Ok(ok && failed == 0)
}

/// A key and its size.
pub(super) type ObjectEntryLite = (String, u64);
