//! Questions about many keys at once, asked with HEADs a bounded number at a time: which of
//! them exist already.

use std::collections::HashSet;

use futures::StreamExt as _;

use super::S3Client;
use crate::error::Result;

/// HEAD requests in flight at once: enough to check a folder of files quickly, few enough not
/// to be throttled.
const HEADS_IN_FLIGHT: usize = 16;

impl S3Client {
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
