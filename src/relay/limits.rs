//! What keeps slow, idle and guessing clients from holding or probing the relay.
//!
//! Two mechanisms, both keyed by client (an IPv4 address, or the /64 prefix of an IPv6 one,
//! since one IPv6 host commonly owns a whole /64):
//!
//! - **Connection slots.** A relay request is one short exchange, so a connection that has
//!   not yet sent a complete request head, or sits idle between requests, costs a slot and
//!   gives nothing. Refusing new connections when the slots are full (the obvious cap) lets
//!   a few hundred such clients, from any address including loopback, turn everyone else
//!   away for as long as they keep their sockets open. So when the relay is full, a new
//!   connection *evicts* an idle one instead: the idle connection of the client holding the
//!   most connections, oldest first. A connection in the middle of a request is never
//!   evicted (except one held back for guessing, below). A client with one connection is
//!   therefore only ever evicted by clients with as few, after all the hogs' idle ones. Each
//!   client also has its own cap: at it, the client's own oldest idle connection makes room,
//!   so one client cannot grow past its share, and when all of its connections are busy its
//!   new ones are refused. The header-read timeout (hyper re-arms it while a kept-alive
//!   connection waits for its next request, so it is also the idle timeout) closes what
//!   eviction does not reach.
//! - **Refusal buckets.** Every client has a token bucket that only *refused* requests drain
//!   (no token, bad token, expired, outside the scope, bad path, wrong host). While it has
//!   tokens, refusals are answered at once. Once empty, a refusal is held back for a moment
//!   and then answered `429 Too Many Requests` with `Retry-After`, and the connection holding
//!   it counts as busy toward the client's own cap: a guesser gets at most
//!   `per-client cap / delay` answers per second instead of tens of thousands. A request with
//!   a valid token is answered as always, bucket or not: a client that made mistakes is never
//!   slowed on its good links. The table of buckets is bounded; a bucket that has refilled is
//!   the same as no bucket and is dropped first, and when the table is full of draining
//!   buckets, newcomers share one overflow bucket rather than push out a guesser's record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The client a connection or request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// IPv4 (and IPv4-mapped IPv6) addresses as they are; IPv6 by their /64 prefix.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())),
            },
        }
    }
}

/// The limits' settings (part of [`super::ServerConfig`]).
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Most connections at once. When full, a new connection evicts an idle one; it is
    /// refused only when every slot holds a request under way.
    pub max_connections: usize,
    /// Most connections at once from one client (IPv4 address or IPv6 /64).
    pub max_connections_per_client: usize,
    /// Refused requests (bad token, bad path…) a client may make in a burst; after that its
    /// refusals are held back [`LimitsConfig::refusal_delay`] and answered 429.
    pub refusal_burst: u32,
    /// The burst refills by one refusal per this much time.
    pub refusal_refill: Duration,
    /// How long a refusal is held back once the client's burst is spent.
    pub refusal_delay: Duration,
    /// Most clients whose refusals are tracked (bounds the memory of the table).
    pub max_tracked_clients: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 512,
            // Above a benchmark's 50 or an office behind one NAT; at the cap a client's own
            // idle connections make room, so only a client with 128 requests under way waits.
            max_connections_per_client: 128,
            // More than a few dozen honest mistakes (a stale link retried, a mistyped path);
            // a guesser then gets one answer per connection per second.
            refusal_burst: 60,
            refusal_refill: Duration::from_secs(1),
            refusal_delay: Duration::from_secs(1),
            // A bucket is ~50 bytes: under 1 MB at most.
            max_tracked_clients: 10_000,
        }
    }
}

/// One connection's state, shared between its task, the limits and its requests.
#[derive(Debug)]
pub struct ConnState {
    /// Requests being answered (service called, response body not yet written out).
    in_flight: AtomicU32,
    /// Held back as a throttled refusal: busy for the client's own cap, evictable for others.
    held: AtomicBool,
    /// Since when it has been idle (nanoseconds after the limits were made).
    idle_since: AtomicU64,
    /// Woken when the limits evict it.
    evicted: Notify,
    /// When the limits were made, for `idle_since`.
    epoch: Instant,
}

impl ConnState {
    /// Resolves when the connection has been evicted.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Whether a request is being answered (and not merely held back as a throttled refusal).
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0 && !self.held.load(Ordering::Acquire)
    }

    /// Marks a request begun on this connection; busy until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy { conn: self.clone() }
    }
}

/// Marks its connection busy while alive; moved into the response body, so a connection
/// counts as busy until its response has been written out (hyper drops the body then).
#[derive(Debug)]
pub struct Busy {
    conn: Arc<ConnState>,
}

