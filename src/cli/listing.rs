//! `buckets` and `ls`: what is there, as text or JSON lines.

use super::*;

pub(super) async fn buckets(conn: &Connection, json: bool) -> anyhow::Result<bool> {
    for name in conn.client.list_buckets().await? {
        if json {
            say!("{}", serde_json::json!({ "bucket": name }))?;
        } else {
            say!("{name}")?;
        }
    }
    Ok(true)
}

pub(super) async fn ls(
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
            write_entry(&mut out, &entry, json).map_err(Error::writing_output)?;
            out.flush().map_err(Error::writing_output)?;
            return Ok(true);
        }
        (None, None) => return Err(no_such_key(&location).into()),
    };
    let mut pages = std::pin::pin!(conn.client.list(&location.bucket, &prefix, recursive));
    while let Some(page) = pages.next().await {
        let page = page?;
        for folder in &page.folders {
            let line = if json {
                serde_json::json!({ "type": "folder", "key": folder }).to_string()
            } else {
                format!("{:>12}  {:16}  {}", "DIR", "", shown(folder))
            };
            writeln!(out, "{line}").map_err(Error::writing_output)?;
        }
        for o in &page.objects {
            write_entry(&mut out, o, json).map_err(Error::writing_output)?;
        }
        // Show each page as it arrives: a huge folder starts printing at once.
        out.flush().map_err(Error::writing_output)?;
    }
    Ok(true)
}

pub(super) fn write_entry(
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
        writeln!(out, "{:>12}  {:16}  {}", o.size, modified, shown(&o.key))
    }
}
