//! The TLS configuration of every HTTP client of a process: rustls with the process's
//! provider (ring), TLS 1.2 and 1.3, and the platform's certificate verifier (on Linux, the
//! system's root certificates), as reqwest 0.13 builds it, with one difference: the root
//! certificates are loaded at the first TLS handshake, once per process, not when a client is
//! built. A job against a plain-HTTP endpoint (the mock, a local server) loads none: parsing
//! the system's roots costs about 19 M instructions, a tenth of a small job's CPU.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The platform's verifier, built on first use.
#[derive(Debug)]
pub struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, String>>,
}

impl LazyVerifier {
    fn new(provider: Arc<CryptoProvider>) -> LazyVerifier {
        LazyVerifier {
            provider,
            inner: OnceLock::new(),
        }
    }

    /// The platform's verifier (loads the roots the first time).
    pub fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.inner
            .get_or_init(|| {
                rustls_platform_verifier::Verifier::new(self.provider.clone())
                    .map(Arc::new)
                    .map_err(|e| format!("the platform's root certificates: {e}"))
            })
            .as_deref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }

    /// Whether the roots were loaded.
    pub fn loaded(&self) -> bool {
        self.inner.get().is_some()
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match self.verifier() {
            Ok(v) => v.supported_verify_schemes(),
            Err(_) => self
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

/// The process's one verifier (shared by reqwest and the direct transport).
pub fn verifier() -> Arc<LazyVerifier> {
    static VERIFIER: OnceLock<Arc<LazyVerifier>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| Arc::new(LazyVerifier::new(provider())))
        .clone()
}

/// The TLS configuration (no ALPN: each client sets its own).
pub fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier())
        .with_no_client_auth())
}

/// The installed rustls provider, else ring.
pub fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_are_loaded_at_first_use_only() {
        let lazy = LazyVerifier::new(Arc::new(rustls::crypto::ring::default_provider()));
        assert!(!lazy.loaded(), "building the verifier loads nothing");
        assert!(!lazy.supported_verify_schemes().is_empty());
        assert!(
            lazy.loaded(),
            "a handshake's first question loads the roots"
        );
        assert!(lazy.verifier().is_ok());
    }
}
