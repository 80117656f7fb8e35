//! The TLS set-up of s3share's HTTP clients: the ones that send presigned requests, and the
//! SDK's where its default would load the system's roots for nothing.
//!
//! reqwest reads and parses the system's trusted roots every time a client is built (a few
//! hundred files here), and s3share builds several: one per `S3Client` for links, one for
//! uploads, one per receiving thread. Each load cost about 2.5 ms of CPU here (an `ls` took
//! 15.5 ms with three loads, 10.5 ms with one). Here they are loaded once per process, and only
//! when a TLS connection first needs them: an `http://` endpoint, like the embedded store, never
//! does.
//! What is trusted is what reqwest trusts: the platform's roots through
//! `rustls-platform-verifier` (so `SSL_CERT_FILE` and `SSL_CERT_DIR` apply), with the same
//! crypto provider. Unlike reqwest, they offer HTTP/1.1 alone ([`client_config`] says why).
//!
//! The SDK loads the roots whenever it builds a client, whatever the scheme and whether or not
//! that client ever sends: the S3 client, and the STS client the default credential chain
//! builds at start. That was 3.7 ms of an `ls`'s 9.5 ms of CPU against an `http://` endpoint
//! here. [`sdk_http_client`] gives the S3 client of an `http://` endpoint a client without
//! roots, and [`sdk_loader_http_client`] lets the other clients load them at their first
//! request, as the presigning clients do.

use std::sync::{Arc, LazyLock, OnceLock};

use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

use crate::error::{Error, Result};

/// The configuration every presigning client is built with (cheap to clone: the verifier,
/// and the roots it loads, are shared).
pub(crate) fn client_config() -> Result<rustls::ClientConfig> {
    static CONFIG: LazyLock<std::result::Result<rustls::ClientConfig, String>> =
        LazyLock::new(|| {
            // As reqwest: the process's default provider if one was installed, else aws-lc-rs.
            let provider = CryptoProvider::get_default()
                .cloned()
                .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
            let verifier = Arc::new(SystemRoots {
                provider: provider.clone(),
                verifier: OnceLock::new(),
            });
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            // HTTP/1.1 alone, though some servers over TLS (SeaweedFS, Cloudflare R2, any
            // behind an HTTP/2 proxy) would take HTTP/2: there, the parts and ranges a transfer
            // sends side by side would be streams of one connection, which carries what one TCP
            // connection and the server's HTTP/2 window let through, not the link. Through a
            // proxy delaying 25 ms each way to SeaweedFS over TLS, 256 MiB went up at 17 MiB/s
            // over HTTP/2 (about what Go's default 1 MiB HTTP/2 upload window lets through a
            // round trip) and at 125 over HTTP/1.1, and came down at 100 against 246
            // (`benches/tls.sh`). rclone, which takes HTTP/2, went at 16 and 91.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(config)
        });
    CONFIG
        .clone()
        .map_err(|e| Error::Config(format!("cannot set up TLS: {e}")))
}

/// A builder of the HTTP clients that send presigned requests: the shared TLS set-up, and for
/// a server on this machine (`loopback`), no proxy. `HTTP_PROXY` and the like apply to servers
/// elsewhere; a proxy cannot reach this machine's loopback (the embedded store, a local MinIO),
/// and with one set in the environment, as on many company machines, every request to them
/// failed. Go's HTTP client never sends loopback through a proxy either.
pub(crate) fn client_builder(loopback: bool) -> Result<reqwest::ClientBuilder> {
    let builder = reqwest::Client::builder().tls_backend_preconfigured(client_config()?);
    Ok(if loopback {
        builder.no_proxy()
    } else {
        builder
    })
}

/// The SDK's HTTP client for `endpoint`, when the default one would not do: one on this
/// machine, which never goes through a proxy (see [`client_builder`]); or an `http://` endpoint
/// reached without a proxy, where no connection can be TLS, so the default would load roots
/// for nothing. `None` keeps the SDK's default (AWS itself, an `https://` endpoint elsewhere, or
/// one behind a proxy that might be `https://`).
pub(crate) fn sdk_http_client(endpoint: Option<&str>) -> Option<SharedHttpClient> {
    let endpoint = endpoint?;
    let plain = endpoint
        .parse::<http::Uri>()
        .is_ok_and(|uri| uri.scheme() == Some(&http::uri::Scheme::HTTP));
    let loopback = super::is_loopback(endpoint);
    if !plain {
        // Built without the proxy the default takes from the environment.
        return loopback.then(|| like_the_sdks_default(TlsContext::default()));
    }
    if proxy_configured() && !loopback {
        return None;
    }
    // As the SDK's default, only without the platform's roots: a TLS handshake, if one ever
    // happened, would fail rather than trust.
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty())
        .build()
        .ok()?;
    Some(like_the_sdks_default(context))
}

/// The HTTP client for the SDK's config loader and the clients it builds (STS, SSO, the
/// instance metadata service): the SDK's default, except that a client loads the roots at its
/// first request instead of when it is built. `None` (the default as is) when a proxy is set,
/// since the default takes its proxy from the environment and this one would not.
pub(crate) fn sdk_loader_http_client() -> Option<SharedHttpClient> {
    if proxy_configured() {
        return None;
    }
    Some(SharedHttpClient::new(AtFirstRequest(
        like_the_sdks_default(TlsContext::default()),
    )))
}

/// The SDK's default HTTP client as `default-https-client` builds it (rustls with aws-lc, the
/// default pool; `TlsContext::default()` trusts the platform's roots), less the proxy it takes
/// from the environment: callers keep the default itself when a proxy is set.
fn like_the_sdks_default(context: TlsContext) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// An HTTP client that does not build its connector when an SDK client is built with it: the
/// SDK's default does, to load the roots early, which costs every command that never sends
/// with that client (the default chain builds an STS client even for keys in a file).
#[derive(Debug)]
struct AtFirstRequest(SharedHttpClient);

impl HttpClient for AtFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Whether the environment names a proxy, which the SDK's default client would use (and which
/// may itself be reached over TLS).
fn proxy_configured() -> bool {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The platform's verifier, made (and the roots loaded) at the first certificate to check.
#[derive(Debug)]
struct SystemRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<std::result::Result<Verifier, rustls::Error>>,
}

impl SystemRoots {
    fn verifier(&self) -> std::result::Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Signatures need no roots: checked as the platform verifier checks them.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_gets_a_client_of_its_own_for_plain_http_and_for_this_machine() {
        // A proxy in the test's environment keeps the default for plain HTTP elsewhere.
        let plain = !proxy_configured();
        assert_eq!(sdk_http_client(Some("HTTP://minio.lan")).is_some(), plain);
        // On this machine, never the default (it would take a proxy from the environment).
        assert!(sdk_http_client(Some("http://127.0.0.1:9000")).is_some());
        assert!(sdk_http_client(Some("https://127.0.0.1:9000")).is_some());
        assert!(sdk_http_client(Some("https://localhost")).is_some());
        assert!(sdk_http_client(Some("https://s3.example.com/http://")).is_none());
        assert!(sdk_http_client(None).is_none(), "AWS itself is https");
    }
}
