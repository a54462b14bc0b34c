//! Snapshot records: the one part of a backup the server may read.
//!
//! A record names the root tree of a backup and says where it came from
//! (host, agent, plan, backed-up paths), when, and how it went (counts). File
//! names and contents stay in sealed trees and chunks — including the names of
//! files that could not be read: they go into a sealed *error log* blob that the
//! record points to, so the server can count failures but never read the names. The record travels as JSON; its id is the BLAKE3 hash of its
//! *canonical* bytes — the fields in the order below, no whitespace — so the
//! agent and the server compute the same id, and a retried commit is
//! recognised as the same snapshot.
//!
//! ```json
//! {"format":"stowage-snapshot","version":1,"root":"<64 hex>","parent":null,
//!  "hostname":"db1","agent":"<32 hex>","plan":null,"paths":["/etc",{"hex":"2fff"}],
//!  "tags":["nightly"],"started_at":"2026-11-26T01:00:00Z","finished_at":"2026-11-26T01:03:00.5Z",
//!  "summary":{"files":…,"dirs":…,"total_bytes":…,"bytes_read":…,"bytes_added":…,"blobs_added":…,"errors":…},
//!  "error_log":"<64 hex>"}
//! ```
//!
//! Paths are raw bytes: a JSON string when they are UTF-8, otherwise
//! `{"hex": "…"}` (and only then, so each path has one canonical form).
//! Times are RFC 3339 UTC as chrono writes them (`Z`, 0/3/6/9 fraction digits).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, BlobId, PlanId, SnapshotId};

/// The `format` value of every record. Never modify.
pub const SNAPSHOT_FORMAT: &str = "stowage-snapshot";
/// The record version this crate writes. Never modify the meaning of version 1.
pub const SNAPSHOT_VERSION: u32 = 1;
/// An error log lists at most this many unreadable files; `summary.errors` counts them all.
pub const MAX_SOURCE_ERRORS: usize = 1000;
/// The `format` value of an error log. Never modify.
pub const ERROR_LOG_FORMAT: &str = "stowage-error-log";

/// A snapshot record could not be parsed or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The JSON is malformed, has unknown or missing fields, or breaks a rule of the record.
    #[error("invalid snapshot record: {0}")]
    Invalid(String),
}

impl From<SnapshotError> for crate::error::Error {
    fn from(err: SnapshotError) -> Self {
        Self::new(crate::error::ErrorKind::Invalid, err)
    }
}

/// Raw path bytes, as the source file system gave them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawPath(pub Vec<u8>);

impl fmt::Debug for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawPath({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl From<&str> for RawPath {
    fn from(path: &str) -> Self {
        Self(path.as_bytes().to_vec())
    }
}

/// Serde form of a [`RawPath`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawPathWire {
    Text(String),
    Bytes {
        /// Hex of bytes that are not valid UTF-8.
        hex: String,
    },
}

impl Serialize for RawPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => RawPathWire::Bytes {
                hex: hex::encode(&self.0),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match RawPathWire::deserialize(deserializer)? {
            RawPathWire::Text(text) => Ok(Self(text.into_bytes())),
            RawPathWire::Bytes { hex } => {
                let bytes = hex::decode(&hex)
                    .map_err(|e| D::Error::custom(format!("path hex {hex:?} is not hex: {e}")))?;
                if std::str::from_utf8(&bytes).is_ok() {
                    return Err(D::Error::custom(format!(
                        "path hex {hex:?} is valid UTF-8 and must be written as a string"
                    )));
                }
                Ok(Self(bytes))
            }
        }
    }
}

/// Counts describing one backup run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSummary {
    /// Regular files in the snapshot.
    pub files: u64,
    /// Directories in the snapshot (the roots included).
    pub dirs: u64,
    /// Sum of the sizes of the snapshot's regular files.
    pub total_bytes: u64,
    /// Bytes read from disk in this run (unchanged files are not re-read).
    pub bytes_read: u64,
    /// Plaintext bytes of the blobs this run added to the repository (after dedup).
    pub bytes_added: u64,
    /// Blobs (chunks and trees) this run added.
    pub blobs_added: u64,
    /// Files or directories that could not be read (all of them, even past the list cap).
    pub errors: u64,
}

