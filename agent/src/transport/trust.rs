//! The rustls client configuration for each [`Trust`] mode.
//!
//! System roots go through rustls-platform-verifier, which reqwest's rustls
//! support brings in anyway; on Linux it reads the distribution's bundle
//! (Debian: `ca-certificates`, `/etc/ssl/certs`). A CA file replaces the
//! system roots rather than adding to them, so a private CA's server is
//! trusted and nothing else is. Pinning uses [`PinnedVerifier`].

use std::path::Path;
use std::sync::Arc;

use rustls::client::WantsClientCert;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore};

use super::pin::PinnedVerifier;
use super::{TransportError, Trust};

/// The provider every TLS connection of the agent uses.
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// A client configuration that checks the server as `trust` says and
/// offers HTTP/1.1, the protocol the agent's client speaks.
pub(super) fn client_config(trust: &Trust) -> Result<ClientConfig, TransportError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions");
    let builder: ConfigBuilder<ClientConfig, WantsClientCert> = match trust {
        Trust::SystemRoots => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|err| TransportError::SystemRoots(err.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
        Trust::CaFile(path) => builder.with_root_certificates(read_ca_file(path)?),
        Trust::Pinned(fingerprint) => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(
                    *fingerprint,
                    algorithms,
                )))
        }
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The CA certificates of a PEM file, as the only trust anchors.
fn read_ca_file(path: &Path) -> Result<RootCertStore, TransportError> {
    let problem = |problem: String| TransportError::CaFile {
        path: path.to_owned(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|err| problem(format!("cannot be read - {err}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| problem(format!("is not valid PEM - {err}")))?;
    if certs.is_empty() {
        return Err(problem(
            "holds no PEM certificate (a block starting -----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|err| problem(format!("holds a certificate unusable as a CA - {err}")))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();

        // Act
        let err = client_config(&Trust::CaFile(path.clone())).unwrap_err();

        // Assert
        assert_eq!(
            err.to_string(),
            format!(
                "the CA certificate file {path:?} holds no PEM certificate \
                 (a block starting -----BEGIN CERTIFICATE-----)"
            )
        );
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let path = Path::new("/nonexistent/stowage-ca.pem");

        let err = client_config(&Trust::CaFile(path.to_owned())).unwrap_err();

        assert!(
            err.to_string().starts_with(
                "the CA certificate file \"/nonexistent/stowage-ca.pem\" cannot be read - "
            ),
            "{err}"
        );
    }
}
