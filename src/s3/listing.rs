//! Listing a prefix as a stream of pages, so the first entries of a 100,000-key folder show
//! while the rest are still on their way.

use std::time::SystemTime;

use aws_sdk_s3::types::EncodingType;
use futures::Stream;

use super::{S3Client, sdk_error};
use crate::error::Result;

/// The prefix s3share keeps its own records under in a bucket (the relay's link ledger and
/// revocation list). Listings leave it out, so `ls`, the app's browser and recursive `get`/`rm`
/// of a bucket never show or touch it; a listing of a prefix inside it (named explicitly, e.g.
/// `ls s3://bucket/.s3share/`) shows it as any other folder.
pub const RESERVED_PREFIX: &str = ".s3share/";

/// Whether `key` (or a folder prefix) lies in s3share's reserved prefix.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEntry {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modified time.
    pub modified: Option<SystemTime>,
    /// ETag without quotes.
    pub etag: Option<String>,
}

/// One page of a listing: sub-folders (full prefixes ending with `/`) and objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// Common prefixes ("folders"); empty for recursive listings.
    pub folders: Vec<String>,
    /// Objects; the folder's own `prefix/` marker is left out.
    pub objects: Vec<ObjectEntry>,
}

impl S3Client {
    /// Lists `prefix` in `bucket` page by page: one level (folders and files) or, with
    /// `recursive`, every key below it. Keys under [`RESERVED_PREFIX`] are left out unless
    /// `prefix` itself lies inside it.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        recursive: bool,
    ) -> impl Stream<Item = Result<ListPage>> + Send + 'static {
        self.list_for(
            bucket,
            prefix,
            recursive,
            &format!("s3://{bucket}/{prefix}"),
        )
    }

    /// [`list`](Self::list), done to find out about `target` (the `s3://` path a user named):
    /// its errors name `target`, not the prefix listed. `ls s3://b/report.pdf` lists
    /// `report.pdf/` first, and a refusal naming that folder would name a path nobody typed.
    pub fn list_for(
        &self,
        bucket: &str,
        prefix: &str,
        recursive: bool,
        target: &str,
    ) -> impl Stream<Item = Result<ListPage>> + Send + 'static + use<> {
        let this = self.clone();
        let bucket = bucket.to_owned();
        let prefix = prefix.to_owned();
        let target = target.to_owned();
        async_stream(move |tx| async move {
            let client = match this.try_for_bucket(&bucket).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut req = client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .encoding_type(EncodingType::Url);
            if !recursive {
                req = req.delimiter("/");
            }
            let mut pages = req.into_paginator().send();
            // Only a listing that names the reserved prefix sees it: the bucket root (and a
            // prefix like `.s3` that merely could reach into it) hides it.
            let hide_reserved = !is_reserved(&prefix);
            while let Some(page) = pages.next().await {
                let page = page
                    .map(|out| {
                        let name = Names::of(&out);
                        ListPage {
                            folders: out
                                .common_prefixes()
                                .iter()
                                .filter_map(|p| p.prefix().map(|p| name.decoded(p)))
                                .filter(|p| !(hide_reserved && is_reserved(p)))
                                .collect(),
                            objects: out
                                .contents()
                                .iter()
                                .filter_map(|o| {
                                    let key = name.decoded(o.key()?);
                                    if hide_reserved && is_reserved(&key) {
                                        return None;
                                    }
                                    (key != prefix || !key.ends_with('/')).then(|| ObjectEntry {
                                        key,
                                        size: o.size().unwrap_or(0).max(0) as u64,
                                        modified: o
                                            .last_modified()
                                            .and_then(|t| SystemTime::try_from(*t).ok()),
                                        etag: o.e_tag().map(|t| t.trim_matches('"').to_owned()),
                                    })
                                })
                                .collect(),
                        }
                    })
                    .map_err(|e| sdk_error("ListObjectsV2", &target, &this.endpoint_label(), e));
                let failed = page.is_err();
                if tx.send(page).await.is_err() || failed {
                    return;
                }
            }
        })
    }

    /// Collects a whole listing (for callers that need everything, e.g. recursive downloads).
    pub async fn list_all(&self, bucket: &str, prefix: &str, recursive: bool) -> Result<ListPage> {
        use futures::StreamExt as _;
        let mut all = ListPage::default();
        let mut pages = std::pin::pin!(self.list(bucket, prefix, recursive));
        while let Some(page) = pages.next().await {
            let page = page?;
            all.folders.extend(page.folders);
            all.objects.extend(page.objects);
        }
        Ok(all)
    }
}

/// How a listing's answer gives its names. Listings ask for `encoding-type=url`: XML cannot
/// carry a key with control characters (an escape sequence, a carriage return), and a listing
/// holding one failed as a whole, or named it wrongly (and a delete of that wrong name
/// "succeeded"). A server that ignores the request gives names as they are, and says so by
/// leaving `EncodingType` out of its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    url_encoded: bool,
}

impl Names {
    /// How `out` gives its names.
    pub(crate) fn of(out: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> Self {
        Self {
            url_encoded: out.encoding_type() == Some(&EncodingType::Url),
        }
    }

    /// A key or prefix of the answer, as it is named in the bucket. URL encoding as S3 does
    /// it: `+` for a space, `%2B` for a plus. A name that does not decode to UTF-8 is kept as
    /// sent rather than guessed at.
    pub(crate) fn decoded(self, name: &str) -> String {
        if !self.url_encoded {
            return name.to_owned();
        }
        let spaced = name.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map_or_else(|_| name.to_owned(), std::borrow::Cow::into_owned)
    }
}

/// A stream fed by a spawned task through a small bounded channel: the producer runs one page
/// ahead of the consumer, no more.
fn async_stream<T, F, Fut>(produce: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(produce(tx));
    let abort_on_drop = AbortOnDrop(task);
    futures::stream::unfold((rx, abort_on_drop), |(mut rx, guard)| async move {
        let item = rx.recv().await?;
        Some((item, (rx, guard)))
    })
}

/// Stops the producer when the consumer drops the stream (e.g. the user left the folder).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_names_decode_as_s3_encodes_them() {
        let encoded = Names { url_encoded: true };
        assert_eq!(encoded.decoded("enc/a+b%2Bc%25d.txt"), "enc/a b+c%d.txt");
        assert_eq!(encoded.decoded("e%1B%5B1m%0D.txt"), "e\u{1b}[1m\r.txt");
        assert_eq!(encoded.decoded("%C3%A9t%C3%A9/"), "été/");
        assert_eq!(encoded.decoded("bad%FF.txt"), "bad%FF.txt");
        let plain = Names { url_encoded: false };
        assert_eq!(plain.decoded("a+b%2B.txt"), "a+b%2B.txt");
    }
}
