//! Storage accounting (`storage_usage`, `storage_usage_groups`): what a
//! tenant stores now, summed from the index when asked, and what its last
//! garbage collection found referenced and reclaimable, written at the end
//! of that run ([`crate::gc`]).
//!
//! The figures of a run replace the previous run's in one transaction, so a
//! reader sees one run's numbers or the other's, never a mix.

use sqlx::Row;
use sqlx::any::AnyRow;
use stowage_protocol::ids::{AgentId, PlanId, SnapshotId, TenantId};

use super::gc::{SnapshotRoots, decode_snapshot_roots};
use super::{Backend, Database, DbError, from_millis, parse_id, query_error, to_i64};

/// What a tenant stores now: every indexed pack, live or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    /// Sum of the pack objects' sizes.
    pub bytes: u64,
    /// How many packs.
    pub packs: u64,
    /// How many blobs are indexed in them.
    pub blobs: u64,
}

/// The snapshots of one plan on one agent: the unit the usage figures are
/// broken down by, as retention's policies are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotGroup {
    /// The plan; `None` for snapshots of no plan (manual backups).
    pub plan: Option<PlanId>,
    /// The agent that took them.
    pub agent: AgentId,
}

/// What one group's snapshots reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupUsage {
    /// Which snapshots.
    pub group: SnapshotGroup,
    /// How many snapshots the group had when it was walked.
    pub snapshots: u64,
    /// Distinct stored blobs reachable from them.
    pub referenced_blobs: u64,
    /// Their sealed bytes; a blob other groups reach counts there too.
    pub referenced_bytes: u64,
}

/// What one garbage collection run found, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedUsage {
    /// When the run wrote it.
    pub computed_at: chrono::DateTime<chrono::Utc>,
    /// Distinct stored blobs live at the mark (snapshots and running
    /// backups): the deduplicated total.
    pub live_blobs: u64,
    /// Their sealed bytes.
    pub live_bytes: u64,
    /// Packs whose every blob was dead at the mark.
    pub dead_packs: u64,
    /// Their object bytes.
    pub dead_pack_bytes: u64,
    /// Sealed bytes of the dead blobs in packs that also hold live ones.
    pub partly_dead_bytes: u64,
    /// Bytes of wholly dead packs the run then deleted.
    pub reclaimed_bytes: u64,
    /// How long walking the groups took, in milliseconds.
    pub walk_millis: u64,
    /// Per group, in group order.
    pub groups: Vec<GroupUsage>,
}

/// The packs and blobs `tenant` stores now.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn stored(db: &Database, tenant: TenantId) -> Result<Stored, DbError> {
    let packs = sqlx::query(
        "SELECT COUNT(*) AS packs, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
         FROM packs WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .fetch_one(db.pool())
    .await
    .map_err(query_error("sum the tenant's pack sizes"))?;
    let blobs = sqlx::query("SELECT COUNT(*) AS blobs FROM blobs WHERE tenant_id = $1")
        .bind(tenant.to_hex())
        .fetch_one(db.pool())
        .await
        .map_err(query_error("count the tenant's blobs"))?;
    Ok(Stored {
        bytes: count(&packs, "bytes")?,
        packs: count(&packs, "packs")?,
        blobs: count(&blobs, "blobs")?,
    })
}

