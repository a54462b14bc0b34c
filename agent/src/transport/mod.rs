//! The connection to the server: one HTTP client, built here, for everything
//! the agent sends.
//!
//! The agent carries its credential and the tenant's backup data, so how it
//! reaches the server is a security decision made once, in this module,
//! rather than by whichever request happens to go first:
//!
//! - **Plain HTTP is refused** unless the server is on this machine
//!   (`127.0.0.0/8`, `::1`, `localhost`) or the user says the network is
//!   trusted (`--insecure-http`). The refusal happens in [`build_client`],
//!   before any connection exists, and says why ([`url_policy`]).
//! - **Who the server is** is decided by [`Trust`]: the system's root
//!   certificates (a server with a public certificate), a CA file
//!   (`--ca-cert`, a private CA), or the SHA-256 fingerprint of the server's
//!   own certificate (`--pin-fingerprint`, a self-signed set-up). A pinned
//!   connection accepts exactly that certificate and names both fingerprints
//!   when the server presents another ([`pin`]).
//! - **Trust on first use is explicit**: `stowage enroll` reads the
//!   fingerprint the server presents with [`fetch_fingerprint`], prints it
//!   for the user to compare, and records it; it is never accepted silently.
//!
//! TLS runs on rustls with the aws-lc-rs provider, passed explicitly
//! everywhere; redirects are not followed, so a misconfigured proxy cannot
//! move the credential to another host or downgrade to plain HTTP.
//!
//! # Fingerprint format
//!
//! `sha256:` followed by the 64 lowercase hex digits of the SHA-256 of the
//! leaf certificate's DER encoding, e.g.
//! `sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`.
//! Input may also be upper case and may separate the bytes with `:`; the
//! line `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints
//! (`sha256 Fingerprint=2C:F2:…`) is accepted as it is. Output is always the
//! canonical form.

pub mod pin;
mod probe;
mod trust;
pub mod url_policy;

use std::path::PathBuf;
use std::time::Duration;

pub use pin::{Fingerprint, FingerprintParseError, PinMismatch};
pub use probe::fetch_fingerprint;
pub use reqwest::Url;

/// How long a TCP connection plus TLS handshake may take before the agent
/// gives up on the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server is and how to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Base URL of the server, e.g. `https://backup.example.com`.
    pub server: Url,
    /// How the server's certificate is checked.
    pub trust: Trust,
    /// Allow plain HTTP to a host that is not loopback (`--insecure-http`).
    pub insecure_http: bool,
}

/// How the agent decides that the certificate it is shown is the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's root certificates (on Debian, the
    /// `ca-certificates` bundle), with the usual name and expiry checks.
    SystemRoots,
    /// Only the CA certificates in this PEM file (`--ca-cert FILE`), with the
    /// usual name and expiry checks.
    CaFile(PathBuf),
    /// Exactly the leaf certificate with this fingerprint
    /// (`--pin-fingerprint`); no CA, name or expiry check, since a pinned
    /// self-signed certificate has no CA and is identified by its key.
    Pinned(Fingerprint),
}

/// The client cannot be built or the server cannot be reached safely.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL names plain HTTP to another machine without `--insecure-http`.
    #[error(
        "refusing to send credentials and backup data over plain HTTP to {host}: \
         use https://, or --insecure-http if the network is trusted"
    )]
    PlainHttp {
        /// The host the URL names.
        host: String,
    },
    /// The URL is not something the agent can talk to.
    #[error("the server URL {url} {problem}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The `--ca-cert` file cannot be used.
    #[error("the CA certificate file {path:?} {problem}")]
    CaFile {
        /// Path of the file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The system root certificates cannot be used.
    #[error(
        "unable to use the system's root certificates - {0}; install them (Debian: \
         ca-certificates), or pass --ca-cert FILE or --pin-fingerprint"
    )]
    SystemRoots(String),
    /// The server cannot be reached or the TLS handshake failed.
    #[error("unable to connect to {server} - {problem}")]
    Connect {
        /// `host:port` of the server.
        server: String,
        /// Why.
        problem: String,
    },
    /// reqwest refused the configuration.
    #[error("unable to build the HTTP client - {0}")]
    Client(#[source] reqwest::Error),
}

/// Builds the HTTP client the agent uses for every request to the server
/// named in `config`.
///
/// # Errors
///
/// Fails before any connection is attempted when the URL is plain HTTP to a
/// host that is not loopback without `insecure_http`, when the URL has no
/// host or an unknown scheme, or when the trust material cannot be loaded.
pub fn build_client(config: &TransportConfig) -> Result<reqwest::Client, TransportError> {
    let scheme = url_policy::check(&config.server, config.insecure_http)?;
    let tls = trust::client_config(&config.trust)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .https_only(scheme == url_policy::Scheme::Https)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("stowage-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(TransportError::Client)
}
