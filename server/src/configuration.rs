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
//! tls_cert = "/etc/stowage/fullchain.pem"
//! tls_key = "/etc/stowage/privkey.pem"
//!
//! [rate_limits]             # requests per second, and bursts on top
//! agent_per_second = 250    # per agent credential
//! agent_burst = 500
//! address_per_second = 5    # per client address, for requests without a
//! address_burst = 20        # valid credential (enrollment, failed logins)
//!
//! [agents]
//! offline_after = "3m"      # an agent silent this long shows as offline
//!
//! [jobs]                    # see the `jobs` module below
//! lease = "10m"
//!
//! [scheduler]
//! tick = "5s"
//! clock_speed = 1           # a testing aid; leave it at 1
//!
//! [retention]               # see the `passes` module below
//! interval = "1h"
//!
//! [gc]
//! interval = "24h"
//! orphan_min_age = "1h"
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
//! `STOWAGE_S3_ACCESS_KEY`, `STOWAGE_S3_SECRET_KEY`, `STOWAGE_S3_PATH_STYLE`,
//! `STOWAGE_TLS_CERT`, `STOWAGE_TLS_KEY`, `STOWAGE_AGENT_RATE_LIMIT`,
//! `STOWAGE_AGENT_RATE_BURST`, `STOWAGE_ADDRESS_RATE_LIMIT`,
//! `STOWAGE_ADDRESS_RATE_BURST`, `STOWAGE_AGENT_OFFLINE_AFTER`, `STOWAGE_JOB_LEASE`,
//! `STOWAGE_SCHEDULER_TICK`, `STOWAGE_SCHEDULER_CLOCK_SPEED`,
//! `STOWAGE_SCHEDULER_CLOCK_ORIGIN`, `STOWAGE_RETENTION_INTERVAL`,
//! `STOWAGE_GC_INTERVAL`, `STOWAGE_GC_ORPHAN_MIN_AGE`.
//!
//! With a TLS certificate chain and key (both PEM) the server serves HTTPS
//! itself; with neither it serves plain HTTP (for loopback, or behind a
//! TLS-terminating reverse proxy); with only one of them it refuses to start.
//! Both files are read and checked here (see [`crate::tls`]).
//!
//! Without any S3 setting objects live on the local filesystem under
//! `<data_dir>/objects`; with some but not all of endpoint, bucket, region,
//! access key and secret key the server refuses to start and lists the missing
//! ones. When S3 is configured but neither key is, the keys come from the
//! standard `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` variables
//! ([`AWS_CREDENTIAL_VARS`]). Without a database URL the database is
//! `<data_dir>/stowage.db`.
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
    /// The certificate and key to serve HTTPS with; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Request budgets per agent credential and per client address.
    pub rate_limits: RateLimitSettings,
    /// How agents' presence is judged.
    pub agents: AgentSettings,
    /// How long a claim keeps a job.
    pub jobs: JobSettings,
    /// The scheduler's tick and clock.
    pub scheduler: SchedulerSettings,
    /// How often each instance applies the plans' retention policies.
    pub retention: RetentionSettings,
    /// How often each tenant's garbage is collected, and the orphan age.
    pub gc: GcSettings,
}

/// How agents' presence is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentSettings {
    /// An agent silent for longer is offline. A daemon claims at least
    /// every 30 s and is marked seen at most once a minute, so this must be
    /// well above a minute.
    pub offline_after: std::time::Duration,
}

