//! The repository config: parameters fixed once per tenant.
//!
//! The first agent of a tenant writes this JSON to the server; every later
//! backup must use the same parameters, or dedup silently stops working
//! (different chunk boundaries, different packing). Agents therefore parse
//! the stored config and call [`RepoConfig::ensure_same`] before backing up.
//!
//! ```json
//! {"format":"stowage-repo","version":1,
//!  "chunker":{"algorithm":"fastcdc-v2020","min_size":524288,"avg_size":1048576,
//!             "max_size":8388608,"normalization":1,"seeded":true},
//!  "pack_target_size":16777216,"zstd_level":2}
//! ```
//! `format` and `version` are checked first, so a future or foreign file
//! fails with a message about that rather than about some field.

use serde::{Deserialize, Serialize};

use crate::blob::{BlobError, Compression};
use crate::chunker::{CHUNKER_ALGORITHM, ChunkerError, ChunkerParams};
use crate::error::{Error, ErrorKind};
use crate::pack::{MAX_PACK_SIZE, TARGET_PACK_SIZE};

/// The `format` value of a repository config. Never modify.
pub const REPO_CONFIG_FORMAT: &str = "stowage-repo";
/// The `version` this build writes and reads.
pub const REPO_CONFIG_VERSION: u32 = 1;
/// The zstd level new repositories get. Level 2 rather than zstd's usual 3:
/// compression is two thirds of a backup's CPU, and on 1.5 GB of real
/// files (system libraries, a Rust toolchain, /usr/share) level 2
/// compressed 1.5× faster for 4 % more bytes. An existing repository keeps
/// the level its config names.
pub const DEFAULT_ZSTD_LEVEL: i32 = 2;
/// Smallest pack target accepted: below this, request costs dominate.
pub const MIN_PACK_TARGET_SIZE: u64 = 1024 * 1024;

/// Parameters every backup of a tenant must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoConfig {
    /// Content-defined chunker sizes.
    pub chunker: ChunkerParams,
    /// Whether the chunker's gear table is seeded from the id key (always true when written by this build).
    pub chunker_seeded: bool,
    /// Size at which the agent closes a pack and uploads it.
    pub pack_target_size: u64,
    /// zstd level for blobs.
    pub zstd_level: i32,
}

