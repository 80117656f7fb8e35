//! S3 access: one [`S3Client`] per connection, built from the standard AWS configuration chain
//! or pointed at any S3-compatible endpoint, the embedded store included.
//!
//! It resolves each bucket's region before use (a link signed for the wrong region fails, and
//! S3's redirect to the right one breaks the signature), so a bucket in another region than
//! configured just works.

mod connect;
mod delete;
mod errors;
mod keys;
mod listing;
mod multipart;
mod presign;
mod profiles;
pub(crate) mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use parking_lot::Mutex;

pub use connect::{ConnectOptions, Connection, static_client, static_client_with_timeouts};
pub use delete::DeleteReport;
pub(crate) use errors::{from_answer, sdk_error};
pub use keys::numbered_key;
pub(crate) use listing::Names;
pub use listing::{ListPage, ObjectEntry, RESERVED_PREFIX, is_reserved};
pub use multipart::StoredPart;
pub(crate) use presign::check_lifetime;
pub use presign::{MAX_LIFETIME, PresignOp, Presigned};
pub use profiles::{
    AwsFiles, ProfileDestination, aws_profiles, endpoint_host, first_run_profile,
    profile_destination,
};

use crate::error::{Error, Result};

/// Metadata of one object, as HEAD returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// Last modified time.
    pub modified: Option<SystemTime>,
    /// ETag, without quotes.
    pub etag: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
}

/// How long s3share waits on a server before it calls it unresponsive. A server that keeps a
/// connection open and sends nothing must fail the transfer in bounded time, never hang it.
///
/// With the defaults, a server that goes silent fails a request in about 30 s when it is the
/// first contact with a bucket (the region lookup tries once), within 2 min for other SDK
/// requests (three attempts of 30 s, at most `request` in all), and in about 1 min for a
/// presigned upload (a stall is retried once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to open a connection.
    pub connect: Duration,
    /// Longest wait for the next byte of an answer (or for the server to take more of a body)
    /// once a request is under way: the no-progress timeout. On Linux it is also upload
    /// connections' `TCP_USER_TIMEOUT`: the longest their sent bytes may go unacknowledged.
    pub idle: Duration,
    /// Deadline for a whole request without a streamed body (listings, HEAD, deletes,
    /// CompleteMultipartUpload); streamed bodies are bounded by `idle` instead.
    pub request: Duration,
}

impl Timeouts {
    /// The SDK's form: connect and read (time to the answer's head) per attempt, and `request`
    /// for the whole operation, retries included. Streamed bodies (GetObject) are not covered
    /// by these; their reader bounds each wait by `idle`.
    pub(crate) fn sdk(&self) -> aws_smithy_types::timeout::TimeoutConfig {
        aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.idle)
            .operation_attempt_timeout(self.request)
            .operation_timeout(self.request)
            .build()
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            request: Duration::from_secs(120),
        }
    }
}

/// A connection to one S3 endpoint with one set of credentials. Cheap to clone.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