/// Default [`AgentSettings::offline_after`].
pub const DEFAULT_OFFLINE_AFTER: std::time::Duration = std::time::Duration::from_mins(3);

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
    /// A TLS certificate is given without its key, or a key without its certificate.
    #[error(
        "TLS is half configured: {given} is set but {missing} is not; \
         set both to serve HTTPS, or neither to serve plain HTTP"
    )]
    PartialTls {
        /// The setting that was given, e.g. `STOWAGE_TLS_CERT`.
        given: String,
        /// The one that is missing.
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

mod jobs;
mod layers;
mod passes;
mod values;

pub use jobs::{DEFAULT_LEASE, DEFAULT_TICK, JobSettings, MAX_CLOCK_SPEED, SchedulerSettings};
pub use passes::{
    DEFAULT_GC_INTERVAL, DEFAULT_RETENTION_INTERVAL, GcSettings, MIN_ORPHAN_AGE, RetentionSettings,
};

/// The standard AWS variables read when the S3 store is configured without
/// `STOWAGE_S3_ACCESS_KEY`/`STOWAGE_S3_SECRET_KEY`. Only static keys are
/// supported; `AWS_SESSION_TOKEN` is read only to refuse temporary
/// credentials clearly. Profiles and the instance-metadata service are not
/// consulted (that would need the aws-config crate and network probes).
pub const AWS_CREDENTIAL_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

use crate::rate_limit::{Budget, RateLimitSettings};
use crate::tls::TlsSettings;
use layers::{FileSettings, Layers, S3Layers, Sourced, TlsLayers, read_file};
use values::{
    default_listen, parse_count, parse_database_url, parse_dir, parse_listen, parse_log,
    redact_url_password,
};

impl Settings {
    /// Loads settings from the optional TOML file and the process environment.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or parsed, or a value is invalid.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(key, _)| {
                key.starts_with("STOWAGE_") || AWS_CREDENTIAL_VARS.contains(&key.as_str())
            })
            .collect();
        Self::from_sources(config_file, &env)
    }

    /// Builds settings from an optional TOML file and the given environment
    /// (only `STOWAGE_*` keys and the [`AWS_CREDENTIAL_VARS`] are looked at). Tests pass their own map
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
            aws_access_key: layers.get("AWS_ACCESS_KEY_ID", "", None),
            aws_secret_key: layers.get("AWS_SECRET_ACCESS_KEY", "", None),
            aws_session_token: layers.get("AWS_SESSION_TOKEN", "", None),
            path_style: layers.get(
                "STOWAGE_S3_PATH_STYLE",
                "s3.path_style",
                s3_file.path_style.map(|b| b.to_string()),
            ),
        };
        let object_store = s3.resolve(&data_dir)?;
        let tls = TlsLayers {
            cert: layers.get("STOWAGE_TLS_CERT", "tls_cert", file.tls_cert),
            key: layers.get("STOWAGE_TLS_KEY", "tls_key", file.tls_key),
        }
        .resolve()?;
        let limits_file = file.rate_limits.unwrap_or_default();
        let budget = |per_second: Option<Sourced>, burst: Option<Sourced>, default: Budget| {
            Ok::<_, ConfigError>(Budget {
                per_second: per_second.map_or(Ok(default.per_second), |v| parse_count(&v))?,
                burst: burst.map_or(Ok(default.burst), |v| parse_count(&v))?,
            })
        };
        let defaults = RateLimitSettings::default();
        let rate_limits = RateLimitSettings {
            per_agent: budget(
                layers.get(
                    "STOWAGE_AGENT_RATE_LIMIT",
                    "rate_limits.agent_per_second",
                    limits_file.agent_per_second.map(|n| n.to_string()),
                ),
                layers.get(
                    "STOWAGE_AGENT_RATE_BURST",
                    "rate_limits.agent_burst",
                    limits_file.agent_burst.map(|n| n.to_string()),
                ),
                defaults.per_agent,
            )?,
            per_address: budget(
                layers.get(
                    "STOWAGE_ADDRESS_RATE_LIMIT",
                    "rate_limits.address_per_second",
                    limits_file.address_per_second.map(|n| n.to_string()),
                ),
                layers.get(
                    "STOWAGE_ADDRESS_RATE_BURST",
                    "rate_limits.address_burst",
                    limits_file.address_burst.map(|n| n.to_string()),
                ),
                defaults.per_address,
            )?,
        };

        let agents = jobs::agent_settings(&layers, file.agents)?;
        let jobs = jobs::job_settings(&layers, file.jobs)?;
        let scheduler = jobs::scheduler_settings(&layers, file.scheduler)?;
        let retention = passes::retention_settings(&layers, file.retention)?;
        let gc = passes::gc_settings(&layers, file.gc)?;

        Ok(Self {
            listen,
            data_dir,
            database,
            object_store,
            log,
            tls,
            rate_limits,
            agents,
            jobs,
            scheduler,
            retention,
            gc,
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
