//! What a running relay knows about revoked links: a set per bucket in memory, kept fresh by a
//! background poller, so the per-request check is a hash lookup and never a round trip to S3.
//!
//! # Design
//!
//! `s3share revoke` adds the link's id to the bucket's small revocation list
//! (`.s3share/revoked.json`, see [`super::ledger`]). Every relay polls that one object for each
//! bucket it has served in the last [`RevocationConfig::idle`] (10 minutes), every
//! [`RevocationConfig::poll`] (500 ms), with a conditional GET (`If-None-Match` with the last
//! ETag: a 304 with no body when nothing changed; SeaweedFS and AWS do that, the embedded
//! store sends the list again, which is recognised by its ETag). A revocation therefore
//! reaches every relay within one poll plus one GET, well under a second, with no shared state
//! between relays and nothing but S3. The cost is two small GETs a second per relay and busy bucket; a bucket
//! nobody asked for is not polled.
//!
//! Failure modes, chosen to fail closed without blocking requests:
//!
//! - The first request for a bucket (after start, or after the bucket went idle) waits for one
//!   fetch of the list, at most [`RevocationConfig::first_load`]; every later request is
//!   answered from memory at once.
//! - If that first fetch fails (S3 unreachable, access denied, a damaged list), the request is
//!   refused with 503 rather than risk serving a revoked link; the next request tries again.
//! - Once loaded, a failing poll keeps the last known set: links known revoked stay refused,
//!   links revoked while S3 is unreachable are refused once it answers again. Failures are
//!   logged (once per outage, not per poll).
//! - Ids are only ever added while a bucket is served: a list that lost an id (replaced by an
//!   older copy, deleted) does not bring a known-revoked link back. Entries leave memory when
//!   their link has expired anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use super::Signer;
use super::ledger::Fetched;
use super::token::ID_LEN;

/// How the relay keeps its revoked sets fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationConfig {
    /// Time between two polls of a bucket's revocation list.
    pub poll: Duration,
    /// A bucket not served for this long is no longer polled (and forgotten).
    pub idle: Duration,
    /// Longest wait of the first request for a bucket for its list.
    pub first_load: Duration,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            idle: Duration::from_secs(600),
            first_load: Duration::from_secs(5),
        }
    }
}

/// The revoked list of one bucket could not be read when a request needed it first: refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot check whether this link was revoked; try again shortly")]
pub struct Unavailable;

