//! The `packs`, `blobs` and `blob_refs` tables: the index of what a tenant
//! has stored, built from each uploaded pack's table.
//!
//! A pack is indexed in one transaction — the pack row, one row per blob and
//! one per reference of each tree blob — so the index never shows half a
//! pack. Indexing the same pack again (a retried upload) changes nothing and
//! reports it. A blob that is already indexed from another pack keeps its
//! first location. An upload indexes and leases the pack's blobs to its
//! session in that same transaction ([`index_for_session`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId, TenantId, UploadSessionId};

use super::{
    Database, DbError, MAX_BOUND_IDS, from_millis, gc_tombstones, id_from_bytes, now_millis,
    placeholders, query_error, select_ids_for, tenant_ids_query, to_i64, upload_sessions,
};

/// A stored pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// BLAKE3 of the pack's bytes.
    pub id: PackId,
    /// Size of the pack object in bytes.
    pub size: u64,
    /// Number of blobs in its table.
    pub blob_count: u64,
    /// When it was indexed.
    pub created_at: DateTime<Utc>,
}

/// One entry of a pack's table, as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedBlob {
    /// The blob's id.
    pub id: BlobId,
    /// Data chunk or tree.
    pub kind: BlobKind,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// For a tree: the blobs it references (subtrees and content chunks).
    pub refs: Vec<BlobId>,
}

/// Where a stored blob lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The blob.
    pub id: BlobId,
    /// The pack holding it.
    pub pack_id: PackId,
    /// Data chunk or tree.
    pub kind: BlobKind,
    /// Offset in the pack.
    pub offset: u32,
    /// Length in the pack.
    pub length: u32,
}

/// What [`index`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexOutcome {
    /// The pack and its blobs were indexed now.
    Indexed,
    /// The pack was indexed before; nothing changed.
    AlreadyIndexed,
    /// Garbage collection is deleting, or since the upload's admission
    /// deleted, this pack's object; nothing changed (only from
    /// [`index_admitted`]).
    BeingDeleted,
}

/// Indexes pack `id` of `size` bytes with all its blobs, in one transaction,
/// leasing nothing (tools and tests; uploads use [`index_for_session`]).
///
/// # Errors
///
/// Fails when a statement fails (including an unknown tenant); then nothing
/// of the pack is indexed.
pub async fn index(
    db: &Database,
    tenant: TenantId,
    id: PackId,
    size: u64,
    blobs: &[IndexedBlob],
) -> Result<IndexOutcome, DbError> {
    let mut tx = db.begin().await?;
    let outcome = index_in(&mut tx, tenant, id, size, blobs).await?;
    tx.commit()
        .await
        .map_err(query_error("commit indexing a pack"))?;
    Ok(outcome)
}

/// Indexes pack `id` like [`index`] and leases every blob of its table to
/// upload session `session`, in the same transaction: no instant exists at
/// which a blob this upload indexed is unleased, so garbage collection
/// running beside the backup cannot take it before the commit. A pack that
/// was indexed before (a racing upload) changes nothing but is leased all
/// the same.
///
/// # Errors
///
/// Fails when a statement fails (including an unknown tenant or session);
/// then nothing of the pack is indexed and nothing is leased.
pub async fn index_for_session(
    db: &Database,
    tenant: TenantId,
    session: UploadSessionId,
    id: PackId,
    size: u64,
    blobs: &[IndexedBlob],
) -> Result<IndexOutcome, DbError> {
    let mut tx = db.begin().await?;
    let outcome = index_in(&mut tx, tenant, id, size, blobs).await?;
    let ids: Vec<BlobId> = blobs.iter().map(|blob| blob.id).collect();
    upload_sessions::lease_blobs_in(&mut tx, tenant, session, &ids).await?;
    tx.commit()
        .await
        .map_err(query_error("commit indexing a pack"))?;
    Ok(outcome)
}

