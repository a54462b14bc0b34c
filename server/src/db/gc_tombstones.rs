//! Deletion tombstones: how a pack upload learns that garbage collection is
//! deleting (or has, since the upload began, deleted) the object it writes.
//!
//! # The race this closes
//!
//! Pack ids are hashes of the bytes, so a retried upload stores the very
//! object a sweep may be deleting. In the order sweep-rows-commit →
//! upload-lookup (no row) → upload-writes-object → sweep-deletes-object →
//! sweep-finishes-record → upload-indexes, the index would name an object
//! that is gone. The orphan sweep has the same race with an upload of a
//! pack whose earlier attempt left an orphan object.
//!
//! # How
//!
//! Every deletion is recorded in `gc_pending_deletes` *before* its object is
//! deleted (a sweep and a repack in their row transaction, the orphan sweep
//! in a transaction of its own), stamped with the epoch of that transaction.
//! Epochs are bumped under the tenant's `gc_epochs` row lock (SQLite's write
//! lock), so they grow in commit order: every record with an epoch up to a
//! value read from `gc_epochs` was committed before that read. A finished
//! record (object gone) stays as a tombstone.
//!
//! An upload [`admit`]s its pack before writing the object: it reads the
//! epoch (its *mark*), then refuses the pack if a record of it is still
//! unfinished. Its index transaction ([`refuses_in`]) refuses the pack if a
//! record of it is unfinished or newer than the mark. Then:
//!
//! - a deletion recorded before the mark is either unfinished at admission
//!   (refused) or finished, its object deleted before the upload wrote
//!   (safe);
//! - a deletion recorded after the mark has a newer epoch, and the index
//!   transaction, ordered against it by the epoch row (`FOR SHARE` against
//!   the bump on PostgreSQL, the write lock on SQLite), sees it if it
//!   committed first; if it commits later, it finds the pack indexed
//!   (the orphan sweep re-checks inside its transaction; a sweep or repack
//!   only deletes packs whose rows it locked).
//!
//! Tombstones are [`prune`]d once finished for longer than the orphan age;
//! `gc_epochs.pruned_through` remembers the newest pruned epoch, and an
//! upload whose mark is older is refused (it cannot tell whether a pruned
//! tombstone was about its pack). Refusals are retryable: the agent sends
//! the pack again later, finds no unfinished record, and stores it.

use sqlx::{AnyConnection, AssertSqlSafe, Row};
use stowage_protocol::ids::{PackId, TenantId};

use super::gc_sweep::SweepTransaction;
use super::{
    Backend, Database, DbError, MAX_BOUND_IDS, now_millis, placeholders, query_error, to_i64,
};

/// What [`admit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No deletion of the pack is under way; index it only if
    /// [`refuses_in`] agrees, with this mark.
    Open {
        /// The tenant's epoch read before the pack's object is written.
        mark: i64,
    },
    /// Garbage collection recorded the pack's deletion and has not finished
    /// it: the upload must be retried later.
    BeingDeleted,
}

/// Reads the deletion mark of `tenant` and whether `pack` has an unfinished
/// deletion; see the module docs. Creates the tenant's epoch row when it
/// has none, so that index transactions always have a row to lock.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn admit(db: &Database, tenant: TenantId, pack: PackId) -> Result<Admission, DbError> {
    let row = sqlx::query("SELECT epoch FROM gc_epochs WHERE tenant_id = $1")
        .bind(tenant.to_hex())
        .fetch_optional(db.pool())
        .await
        .map_err(query_error("read the garbage collection epoch"))?;
    let mark = if let Some(row) = row {
        row.try_get("epoch")
            .map_err(query_error("decode the garbage collection epoch"))?
    } else {
        super::gc_sweep::ensure_epoch(db, tenant).await?;
        0
    };
    Ok(if deletion_unfinished(db, tenant, pack).await? {
        Admission::BeingDeleted
    } else {
        Admission::Open { mark }
    })
}

/// Whether garbage collection recorded the deletion of `pack` of `tenant`
/// and has not finished it. Whoever is about to write the pack's object
/// must check this after reading its mark, as [`admit`] does: an object
/// written now could be the one that deletion removes.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn deletion_unfinished(
    db: &Database,
    tenant: TenantId,
    pack: PackId,
) -> Result<bool, DbError> {
    let pending = sqlx::query(
        "SELECT 1 AS found FROM gc_pending_deletes \
         WHERE tenant_id = $1 AND pack_id = $2 AND finished_at IS NULL",
    )
    .bind(tenant.to_hex())
    .bind(pack.as_bytes().to_vec())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("look for a pending deletion of a pack"))?;
    Ok(pending.is_some())
}

