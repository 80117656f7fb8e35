//! One presigner for links, uploads and the relay.
//!
//! The SDK's `.presigned()` runs a whole operation (endpoint rules, interceptors, identity
//! resolution) for every URL, and signs with credentials whose expiry it does not tell. Here the
//! bucket's base URL and signing region are worked out once per bucket, by the SDK itself so that
//! endpoint rules, path style and the bucket's own region agree with every other request; each
//! signature after that is plain SigV4 with the credentials of a [`CredentialCache`], and the
//! expiry reported is the expiry of those very credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_smithy_types::error::display::DisplayErrorContext;
use parking_lot::{Mutex, RwLock};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{S3Client, sdk_error};
use crate::error::{CredentialProblem, Error, Result};

/// Bytes that stay as they are in a SigV4 canonical query string (RFC 3986 unreserved).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// In a key, `/` separates path segments and stays as it is; everything else as in a query.
const PATH: &AsciiSet = &QUERY.remove(b'/');

/// Credentials are fetched again this long before they expire, so that a link signed just
/// before the end is not cut short by minutes.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// While a provider keeps handing out credentials that end within [`REFRESH_AHEAD`] (or keeps
/// failing while the cached ones still work), it is asked again at most this often.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The longest lifetime SigV4 allows for a presigned request.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a presigned request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresignOp {
    /// Download; with `filename`, browsers save it under that name (`Content-Disposition`).
    Get {
        /// The download name.
        filename: Option<String>,
        /// With `filename`: `inline` (browsers show what they can) instead of `attachment`.
        inline: bool,
    },
    /// Metadata only.
    Head,
    /// Create or replace the object with one request body.
    Put {
        /// Base64 MD5 of the body: the server refuses a body that does not match.
        content_md5: Option<String>,
        /// Refuse (412) when the key already exists.
        if_none_match: bool,
        /// The content type the uploader will send (and the object will keep).
        content_type: Option<String>,
        /// The exact body size: larger or smaller bodies are refused.
        content_length: Option<u64>,
    },
    /// Delete the object.
    Delete,
    /// One part of a multipart upload.
    UploadPart {
        /// The multipart upload.
        upload_id: String,
        /// 1..=10000.
        part_number: i32,
        /// Base64 MD5 of the part.
        content_md5: Option<String>,
        /// The part's exact size.
        content_length: u64,
    },
}

/// A signed request: what to send, and when it really stops working.
#[derive(Clone)]
pub struct Presigned {
    /// The method to send.
    pub method: http::Method,
    /// The URL: a secret (anyone holding it may do what it allows), never logged.
    pub url: String,
    /// Headers (lowercase names) the sender must send exactly as given: they are signed.
    pub headers: Vec<(String, String)>,
    /// min(now + lifetime, expiry of the credentials that signed).
    pub expires_at: SystemTime,
    /// Whether the credentials' own expiry cut the lifetime short.
    pub limited_by_credentials: bool,
}

impl std::fmt::Debug for Presigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigned")
            .field("method", &self.method)
            .field("url", &"** signed URL **")
            .field("headers", &self.headers)
            .field("expires_at", &self.expires_at)
            .field("limited_by_credentials", &self.limited_by_credentials)
            .finish()
    }
}

/// Checks a requested lifetime against what SigV4 allows.
pub(crate) fn check_lifetime(d: Duration) -> Result<()> {
    if d > MAX_LIFETIME {
        return Err(Error::ExpiryTooLong(crate::links::format_duration(d)));
    }
    if d < Duration::from_secs(1) {
        return Err(Error::ExpiryTooShort);
    }
    Ok(())
}

/// Credentials fetched from a provider once and kept until shortly before they expire. The SDK
/// client signs through it too, so every request and every link of one [`S3Client`] uses the
/// same credentials and the provider chain (a network round trip with SSO or assumed roles) runs
/// once per credentials' lifetime, not once per link.
#[derive(Debug)]
pub(crate) struct CredentialCache {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Cached>>,
    /// One refresh at a time: many signatures waiting on expiring credentials ask the
    /// provider once.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Cached {
    creds: Credentials,
    asked: Instant,
}

