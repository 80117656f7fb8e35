//! The relay: stable, capability-scoped links served by s3share itself.
//!
//! A relay URL is `/<token>/<key or subpath>`. The relay checks the token (an HMAC with its
//! secret, see [`token`]), decodes and checks the path ([`path`]), and answers with a
//! `307 Temporary Redirect` to a freshly signed S3 URL that lives minutes ([`handler`]), so
//! `curl -L`, `wget` and browsers download, upload and delete with no SDK and no keys, for as
//! long as the link says. [`server`] is the hyper listener around the handler.
//!
//! Folder links show an index page ([`index`]), upload links an upload page ([`upload_page`]);
//! where a redirect cannot work (the embedded store on the sharer's loopback, uploads from the
//! upload page) the relay streams the bytes itself ([`stream`]).
//!
//! Every link minted through [`ledger::Ledger::mint`] is recorded in its bucket; a revoked
//! link is refused by every running relay within a second ([`revoked`]). The secret can be
//! rotated with a grace period for the old one, and a running relay picks the change up
//! ([`secret`]).

pub mod handler;
pub mod index;
pub mod ledger;
pub mod limits;
pub mod path;
pub mod revoked;
pub mod run;
pub mod secret;
pub mod server;
pub mod stream;
pub mod token;
pub mod upload_page;

use std::time::Duration;

pub use handler::{RelayState, Reply, handle, handle_request};
pub use index::FolderPage;
pub use ledger::{Ledger, LinkRecord, LinkState};
pub use revoked::{RevocationConfig, Revocations};
pub use run::{RelayOptions, RunningRelay};
pub use secret::Secret;
pub use server::{RelayServer, ServerConfig};
pub use stream::{RelayBody, RequestBody};
pub use token::{Grant, Methods, Scope, Token};

use crate::error::{Error, Result};
pub use crate::s3::Presigned;
use crate::s3::{PresignOp, S3Client};