impl Default for RepoConfig {
    fn default() -> Self {
        Self {
            chunker: ChunkerParams::DEFAULT,
            chunker_seeded: true,
            pack_target_size: TARGET_PACK_SIZE as u64,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

/// The JSON form, field for field.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    version: u32,
    chunker: WireChunker,
    pack_target_size: u64,
    zstd_level: i32,
}

/// The JSON form of the chunker parameters.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireChunker {
    algorithm: String,
    min_size: u32,
    avg_size: u32,
    max_size: u32,
    normalization: u8,
    seeded: bool,
}

/// Just enough of the JSON to know whether the rest can be read.
#[derive(Deserialize)]
struct Probe {
    format: String,
    version: u32,
}

impl RepoConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] naming the first bad parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.chunker.validate()?;
        Compression::zstd(self.zstd_level)?;
        if !(MIN_PACK_TARGET_SIZE..=MAX_PACK_SIZE as u64).contains(&self.pack_target_size) {
            return Err(ConfigError::PackTargetSize(self.pack_target_size));
        }
        Ok(())
    }

    /// The blob compression this config asks for.
    pub fn compression(&self) -> Compression {
        Compression::zstd(self.zstd_level).unwrap_or(Compression::DEFAULT)
    }

    /// Parses and validates stored JSON.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Format`] / [`ConfigError::Version`] for a foreign or
    /// newer file, [`ConfigError::Json`] for malformed JSON or unknown
    /// fields, [`ConfigError::Algorithm`], or a parameter error.
    pub fn from_json(json: &[u8]) -> Result<Self, ConfigError> {
        let probe: Probe = serde_json::from_slice(json).map_err(ConfigError::Json)?;
        if probe.format != REPO_CONFIG_FORMAT {
            return Err(ConfigError::Format(probe.format.chars().take(80).collect()));
        }
        if probe.version != REPO_CONFIG_VERSION {
            return Err(ConfigError::Version(probe.version));
        }
        let wire: Wire = serde_json::from_slice(json).map_err(ConfigError::Json)?;
        if wire.chunker.algorithm != CHUNKER_ALGORITHM {
            return Err(ConfigError::Algorithm(
                wire.chunker.algorithm.chars().take(80).collect(),
            ));
        }
        let config = Self {
            chunker: ChunkerParams {
                min_size: wire.chunker.min_size,
                avg_size: wire.chunker.avg_size,
                max_size: wire.chunker.max_size,
                normalization: wire.chunker.normalization,
            },
            chunker_seeded: wire.chunker.seeded,
            pack_target_size: wire.pack_target_size,
            zstd_level: wire.zstd_level,
        };
        config.validate()?;
        Ok(config)
    }

    /// The JSON to store (compact, fields in the documented order).
    pub fn to_json(&self) -> String {
        let wire = Wire {
            format: REPO_CONFIG_FORMAT.to_owned(),
            version: REPO_CONFIG_VERSION,
            chunker: WireChunker {
                algorithm: CHUNKER_ALGORITHM.to_owned(),
                min_size: self.chunker.min_size,
                avg_size: self.chunker.avg_size,
                max_size: self.chunker.max_size,
                normalization: self.chunker.normalization,
                seeded: self.chunker_seeded,
            },
            pack_target_size: self.pack_target_size,
            zstd_level: self.zstd_level,
        };
        serde_json::to_string(&wire).expect("a struct of strings and numbers always serializes")
    }

    /// Checks that `self` (what this agent would use) equals `stored` (what
    /// the repository was created with).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Mismatch`] naming the first parameter that differs.
    pub fn ensure_same(&self, stored: &RepoConfig) -> Result<(), ConfigError> {
        let pairs: [(&'static str, String, String); 7] = [
            (
                "chunker.min_size",
                self.chunker.min_size.to_string(),
                stored.chunker.min_size.to_string(),
            ),
            (
                "chunker.avg_size",
                self.chunker.avg_size.to_string(),
                stored.chunker.avg_size.to_string(),
            ),
            (
                "chunker.max_size",
                self.chunker.max_size.to_string(),
                stored.chunker.max_size.to_string(),
            ),
            (
                "chunker.normalization",
                self.chunker.normalization.to_string(),
                stored.chunker.normalization.to_string(),
            ),
            (
                "chunker.seeded",
                self.chunker_seeded.to_string(),
                stored.chunker_seeded.to_string(),
            ),
            (
                "pack_target_size",
                self.pack_target_size.to_string(),
                stored.pack_target_size.to_string(),
            ),
            (
                "zstd_level",
                self.zstd_level.to_string(),
                stored.zstd_level.to_string(),
            ),
        ];
        match pairs.into_iter().find(|(_, ours, theirs)| ours != theirs) {
            Some((parameter, ours, stored)) => Err(ConfigError::Mismatch {
                parameter,
                ours,
                stored,
            }),
            None => Ok(()),
        }
    }
}