impl CredentialCache {
    pub(crate) fn new(provider: SharedCredentialsProvider) -> Arc<Self> {
        Arc::new(Self {
            provider,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// The cached credentials when they need no refresh.
    fn usable(&self, now: SystemTime) -> Option<Credentials> {
        let guard = self.current.read();
        let c = guard.as_ref()?;
        match c.creds.expiry() {
            None => Some(c.creds.clone()),
            Some(end) if end <= now => None,
            Some(end) if end.duration_since(now).unwrap_or_default() > REFRESH_AHEAD => {
                Some(c.creds.clone())
            }
            Some(_) if c.asked.elapsed() < RETRY_AFTER => Some(c.creds.clone()),
            Some(_) => None,
        }
    }

    /// Credentials to sign with: cached, or fetched from the provider when they end soon.
    /// They may have expired already when the provider hands out nothing better; callers
    /// check.
    pub(crate) async fn get(&self) -> std::result::Result<Credentials, CredentialsError> {
        if let Some(c) = self.usable(SystemTime::now()) {
            return Ok(c);
        }
        let _one = self.refresh.lock().await;
        if let Some(c) = self.usable(SystemTime::now()) {
            return Ok(c);
        }
        match self.provider.provide_credentials().await {
            Ok(creds) => {
                *self.current.write() = Some(Cached {
                    creds: creds.clone(),
                    asked: Instant::now(),
                });
                Ok(creds)
            }
            Err(e) => {
                // Credentials that still work beat an error; the refresh is tried again later.
                let mut guard = self.current.write();
                match guard.as_mut() {
                    Some(c) if c.creds.expiry().is_none_or(|end| end > SystemTime::now()) => {
                        tracing::warn!(
                            "cannot refresh the credentials, using the current ones until they expire: {}",
                            DisplayErrorContext(&e)
                        );
                        c.asked = Instant::now();
                        Ok(c.creds.clone())
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// [`CredentialCache::get`], failing when there are none or they have expired.
    pub(crate) async fn signing_credentials(&self) -> Result<Credentials> {
        let creds = self.get().await.map_err(|e| Error::Credentials {
            problem: super::errors::credentials_problem(&e),
            detail: DisplayErrorContext(&e).to_string(),
            answer: None,
        })?;
        if creds.expiry().is_some_and(|end| end <= SystemTime::now()) {
            return Err(Error::Credentials {
                problem: CredentialProblem::Expired,
                detail: "they expired before this request".to_owned(),
                answer: None,
            });
        }
        Ok(creds)
    }

    /// A provider for the SDK client that reads through this cache.
    pub(crate) fn provider(self: &Arc<Self>) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(CachedProvider(self.clone()))
    }
}

#[derive(Debug)]
struct CachedProvider(Arc<CredentialCache>);

impl ProvideCredentials for CachedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.get())
    }
}

/// Where a bucket's requests go and how they are signed, worked out once per bucket.
#[derive(Debug)]
struct BucketTarget {
    /// `scheme://host[:port][/endpoint path][/bucket]`, without a trailing slash.
    base: String,
    /// The `Host` the request will carry (the port left out where it is the scheme's default,
    /// as HTTP clients send it), signed.
    host: String,
    /// The path part of `base` (`/endpoint path/bucket`, or empty).
    base_path: String,
    region: String,
    service: String,
    /// The day's SigV4 signing key: four chained HMACs that depend only on the secret key,
    /// the date, the region and the service, so derived once a day, not once per signature.
    signing_key: Mutex<Option<SigningKey>>,
}

#[derive(Clone)]
struct SigningKey {
    /// `YYYYMMDD`.
    date: String,
    /// The access key whose secret derived it.
    access_key_id: String,
    /// Which secret derived it: a digest, so this cache keeps no second copy of the secret.
    secret_digest: [u8; 32],
    key: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("date", &self.date)
            .finish_non_exhaustive()
    }
}

impl BucketTarget {
    fn new(base: String, region: String, service: String) -> Option<Self> {
        let uri: http::Uri = base.parse().ok()?;
        let authority = uri.authority()?;
        let default_port = matches!(
            (uri.scheme_str()?, authority.port_u16()),
            ("http", Some(80)) | ("https", Some(443))
        );
        let host = if default_port {
            authority.host().to_owned()
        } else {
            authority.as_str().to_owned()
        };
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Some(Self {
            base,
            host,
            base_path,
            region,
            service,
            signing_key: Mutex::new(None),
        })
    }

    /// The signing key for `date` (`YYYYMMDD`) and `creds`, from the cache when it is there.
    fn signing_key(&self, creds: &Credentials, date: &str) -> [u8; 32] {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(creds.secret_access_key().as_bytes()).into();
        let mut cached = self.signing_key.lock();
        if let Some(k) = cached.as_ref()
            && k.date == date
            && k.access_key_id == creds.access_key_id()
            && k.secret_digest == digest
        {
            return k.key;
        }
        let secret = format!("AWS4{}", creds.secret_access_key());
        let k_date = hmac_sha256(secret.as_bytes(), &[date.as_bytes()]);
        let k_region = hmac_sha256(&k_date, &[self.region.as_bytes()]);
        let k_service = hmac_sha256(&k_region, &[self.service.as_bytes()]);
        let key = hmac_sha256(&k_service, &[b"aws4_request"]);
        *cached = Some(SigningKey {
            date: date.to_owned(),
            access_key_id: creds.access_key_id().to_owned(),
            secret_digest: digest,
            key,
        });
        key
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac as _;
    let mut m = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// `YYYYMMDD` and `YYYYMMDD'T'HHMMSS'Z'` of `t`, in UTC.
fn amz_dates(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (no time zone library needed).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}{month:02}{day:02}");
    let time = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (date, time)
}

/// What SigV4 does to a header value: spaces trimmed at both ends, runs of spaces made one.
fn trim_all(v: &str) -> std::borrow::Cow<'_, str> {
    let v = v.trim_matches(' ');
    if !v.contains("  ") {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut last_space = false;
    for c in v.chars() {
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// The presigner's state inside an [`S3Client`].
#[derive(Debug, Default)]
pub(crate) struct Presigner {
    credentials: Option<Arc<CredentialCache>>,
    buckets: RwLock<HashMap<String, Arc<BucketTarget>>>,
    /// One resolution per bucket at a time (it costs a request to find the bucket's region).
    resolving: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Presigner {
    pub(crate) fn new(credentials: Option<Arc<CredentialCache>>) -> Self {
        Self {
            credentials,
            ..Default::default()
        }
    }

    pub(crate) fn credentials(&self) -> Option<&Arc<CredentialCache>> {
        self.credentials.as_ref()
    }
}

/// The key used to learn a bucket's base URL from one SDK presigning.
const PROBE_KEY: &str = "s3share-presign-probe";

impl S3Client {
    /// Signs `op` on `bucket`/`key`, valid for `lifetime` (at most 7 days, the SigV4 limit).
    ///
    /// Costs a few microseconds once the bucket has been seen: no request, no credential lookup
    /// (credentials are cached and refreshed ahead of their expiry). The key is encoded exactly
    /// once; the URL keeps any path of a custom endpoint.
    pub async fn presign(
        &self,
        bucket: &str,
        key: &str,
        op: PresignOp,
        lifetime: Duration,
    ) -> Result<Presigned> {
        self.presign_with(bucket, key, op, lifetime, &[]).await
    }

    /// [`S3Client::presign`], with `extra` headers (lowercase names) signed as well: the sender
    /// must send them as given. Uploads sign their `x-amz-checksum-*` header this way.
    pub(crate) async fn presign_with(
        &self,
        bucket: &str,
        key: &str,
        op: PresignOp,
        lifetime: Duration,
        extra: &[(&str, &str)],
    ) -> Result<Presigned> {
        check_lifetime(lifetime)?;
        if key.is_empty() {
            return Err(Error::Bug(format!(
                "cannot sign a request for s3://{bucket}/ without a key"
            )));
        }
        let Some(cache) = self.inner.presigner.credentials() else {
            return Err(Error::Credentials {
                problem: CredentialProblem::Missing,
                detail: "this connection has no credentials to sign with".to_owned(),
                answer: None,
            });
        };
        let creds = cache.signing_credentials().await?;
        let target = self.bucket_target(bucket).await?;
        sign_request(
            &target,
            &creds,
            key,
            &op,
            extra,
            lifetime,
            SystemTime::now(),
        )
        .map_err(|message| Error::S3 {
            operation: format!("signing a request for s3://{bucket}/{key}"),
            message,
        })
    }

    async fn bucket_target(&self, bucket: &str) -> Result<Arc<BucketTarget>> {
        let presigner = &self.inner.presigner;
        if let Some(t) = presigner.buckets.read().get(bucket) {
            return Ok(t.clone());
        }
        let gate = presigner
            .resolving
            .lock()
            .entry(bucket.to_owned())
            .or_default()
            .clone();
        let _one = gate.lock().await;
        if let Some(t) = presigner.buckets.read().get(bucket) {
            return Ok(t.clone());
        }
        let target = Arc::new(self.resolve_target(bucket).await?);
        presigner
            .buckets
            .write()
            .insert(bucket.to_owned(), target.clone());
        presigner.resolving.lock().remove(bucket);
        Ok(target)
    }

    /// Lets the SDK presign one request for the bucket and keeps what does not depend on the
    /// key: the base URL and the credential scope (region and service).
    async fn resolve_target(&self, bucket: &str) -> Result<BucketTarget> {
        let client = self.for_bucket(bucket).await;
        let config = PresigningConfig::expires_in(Duration::from_secs(60))
            .map_err(|e| Error::Bug(format!("cannot presign: {e}")))?;
        let probe = client
            .get_object()
            .bucket(bucket)
            .key(PROBE_KEY)
            .presigned(config)
            .await
            .map_err(|e| {
                sdk_error(
                    "presign GetObject",
                    &format!("s3://{bucket}/"),
                    &self.endpoint_label(),
                    e,
                )
            })?;
        let target = target_from_probe(probe.uri()).ok_or_else(|| Error::S3 {
            operation: format!("working out the URL of bucket {bucket}"),
            message: "the SDK produced a URL of an unexpected shape".to_owned(),
        })?;
        tracing::debug!(bucket, region = %target.region, "presigning target resolved");
        Ok(target)
    }
}

/// The base URL and credential scope in a URL the SDK presigned for [`PROBE_KEY`].
fn target_from_probe(url: &str) -> Option<BucketTarget> {
    let uri: http::Uri = url.parse().ok()?;
    let base_path = uri.path().strip_suffix(PROBE_KEY)?.strip_suffix('/')?;
    let credential = uri
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-Credential="))?;
    let credential = percent_encoding::percent_decode_str(credential)
        .decode_utf8()
        .ok()?;
    // access key / date / region / service / aws4_request
    let mut scope = credential.rsplit('/');
    let (Some("aws4_request"), Some(service), Some(region)) =
        (scope.next(), scope.next(), scope.next())
    else {
        return None;
    };
    BucketTarget::new(
        format!("{}://{}{base_path}", uri.scheme_str()?, uri.authority()?),
        region.to_owned(),
        service.to_owned(),
    )
}

/// Signs one request: pure computation, no I/O.
fn sign_request(
    target: &BucketTarget,
    creds: &Credentials,
    key: &str,
    op: &PresignOp,
    extra: &[(&str, &str)],
    lifetime: Duration,
    now: SystemTime,
) -> std::result::Result<Presigned, String> {
    let mut url = String::with_capacity(target.base.len() + key.len() * 3 + 512);
    url.push_str(&target.base);
    url.push('/');
    url.extend(utf8_percent_encode(key, PATH));

    let mut query: Vec<(&str, String)> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    let method = match op {
        PresignOp::Get { filename, inline } => {
            if let Some(name) = filename {
                query.push((
                    "response-content-disposition",
                    if *inline {
                        crate::links::inline_content_disposition(name)
                    } else {
                        crate::links::content_disposition(name)
                    },
                ));
            }
            http::Method::GET
        }
        PresignOp::Head => http::Method::HEAD,
        PresignOp::Put {
            content_md5,
            if_none_match,
            content_type,
            content_length,
        } => {
            if let Some(len) = content_length {
                headers.push(("content-length".into(), len.to_string()));
            }
            if let Some(md5) = content_md5 {
                headers.push(("content-md5".into(), md5.clone()));
            }
            if let Some(ct) = content_type {
                headers.push(("content-type".into(), ct.clone()));
            }
            if *if_none_match {
                headers.push(("if-none-match".into(), "*".into()));
            }
            http::Method::PUT
        }
        PresignOp::Delete => http::Method::DELETE,
        PresignOp::UploadPart {
            upload_id,
            part_number,
            content_md5,
            content_length,
        } => {
            if !(1..=10_000).contains(part_number) {
                return Err(format!("part number {part_number} is outside 1..=10000"));
            }
            query.push(("partNumber", part_number.to_string()));
            query.push(("uploadId", upload_id.clone()));
            headers.push(("content-length".into(), content_length.to_string()));
            if let Some(md5) = content_md5 {
                headers.push(("content-md5".into(), md5.clone()));
            }
            http::Method::PUT
        }
    };
    headers.extend(extra.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
    for (_, value) in &headers {
        // What the sender will send must be a valid header value, or the signature is useless.
        http::HeaderValue::from_str(value)
            .map_err(|_| format!("{value:?} cannot be sent as an HTTP header value"))?;
    }
    let mut separator = '?';
    for (name, value) in &query {
        url.push(separator);
        separator = '&';
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, QUERY));
    }

    // SigV4 with the signature in the query (what the SDK's presigning does, checked against
    // it in the tests), written out here because the generic signer rebuilds a header map,
    // re-parses the URL and derives the signing key for every signature: most of the cost of
    // a relay redirect. The signing key comes from the bucket target's daily cache.
    let (date, date_time) = amz_dates(now);
    let credential = format!(
        "{}/{date}/{}/{}/aws4_request",
        creds.access_key_id(),
        target.region,
        target.service
    );
    let mut signed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    signed.push(("host", target.host.as_str()));
    signed.sort_unstable();
    let mut signed_names = String::with_capacity(64);
    for (i, (name, _)) in signed.iter().enumerate() {
        if i > 0 {
            signed_names.push(';');
        }
        signed_names.push_str(name);
    }
    let expires = lifetime.as_secs().to_string();
    let mut amz: Vec<(&str, &str)> = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", &date_time),
        ("X-Amz-Expires", &expires),
        ("X-Amz-SignedHeaders", &signed_names),
    ];
    if let Some(token) = creds.session_token() {
        amz.push(("X-Amz-Security-Token", token));
    }
    // The canonical query: every parameter encoded, sorted by encoded name, then value.
    let mut params: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(amz.iter().copied())
        .map(|(k, v)| {
            (
                utf8_percent_encode(k, QUERY).to_string(),
                utf8_percent_encode(v, QUERY).to_string(),
            )
        })
        .collect();
    params.sort_unstable();
    let mut creq = String::with_capacity(url.len() + 512);
    creq.push_str(method.as_str());
    creq.push('\n');
    creq.push_str(&target.base_path);
    creq.push('/');
    creq.extend(utf8_percent_encode(key, PATH));
    creq.push('\n');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            creq.push('&');
        }
        creq.push_str(k);
        creq.push('=');
        creq.push_str(v);
    }
    creq.push('\n');
    for (name, value) in &signed {
        creq.push_str(name);
        creq.push(':');
        creq.push_str(&trim_all(value));
        creq.push('\n');
    }
    creq.push('\n');
    creq.push_str(&signed_names);
    creq.push_str("\nUNSIGNED-PAYLOAD");
    let creq_hash = {
        use sha2::Digest as _;
        sha2::Sha256::digest(creq.as_bytes())
    };
    let mut string_to_sign = String::with_capacity(160);
    string_to_sign.push_str("AWS4-HMAC-SHA256\n");
    string_to_sign.push_str(&date_time);
    string_to_sign.push('\n');
    string_to_sign.push_str(&credential[creds.access_key_id().len() + 1..]);
    string_to_sign.push('\n');
    push_hex(&mut string_to_sign, &creq_hash);
    let signature = hmac_sha256(
        &target.signing_key(creds, &date),
        &[string_to_sign.as_bytes()],
    );
    for (name, value) in &amz {
        url.push(separator);
        separator = '&';
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, QUERY));
    }
    url.push(separator);
    url.push_str("X-Amz-Signature=");
    push_hex(&mut url, &signature);

    let (expires_at, limited_by_credentials) =
        crate::links::honest_expiry(now, lifetime, creds.expiry());
    Ok(Presigned {
        method,
        url,
        headers,
        expires_at,
        limited_by_credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signer before it was written out: the generic `aws_sigv4` one, kept as the
    /// reference that [`sign_request`] must agree with.
    fn reference_sign(
        target: &BucketTarget,
        creds: &Credentials,
        key: &str,
        op: &PresignOp,
        lifetime: Duration,
        now: SystemTime,
    ) -> std::result::Result<Presigned, String> {
        let mut url = String::with_capacity(target.base.len() + key.len() * 3 + 512);
        url.push_str(&target.base);
        url.push('/');
        url.extend(utf8_percent_encode(key, PATH));

        let mut query: Vec<(&str, String)> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        let method = match op {
            PresignOp::Get { filename, inline } => {
                if let Some(name) = filename {
                    query.push((
                        "response-content-disposition",
                        if *inline {
                            crate::links::inline_content_disposition(name)
                        } else {
                            crate::links::content_disposition(name)
                        },
                    ));
                }
                http::Method::GET
            }
            PresignOp::Head => http::Method::HEAD,
            PresignOp::Put {
                content_md5,
                if_none_match,
                content_type,
                content_length,
            } => {
                if let Some(len) = content_length {
                    headers.push(("content-length".into(), len.to_string()));
                }
                if let Some(md5) = content_md5 {
                    headers.push(("content-md5".into(), md5.clone()));
                }
                if let Some(ct) = content_type {
                    headers.push(("content-type".into(), ct.clone()));
                }
                if *if_none_match {
                    headers.push(("if-none-match".into(), "*".into()));
                }
                http::Method::PUT
            }
            PresignOp::Delete => http::Method::DELETE,
            PresignOp::UploadPart {
                upload_id,
                part_number,
                content_md5,
                content_length,
            } => {
                if !(1..=10_000).contains(part_number) {
                    return Err(format!("part number {part_number} is outside 1..=10000"));
                }
                query.push(("partNumber", part_number.to_string()));
                query.push(("uploadId", upload_id.clone()));
                headers.push(("content-length".into(), content_length.to_string()));
                if let Some(md5) = content_md5 {
                    headers.push(("content-md5".into(), md5.clone()));
                }
                http::Method::PUT
            }
        };
        for (_, value) in &headers {
            // What the sender will send must be a valid header value, or the signature is useless.
            http::HeaderValue::from_str(value)
                .map_err(|_| format!("{value:?} cannot be sent as an HTTP header value"))?;
        }
        let mut separator = '?';
        for (name, value) in &query {
            url.push(separator);
            separator = '&';
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(value, QUERY));
        }

        use aws_sigv4::http_request::{
            PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
            UriPathNormalizationMode, sign,
        };
        use aws_sigv4::sign::v4;
        let identity = creds.clone().into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&target.region)
            .name(&target.service)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let (_, signed_params) = instructions.into_parts();
        for (name, value) in signed_params {
            url.push(separator);
            separator = '&';
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(&value, QUERY));
        }

        let asked_end = now + lifetime;
        let (expires_at, limited_by_credentials) = match creds.expiry() {
            Some(end) if end < asked_end => (end, true),
            _ => (asked_end, false),
        };
        Ok(Presigned {
            method,
            url,
            headers,
            expires_at,
            limited_by_credentials,
        })
    }

