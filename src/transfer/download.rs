//! Downloads streamed to disk, confined to the folder the user chose.
//!
//! S3 keys are not file names: `../x`, `/etc/x` and `a/../../x` are all legal keys. Every key is
//! mapped to a path below the destination folder or refused; nothing is written elsewhere.
//! Bytes land in a temporary file beside the target, renamed into place only when complete.

use std::path::{Component, Path, PathBuf};

use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use super::{ByteCounter, EventSink, TransferEvent};
use crate::error::{Error, Result};
use crate::s3::{ObjectEntry, S3Client, sdk_error};

/// One object to download and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadItem {
    /// The key.
    pub key: String,
    /// The local file.
    pub path: PathBuf,
    /// Size as listed.
    pub size: u64,
}

/// The path below `dest` for `relative` (a key, or the part of it below the listed prefix).
/// Empty and `.` segments and leading slashes are dropped; `..` segments are refused.
pub fn confined_path(dest: &Path, relative: &str) -> Result<PathBuf> {
    let unsafe_key = || Error::UnsafeKey {
        key: relative.to_owned(),
        dest: dest.to_owned(),
    };
    let mut path = dest.to_owned();
    let mut depth = 0;
    for segment in relative.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(unsafe_key()),
            s if s.contains('\0') => return Err(unsafe_key()),
            s => {
                // One segment must be one normal path component, on every platform we build for.
                let mut components = Path::new(s).components();
                if !matches!(
                    (components.next(), components.next()),
                    (Some(Component::Normal(_)), None)
                ) {
                    return Err(unsafe_key());
                }
                path.push(s);
                depth += 1;
            }
        }
    }
    if depth == 0 {
        return Err(unsafe_key());
    }
    Ok(path)
}

/// Plans downloading `objects` (listed under `prefix`) into `dest`, keeping their structure.
/// Keys that would escape `dest` come back as errors; folder markers are skipped.
pub fn plan_download(
    objects: &[ObjectEntry],
    prefix: &str,
    dest: &Path,
) -> (Vec<DownloadItem>, Vec<Error>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for o in objects.iter().filter(|o| !o.key.ends_with('/')) {
        let relative = o.key.strip_prefix(prefix).unwrap_or(&o.key);
        match confined_path(dest, relative) {
            Ok(path) => items.push(DownloadItem {
                key: o.key.clone(),
                path,
                size: o.size,
            }),
            Err(e) => errors.push(e),
        }
    }
    (items, errors)
}

impl S3Client {
    /// Downloads several objects, four at a time; one failure never stops the others.
    pub async fn download_many(
        &self,
        bucket: &str,
        items: &[DownloadItem],
        overwrite: bool,
        events: EventSink,
        cancel: &CancellationToken,
    ) -> Vec<Result<u64>> {
        futures::stream::iter(items.iter().enumerate())
            .map(|(id, item)| {
                self.download_file(
                    bucket,
                    &item.key,
                    &item.path,
                    overwrite,
                    id,
                    events.clone(),
                    cancel,
                )
            })
            .buffered(4)
            .collect()
            .await
    }

    /// Downloads `key` to `path`; an existing file is kept unless `overwrite`.
    #[allow(clippy::too_many_arguments)]
    pub async fn download_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        overwrite: bool,
        id: usize,
        events: EventSink,
        cancel: &CancellationToken,
    ) -> Result<u64> {
        let result = tokio::select! {
            r = self.download_inner(bucket, key, path, overwrite, id, events.clone()) => r,
            () = cancel.cancelled() => Err(Error::Cancelled),
        };
        match &result {
            Ok(_) => events(TransferEvent::Finished { id }),
            Err(e) => events(TransferEvent::failed(id, e)),
        }
        if result.is_err() {
            let _ = std::fs::remove_file(partial_path(path));
        }
        result
    }

    async fn download_inner(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        overwrite: bool,
        id: usize,
        events: EventSink,
    ) -> Result<u64> {
        if !overwrite && path.exists() {
            return Err(Error::Local {
                what: "will not overwrite",
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the file exists; pass --overwrite to replace it",
                ),
            });
        }
        let client = self.for_bucket(bucket).await;
        let target = format!("s3://{bucket}/{key}");
        let out = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    Error::NoSuchKey {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    }
                } else {
                    sdk_error("GetObject", &target, &self.endpoint_label(), e)
                }
            })?;
        let total = out.content_length().unwrap_or(0).max(0) as u64;
        events(TransferEvent::Started { id, total });
        let counter = ByteCounter::new(id, events);

        let local = |what| {
            let path = path.to_owned();
            move |source| Error::Local { what, path, source }
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(local("cannot create the folder of"))?;
        }
        let tmp = partial_path(path);
        let mut file = tokio::io::BufWriter::with_capacity(
            256 * 1024,
            tokio::fs::File::create(&tmp)
                .await
                .map_err(local("cannot write"))?,
        );
        let mut body = out.body;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::S3 {
                operation: format!("download of {target}"),
                message: e.to_string(),
            })?;
            file.write_all(&chunk)
                .await
                .map_err(local("cannot write"))?;
            written += chunk.len() as u64;
            counter.add(chunk.len() as u64);
        }
        file.flush().await.map_err(local("cannot write"))?;
        drop(file);
        if written != total {
            return Err(Error::S3 {
                operation: format!("download of {target}"),
                message: format!("connection closed after {written} of {total} bytes"),
            });
        }
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(local("cannot write"))?;
        Ok(written)
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".s3share-partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_destination() {
        let dest = Path::new("/tmp/dl");
        assert_eq!(
            confined_path(dest, "a/b c.txt").unwrap(),
            dest.join("a/b c.txt")
        );
        assert_eq!(
            confined_path(dest, "/etc/passwd").unwrap(),
            dest.join("etc/passwd")
        );
        assert_eq!(confined_path(dest, "./a//b").unwrap(), dest.join("a/b"));
        for bad in ["../x", "a/../../x", "a/..", "..", "", "/", "a/\0b"] {
            let err = confined_path(dest, bad).unwrap_err();
            assert!(matches!(err, Error::UnsafeKey { .. }), "{bad:?} gave {err}");
        }
    }

    #[test]
    fn plans_skip_markers_and_refuse_escapes() {
        let o = |key: &str| ObjectEntry {
            key: key.into(),
            size: 1,
            modified: None,
            etag: None,
        };
        let (items, errors) = plan_download(
            &[o("p/"), o("p/a"), o("p/d/b"), o("p/../x")],
            "p/",
            Path::new("/d"),
        );
        assert_eq!(
            items.iter().map(|i| i.path.clone()).collect::<Vec<_>>(),
            [PathBuf::from("/d/a"), PathBuf::from("/d/d/b")]
        );
        assert_eq!(errors.len(), 1);
    }
}
