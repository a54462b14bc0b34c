//! Transport security end to end: the real server serving HTTPS from a
//! certificate generated here, reached through the agent's real client.
//!
//! Each test starts `stowage-server` on port 0 (embedded SQLite and local
//! store in a temp dir) from settings given as `STOWAGE_*` values, exactly as
//! an operator would configure it, and talks to `/healthz`.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use stowage_agent::transport::{
    Fingerprint, TransportConfig, TransportError, Trust, Url, build_client, fetch_fingerprint,
};
use stowage_server::configuration::Settings;
use stowage_server::startup::Application;
use tempfile::TempDir;

/// A certificate and key as PEM files, and the certificate's DER.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

/// A running server; its files are removed when the test ends.
struct Server {
    port: u16,
    _dir: TempDir,
}

/// Writes a self-signed certificate for 127.0.0.1 and localhost.
fn self_signed(dir: &Path) -> CertFiles {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    write_pair(dir, "server", &cert.pem(), &key.serialize_pem(), cert.der())
}

/// Writes a CA certificate and a server certificate for 127.0.0.1 signed by
/// it; returns the CA certificate's path and the server's files.
fn ca_signed(dir: &Path) -> (PathBuf, CertFiles) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Stowage test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();

    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let files = write_pair(dir, "server", &cert.pem(), &key.serialize_pem(), cert.der());
    (ca_path, files)
}

fn write_pair(dir: &Path, name: &str, cert_pem: &str, key_pem: &str, der: &[u8]) -> CertFiles {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    CertFiles {
        cert,
        key,
        der: der.to_vec(),
    }
}