    /// Every operation, awkward keys, with and without a session token, on a default-port
    /// virtual-host target and a path-style endpoint with a port: the written-out signer gives
    /// the same signature as the generic one, for times across days and years.
    #[test]
    fn written_out_signer_agrees_with_aws_sigv4() {
        let ops = [
            PresignOp::Get {
                filename: None,
                inline: false,
            },
            PresignOp::Get {
                filename: Some("rapport final (2).pdf".into()),
                inline: false,
            },
            PresignOp::Get {
                filename: Some("ünïcødé 文件.png".into()),
                inline: true,
            },
            PresignOp::Head,
            PresignOp::Delete,
            PresignOp::Put {
                content_md5: Some("1B2M2Y8AsgTpgAmY7PhCfg==".into()),
                if_none_match: true,
                content_type: Some("text/plain;  charset=utf-8 ".into()),
                content_length: Some(123),
            },
            PresignOp::Put {
                content_md5: None,
                if_none_match: false,
                content_type: None,
                content_length: None,
            },
            PresignOp::UploadPart {
                upload_id: "a/b+c=d".into(),
                part_number: 17,
                content_md5: None,
                content_length: 5 << 20,
            },
        ];
        let targets = [
            target(),
            BucketTarget::new(
                "https://my-bucket.s3.eu-west-3.amazonaws.com".into(),
                "eu-west-3".into(),
                "s3".into(),
            )
            .unwrap(),
            BucketTarget::new(
                "https://s3.example.com:443/b".into(),
                "us-east-1".into(),
                "s3".into(),
            )
            .unwrap(),
        ];
        let creds = [
            Credentials::new("AKID", "SECRET", None, None, "t"),
            Credentials::new("AKID2", "SECRET2", Some("TOK/EN+=".into()), None, "t"),
        ];
        let times = [
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
            SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400), // 2000-02-29
            SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_799), // 2099-12-31 23:59:59
        ];
        for t in &targets {
            for c in &creds {
                for time in times {
                    for op in &ops {
                        for key in AWKWARD {
                            let ours =
                                sign_request(t, c, key, op, &[], Duration::from_secs(300), time)
                                    .unwrap();
                            let theirs =
                                reference_sign(t, c, key, op, Duration::from_secs(300), time)
                                    .unwrap();
                            let mut a: Vec<&str> = ours.url.split(['?', '&']).collect();
                            let mut b: Vec<&str> = theirs.url.split(['?', '&']).collect();
                            a.sort_unstable();
                            b.sort_unstable();
                            assert_eq!(a, b, "{key:?} {op:?} {}", t.base);
                            assert_eq!(ours.headers, theirs.headers);
                        }
                    }
                }
            }
        }
    }

    fn target() -> BucketTarget {
        BucketTarget::new(
            "http://127.0.0.1:9000/prefix/bucket".into(),
            "us-east-1".into(),
            "s3".into(),
        )
        .unwrap()
    }

    #[test]
    fn keys_are_encoded_once_and_endpoint_path_kept() {
        let creds = Credentials::new("AKID", "SECRET", None, None, "test");
        let p = sign_request(
            &target(),
            &creds,
            "a b/+%#?ü\n",
            &PresignOp::Head,
            &[],
            Duration::from_secs(60),
            SystemTime::now(),
        )
        .unwrap();
        assert!(
            p.url
                .starts_with("http://127.0.0.1:9000/prefix/bucket/a%20b/%2B%25%23%3F%C3%BC%0A?"),
            "{}",
            p.url
        );
        assert!(p.url.contains("X-Amz-Expires=60"), "{}", p.url);
        assert!(!p.limited_by_credentials);
    }

    #[test]
    fn expiry_is_cut_by_the_signing_credentials() {
        let now = SystemTime::now();
        let end = now + Duration::from_secs(600);
        let creds = Credentials::new("AKID", "SECRET", Some("TOKEN".into()), Some(end), "t");
        let p = sign_request(
            &target(),
            &creds,
            "k",
            &PresignOp::Delete,
            &[],
            Duration::from_secs(3600),
            now,
        )
        .unwrap();
        assert_eq!(p.expires_at, end);
        assert!(p.limited_by_credentials);
        assert!(p.url.contains("X-Amz-Security-Token=TOKEN"));
        assert!(!format!("{p:?}").contains("X-Amz"), "Debug shows no URL");
    }

    /// Hands out the answers it was given, in order, and counts the questions.
    #[derive(Debug)]
    struct Scripted {
        answers: Mutex<std::collections::VecDeque<Option<Duration>>>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl ProvideCredentials for Scripted {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // `Some(d)`: credentials living `d` more; `None`: the provider fails.
            let answer = self.answers.lock().pop_front().expect("asked too often");
            future::ProvideCredentials::ready(match answer {
                Some(d) => Ok(Credentials::new(
                    "AKID",
                    "SECRET",
                    None,
                    Some(SystemTime::now() + d),
                    "scripted",
                )),
                None => Err(CredentialsError::not_loaded("scripted failure")),
            })
        }
    }

    fn scripted(answers: &[Option<Duration>]) -> (Arc<CredentialCache>, Arc<Scripted>) {
        let provider = Arc::new(Scripted {
            answers: Mutex::new(answers.iter().copied().collect()),
            calls: Default::default(),
        });
        let cache = CredentialCache::new(SharedCredentialsProvider::new(ScriptedRef(
            provider.clone(),
        )));
        (cache, provider)
    }

    #[derive(Debug)]
    struct ScriptedRef(Arc<Scripted>);

    impl ProvideCredentials for ScriptedRef {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    fn calls(p: &Scripted) -> usize {
        p.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pretends the last question to the provider was asked `ago`.
    fn asked_ago(cache: &CredentialCache, ago: Duration) {
        let mut guard = cache.current.write();
        let c = guard.as_mut().unwrap();
        c.asked = Instant::now().checked_sub(ago).unwrap();
    }

    /// Keys that break naive signing (as in the integration tests).
    const AWKWARD: &[&str] = &[
        "with space.txt",
        "ünïcødé/文件 名.txt",
        "plus+sign.txt",
        "percent%20literal.txt",
        "hash#tag.txt",
        "question?mark.txt",
        "equals=and&amp.txt",
        " leading and trailing ",
        "parens (1) [x] {y} 'q' ~!@$^*,;.txt",
        "new\nline\ttab.txt",
        "//double//slash/",
    ];

    fn signature(url: &str) -> &str {
        url.split("X-Amz-Signature=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
    }

    /// For the same time and credentials, the presigner produces what the SDK produces: on AWS
    /// (virtual-host style, the bucket's region) and on an endpoint with a path (path style).
    #[tokio::test]
    async fn signatures_match_the_sdk() {
        let creds = Credentials::new("AKID", "SECRET", Some("TOKEN".into()), None, "t");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let lifetime = Duration::from_secs(900);
        for (endpoint, bucket) in [
            (None, "my-bucket"),
            (Some("http://127.0.0.1:9000/some/prefix/"), "b"),
        ] {
            let mut conf = aws_sdk_s3::config::Builder::new()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .credentials_provider(creds.clone())
                .region(aws_sdk_s3::config::Region::new("eu-west-3"))
                .force_path_style(endpoint.is_some());
            if let Some(e) = endpoint {
                conf = conf.endpoint_url(e);
            }
            let sdk = aws_sdk_s3::Client::from_conf(conf.build());
            let config = || {
                PresigningConfig::builder()
                    .start_time(time)
                    .expires_in(lifetime)
                    .build()
                    .unwrap()
            };
            let probe = sdk
                .get_object()
                .bucket(bucket)
                .key(PROBE_KEY)
                .presigned(config())
                .await
                .unwrap();
            let target = target_from_probe(probe.uri()).unwrap();
            assert_eq!(target.region, "eu-west-3");
            assert_eq!(target.service, "s3");
            match endpoint {
                None => assert_eq!(target.base, "https://my-bucket.s3.eu-west-3.amazonaws.com"),
                Some(e) => assert_eq!(target.base, format!("{e}b")),
            }
            for key in AWKWARD {
                let theirs = sdk
                    .head_object()
                    .bucket(bucket)
                    .key(*key)
                    .presigned(config())
                    .await
                    .unwrap();
                let ours =
                    sign_request(&target, &creds, key, &PresignOp::Head, &[], lifetime, time)
                        .unwrap();
                let path = |u: &str| u.split('?').next().unwrap().to_owned();
                assert_eq!(path(&ours.url), path(theirs.uri()), "{key:?}");
                assert_eq!(signature(&ours.url), signature(theirs.uri()), "{key:?}");
            }
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const TWO_MIN: Duration = Duration::from_secs(120);

    #[tokio::test]
    async fn credentials_are_cached_until_shortly_before_they_expire() {
        let (cache, p) = scripted(&[Some(HOUR), Some(TWO_MIN), Some(HOUR)]);
        let first = cache.get().await.unwrap();
        for _ in 0..100 {
            assert_eq!(cache.get().await.unwrap().expiry(), first.expiry());
        }
        assert_eq!(calls(&p), 1);
        // Within REFRESH_AHEAD of their end they are fetched again...
        *cache.current.write() = Some(Cached {
            creds: Credentials::new("A", "S", None, Some(SystemTime::now() + TWO_MIN), "t"),
            asked: Instant::now().checked_sub(RETRY_AFTER).unwrap(),
        });
        let second = cache.get().await.unwrap();
        assert_eq!(calls(&p), 2);
        // ...and a provider that only has short-lived ones is not asked on every signature.
        assert_eq!(cache.get().await.unwrap().expiry(), second.expiry());
        assert_eq!(calls(&p), 2);
        asked_ago(&cache, RETRY_AFTER);
        let third = cache.get().await.unwrap();
        assert_eq!(calls(&p), 3);
        assert!(third.expiry() > second.expiry());
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_credentials_that_still_work() {
        let (cache, p) = scripted(&[Some(TWO_MIN), None, None]);
        let first = cache.get().await.unwrap();
        asked_ago(&cache, RETRY_AFTER);
        let kept = cache.get().await.unwrap();
        assert_eq!(kept.expiry(), first.expiry());
        assert_eq!(calls(&p), 2);
        // Not asked again at once after the failure.
        cache.get().await.unwrap();
        assert_eq!(calls(&p), 2);
        // Once they have expired, the failure is the answer.
        *cache.current.write() = Some(Cached {
            creds: Credentials::new("A", "S", None, Some(SystemTime::now()), "t"),
            asked: Instant::now(),
        });
        assert!(cache.signing_credentials().await.is_err());
        assert_eq!(calls(&p), 3);
    }

    #[test]
    fn lifetimes_outside_sigv4_are_refused() {
        assert!(check_lifetime(MAX_LIFETIME).is_ok());
        assert!(check_lifetime(MAX_LIFETIME + Duration::from_secs(1)).is_err());
        assert!(check_lifetime(Duration::from_millis(500)).is_err());
    }
}
