//! Reading the fingerprint a server presents, for trust on first use.
//!
//! `stowage enroll` against a self-signed server has nothing to check the
//! certificate against yet. It connects once with [`fetch_fingerprint`],
//! which completes a TLS handshake, reads the leaf certificate and closes the
//! connection without sending a single byte of HTTP; enroll then prints the
//! fingerprint for the user to compare out of band (or compares it with
//! `--pin-fingerprint`) and records it, and every later connection is pinned
//! to it. Nothing here trusts the certificate for anything else.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use url::Host;

use super::pin::Fingerprint;
use super::trust::provider;
use super::{CONNECT_TIMEOUT, TransportError, Url};

/// Connects to the `https://` server at `url`, completes a TLS handshake and
/// returns the fingerprint of the leaf certificate it presents.
///
/// The certificate is not checked against anything — that is the point —
/// but the handshake signatures are, so the fingerprint belongs to a server
/// holding the certificate's private key.
///
/// # Errors
///
/// Fails when the URL is not `https://` with a host, when the server cannot
/// be reached within [`CONNECT_TIMEOUT`], or when the handshake fails.
pub async fn fetch_fingerprint(url: &Url) -> Result<Fingerprint, TransportError> {
    let bad = |problem: &str| TransportError::BadUrl {
        url: url.to_string(),
        problem: problem.to_owned(),
    };
    if url.scheme() != "https" {
        return Err(bad(
            "is not https://; only a TLS server presents a certificate",
        ));
    }
    let host = url.host().ok_or_else(|| bad("has no host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let server_name = match &host {
        Host::Domain(name) => ServerName::try_from((*name).to_owned())
            .map_err(|_| bad("has a host name that is not a valid DNS name"))?,
        Host::Ipv4(ip) => ServerName::from(std::net::IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ServerName::from(std::net::IpAddr::V6(*ip)),
    };
    let server = format!("{host}:{port}");
    let connect_error = |problem: String| TransportError::Connect {
        server: server.clone(),
        problem,
    };

    let connector = tokio_rustls::TlsConnector::from(Arc::new(first_contact_config()));
    let handshake = async {
        let tcp = match &host {
            Host::Domain(name) => TcpStream::connect((*name, port)).await,
            Host::Ipv4(ip) => TcpStream::connect((*ip, port)).await,
            Host::Ipv6(ip) => TcpStream::connect((*ip, port)).await,
        }?;
        connector.connect(server_name, tcp).await
    };
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            connect_error(format!(
                "no TLS handshake within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|err| connect_error(err.to_string()))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| connect_error("the server presented no certificate".to_owned()))?;
    Ok(Fingerprint::of_certificate(leaf))
}

/// A configuration that accepts whatever certificate the server shows.
fn first_contact_config() -> ClientConfig {
    let provider = provider();
    let verifier = FirstContact {
        algorithms: provider.signature_verification_algorithms,
    };
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth()
}

/// Accepts any leaf but still checks the handshake signatures; used only to
/// read a fingerprint, on a connection that carries no data.
#[derive(Debug)]
struct FirstContact {
    /// The provider's signature algorithms.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for FirstContact {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
