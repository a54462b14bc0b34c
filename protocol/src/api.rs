//! Request and response bodies of the agent ⇄ server API (`/api/v1`).
//!
//! Both sides compile against these types, so a field renamed here breaks
//! the build of both instead of a backup at 3 a.m. Bodies are JSON except pack
//! uploads and downloads, which are raw pack bytes (`application/octet-stream`).
//! Ids travel as lowercase hex strings. Every non-2xx response has an
//! [`ApiError`] body whose `code` is one of [`codes`] and whose `retryable`
//! tells the agent whether to try again (with backoff) or give up.
//!
//! A backup runs: [`OpenUploadSessionRequest`] → repeated
//! [`MissingBlobsRequest`] → pack uploads ([`PackUploadResponse`]) →
//! [`CommitSnapshotRequest`]. Every request on a session extends its lease;
//! blobs reported present (or uploaded) are protected from garbage collection
//! until the lease expires or the snapshot is committed.
//!
//! A restore runs: `GET /api/v1/snapshots` ([`SnapshotList`], filtered by
//! `plan`, paged by `before`) or `GET /api/v1/snapshots/{snapshot_id}`
//! ([`SnapshotListItem`]) → `GET /api/v1/trees/{blob_id}` for the root and
//! each subtree (the sealed tree blob, `application/octet-stream`, opened by
//! the agent with the pack's data key) → [`LocateBlobsRequest`] for the
//! content chunks → `GET /api/v1/packs/{pack_id}` with `Range: bytes=a-b`
//! (206 with `Content-Range`; `bytes=a-` and `bytes=-n` too; one range per
//! request; without `Range` the whole pack, 200). The pack header with the
//! sealed data key is the first
//! [`PACK_HEADER_LEN`](crate::pack::PACK_HEADER_LEN) bytes of every pack. A
//! range that starts past the end is 416
//! ([`codes::RANGE_NOT_SATISFIABLE`], naming the pack's size); a malformed or
//! multi-part `Range` is 400.
//!
//! Every id the caller's tenant does not hold — never stored, or another
//! tenant's — gets the same answer (404, or `unknown` in a locate), and the
//! request is written to the tenant's audit log. Malformed ids in a path or
//! query, and malformed query parameters, are 400 with an [`ApiError`]
//! naming the parameter.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::config::{ConfigError, RepoConfig};
use crate::crypto::WrappedTenantKeys;
use crate::ids::{AgentId, BlobId, JobId, PackId, PlanId, SnapshotId, TenantId, UploadSessionId};
use crate::snapshot::SnapshotRecord;

/// Prefix of every API path.
pub const API_PREFIX: &str = "/api/v1";
/// Most ids one [`MissingBlobsRequest`] or [`LocateBlobsRequest`] may carry.
pub const MAX_IDS_PER_QUERY: usize = 10_000;
/// Most missing ids one failed commit lists (the agent re-uploads and retries).
pub const MAX_REPORTED_MISSING: usize = 1000;

/// Error codes of [`ApiError::code`]. Never change a code's meaning: agents match on them.
pub mod codes {
    /// Missing, malformed or revoked credential (401).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The credential may not do this, e.g. an agent deleting (403).
    pub const FORBIDDEN: &str = "forbidden";
    /// No such object for this tenant (404).
    pub const NOT_FOUND: &str = "not_found";
    /// The body or a parameter is malformed or breaks a rule (400).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// An enrollment token is unknown, used or expired (401).
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// Tenant keys were already uploaded; fetch them instead (409).
    pub const TENANT_KEYS_EXIST: &str = "tenant_keys_exist";
    /// The tenant has no keys yet; the first agent must create them (404).
    pub const TENANT_KEYS_MISSING: &str = "tenant_keys_missing";
    /// The upload session is unknown, committed or its lease expired; open a new one (409).
    pub const SESSION_EXPIRED: &str = "session_expired";
    /// The pack failed a check: id, header, table (422).
    pub const PACK_REJECTED: &str = "pack_rejected";
    /// A commit references blobs the server does not hold; see `missing_blobs` (409).
    pub const MISSING_BLOBS: &str = "missing_blobs";
    /// The tenant's storage or agent quota is used up (402/403).
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    /// A pack read's `Range` starts past the pack's end (416); the message names the size.
    pub const RANGE_NOT_SATISFIABLE: &str = "range_not_satisfiable";
    /// The server's index holds the pack but its object is gone from storage
    /// (404, not retryable): data loss on the server's side, to be repaired
    /// from a replica; the message names the pack.
    pub const OBJECT_MISSING: &str = "object_missing";
    /// The request clashes with the current state, e.g. a taken name or a
    /// plan with a running job (409); the message says which.
    pub const CONFLICT: &str = "conflict";
    /// Too many requests; retry after a pause (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The server failed (500/503); retryable.
    pub const INTERNAL: &str = "internal";
}

