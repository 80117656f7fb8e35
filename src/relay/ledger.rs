//! The link ledger: every relay link minted is recorded in its bucket, so links can be listed
//! and revoked from any machine, and every relay serving the bucket learns of a revocation.
//!
//! Layout, under the reserved prefix that listings hide ([`crate::s3::RESERVED_PREFIX`]):
//!
//! - `.s3share/links/<id>.json`: one [`LinkRecord`] per link: id, bucket, scope, methods,
//!   limits, created, expires, note, revoked. **Never the token**: a record cannot be turned
//!   into a working link without the relay's secret (with it, [`LinkRecord::grant`] gives back
//!   the grant, so a link can be minted again for "copy again").
//! - `.s3share/revoked.json`: the bucket's revocation list ([`RevokedList`]): the ids of the
//!   revoked links that have not expired yet. It is the one small object each relay polls (a
//!   conditional GET, see [`super::revoked`]), so a revocation reaches them all without a read
//!   per request and without listing the records.
//!
//! The API is what the CLI (`link --relay`, `links`, `revoke`) and the desktop app use:
//! [`Ledger::mint`] (mint and record), [`Ledger::record`], [`Ledger::list`], [`Ledger::get`],
//! [`Ledger::revoke`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::token::{Grant, ID_LEN, Methods, Scope};
use super::{RelayLink, Secret};
use crate::error::{Error, Result};
use crate::s3::{RESERVED_PREFIX, S3Client, sdk_error};

/// Where the link records live in a bucket.
pub const LINKS_PREFIX: &str = ".s3share/links/";
/// The bucket's revocation list, polled by every relay that serves the bucket.
pub const REVOKED_KEY: &str = ".s3share/revoked.json";

const RECORD_VERSION: u32 = 1;

/// One link as the ledger records it (the JSON of `.s3share/links/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// Format version (1).
    pub version: u32,
    /// The link id (8 characters, as printed by `link --relay`).
    pub id: String,
    /// The bucket.
    pub bucket: String,
    /// The key, or the folder prefix of a folder link.
    pub scope: String,
    /// Whether `scope` is a folder prefix.
    pub folder: bool,
    /// Allowed methods (`GET`, `HEAD`, `PUT`, `DELETE`).
    pub methods: Vec<String>,
    /// PUT may replace existing objects.
    #[serde(default)]
    pub overwrite: bool,
    /// Largest upload accepted.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// When it was made, RFC 3339.
    pub created_at: String,
    /// When it stops working, RFC 3339 (whole seconds: what the token holds).
    pub expires_at: String,
    /// The note given with `--note`.
    #[serde(default)]
    pub note: Option<String>,
    /// The base URL the link was made for (not a secret: the token is what grants).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Whether it has been revoked.
    #[serde(default)]
    pub revoked: bool,
    /// When it was revoked, RFC 3339.
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// What a link is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Works until it expires.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked (whether or not it has also expired).
    Revoked,
}

impl LinkState {
    /// `active`, `expired`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Active => "active",
            LinkState::Expired => "expired",
            LinkState::Revoked => "revoked",
        }
    }
}

impl LinkRecord {
    /// The record of `grant`, made at `created`.
    pub fn new(
        grant: &Grant,
        created: SystemTime,
        note: Option<String>,
        public_url: Option<String>,
    ) -> Self {
        let (scope, folder) = match &grant.scope {
            Scope::Key(k) => (k.clone(), false),
            Scope::Prefix(p) => (p.clone(), true),
        };
        Self {
            version: RECORD_VERSION,
            id: grant.id_text(),
            bucket: grant.bucket.clone(),
            scope,
            folder,
            methods: grant
                .methods
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            overwrite: grant.overwrite,
            max_size: grant.max_size,
            // Milliseconds: `links` lists oldest first, and links made within one second (a
            // script, the app's "Copy link" clicks) were otherwise ordered by their random ids.
            created_at: humantime::format_rfc3339_millis(created).to_string(),
            expires_at: rfc3339(grant.expires_at()),
            note,
            public_url,
            revoked: false,
            revoked_at: None,
        }
    }

