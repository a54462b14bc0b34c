//! Settings: built-in defaults, then an optional TOML file, then `STOWAGE_*`
//! environment variables — each layer overriding the one before.
//!
//! Every value is validated once, here, at start; a wrong value stops the
//! server with a message that names the setting where it came from and the
//! problem, e.g. `STOWAGE_LISTEN: "abc" is not a socket address like
//! 127.0.0.1:8080`. Nothing else in the server reads the environment or files.
//!
//! # The file (TOML, `--config FILE`)
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/stowage"
//! database_url = "postgres://stowage:secret@db:5432/stowage"
//! log = "info,stowage_server=debug"
//!
//! [s3]
//! endpoint = "http://minio:9000"
//! bucket = "stowage"
//! region = "us-east-1"
//! access_key = "stowage"
//! secret_key = "…"
//! path_style = true
//! ```
//!
//! Unknown keys are rejected, so a typo fails loudly instead of silently
//! falling back to a default.
//!
//! # The environment
//!
//! `STOWAGE_LISTEN`, `STOWAGE_DATA_DIR`, `STOWAGE_DATABASE_URL`, `STOWAGE_LOG`,
//! `STOWAGE_S3_ENDPOINT`, `STOWAGE_S3_BUCKET`, `STOWAGE_S3_REGION`,
//! `STOWAGE_S3_ACCESS_KEY`, `STOWAGE_S3_SECRET_KEY`, `STOWAGE_S3_PATH_STYLE`.
//!
//! Without any S3 setting objects live on the local filesystem under
//! `<data_dir>/objects`; with some but not all of endpoint, bucket, region,
//! access key and secret key the server refuses to start and lists the missing
//! ones. Without a database URL the database is `<data_dir>/stowage.db`.
//!
//! Secrets (the S3 secret key, and the database URL, which may carry a
//! password) are [`SecretString`]s: `Debug` prints them redacted, and the
//! startup log shows [`DatabaseSettings::redacted_url`].

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Listen address when nothing else is configured: loopback only, so a
/// first run on a laptop exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Data directory when nothing else is configured, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./stowage-data";
/// Log filter when nothing else is configured.
pub const DEFAULT_LOG: &str = "info";
/// File name of the embedded SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "stowage.db";
/// Directory of the local object store inside the data directory.
pub const OBJECTS_DIR_NAME: &str = "objects";

/// Everything the server needs to start, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP listener binds; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Home of the embedded database and local object store; created at start.
    pub data_dir: PathBuf,
    /// Where the relational data lives.
    pub database: DatabaseSettings,
    /// Where the packs and other objects live.
    pub object_store: ObjectStoreSettings,
    /// A `tracing_subscriber::EnvFilter` directive, already checked to parse.
    pub log: String,
}

/// Connection settings of the database.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; secret because it may hold a password.
    pub url: SecretString,
}

/// Which object store to use.
#[derive(Debug, Clone)]
pub enum ObjectStoreSettings {
    /// A directory on the local filesystem.
    Local {
        /// Root directory of the store.
        root: PathBuf,
    },
    /// An S3-compatible service.
    S3(S3Settings),
}

