//! The bookkeeping of garbage collection's object deletions
//! (`crate::gc`): packs whose rows a sweep removed but whose objects may
//! remain (`gc_pending_deletes`, written by
//! [`super::gc_sweep::SweepTransaction::record_deletions`]; a finished
//! record stays as a tombstone, see [`super::gc_tombstones`]), and pack objects
//! found with no row at all (`gc_orphan_sightings`), with when a run first
//! saw each.

use sqlx::{AssertSqlSafe, Row};
use stowage_protocol::ids::{PackId, TenantId};

use super::gc_sweep::bind_packs;
use super::{
    Backend, Database, DbError, MAX_BOUND_IDS, id_from_bytes, now_millis, placeholders, query_error,
};

/// A pack whose index rows a sweep deleted and whose object may remain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingDelete {
    /// The pack.
    pub pack: PackId,
    /// Its object's size in bytes.
    pub size: u64,
}

/// Up to `limit` pending object deletions of `tenant`, oldest pack id first.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn pending_deletes(
    db: &Database,
    tenant: TenantId,
    limit: usize,
) -> Result<Vec<PendingDelete>, DbError> {
    let rows = sqlx::query(
        "SELECT pack_id, size FROM gc_pending_deletes WHERE tenant_id = $1 \
         AND finished_at IS NULL ORDER BY pack_id LIMIT $2",
    )
    .bind(tenant.to_hex())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list pending pack object deletions"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode pending deletion row");
            let pack: Vec<u8> = row.try_get("pack_id").map_err(read)?;
            let size: i64 = row.try_get("size").map_err(read)?;
            Ok(PendingDelete {
                pack: id_from_bytes("gc_pending_deletes.pack_id", &pack, PackId::from_bytes)?,
                size: u64::try_from(size).unwrap_or_default(),
            })
        })
        .collect()
}

/// Marks the pending deletions of `packs` finished (their objects are
/// gone). The records stay as tombstones until
/// [`super::gc_tombstones::prune`] drops them: an upload that began before
/// the deletion must still find them.
///
/// # Errors
///
/// Fails when the update fails.
pub async fn finish_pending(
    db: &Database,
    tenant: TenantId,
    packs: &[PackId],
) -> Result<(), DbError> {
    let now = now_millis();
    for batch in packs.chunks(MAX_BOUND_IDS) {
        bind_packs_from(
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE gc_pending_deletes SET finished_at = $2 \
                 WHERE tenant_id = $1 AND finished_at IS NULL AND pack_id IN ({})",
                placeholders(3, batch.len())
            )))
            .bind(tenant.to_hex())
            .bind(now),
            batch,
        )
        .execute(db.pool())
        .await
        .map_err(query_error("forget finished pack object deletions"))?;
    }
    Ok(())
}

/// Which of `packs` have a `packs` row for `tenant`.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn indexed_packs(
    db: &Database,
    tenant: TenantId,
    packs: &[PackId],
) -> Result<Vec<PackId>, DbError> {
    let mut found = Vec::new();
    for batch in packs.chunks(MAX_BOUND_IDS) {
        let rows = bind_packs(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT id FROM packs WHERE tenant_id = $1 AND id IN ({})",
                placeholders(2, batch.len())
            ))),
            tenant,
            batch,
        )
        .fetch_all(db.pool())
        .await
        .map_err(query_error("look up packs"))?;
        for row in &rows {
            let id: Vec<u8> = row.try_get("id").map_err(query_error("decode pack id"))?;
            found.push(id_from_bytes("packs.id", &id, PackId::from_bytes)?);
        }
    }
    Ok(found)
}

