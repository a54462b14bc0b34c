//! Certificate pinning for self-signed set-ups: the server is recognised by
//! the SHA-256 fingerprint of its leaf certificate, recorded at enrollment.
//!
//! A self-signed certificate has no CA to vouch for it and often names an IP
//! address rather than a host name, so CA, name and expiry checks mean
//! nothing for it; what identifies the server is the certificate itself. The
//! [`PinnedVerifier`] therefore accepts exactly one leaf certificate,
//! byte for byte, and refuses any other with [`PinMismatch`], which names
//! both fingerprints. It still checks the handshake signatures with the
//! provider's algorithms, so only a holder of the certificate's private key
//! can complete the handshake.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, OtherError, SignatureScheme};

/// The SHA-256 of a certificate's DER encoding, written
/// `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// Text that is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a certificate fingerprint like sha256:<64 hex digits> \
     (stowage enroll prints the server's)"
)]
pub struct FingerprintParseError {
    /// The text as given.
    pub input: String,
}

/// The server presented another certificate than the pinned one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server presented the certificate {presented}, but {pinned} is pinned; \
     if its certificate was replaced on purpose, check the new fingerprint \
     out of band and pass it with --pin-fingerprint"
)]
pub struct PinMismatch {
    /// The fingerprint the agent expects.
    pub pinned: Fingerprint,
    /// The fingerprint of the certificate the server sent.
    pub presented: Fingerprint,
}

impl Fingerprint {
    /// What every fingerprint starts with; names the hash so another can
    /// be added later without ambiguity.
    pub const PREFIX: &'static str = "sha256:";

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        Self(
            digest
                .as_ref()
                .try_into()
                .expect("a SHA-256 digest is 32 bytes"),
        )
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// How `openssl x509 -noout -fingerprint -sha256` starts its line.
const OPENSSL_PREFIX: &str = "sha256 Fingerprint=";

/// Accepts `sha256:` and 64 hex digits, in either case and optionally with
/// `:` between the bytes; also the whole line `openssl x509 -noout
/// -fingerprint -sha256` prints (`sha256 Fingerprint=2C:F2:…`).
impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || FingerprintParseError {
            input: input.to_owned(),
        };
        let trimmed = input.trim();
        let digits = [Self::PREFIX, OPENSSL_PREFIX]
            .iter()
            .find_map(|prefix| {
                trimmed
                    .get(..prefix.len())
                    .filter(|head| head.eq_ignore_ascii_case(prefix))
                    .map(|_| &trimmed[prefix.len()..])
            })
            .ok_or_else(error)?;
        let digits = if digits.contains(':') {
            let pairs: Vec<&str> = digits.split(':').collect();
            if pairs.iter().any(|pair| pair.len() != 2) {
                return Err(error());
            }
            pairs.concat()
        } else {
            digits.to_owned()
        };
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| error())?;
        Ok(Self(bytes))
    }
}

/// Accepts exactly the leaf certificate with the pinned fingerprint.
#[derive(Debug)]
pub struct PinnedVerifier {
    /// The only acceptable leaf.
    pinned: Fingerprint,
    /// The provider's signature algorithms, for the handshake signatures.
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    /// A verifier for `pinned`, checking handshake signatures with `algorithms`.
    pub fn new(pinned: Fingerprint, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { pinned, algorithms }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_certificate(end_entity);
        if presented == self.pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::Other(OtherError(Arc::new(PinMismatch {
                pinned: self.pinned,
                presented,
            }))))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_fingerprint_is_the_sha256_of_the_der_bytes_in_lowercase_hex() {
        assert_eq!(Fingerprint::of_certificate(b"hello").to_string(), HELLO);
    }

    #[test]
    fn a_fingerprint_round_trips_through_text() {
        let fingerprint: Fingerprint = HELLO.parse().unwrap();
        assert_eq!(fingerprint.to_string(), HELLO);
    }

    #[test]
    fn openssl_style_upper_case_with_colons_is_accepted() {
        let openssl = "SHA256:2C:F2:4D:BA:5F:B0:A3:0E:26:E8:3B:2A:C5:B9:E2:9E:\
                       1B:16:1E:5C:1F:A7:42:5E:73:04:33:62:93:8B:98:24";
        assert_eq!(openssl.parse::<Fingerprint>().unwrap().to_string(), HELLO);
        let line = "sha256 Fingerprint=2C:F2:4D:BA:5F:B0:A3:0E:26:E8:3B:2A:C5:B9:E2:9E:\
                    1B:16:1E:5C:1F:A7:42:5E:73:04:33:62:93:8B:98:24";
        assert_eq!(line.parse::<Fingerprint>().unwrap().to_string(), HELLO);
    }

    #[test]
    fn text_that_is_not_a_fingerprint_is_refused_by_name() {
        for bad in [
            "",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "sha1:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c",
            "sha256:2cf24dba",
            "sha256:zz f24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b98",
            "sha256:2cf:24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ] {
            let err = bad.parse::<Fingerprint>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("is not a certificate fingerprint"));
        }
    }
}
