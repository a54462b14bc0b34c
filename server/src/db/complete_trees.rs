//! The `complete_trees` table: tree blobs known to reach only stored blobs.
//!
//! A commit checks that every blob its snapshot reaches is stored. Most of a
//! backup's trees are shared with the previous snapshot, so walking them all
//! again on every commit would cost as much as the whole tree, not as much as
//! what changed. Instead, the commit that makes a snapshot visible records
//! every tree its walk visited here, in the same transaction, and later walks
//! stop at a recorded tree: everything below it was checked when it was
//! recorded.
//!
//! # The invariant, and what garbage collection must keep
//!
//! A row means: the tree blob and every blob below it are indexed. Rows are
//! only written by a commit whose walk found nothing missing, and a walk that
//! stops at a recorded tree relies on the same invariant, so it holds by
//! induction — as long as nothing below a recorded tree is ever removed while
//! its row stays. Removing a tree blob's index row removes its
//! `complete_trees` row (the foreign key cascades). Garbage collection must
//! in addition delete the rows of every tree it finds unreachable from the
//! snapshots it keeps ([`forget`]) — before, or in the same transaction as,
//! deleting any blob below such a tree — even when the tree blob itself
//! survives (for instance because an open session leases it).

use sqlx::{AnyConnection, Row};
use stowage_protocol::ids::{BlobId, TenantId};

use super::{
    Database, DbError, MAX_BOUND_IDS, placeholders, query_error, select_ids_for, tenant_ids_query,
};

/// The ids among `trees` that `tenant` has recorded as complete.
///
/// # Errors
///
/// Fails when no connection can be had, a query fails or a stored id is
/// malformed.
pub async fn known(
    db: &Database,
    tenant: TenantId,
    trees: &[BlobId],
) -> Result<Vec<BlobId>, DbError> {
    known_in(&mut *db.acquire().await?, tenant, trees).await
}

/// [`known`] on `conn`: a connection or a transaction.
///
/// # Errors
///
/// Fails when a query fails or a stored id is malformed.
pub async fn known_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    trees: &[BlobId],
) -> Result<Vec<BlobId>, DbError> {
    select_ids_for(
        conn,
        tenant,
        trees,
        "tree_id",
        "look up complete trees",
        |ids| {
            format!(
                "SELECT tree_id FROM complete_trees WHERE tenant_id = $1 AND tree_id IN ({ids})"
            )
        },
    )
    .await
}

/// Records `trees` of `tenant` as complete, on `conn` (the committing
/// transaction); repeats are fine. Only a commit whose walk found every
/// blob below `trees` stored may call this.
///
/// # Errors
///
/// Fails when an insert fails (including a tree that is not indexed).
pub async fn record(
    conn: &mut AnyConnection,
    tenant: TenantId,
    trees: &[BlobId],
) -> Result<(), DbError> {
    for batch in trees.chunks(MAX_BOUND_IDS) {
        let rows = (0..batch.len())
            .map(|i| format!("($1, {})", placeholders(2 + i, 1)))
            .collect::<Vec<_>>()
            .join(", ");
        tenant_ids_query(tenant, batch, |_| {
            format!(
                "INSERT INTO complete_trees (tenant_id, tree_id) VALUES {rows} \
                 ON CONFLICT (tenant_id, tree_id) DO NOTHING"
            )
        })
        .execute(&mut *conn)
        .await
        .map_err(query_error("record complete trees"))?;
    }
    Ok(())
}

/// Forgets that `trees` of `tenant` are complete; garbage collection calls
/// this for every tree it finds unreachable (see the module docs).
///
/// # Errors
///
/// Fails when a delete fails.
pub async fn forget(
    conn: &mut AnyConnection,
    tenant: TenantId,
    trees: &[BlobId],
) -> Result<(), DbError> {
    for batch in trees.chunks(MAX_BOUND_IDS) {
        tenant_ids_query(tenant, batch, |ids| {
            format!("DELETE FROM complete_trees WHERE tenant_id = $1 AND tree_id IN ({ids})")
        })
        .execute(&mut *conn)
        .await
        .map_err(query_error("forget complete trees"))?;
    }
    Ok(())
}

/// How many trees `tenant` has recorded as complete.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn count(db: &Database, tenant: TenantId) -> Result<u64, DbError> {
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM complete_trees WHERE tenant_id = $1")
        .bind(tenant.to_hex())
        .fetch_one(db.pool())
        .await
        .map_err(query_error("count complete trees"))?
        .try_get("n")
        .map_err(query_error("decode complete tree count"))?;
    Ok(u64::try_from(count).unwrap_or_default())
}