/// Starts the real server on `listen` (port 0), with HTTPS when `tls` is given.
async fn start_server(listen: &str, tls: Option<&CertFiles>, dir: TempDir) -> Server {
    let data_dir = dir.path().join("data");
    let mut env: HashMap<String, String> = HashMap::from([
        ("STOWAGE_LISTEN".to_owned(), listen.to_owned()),
        (
            "STOWAGE_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
    ]);
    if let Some(tls) = tls {
        env.insert(
            "STOWAGE_TLS_CERT".to_owned(),
            tls.cert.display().to_string(),
        );
        env.insert("STOWAGE_TLS_KEY".to_owned(), tls.key.display().to_string());
    }
    let settings = Settings::from_sources(None, &env).expect("the settings are valid");
    let app = Application::build(settings)
        .await
        .expect("the server builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    Server { port, _dir: dir }
}

/// A server serving HTTPS with a fresh self-signed certificate.
async fn https_server() -> (Server, CertFiles) {
    let dir = tempfile::tempdir().unwrap();
    let cert = self_signed(dir.path());
    let server = start_server("127.0.0.1:0", Some(&cert), dir).await;
    (server, cert)
}

fn config(url: &str, trust: Trust, insecure_http: bool) -> TransportConfig {
    TransportConfig {
        server: Url::parse(url).unwrap(),
        trust,
        insecure_http,
    }
}

/// GET `/healthz` through the agent's client; the status, or the error with
/// its whole cause chain.
async fn healthz(config: &TransportConfig) -> Result<u16, String> {
    let client = build_client(config).map_err(|err| err.to_string())?;
    let url = config.server.join("/healthz").unwrap();
    match client.get(url).send().await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(err) => Err(chain(&err)),
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_client_pinned_to_the_servers_fingerprint_gets_healthz_over_https() {
    // Arrange
    let (server, cert) = https_server().await;
    let url = format!("https://127.0.0.1:{}", server.port);

    // Act: first contact reads the fingerprint, later connections pin it.
    let presented = fetch_fingerprint(&Url::parse(&url).unwrap())
        .await
        .expect("the server presents a certificate");
    let status = healthz(&config(&url, Trust::Pinned(presented), false)).await;

    // Assert
    assert_eq!(presented, Fingerprint::of_certificate(&cert.der));
    assert_eq!(status, Ok(200));
}

#[tokio::test]
async fn a_client_pinned_to_another_fingerprint_is_refused_and_told_both() {
    // Arrange
    let (server, cert) = https_server().await;
    let url = format!("https://127.0.0.1:{}", server.port);
    let other_dir = tempfile::tempdir().unwrap();
    let other = Fingerprint::of_certificate(&self_signed(other_dir.path()).der);

    // Act
    let result = healthz(&config(&url, Trust::Pinned(other), false)).await;

    // Assert
    let err = result.expect_err("a certificate other than the pinned one was accepted");
    let presented = Fingerprint::of_certificate(&cert.der);
    assert!(
        err.contains(&format!(
            "the server presented the certificate {presented}, but {other} is pinned"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_trusting_the_ca_that_signed_the_servers_certificate_connects() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert) = ca_signed(dir.path());
    let server = start_server("127.0.0.1:0", Some(&cert), dir).await;
    let url = format!("https://127.0.0.1:{}", server.port);

    // Act
    let status = healthz(&config(&url, Trust::CaFile(ca), false)).await;

    // Assert
    assert_eq!(status, Ok(200));
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (_, cert) = ca_signed(dir.path());
    let server = start_server("127.0.0.1:0", Some(&cert), dir).await;
    let other_dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = ca_signed(other_dir.path());
    let url = format!("https://127.0.0.1:{}", server.port);

    // Act
    let result = healthz(&config(&url, Trust::CaFile(other_ca), false)).await;

    // Assert
    let err = result.expect_err("a certificate from an untrusted CA was accepted");
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn a_client_trusting_the_system_roots_refuses_a_self_signed_certificate() {
    // Arrange
    let (server, _cert) = https_server().await;
    let url = format!("https://127.0.0.1:{}", server.port);

    // Act
    let result = healthz(&config(&url, Trust::SystemRoots, false)).await;

    // Assert
    let err = result.expect_err("a self-signed certificate was accepted by the system roots");
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_address_is_refused_before_connecting() {
    // Arrange: TEST-NET-1; nothing answers there, so a connection attempt
    // would take the whole connect timeout instead of failing at once.
    let config = config("http://192.0.2.1:8080", Trust::SystemRoots, false);
    let started = Instant::now();

    // Act
    let result = build_client(&config);

    // Assert
    let err = result.expect_err("plain HTTP to another machine was allowed");
    assert!(matches!(err, TransportError::PlainHttp { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "refusing to send credentials and backup data over plain HTTP to 192.0.2.1: \
         use https://, or --insecure-http if the network is trusted"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn plain_http_to_loopback_is_allowed() {
    // Arrange
    let server = start_server("127.0.0.1:0", None, tempfile::tempdir().unwrap()).await;

    // Act
    let status = healthz(&config(
        &format!("http://127.0.0.1:{}", server.port),
        Trust::SystemRoots,
        false,
    ))
    .await;

    // Assert
    assert_eq!(status, Ok(200));
}

#[tokio::test]
async fn insecure_http_allows_plain_http_to_a_non_loopback_address() {
    // Arrange: the server on every interface, reached through this
    // machine's own non-loopback address (the one a route to TEST-NET-1
    // would leave from; finding it sends nothing).
    let server = start_server("0.0.0.0:0", None, tempfile::tempdir().unwrap()).await;
    let Some(own) = own_non_loopback_address() else {
        eprintln!("note: no non-loopback address; only the policy is checked");
        let allowed = config("http://192.0.2.1:8080", Trust::SystemRoots, true);
        assert!(build_client(&allowed).is_ok());
        return;
    };
    let url = format!("http://{own}:{}", server.port);

    // Act
    let refused = healthz(&config(&url, Trust::SystemRoots, false)).await;
    let allowed = healthz(&config(&url, Trust::SystemRoots, true)).await;

    // Assert
    assert!(
        refused.is_err_and(|err| err.starts_with("refusing to send credentials")),
        "plain HTTP to {own} was allowed without --insecure-http"
    );
    assert_eq!(allowed, Ok(200));
}

fn own_non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
