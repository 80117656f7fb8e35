//! From command-line style options to a working [`S3Client`]: the AWS configuration chain,
//! custom endpoints, or the embedded store when nothing is configured.

use std::path::PathBuf;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};

use super::{AwsFiles, S3Client, Timeouts};
use crate::error::{CredentialProblem, Error, Result};
use crate::store::{self, LocalStore, StorePaths};

/// How to reach S3: what the `--profile`, `--endpoint-url`, `--region`, `--path-style` and
/// `--local` flags say.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// AWS profile from the shared config files (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// Any S3-compatible endpoint (MinIO, R2, SeaweedFS…), else `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint_url: Option<String>,
    /// Region to sign for; AWS buckets elsewhere are found anyway.
    pub region: Option<String>,
    /// Force path-style addressing (automatic for IP and localhost endpoints).
    pub force_path_style: bool,
    /// Use the embedded store even when AWS credentials are configured.
    pub local: bool,
    /// Where the embedded store lives (default: the user's data and config folders).
    pub store_paths: Option<StorePaths>,
    /// The AWS shared files to read profiles from (default: `AWS_CONFIG_FILE`,
    /// `AWS_SHARED_CREDENTIALS_FILE`, `~/.aws`).
    pub aws_files: Option<AwsFiles>,
}

/// A ready client, and the embedded store behind it when that is what it talks to.
#[derive(Debug)]
pub struct Connection {
    /// The client.
    pub client: S3Client,
    /// The embedded store, when in use (kept alive: this process may be serving it).
    pub local_store: Option<LocalStore>,
}

impl Connection {
    /// The bucket to use when none is named: the embedded store's default bucket.
    pub fn default_bucket(&self) -> Option<&'static str> {
        self.local_store.as_ref().map(|_| store::DEFAULT_BUCKET)
    }
}

impl ConnectOptions {
    /// Whether these options lead to the embedded store: asked for, or no endpoint and no AWS
    /// configuration at all. Decided from the environment and files alone, so that a machine
    /// without an account never waits on (or probes) the EC2 metadata service.
    pub fn uses_local_store(&self) -> bool {
        self.local || (self.endpoint().is_none() && self.profile.is_none() && !aws_configured())
    }

    fn endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
    }

    /// Connects: builds the client and, for the embedded store, serves it or finds the
    /// s3share process that does.
    pub async fn connect(&self) -> Result<Connection> {
        if self.uses_local_store() {
            let paths = match &self.store_paths {
                Some(p) => p.clone(),
                None => StorePaths::for_user().ok_or_else(|| {
                    Error::Config(
                        "cannot find a home folder for the embedded store; set S3SHARE_HOME".into(),
                    )
                })?,
            };
            let store = LocalStore::open(paths).await?;
            let client = local_client(&store)?;
            return Ok(Connection {
                client,
                local_store: Some(store),
            });
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(client) = super::tls::sdk_loader_http_client() {
            loader = loader.http_client(client);
        }
        if let Some(p) = &self.profile {
            // An unknown profile would send the credential chain on to its last resorts (the
            // EC2 metadata service among them) and fail slowly with a vague message.
            let known = match &self.aws_files {
                Some(files) => files.profiles(),
                None => super::aws_profiles(),
            };
            if !known.contains(p) {
                return Err(Error::Credentials {
                    problem: CredentialProblem::Missing,
                    detail: format!("profile {p:?} is not in ~/.aws/config or ~/.aws/credentials"),
                    answer: None,
                });
            }
            loader = loader.profile_name(p);
        }
        if let Some(files) = &self.aws_files {
            loader = loader.profile_files(profile_files(files));
        }
        let endpoint = self.endpoint();
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        } else {
            let aws = endpoint.as_deref().is_none_or(is_aws_endpoint);
            loader = loader.region(configured_region(self, aws));
        }
        if let Some(e) = &endpoint {
            check_endpoint(e)?;
            loader = loader.endpoint_url(sdk_endpoint(e));
        }
        let sdk_config = loader.load().await;
        let builder = aws_sdk_s3::config::Builder::from(&sdk_config);
        let path_style = self.force_path_style || endpoint.as_deref().is_some_and(needs_path_style);
        let conf = tuned(builder, endpoint.as_deref())
            .force_path_style(path_style)
            .build();
        let client = S3Client::new(
            aws_sdk_s3::Client::from_conf(conf),
            endpoint,
            sdk_config.credentials_provider(),
        )?;
        Ok(Connection {
            client,
            local_store: None,
        })
    }
}