    /// When it expires (the Unix epoch when the record is unreadable: treated as expired).
    pub fn expires(&self) -> SystemTime {
        humantime::parse_rfc3339_weak(&self.expires_at).unwrap_or(UNIX_EPOCH)
    }

    /// When it was made (`None` when the record's time is unreadable).
    pub fn created(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.created_at).ok()
    }

    /// Revoked, expired or active at `now`.
    pub fn state(&self, now: SystemTime) -> LinkState {
        if self.revoked {
            LinkState::Revoked
        } else if now >= self.expires() {
            LinkState::Expired
        } else {
            LinkState::Active
        }
    }

    /// The grant this record describes, to mint its link again with the relay's secret (the
    /// same token as before while the secret is the same one).
    pub fn grant(&self) -> Result<Grant> {
        let bad = |what: &str| Error::Damaged(format!("link record {}: bad {what}", self.id));
        let id = parse_id(&self.id).ok_or_else(|| bad("id"))?;
        let expires = self
            .expires()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| bad("expiry"))?
            .as_secs();
        let has = |m: &str| self.methods.iter().any(|x| x == m);
        Ok(Grant {
            id,
            bucket: self.bucket.clone(),
            scope: if self.folder {
                Scope::Prefix(self.scope.clone())
            } else {
                Scope::Key(self.scope.clone())
            },
            methods: Methods {
                read: has("GET"),
                put: has("PUT"),
                delete: has("DELETE"),
            },
            overwrite: self.overwrite,
            max_size: self.max_size,
            expires: u32::try_from(expires).map_err(|_| bad("expiry"))?,
        })
    }
}

/// A link id's text back to its bytes; `None` for anything that is not one.
pub fn parse_id(text: &str) -> Option<[u8; ID_LEN]> {
    use base64::Engine as _;
    if text.len() != 8 {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

/// The bucket's revocation list (the JSON of `.s3share/revoked.json`): each revoked link's id
/// with its expiry in Unix seconds, so entries can be dropped once the link has expired anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedList {
    /// Format version (1).
    pub version: u32,
    /// Link id → expiry (Unix seconds).
    pub revoked: BTreeMap<String, u64>,
}

impl RevokedList {
    /// Parses the stored JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Damaged(format!("{REVOKED_KEY} is not a revocation list: {e}")))
    }

    /// The JSON to store.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a revocation list serializes")
    }

    /// Adds `id` (expiring at `expires`) and drops entries that expired before `now`.
    pub fn add(&mut self, id: &str, expires: SystemTime, now: SystemTime) {
        self.version = RECORD_VERSION;
        self.revoked.insert(id.to_owned(), unix(expires));
        let now = unix(now);
        self.revoked.retain(|_, exp| *exp > now);
    }

    /// The ids as bytes with their expiries (ids that are not ids are skipped).
    pub fn entries(&self) -> impl Iterator<Item = ([u8; ID_LEN], u64)> + '_ {
        self.revoked
            .iter()
            .filter_map(|(id, exp)| Some((parse_id(id)?, *exp)))
    }
}

/// The revocation list as fetched by a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Unchanged since the ETag given (304).
    Unchanged,
    /// No revocation list in the bucket (nothing was ever revoked there).
    Missing,
    /// The list, with its ETag.
    List {
        /// The object's ETag, for the next conditional GET.
        etag: Option<String>,
        /// The parsed list.
        list: RevokedList,
    },
}

/// The ledger of one bucket.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: S3Client,
    bucket: String,
}

/// Errors named for the user: an unknown id is not an S3 failure.
fn unknown(id: &str, bucket: &str) -> Error {
    Error::UnknownLink {
        id: id.to_owned(),
        bucket: bucket.to_owned(),
    }
}