/// The body of every non-2xx response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable cause, one of [`codes`].
    pub code: String,
    /// Human-readable sentence naming the object and the cause.
    pub message: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// For `missing_blobs`: up to [`MAX_REPORTED_MISSING`] ids the commit lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_blobs: Vec<BlobId>,
}

impl ApiError {
    /// An error without missing-blob ids.
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable,
            missing_blobs: Vec::new(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// `POST /api/v1/agents/enroll` — no credential; the one-time token is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The enrollment token shown in the dashboard.
    pub token: String,
    /// Display name chosen for this agent.
    pub agent_name: String,
    /// The machine's host name.
    pub hostname: String,
}

/// Response to [`EnrollRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The new agent's id.
    pub agent_id: AgentId,
    /// The tenant the token belonged to.
    pub tenant_id: TenantId,
    /// The agent's secret credential (sent as a bearer token); shown once, stored hashed.
    pub credential: String,
    /// Whether the tenant already has keys: if not, this agent creates and uploads them.
    pub tenant_keys_exist: bool,
}

/// `PUT /api/v1/tenant/keys` (first agent; `tenant_keys_exist` afterwards)
/// and the response of `GET /api/v1/tenant/keys`.
///
/// The recovery public key is bytes 34..66 of the wrapped keys
/// ([`WrappedTenantKeys::public_key`]), so a write-only agent gets it without
/// the passphrase and it can never disagree with the wrapped secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantKeyBundle {
    /// The id key and recovery secret, wrapped under the recovery passphrase (hex, 170 bytes).
    pub wrapped_keys: WrappedTenantKeys,
    /// The repository config's JSON text (`{"format":"stowage-repo","version":1,…}`),
    /// fixed at creation. A string, so the server stores and returns exactly
    /// the bytes the first agent wrote; read it with [`TenantKeyBundle::repo_config`].
    pub repo_config: String,
}

impl TenantKeyBundle {
    /// A bundle carrying `config`.
    pub fn new(wrapped_keys: WrappedTenantKeys, config: &RepoConfig) -> Self {
        Self {
            wrapped_keys,
            repo_config: config.to_json(),
        }
    }

    /// The repository config, parsed and validated.
    ///
    /// # Errors
    ///
    /// As [`RepoConfig::from_json`]: another format or version, unknown
    /// fields, or parameters out of range.
    pub fn repo_config(&self) -> Result<RepoConfig, ConfigError> {
        RepoConfig::from_json(self.repo_config.as_bytes())
    }
}

/// Longest wait [`ClaimJobRequest::wait_seconds`] may ask for.
pub const MAX_CLAIM_WAIT_SECONDS: u32 = 60;

/// `POST /api/v1/jobs/claim` — waits up to `wait_seconds` for a queued job
/// of the calling agent and claims it: 200 with a [`ClaimedJob`], or 204
/// when none came in time (ask again). Every claim marks the agent seen;
/// `facts`, when sent, replace what the server knows about its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimJobRequest {
    /// At most [`MAX_CLAIM_WAIT_SECONDS`]; 0 answers at once.
    pub wait_seconds: u32,
    /// The agent's host, sent on the first claim and every few minutes.
    #[serde(default)]
    pub facts: Option<AgentFacts>,
}

/// What an agent reports about itself and its host (agent presence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFacts {
    /// The agent's version, e.g. `0.1.0`.
    pub version: String,
    /// Operating system and architecture, e.g. `linux x86_64 (Debian 12)`.
    pub os: String,
    /// The host name.
    pub hostname: String,
    /// Free space of the filesystems holding this agent's sources.
    pub filesystems: Vec<FilesystemSpace>,
}

