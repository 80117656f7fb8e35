//! Deleting many objects: DeleteObjects in batches of up to 1000 keys (S3's limit), a few
//! batches at a time, with the outcome of every key.

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

impl S3Client {
    /// Deletes `keys` from `bucket` and returns the keys that could not be deleted, each with
    /// its error (empty when all went). A request that fails as a whole fails each of its keys;
    /// the other batches go on.
    pub async fn delete_many(&self, bucket: &str, keys: &[String]) -> Vec<(String, Error)> {
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
        futures::stream::iter(keys.chunks(BATCH))
            .map(|batch| async move {
                match self.delete_batch(client, bucket, batch).await {
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
            .await
            .map_err(|e| sdk_error("DeleteObjects", bucket, &self.endpoint_label(), e))?;
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