/// The region the environment or the profile names, else (for AWS, `ask_instance`) the EC2
/// instance's, else [`UNCONFIGURED_REGION`]. Unlike the SDK's default chain it asks the
/// metadata service only for AWS, and once: a server that is not AWS has no use for an
/// instance's region, and away from EC2 (where 169.254.169.254 does not answer) the default
/// chain cost every command three 1 s timeouts and three warnings, being asked again by the
/// credential chain whenever it found no region. It never comes back empty for that reason.
fn configured_region(
    options: &ConnectOptions,
    ask_instance: bool,
) -> aws_config::meta::region::RegionProviderChain {
    use aws_config::environment::region::EnvironmentVariableRegionProvider;
    use aws_config::imds::region::ImdsRegionProvider;
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::profile::ProfileFileRegionProvider;
    let mut profile = ProfileFileRegionProvider::builder();
    if let Some(p) = &options.profile {
        profile = profile.profile_name(p);
    }
    if let Some(files) = &options.aws_files {
        profile = profile.profile_files(profile_files(files));
    }
    let mut chain = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(profile.build());
    if ask_instance {
        // One attempt: on EC2 the service answers at once.
        let once = aws_config::imds::Client::builder().max_attempts(1).build();
        chain = chain.or_else(ImdsRegionProvider::builder().imds_client(once).build());
    }
    chain.or_else(Region::new(UNCONFIGURED_REGION))
}

/// Whether `url` is one of AWS's own S3 endpoints (a regional, FIPS or VPC endpoint), where
/// an EC2 instance's region and credentials belong.
fn is_aws_endpoint(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or("").trim_end_matches('.');
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

/// The region signed for when none is configured (S3's first; most S3-compatible servers
/// take any, or this one; AWS buckets elsewhere are then found in their own).
const UNCONFIGURED_REGION: &str = "us-east-1";

/// `files` as the SDK's loader takes them.
#[allow(
    deprecated,
    reason = "aws-config names the type only through these aliases; aws-runtime, which has the new names, is not a direct dependency"
)]
fn profile_files(files: &AwsFiles) -> aws_config::profile::profile_file::ProfileFiles {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    ProfileFiles::builder()
        .with_file(ProfileFileKind::Config, &files.config)
        .with_file(ProfileFileKind::Credentials, &files.credentials)
        .build()
}

/// Builds the client for the embedded store: its static credentials, path style, fixed region.
pub(crate) fn local_client(store: &LocalStore) -> Result<S3Client> {
    let state = store.state();
    let creds = aws_credential_types::Credentials::new(
        state.access_key.clone(),
        state.secret_key.clone(),
        None,
        None,
        "s3share-local-store",
    );
    static_client(&store.endpoint(), store::REGION, creds, true)
}

/// A client for an S3-compatible `endpoint` that signs with the given `credentials` (which may
/// carry an expiry, as temporary credentials do).
pub fn static_client(
    endpoint: &str,
    region: &str,
    credentials: aws_credential_types::Credentials,
    force_path_style: bool,
) -> Result<S3Client> {
    static_client_with_timeouts(
        endpoint,
        region,
        credentials,
        force_path_style,
        Timeouts::default(),
    )
}

/// [`static_client`] with other [`Timeouts`] than the defaults.
pub fn static_client_with_timeouts(
    endpoint: &str,
    region: &str,
    credentials: aws_credential_types::Credentials,
    force_path_style: bool,
    timeouts: Timeouts,
) -> Result<S3Client> {
    check_endpoint(endpoint)?;
    let provider = aws_credential_types::provider::SharedCredentialsProvider::new(credentials);
    let builder = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(provider.clone())
        .region(Region::new(region.to_owned()))
        .endpoint_url(sdk_endpoint(endpoint));
    let path_style = force_path_style || needs_path_style(endpoint);
    let conf = tuned(builder, Some(endpoint))
        .force_path_style(path_style)
        .build();
    S3Client::with_timeouts(
        aws_sdk_s3::Client::from_conf(conf),
        Some(endpoint.to_owned()),
        Some(provider),
        timeouts,
    )
}