/// Free and total space of the filesystem that holds `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemSpace {
    /// A source path (or `/`).
    pub path: String,
    /// Bytes an unprivileged writer may still use.
    pub free_bytes: u64,
    /// The filesystem's size in bytes.
    pub total_bytes: u64,
}

/// What a backup job backs up: its plan's sources and excludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBackup {
    /// The plan's name.
    pub plan_name: String,
    /// Absolute paths to back up; empty for a command source.
    pub paths: Vec<String>,
    /// A command whose standard output is the backup, if the plan has one.
    pub command: Option<String>,
    /// The file name the command's output gets in the snapshot.
    pub stdin_name: Option<String>,
    /// Glob patterns left out.
    pub excludes: Vec<String>,
}

/// What a restore job restores, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRestore {
    /// The snapshot (of any agent of the tenant).
    pub snapshot: SnapshotId,
    /// Paths inside the snapshot to restore; empty restores all of it.
    pub paths: Vec<String>,
    /// Absolute directory on the restoring agent (created if missing).
    pub target: String,
}

/// What a verify job checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobVerify {
    /// The snapshot to check.
    pub snapshot: SnapshotId,
    /// Download, decrypt and check every blob, not only the structure.
    pub read_data: bool,
}

/// A rehearsal restore: restore `snapshot` into a scratch directory, check
/// every restored byte against the snapshot, delete the copy, and report
/// the measured times in [`JobFinish::restore_test`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRestoreTest {
    /// The snapshot rehearsed (the plan's newest when the job was made).
    pub snapshot: SnapshotId,
    /// With a cap, a sample of files chosen by `seed` whose sizes add up to
    /// at most this many bytes; without one, the whole snapshot.
    pub max_bytes: Option<u64>,
    /// Seed of the deterministic sample: the same seed picks the same files.
    pub seed: u64,
}

/// The work of a claimed job, tagged by its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobWork {
    /// Back up a plan's sources.
    Backup(JobBackup),
    /// Restore a snapshot to a directory of this agent.
    Restore(JobRestore),
    /// Check a snapshot.
    Verify(JobVerify),
    /// Rehearse a restore and time it.
    RestoreTest(JobRestoreTest),
}

impl JobWork {
    /// The kind's stored name: backup, restore, verify or restore_test.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Backup(_) => "backup",
            Self::Restore(_) => "restore",
            Self::Verify(_) => "verify",
            Self::RestoreTest(_) => "restore_test",
        }
    }
}

