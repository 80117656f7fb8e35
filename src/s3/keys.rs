//! Questions about keys, asked with HEADs: which of many exist already (a bounded number at a
//! time), and which name "keep both" gives a copy whose key is taken.

use std::collections::HashSet;

use futures::StreamExt as _;

use super::S3Client;
use crate::error::{Error, Result};

/// HEAD requests in flight at once: enough to check a folder of files quickly, few enough not
/// to be throttled.
const HEADS_IN_FLIGHT: usize = 16;

/// Copies "keep both" numbers before it gives up on a key.
const MAX_COPIES: u32 = 999;

/// `dir/name.ext` → `dir/name (n).ext`: the name "keep both" gives the `n`-th copy of a key, as
/// file managers do, keeping its folder and its extension (the last one: `x.tar (1).gz`).
pub fn numbered_key(key: &str, n: u32) -> String {
    let (dir, name) = key.rsplit_once('/').map_or(("", key), |(d, n)| (d, n));
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    let dir = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    format!("{dir}{stem} ({n}){ext}")
}

impl S3Client {
    /// The key "keep both" gives an upload whose `key` is taken: the first of `name (1).ext`,
    /// `name (2).ext`, … that does not exist in `bucket` and is not in `reserved` (the names
    /// others in the same batch go to). Nothing is reserved on the server: the upload itself
    /// must still refuse to replace an object (`If-None-Match`), in case the name is taken in
    /// between. [`Error::AlreadyExists`] for `key` when the first 999 are all taken.
    pub async fn free_key(
        &self,
        bucket: &str,
        key: &str,
        reserved: &HashSet<String>,
    ) -> Result<String> {
        for n in 1..=MAX_COPIES {
            let candidate = numbered_key(key, n);
            if !reserved.contains(&candidate) && self.head(bucket, &candidate).await?.is_none() {
                return Ok(candidate);
            }
        }
        Err(Error::AlreadyExists {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Which of `keys` exist in `bucket`, asked 16 at a time. The first HEAD that fails (other
    /// than "not found") fails the whole question: an answer with a hole in it could let an
    /// upload be taken for new when it is not.
    pub async fn existing_keys(
        &self,
        bucket: &str,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<HashSet<String>> {
        let heads = futures::stream::iter(keys)
            .map(|key| async move {
                let found = self.head(bucket, &key).await?;
                Ok::<_, crate::Error>(found.map(|_| key))
            })
            .buffer_unordered(HEADS_IN_FLIGHT);
        let mut heads = std::pin::pin!(heads);
        let mut existing = HashSet::new();
        while let Some(found) = heads.next().await {
            existing.extend(found?);
        }
        Ok(existing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys_keep_folder_and_extension() {
        assert_eq!(numbered_key("a/b/photo.jpg", 1), "a/b/photo (1).jpg");
        assert_eq!(numbered_key("README", 2), "README (2)");
        assert_eq!(numbered_key(".hidden", 1), ".hidden (1)");
        assert_eq!(numbered_key("x.tar.gz", 1), "x.tar (1).gz");
    }
}