impl Busy {
    /// Marks the request held back (throttled), or no longer.
    pub fn set_held(&self, held: bool) {
        self.conn.held.store(held, Ordering::Release);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn.held.store(false, Ordering::Release);
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn
                .idle_since
                .store(nanos_since(self.conn.epoch), Ordering::Release);
        }
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A connection's slot; dropping it frees the slot (unless it was evicted, which already did).
#[derive(Debug)]
pub struct Ticket {
    limits: Arc<Limits>,
    id: u64,
    /// The connection's state.
    pub conn: Arc<ConnState>,
}

impl Ticket {
    /// Marks a request begun on this connection; busy until the returned guard drops.
    pub fn begin(&self) -> Busy {
        self.conn.begin()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.limits.conns.lock().remove(self.id);
    }
}

#[derive(Debug, Default)]
struct Conns {
    next_id: u64,
    live: HashMap<u64, Entry>,
    per_client: HashMap<ClientKey, usize>,
}

#[derive(Debug)]
struct Entry {
    client: ClientKey,
    conn: Arc<ConnState>,
}

impl Conns {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.live.remove(&id)?;
        if let Some(n) = self.per_client.get_mut(&e.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&e.client);
            }
        }
        Some(e)
    }

    /// The connection to evict: idle (or, with `held_too`, held back as a throttled refusal),
    /// of the client with the most connections, idle the longest. `only` restricts it to one
    /// client. A linear scan, done only when a cap is reached: at most `max_connections`
    /// entries, a few microseconds.
    fn victim(&self, only: Option<ClientKey>, held_too: bool) -> Option<u64> {
        let mut best: Option<(usize, u64, u64)> = None; // (connections of its client, idle since, id)
        for (&id, e) in &self.live {
            if only.is_some_and(|c| c != e.client) {
                continue;
            }
            let c = &e.conn;
            let evictable = c.in_flight.load(Ordering::Acquire) == 0
                || (held_too && c.held.load(Ordering::Acquire));
            if !evictable {
                continue;
            }
            let count = self.per_client.get(&e.client).copied().unwrap_or(0);
            let since = c.idle_since.load(Ordering::Acquire);
            let better = match best {
                None => true,
                Some((bc, bs, bid)) => count > bc || (count == bc && (since, id) < (bs, bid)),
            };
            if better {
                best = Some((count, since, id));
            }
        }
        best.map(|(_, _, id)| id)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, per_sec: f64, burst: u32) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * per_sec;
        self.tokens = (self.tokens + gained).min(f64::from(burst));
        self.at = now;
    }
}

#[derive(Debug)]
struct Refusals {
    table: HashMap<ClientKey, Bucket>,
    /// Shared by clients that find the table full of draining buckets.
    overflow: Bucket,
    /// No sweep of a full table before this (a sweep that freed nothing is not redone at
    /// once for every newcomer).
    next_sweep: Instant,
}

/// The relay's connection slots and refusal buckets.
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    epoch: Instant,
    conns: Mutex<Conns>,
    refusals: Mutex<Refusals>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every slot holds a request under way.
    Relay,
    /// The client's own connections are all busy.
    Client,
}

impl Limits {
    /// Limits with these settings.
    pub fn new(config: LimitsConfig) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            refusals: Mutex::new(Refusals {
                table: HashMap::new(),
                overflow: Bucket::full(config.refusal_burst, now),
                next_sweep: now,
            }),
            config,
            epoch: now,
            conns: Mutex::new(Conns::default()),
        })
    }

    /// Takes a slot for a new connection from `ip`, evicting an idle connection when a cap
    /// is reached (see the module comment).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Full> {
        let client = ClientKey::of(ip);
        let mut conns = self.conns.lock();
        let mut evicted = Vec::new();
        if conns.per_client.get(&client).copied().unwrap_or(0)
            >= self.config.max_connections_per_client
        {
            // Held-back refusals stay: otherwise a guesser would get a fresh answer for
            // every new connection.
            let id = conns.victim(Some(client), false).ok_or(Full::Client)?;
            evicted.extend(conns.remove(id));
        }
        if conns.live.len() >= self.config.max_connections {
            let id = conns.victim(None, true).ok_or(Full::Relay)?;
            evicted.extend(conns.remove(id));
        }
        let id = conns.next_id;
        conns.next_id += 1;
        let conn = Arc::new(ConnState {
            in_flight: AtomicU32::new(0),
            held: AtomicBool::new(false),
            idle_since: AtomicU64::new(nanos_since(self.epoch)),
            evicted: Notify::new(),
            epoch: self.epoch,
        });
        conns.live.insert(
            id,
            Entry {
                client,
                conn: conn.clone(),
            },
        );
        *conns.per_client.entry(client).or_default() += 1;
        drop(conns);
        for e in evicted {
            // `notify_one` keeps the wake-up if the task is not waiting at this instant.
            e.conn.evicted.notify_one();
        }
        Ok(Ticket {
            limits: self.clone(),
            id,
            conn,
        })
    }

    /// Records a refused request from `ip`. `None`: answer it as usual; `Some(retry_after)`:
    /// the client's bucket is empty, hold the refusal back and answer 429.
    pub fn refused(&self, ip: IpAddr) -> Option<Duration> {
        let burst = self.config.refusal_burst;
        let per_sec = 1.0 / self.config.refusal_refill.as_secs_f64().max(1e-3);
        let client = ClientKey::of(ip);
        let now = Instant::now();
        let mut r = self.refusals.lock();
        let r = &mut *r;
        if !r.table.contains_key(&client)
            && r.table.len() >= self.config.max_tracked_clients
            && now >= r.next_sweep
        {
            // Buckets that have refilled carry no information: drop them.
            r.table.retain(|_, b| {
                b.refill(now, per_sec, burst);
                b.tokens < f64::from(burst)
            });
            r.next_sweep = now + Duration::from_secs(1);
        }
        let bucket = if r.table.len() < self.config.max_tracked_clients {
            r.table
                .entry(client)
                .or_insert_with(|| Bucket::full(burst, now))
        } else {
            match r.table.get_mut(&client) {
                Some(b) => b,
                None => &mut r.overflow,
            }
        };
        bucket.refill(now, per_sec, burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            let wait = (1.0 - bucket.tokens) / per_sec;
            Some(Duration::from_secs_f64(wait.max(0.0)))
        }
    }

    /// How long a throttled refusal is held back.
    pub fn refusal_delay(&self) -> Duration {
        self.config.refusal_delay
    }

    /// Clients whose refusals are tracked now (bounded by `max_tracked_clients`).
    pub fn tracked_clients(&self) -> usize {
        self.refusals.lock().table.len()
    }

    /// Connections holding a slot now.
    pub fn connections(&self) -> usize {
        self.conns.lock().live.len()
    }
}