impl Ledger {
    /// The ledger in `bucket`.
    pub fn new(client: S3Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn record_key(id: &str) -> String {
        format!("{LINKS_PREFIX}{id}.json")
    }

    /// Mints the link for `grant` and records it; the link is returned only once it is
    /// recorded, so that no link exists that `links` does not show and `revoke` cannot reach.
    pub async fn mint(
        &self,
        grant: &Grant,
        secret: &Secret,
        public_url: &str,
        note: Option<String>,
    ) -> Result<(RelayLink, LinkRecord)> {
        if grant.bucket != self.bucket {
            return Err(Error::Relay(format!(
                "a link for bucket {:?} cannot go in the ledger of {:?}",
                grant.bucket, self.bucket
            )));
        }
        let scope = match &grant.scope {
            Scope::Key(k) | Scope::Prefix(k) => k,
        };
        if scope.starts_with(RESERVED_PREFIX) {
            // The ledger must never be reachable through a link: an upload link could rewrite
            // the revocation list. (The relay refuses such keys too, e.g. under a root link.)
            return Err(Error::Relay(format!(
                "{RESERVED_PREFIX} is where s3share keeps its link ledger; no link can point into it"
            )));
        }
        let link = super::make_link(grant, secret, public_url)?;
        let record = LinkRecord::new(
            grant,
            SystemTime::now(),
            note,
            Some(public_url.trim_end_matches('/').to_owned()),
        );
        self.record(&record).await?;
        Ok((link, record))
    }

    /// Stores `record` (replacing the record of the same id).
    pub async fn record(&self, record: &LinkRecord) -> Result<()> {
        let body = serde_json::to_vec_pretty(record).expect("a record serializes");
        self.put(&Self::record_key(&record.id), body).await
    }

    /// The record of link `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<LinkRecord>> {
        if parse_id(id).is_none() {
            return Ok(None);
        }
        let key = Self::record_key(id);
        match self.get_object(&key, None).await? {
            Got::Body { bytes, .. } => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Damaged(format!(
                    "s3://{}/{key} is not a link record: {e}",
                    self.bucket
                ))
            }),
            Got::Missing | Got::Unchanged => Ok(None),
        }
    }

    /// Every link recorded in the bucket, oldest first. Records that cannot be read are
    /// skipped with a warning in the log rather than hiding all the others.
    pub async fn list(&self) -> Result<Vec<LinkRecord>> {
        let listing = self
            .client
            .list_all(&self.bucket, LINKS_PREFIX, true)
            .await?;
        let keys: Vec<String> = listing
            .objects
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.ends_with(".json"))
            .collect();
        // Owned keys moved into each fetch: a closure over borrowed items is higher-ranked,
        // and its future could not be proven `Send` (the app spawns this listing).
        let fetched: Vec<Result<Got>> = futures::stream::iter(keys.clone())
            .map(|k| async move { self.get_object(&k, None).await })
            .buffered(16)
            .collect()
            .await;
        let mut records = Vec::new();
        for (key, got) in keys.iter().zip(fetched) {
            match got? {
                Got::Body { bytes, .. } => match serde_json::from_slice::<LinkRecord>(&bytes) {
                    Ok(r) => records.push(r),
                    Err(e) => tracing::warn!(bucket = %self.bucket, key, "not a link record: {e}"),
                },
                Got::Missing | Got::Unchanged => {}
            }
        }
        records.sort_by(|a, b| (a.created(), &a.id).cmp(&(b.created(), &b.id)));
        Ok(records)
    }

    /// Revokes link `id`: adds it to the bucket's revocation list (which every relay serving
    /// the bucket polls, so it refuses the link within a second), then marks its record.
    /// Revoking a revoked link again is not an error (the list is checked all the same). An
    /// expired link is only marked: relays refuse it already, and the list keeps no expired
    /// ids (adding one would be pruned at once, and the read-back would never find it).
    pub async fn revoke(&self, id: &str) -> Result<LinkRecord> {
        let mut record = self
            .get(id)
            .await?
            .ok_or_else(|| unknown(id, &self.bucket))?;
        let now = SystemTime::now();
        // The same test as the list's pruning ([`RevokedList::add`]), in whole seconds.
        if unix(record.expires()) > unix(now) {
            self.add_to_revoked(&record, now).await?;
        }
        if !record.revoked {
            record.revoked = true;
            record.revoked_at = Some(rfc3339(now));
            self.record(&record).await?;
        }
        Ok(record)
    }

    /// Read, add, write back only if unchanged meanwhile (`If-Match` with the ETag read, or
    /// `If-None-Match: *` for a first list), and read again to see the id there: revocations
    /// at the same moment from several machines must not lose one to another's write. A
    /// conflict (412/409) reads and adds again. (A server that ignores conditional writes is
    /// still caught by the read-back in all but the narrowest interleaving, and `revoke` of the
    /// same id again adds it again.)
    async fn add_to_revoked(&self, record: &LinkRecord, now: SystemTime) -> Result<()> {
        for attempt in 0..20u32 {
            let (etag, mut list) = match self.get_object(REVOKED_KEY, None).await? {
                Got::Body { etag, bytes } => (etag, RevokedList::parse(&bytes)?),
                Got::Missing | Got::Unchanged => (None, RevokedList::default()),
            };
            let mut written = true;
            if !list.revoked.contains_key(&record.id) {
                list.add(&record.id, record.expires(), now);
                let condition = match &etag {
                    Some(tag) => Condition::Match(tag),
                    None => Condition::Absent,
                };
                written = self.put_if(REVOKED_KEY, list.to_json(), condition).await?;
            }
            if written
                && let Got::Body { bytes, .. } = self.get_object(REVOKED_KEY, None).await?
                && RevokedList::parse(&bytes)?.revoked.contains_key(&record.id)
            {
                return Ok(());
            }
            // Someone else's write came first: back off a little (with jitter, so racing
            // revokers spread out) and add it again.
            let jitter = u64::from(rand::random::<u8>()) % 50;
            let pause = Duration::from_millis(10 * u64::from(attempt + 1) + jitter);
            tokio::time::sleep(pause).await;
        }
        Err(Error::S3 {
            operation: format!("revoking link {}", record.id),
            message: format!(
                "s3://{}/{REVOKED_KEY} kept changing under this write; try again",
                self.bucket
            ),
        })
    }

    /// The revocation list, unless it is unchanged since `etag`: what a relay polls.
    pub async fn fetch_revoked(&self, etag: Option<&str>) -> Result<Fetched> {
        Ok(match self.get_object(REVOKED_KEY, etag).await? {
            Got::Unchanged => Fetched::Unchanged,
            // Servers that ignore If-None-Match (the embedded store) send the same list again.
            Got::Body {
                etag: Some(now), ..
            } if etag == Some(now.as_str()) => Fetched::Unchanged,
            Got::Missing => Fetched::Missing,
            Got::Body { etag, bytes } => Fetched::List {
                etag,
                list: RevokedList::parse(&bytes)?,
            },
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.put_if(key, body, Condition::Always).await.map(|_| ())
    }

    /// PUT under `condition`; `Ok(false)` when the server refused it for the condition.
    async fn put_if(&self, key: &str, body: Vec<u8>, condition: Condition<'_>) -> Result<bool> {
        let client = self.client.try_for_bucket(&self.bucket).await?;
        let mut req = client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        req = match condition {
            Condition::Always => req,
            Condition::Match(tag) => req.if_match(format!("\"{tag}\"")),
            Condition::Absent => req.if_none_match("*"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            // 412: the condition failed; 409: AWS's "a conditional write is under way".
            Err(e)
                if !matches!(condition, Condition::Always)
                    && e.raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(
                "PutObject",
                &format!("s3://{}/{key}", self.bucket),
                &self.client.endpoint_label(),
                e,
            )),
        }
    }

    /// GET of a small object; with `etag`, conditional (`Unchanged` on 304).
    async fn get_object(&self, key: &str, etag: Option<&str>) -> Result<Got> {
        let client = self.client.try_for_bucket(&self.bucket).await?;
        let mut req = client.get_object().bucket(&self.bucket).key(key);
        if let Some(tag) = etag {
            req = req.if_none_match(format!("\"{tag}\""));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if status == Some(304) {
                    return Ok(Got::Unchanged);
                }
                if status == Some(404)
                    || e.as_service_error().is_some_and(
                        aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                    )
                {
                    return Ok(Got::Missing);
                }
                return Err(sdk_error(
                    "GetObject",
                    &format!("s3://{}/{key}", self.bucket),
                    &self.client.endpoint_label(),
                    e,
                ));
            }
        };
        let etag = out.e_tag().map(|t| t.trim_matches('"').to_owned());
        let bytes = out.body.collect().await.map_err(|e| Error::S3 {
            operation: format!("read of s3://{}/{key}", self.bucket),
            message: e.to_string(),
        })?;
        Ok(Got::Body {
            etag,
            bytes: bytes.to_vec(),
        })
    }
}

