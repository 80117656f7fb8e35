//! The relay's secret: 32 random bytes that sign and verify every token.
//!
//! It lives in the config folder (`relay-secret`, mode 0600, 64 hex digits), created under a
//! lock the first time any s3share process needs it, so that `link --relay` in one process
//! mints links that `serve` in another accepts. Servers point at their own file with
//! `--secret-file` or `S3SHARE_RELAY_SECRET_FILE`, so that several instances share one secret.
//!
//! Rotation (`s3share relay-secret rotate`, [`Secret::rotate`]) writes a new secret on the
//! file's first line and keeps the old one on a `previous` line with the end of its grace
//! period: new links are minted with the new secret, links of the old one still verify until
//! then. A running relay re-reads the file when it changes ([`Secret::watch`]), so rotation
//! needs no restart. The file:
//!
//! ```text
//! # s3share relay secret ...
//! <64 hex digits: the current secret>
//! previous <64 hex digits> until 2026-12-03T05:00:00Z
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::store::StorePaths;

/// The environment variable naming the secret file (overridden by `--secret-file`).
pub const SECRET_FILE_ENV: &str = "S3SHARE_RELAY_SECRET_FILE";
/// The secret file's name in the config folder.
pub const SECRET_FILE_NAME: &str = "relay-secret";
/// How often [`Secret::watch`] looks at the file.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);

/// The relay's signing keys: the current secret, which mints and verifies, and earlier secrets
/// inside their grace period, which only verify. Clones share the keys, so a reload
/// ([`Secret::reload`], [`Secret::watch`]) reaches every clone (the handler's included). Its
/// `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Secret(Arc<RwLock<Keys>>);

#[derive(Clone, PartialEq, Eq)]
struct Keys {
    current: [u8; 32],
    /// Earlier secrets and the end of their grace period.
    previous: Vec<([u8; 32], SystemTime)>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from its bytes (tests, or keys managed elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self::from_keys(Keys {
            current: bytes,
            previous: Vec::new(),
        })
    }

    fn from_keys(keys: Keys) -> Self {
        Self(Arc::new(RwLock::new(keys)))
    }

    /// A fresh random secret.
    pub fn random() -> Self {
        // rand's thread RNG is a CSPRNG seeded from the OS.
        Self::from_bytes(rand::random())
    }

    /// The current secret's bytes: what new tokens are minted with.
    pub(crate) fn bytes(&self) -> [u8; 32] {
        self.0.read().current
    }

    /// Calls `f` with each key that verifies at `now` (the current one first, then earlier
    /// ones still in their grace period) until it returns true; whether one did.
    pub(crate) fn any_key(&self, now: SystemTime, mut f: impl FnMut(&[u8; 32]) -> bool) -> bool {
        let keys = self.0.read();
        f(&keys.current) || keys.previous.iter().any(|(k, until)| now < *until && f(k))
    }

    /// The end of the latest grace period of an earlier secret (`None` when there is none).
    pub fn grace_until(&self) -> Option<SystemTime> {
        self.0.read().previous.iter().map(|(_, u)| *u).max()
    }