/// Whether a response status is a refusal that drains the client's bucket: what a guesser
/// gets (no token, bad or expired token, scope or method outside the link, bad path, wrong
/// host). Not the answers that need a valid token first (412 exists, 413 too large, 411).
pub fn is_refusal(status: u16) -> bool {
    matches!(status, 400 | 401 | 403 | 404 | 405 | 414 | 421)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimitsConfig {
        LimitsConfig {
            max_connections: 4,
            max_connections_per_client: 3,
            refusal_burst: 3,
            refusal_refill: Duration::from_secs(3600),
            refusal_delay: Duration::from_millis(1),
            max_tracked_clients: 2,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")),
            ClientKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:10.0.0.1")),
            ClientKey::of(ip("10.0.0.1"))
        );
        assert_ne!(ClientKey::of(ip("10.0.0.1")), ClientKey::of(ip("10.0.0.2")));
    }

    #[test]
    fn full_relay_evicts_idle_connections_of_the_biggest_client_first() {
        let limits = Limits::new(config());
        let live = |t: &Ticket| limits.conns.lock().live.contains_key(&t.id);
        let hog: Vec<Ticket> = (0..3)
            .map(|_| limits.admit(ip("10.0.0.9")).unwrap())
            .collect();
        let mine = limits.admit(ip("10.0.0.1")).unwrap();
        // Full: a newcomer evicts the hog's oldest idle connection, not mine.
        let other = limits.admit(ip("10.0.0.2")).unwrap();
        assert!(!live(&hog[0]) && live(&hog[1]) && live(&mine));
        let h3 = limits.admit(ip("10.0.0.9")).unwrap();
        assert!(!live(&hog[1]) && live(&mine) && live(&other));
        assert_eq!(limits.connections(), 4);
        // The hog at its own cap with every connection busy: refused, nothing evicted.
        drop(other);
        let h4 = limits.admit(ip("10.0.0.9")).unwrap();
        let busy: Vec<Busy> = [&hog[2], &h3, &h4].iter().map(|t| t.begin()).collect();
        assert_eq!(limits.admit(ip("10.0.0.9")).unwrap_err(), Full::Client);
        // Everything busy: a newcomer is refused rather than cutting a request short.
        let _mine_busy = mine.begin();
        assert_eq!(limits.admit(ip("10.0.0.3")).unwrap_err(), Full::Relay);
        // A held-back refusal can be evicted by others, not by its own client.
        busy[0].set_held(true);
        assert_eq!(limits.admit(ip("10.0.0.9")).unwrap_err(), Full::Client);
        assert!(limits.admit(ip("10.0.0.3")).is_ok());
        assert!(!live(&hog[2]));
        // Once a response is written out, the connection is idle (evictable) again.
        drop(busy);
        assert_eq!(h3.conn.in_flight.load(Ordering::Acquire), 0);
    }

    #[test]
    fn refusal_buckets_drain_refill_and_stay_bounded() {
        let limits = Limits::new(LimitsConfig {
            refusal_refill: Duration::from_millis(50),
            ..config()
        });
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            assert_eq!(limits.refused(a), None);
        }
        let wait = limits.refused(a).expect("bucket empty");
        assert!(wait <= Duration::from_millis(50), "{wait:?}");
        // Another client is not affected.
        assert_eq!(limits.refused(ip("10.0.0.2")), None);
        // The table is full of draining buckets: newcomers share the overflow bucket, and the
        // guesser's empty bucket is not pushed out.
        for i in 3..20 {
            let _ = limits.refused(ip(&format!("10.0.0.{i}")));
        }
        assert!(limits.tracked_clients() <= 2);
        assert!(limits.refused(a).is_some());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(limits.refused(a), None, "refilled");
    }
}
