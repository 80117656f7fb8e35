//! The relay's secret: 32 random bytes that sign and verify every token.
//!
//! It lives in the config folder (`relay-secret`, mode 0600, 64 hex digits), created under a
//! lock the first time any s3share process needs it, so that `link --relay` in one process
//! mints links that `serve` in another accepts. Servers point at their own file with
//! `--secret-file` or `S3SHARE_RELAY_SECRET_FILE`, so that several instances share one secret.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::StorePaths;

/// The environment variable naming the secret file (overridden by `--secret-file`).
pub const SECRET_FILE_ENV: &str = "S3SHARE_RELAY_SECRET_FILE";
/// The secret file's name in the config folder.
pub const SECRET_FILE_NAME: &str = "relay-secret";

/// The relay's signing key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from its bytes (tests, or keys managed elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random secret.
    pub fn random() -> Self {
        // rand's thread RNG is a CSPRNG seeded from the OS.
        Self(rand::random())
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
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
        if let Some(s) = read(path)? {
            return Ok(s);
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
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
        // Another process may have written it while this one waited for the lock.
        if let Some(s) = read(path)? {
            return Ok(s);
        }
        let secret = Secret::random();
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(local("cannot write", &tmp))?;
        out.write_all(format!("{}\n", hex(&secret.0)).as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(local("cannot write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(local("cannot write", path))?;
        tracing::info!(path = %path.display(), "created a new relay secret");
        Ok(secret)
    }
}

fn read(path: &Path) -> Result<Option<Secret>> {
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
    let bytes = unhex(text.trim()).ok_or_else(|| {
        Error::Config(format!(
            "{} is not a relay secret (it must hold 64 hex digits); delete it to make a new one (links made with the old one stop working)",
            path.display()
        ))
    })?;
    Ok(Some(Secret(bytes)))
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
}