/// The revoked links of every bucket this relay serves, refreshed in the background.
pub struct Revocations {
    source: Arc<dyn Signer>,
    config: RevocationConfig,
    /// Read on every request (a shared lock: requests never wait for each other here).
    buckets: RwLock<HashMap<String, Arc<Bucket>>>,
    poller: OnceLock<tokio::task::AbortHandle>,
    started: Instant,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("config", &self.config)
            .field("buckets", &self.buckets.read().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Revocations {
    fn drop(&mut self) {
        if let Some(p) = self.poller.get() {
            p.abort();
        }
    }
}

#[derive(Default)]
struct Bucket {
    known: RwLock<Known>,
    /// Milliseconds since `Revocations::started` of the last request for this bucket.
    last_used: AtomicU64,
    /// One fetch at a time per bucket.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// Whether the last poll failed (to log an outage once).
    failing: AtomicBool,
}

#[derive(Default)]
struct Known {
    loaded: bool,
    etag: Option<String>,
    /// Revoked id → its link's expiry (Unix seconds).
    ids: HashMap<[u8; ID_LEN], u64>,
}

impl Revocations {
    /// Revocations read through `source` (the relay's S3 client). Nothing runs until the first
    /// [`Revocations::check`], which starts the poller on the current tokio runtime.
    pub fn new(source: Arc<dyn Signer>, config: RevocationConfig) -> Arc<Self> {
        Arc::new(Self {
            source,
            config,
            buckets: RwLock::new(HashMap::new()),
            poller: OnceLock::new(),
            started: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Whether link `id` of `bucket` is revoked. In memory, except for the first request for a
    /// bucket, which waits (boundedly) for its list; `Err` when that list cannot be read.
    pub async fn check(
        self: &Arc<Self>,
        bucket: &str,
        id: &[u8; ID_LEN],
        now: SystemTime,
    ) -> Result<bool, Unavailable> {
        self.start_poller();
        let found = self.buckets.read().get(bucket).cloned();
        let entry = match found {
            Some(e) => e,
            None => self
                .buckets
                .write()
                .entry(bucket.to_owned())
                .or_default()
                .clone(),
        };
        entry.last_used.store(self.now_ms(), Ordering::Relaxed);
        if let Some(revoked) = entry.lookup(id, now) {
            return Ok(revoked);
        }
        let load = async {
            let _one = entry.fetching.lock().await;
            // Another request may have loaded it while this one waited.
            if !entry.known.read().loaded {
                self.fetch(bucket, &entry).await;
            }
        };
        let _ = tokio::time::timeout(self.config.first_load, load).await;
        entry.lookup(id, now).ok_or(Unavailable)
    }

    fn start_poller(self: &Arc<Self>) {
        self.poller.get_or_init(|| {
            let weak = Arc::downgrade(self);
            tokio::spawn(poll(weak, self.config.poll)).abort_handle()
        });
    }

    /// One conditional GET of `bucket`'s list, merged into what is known.
    async fn fetch(&self, bucket: &str, entry: &Bucket) {
        let etag = entry.known.read().etag.clone();
        // Bounded: a silent server must not hold the bucket's fetch lock for long.
        let got = tokio::time::timeout(
            self.config.first_load.max(self.config.poll),
            self.source.revocations(bucket, etag.as_deref()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(crate::Error::Unresponsive {
                endpoint: format!("of bucket {bucket:?}"),
                detail: format!(
                    "no revocation list within {:?}",
                    self.config.first_load.max(self.config.poll)
                ),
            })
        });
        let now = unix(SystemTime::now());
        match got {
            Ok(fetched) => {
                if entry.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(bucket, "relay: the revocation list is readable again");
                }
                entry.known.write().merge(fetched, now);
            }
            Err(e) => {
                if !entry.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        bucket,
                        "relay: cannot read the revocation list ({e}); links known to be revoked stay refused"
                    );
                }
            }
        }
    }
}

impl Bucket {
    /// `Some(revoked)` once the list was loaded.
    fn lookup(&self, id: &[u8; ID_LEN], now: SystemTime) -> Option<bool> {
        let known = self.known.read();
        // An entry past its expiry no longer matters: the token itself is refused as expired.
        known
            .loaded
            .then(|| known.ids.get(id).is_some_and(|exp| *exp > unix(now)))
    }
}

impl Known {
    fn merge(&mut self, fetched: Fetched, now: u64) {
        match fetched {
            Fetched::Unchanged | Fetched::Missing => {}
            Fetched::List { etag, list } => {
                self.ids.extend(list.entries());
                self.etag = etag;
            }
        }
        // An expired link is refused as expired: its entry is no longer needed.
        self.ids.retain(|_, exp| *exp > now);
        self.loaded = true;
    }
}

async fn poll(weak: Weak<Revocations>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(me) = weak.upgrade() else { return };
        let now = me.now_ms();
        let idle = me.config.idle.as_millis() as u64;
        let due: Vec<(String, Arc<Bucket>)> = {
            let mut map = me.buckets.write();
            map.retain(|_, b| now.saturating_sub(b.last_used.load(Ordering::Relaxed)) < idle);
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (bucket, entry) in due {
            // A fetch still under way (slow server) is not doubled; the next tick tries again.
            let Ok(guard) = entry.fetching.clone().try_lock_owned() else {
                continue;
            };
            let me = me.clone();
            tokio::spawn(async move {
                let _guard = guard;
                me.fetch(&bucket, &entry).await;
            });
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::ledger::RevokedList;
    use crate::relay::{Presigned, SignRequest};
    use parking_lot::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// A bucket's revocation list as a test sets it; `None` is an unreachable server.
    #[derive(Default)]
    struct Lists {
        list: Mutex<Option<RevokedList>>,
        unreachable: AtomicBool,
        fetches: AtomicUsize,
        unchanged: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Signer for Lists {
        async fn sign(&self, req: &SignRequest) -> crate::Result<Presigned> {
            Ok(Presigned {
                method: http::Method::GET,
                url: format!("http://s3.test/{}?sig=1", req.key),
                headers: vec![],
                expires_at: SystemTime::now() + req.lifetime,
                limited_by_credentials: false,
            })
        }
        async fn exists(&self, _bucket: &str, _key: &str) -> crate::Result<bool> {
            Ok(false)
        }
        async fn revocations(&self, _bucket: &str, etag: Option<&str>) -> crate::Result<Fetched> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.unreachable.load(Ordering::SeqCst) {
                return Err(crate::Error::Config("unreachable".into()));
            }
            let list = self.list.lock().clone();
            Ok(match list {
                None => Fetched::Missing,
                Some(l) => {
                    let tag = format!("{}", l.revoked.len());
                    if etag == Some(tag.as_str()) {
                        self.unchanged.fetch_add(1, Ordering::SeqCst);
                        Fetched::Unchanged
                    } else {
                        Fetched::List {
                            etag: Some(tag),
                            list: l,
                        }
                    }
                }
            })
        }
    }

    const A: [u8; ID_LEN] = [1; ID_LEN];
    const B: [u8; ID_LEN] = [2; ID_LEN];

    fn id(b: &[u8; ID_LEN]) -> String {
        crate::relay::token::id_text(b)
    }

    fn quick() -> RevocationConfig {
        RevocationConfig {
            poll: Duration::from_millis(20),
            idle: Duration::from_secs(600),
            first_load: Duration::from_secs(2),
        }
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    fn revoke(lists: &Lists, which: &[u8; ID_LEN], expires: SystemTime) {
        let mut l = lists.list.lock();
        l.get_or_insert_with(RevokedList::default)
            .add(&id(which), expires, SystemTime::now());
    }

    /// Waits (bounded) until `cond` holds, polling the set.
    async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) -> Duration {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if cond().await {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{what}: not within 3 s");
    }

    #[tokio::test]
    async fn revoked_ids_are_seen_by_the_poller_and_answered_from_memory() {
        let lists = Arc::new(Lists::default());
        revoke(&lists, &A, later());
        let r = Revocations::new(lists.clone(), quick());
        let now = SystemTime::now();
        assert_eq!(r.check("b", &A, now).await, Ok(true));
        assert_eq!(r.check("b", &B, now).await, Ok(false));
        // A revocation made now is seen within a poll.
        revoke(&lists, &B, later());
        let took = eventually("B revoked", async || {
            r.check("b", &B, SystemTime::now()).await == Ok(true)
        })
        .await;
        assert!(took < Duration::from_millis(500), "{took:?}");
        // Conditional GETs: unchanged lists are not sent again.
        eventually("a 304", async || lists.unchanged.load(Ordering::SeqCst) > 0).await;
        // Checks never wait for S3: many checks, no more fetches than polls.
        let before = lists.fetches.load(Ordering::SeqCst);
        for _ in 0..10_000 {
            assert_eq!(r.check("b", &A, SystemTime::now()).await, Ok(true));
        }
        assert!(lists.fetches.load(Ordering::SeqCst) - before < 20);
    }

    #[tokio::test]
    async fn fails_closed_for_known_revocations_and_for_unreadable_first_loads() {
        let lists = Arc::new(Lists::default());
        revoke(&lists, &A, later());
        lists.unreachable.store(true, Ordering::SeqCst);
        let r = Revocations::new(lists.clone(), quick());
        // Never loaded: refused, not served blind.
        assert_eq!(r.check("b", &B, SystemTime::now()).await, Err(Unavailable));
        lists.unreachable.store(false, Ordering::SeqCst);
        assert_eq!(r.check("b", &B, SystemTime::now()).await, Ok(false));
        assert_eq!(r.check("b", &A, SystemTime::now()).await, Ok(true));
        // S3 unreachable, or the list replaced by one that lost A: A stays refused.
        lists.unreachable.store(true, Ordering::SeqCst);
        let n = lists.fetches.load(Ordering::SeqCst);
        eventually("polls while unreachable", async || {
            lists.fetches.load(Ordering::SeqCst) > n + 2
        })
        .await;
        assert_eq!(r.check("b", &A, SystemTime::now()).await, Ok(true));
        assert_eq!(r.check("b", &B, SystemTime::now()).await, Ok(false));
        *lists.list.lock() = Some(RevokedList::default());
        lists.unreachable.store(false, Ordering::SeqCst);
        let n = lists.fetches.load(Ordering::SeqCst);
        eventually("polls again", async || {
            lists.fetches.load(Ordering::SeqCst) > n + 2
        })
        .await;
        assert_eq!(r.check("b", &A, SystemTime::now()).await, Ok(true));
    }

    #[tokio::test]
    async fn idle_buckets_are_not_polled_and_expired_entries_go() {
        let lists = Arc::new(Lists::default());
        let soon = SystemTime::now() + Duration::from_secs(1);
        revoke(&lists, &A, soon);
        let r = Revocations::new(
            lists.clone(),
            RevocationConfig {
                idle: Duration::from_millis(100),
                ..quick()
            },
        );
        assert_eq!(r.check("b", &A, SystemTime::now()).await, Ok(true));
        // Past its link's expiry the entry no longer counts (the token is refused as expired).
        assert_eq!(r.check("b", &A, soon).await, Ok(false));
        eventually("forgotten when idle", async || r.buckets.read().is_empty()).await;
        let n = lists.fetches.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            lists.fetches.load(Ordering::SeqCst),
            n,
            "an idle bucket was polled"
        );
    }

    /// The handler asks the set: a revoked link gets 403 and no Location, the others their
    /// redirect; the ledger's prefix is never served, even under a bucket-root link; a bucket
    /// whose list cannot be read gets 503.
    #[tokio::test]
    async fn the_handler_refuses_revoked_links_and_the_ledger() {
        use crate::relay::token::{Grant, Methods, Scope};
        use crate::relay::{RelayState, Secret, handle, make_link};
        let lists = Arc::new(Lists::default());
        let st = RelayState::new(
            Secret::from_bytes([3; 32]),
            lists.clone(),
            "127.0.0.1:8457".parse().unwrap(),
            None,
        )
        .unwrap();
        let get = async |url: &str| {
            let parts = http::Request::get(url)
                .header("host", "127.0.0.1:8457")
                .body(())
                .unwrap()
                .into_parts()
                .0;
            handle(&parts, SystemTime::now(), &st).await.response
        };
        let root = Grant::new("b", Scope::Prefix(String::new()), Methods::READ, later());
        let base = make_link(&root, &st.secret, "").unwrap().url;
        let ok = get(&format!("{base}docs/a.txt")).await;
        assert_eq!(ok.status(), 307);
        for reserved in [".s3share/revoked.json", ".s3share/links/AAAAAAAA.json"] {
            let r = get(&format!("{base}{reserved}")).await;
            assert_eq!(r.status(), 404, "{reserved}");
            assert!(r.headers().get("location").is_none());
        }
        revoke(&lists, &root.id, later());
        let took = eventually("refused", async || {
            get(&format!("{base}docs/a.txt")).await.status() == 403
        })
        .await;
        assert!(took < Duration::from_secs(1), "{took:?}");
        let r = get(&format!("{base}docs/a.txt")).await;
        assert!(r.headers().get("location").is_none());
        assert!(
            r.body().as_text().contains("revoked"),
            "{}",
            r.body().as_text()
        );

        lists.unreachable.store(true, Ordering::SeqCst);
        let other = Grant::new("other", Scope::Key("k".into()), Methods::READ, later());
        let r = get(&make_link(&other, &st.secret, "").unwrap().url).await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().get("location").is_none());
    }
}
