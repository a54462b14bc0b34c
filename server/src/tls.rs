//! HTTPS served by the server itself: a PEM certificate chain and private key
//! become a rustls [`ServerConfig`].
//!
//! The server can terminate TLS itself (`STOWAGE_TLS_CERT` and
//! `STOWAGE_TLS_KEY`) so a small self-hosted set-up needs no reverse proxy;
//! behind one it serves plain HTTP and the proxy holds the certificate (see
//! the README). Both files are read and checked once, at start, so a wrong
//! path, a file that is not PEM or a key that does not belong to the
//! certificate stops the server with a message naming the file, instead of
//! failing every handshake later.
//!
//! The crypto provider is aws-lc-rs, the one sqlx and the S3 client already
//! use; it is passed explicitly so no process-wide default has to be
//! installed, and ring is never compiled in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A checked certificate chain and key, ready to serve HTTPS.
#[derive(Clone)]
pub struct TlsSettings {
    /// Where the chain came from, for the startup log.
    cert_path: PathBuf,
    /// Where the key came from, for the startup log.
    key_path: PathBuf,
    /// Built once at start; cloned into the listener.
    config: Arc<ServerConfig>,
}

/// A certificate or key file cannot be used; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file is unreadable, not PEM or not a certificate.
    #[error("the certificate file {path:?} {problem}")]
    Certificate {
        /// Path of the file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The private key file is unreadable, not PEM or not a usable key.
    #[error("the private key file {path:?} {problem}")]
    Key {
        /// Path of the file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Both files are fine on their own but the key is not the certificate's.
    #[error(
        "the private key file {key:?} does not belong to the certificate in {cert:?} - {problem}"
    )]
    Mismatch {
        /// Path of the certificate chain file.
        cert: PathBuf,
        /// Path of the private key file.
        key: PathBuf,
        /// What rustls found.
        problem: String,
    },
}

impl TlsSettings {
    /// Reads the PEM certificate chain (leaf first, then intermediates) and
    /// the PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) and builds the
    /// server's TLS configuration from them.
    ///
    /// # Errors
    ///
    /// Fails, naming the file, when a file cannot be read, holds no
    /// certificate or key, is not valid PEM, or when the key is not the
    /// certificate's.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let cert_problem = |problem: String| TlsError::Certificate {
            path: cert_path.to_owned(),
            problem,
        };
        let key_problem = |problem: String| TlsError::Key {
            path: key_path.to_owned(),
            problem,
        };
        let chain = read_chain(cert_path).map_err(cert_problem)?;
        let key = read_key(key_path).map_err(key_problem)?;

        let provider = Arc::new(aws_lc_rs::default_provider());
        provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|err| key_problem(format!("holds a key rustls cannot use - {err}")))?;
        let config = server_config(provider, chain, key).map_err(|err| match err {
            rustls::Error::InvalidCertificate(why) => {
                cert_problem(format!("holds an invalid certificate - {why:?}"))
            }
            other => TlsError::Mismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
                problem: other.to_string(),
            },
        })?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            config: Arc::new(config),
        })
    }

    /// The rustls configuration the listener serves with.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig::clone(&self.config)
    }

    /// Path of the certificate chain file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Path of the private key file.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
}

/// Paths only: the configuration holds the private key.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("is not valid PEM - {err}"))?;
    if chain.is_empty() {
        return Err(
            "holds no PEM certificate (a block starting -----BEGIN CERTIFICATE-----)".to_owned(),
        );
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "holds no PEM private key (a block starting -----BEGIN PRIVATE KEY-----, \
             -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)"
                .to_owned()
        }
        other => format!("is not valid PEM - {other}"),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|err| format!("cannot be read - {err}"))
}

fn server_config(
    provider: Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
}