/// Records `packs` as seen without a `packs` row now (a sighting already
/// recorded keeps its first time), forgets the sightings of every other
/// pack of `tenant`, and answers when each of `packs` was first seen.
///
/// # Errors
///
/// Fails when a statement fails.
pub async fn sight_orphans(
    db: &Database,
    tenant: TenantId,
    packs: &[PackId],
) -> Result<Vec<(PackId, i64)>, DbError> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Sqlite {
        // A write first, so the transaction is SQLite's writer before it
        // reads: one that reads first and then writes fails with
        // SQLITE_BUSY_SNAPSHOT, which no busy timeout retries, whenever a
        // backup committed in between (seen under eight busy agents).
        sqlx::query("UPDATE gc_epochs SET epoch = epoch WHERE tenant_id = $1")
            .bind(tenant.to_hex())
            .execute(&mut *tx)
            .await
            .map_err(query_error("lock the database for orphan sightings"))?;
    }
    let now = now_millis();
    // Sightings of packs that are orphans no more (indexed since, or their
    // object gone) are dropped so the table stays as small as the orphans.
    let keep: std::collections::HashSet<PackId> = packs.iter().copied().collect();
    let known = sqlx::query("SELECT pack_id FROM gc_orphan_sightings WHERE tenant_id = $1")
        .bind(tenant.to_hex())
        .fetch_all(&mut *tx)
        .await
        .map_err(query_error("list orphan sightings"))?;
    let mut stale = Vec::new();
    for row in &known {
        let id: Vec<u8> = row
            .try_get("pack_id")
            .map_err(query_error("decode orphan sighting"))?;
        let id = id_from_bytes("gc_orphan_sightings.pack_id", &id, PackId::from_bytes)?;
        if !keep.contains(&id) {
            stale.push(id);
        }
    }
    for batch in stale.chunks(MAX_BOUND_IDS) {
        bind_packs(
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM gc_orphan_sightings WHERE tenant_id = $1 AND pack_id IN ({})",
                placeholders(2, batch.len())
            ))),
            tenant,
            batch,
        )
        .execute(&mut *tx)
        .await
        .map_err(query_error("forget orphan sightings"))?;
    }
    let mut seen = Vec::with_capacity(packs.len());
    for batch in packs.chunks(MAX_BOUND_IDS / 2) {
        let rows = (0..batch.len())
            .map(|i| format!("($1, {}, $2)", placeholders(3 + i, 1)))
            .collect::<Vec<_>>()
            .join(", ");
        bind_packs_from(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO gc_orphan_sightings (tenant_id, pack_id, first_seen_at) \
                 VALUES {rows} ON CONFLICT (tenant_id, pack_id) DO NOTHING"
            )))
            .bind(tenant.to_hex())
            .bind(now),
            batch,
        )
        .execute(&mut *tx)
        .await
        .map_err(query_error("record orphan sightings"))?;
        let found = bind_packs(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT pack_id, first_seen_at FROM gc_orphan_sightings \
                 WHERE tenant_id = $1 AND pack_id IN ({})",
                placeholders(2, batch.len())
            ))),
            tenant,
            batch,
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(query_error("read orphan sightings"))?;
        for row in &found {
            let read = query_error("decode orphan sighting");
            let id: Vec<u8> = row.try_get("pack_id").map_err(read)?;
            let first: i64 = row.try_get("first_seen_at").map_err(read)?;
            seen.push((
                id_from_bytes("gc_orphan_sightings.pack_id", &id, PackId::from_bytes)?,
                first,
            ));
        }
    }
    tx.commit()
        .await
        .map_err(query_error("commit orphan sightings"))?;
    Ok(seen)
}

/// Forgets the sightings of `packs`, whose orphan objects were deleted.
///
/// # Errors
///
/// Fails when the delete fails.
pub async fn forget_orphans(
    db: &Database,
    tenant: TenantId,
    packs: &[PackId],
) -> Result<(), DbError> {
    for batch in packs.chunks(MAX_BOUND_IDS) {
        bind_packs(
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM gc_orphan_sightings WHERE tenant_id = $1 AND pack_id IN ({})",
                placeholders(2, batch.len())
            ))),
            tenant,
            batch,
        )
        .execute(db.pool())
        .await
        .map_err(query_error("forget orphan sightings"))?;
    }
    Ok(())
}

/// Binds `packs` after whatever the query already has.
fn bind_packs_from<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    packs: &[PackId],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for pack in packs {
        query = query.bind(pack.as_bytes().to_vec());
    }
    query
}