/// Settings every client shares. Checksums only when required: presigned PUTs carry our own
/// Content-MD5, and the SDK's default CRC32 would sign a checksum of an empty body into them.
/// An `http://` endpoint gets an HTTP client that does not load the system's roots.
fn tuned(
    builder: aws_sdk_s3::config::Builder,
    endpoint: Option<&str>,
) -> aws_sdk_s3::config::Builder {
    let builder = builder
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    match super::tls::sdk_http_client(endpoint) {
        Some(client) => builder.http_client(client),
        None => builder,
    }
}

fn check_endpoint(url: &str) -> Result<()> {
    let parsed: http::Uri = url
        .parse()
        .map_err(|e| Error::Config(format!("endpoint URL {url:?} is not valid: {e}")))?;
    match parsed.scheme_str() {
        Some("http" | "https") if parsed.host().is_some() => Ok(()),
        _ => Err(Error::Config(format!(
            "endpoint URL {url:?} must look like http(s)://host[:port]"
        ))),
    }
}

/// The endpoint as the SDK needs it. The SDK joins an endpoint's path and a path-style bucket
/// without a slash (`/s3` + `b` gives `/s3b`); a trailing slash keeps an endpoint served under a
/// path prefix working, for requests and links alike.
fn sdk_endpoint(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) if !u.path().is_empty() && !u.path().ends_with('/') && u.query().is_none() => {
            format!("{url}/")
        }
        _ => url.to_owned(),
    }
}

/// Virtual-host addressing puts the bucket in the host name, which cannot work for IP
/// addresses and localhost (no DNS, no matching TLS certificate).
fn needs_path_style(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    host == "localhost" || host.ends_with(".localhost") || host.parse::<std::net::IpAddr>().is_ok()
}

/// Whether the environment or the shared files configure any AWS credentials.
fn aws_configured() -> bool {
    const VARS: [&str; 5] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ];
    if VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    {
        return true;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    [
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        file("AWS_CONFIG_FILE", "config"),
    ]
    .into_iter()
    .flatten()
    .any(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_for_local_endpoints() {
        assert!(needs_path_style("http://127.0.0.1:9000"));
        assert!(needs_path_style("http://localhost:9000"));
        assert!(needs_path_style("http://[::1]:9000"));
        assert!(!needs_path_style("https://s3.eu-west-1.amazonaws.com"));
        assert!(!needs_path_style("https://minio.example.com"));
    }

    #[test]
    fn only_aws_endpoints_ask_an_instance_for_its_region() {
        assert!(is_aws_endpoint("https://s3.eu-west-1.amazonaws.com"));
        assert!(is_aws_endpoint(
            "https://bucket.vpce-0a1b-2c3d.s3.eu-west-1.vpce.amazonaws.com"
        ));
        assert!(is_aws_endpoint("https://s3.cn-north-1.amazonaws.com.cn"));
        assert!(!is_aws_endpoint("http://127.0.0.1:9000"));
        assert!(!is_aws_endpoint("https://minio.example.com"));
        assert!(!is_aws_endpoint(
            "https://0123abcd.r2.cloudflarestorage.com"
        ));
        assert!(!is_aws_endpoint("https://amazonaws.com.example.org"));
    }

    #[test]
    fn endpoint_paths_keep_their_slash() {
        assert_eq!(
            sdk_endpoint("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            sdk_endpoint("http://127.0.0.1:9000/"),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            sdk_endpoint("https://gw.example/s3"),
            "https://gw.example/s3/"
        );
        assert_eq!(
            sdk_endpoint("https://gw.example/s3/"),
            "https://gw.example/s3/"
        );
    }

    #[test]
    fn endpoint_must_be_a_url() {
        assert!(check_endpoint("http://127.0.0.1:9000").is_ok());
        assert!(check_endpoint("127.0.0.1:9000").is_err());
        assert!(check_endpoint("ftp://x").is_err());
    }
}