/// The (plan, agent) groups of `tenant`'s snapshots, with how many
/// snapshots each has, in group order.
///
/// # Errors
///
/// Fails when the query fails or a stored id does not decode.
pub async fn snapshot_groups(
    db: &Database,
    tenant: TenantId,
) -> Result<Vec<(SnapshotGroup, u64)>, DbError> {
    let rows = sqlx::query(
        "SELECT COALESCE(plan_id, '') AS plan_id, agent_id, COUNT(*) AS snapshots \
         FROM snapshots WHERE tenant_id = $1 GROUP BY COALESCE(plan_id, ''), agent_id",
    )
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list the tenant's snapshot groups"))?;
    let mut groups = rows
        .iter()
        .map(|row| {
            Ok((
                decode_group(row, "snapshots.plan_id")?,
                count(row, "snapshots")?,
            ))
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    groups.sort_unstable();
    Ok(groups)
}

/// Up to `limit` snapshots of `group` in `tenant` with ids after `after`,
/// in id order, with the blobs each keeps alive.
///
/// # Errors
///
/// Fails when the query fails or a stored row does not decode.
pub async fn group_roots_page(
    db: &Database,
    tenant: TenantId,
    group: SnapshotGroup,
    after: Option<SnapshotId>,
    limit: usize,
) -> Result<Vec<SnapshotRoots>, DbError> {
    let rows = sqlx::query(
        "SELECT id, root, record FROM snapshots WHERE tenant_id = $1 AND agent_id = $2 \
         AND COALESCE(plan_id, '') = $3 AND id > $4 ORDER BY id LIMIT $5",
    )
    .bind(tenant.to_hex())
    .bind(group.agent.to_hex())
    .bind(group.plan.map(|plan| plan.to_hex()).unwrap_or_default())
    .bind(after.map_or_else(Vec::new, |id| id.as_bytes().to_vec()))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list the snapshot roots of a plan and agent"))?;
    rows.iter().map(decode_snapshot_roots).collect()
}

/// Replaces `tenant`'s recorded usage with `usage`, in one transaction,
/// unless figures computed later are recorded already.
///
/// Two runs may record at once (a manual `gc` beside the scheduled one):
/// each first takes the tenant's row (`FOR NO KEY UPDATE` on PostgreSQL;
/// on SQLite the first statement is a write, which takes the write lock),
/// so the second deletes what the first inserted instead of colliding with
/// it, and a run that finishes last with older figures keeps the newer.
///
/// # Errors
///
/// Fails when a statement fails; the previous figures stay then.
pub async fn record(db: &Database, tenant: TenantId, usage: &RecordedUsage) -> Result<(), DbError> {
    let computed_at = usage.computed_at.timestamp_millis();
    let mut tx = db.begin().await?;
    let lock = match db.backend() {
        Backend::Postgres => "SELECT id FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
        Backend::Sqlite => "UPDATE tenants SET name = name WHERE id = $1",
    };
    sqlx::query(lock)
        .bind(tenant.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(query_error("lock the tenant to record its usage"))?;
    let newer = sqlx::query(
        "SELECT 1 AS found FROM storage_usage WHERE tenant_id = $1 AND computed_at > $2",
    )
    .bind(tenant.to_hex())
    .bind(computed_at)
    .fetch_optional(&mut *tx)
    .await
    .map_err(query_error("read the recorded usage's time"))?;
    if newer.is_some() {
        return Ok(());
    }
    for table in ["storage_usage_groups", "storage_usage"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1"
        )))
        .bind(tenant.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(query_error("clear the previous usage figures"))?;
    }
    sqlx::query(
        "INSERT INTO storage_usage (tenant_id, computed_at, live_bytes, live_blobs, \
         dead_pack_bytes, dead_packs, partly_dead_bytes, reclaimed_bytes, walk_millis) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant.to_hex())
    .bind(computed_at)
    .bind(to_i64(usage.live_bytes))
    .bind(to_i64(usage.live_blobs))
    .bind(to_i64(usage.dead_pack_bytes))
    .bind(to_i64(usage.dead_packs))
    .bind(to_i64(usage.partly_dead_bytes))
    .bind(to_i64(usage.reclaimed_bytes))
    .bind(to_i64(usage.walk_millis))
    .execute(&mut *tx)
    .await
    .map_err(query_error("record the tenant's usage"))?;
    for group in &usage.groups {
        sqlx::query(
            "INSERT INTO storage_usage_groups (tenant_id, plan_id, agent_id, snapshots, \
             referenced_bytes, referenced_blobs, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.to_hex())
        .bind(
            group
                .group
                .plan
                .map(|plan| plan.to_hex())
                .unwrap_or_default(),
        )
        .bind(group.group.agent.to_hex())
        .bind(to_i64(group.snapshots))
        .bind(to_i64(group.referenced_bytes))
        .bind(to_i64(group.referenced_blobs))
        .bind(computed_at)
        .execute(&mut *tx)
        .await
        .map_err(query_error("record a plan's usage"))?;
    }
    tx.commit()
        .await
        .map_err(query_error("commit the usage figures"))
}

/// The usage `tenant`'s last garbage collection recorded, if any did.
///
/// # Errors
///
/// Fails when a query fails or a stored row does not decode.
pub async fn last(db: &Database, tenant: TenantId) -> Result<Option<RecordedUsage>, DbError> {
    let Some(row) = sqlx::query(
        "SELECT computed_at, live_bytes, live_blobs, dead_pack_bytes, dead_packs, \
         partly_dead_bytes, reclaimed_bytes, walk_millis FROM storage_usage WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read the tenant's usage"))?
    else {
        return Ok(None);
    };
    let read = query_error("decode a usage row");
    let computed_at = from_millis(
        "storage_usage.computed_at",
        row.try_get("computed_at").map_err(read)?,
    )?;
    let rows = sqlx::query(
        "SELECT plan_id, agent_id, snapshots, referenced_bytes, referenced_blobs \
         FROM storage_usage_groups WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("read the usage of the tenant's plans"))?;
    let mut groups = rows
        .iter()
        .map(|row| {
            Ok(GroupUsage {
                group: decode_group(row, "storage_usage_groups.plan_id")?,
                snapshots: count(row, "snapshots")?,
                referenced_blobs: count(row, "referenced_blobs")?,
                referenced_bytes: count(row, "referenced_bytes")?,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    groups.sort_unstable_by_key(|usage| usage.group);
    Ok(Some(RecordedUsage {
        computed_at,
        live_blobs: count(&row, "live_blobs")?,
        live_bytes: count(&row, "live_bytes")?,
        dead_packs: count(&row, "dead_packs")?,
        dead_pack_bytes: count(&row, "dead_pack_bytes")?,
        partly_dead_bytes: count(&row, "partly_dead_bytes")?,
        reclaimed_bytes: count(&row, "reclaimed_bytes")?,
        walk_millis: count(&row, "walk_millis")?,
        groups,
    }))
}

/// Reads a plan id (`''` for none) and an agent id.
fn decode_group(row: &AnyRow, plan_column: &'static str) -> Result<SnapshotGroup, DbError> {
    let read = query_error("decode a plan and agent");
    let plan: String = row.try_get("plan_id").map_err(read)?;
    let agent: String = row.try_get("agent_id").map_err(read)?;
    Ok(SnapshotGroup {
        plan: if plan.is_empty() {
            None
        } else {
            Some(parse_id(plan_column, &plan)?)
        },
        agent: parse_id("agent_id", &agent)?,
    })
}

/// Reads a non-negative `BIGINT` column.
fn count(row: &AnyRow, column: &'static str) -> Result<u64, DbError> {
    let value: i64 = row
        .try_get(column)
        .map_err(query_error("decode a usage figure"))?;
    u64::try_from(value).map_err(|_| DbError::Corrupt {
        what: column,
        problem: format!("{value} is negative"),
    })
}