/// Indexes pack `id` like [`index_for_session`] (or [`index`] when
/// `session` is `None`), for an upload admitted by
/// [`gc_tombstones::admit`] with `mark`: when garbage collection recorded
/// a deletion of the pack that the upload may have raced, nothing is
/// indexed and the answer is [`IndexOutcome::BeingDeleted`] (see
/// [`gc_tombstones`]).
///
/// # Errors
///
/// Fails when a statement fails; then nothing is indexed or leased.
pub async fn index_admitted(
    db: &Database,
    tenant: TenantId,
    session: Option<UploadSessionId>,
    id: PackId,
    size: u64,
    blobs: &[IndexedBlob],
    mark: i64,
) -> Result<IndexOutcome, DbError> {
    let mut tx = db.begin().await?;
    // The pack row is the first write, so on SQLite the check below runs
    // under the write lock.
    let outcome = index_in(&mut tx, tenant, id, size, blobs).await?;
    if outcome == IndexOutcome::Indexed
        && gc_tombstones::refuses_in(&mut tx, db.backend(), tenant, id, mark).await?
    {
        return Ok(IndexOutcome::BeingDeleted);
    }
    if let Some(session) = session {
        let ids: Vec<BlobId> = blobs.iter().map(|blob| blob.id).collect();
        upload_sessions::lease_blobs_in(&mut tx, tenant, session, &ids).await?;
    }
    tx.commit()
        .await
        .map_err(query_error("commit indexing a pack"))?;
    Ok(outcome)
}