/// A write's precondition.
#[derive(Clone, Copy)]
enum Condition<'a> {
    Always,
    /// Only over the version with this ETag.
    Match(&'a str),
    /// Only if there is no object yet.
    Absent,
}

enum Got {
    Unchanged,
    Missing,
    Body {
        etag: Option<String>,
        bytes: Vec<u8>,
    },
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        let mut g = Grant::new(
            "bkt",
            Scope::Prefix("drop/".into()),
            Methods {
                read: false,
                put: true,
                delete: true,
            },
            UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        );
        g.max_size = Some(1000);
        g
    }

    #[test]
    fn record_round_trips_and_holds_no_token() {
        let g = grant();
        let secret = Secret::from_bytes([4; 32]);
        let token = g.mint(&secret).unwrap();
        let r = LinkRecord::new(
            &g,
            UNIX_EPOCH + Duration::from_secs(1_900_000_000),
            Some("for Ann".into()),
            Some("https://files.example.com".into()),
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains(&token), "{json}");
        assert!(!json.contains(&token[token.len() - 12..]), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["id"], g.id_text());
        assert_eq!(v["scope"], "drop/");
        assert_eq!(v["folder"], true);
        assert_eq!(v["methods"], serde_json::json!(["PUT", "DELETE"]));
        assert_eq!(v["expires_at"], "2033-05-18T03:33:20Z");
        assert_eq!(v["created_at"], "2030-03-17T17:46:40.000Z");
        assert_eq!(v["revoked"], false);
        let back: LinkRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // The grant comes back whole: the same token with the same secret ("copy again").
        assert_eq!(back.grant().unwrap(), g);
        assert_eq!(back.grant().unwrap().mint(&secret).unwrap(), token);
    }

    #[test]
    fn state_is_revoked_then_expired_then_active() {
        let g = grant();
        let mut r = LinkRecord::new(&g, SystemTime::now(), None, None);
        let before = g.expires_at() - Duration::from_secs(1);
        assert_eq!(r.state(before), LinkState::Active);
        assert_eq!(r.state(g.expires_at()), LinkState::Expired);
        r.revoked = true;
        assert_eq!(r.state(before), LinkState::Revoked);
        assert_eq!(r.state(g.expires_at()), LinkState::Revoked);
        assert_eq!(serde_json::to_value(LinkState::Expired).unwrap(), "expired");
        // Older or hand-edited records: missing optional fields are defaults.
        let minimal = r#"{"version":1,"id":"AAAAAAAA","bucket":"b","scope":"k","folder":false,
            "methods":["GET","HEAD"],"created_at":"2026-01-01T00:00:00Z","expires_at":"2026-02-01T00:00:00Z"}"#;
        let m: LinkRecord = serde_json::from_str(minimal).unwrap();
        assert!(!m.revoked && m.note.is_none());
        assert_eq!(m.grant().unwrap().methods, Methods::READ);
    }

    #[test]
    fn revoked_list_adds_and_prunes() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let mut l = RevokedList::default();
        l.add("AAAAAAAA", now + Duration::from_secs(10), now);
        l.add("BBBBBBBB", now + Duration::from_secs(100), now);
        let back = RevokedList::parse(&l.to_json()).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.entries().count(), 2);
        // Past the first one's expiry, the next write drops it: it is refused as expired anyway.
        l.add(
            "CCCCCCCC",
            now + Duration::from_secs(500),
            now + Duration::from_secs(20),
        );
        assert_eq!(
            l.revoked.keys().collect::<Vec<_>>(),
            ["BBBBBBBB", "CCCCCCCC"]
        );
        assert!(RevokedList::parse(b"[1,2]").is_err());
        // Not ids: kept in the file, skipped in the set.
        l.revoked.insert("nope".into(), u64::MAX);
        assert_eq!(l.entries().count(), 2);
        assert_eq!(parse_id("AAAAAAAA"), Some([0; 6]));
        assert_eq!(parse_id("../x.jsn"), None);
    }
}