struct Inner {
    sdk: Client,
    /// Custom endpoint (`None` for AWS itself, whose endpoints depend on the region).
    endpoint: Option<String>,
    /// Clients re-targeted at the regions of buckets outside the configured region.
    regional: Mutex<HashMap<String, Client>>,
    /// Sends presigned GETs: waits at most `idle` for each read.
    // Only the desktop app sends through it so far.
    #[cfg_attr(not(feature = "gui"), allow(dead_code))]
    http: reqwest::Client,
    /// Sends presigned uploads. reqwest's read timeout runs from the start of a request, so it
    /// would cut off any upload whose body takes longer than `idle` to send; uploads watch
    /// their own progress instead (see `transfer::http::send`).
    upload_http: reqwest::Client,
    timeouts: Timeouts,
    /// Cached credentials (shared with `sdk`) and the per-bucket signing targets.
    presigner: presign::Presigner,
    /// Whether this server checks `x-amz-checksum-crc32c` on uploads (see
    /// `transfer::upload`): learnt from its first answer, kept for the client's life.
    pub(crate) upload_checks: std::sync::atomic::AtomicU8,
    /// The memory upload bodies held whole may take at once (`transfer::http::HeldBody`),
    /// shared by all of this client's uploads.
    body_memory: Arc<crate::transfer::BodyMemory>,
    /// The threads that receive download bodies, started by the downloads that need them.
    receivers: crate::transfer::Receivers,
    extra_connections: crate::transfer::ranges::ExtraConnections,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// Wraps an SDK client; `endpoint` is the custom endpoint it was built with, if any, and
    /// `credentials` the provider it signs with. The provider is put behind a cache that the
    /// SDK client and the presigner share, so it is asked once per credentials' lifetime.
    pub fn new(
        sdk: Client,
        endpoint: Option<String>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Self> {
        Self::with_timeouts(sdk, endpoint, credentials, Timeouts::default())
    }

    /// [`S3Client::new`] with other [`Timeouts`] than the defaults; they replace whatever
    /// timeouts `sdk` was built with, so that every request of this client has them.
    pub fn with_timeouts(
        sdk: Client,
        endpoint: Option<String>,
        credentials: Option<SharedCredentialsProvider>,
        timeouts: Timeouts,
    ) -> Result<Self> {
        let setup = |e: reqwest::Error| Error::Config(format!("cannot set up HTTP client: {e}"));
        let loopback = endpoint.as_deref().is_some_and(is_loopback);
        let http = tls::client_builder(loopback)?
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            .build()
            .map_err(setup)?;
        let upload_http = tls::client_builder(loopback)?.connect_timeout(timeouts.connect);
        // The kernel judges a body waiting for room in its socket (`transfer::http::Activity`).
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        let upload_http = upload_http.tcp_user_timeout(timeouts.idle);
        let upload_http = upload_http.build().map_err(setup)?;
        let cache = credentials.map(presign::CredentialCache::new);
        let mut config = sdk.config().to_builder().timeout_config(timeouts.sdk());
        if let Some(cache) = &cache {
            // The cache above is the one cache: requests and links sign with the same
            // credentials, and the expiry shown is theirs.
            config = config
                .credentials_provider(cache.provider())
                .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache());
        }
        let sdk = Client::from_conf(config.build());
        Ok(Self {
            inner: Arc::new(Inner {
                sdk,
                endpoint,
                regional: Mutex::new(HashMap::new()),
                http,
                upload_http,
                timeouts,
                presigner: presign::Presigner::new(cache),
                upload_checks: std::sync::atomic::AtomicU8::new(0),
                body_memory: crate::transfer::BodyMemory::new(),
                receivers: crate::transfer::Receivers::new(timeouts.connect, loopback),
                extra_connections: crate::transfer::ranges::ExtraConnections::new(
                    crate::transfer::ranges::SHARED_EXTRA,
                ),
            }),
        })
    }

    /// The timeouts this client works with.
    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// Whether the server runs on this machine (a loopback endpoint: the embedded store, a
    /// local MinIO): then the client and the server share its CPU, and no round trip of a
    /// network is in the way.
    pub fn is_on_this_machine(&self) -> bool {
        self.inner.endpoint.as_deref().is_some_and(is_loopback)
    }

    /// The configured endpoint, or `"AWS S3"`.
    pub fn endpoint_label(&self) -> String {
        self.inner
            .endpoint
            .clone()
            .unwrap_or_else(|| "AWS S3".to_owned())
    }

    /// The HTTP client that sends presigned GETs.
    #[cfg_attr(not(feature = "gui"), allow(dead_code))]
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// What this server is known to check on uploads (a `transfer::upload` value).
    pub(crate) fn upload_checks(&self) -> &std::sync::atomic::AtomicU8 {
        &self.inner.upload_checks
    }

    /// The memory budget of upload bodies held whole (see `transfer::http::HeldBody`).
    pub(crate) fn body_memory(&self) -> &Arc<crate::transfer::BodyMemory> {
        &self.inner.body_memory
    }

    /// The threads that receive download bodies (see `transfer::receive`).
    pub(crate) fn receivers(&self) -> &crate::transfer::Receivers {
        &self.inner.receivers
    }

