//! The TLS set-up of the clients that send presigned requests.
//!
//! reqwest reads and parses the system's trusted roots every time a client is built (a few
//! hundred files here), and s3share builds several: one per `S3Client` for links, one for
//! uploads, one per receiving thread. Each load cost about 2.5 ms of CPU here (an `ls` took
//! 15.5 ms with three loads, 10.5 ms with one). Here they are loaded once per process, and only
//! when a TLS connection first needs them: an `http://` endpoint, like the embedded store, never
//! does.
//! What is trusted is what reqwest trusts: the platform's roots through
//! `rustls-platform-verifier` (so `SSL_CERT_FILE` and `SSL_CERT_DIR` apply), with the same
//! crypto provider and ALPN.

use std::sync::{Arc, LazyLock, OnceLock};

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
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(config)
        });
    CONFIG
        .clone()
        .map_err(|e| Error::Config(format!("cannot set up TLS: {e}")))
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