/// How long each redirect's signature lives at most: long enough for a slow client to follow
/// it, short enough that a leaked Location is soon worthless. A link that expires sooner cuts
/// it short (a Location never outlives its link).
pub const REDIRECT_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The default listen address of `s3share serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8457";

/// An S3 operation the relay redirects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// GetObject.
    Get,
    /// HeadObject.
    Head,
    /// PutObject.
    Put,
    /// DeleteObject.
    Delete,
}

/// What to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The operation.
    pub method: SignMethod,
    /// Bucket.
    pub bucket: String,
    /// Key, decoded.
    pub key: String,
    /// How long the signature lives.
    pub lifetime: Duration,
    /// PUT: sign `If-None-Match: *` so S3 refuses to replace an existing object.
    pub if_none_match: bool,
    /// PUT: sign this `Content-Length`, so S3 refuses any other body size.
    pub content_length: Option<u64>,
    /// GET: the name the browser saves the download as (`?filename=` of a relay link, else
    /// the key's base name).
    pub filename: Option<String>,
    /// GET: sign the name `inline` (browsers show what they can), not `attachment`.
    pub inline: bool,
}

/// What the relay needs from S3: signing, an existence check for no-overwrite uploads, and the
/// buckets' revocation lists. Implemented for [`S3Client`]; a seam so that the handler is
/// tested without a network.
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    /// Signs one request.
    async fn sign(&self, req: &SignRequest) -> Result<Presigned>;
    /// Whether `key` exists in `bucket`.
    async fn exists(&self, bucket: &str, key: &str) -> Result<bool>;
    /// One page (at most `max` entries) of the folder level `prefix`, continuing after
    /// `continuation`. Signers that cannot list refuse, and folder links then answer 502.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max: usize,
    ) -> Result<FolderPage> {
        let _ = (bucket, prefix, continuation, max);
        Err(Error::Relay("this relay cannot list folders".into()))
    }

    /// `bucket`'s revocation list (`.s3share/revoked.json`), unless unchanged since `etag`.
    /// The default (for test signers) is a bucket where nothing was ever revoked; [`S3Client`]
    /// reads the real list.
    async fn revocations(&self, _bucket: &str, _etag: Option<&str>) -> Result<ledger::Fetched> {
        Ok(ledger::Fetched::Missing)
    }
}

#[async_trait::async_trait]
impl Signer for S3Client {
    async fn sign(&self, req: &SignRequest) -> Result<Presigned> {
        let op = match req.method {
            SignMethod::Get => PresignOp::Get {
                filename: req.filename.clone(),
                inline: req.inline,
            },
            SignMethod::Head => PresignOp::Head,
            SignMethod::Delete => PresignOp::Delete,
            SignMethod::Put => PresignOp::Put {
                content_md5: None,
                if_none_match: req.if_none_match,
                content_type: None,
                content_length: req.content_length,
            },
        };
        self.presign(&req.bucket, &req.key, op, req.lifetime).await
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        Ok(self.head(bucket, key).await?.is_some())
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max: usize,
    ) -> Result<FolderPage> {
        index::list_folder_page(self, bucket, prefix, continuation, max).await
    }

    async fn revocations(&self, bucket: &str, etag: Option<&str>) -> Result<ledger::Fetched> {
        Ledger::new(self.clone(), bucket).fetch_revoked(etag).await
    }
}

/// Parses a link lifetime for relay links: like direct links (`90`, `15m`, `7d`) but without
/// the 7-day cap, since each request is signed afresh (`30d`, `365d`).
pub fn parse_link_expiry(text: &str) -> Result<Duration> {
    let text = text.trim();
    let d = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            Error::Config(format!(
                "cannot read the expiry {text:?} ({e}); write e.g. 1h, 7d, 30d or 365d"
            ))
        })?,
    };
    if d < Duration::from_secs(1) {
        return Err(Error::ExpiryTooShort);
    }
    // Tokens store the expiry as u32 Unix seconds (until 2106); 50 years is plenty.
    if d > Duration::from_secs(50 * 365 * 86400) {
        return Err(Error::Config(
            "a relay link can last at most 50 years".into(),
        ));
    }
    Ok(d)
}

/// Parses a size: `1000`, `10k`, `5MB`, `5MiB`, `2G` (k/M/G/T are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::Config(format!(
            "cannot read the size {text:?}; write e.g. 500k, 10M or 2G"
        ))
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// A relay link as handed out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RelayLink {
    /// The URL.
    pub url: String,
    /// The link id.
    pub id: String,
    /// Bucket.
    pub bucket: String,
    /// Key, or folder prefix.
    pub scope: String,
    /// Whether the scope is a folder prefix.
    pub folder: bool,
    /// Allowed methods.
    pub methods: Vec<&'static str>,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// PUT may replace existing objects.
    pub overwrite: bool,
    /// Largest upload.
    pub max_size: Option<u64>,
}

/// The file beside the relay's secret where `serve` notes the base URL of its links, so that
/// `link --relay` in another process mints links for the relay that really runs (its
/// `--listen` port or `--public-url`), not for the default address.
fn public_url_note(secret_path: &std::path::Path) -> std::path::PathBuf {
    secret_path.with_file_name(match secret_path.file_name() {
        Some(name) => format!("{}.url", name.to_string_lossy()),
        None => "relay.url".to_owned(),
    })
}

/// The relays noted beside a secret: one line `<url> <pid>` per running relay, the newest
/// last. The process id is there so that a relay killed without stopping (SIGKILL, a crash, a
/// power cut) leaves a note nobody follows: with one URL and last-writer-wins, a second `serve`
/// that had stopped left `link --relay` minting links for a port nothing listened on. A line
/// with no process id is an older s3share's note.
fn read_notes(secret_path: &std::path::Path) -> Vec<(String, Option<u32>)> {
    let Ok(text) = std::fs::read_to_string(public_url_note(secret_path)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let url = words.next()?.to_owned();
            Some((url, words.next().and_then(|p| p.parse().ok())))
        })
        .collect()
}

/// Whether process `pid` runs (signal 0 checks without sending anything; EPERM: it runs, as
/// another user).
fn process_runs(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Writes the notes whole under another name, then renames it into place: a `link --relay`
/// reading at the same moment sees the old notes or the new, never half of them. No notes left:
/// no file.
fn write_notes(
    secret_path: &std::path::Path,
    notes: &[(String, Option<u32>)],
) -> std::io::Result<()> {
    let path = public_url_note(secret_path);
    if notes.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let text: String = notes
        .iter()
        .map(|(url, pid)| match pid {
            Some(pid) => format!("{url} {pid}\n"),
            None => format!("{url}\n"),
        })
        .collect();
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The notes that still name a running relay, without this process's note of `public_url`.
fn other_running_notes(
    secret_path: &std::path::Path,
    public_url: &str,
) -> Vec<(String, Option<u32>)> {
    let me = std::process::id();
    read_notes(secret_path)
        .into_iter()
        // An older s3share's note (no process id) is superseded, as it was before.
        .filter(|(url, pid)| {
            pid.is_some_and(|pid| !(pid == me && url == public_url) && process_runs(pid))
        })
        .collect()
}

/// Notes `public_url` as the base of the links of a relay of this process that uses
/// `secret_path`: the newest, so `link --relay` mints links for it while it runs. Notes of
/// relays that no longer run are dropped.
pub fn remember_public_url(secret_path: &std::path::Path, public_url: &str) -> std::io::Result<()> {
    let mut notes = other_running_notes(secret_path, public_url);
    notes.push((public_url.to_owned(), Some(std::process::id())));
    write_notes(secret_path, &notes)
}

/// Takes back [`remember_public_url`] when that relay stops: `link --relay` then follows the
/// newest relay still running with that secret (or, with none, the default address).
pub fn forget_public_url(secret_path: &std::path::Path, public_url: &str) -> std::io::Result<()> {
    write_notes(secret_path, &other_running_notes(secret_path, public_url))
}

/// The base URL of the newest relay noted as running with `secret_path`, if any.
pub fn remembered_public_url(secret_path: &std::path::Path) -> Option<String> {
    read_notes(secret_path)
        .into_iter()
        .rev()
        .find(|(_, pid)| pid.is_none_or(process_runs))
        .map(|(url, _)| url)
}

/// Mints the URL for `grant` under `public_url` (e.g. `http://127.0.0.1:8457`).
pub fn make_link(grant: &Grant, secret: &Secret, public_url: &str) -> Result<RelayLink> {
    let token = grant
        .mint(secret)
        .map_err(|e| Error::Relay(format!("cannot make the link: {e}")))?;
    let (scope, folder) = match &grant.scope {
        Scope::Key(k) => (k.clone(), false),
        Scope::Prefix(p) => (p.clone(), true),
    };
    let base = public_url.trim_end_matches('/');
    Ok(RelayLink {
        url: format!("{base}/{token}/{}", path::encode_key(&scope)),
        id: grant.id_text(),
        bucket: grant.bucket.clone(),
        scope,
        folder,
        methods: grant.methods.names(),
        expires_at: crate::links::format_rfc3339(grant.expires_at()),
        overwrite: grant.overwrite,
        max_size: grant.max_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_expiries() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("10k").unwrap(), 10240);
        assert_eq!(parse_size("5MiB").unwrap(), 5 << 20);
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999T").is_err());
        assert_eq!(
            parse_link_expiry("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert!(parse_link_expiry("0").is_err());
    }
}