    /// The connections its downloads share beyond one each (see `transfer::ranges`).
    pub(crate) fn extra_connections(&self) -> &crate::transfer::ranges::ExtraConnections {
        &self.inner.extra_connections
    }

    /// The HTTP client that sends presigned uploads (no read timeout: see `upload_http`).
    pub(crate) fn upload_http(&self) -> &reqwest::Client {
        &self.inner.upload_http
    }

    /// The SDK client to use for `bucket`: the configured one, or one re-targeted at the
    /// bucket's own region when the server says it lives in another one.
    pub(crate) async fn for_bucket(&self, bucket: &str) -> Client {
        match self.try_for_bucket(bucket).await {
            Ok(c) => c,
            // The operation that follows meets the same problem and reports it.
            Err(_) => self.inner.sdk.clone(),
        }
    }

    /// [`S3Client::for_bucket`], failing at once when the server did not answer in time
    /// (rather than waiting for that a second time in the operation itself).
    pub(crate) async fn try_for_bucket(&self, bucket: &str) -> Result<Client> {
        if let Some(c) = self.inner.regional.lock().get(bucket) {
            return Ok(c.clone());
        }
        let configured = self.inner.sdk.config().region().map(ToString::to_string);
        let client = match self.bucket_region(bucket).await? {
            Some(r) if Some(&r) != configured.as_ref() => {
                tracing::debug!(bucket, region = %r, "bucket lives in another region");
                let region = aws_sdk_s3::config::Region::new(r);
                let conf = self.inner.sdk.config().to_builder().region(region).build();
                Client::from_conf(conf)
            }
            _ => self.inner.sdk.clone(),
        };
        self.inner
            .regional
            .lock()
            .insert(bucket.to_owned(), client.clone());
        Ok(client)
    }

