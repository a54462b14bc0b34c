//! The `snapshot_pins` table (legal holds) and forgetting snapshots.
//!
//! Forgetting deletes a snapshot's row; its blobs become garbage that the
//! next collection reclaims once nothing else references them. A pinned
//! snapshot cannot be forgotten: the delete skips it, and the foreign key
//! from its pin refuses a delete that did not.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use stowage_protocol::ids::{AgentId, PlanId, SnapshotId, TenantId};

use super::{Database, DbError, from_millis, id_from_bytes, now_millis, parse_id, query_error};

/// Why and by whom a snapshot is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The operator's reason, e.g. "litigation hold 2026-114".
    pub reason: String,
    /// Who pinned it (the audit actor).
    pub pinned_by: String,
    /// When.
    pub pinned_at: DateTime<Utc>,
}

/// A plan's snapshot as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSnapshot {
    /// The snapshot.
    pub id: SnapshotId,
    /// The agent that made it: retention applies per agent.
    pub agent: AgentId,
    /// When its backup started (the snapshot's time, as restic's).
    pub time: DateTime<Utc>,
}

/// Pins snapshot `snapshot` of `tenant`; returns false when it was pinned
/// already (the first pin's reason stays).
///
/// # Errors
///
/// Fails when the insert fails, including for a snapshot the tenant does
/// not hold (the foreign key refuses it).
pub async fn pin(
    db: &Database,
    tenant: TenantId,
    snapshot: SnapshotId,
    reason: &str,
    actor: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO snapshot_pins (tenant_id, snapshot_id, reason, pinned_by, pinned_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, snapshot_id) DO NOTHING",
    )
    .bind(tenant.to_hex())
    .bind(snapshot.as_bytes().to_vec())
    .bind(reason)
    .bind(actor)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .map_err(query_error("pin a snapshot"))?;
    Ok(done.rows_affected() == 1)
}

/// Removes the pin of `snapshot`; returns whether there was one.
///
/// # Errors
///
/// Fails when the delete fails.
pub async fn unpin(db: &Database, tenant: TenantId, snapshot: SnapshotId) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM snapshot_pins WHERE tenant_id = $1 AND snapshot_id = $2")
        .bind(tenant.to_hex())
        .bind(snapshot.as_bytes().to_vec())
        .execute(db.pool())
        .await
        .map_err(query_error("unpin a snapshot"))?;
    Ok(done.rows_affected() == 1)
}

/// Every pin of `tenant`, by snapshot.
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn pins(db: &Database, tenant: TenantId) -> Result<HashMap<SnapshotId, Pin>, DbError> {
    let rows = sqlx::query(
        "SELECT snapshot_id, reason, pinned_by, pinned_at FROM snapshot_pins WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list pinned snapshots"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode a pin");
            let id: Vec<u8> = row.try_get("snapshot_id").map_err(read)?;
            Ok((
                id_from_bytes("snapshot_pins.snapshot_id", &id, SnapshotId::from_bytes)?,
                Pin {
                    reason: row.try_get("reason").map_err(read)?,
                    pinned_by: row.try_get("pinned_by").map_err(read)?,
                    pinned_at: from_millis(
                        "snapshot_pins.pinned_at",
                        row.try_get("pinned_at").map_err(read)?,
                    )?,
                },
            ))
        })
        .collect()
}

/// Every snapshot of plan `plan` of `tenant`, newest first.
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn of_plan(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
) -> Result<Vec<PlanSnapshot>, DbError> {
    let rows = sqlx::query(
        "SELECT id, agent_id, started_at FROM snapshots WHERE tenant_id = $1 AND plan_id = $2 \
         ORDER BY started_at DESC, id DESC",
    )
    .bind(tenant.to_hex())
    .bind(plan.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list a plan's snapshots"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode a plan's snapshot");
            let id: Vec<u8> = row.try_get("id").map_err(read)?;
            Ok(PlanSnapshot {
                id: id_from_bytes("snapshots.id", &id, SnapshotId::from_bytes)?,
                agent: parse_id(
                    "snapshots.agent_id",
                    &row.try_get::<String, _>("agent_id").map_err(read)?,
                )?,
                time: from_millis(
                    "snapshots.started_at",
                    row.try_get("started_at").map_err(read)?,
                )?,
            })
        })
        .collect()
}

/// Forgets (deletes) those of `ids` of `tenant` that are not pinned, in one
/// transaction; returns the ones forgotten.
///
/// # Errors
///
/// Fails when a statement fails; then nothing is forgotten.
pub async fn forget(
    db: &Database,
    tenant: TenantId,
    ids: &[SnapshotId],
) -> Result<Vec<SnapshotId>, DbError> {
    let mut tx = db.begin().await?;
    let mut forgotten = Vec::new();
    for id in ids {
        let done = sqlx::query(
            "DELETE FROM snapshots WHERE tenant_id = $1 AND id = $2 AND NOT EXISTS \
             (SELECT 1 FROM snapshot_pins p WHERE p.tenant_id = $1 AND p.snapshot_id = $2)",
        )
        .bind(tenant.to_hex())
        .bind(id.as_bytes().to_vec())
        .execute(&mut *tx)
        .await
        .map_err(query_error("forget a snapshot"))?;
        if done.rows_affected() == 1 {
            forgotten.push(*id);
        }
    }
    tx.commit()
        .await
        .map_err(query_error("commit forgotten snapshots"))?;
    Ok(forgotten)
}