/// Response to [`ClaimJobRequest`]: the job is now the caller's, until
/// `lease_expires_at` unless progress renews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedJob {
    /// The job, for the progress and finish calls.
    pub job_id: JobId,
    /// The job's plan, if it has one.
    pub plan_id: Option<PlanId>,
    /// What to do.
    pub work: JobWork,
    /// When the job fails unless renewed.
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /api/v1/jobs/{job_id}/progress` — renews the lease (200 with a
/// [`JobLease`]); 404 when the job is not the caller's running job any more
/// (its lease ran out): the agent must stop working on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobProgress {
    /// Bytes read (a backup) or written (a restore) so far.
    pub bytes: u64,
    /// Files done so far.
    pub files: u64,
    /// Recent rate in bytes a second (0 when not known yet).
    #[serde(default)]
    pub bytes_per_second: u64,
}

/// Response to [`JobProgress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLease {
    /// The new end of the lease.
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /api/v1/jobs/{job_id}/finish` — ends the caller's running job (204).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFinish {
    /// `None` when the job succeeded; else why it failed, as a sentence.
    pub error: Option<String>,
    /// The final counts.
    pub progress: JobProgress,
    /// The job's log; the server keeps its last 64 KiB.
    pub log: String,
    /// For a restore test: what was measured (also when the check failed).
    #[serde(default)]
    pub restore_test: Option<RestoreTestReport>,
}

/// What a restore test measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreTestReport {
    /// The snapshot rehearsed.
    pub snapshot: SnapshotId,
    /// Files restored and checked.
    pub files: u64,
    /// Bytes restored and checked.
    pub bytes: u64,
    /// Wall time of the restore alone, in milliseconds (what an RTO is about).
    pub restore_ms: u64,
    /// Wall time of reading every restored byte back and checking it.
    pub check_ms: u64,
    /// Whether a size cap made this a sample rather than the whole snapshot.
    pub sampled: bool,
}

/// `POST /api/v1/uploads` — opens an upload session (a lease protecting blobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OpenUploadSessionRequest {
    /// The plan this backup runs for; `None` for a manual backup.
    pub plan: Option<PlanId>,
}

/// Response to [`OpenUploadSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSession {
    /// Id to use in the session's paths.
    pub session_id: UploadSessionId,
    /// When the lease ends unless a request on the session extends it.
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST /api/v1/uploads/{session_id}/missing` — which of these blobs must be uploaded?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingBlobsRequest {
    /// At most [`MAX_IDS_PER_QUERY`] ids.
    pub ids: Vec<BlobId>,
}

/// Response to [`MissingBlobsRequest`]; ids not listed are present and now leased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingBlobsResponse {
    /// The requested ids the server does not hold, in request order.
    pub missing: Vec<BlobId>,
}

/// Response to `PUT /api/v1/uploads/{session_id}/packs/{pack_id}` (body: the pack bytes).
///
/// The server hashes the stream, checks the id, header and table, stores the
/// object and indexes its blobs in one transaction. A retry of the same pack is
/// answered with `already_present: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackUploadResponse {
    /// The pack's id (BLAKE3 of its bytes).
    pub pack_id: PackId,
    /// Number of blobs in the pack's table.
    pub blobs_indexed: u32,
    /// Whether the pack was stored before this request.
    pub already_present: bool,
}

/// `POST /api/v1/uploads/{session_id}/commit` — makes a snapshot visible.
///
/// Fails with `missing_blobs` (listing ids in [`ApiError::missing_blobs`]) unless
/// every blob reachable from the record's root is stored, and with
/// `invalid_request` when the root is a data blob rather than a tree. A
/// session belongs to the agent that opened it: any other agent gets 404.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSnapshotRequest {
    /// The record; the server computes its id from the canonical bytes.
    pub record: SnapshotRecord,
}

/// Response to [`CommitSnapshotRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSnapshotResponse {
    /// The committed snapshot's id.
    pub snapshot_id: SnapshotId,
    /// Whether this exact snapshot had been committed before (an idempotent retry).
    pub already_committed: bool,
}

/// One row of `GET /api/v1/snapshots?plan={plan_id}&limit={n}&before={snapshot_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotListItem {
    /// The snapshot's id.
    pub id: SnapshotId,
    /// When the server accepted the commit.
    pub committed_at: DateTime<Utc>,
    /// The committed record.
    pub record: SnapshotRecord,
}

/// Response of `GET /api/v1/snapshots`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotList {
    /// The page of snapshots.
    pub snapshots: Vec<SnapshotListItem>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<SnapshotId>,
}

/// `POST /api/v1/blobs/locate` — where are these blobs stored? (for restore)
///
/// The agent then fetches the byte ranges with
/// `GET /api/v1/packs/{pack_id}` and a `Range` header (the pack header with the
/// sealed data key is bytes `0..`[`PACK_HEADER_LEN`](crate::pack::PACK_HEADER_LEN)). More than
/// [`MAX_IDS_PER_QUERY`] ids is a 400 naming the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateBlobsRequest {
    /// At most [`MAX_IDS_PER_QUERY`] ids.
    pub ids: Vec<BlobId>,
}

/// Where one blob lies: bytes `offset..offset + length` of pack `pack_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobLocation {
    /// The blob.
    pub id: BlobId,
    /// The pack holding it.
    pub pack_id: PackId,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// Data chunk or tree, as `"data"` or `"tree"`: the kind to open it as.
    #[serde(with = "kind_name")]
    pub kind: BlobKind,
}

/// Response to [`LocateBlobsRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateBlobsResponse {
    /// Locations of the ids found, in request order, each id once.
    pub found: Vec<BlobLocation>,
    /// Ids the tenant does not hold (another tenant's included), in request order.
    pub unknown: Vec<BlobId>,
}