    /// The secret file to use: `explicit`, else `$S3SHARE_RELAY_SECRET_FILE`, else
    /// `relay-secret` in the user's config folder.
    pub fn path(explicit: Option<&Path>) -> Result<PathBuf> {
        if let Some(p) = explicit {
            return Ok(p.to_owned());
        }
        if let Some(p) = std::env::var_os(SECRET_FILE_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let paths = StorePaths::for_user().ok_or_else(|| {
            Error::Config(format!(
                "cannot find a config folder for the relay secret; set S3SHARE_HOME or {SECRET_FILE_ENV}"
            ))
        })?;
        Ok(paths.config_dir.join(SECRET_FILE_NAME))
    }

    /// Reads the secret at `path`, creating it (0600, under a lock so that two processes
    /// starting at once agree on one secret) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Some(keys) = read(path)? {
            return Ok(Self::from_keys(keys));
        }
        let _lock = lock(path)?;
        // Another process may have written it while this one waited for the lock.
        if let Some(keys) = read(path)? {
            return Ok(Self::from_keys(keys));
        }
        let keys = Keys {
            current: rand::random(),
            previous: Vec::new(),
        };
        write(path, &keys)?;
        tracing::info!(path = %path.display(), "created a new relay secret");
        Ok(Self::from_keys(keys))
    }

    /// Replaces the secret in `path` with a new one; the old one keeps verifying for `grace`,
    /// earlier ones until their own grace ends. A zero grace (after a leak) drops every
    /// earlier secret, not only the one in use: whoever read the file saw the `previous` lines
    /// too. Returns the end of the old secret's grace period. A missing file just gets a new
    /// secret.
    pub fn rotate(path: &Path, grace: Duration) -> Result<SystemTime> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(local("cannot create the folder of", path))?;
        }
        let _lock = lock(path)?;
        let now = SystemTime::now();
        // Rounded up to a whole second (the file holds seconds): never shorter than asked.
        let until = now + grace;
        let until = until
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| {
                std::time::UNIX_EPOCH
                    + Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
            })
            .unwrap_or(until);
        let mut previous = Vec::new();
        if let Some(old) = read(path)?
            && !grace.is_zero()
        {
            previous.push((old.current, until));
            previous.extend(old.previous.into_iter().filter(|(_, u)| *u > now));
        }
        let keys = Keys {
            current: rand::random(),
            previous,
        };
        write(path, &keys)?;
        tracing::info!(path = %path.display(), "rotated the relay secret");
        Ok(until)
    }

    /// Re-reads `path` into these keys (every clone sees them); whether they changed. On an
    /// error (a missing or damaged file) the keys stay as they were.
    pub fn reload(&self, path: &Path) -> Result<bool> {
        let keys = read(path)?
            .ok_or_else(|| Error::Config(format!("the relay secret {} is gone", path.display())))?;
        let mut mine = self.0.write();
        let changed = *mine != keys;
        *mine = keys;
        Ok(changed)
    }

    /// Watches `path` (every [`WATCH_EVERY`], by its size, time and identity) and reloads the
    /// keys when it changes, so `relay-secret rotate` reaches a running relay without a restart.
    /// Stops when every clone of this secret is gone. Needs a tokio runtime.
    pub fn watch(&self, path: &Path) -> tokio::task::JoinHandle<()> {
        let weak: Weak<RwLock<Keys>> = Arc::downgrade(&self.0);
        let path = path.to_owned();
        tokio::spawn(async move {
            let mut seen = stamp(&path);
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(keys) = weak.upgrade() else { return };
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match Secret(keys).reload(&path) {
                    Ok(true) => {
                        tracing::info!(path = %path.display(), "relay secret changed: reloaded");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!("relay secret not reloaded, keeping the keys in use: {e}");
                    }
                }
            }
        })
    }
}

/// Parses a grace period: `0`, `90` (seconds), `1h`, `7d`; at most a year.
pub fn parse_grace(text: &str) -> Result<Duration> {
    let t = text.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            Error::Config(format!(
                "cannot read the grace period {t:?} ({e}); write e.g. 0, 1h or 7d"
            ))
        })?,
    };
    if d > Duration::from_secs(366 * 86400) {
        return Err(Error::Config(
            "a grace period can last at most a year".into(),
        ));
    }
    Ok(d)
}

/// What identifies a version of the file: size, modification time and inode.
fn stamp(path: &Path) -> Option<(u64, Option<SystemTime>, u64)> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.len(), m.modified().ok(), ino))
}

fn lock(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(local("cannot create the folder of", path))?;
    }
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(local("cannot open", &lock_path))?;
    fs4::fs_std::FileExt::lock_exclusive(&lock).map_err(local("cannot lock", &lock_path))?;
    Ok(lock)
}

/// Writes `keys` to `path` whole (a temporary file renamed over it, 0600): a relay re-reading
/// it never sees half a file.
fn write(path: &Path, keys: &Keys) -> Result<()> {
    let mut text = String::new();
    if !keys.previous.is_empty() {
        text.push_str(
            "# s3share relay secret. The first line signs new links; each `previous` line still\n# verifies links of an earlier secret until the time given. Keep this file private.\n",
        );
    }
    text.push_str(&hex(&keys.current));
    text.push('\n');
    for (k, until) in &keys.previous {
        text.push_str(&format!(
            "previous {} until {}\n",
            hex(k),
            humantime::format_rfc3339_seconds(*until)
        ));
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&tmp).map_err(local("cannot write", &tmp))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(local("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(local("cannot write", path))?;
    Ok(())
}

fn read(path: &Path) -> Result<Option<Keys>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Local {
                what: "cannot read the relay secret",
                path: path.to_owned(),
                source: e,
            });
        }
    };
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the relay secret is readable by other users; chmod 600 it");
        }
    }
    parse(&text).map(Some).ok_or_else(|| {
        Error::Config(format!(
            "{} is not a relay secret (it must hold 64 hex digits, then optional `previous HEX until TIME` lines); delete it to make a new one (links made with the old one stop working)",
            path.display()
        ))
    })
}

