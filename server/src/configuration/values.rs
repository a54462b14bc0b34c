//! Parsers for single setting values; each error names the setting and says
//! what a good value looks like.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use secrecy::SecretString;
use tracing_subscriber::EnvFilter;

use super::layers::Sourced;
use super::{ConfigError, DEFAULT_LISTEN, DatabaseSettings};

pub(super) fn invalid(source: &Sourced, problem: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        setting: source.setting.clone(),
        problem: problem.to_string(),
    }
}

pub(super) fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("the default listen address parses")
}

pub(super) fn parse_listen(v: &Sourced) -> Result<SocketAddr, ConfigError> {
    v.value.trim().parse().map_err(|_| {
        invalid(
            v,
            format!(
                "{:?} is not a socket address like {DEFAULT_LISTEN}",
                v.value
            ),
        )
    })
}

pub(super) fn parse_dir(v: &Sourced) -> Result<PathBuf, ConfigError> {
    if v.value.trim().is_empty() {
        return Err(invalid(v, "is empty; give a directory path"));
    }
    Ok(PathBuf::from(&v.value))
}

pub(super) fn parse_file(v: &Sourced) -> Result<PathBuf, ConfigError> {
    if v.value.trim().is_empty() {
        return Err(invalid(v, "is empty; give a file path"));
    }
    Ok(PathBuf::from(&v.value))
}

pub(super) fn parse_database_url(v: &Sourced) -> Result<DatabaseSettings, ConfigError> {
    let url = v.value.trim();
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|scheme| url.starts_with(scheme)) {
        return Err(invalid(
            v,
            format!(
                "{:?} is not a sqlite://PATH or postgres://USER@HOST/DB URL",
                redact_url_password(url)
            ),
        ));
    }
    Ok(DatabaseSettings {
        url: SecretString::from(url.to_owned()),
    })
}

pub(super) fn parse_log(v: &Sourced) -> Result<String, ConfigError> {
    EnvFilter::try_new(&v.value)
        .map(|_| v.value.clone())
        .map_err(|err| {
            invalid(
                v,
                format!(
                    "{:?} is not a log filter like \"info,stowage_server=debug\" - {err}",
                    v.value
                ),
            )
        })
}

pub(super) fn parse_endpoint(v: &Sourced) -> Result<String, ConfigError> {
    let url = v.value.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(invalid(
            v,
            format!("{url:?} is not an http:// or https:// URL like http://127.0.0.1:9000"),
        )),
    }
}

/// S3 bucket naming rules: 3–63 lowercase letters, digits, dots and hyphens,
/// starting and ending with a letter or digit.
pub(super) fn parse_bucket(v: &Sourced) -> Result<String, ConfigError> {
    let name = v.value.trim();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && name.chars().all(allowed)
        && edge(name.chars().next())
        && edge(name.chars().last())
    {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            v,
            format!("{name:?} is not a bucket name (3-63 lowercase letters, digits, '.' and '-')"),
        ))
    }
}

pub(super) fn non_empty(v: &Sourced) -> Result<String, ConfigError> {
    if v.value.trim().is_empty() {
        Err(invalid(v, "is empty"))
    } else {
        Ok(v.value.trim().to_owned())
    }
}

/// A request count for a rate limit: a whole number from 1 to 1,000,000.
pub(super) fn parse_count(v: &Sourced) -> Result<NonZeroU32, ConfigError> {
    v.value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            invalid(
                v,
                format!(
                    "{:?} is not a number of requests from 1 to 1000000",
                    v.value
                ),
            )
        })
}

pub(super) fn parse_bool(v: &Sourced) -> Result<bool, ConfigError> {
    match v.value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(v, format!("{:?} is not true or false", v.value))),
    }
}

/// Replaces the password of `scheme://user:password@host/…` with `***`.
pub(super) fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &authority[..colon],
        &url[scheme_end + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::layers::Sourced;

    #[test]
    fn a_password_in_a_postgres_url_is_redacted() {
        assert_eq!(
            redact_url_password("postgres://app:hunter2@db:5432/stowage?sslmode=require"),
            "postgres://app:***@db:5432/stowage?sslmode=require"
        );
    }

    #[test]
    fn urls_without_a_password_are_left_alone() {
        for url in [
            "postgres://app@db/stowage",
            "sqlite://./data/stowage.db",
            "sqlite::memory:",
        ] {
            assert_eq!(redact_url_password(url), url);
        }
    }

    #[test]
    fn bucket_names_follow_the_s3_rules() {
        let named = |value: &str| Sourced {
            value: value.to_owned(),
            setting: "STOWAGE_S3_BUCKET".to_owned(),
        };
        assert!(parse_bucket(&named("stowage-backups.eu")).is_ok());
        for bad in ["ab", "Upper", "-leading", "trailing-", "under_score"] {
            assert!(parse_bucket(&named(bad)).is_err(), "{bad} was accepted");
        }
    }
}
