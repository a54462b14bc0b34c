//! What garbage collection writes (`crate::gc`): the sweep transaction that
//! removes dead packs from the index and the epoch that tells a commit it
//! ran (the records of object deletions are in [`super::gc_objects`]).
//!
//! # Locking
//!
//! A [`SweepTransaction`] starts by bumping the tenant's row in `gc_epochs`.
//! That first statement is a write, so on SQLite the transaction holds the
//! database's single write lock from its first statement: every other write
//! (a lease, a pack index, a commit) runs wholly before or wholly after it,
//! and what it reads afterwards is current. On PostgreSQL the bump locks the
//! epoch row, which a commit reads `FOR SHARE` inside its own transaction
//! ([`epoch_in`]), so a sweep and a commit of the same tenant are ordered;
//! and [`SweepTransaction::lock_blobs`] takes the blob rows of the packs
//! `FOR UPDATE`, which orders the sweep against `missing`, which reads the
//! blob rows it reports present `FOR SHARE` before leasing them
//! ([`super::gc_leases`]).

use sqlx::{AnyConnection, AssertSqlSafe, Row};
use stowage_protocol::ids::{BlobId, PackId, TenantId, UploadSessionId};

use super::gc::SnapshotRoots;
use super::{
    Backend, Database, DbError, MAX_BOUND_IDS, id_from_bytes, parse_id, placeholders, query_error,
};

/// The tenant's garbage collection epoch: how many sweep transactions have
/// run for it. 0 before the first.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn epoch(db: &Database, tenant: TenantId) -> Result<i64, DbError> {
    read_epoch(&mut *db.acquire().await?, tenant, "").await
}

/// The tenant's epoch, read on `conn` (the committing transaction) and, on
/// PostgreSQL, locked `FOR SHARE` until it ends, so that no sweep
/// transaction of the tenant can commit in between.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn epoch_in(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
) -> Result<i64, DbError> {
    let lock = match backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    read_epoch(conn, tenant, lock).await
}

async fn read_epoch(
    conn: &mut AnyConnection,
    tenant: TenantId,
    lock: &str,
) -> Result<i64, DbError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT epoch FROM gc_epochs WHERE tenant_id = $1{lock}"
    )))
    .bind(tenant.to_hex())
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error("read the garbage collection epoch"))?;
    row.map_or(Ok(0), |row| {
        row.try_get("epoch")
            .map_err(query_error("decode the garbage collection epoch"))
    })
}

/// Creates the tenant's epoch row (at 0) if it has none, so that every
/// later commit can lock it.
///
/// # Errors
///
/// Fails when the insert fails (including an unknown tenant).
pub async fn ensure_epoch(db: &Database, tenant: TenantId) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO gc_epochs (tenant_id, epoch) VALUES ($1, 0) \
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant.to_hex())
    .execute(db.pool())
    .await
    .map_err(query_error("create the garbage collection epoch"))?;
    Ok(())
}

/// One sweep transaction of one tenant; see the module docs. Dropping it
/// uncommitted rolls everything back.
pub struct SweepTransaction {
    /// The open transaction.
    pub(super) tx: sqlx::Transaction<'static, sqlx::Any>,
    /// Which locking clauses apply.
    pub(super) backend: Backend,
    /// Every statement is scoped to it.
    pub(super) tenant: TenantId,
    /// The epoch this transaction bumped the tenant to: the stamp of every
    /// deletion it records (see [`super::gc_tombstones`]).
    pub(super) epoch: i64,
}

