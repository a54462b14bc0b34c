//! Clearing out upload sessions that ended long ago.
//!
//! A session that commits drops its leases in the committing transaction,
//! but one whose agent vanished keeps its `session_leases` rows — one per
//! blob the backup was told was present, easily a million for a large
//! source — long after its lease ran out and it can no longer be used (an
//! expired session is never extended again, see
//! [`super::upload_sessions::extend_lease`]). Garbage collection ignores
//! such leases, so they protect nothing; they only cost rows and index
//! space. Garbage collection calls [`purge`] first in each run.
//!
//! The margins are wide on purpose: instances' clocks may differ a little,
//! and a session row is still worth a few days as evidence of what an
//! agent was doing when it stopped.

use std::time::Duration;

use stowage_protocol::ids::TenantId;

use super::{Database, DbError, duration_millis, now_millis, query_error};

/// How long after its lease ran out an uncommitted session's leases go.
pub const LEASES_KEPT_AFTER_EXPIRY: Duration = Duration::from_hours(1);
/// How long after it committed or expired a session row itself goes.
pub const SESSIONS_KEPT_AFTER_END: Duration = Duration::from_hours(7 * 24);

/// What one [`purge`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Lease rows of expired, uncommitted sessions.
    pub leases: u64,
    /// Session rows that ended before the keep period (their leases with them).
    pub sessions: u64,
}

/// Removes `tenant`'s leases of sessions that expired uncommitted more than
/// [`LEASES_KEPT_AFTER_EXPIRY`] ago, and the sessions that committed or
/// expired more than [`SESSIONS_KEPT_AFTER_END`] ago.
///
/// # Errors
///
/// Fails when a statement fails; what an earlier statement removed stays
/// removed, which is harmless.
pub async fn purge(db: &Database, tenant: TenantId) -> Result<Purged, DbError> {
    let now = now_millis();
    let leases_before = now - duration_millis(LEASES_KEPT_AFTER_EXPIRY);
    let sessions_before = now - duration_millis(SESSIONS_KEPT_AFTER_END);
    let leases = sqlx::query(
        "DELETE FROM session_leases WHERE tenant_id = $1 AND session_id IN \
         (SELECT id FROM upload_sessions \
          WHERE tenant_id = $1 AND committed_at IS NULL AND lease_expires_at < $2)",
    )
    .bind(tenant.to_hex())
    .bind(leases_before)
    .execute(db.pool())
    .await
    .map_err(query_error("release the leases of expired upload sessions"))?
    .rows_affected();
    let sessions = sqlx::query(
        "DELETE FROM upload_sessions WHERE tenant_id = $1 AND \
         ((committed_at IS NOT NULL AND committed_at < $2) \
          OR (committed_at IS NULL AND lease_expires_at < $2))",
    )
    .bind(tenant.to_hex())
    .bind(sessions_before)
    .execute(db.pool())
    .await
    .map_err(query_error("delete long-ended upload sessions"))?
    .rows_affected();
    if leases > 0 || sessions > 0 {
        tracing::info!(
            tenant.id = %tenant,
            leases,
            sessions,
            "released the leases of expired upload sessions and removed long-ended ones"
        );
    }
    Ok(Purged { leases, sessions })
}