/// [`BlobKind`] as a word in JSON, so a location reads without the format tables.
mod kind_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::blob::BlobKind;

    #[allow(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's `with` hands the field over by reference"
    )]
    pub(super) fn serialize<S: Serializer>(
        kind: &BlobKind,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match kind {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BlobKind, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "data" => Ok(BlobKind::Data),
            "tree" => Ok(BlobKind::Tree),
            other => Err(serde::de::Error::custom(format!(
                "blob kind {other:?} is neither \"data\" nor \"tree\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_omits_an_empty_missing_list_and_reads_it_back_when_present() {
        // Arrange
        let plain = ApiError::new(codes::SESSION_EXPIRED, "upload session 00 expired", false);
        let mut missing = ApiError::new(codes::MISSING_BLOBS, "2 blobs are missing", false);
        missing.missing_blobs = vec![BlobId::from_bytes([1; 32])];

        // Act
        let plain_json = serde_json::to_string(&plain).unwrap();
        let missing_json = serde_json::to_string(&missing).unwrap();

        // Assert
        assert_eq!(
            plain_json,
            r#"{"code":"session_expired","message":"upload session 00 expired","retryable":false}"#
        );
        assert_eq!(
            serde_json::from_str::<ApiError>(&plain_json).unwrap(),
            plain
        );
        assert!(missing_json.contains(&"01".repeat(32)), "{missing_json}");
        assert_eq!(
            serde_json::from_str::<ApiError>(&missing_json).unwrap(),
            missing
        );
        assert_eq!(
            plain.to_string(),
            "upload session 00 expired (session_expired)"
        );
    }

    #[test]
    fn ids_and_times_travel_as_strings() {
        let session = UploadSession {
            session_id: UploadSessionId::from_bytes([0xab; 16]),
            lease_expires_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        };
        let json = serde_json::to_string(&session).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"session_id":"{}","lease_expires_at":"2026-11-26T12:00:00Z"}}"#,
                "ab".repeat(16)
            )
        );
        assert_eq!(
            serde_json::from_str::<UploadSession>(&json).unwrap(),
            session
        );
    }

    #[test]
    fn a_key_bundle_carries_the_repo_config_as_json_and_reads_it_back() {
        // Arrange
        let keys = crate::crypto::TenantKeys {
            id_key: crate::crypto::IdKey::from_bytes([1; 32]),
            recovery_secret: crate::crypto::RecoverySecret::from_bytes([2; 32]),
        };
        let fast = crate::crypto::KdfParams {
            m_cost_kib: crate::crypto::KdfParams::MIN_M_COST_KIB,
            t_cost: 1,
            parallelism: 1,
        };
        let wrapped = WrappedTenantKeys::wrap(&keys, b"pass", fast, [3; 16], [4; 24]).unwrap();

        // Act
        let bundle = TenantKeyBundle::new(wrapped, &RepoConfig::default());
        let json = serde_json::to_string(&bundle).unwrap();
        let back: TenantKeyBundle = serde_json::from_str(&json).unwrap();

        // Assert
        assert!(
            json.contains(r#""repo_config":"{\"format\":\"stowage-repo\","#),
            "{json}"
        );
        assert_eq!(back.repo_config, RepoConfig::default().to_json());
        assert_eq!(back.repo_config().unwrap(), RepoConfig::default());
        assert_eq!(
            back.wrapped_keys.public_key(),
            keys.recovery_secret.public_key()
        );
    }

    #[test]
    fn a_missing_blobs_query_with_a_bad_id_is_rejected() {
        let bad = r#"{"ids":["00"]}"#;
        assert!(serde_json::from_str::<MissingBlobsRequest>(bad).is_err());
    }

    #[test]
    fn a_blob_location_names_its_kind_as_a_word_and_reads_back() {
        // Arrange
        let location = BlobLocation {
            id: BlobId::from_bytes([1; 32]),
            pack_id: PackId::from_bytes([2; 32]),
            offset: 88,
            length: 1045,
            kind: BlobKind::Tree,
        };

        // Act
        let json = serde_json::to_string(&location).unwrap();

        // Assert
        assert_eq!(
            json,
            format!(
                r#"{{"id":"{}","pack_id":"{}","offset":88,"length":1045,"kind":"tree"}}"#,
                "01".repeat(32),
                "02".repeat(32)
            )
        );
        assert_eq!(
            serde_json::from_str::<BlobLocation>(&json).unwrap(),
            location
        );
        let unknown_kind = json.replace(r#""tree""#, r#""chunk""#);
        let error = serde_json::from_str::<BlobLocation>(&unknown_kind).unwrap_err();
        assert!(error.to_string().contains("chunk"), "{error}");
    }
}
