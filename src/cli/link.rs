//! `link` (presigned and relay links), the relay's link ledger (`links`, `revoke`) and its secret.

use super::*;

pub(super) async fn link(
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
    if put && location.key.ends_with('/') {
        // A presigned URL names one key; `curl -T FILE URL` would not add the file's name.
        bail!(
            "{location} is a folder; an upload link names one object (s3://{}/{}NAME), or make a folder that takes uploads with `link --relay --put {location}`",
            location.bucket,
            location.key
        );
    }
    let found = probe(client, &location).await?;
    let link = if put {
        if found.object.is_none() && found.folder.is_some() {
            bail!(
                "{location} is a folder; an upload link names one object (s3://{}/{}/NAME)",
                location.bucket,
                location.key
            );
        }
        if found.object.is_some() {
            eprintln!("note: {location} exists: an upload through this link replaces it");
        }
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
    print_link(conn, &link, json)?;
    Ok(true)
}

pub(super) fn print_link(conn: &Connection, link: &Link, json: bool) -> Result<(), Error> {
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
        say!("{v}")?;
        return Ok(());
    }
    say!("{}", link.url)?;
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
    Ok(())
}

/// The relay flags of `link --relay`.
pub(super) struct RelayLinkOptions {
    pub(super) filename: Option<String>,
    pub(super) put: bool,
    pub(super) delete: bool,
    pub(super) overwrite: bool,
    pub(super) max_size: Option<String>,
    pub(super) note: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) secret_file: Option<PathBuf>,
}

pub(super) async fn relay_link(
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
    if max_size == Some(0) {
        // Refused rather than minted: the upload page would say "files up to 0 B" while its
        // script, like a missing cap, lets any size through to be refused by the relay.
        bail!(
            "--max-size 0 would accept only empty files; give the largest upload (e.g. 100M), or leave --max-size out for no limit"
        );
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
        say!("{v}")?;
        return Ok(true);
    }
    say!("{}", link.url)?;
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

/// The buckets whose ledgers `links` and `revoke` look at: the one named, else the embedded
/// store's, else every bucket the credentials can list.
pub(super) async fn ledger_buckets(
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

pub(super) async fn list_links(
    conn: &Connection,
    location: Option<S3Location>,
    json: bool,
) -> anyhow::Result<bool> {
    use crate::relay::Ledger;
    let named = location.is_some();
    let buckets = ledger_buckets(conn, location).await?;
    let now = std::time::SystemTime::now();
    let mut ok = true;
    let mut all = Vec::new();
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
        all.extend(records);
    }
    // Oldest first across buckets too, so the newest link is the last line whatever its bucket.
    all.sort_by(|a, b| (a.created(), &a.id).cmp(&(b.created(), &b.id)));
    let shown = all.len();
    for r in all {
        let state = r.state(now);
        if json {
            let mut v = serde_json::to_value(&r).expect("records serialize");
            v["state"] = serde_json::json!(state.as_str());
            say!("{v}")?;
        } else {
            // Records come from the bucket, which anyone who can write there can edit: a
            // line break would split a link's line, and escape sequences would reach the
            // terminal. Shown escaped; --json stays exact.
            use crate::location::shown;
            let expires = links::format_time_short(r.expires());
            let scope = format!("s3://{}/{}", shown(&r.bucket), shown(&r.scope));
            let note = shown(r.note.as_deref().unwrap_or(""));
            say!(
                "{:8}  {:7}  {:16}  {:17}  {scope}  {note}",
                shown(&r.id),
                state.as_str(),
                expires,
                shown(&r.methods.join(","))
            )?;
        }
    }
    if shown == 0 && !json {
        eprintln!("no relay links recorded in {}", buckets.join(", "));
    }
    Ok(ok)
}

pub(super) async fn revoke(
    conn: &Connection,
    id: &str,
    location: Option<S3Location>,
) -> anyhow::Result<bool> {
    use crate::relay::{self, Ledger, ledger::parse_id};
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
        // The record is the bucket's: shown escaped, as `links` shows it.
        let what = format!(
            "s3://{}/{}",
            crate::location::shown(&record.bucket),
            crate::location::shown(&record.scope)
        );
        if before.revoked {
            eprintln!(
                "link {id} ({what}) was already revoked ({})",
                crate::location::shown(before.revoked_at.as_deref().unwrap_or("earlier"))
            );
        } else if before.state(std::time::SystemTime::now()) == relay::LinkState::Expired {
            eprintln!("link {id} ({what}) had already expired; revoked anyway");
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

pub(super) fn relay_secret_rotate(
    grace: &str,
    secret_file: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    use crate::relay::Secret;
    let grace = crate::relay::secret::parse_grace(grace)?;
    let path = Secret::path(secret_file)?;
    let until = Secret::rotate(&path, grace)?;
    eprintln!(
        "new relay secret in {}; new links use it, and running relays with this file pick it up within a second",
        path.display()
    );
    if grace.is_zero() {
        eprintln!(
            "links made with the old secret, and with every earlier secret still in its grace period, stop working now"
        );
    } else {
        eprintln!(
            "links made with the old secret keep working until {} (in {}), then stop",
            links::format_time(until),
            links::format_duration(grace)
        );
    }
    Ok(true)
}