/// Whether the index transaction on `conn` must refuse `pack` of `tenant`,
/// admitted with `mark`: a deletion of it is unfinished or newer than the
/// mark, or tombstones newer than the mark were pruned. On PostgreSQL the
/// epoch row stays locked `FOR SHARE` until the transaction ends. On SQLite
/// call it after the transaction's first write.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn refuses_in(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    pack: PackId,
    mark: i64,
) -> Result<bool, DbError> {
    let lock = match backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT pruned_through FROM gc_epochs WHERE tenant_id = $1{lock}"
    )))
    .bind(tenant.to_hex())
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error("lock the garbage collection epoch"))?;
    let pruned_through: i64 = match row {
        Some(row) => row
            .try_get("pruned_through")
            .map_err(query_error("decode the pruned garbage collection epoch"))?,
        None => 0,
    };
    if pruned_through > mark {
        return Ok(true);
    }
    let deleting = sqlx::query(
        "SELECT 1 AS found FROM gc_pending_deletes WHERE tenant_id = $1 AND pack_id = $2 \
         AND (finished_at IS NULL OR epoch > $3)",
    )
    .bind(tenant.to_hex())
    .bind(pack.as_bytes().to_vec())
    .bind(mark)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error("look for a deletion of a pack"))?;
    Ok(deleting.is_some())
}

/// Drops the tombstones of `tenant` finished before `finished_before`
/// (milliseconds since the epoch) and raises `pruned_through` to the
/// newest epoch among them, in one transaction. Answers how many went.
///
/// # Errors
///
/// Fails when a statement fails; then nothing was pruned.
pub async fn prune(db: &Database, tenant: TenantId, finished_before: i64) -> Result<u64, DbError> {
    let mut tx = db.begin().await?;
    // A write first: the epoch row (and on SQLite the database) is held
    // from here on, so no upload's index check runs half before, half after.
    sqlx::query("UPDATE gc_epochs SET pruned_through = pruned_through WHERE tenant_id = $1")
        .bind(tenant.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(query_error("lock the garbage collection epoch"))?;
    let newest: Option<i64> = sqlx::query(
        "SELECT MAX(epoch) AS newest FROM gc_pending_deletes \
         WHERE tenant_id = $1 AND finished_at IS NOT NULL AND finished_at < $2",
    )
    .bind(tenant.to_hex())
    .bind(finished_before)
    .fetch_one(&mut *tx)
    .await
    .map_err(query_error("find the newest tombstone to prune"))?
    .try_get("newest")
    .map_err(query_error("decode the newest tombstone epoch"))?;
    let Some(newest) = newest else {
        return Ok(0);
    };
    sqlx::query(
        "UPDATE gc_epochs SET pruned_through = $2 WHERE tenant_id = $1 AND pruned_through < $2",
    )
    .bind(tenant.to_hex())
    .bind(newest)
    .execute(&mut *tx)
    .await
    .map_err(query_error("raise the pruned garbage collection epoch"))?;
    let pruned = sqlx::query(
        "DELETE FROM gc_pending_deletes WHERE tenant_id = $1 AND finished_at IS NOT NULL \
         AND finished_at < $2 AND epoch <= $3",
    )
    .bind(tenant.to_hex())
    .bind(finished_before)
    .bind(newest)
    .execute(&mut *tx)
    .await
    .map_err(query_error("prune deletion tombstones"))?;
    tx.commit()
        .await
        .map_err(query_error("commit pruning deletion tombstones"))?;
    Ok(pruned.rows_affected())
}

impl SweepTransaction {
    /// Records the objects of `packs` (id and size) as pending deletion,
    /// stamped with this transaction's epoch: a record of an earlier
    /// deletion of the same pack id becomes unfinished again and takes the
    /// new epoch, so an upload racing this deletion is refused
    /// ([`super::gc_tombstones`]).
    ///
    /// # Errors
    ///
    /// Fails when the insert fails; the transaction must then be dropped.
    pub async fn record_deletions(&mut self, packs: &[(PackId, u64)]) -> Result<(), DbError> {
        let now = now_millis();
        for batch in packs.chunks(MAX_BOUND_IDS / 3) {
            let rows = (0..batch.len())
                .map(|i| format!("($1, {}, $2, $3)", placeholders(4 + i * 2, 2)))
                .collect::<Vec<_>>()
                .join(", ");
            let mut insert = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO gc_pending_deletes (tenant_id, pack_id, size, deleted_at, epoch) \
                 VALUES {rows} ON CONFLICT (tenant_id, pack_id) DO UPDATE SET \
                 size = excluded.size, deleted_at = excluded.deleted_at, \
                 epoch = excluded.epoch, finished_at = NULL"
            )))
            .bind(self.tenant.to_hex())
            .bind(now)
            .bind(self.epoch);
            for (id, size) in batch {
                insert = insert.bind(id.as_bytes().to_vec()).bind(to_i64(*size));
            }
            insert
                .execute(&mut *self.tx)
                .await
                .map_err(query_error("record pending pack object deletions"))?;
        }
        Ok(())
    }
}
