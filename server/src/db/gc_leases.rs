//! The upload side of garbage collection's handshake: answering `missing`
//! and leasing what is present as one step that a sweep cannot split.
//!
//! `missing` tells an agent which blobs it need not send; from then on the
//! agent relies on them, so they must not be collected before the commit.
//! Reading the blobs and leasing them in two separate steps would let a
//! sweep delete a blob in between: the agent would be told it is present,
//! and its commit would then fail naming it. Here the read and the leases
//! happen in one transaction that is ordered against the sweep's (see
//! [`super::gc_sweep`]): on SQLite it takes the write lock before reading,
//! on PostgreSQL it reads the blob rows `FOR SHARE`, which waits for a
//! sweep holding them `FOR UPDATE` and then no longer finds the deleted
//! ones. Either the sweep sees the leases and keeps the pack, or this sees
//! the blobs gone and reports them missing.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row};
use stowage_protocol::ids::{BlobId, TenantId, UploadSessionId};

use super::{
    Backend, Database, DbError, MAX_BOUND_IDS, id_from_bytes, placeholders, query_error,
    upload_sessions,
};

/// The ids among `ids` that `tenant` does not hold, in request order; the
/// others are leased to session `session` in the same transaction.
///
/// # Errors
///
/// Fails when a statement fails (including an unknown session); then
/// nothing is leased.
pub async fn lease_present(
    db: &Database,
    tenant: TenantId,
    session: UploadSessionId,
    ids: &[BlobId],
) -> Result<Vec<BlobId>, DbError> {
    let mut tx = db.begin().await?;
    let lock = match db.backend() {
        Backend::Postgres => " ORDER BY id FOR SHARE",
        Backend::Sqlite => {
            // A write first: the transaction holds SQLite's write lock from
            // here on, so what it reads next cannot change before it commits.
            sqlx::query(
                "UPDATE upload_sessions SET lease_expires_at = lease_expires_at \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.to_hex())
            .bind(session.to_hex())
            .execute(&mut *tx)
            .await
            .map_err(query_error("lock the database for leasing"))?;
            ""
        }
    };
    // Locked in ascending id order across all batches, as the sweep locks.
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut present = HashSet::with_capacity(ids.len());
    for batch in sorted.chunks(MAX_BOUND_IDS) {
        let sql = format!(
            "SELECT id FROM blobs WHERE tenant_id = $1 AND id IN ({}){lock}",
            placeholders(2, batch.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_hex());
        for id in batch {
            query = query.bind(id.as_bytes().to_vec());
        }
        let rows = query
            .fetch_all(&mut *tx)
            .await
            .map_err(query_error("look up blobs"))?;
        for row in &rows {
            let bytes: Vec<u8> = row.try_get("id").map_err(query_error("decode blob id"))?;
            present.insert(id_from_bytes("blobs.id", &bytes, BlobId::from_bytes)?);
        }
    }
    let leased: Vec<BlobId> = ids
        .iter()
        .filter(|id| present.contains(id))
        .copied()
        .collect();
    upload_sessions::lease_blobs_in(&mut tx, tenant, session, &leased).await?;
    tx.commit()
        .await
        .map_err(query_error("commit leasing blobs to an upload session"))?;
    Ok(ids
        .iter()
        .filter(|id| !present.contains(id))
        .copied()
        .collect())
}
