//! Deleting many objects: DeleteObjects in batches of up to 1000 keys (S3's limit), a few
//! batches at a time, with the outcome of every key. Where a server does not implement
//! DeleteObjects, each key of the batch goes in its own DeleteObject, a few at a time.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::operation::RequestId as _;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::StreamExt as _;

use super::errors::from_answer;
use super::{S3Client, sdk_error};
use crate::error::{Error, Result, S3Answer};

/// S3 takes at most this many keys in one DeleteObjects request.
const BATCH: usize = 1000;
/// Batches in flight at once.
const BATCHES_IN_FLIGHT: usize = 2;
/// DeleteObject requests in flight at once, where there is no DeleteObjects.
const DELETES_IN_FLIGHT: usize = 8;

/// What [`S3Client::delete_many`] did with each key.
#[derive(Debug, Default)]
pub struct DeleteReport {
    /// The keys deleted (or already gone), in the order given.
    pub deleted: Vec<String>,
    /// The keys that could not be deleted, each with its error.
    pub failed: Vec<(String, Error)>,
}

impl S3Client {
    /// Deletes `keys` from `bucket` and says, key by key, what went and what did not. One
    /// failed key never stops the others: a request that fails as a whole fails each of its
    /// keys, and the other batches go on.
    pub async fn delete_many(&self, bucket: &str, keys: &[String]) -> DeleteReport {
        let failed = self.delete_all(bucket, keys).await;
        let failed_keys: std::collections::HashSet<&str> =
            failed.iter().map(|(k, _)| k.as_str()).collect();
        let deleted = keys
            .iter()
            .filter(|k| !failed_keys.contains(k.as_str()))
            .cloned()
            .collect();
        DeleteReport { deleted, failed }
    }

    /// The keys of `keys` that could not be deleted, with their errors.
    async fn delete_all(&self, bucket: &str, keys: &[String]) -> Vec<(String, Error)> {
        let client = match self.try_for_bucket(bucket).await {
            Ok(c) => c,
            Err(e) => {
                return keys
                    .iter()
                    .map(|k| (k.clone(), for_key(&e, bucket, k)))
                    .collect();
            }
        };
        let client = &client;
        // XML 1.0 cannot carry most control characters, even escaped: a DeleteObjects naming
        // such a key is refused whole (MalformedXML). Those keys go one by one.
        let (batched, alone): (Vec<String>, Vec<String>) =
            keys.iter().cloned().partition(|k| xml_can_carry(k));
        let mut failed = self.delete_each(bucket, &alone).await;
        // Owned batches and keys below: a future that borrows its closure's argument is not
        // known to be `Send`, and the app runs this on a spawned task.
        let batches: Vec<(String, Error)> =
            futures::stream::iter(batched.chunks(BATCH).map(<[String]>::to_vec))
                .map(|batch| async move {
                    match self.delete_batch(client, bucket, &batch).await {
                        Ok(failed) => failed,
                        Err(e) => batch
                            .iter()
                            .map(|k| (k.clone(), for_key(&e, bucket, k)))
                            .collect(),
                    }
                })
                .buffer_unordered(BATCHES_IN_FLIGHT)
                .flat_map(futures::stream::iter)
                .collect()
                .await;
        failed.extend(batches);
        failed
    }

    /// Each of `keys` in its own DeleteObject, a few at a time; returns those that failed.
    async fn delete_each(&self, bucket: &str, keys: &[String]) -> Vec<(String, Error)> {
        futures::stream::iter(keys.to_vec())
            .map(|key| async move {
                let result = self.delete(bucket, &key).await;
                result.err().map(|e| (key, e))
            })
            .buffer_unordered(DELETES_IN_FLIGHT)
            .filter_map(std::future::ready)
            .collect()
            .await
    }

    async fn delete_batch(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<(String, Error)>> {
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Bug(e.to_string()))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            // Quiet: the answer lists only the keys that failed.
            .quiet(true)
            .build()
            .map_err(|e| Error::Bug(e.to_string()))?;
        let out = client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if not_implemented(&e) => {
                tracing::debug!(bucket, "no DeleteObjects here; deleting key by key");
                return Ok(self.delete_each(bucket, keys).await);
            }
            Err(e) => {
                return Err(sdk_error(
                    "DeleteObjects",
                    bucket,
                    &self.endpoint_label(),
                    e,
                ));
            }
        };
        // One key's failure has no status of its own; the request id is the whole answer's.
        let request_id = out.request_id().map(str::to_owned);
        Ok(out
            .errors()
            .iter()
            .map(|e| {
                let key = e.key().unwrap_or_default().to_owned();
                let answer = S3Answer {
                    status: None,
                    code: Some(e.code().unwrap_or("error").to_owned()),
                    message: e.message().map(str::to_owned),
                    request_id: request_id.clone(),
                    host_id: None,
                };
                let error = from_answer("DeleteObjects", &format!("s3://{bucket}/{key}"), answer);
                (key, error)
            })
            .collect())
    }
}

/// Whether a key can be named in an XML request: XML 1.0 allows no C0 control character but
/// tab, line feed and carriage return (which the SDK escapes), nor U+FFFE and U+FFFF.
fn xml_can_carry(key: &str) -> bool {
    !key.chars().any(|c| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{7f}'..='\u{9f}'))
            || matches!(c, '\u{fffe}' | '\u{ffff}')
    })
}

/// Whether a server answered that it has no such operation (some S3-compatible servers lack
/// DeleteObjects), as opposed to refusing this request.
fn not_implemented(
    e: &aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::delete_objects::DeleteObjectsError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> bool {
    let code = e.as_service_error().and_then(|s| s.code());
    let status = e.raw_response().map(|r| r.status().as_u16());
    matches!(code, Some("NotImplemented" | "MethodNotAllowed")) || status == Some(501)
}

/// The error of a whole failed request, as the error of one of its keys (keeping its kind, so
/// "access denied" and "no such bucket" stay named as such).
fn for_key(e: &Error, bucket: &str, key: &str) -> Error {
    let target = format!("s3://{bucket}/{key}");
    match e {
        Error::AccessDenied { answer, .. } => Error::AccessDenied {
            target,
            answer: answer.clone(),
        },
        Error::NoSuchBucket(b) => Error::NoSuchBucket(b.clone()),
        Error::Credentials {
            problem,
            answer: Some(answer),
            ..
        } => Error::from_credentials_answer(&target, (**answer).clone()).unwrap_or_else(|| {
            Error::Credentials {
                problem: *problem,
                detail: answer.describe(false),
                answer: Some(answer.clone()),
            }
        }),
        Error::Credentials {
            problem, detail, ..
        } => Error::Credentials {
            problem: *problem,
            detail: detail.clone(),
            answer: None,
        },
        Error::Unreachable { endpoint, message } => Error::Unreachable {
            endpoint: endpoint.clone(),
            message: message.clone(),
        },
        Error::Service { answer, .. } => Error::Service {
            operation: format!("DeleteObjects of {target}"),
            answer: answer.clone(),
        },
        other => Error::S3 {
            operation: format!("DeleteObjects of {target}"),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_control_characters_are_not_put_in_xml() {
        assert!(xml_can_carry("plain/key.txt"));
        assert!(xml_can_carry("tab\tline\ncr\r<&>é日本"));
        assert!(!xml_can_carry("x\u{1b}[31m.txt"));
        assert!(!xml_can_carry("nul\u{0}"));
        assert!(xml_can_carry("del\u{7f}\u{85}"));
        assert!(!xml_can_carry("\u{ffff}"));
    }
}
