//! Multipart bookkeeping for resumed uploads: the parts a server already holds for an upload,
//! and aborting an upload found unfinished.

use super::{S3Client, sdk_error};
use crate::error::Result;

/// One part the server holds for an unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 1..=10000.
    pub number: i32,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag as the server lists it, quotes kept (as CompleteMultipartUpload wants it);
    /// `None` when the server lists none, and then the part cannot be checked.
    pub etag: Option<String>,
}

/// Whether an SDK error says the upload does not exist (aborted, completed or expired).
fn no_such_upload<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> bool {
    matches!(e.code(), Some("NoSuchUpload"))
}

impl S3Client {
    /// The parts the server holds for `upload_id` (every page of ListParts), or `None` when the
    /// upload is no longer open (it was completed, aborted or expired).
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<StoredPart>>> {
        let client = self.try_for_bucket(bucket).await?;
        let target = format!("s3://{bucket}/{key}");
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(no_such_upload) => return Ok(None),
                Err(e) => return Err(sdk_error("ListParts", &target, &self.endpoint_label(), e)),
            };
            for p in out.parts() {
                let (Some(number), Some(size)) = (p.part_number(), p.size()) else {
                    continue;
                };
                parts.push(StoredPart {
                    number,
                    size: size.max(0) as u64,
                    etag: p
                        .e_tag()
                        .filter(|t| !t.trim_matches('"').is_empty())
                        .map(str::to_owned),
                });
            }
            let next = out.next_part_number_marker().map(str::to_owned);
            // A server that says "truncated" without a new marker would loop forever.
            if out.is_truncated() != Some(true) || next.is_none() || next == marker {
                break;
            }
            marker = next;
        }
        Ok(Some(parts))
    }

    /// Whether `upload_id` is an open multipart upload of `key`: some servers answer ListParts
    /// for an unknown upload with an empty list rather than `NoSuchUpload`.
    pub async fn upload_is_open(&self, bucket: &str, key: &str, upload_id: &str) -> Result<bool> {
        let client = self.try_for_bucket(bucket).await?;
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let out = client
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| {
                    sdk_error("ListMultipartUploads", bucket, &self.endpoint_label(), e)
                })?;
            if out
                .uploads()
                .iter()
                .any(|u| u.key() == Some(key) && u.upload_id() == Some(upload_id))
            {
                return Ok(true);
            }
            let next = (
                out.next_key_marker().map(str::to_owned),
                out.next_upload_id_marker().map(str::to_owned),
            );
            if out.is_truncated() != Some(true)
                || next.0.is_none()
                || (next.0 == key_marker && next.1 == id_marker)
            {
                return Ok(false);
            }
            (key_marker, id_marker) = next;
        }
    }

    /// Aborts the multipart upload `upload_id` of `key`; an upload that is already gone counts
    /// as aborted.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let client = self.try_for_bucket(bucket).await?;
        match client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(no_such_upload) => Ok(()),
            Err(e) => Err(sdk_error(
                "AbortMultipartUpload",
                &format!("s3://{bucket}/{key}"),
                &self.endpoint_label(),
                e,
            )),
        }
    }
}