/// Indexes pack `id` on `conn` (a transaction the caller commits); a pack
/// already indexed is left as it is.
///
/// # Errors
///
/// Fails when a statement fails; the caller's transaction must then be
/// dropped.
pub async fn index_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: PackId,
    size: u64,
    blobs: &[IndexedBlob],
) -> Result<IndexOutcome, DbError> {
    let tenant_hex = tenant.to_hex();
    let inserted = sqlx::query(
        "INSERT INTO packs (tenant_id, id, size, blob_count, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant_hex.as_str())
    .bind(id.as_bytes().to_vec())
    .bind(to_i64(size))
    .bind(to_i64(blobs.len() as u64))
    .bind(now_millis())
    .execute(&mut *conn)
    .await
    .map_err(query_error("insert pack"))?;
    if inserted.rows_affected() == 0 {
        return Ok(IndexOutcome::AlreadyIndexed);
    }
    for batch in blobs.chunks(MAX_BOUND_IDS / 5) {
        let rows = (0..batch.len())
            .map(|i| format!("($1, {})", placeholders(2 + i * 5, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO blobs (tenant_id, id, pack_id, kind, \"offset\", length) VALUES {rows} \
             ON CONFLICT (tenant_id, id) DO NOTHING"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant_hex.as_str());
        for blob in batch {
            query = query
                .bind(blob.id.as_bytes().to_vec())
                .bind(id.as_bytes().to_vec())
                .bind(i16::from(blob.kind.as_u8()))
                .bind(i64::from(blob.offset))
                .bind(i64::from(blob.length));
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(query_error("index blobs of a pack"))?;
    }
    let refs: Vec<(&BlobId, &BlobId)> = blobs
        .iter()
        .flat_map(|blob| blob.refs.iter().map(move |r| (&blob.id, r)))
        .collect();
    for batch in refs.chunks(MAX_BOUND_IDS / 2) {
        let rows = (0..batch.len())
            .map(|i| format!("($1, {})", placeholders(2 + i * 2, 2)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO blob_refs (tenant_id, tree_id, ref_id) VALUES {rows} \
             ON CONFLICT (tenant_id, tree_id, ref_id) DO NOTHING"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant_hex.as_str());
        for (tree, reference) in batch {
            query = query
                .bind(tree.as_bytes().to_vec())
                .bind(reference.as_bytes().to_vec());
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(query_error("index tree references of a pack"))?;
    }
    Ok(IndexOutcome::Indexed)
}

/// The pack of `tenant` with this id.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such pack.
pub async fn get(db: &Database, tenant: TenantId, id: PackId) -> Result<Pack, DbError> {
    let row = sqlx::query(
        "SELECT size, blob_count, created_at FROM packs WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_hex())
    .bind(id.as_bytes().to_vec())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read pack"))?
    .ok_or_else(|| DbError::NotFound {
        what: "pack",
        key: id.to_hex(),
    })?;
    let read = query_error("decode pack row");
    Ok(Pack {
        id,
        size: to_u64("packs.size", row.try_get("size").map_err(read)?)?,
        blob_count: to_u64("packs.blob_count", row.try_get("blob_count").map_err(read)?)?,
        created_at: from_millis("packs.created_at", row.try_get("created_at").map_err(read)?)?,
    })
}

/// The ids of the blobs indexed in pack `pack` of `tenant`, in id order (a
/// retried upload leases them to its session without reading the pack).
///
/// # Errors
///
/// Fails when the query fails or a stored id is malformed.
pub async fn blob_ids(
    db: &Database,
    tenant: TenantId,
    pack: PackId,
) -> Result<Vec<BlobId>, DbError> {
    let rows =
        sqlx::query("SELECT id FROM blobs WHERE tenant_id = $1 AND pack_id = $2 ORDER BY id")
            .bind(tenant.to_hex())
            .bind(pack.as_bytes().to_vec())
            .fetch_all(db.pool())
            .await
            .map_err(query_error("list the blobs of a pack"))?;
    rows.iter()
        .map(|row| {
            let id: Vec<u8> = row.try_get("id").map_err(query_error("decode blob row"))?;
            id_from_bytes("blobs.id", &id, BlobId::from_bytes)
        })
        .collect()
}

/// The ids among `ids` that `tenant` does not hold, in request order.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn missing_blobs(
    db: &Database,
    tenant: TenantId,
    ids: &[BlobId],
) -> Result<Vec<BlobId>, DbError> {
    let present: HashSet<BlobId> = locate(db, tenant, ids)
        .await?
        .into_iter()
        .map(|location| location.id)
        .collect();
    Ok(ids
        .iter()
        .filter(|id| !present.contains(id))
        .copied()
        .collect())
}

/// Where each of `ids` that `tenant` holds lies; absent ids are left out.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn locate(
    db: &Database,
    tenant: TenantId,
    ids: &[BlobId],
) -> Result<Vec<BlobLocation>, DbError> {
    locate_in(&mut *db.acquire().await?, tenant, ids).await
}

/// [`locate`] on `conn`: a connection or a transaction.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn locate_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    ids: &[BlobId],
) -> Result<Vec<BlobLocation>, DbError> {
    let mut found = Vec::new();
    for batch in ids.chunks(MAX_BOUND_IDS) {
        let query = tenant_ids_query(tenant, batch, |ids| {
            format!(
                "SELECT id, pack_id, kind, \"offset\", length FROM blobs \
                 WHERE tenant_id = $1 AND id IN ({ids})"
            )
        });
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(query_error("look up blobs"))?;
        for row in &rows {
            found.push(decode_location(row)?);
        }
    }
    Ok(found)
}

/// The blobs that tree blob `tree` of `tenant` references, in id order.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn tree_refs(
    db: &Database,
    tenant: TenantId,
    tree: BlobId,
) -> Result<Vec<BlobId>, DbError> {
    let rows = sqlx::query(
        "SELECT ref_id FROM blob_refs WHERE tenant_id = $1 AND tree_id = $2 ORDER BY ref_id",
    )
    .bind(tenant.to_hex())
    .bind(tree.as_bytes().to_vec())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("read tree references"))?;
    rows.iter()
        .map(|row| {
            let bytes: Vec<u8> = row
                .try_get("ref_id")
                .map_err(query_error("decode tree reference"))?;
            id_from_bytes("blob_refs.ref_id", &bytes, BlobId::from_bytes)
        })
        .collect()
}

/// Every blob that any of the tree blobs `trees` of `tenant` references, in
/// no particular order and with repeats (one query per batch of trees, for
/// the commit's reachability walk), on `conn`: a connection or a transaction.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn refs_of_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    trees: &[BlobId],
) -> Result<Vec<BlobId>, DbError> {
    select_ids_for(
        conn,
        tenant,
        trees,
        "ref_id",
        "read tree references",
        |ids| format!("SELECT ref_id FROM blob_refs WHERE tenant_id = $1 AND tree_id IN ({ids})"),
    )
    .await
}

fn decode_location(row: &AnyRow) -> Result<BlobLocation, DbError> {
    let read = query_error("decode blob row");
    let id: Vec<u8> = row.try_get("id").map_err(read)?;
    let pack: Vec<u8> = row.try_get("pack_id").map_err(read)?;
    let kind: i64 = row.try_get("kind").map_err(read)?;
    let offset: i64 = row.try_get("offset").map_err(read)?;
    let length: i64 = row.try_get("length").map_err(read)?;
    let corrupt = |what: &'static str, value: i64| DbError::Corrupt {
        what,
        problem: format!("{value} is out of range"),
    };
    Ok(BlobLocation {
        id: id_from_bytes("blobs.id", &id, BlobId::from_bytes)?,
        pack_id: id_from_bytes("blobs.pack_id", &pack, PackId::from_bytes)?,
        kind: u8::try_from(kind)
            .ok()
            .and_then(BlobKind::from_u8)
            .ok_or_else(|| corrupt("blobs.kind", kind))?,
        offset: u32::try_from(offset).map_err(|_| corrupt("blobs.offset", offset))?,
        length: u32::try_from(length).map_err(|_| corrupt("blobs.length", length))?,
    })
}

fn to_u64(what: &'static str, value: i64) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::Corrupt {
        what,
        problem: format!("{value} is negative"),
    })
}