/// A file or directory the agent could not read; the snapshot lacks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceError {
    /// Where it happened.
    pub path: RawPath,
    /// The operating system's or the agent's message.
    pub message: String,
}

/// A snapshot: what was backed up, from where, when, and its root tree.
///
/// Serializes with `"format": "stowage-snapshot", "version": 1` first, and
/// refuses to parse any other format or version, unknown fields, an error
/// count without an error log (or the reverse), or an end before the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Root tree blob of the backed-up paths.
    pub root: BlobId,
    /// The snapshot this one was made incrementally against, if any.
    pub parent: Option<SnapshotId>,
    /// Host name of the machine backed up.
    pub hostname: String,
    /// The agent that made the snapshot.
    pub agent: AgentId,
    /// The plan the run belonged to; `None` for a manual backup.
    pub plan: Option<PlanId>,
    /// The source paths, as given to the backup.
    pub paths: Vec<RawPath>,
    /// User tags.
    pub tags: Vec<String>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished (before the commit).
    pub finished_at: DateTime<Utc>,
    /// Counts.
    pub summary: SnapshotSummary,
    /// The sealed data blob listing the files that could not be read
    /// ([`encode_error_log`]); `None` when there were none.
    pub error_log: Option<BlobId>,
}

/// Field order here is the canonical order; it must match [`WireOwned`].
#[derive(Serialize)]
struct WireRef<'a> {
    format: &'a str,
    version: u32,
    root: &'a BlobId,
    parent: &'a Option<SnapshotId>,
    hostname: &'a str,
    agent: &'a AgentId,
    plan: &'a Option<PlanId>,
    paths: &'a [RawPath],
    tags: &'a [String],
    started_at: &'a DateTime<Utc>,
    finished_at: &'a DateTime<Utc>,
    summary: &'a SnapshotSummary,
    error_log: &'a Option<BlobId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOwned {
    format: String,
    version: u32,
    root: BlobId,
    parent: Option<SnapshotId>,
    hostname: String,
    agent: AgentId,
    plan: Option<PlanId>,
    paths: Vec<RawPath>,
    tags: Vec<String>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    summary: SnapshotSummary,
    error_log: Option<BlobId>,
}

impl Serialize for SnapshotRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireRef {
            format: SNAPSHOT_FORMAT,
            version: SNAPSHOT_VERSION,
            root: &self.root,
            parent: &self.parent,
            hostname: &self.hostname,
            agent: &self.agent,
            plan: &self.plan,
            paths: &self.paths,
            tags: &self.tags,
            started_at: &self.started_at,
            finished_at: &self.finished_at,
            summary: &self.summary,
            error_log: &self.error_log,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SnapshotRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireOwned::deserialize(deserializer)?;
        Self::from_wire(wire).map_err(serde::de::Error::custom)
    }
}

impl SnapshotRecord {
    fn from_wire(wire: WireOwned) -> Result<Self, String> {
        if wire.format != SNAPSHOT_FORMAT {
            return Err(format!(
                "format is {:?}, expected \"stowage-snapshot\"",
                wire.format
            ));
        }
        if wire.version != SNAPSHOT_VERSION {
            return Err(format!(
                "version {} is not supported (this build reads version 1)",
                wire.version
            ));
        }
        let record = Self {
            root: wire.root,
            parent: wire.parent,
            hostname: wire.hostname,
            agent: wire.agent,
            plan: wire.plan,
            paths: wire.paths,
            tags: wire.tags,
            started_at: wire.started_at,
            finished_at: wire.finished_at,
            summary: wire.summary,
            error_log: wire.error_log,
        };
        record
            .validate()
            .map_err(|SnapshotError::Invalid(why)| why)?;
        Ok(record)
    }