    /// Asks the server where `bucket` lives; S3 names the region in a header even when it
    /// refuses or redirects the request. `None` when it does not say: then the configured
    /// region is used, and the operation itself reports what is wrong (a HEAD on the bucket
    /// may be denied where the objects are not). An error only when the server did not answer
    /// in time: the operation would only wait for it again.
    async fn bucket_region(&self, bucket: &str) -> Result<Option<String>> {
        use aws_sdk_s3::error::SdkError;
        // One attempt: the lookup is a courtesy, and a silent server must cost one timeout
        // here, not three.
        let once = aws_sdk_s3::config::Builder::default()
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled());
        let answer = self
            .inner
            .sdk
            .head_bucket()
            .bucket(bucket)
            .customize()
            .config_override(once)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out.bucket_region().map(str::to_owned)),
            Err(e)
                if matches!(&e, SdkError::TimeoutError(_))
                    || matches!(&e, SdkError::DispatchFailure(d) if d.is_timeout()) =>
            {
                Err(sdk_error("HeadBucket", bucket, &self.endpoint_label(), e))
            }
            Err(e) => {
                let header = e
                    .raw_response()
                    .and_then(|r| r.headers().get("x-amz-bucket-region"));
                if header.is_none() {
                    tracing::debug!(
                        bucket,
                        "no region from HeadBucket: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    );
                }
                Ok(header.map(str::to_owned))
            }
        }
    }

    /// The names of the buckets these credentials can list.
    pub async fn list_buckets(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut pages = self.inner.sdk.list_buckets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                sdk_error("ListBuckets", "the bucket list", &self.endpoint_label(), e)
            })?;
            names.extend(
                page.buckets()
                    .iter()
                    .filter_map(|b| b.name().map(str::to_owned)),
            );
        }
        Ok(names)
    }

    /// HEAD of an object: `None` when it does not exist.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        let client = self.try_for_bucket(bucket).await?;
        match client.head_object().bucket(bucket).key(key).send().await {
            Ok(o) => Ok(Some(ObjectInfo {
                size: o.content_length().unwrap_or(0).max(0) as u64,
                modified: o
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok()),
                etag: o.e_tag().map(|t| t.trim_matches('"').to_owned()),
                content_type: o.content_type().map(str::to_owned),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(HeadObjectError::is_not_found) =>
            {
                Ok(None)
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(sdk_error(
                "HeadObject",
                &format!("s3://{bucket}/{key}"),
                &self.endpoint_label(),
                e,
            )),
        }
    }

    /// The first `max_bytes` of an object (for previews), with one ranged GET.
    pub async fn read_start(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let client = self.try_for_bucket(bucket).await?;
        let target = format!("s3://{bucket}/{key}");
        let mut req = client.get_object().bucket(bucket).key(key);
        if max_bytes > 0 {
            req = req.range(format!("bytes=0-{}", max_bytes - 1));
        }
        let out = req
            .send()
            .await
            .map_err(|e| sdk_error("GetObject", &target, &self.endpoint_label(), e))?;
        let bytes = out.body.collect().await.map_err(|e| Error::S3 {
            operation: format!("read of {target}"),
            message: e.to_string(),
        })?;
        let mut bytes = bytes.to_vec();
        // Servers that ignore Range send the whole object: keep only what was asked for.
        bytes.truncate(max_bytes as usize);
        Ok(bytes)
    }

    /// Deletes an object (S3 reports success for keys that do not exist).
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let client = self.try_for_bucket(bucket).await?;
        client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    "DeleteObject",
                    &format!("s3://{bucket}/{key}"),
                    &self.endpoint_label(),
                    e,
                )
            })?;
        Ok(())
    }

    /// Creates an empty "folder": the zero-byte `prefix/` marker that S3 consoles use.
    pub async fn create_folder(&self, bucket: &str, prefix: &str) -> Result<String> {
        let key = if prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        let client = self.try_for_bucket(bucket).await?;
        client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_length(0)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    "PutObject",
                    &format!("s3://{bucket}/{key}"),
                    &self.endpoint_label(),
                    e,
                )
            })?;
        Ok(key)
    }

    /// Creates a bucket (used for the embedded store and tests).
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let mut req = self.inner.sdk.create_bucket().bucket(bucket);
        let region = self.inner.sdk.config().region().map(ToString::to_string);
        if let Some(r) = region.filter(|r| r != "us-east-1" && self.inner.endpoint.is_none()) {
            use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(r.as_str()))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(CreateBucketError::is_bucket_already_owned_by_you) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("CreateBucket", bucket, &self.endpoint_label(), e)),
        }
    }

    /// The multipart uploads still open under `prefix` (they cost storage until aborted).
    pub async fn list_open_uploads(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String)>> {
        let client = self.try_for_bucket(bucket).await?;
        let out = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| sdk_error("ListMultipartUploads", bucket, &self.endpoint_label(), e))?;
        Ok(out
            .uploads()
            .iter()
            .filter_map(|u| Some((u.key()?.to_owned(), u.upload_id()?.to_owned())))
            .collect())
    }

    /// When the credentials in use expire (`None` for long-term keys): the cached credentials
    /// that requests and links are signed with, not a fresh lookup that may differ.
    pub async fn credentials_expiry(&self) -> Result<Option<SystemTime>> {
        let Some(cache) = self.inner.presigner.credentials() else {
            return Ok(None);
        };
        Ok(cache.signing_credentials().await?.expiry())
    }
}

/// Whether `endpoint` (a URL) names this machine: `localhost` or a loopback address.
fn is_loopback(endpoint: &str) -> bool {
    let host_port = endpoint_host(endpoint);
    let host_port = host_port.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            // `::ffff:127.0.0.1` is IPv4's loopback written as IPv6.
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_endpoints_are_told_apart() {
        for local in [
            "http://127.0.0.1:9000",
            "http://localhost:8333/",
            "https://LOCALHOST",
            "http://[::1]:9000/x",
            "http://127.8.9.10",
            "http://minio.localhost:9000",
            "http://key@127.0.0.1:1",
            "http://[::ffff:127.0.0.1]:9000",
        ] {
            assert!(super::is_loopback(local), "{local}");
        }
        for remote in [
            "https://s3.eu-west-1.amazonaws.com",
            "http://10.0.0.5:9000",
            "http://[2001:db8::1]:9000",
            "https://localhost.example.com",
            "http://192.168.1.2",
            "http://[::ffff:10.0.0.5]:9000",
        ] {
            assert!(!super::is_loopback(remote), "{remote}");
        }
    }
}
