//! What operators do to plans and jobs, once, for every front end: the
//! command line (`stowage-server plan …`, `restore`, `verify`) and the
//! operator API (`/api/v1/plans`, `/api/v1/jobs`) call the same functions,
//! so a rule checked or an audit entry written for one is there for the
//! other.
//!
//! Every operation takes the tenant and the acting principal (recorded in
//! the audit log) and returns an [`OpError`] whose kind maps to an HTTP
//! status and whose message is the sentence a person reads.

pub mod jobs;
pub mod plans;
pub mod retention;
pub mod usage;

use stowage_protocol::ids::{SnapshotId, TenantId};

use crate::db::audit::{self, NewAuditEntry};
use crate::db::{Database, DbError, snapshots};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The input breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// A named object does not exist in the tenant (404).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (500).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Records `action` on `object` by `actor` in `tenant`'s audit log.
async fn audit(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    action: &str,
    object: &str,
    details: &serde_json::Value,
) -> Result<(), OpError> {
    audit::record(
        db,
        Some(tenant),
        NewAuditEntry {
            actor,
            action,
            object,
            details: &details.to_string(),
        },
    )
    .await?;
    Ok(())
}

/// The id `text` names, checked to be a snapshot `tenant` holds.
///
/// # Errors
///
/// [`OpError::Invalid`] for anything but 64 hex digits, [`OpError::NotFound`]
/// for a snapshot the tenant does not hold.
async fn known_snapshot(
    db: &Database,
    tenant: TenantId,
    text: &str,
) -> Result<SnapshotId, OpError> {
    let id: SnapshotId = text.trim().parse().map_err(|_| {
        OpError::Invalid(format!(
            "{:?} is not a snapshot id; give the full id (64 hex digits, `stowage snapshots` lists them)",
            text.trim()
        ))
    })?;
    match snapshots::get(db, tenant, id).await {
        Ok(_) => Ok(id),
        Err(DbError::NotFound { .. }) => Err(OpError::NotFound(format!(
            "there is no snapshot {}",
            id.to_hex()
        ))),
        Err(other) => Err(other.into()),
    }
}