    /// Checks the rules that the types alone do not enforce.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] when the run ends before it starts, or when
    /// the error count and the error log disagree.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        if self.finished_at < self.started_at {
            return Err(SnapshotError::Invalid(format!(
                "finished_at {} is before started_at {}",
                self.finished_at, self.started_at
            )));
        }
        if self.error_log.is_some() != (self.summary.errors > 0) {
            return Err(SnapshotError::Invalid(format!(
                "summary counts {} errors but the error log is {}",
                self.summary.errors,
                if self.error_log.is_some() {
                    "present"
                } else {
                    "absent"
                }
            )));
        }
        Ok(())
    }

    /// Parses a record from JSON (any whitespace), checking format, version and rules.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] with serde's or the rule's message.
    pub fn from_json(json: &[u8]) -> Result<Self, SnapshotError> {
        serde_json::from_slice(json).map_err(|e| SnapshotError::Invalid(e.to_string()))
    }

    /// The canonical JSON: fields in declaration order, no whitespace.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self)
            .expect("a snapshot record always serializes: every key is a string")
    }

    /// The snapshot's id: BLAKE3 of [`canonical_bytes`](Self::canonical_bytes).
    pub fn id(&self) -> SnapshotId {
        SnapshotId::digest(&self.canonical_bytes())
    }
}

/// The plaintext of an error-log blob: a JSON object
/// `{"format":"stowage-error-log","version":1,"errors":[{"path":…,"message":…}]}`.
/// The agent seals it as a data blob, so the server never reads the names.
/// The caller keeps at most [`MAX_SOURCE_ERRORS`] entries.
pub fn encode_error_log(errors: &[SourceError]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Log<'a> {
        format: &'a str,
        version: u32,
        errors: &'a [SourceError],
    }
    serde_json::to_vec(&Log {
        format: ERROR_LOG_FORMAT,
        version: 1,
        errors,
    })
    .expect("an error log always serializes")
}

