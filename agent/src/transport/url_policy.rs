//! Which server URLs the agent may talk to at all.
//!
//! Plain HTTP would hand the agent's credential and every pack to anyone on
//! the path, so it is allowed only where there is no path: to a loopback
//! address (`127.0.0.0/8`, `::1`) or the name `localhost`, e.g. a server on
//! the same machine or a local TLS-terminating proxy. Anything else needs
//! `https://`, or an explicit `--insecure-http` from a user who knows the
//! network is trusted. The check looks at the URL alone and never resolves
//! or connects, so a refused URL causes no traffic.

use std::net::IpAddr;

use reqwest::Url;
use url::Host;

use super::TransportError;

/// The scheme of an accepted server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `https://`: TLS, checked by the configured trust.
    Https,
    /// `http://`: loopback, or allowed with `--insecure-http`.
    Http,
}

/// Accepts `https://` URLs, and `http://` ones to loopback or with
/// `insecure_http`.
///
/// # Errors
///
/// Refuses plain HTTP to any other host, saying why, and URLs with another
/// scheme, without a host, or with a user name or password in them (the
/// agent authenticates with its credential, never with URL userinfo).
pub fn check(url: &Url, insecure_http: bool) -> Result<Scheme, TransportError> {
    let bad = |problem: &str| TransportError::BadUrl {
        url: url.to_string(),
        problem: problem.to_owned(),
    };
    let host = url
        .host()
        .ok_or_else(|| bad("has no host; give one like https://backup.example.com"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "carries a user name or password; leave them out of the URL",
        ));
    }
    match url.scheme() {
        "https" => Ok(Scheme::Https),
        "http" if insecure_http || is_loopback(&host) => Ok(Scheme::Http),
        "http" => Err(TransportError::PlainHttp {
            host: host.to_string(),
        }),
        _ => Err(bad("is neither https:// nor http://")),
    }
}

/// Whether `host` can only be this machine, judged from the URL alone.
pub fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
        }
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(url: &str, insecure_http: bool) -> Result<Scheme, String> {
        check(&Url::parse(url).unwrap(), insecure_http).map_err(|err| err.to_string())
    }

    #[test]
    fn https_is_accepted_anywhere() {
        assert_eq!(checked("https://10.0.0.5:8443", false), Ok(Scheme::Https));
        assert_eq!(
            checked("https://backup.example.com", false),
            Ok(Scheme::Https)
        );
    }

    #[test]
    fn plain_http_to_loopback_is_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST.",
        ] {
            assert_eq!(checked(url, false), Ok(Scheme::Http), "{url}");
        }
    }

    #[test]
    fn plain_http_to_another_host_is_refused_and_says_why() {
        assert_eq!(
            checked("http://10.0.0.5:8080", false),
            Err(
                "refusing to send credentials and backup data over plain HTTP to 10.0.0.5: \
                 use https://, or --insecure-http if the network is trusted"
                    .to_owned()
            )
        );
        for url in [
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "http://mylocalhost",
            "http://0.0.0.0",
        ] {
            assert!(checked(url, false).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn insecure_http_allows_plain_http_to_another_host() {
        assert_eq!(checked("http://10.0.0.5:8080", true), Ok(Scheme::Http));
    }

    #[test]
    fn other_schemes_and_userinfo_are_refused() {
        assert!(checked("ftp://10.0.0.5", true).is_err());
        assert!(checked("https://user:secret@backup.example.com", false).is_err());
    }
}