/// Connection settings of an S3-compatible object store, all explicit so the
/// SDK never goes looking for credentials or a region on the network.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Base URL of the service, e.g. `https://s3.eu-central-1.amazonaws.com`.
    pub endpoint: String,
    /// Bucket holding every tenant's objects under per-tenant prefixes.
    pub bucket: String,
    /// Region used for request signing.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key, redacted in `Debug`.
    pub secret_key: SecretString,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint`;
    /// most self-hosted stores (MinIO, s3s) need this.
    pub path_style: bool,
}

/// A setting is wrong; the message names the setting and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value does not parse or is out of range.
    #[error("{setting}: {problem}")]
    Invalid {
        /// Where the value came from, e.g. `STOWAGE_LISTEN` or `listen in server.toml`.
        setting: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Some S3 settings are given but not all of them.
    #[error(
        "S3 object store is partly configured: {given} given but {missing} missing; \
         set all of them or none (none stores objects under the data directory)"
    )]
    PartialS3 {
        /// Names of the settings that were given.
        given: String,
        /// Names of the settings that are missing.
        missing: String,
    },
    /// The configuration file cannot be read or parsed.
    #[error("configuration file {path:?}: {problem}")]
    File {
        /// Path of the file.
        path: PathBuf,
        /// Why it cannot be used.
        problem: String,
    },
}

/// The shape of the TOML file; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    log: Option<String>,
    s3: Option<FileS3Settings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileS3Settings {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    path_style: Option<bool>,
}

/// A raw value and the name of the place it came from, for error messages.
struct Sourced {
    value: String,
    setting: String,
}

/// Merges the layers for one key: the environment wins over the file.
struct Layers<'a> {
    file_name: String,
    env: &'a HashMap<String, String>,
}

impl Layers<'_> {
    fn get(&self, env_key: &str, file_key: &str, file_value: Option<String>) -> Option<Sourced> {
        if let Some(value) = self.env.get(env_key) {
            return Some(Sourced {
                value: value.clone(),
                setting: env_key.to_owned(),
            });
        }
        file_value.map(|value| Sourced {
            value,
            setting: format!("{file_key} in {}", self.file_name),
        })
    }
}

impl Settings {
    /// Loads settings from the optional TOML file and the process environment.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or parsed, or a value is invalid.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(key, _)| key.starts_with("STOWAGE_"))
            .collect();
        Self::from_sources(config_file, &env)
    }

    /// Builds settings from an optional TOML file and the given environment
    /// (only `STOWAGE_*` keys are looked at). Tests pass their own map
    /// instead of changing the process environment.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or parsed, or a value is invalid.
    pub fn from_sources(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let (file, file_name) = match config_file {
            Some(path) => (read_file(path)?, path.display().to_string()),
            None => (FileSettings::default(), "the configuration file".to_owned()),
        };
        let layers = Layers { file_name, env };
        let s3_file = file.s3.unwrap_or_default();

        let listen = layers
            .get("STOWAGE_LISTEN", "listen", file.listen)
            .map_or_else(|| Ok(default_listen()), |v| parse_listen(&v))?;
        let data_dir = layers
            .get("STOWAGE_DATA_DIR", "data_dir", file.data_dir)
            .map_or_else(|| Ok(PathBuf::from(DEFAULT_DATA_DIR)), |v| parse_dir(&v))?;
        let database = match layers.get("STOWAGE_DATABASE_URL", "database_url", file.database_url) {
            Some(v) => parse_database_url(&v)?,
            None => DatabaseSettings::sqlite_in(&data_dir),
        };
        let log = match layers.get("STOWAGE_LOG", "log", file.log) {
            Some(v) => parse_log(&v)?,
            None => DEFAULT_LOG.to_owned(),
        };
        let s3 = S3Layers {
            endpoint: layers.get("STOWAGE_S3_ENDPOINT", "s3.endpoint", s3_file.endpoint),
            bucket: layers.get("STOWAGE_S3_BUCKET", "s3.bucket", s3_file.bucket),
            region: layers.get("STOWAGE_S3_REGION", "s3.region", s3_file.region),
            access_key: layers.get("STOWAGE_S3_ACCESS_KEY", "s3.access_key", s3_file.access_key),
            secret_key: layers.get("STOWAGE_S3_SECRET_KEY", "s3.secret_key", s3_file.secret_key),
            path_style: layers.get(
                "STOWAGE_S3_PATH_STYLE",
                "s3.path_style",
                s3_file.path_style.map(|b| b.to_string()),
            ),
        };
        let object_store = s3.resolve(&data_dir)?;

        Ok(Self {
            listen,
            data_dir,
            database,
            object_store,
            log,
        })
    }
}

impl DatabaseSettings {
    /// The embedded default: a SQLite file in the data directory.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        let path = data_dir.join(SQLITE_FILE_NAME);
        Self {
            url: SecretString::from(format!("sqlite://{}", path.display())),
        }
    }

    /// The URL with any password replaced by `***`, fit for logs.
    pub fn redacted_url(&self) -> String {
        redact_url_password(self.url.expose_secret())
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.redacted_url())
            .finish()
    }
}

impl ObjectStoreSettings {
    /// One line for the startup log; never contains a secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Local { root } => format!("local filesystem at {}", root.display()),
            Self::S3(s3) => format!("S3 bucket {:?} at {}", s3.bucket, s3.endpoint),
        }
    }
}

/// The S3 values from all layers, before checking they are complete.
struct S3Layers {
    endpoint: Option<Sourced>,
    bucket: Option<Sourced>,
    region: Option<Sourced>,
    access_key: Option<Sourced>,
    secret_key: Option<Sourced>,
    path_style: Option<Sourced>,
}

impl S3Layers {
    fn resolve(self, data_dir: &Path) -> Result<ObjectStoreSettings, ConfigError> {
        let required = [
            ("STOWAGE_S3_ENDPOINT", &self.endpoint),
            ("STOWAGE_S3_BUCKET", &self.bucket),
            ("STOWAGE_S3_REGION", &self.region),
            ("STOWAGE_S3_ACCESS_KEY", &self.access_key),
            ("STOWAGE_S3_SECRET_KEY", &self.secret_key),
        ];
        let (given, missing): (Vec<_>, Vec<_>) = required.iter().partition(|(_, v)| v.is_some());
        if given.is_empty() {
            if let Some(path_style) = &self.path_style {
                return Err(invalid(
                    path_style,
                    "is set but no other S3 setting is; the local object store has no path style",
                ));
            }
            return Ok(ObjectStoreSettings::Local {
                root: data_dir.join(OBJECTS_DIR_NAME),
            });
        }
        if !missing.is_empty() {
            let names = |list: &[&(&str, &Option<Sourced>)]| {
                list.iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(ConfigError::PartialS3 {
                given: names(&given),
                missing: names(&missing),
            });
        }
        let [endpoint, bucket, region, access_key, secret_key] = [
            self.endpoint,
            self.bucket,
            self.region,
            self.access_key,
            self.secret_key,
        ]
        .map(|v| v.expect("all required S3 settings are present"));
        Ok(ObjectStoreSettings::S3(S3Settings {
            endpoint: parse_endpoint(&endpoint)?,
            bucket: parse_bucket(&bucket)?,
            region: non_empty(&region)?,
            access_key: non_empty(&access_key)?,
            secret_key: SecretString::from(non_empty(&secret_key)?),
            path_style: self.path_style.map_or(Ok(false), |v| parse_bool(&v))?,
        }))
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::File {
        path: path.to_owned(),
        problem: format!("cannot be read - {err}"),
    })?;
    toml::from_str(&text).map_err(|err| ConfigError::File {
        path: path.to_owned(),
        problem: format!(
            "is not valid TOML for stowage-server - {}",
            err.to_string().trim_end()
        ),
    })
}

fn invalid(source: &Sourced, problem: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        setting: source.setting.clone(),
        problem: problem.to_string(),
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("the default listen address parses")
}

fn parse_listen(v: &Sourced) -> Result<SocketAddr, ConfigError> {
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

fn parse_dir(v: &Sourced) -> Result<PathBuf, ConfigError> {
    if v.value.trim().is_empty() {
        return Err(invalid(v, "is empty; give a directory path"));
    }
    Ok(PathBuf::from(&v.value))
}

fn parse_database_url(v: &Sourced) -> Result<DatabaseSettings, ConfigError> {
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

fn parse_log(v: &Sourced) -> Result<String, ConfigError> {
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

fn parse_endpoint(v: &Sourced) -> Result<String, ConfigError> {
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
fn parse_bucket(v: &Sourced) -> Result<String, ConfigError> {
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

fn non_empty(v: &Sourced) -> Result<String, ConfigError> {
    if v.value.trim().is_empty() {
        Err(invalid(v, "is empty"))
    } else {
        Ok(v.value.trim().to_owned())
    }
}

fn parse_bool(v: &Sourced) -> Result<bool, ConfigError> {
    match v.value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(v, format!("{:?} is not true or false", v.value))),
    }
}

/// Replaces the password of `scheme://user:password@host/…` with `***`.
fn redact_url_password(url: &str) -> String {
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