/// Parses the plaintext of an error-log blob.
///
/// # Errors
///
/// [`SnapshotError::Invalid`] for malformed JSON, another format or version,
/// or more than [`MAX_SOURCE_ERRORS`] entries.
pub fn decode_error_log(bytes: &[u8]) -> Result<Vec<SourceError>, SnapshotError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Log {
        format: String,
        version: u32,
        errors: Vec<SourceError>,
    }
    let log: Log = serde_json::from_slice(bytes)
        .map_err(|e| SnapshotError::Invalid(format!("error log: {e}")))?;
    if log.format != ERROR_LOG_FORMAT || log.version != 1 {
        return Err(SnapshotError::Invalid(format!(
            "error log is {:?} version {}, expected \"{ERROR_LOG_FORMAT}\" version 1",
            log.format, log.version
        )));
    }
    if log.errors.len() > MAX_SOURCE_ERRORS {
        return Err(SnapshotError::Invalid(format!(
            "error log has {} entries, at most {MAX_SOURCE_ERRORS} allowed",
            log.errors.len()
        )));
    }
    Ok(log.errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SnapshotRecord {
        SnapshotRecord {
            root: BlobId::from_bytes([1; 32]),
            parent: None,
            hostname: "db1".to_owned(),
            agent: AgentId::from_bytes([2; 16]),
            plan: Some(PlanId::from_bytes([3; 16])),
            paths: vec![RawPath::from("/etc"), RawPath(b"/caf\xe9".to_vec())],
            tags: vec!["nightly".to_owned()],
            started_at: "2026-11-26T01:00:00Z".parse().unwrap(),
            finished_at: "2026-11-26T01:03:00.5Z".parse().unwrap(),
            summary: SnapshotSummary {
                files: 10,
                dirs: 2,
                errors: 1,
                ..SnapshotSummary::default()
            },
            error_log: Some(BlobId::from_bytes([4; 32])),
        }
    }

    fn source_error() -> SourceError {
        SourceError {
            path: "/etc/shadow".into(),
            message: "permission denied".to_owned(),
        }
    }

    #[test]
    fn canonical_json_starts_with_format_and_version_and_round_trips() {
        // Arrange
        let record = record();

        // Act
        let bytes = record.canonical_bytes();

        // Assert
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"format":"stowage-snapshot","version":1,"root":""#),
            "{text}"
        );
        assert!(
            text.contains(r#""paths":["/etc",{"hex":"2f636166e9"}]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""finished_at":"2026-11-26T01:03:00.500Z""#),
            "{text}"
        );
        let parsed = SnapshotRecord::from_json(&bytes).unwrap();
        assert_eq!(parsed, record);
        assert_eq!(parsed.canonical_bytes(), bytes);
    }

    #[test]
    fn the_id_ignores_whitespace_in_the_received_json() {
        let record = record();
        let pretty = serde_json::to_vec_pretty(&record).unwrap();
        assert_eq!(
            SnapshotRecord::from_json(&pretty).unwrap().id(),
            record.id()
        );
        assert_eq!(record.id(), SnapshotId::digest(&record.canonical_bytes()));
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Result<SnapshotRecord, SnapshotError> {
        let mut value = serde_json::to_value(record()).unwrap();
        edit(&mut value);
        SnapshotRecord::from_json(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn another_format_or_version_is_rejected() {
        let err = edited(|v| v["format"] = "stowage-repo".into()).unwrap_err();
        assert!(
            err.to_string().contains("format is \"stowage-repo\""),
            "{err}"
        );
        let err = edited(|v| v["version"] = 2.into()).unwrap_err();
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_rejected() {
        assert!(edited(|v| v["extra"] = 1.into()).is_err());
        assert!(edited(|v| v["summary"]["extra"] = 1.into()).is_err());
        assert!(edited(|v| drop(v.as_object_mut().unwrap().remove("tags"))).is_err());
    }

    #[test]
    fn a_run_ending_before_it_started_is_rejected() {
        assert!(edited(|v| v["finished_at"] = "2026-11-26T00:00:00Z".into()).is_err());
    }

    #[test]
    fn an_error_count_without_an_error_log_or_the_reverse_is_rejected() {
        let err = edited(|v| v["error_log"] = serde_json::Value::Null).unwrap_err();
        assert!(
            err.to_string()
                .contains("counts 1 errors but the error log is absent"),
            "{err}"
        );
        let err = edited(|v| v["summary"]["errors"] = 0.into()).unwrap_err();
        assert!(
            err.to_string()
                .contains("counts 0 errors but the error log is present"),
            "{err}"
        );
    }

    #[test]
    fn the_error_log_round_trips_and_caps_its_length() {
        let log = vec![
            source_error(),
            SourceError {
                path: RawPath(b"/caf\xe9".to_vec()),
                message: "gone".into(),
            },
        ];
        let bytes = encode_error_log(&log);
        assert_eq!(decode_error_log(&bytes).unwrap(), log);

        let too_many = vec![source_error(); MAX_SOURCE_ERRORS + 1];
        let err = decode_error_log(&encode_error_log(&too_many)).unwrap_err();
        assert!(err.to_string().contains("1001 entries"), "{err}");
        assert!(decode_error_log(b"{}").is_err());
    }

    #[test]
    fn a_hex_path_that_is_valid_utf8_is_not_canonical_and_is_rejected() {
        let err = edited(|v| v["paths"][0] = serde_json::json!({"hex": "2f657463"})).unwrap_err();
        assert!(
            err.to_string().contains("must be written as a string"),
            "{err}"
        );
        assert!(edited(|v| v["paths"][0] = serde_json::json!({"hex": "zz"})).is_err());
    }

    #[test]
    fn times_in_other_offsets_are_normalised_to_utc() {
        let record = edited(|v| v["started_at"] = "2026-11-26T02:00:00+01:00".into()).unwrap();
        assert_eq!(
            record.started_at,
            "2026-11-26T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