/// Why a repository config was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, a missing field, a wrong type or an unknown field.
    #[error("repository config is not valid: {0}")]
    Json(#[source] serde_json::Error),
    /// Some other kind of JSON document.
    #[error("repository config has format {0:?}, expected \"stowage-repo\"")]
    Format(String),
    /// A version this build cannot read.
    #[error(
        "repository config has version {0}, this build reads only version 1 (upgrade the agent)"
    )]
    Version(u32),
    /// A chunking algorithm this build does not implement.
    #[error(
        "repository config names chunker algorithm {0:?}, this build implements only \"fastcdc-v2020\""
    )]
    Algorithm(String),
    /// Bad chunker sizes.
    #[error("repository config has invalid chunker parameters: {0}")]
    Chunker(#[from] ChunkerError),
    /// A zstd level outside zstd's range.
    #[error("repository config has an invalid compression level: {0}")]
    Zstd(#[from] BlobError),
    /// A pack target size outside the accepted range.
    #[error(
        "repository config has pack target size {0}, outside the accepted range {MIN_PACK_TARGET_SIZE}..={MAX_PACK_SIZE}"
    )]
    PackTargetSize(u64),
    /// This agent's parameters differ from the repository's.
    #[error(
        "repository config mismatch: {parameter} is {ours} here but {stored} in the repository; refusing to back up with different parameters"
    )]
    Mismatch {
        /// Dotted name of the first differing parameter.
        parameter: &'static str,
        /// This agent's value.
        ours: String,
        /// The stored value.
        stored: String,
    },
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        let kind = match &err {
            ConfigError::Json(_) | ConfigError::Format(_) => ErrorKind::Corrupt,
            ConfigError::Version(_) | ConfigError::Algorithm(_) => ErrorKind::Unsupported,
            ConfigError::Chunker(_) | ConfigError::Zstd(_) | ConfigError::PackTargetSize(_) => {
                ErrorKind::Invalid
            }
            ConfigError::Mismatch { .. } => ErrorKind::Mismatch,
        };
        Self::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_round_trips_through_json() {
        // Arrange
        let config = RepoConfig::default();

        // Act
        let json = config.to_json();
        let parsed = RepoConfig::from_json(json.as_bytes()).unwrap();

        // Assert
        assert_eq!(parsed, config);
        assert!(
            json.starts_with(
                r#"{"format":"stowage-repo","version":1,"chunker":{"algorithm":"fastcdc-v2020","#
            ),
            "{json}"
        );
        assert_eq!(
            config.compression(),
            Compression::zstd(DEFAULT_ZSTD_LEVEL).unwrap()
        );
    }

    #[test]
    fn an_unknown_format_or_version_is_named_before_any_field() {
        let err =
            RepoConfig::from_json(br#"{"format":"stowage-snapshot","version":1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"repository config has format "stowage-snapshot", expected "stowage-repo""#
        );
        let err = RepoConfig::from_json(br#"{"format":"stowage-repo","version":2,"whatever":[]}"#)
            .unwrap_err();
        assert!(matches!(err, ConfigError::Version(2)), "{err}");
        assert_eq!(Error::from(err).kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn unknown_fields_algorithms_and_bad_values_are_refused() {
        let good = RepoConfig::default().to_json();
        let extra = good.replacen("\"zstd_level\"", "\"surprise\":1,\"zstd_level\"", 1);
        assert!(matches!(
            RepoConfig::from_json(extra.as_bytes()),
            Err(ConfigError::Json(_))
        ));
        let algo = good.replace("fastcdc-v2020", "rabin");
        assert!(matches!(
            RepoConfig::from_json(algo.as_bytes()),
            Err(ConfigError::Algorithm(_))
        ));
        let odd = good.replace("524288", "524287");
        assert!(matches!(
            RepoConfig::from_json(odd.as_bytes()),
            Err(ConfigError::Chunker(_))
        ));
        let level = good.replace(
            &format!("\"zstd_level\":{DEFAULT_ZSTD_LEVEL}"),
            "\"zstd_level\":99",
        );
        assert_ne!(level, good);
        assert!(matches!(
            RepoConfig::from_json(level.as_bytes()),
            Err(ConfigError::Zstd(_))
        ));
        let pack = good.replace("16777216", "1000");
        assert!(matches!(
            RepoConfig::from_json(pack.as_bytes()),
            Err(ConfigError::PackTargetSize(1000))
        ));
        assert!(matches!(
            RepoConfig::from_json(b"not json"),
            Err(ConfigError::Json(_))
        ));
    }

    #[test]
    fn ensure_same_names_the_first_parameter_that_differs() {
        let stored = RepoConfig::default();
        assert!(stored.ensure_same(&stored).is_ok());
        let ours = RepoConfig {
            chunker: ChunkerParams {
                avg_size: 2 * 1024 * 1024,
                ..ChunkerParams::DEFAULT
            },
            ..stored
        };
        let err = ours.ensure_same(&stored).unwrap_err();
        assert_eq!(
            err.to_string(),
            "repository config mismatch: chunker.avg_size is 2097152 here but 1048576 in the repository; refusing to back up with different parameters"
        );
        assert_eq!(Error::from(err).kind(), ErrorKind::Mismatch);
    }

    proptest::proptest! {
        #[test]
        fn hostile_json_never_panics(text in "\\PC{0,300}") {
            let _ = RepoConfig::from_json(text.as_bytes());
        }
    }
}
