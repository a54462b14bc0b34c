//! What a repack writes (`crate::gc::repack`): inside a
//! [`SweepTransaction`] — so under the same epoch bump and locks as the
//! sweep, ordered against commits, `missing` and uploads — the new pack's
//! row, and each live blob's row moved to its new place.
//!
//! A blob row is moved, not deleted and inserted again: its tree references
//! (`blob_refs`) and its `complete_trees` record are keyed by the blob id
//! and stay as they are, and no instant exists at which the blob is not
//! indexed.

use stowage_protocol::ids::{BlobId, PackId, TenantId};

use super::gc_sweep::SweepTransaction;
use super::packs::{BlobLocation, locate};
use super::{Database, DbError, gc_tombstones, now_millis, query_error, to_i64};

/// A blob copied into a new pack: where its row must point now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovedBlob {
    /// The blob.
    pub id: BlobId,
    /// The pack its row names now (the old pack).
    pub from: PackId,
    /// Its offset in the new pack.
    pub offset: u32,
}

/// The blobs whose index rows name `pack` of `tenant`, with where they lie.
///
/// # Errors
///
/// Fails when a query fails or a row does not decode.
pub async fn pack_blobs(
    db: &Database,
    tenant: TenantId,
    pack: PackId,
) -> Result<Vec<BlobLocation>, DbError> {
    let ids = super::packs::blob_ids(db, tenant, pack).await?;
    let mut found: Vec<BlobLocation> = locate(db, tenant, &ids)
        .await?
        .into_iter()
        .filter(|location| location.pack_id == pack)
        .collect();
    found.sort_by_key(|location| location.offset);
    Ok(found)
}

impl SweepTransaction {
    /// The blobs indexed in `packs` that are leased to a session open at
    /// `now_millis`.
    ///
    /// # Errors
    ///
    /// Fails when the query fails.
    pub async fn leased_blobs(
        &mut self,
        packs: &[PackId],
        now_millis: i64,
    ) -> Result<Vec<BlobId>, DbError> {
        Ok(self
            .leased_in(packs, now_millis)
            .await?
            .into_iter()
            .map(|(_, blob)| blob)
            .collect())
    }

    /// Whether an upload admitted with `mark` would be refused for `pack`
    /// now ([`gc_tombstones::refuses_in`]): a new pack written by a repack
    /// is refused the same way, so an orphan sweep that raced it cannot
    /// delete an object this transaction indexes.
    ///
    /// # Errors
    ///
    /// Fails when a query fails.
    pub async fn deletion_blocks(&mut self, pack: PackId, mark: i64) -> Result<bool, DbError> {
        gc_tombstones::refuses_in(&mut self.tx, self.backend, self.tenant, pack, mark).await
    }

    /// Indexes the new pack `pack` (`size` bytes, `blob_count` table
    /// entries) and points the rows of `moved` at it.
    ///
    /// # Errors
    ///
    /// Fails when a statement fails, the pack is already indexed, or a
    /// moved blob's row no longer names the pack it came from; the
    /// transaction must then be dropped.
    pub async fn index_repacked(
        &mut self,
        pack: PackId,
        size: u64,
        blob_count: u64,
        moved: &[MovedBlob],
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO packs (tenant_id, id, size, blob_count, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.tenant.to_hex())
        .bind(pack.as_bytes().to_vec())
        .bind(to_i64(size))
        .bind(to_i64(blob_count))
        .bind(now_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(query_error("index a repacked pack"))?;
        for blob in moved {
            let done = sqlx::query(
                "UPDATE blobs SET pack_id = $3, \"offset\" = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND pack_id = $5",
            )
            .bind(self.tenant.to_hex())
            .bind(blob.id.as_bytes().to_vec())
            .bind(pack.as_bytes().to_vec())
            .bind(i64::from(blob.offset))
            .bind(blob.from.as_bytes().to_vec())
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("move a blob into a repacked pack"))?;
            if done.rows_affected() != 1 {
                return Err(DbError::Corrupt {
                    what: "blobs.pack_id",
                    problem: format!(
                        "blob {} is no longer indexed in pack {}, which a repack copied it from",
                        blob.id.to_hex(),
                        blob.from.to_hex()
                    ),
                });
            }
        }
        Ok(())
    }
}