fn parse(text: &str) -> Option<Keys> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let current = unhex(lines.next()?)?;
    let mut previous = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some("previous"), Some(key), Some("until"), Some(time), None) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            return None;
        };
        previous.push((unhex(key)?, humantime::parse_rfc3339_weak(time).ok()?));
    }
    Some(Keys { current, previous })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn local(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Local { what, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/relay-secret");
        let a = Secret::load_or_create(&path).unwrap();
        let b = Secret::load_or_create(&path).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert!(a.grace_until().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        let err = Secret::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
        assert_eq!(format!("{a:?}"), "Secret(..)");
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_its_grace_only() {
        use crate::relay::token::{Grant, Methods, Scope, Token};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-secret");
        let old = Secret::load_or_create(&path).unwrap();
        let g = Grant::new(
            "b",
            Scope::Key("k".into()),
            Methods::READ,
            SystemTime::now() + Duration::from_secs(86400 * 30),
        );
        let old_token = Token::parse(&g.mint(&old).unwrap()).unwrap();
        let until = Secret::rotate(&path, Duration::from_secs(3600)).unwrap();
        // A relay that loaded the file before: reloading brings the new keys to every clone.
        let relay = old.clone();
        assert!(old.reload(&path).unwrap());
        assert!(!old.reload(&path).unwrap(), "unchanged file, same keys");
        let new_token = Token::parse(&g.mint(&relay).unwrap()).unwrap();
        assert_ne!(relay.bytes(), Secret::from_bytes([0; 32]).bytes());
        let now = SystemTime::now();
        assert!(
            old_token.verify(&relay, "k", now).is_ok(),
            "old link in grace"
        );
        assert!(new_token.verify(&relay, "k", now).is_ok(), "new link");
        assert!(
            old_token.verify(&relay, "k", until).is_err(),
            "old link after grace"
        );
        assert!(new_token.verify(&relay, "k", until).is_ok());
        assert_eq!(
            relay.grace_until(),
            Some(
                humantime::parse_rfc3339(&humantime::format_rfc3339_seconds(until).to_string())
                    .unwrap()
            )
        );
        // The file as another process reads it: same keys, still private.
        let fresh = Secret::load_or_create(&path).unwrap();
        assert!(old_token.verify(&fresh, "k", now).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A damaged file is refused on reload, and the keys in use stay.
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, "0".repeat(64) + "\nsomething else\n").unwrap();
        assert!(fresh.reload(&path).is_err());
        assert!(old_token.verify(&fresh, "k", now).is_ok());
        std::fs::write(&path, good).unwrap();
        // Rotating with no grace (after a leak) drops the secret in use and every earlier one
        // still in its grace period: the leaked file held them all.
        Secret::rotate(&path, Duration::ZERO).unwrap();
        let after = Secret::load_or_create(&path).unwrap();
        assert!(new_token.verify(&after, "k", now).is_err());
        assert!(
            old_token.verify(&after, "k", now).is_err(),
            "earlier secret kept"
        );
        assert!(after.grace_until().is_none());
        assert!(!std::fs::read_to_string(&path).unwrap().contains("previous"));
        assert_eq!(parse_grace("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_grace("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_grace("2y").is_err() && parse_grace("soon").is_err());
    }

    #[tokio::test]
    async fn a_watched_file_reloads_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay-secret");
        let secret = Secret::load_or_create(&path).unwrap();
        let before = secret.bytes();
        let _watch = secret.watch(&path);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Secret::rotate(&path, Duration::from_secs(60)).unwrap();
        let start = std::time::Instant::now();
        while secret.bytes() == before {
            assert!(start.elapsed() < Duration::from_secs(3), "not reloaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(secret.grace_until().is_some());
    }
}