impl std::fmt::Debug for SweepTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepTransaction")
            .field("backend", &self.backend)
            .field("tenant", &self.tenant)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Begins a sweep transaction for `tenant` by bumping its epoch (which
/// [`ensure_epoch`] must have created).
///
/// # Errors
///
/// Fails when `BEGIN` or the bump fails, or the epoch row is missing.
pub async fn begin(db: &Database, tenant: TenantId) -> Result<SweepTransaction, DbError> {
    let mut tx = db.begin().await?;
    let bumped = sqlx::query("UPDATE gc_epochs SET epoch = epoch + 1 WHERE tenant_id = $1")
        .bind(tenant.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(query_error("bump the garbage collection epoch"))?;
    if bumped.rows_affected() == 0 {
        return Err(DbError::NotFound {
            what: "garbage collection epoch of tenant",
            key: tenant.to_hex(),
        });
    }
    let epoch = read_epoch(&mut tx, tenant, "").await?;
    Ok(SweepTransaction {
        tx,
        backend: db.backend(),
        tenant,
        epoch,
    })
}

impl SweepTransaction {
    /// Which of `packs` still have their row (another run may have swept
    /// them meanwhile); on PostgreSQL those rows stay locked `FOR UPDATE`
    /// until the transaction ends.
    ///
    /// # Errors
    ///
    /// Fails when the query fails.
    pub async fn lock_packs(&mut self, packs: &[PackId]) -> Result<Vec<PackId>, DbError> {
        let lock = match self.backend {
            Backend::Postgres => " ORDER BY id FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut found = Vec::new();
        for batch in packs.chunks(MAX_BOUND_IDS) {
            let sql = format!(
                "SELECT id FROM packs WHERE tenant_id = $1 AND id IN ({}){lock}",
                placeholders(2, batch.len())
            );
            let rows = bind_packs(sqlx::query(AssertSqlSafe(sql)), self.tenant, batch)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(query_error("lock dead packs"))?;
            for row in &rows {
                let id: Vec<u8> = row.try_get("id").map_err(query_error("decode pack id"))?;
                found.push(id_from_bytes("packs.id", &id, PackId::from_bytes)?);
            }
        }
        Ok(found)
    }

    /// The blobs indexed in `packs`, as (pack, blob) pairs; on PostgreSQL
    /// their rows stay locked `FOR UPDATE` until the transaction ends.
    ///
    /// # Errors
    ///
    /// Fails when the query fails.
    pub async fn lock_blobs(&mut self, packs: &[PackId]) -> Result<Vec<(PackId, BlobId)>, DbError> {
        let lock = match self.backend {
            // Id order, like `missing`'s `FOR SHARE`, so the two never wait
            // on each other in a cycle.
            Backend::Postgres => " ORDER BY id FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut found = Vec::new();
        for batch in packs.chunks(MAX_BOUND_IDS) {
            let sql = format!(
                "SELECT pack_id, id FROM blobs WHERE tenant_id = $1 AND pack_id IN ({}){lock}",
                placeholders(2, batch.len())
            );
            let rows = bind_packs(sqlx::query(AssertSqlSafe(sql)), self.tenant, batch)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(query_error("lock the blobs of dead packs"))?;
            for row in &rows {
                let read = query_error("decode blob row");
                let pack: Vec<u8> = row.try_get("pack_id").map_err(read)?;
                let blob: Vec<u8> = row.try_get("id").map_err(read)?;
                found.push((
                    id_from_bytes("blobs.pack_id", &pack, PackId::from_bytes)?,
                    id_from_bytes("blobs.id", &blob, BlobId::from_bytes)?,
                ));
            }
        }
        Ok(found)
    }

    /// Which of `packs` hold a blob leased to a session that is open at
    /// `now_millis`.
    ///
    /// # Errors
    ///
    /// Fails when the query fails.
    pub async fn leased_packs(
        &mut self,
        packs: &[PackId],
        now_millis: i64,
    ) -> Result<Vec<PackId>, DbError> {
        let mut found: Vec<PackId> = self
            .leased_in(packs, now_millis)
            .await?
            .into_iter()
            .map(|(pack, _)| pack)
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Each blob indexed in `packs` that is leased to a session open at
    /// `now_millis`, with its pack: what the sweep and the repack both
    /// check inside their transactions.
    ///
    /// # Errors
    ///
    /// Fails when the query fails.
    pub(super) async fn leased_in(
        &mut self,
        packs: &[PackId],
        now_millis: i64,
    ) -> Result<Vec<(PackId, BlobId)>, DbError> {
        let mut found = Vec::new();
        for batch in packs.chunks(MAX_BOUND_IDS) {
            let sql = format!(
                // Through the open sessions (few) to the lease table's
                // primary key (tenant, session, blob): no scan of the leases
                // of sessions long expired.
                "SELECT DISTINCT b.pack_id AS pack_id, b.id AS id FROM blobs b \
                 JOIN upload_sessions s ON s.tenant_id = b.tenant_id \
                 JOIN session_leases l ON l.tenant_id = b.tenant_id AND l.session_id = s.id \
                 AND l.blob_id = b.id \
                 WHERE b.tenant_id = $1 AND b.pack_id IN ({}) \
                 AND s.committed_at IS NULL AND s.lease_expires_at > ${}",
                placeholders(2, batch.len()),
                batch.len() + 2
            );
            let rows = bind_packs(sqlx::query(AssertSqlSafe(sql)), self.tenant, batch)
                .bind(now_millis)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(query_error("look for leased blobs in packs"))?;
            for row in &rows {
                let read = query_error("decode a leased blob");
                let pack: Vec<u8> = row.try_get("pack_id").map_err(read)?;
                let id: Vec<u8> = row.try_get("id").map_err(read)?;
                found.push((
                    id_from_bytes("blobs.pack_id", &pack, PackId::from_bytes)?,
                    id_from_bytes("blobs.id", &id, BlobId::from_bytes)?,
                ));
            }
        }
        Ok(found)
    }

    /// The snapshots of the tenant committed at or after `since_millis`,
    /// with the blobs each keeps alive.
    ///
    /// # Errors
    ///
    /// Fails when the query fails or a row does not decode.
    pub async fn snapshots_since(
        &mut self,
        since_millis: i64,
    ) -> Result<Vec<SnapshotRoots>, DbError> {
        let rows = sqlx::query(
            "SELECT id, root, record FROM snapshots WHERE tenant_id = $1 AND committed_at >= $2",
        )
        .bind(self.tenant.to_hex())
        .bind(since_millis)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(query_error("list recent snapshots"))?;
        rows.iter().map(super::gc::decode_snapshot_roots).collect()
    }

    /// The sessions of the tenant open at `now_millis`, with when each
    /// lease runs out.
    ///
    /// # Errors
    ///
    /// Fails when the query fails.
    pub async fn live_sessions(
        &mut self,
        now_millis: i64,
    ) -> Result<Vec<(UploadSessionId, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, lease_expires_at FROM upload_sessions \
             WHERE tenant_id = $1 AND committed_at IS NULL AND lease_expires_at > $2",
        )
        .bind(self.tenant.to_hex())
        .bind(now_millis)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(query_error("list live upload sessions"))?;
        rows.iter()
            .map(|row| {
                let read = query_error("decode upload session row");
                let id: String = row.try_get("id").map_err(read)?;
                let expires: i64 = row.try_get("lease_expires_at").map_err(read)?;
                Ok((parse_id("upload_sessions.id", &id)?, expires))
            })
            .collect()
    }

    /// Removes `packs` (id and object size) from the index — their blobs,
    /// whose tree references and complete-tree rows cascade, and the pack
    /// rows — and records each as pending object deletion
    /// ([`Self::record_deletions`]). Answers how many blob rows went.
    ///
    /// # Errors
    ///
    /// Fails when a statement fails; the transaction must then be dropped.
    pub async fn delete_packs(&mut self, packs: &[(PackId, u64)]) -> Result<u64, DbError> {
        let mut blobs = 0;
        for batch in packs.chunks(MAX_BOUND_IDS) {
            let ids: Vec<PackId> = batch.iter().map(|(id, _)| *id).collect();
            let list = placeholders(2, ids.len());
            let deleted = bind_packs(
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM blobs WHERE tenant_id = $1 AND pack_id IN ({list})"
                ))),
                self.tenant,
                &ids,
            )
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("delete the blobs of dead packs"))?;
            blobs += deleted.rows_affected();
            bind_packs(
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM packs WHERE tenant_id = $1 AND id IN ({list})"
                ))),
                self.tenant,
                &ids,
            )
            .execute(&mut *self.tx)
            .await
            .map_err(query_error("delete dead packs"))?;
        }
        self.record_deletions(packs).await?;
        Ok(blobs)
    }

    /// Commits the transaction.
    ///
    /// # Errors
    ///
    /// Fails when `COMMIT` fails; then nothing of it happened.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx
            .commit()
            .await
            .map_err(query_error("commit a garbage collection sweep"))
    }
}

/// Binds the tenant as `$1` and `packs` as `$2…`.
pub(super) fn bind_packs<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    tenant: TenantId,
    packs: &[PackId],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query = query.bind(tenant.to_hex());
    for pack in packs {
        query = query.bind(pack.as_bytes().to_vec());
    }
    query
}
