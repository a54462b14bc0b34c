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

mod layers;
mod values;

use layers::{FileSettings, Layers, S3Layers, read_file};
use values::{
    default_listen, parse_database_url, parse_dir, parse_listen, parse_log, redact_url_password,
};

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
