//! What garbage collection reads to mark (`crate::gc`): the roots of a
//! tenant — snapshot roots and the blobs leased to live upload sessions —
//! and the tree references below them.
//!
//! Every listing here is a page of a key-ordered scan (`… > $after ORDER
//! BY key LIMIT n`) over a primary key or index, never one long cursor: a
//! tenant has millions of rows, and a long read would hold a PostgreSQL
//! snapshot open and keep SQLite's write-ahead log from being checkpointed
//! for the whole mark. Each page is a short statement; the caller keeps
//! only what it has not yet seen.

use sqlx::Row;
use sqlx::any::AnyRow;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId, SnapshotId, TenantId, UploadSessionId};
use stowage_protocol::snapshot::SnapshotRecord;

use super::{
    Database, DbError, MAX_BOUND_IDS, id_from_bytes, parse_id, query_error, tenant_ids_query,
};

/// The blobs a snapshot keeps alive: its root tree and its error log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRoots {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its root tree, and its error log blob when it has one.
    pub roots: Vec<BlobId>,
}

/// Up to `limit` snapshots of `tenant` with ids after `after`, in id order,
/// with the blobs each keeps alive.
///
/// # Errors
///
/// Fails when the query fails or a stored row does not decode.
pub async fn snapshot_roots_page(
    db: &Database,
    tenant: TenantId,
    after: Option<SnapshotId>,
    limit: usize,
) -> Result<Vec<SnapshotRoots>, DbError> {
    let rows = sqlx::query(
        "SELECT id, root, record FROM snapshots WHERE tenant_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3",
    )
    .bind(tenant.to_hex())
    .bind(after.map_or_else(Vec::new, |id| id.as_bytes().to_vec()))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list snapshot roots"))?;
    rows.iter().map(decode_snapshot_roots).collect()
}

pub(super) fn decode_snapshot_roots(row: &AnyRow) -> Result<SnapshotRoots, DbError> {
    let read = query_error("decode snapshot root row");
    let id: Vec<u8> = row.try_get("id").map_err(read)?;
    let root: Vec<u8> = row.try_get("root").map_err(read)?;
    let record: String = row.try_get("record").map_err(read)?;
    // The error log is only in the record; a snapshot keeps it like its root.
    let parsed: SnapshotRecord =
        serde_json::from_str(&record).map_err(|error| DbError::Corrupt {
            what: "snapshots.record",
            problem: error.to_string(),
        })?;
    let mut roots = vec![id_from_bytes("snapshots.root", &root, BlobId::from_bytes)?];
    roots.extend(parsed.error_log);
    Ok(SnapshotRoots {
        id: id_from_bytes("snapshots.id", &id, SnapshotId::from_bytes)?,
        roots,
    })
}

/// The upload sessions of `tenant` that are open at `now_millis`:
/// uncommitted and with a lease that has not run out, with the time each
/// lease runs out (which every request on a session pushes forward).
///
/// # Errors
///
/// Fails when the query fails.
pub async fn live_sessions(
    db: &Database,
    tenant: TenantId,
    now_millis: i64,
) -> Result<Vec<(UploadSessionId, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT id, lease_expires_at FROM upload_sessions \
         WHERE tenant_id = $1 AND committed_at IS NULL AND lease_expires_at > $2 ORDER BY id",
    )
    .bind(tenant.to_hex())
    .bind(now_millis)
    .fetch_all(db.pool())
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

/// Up to `limit` blobs leased to session `session` of `tenant` with ids
/// after `after`, in id order (the lease table's primary key order).
///
/// # Errors
///
/// Fails when the query fails.
pub async fn leased_page(
    db: &Database,
    tenant: TenantId,
    session: UploadSessionId,
    after: Option<BlobId>,
    limit: usize,
) -> Result<Vec<BlobId>, DbError> {
    let rows = sqlx::query(
        "SELECT blob_id FROM session_leases WHERE tenant_id = $1 AND session_id = $2 \
         AND blob_id > $3 ORDER BY blob_id LIMIT $4",
    )
    .bind(tenant.to_hex())
    .bind(session.to_hex())
    .bind(after.map_or_else(Vec::new, |id| id.as_bytes().to_vec()))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list leased blobs"))?;
    rows.iter().map(|row| blob_column(row, "blob_id")).collect()
}

/// What the index says of a stored blob that the mark needs: whether to
/// walk it, and how many bytes it adds to the usage figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlob {
    /// Tree or data.
    pub kind: BlobKind,
    /// Its sealed length in its pack.
    pub length: u64,
}

/// The kind and length of each of `ids` that `tenant` stores; absent ids
/// are left out.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn kinds(
    db: &Database,
    tenant: TenantId,
    ids: &[BlobId],
) -> Result<Vec<(BlobId, StoredBlob)>, DbError> {
    let mut found = Vec::with_capacity(ids.len());
    for batch in ids.chunks(MAX_BOUND_IDS) {
        let rows = tenant_ids_query(tenant, batch, |list| {
            format!("SELECT id, kind, length FROM blobs WHERE tenant_id = $1 AND id IN ({list})")
        })
        .fetch_all(db.pool())
        .await
        .map_err(query_error("look up blob kinds"))?;
        for row in &rows {
            let kind = kind_column(row)?.ok_or_else(|| DbError::Corrupt {
                what: "blobs.kind",
                problem: "a stored blob has no kind".to_owned(),
            })?;
            let length = length_column(row)?.unwrap_or_default();
            found.push((blob_column(row, "id")?, StoredBlob { kind, length }));
        }
    }
    Ok(found)
}

/// Every blob the trees `trees` of `tenant` reference, with its kind and
/// length when it is stored (`None` for a reference to a blob the tenant
/// lacks), in no particular order and with repeats.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn refs_with_kinds(
    db: &Database,
    tenant: TenantId,
    trees: &[BlobId],
) -> Result<Vec<(BlobId, Option<StoredBlob>)>, DbError> {
    let mut found = Vec::new();
    for batch in trees.chunks(MAX_BOUND_IDS) {
        let rows = tenant_ids_query(tenant, batch, |list| {
            format!(
                "SELECT r.ref_id AS id, b.kind AS kind, b.length AS length FROM blob_refs r \
                 LEFT JOIN blobs b ON b.tenant_id = r.tenant_id AND b.id = r.ref_id \
                 WHERE r.tenant_id = $1 AND r.tree_id IN ({list})"
            )
        })
        .fetch_all(db.pool())
        .await
        .map_err(query_error("read tree references"))?;
        for row in &rows {
            let stored = match kind_column(row)? {
                Some(kind) => Some(StoredBlob {
                    kind,
                    length: length_column(row)?.unwrap_or_default(),
                }),
                None => None,
            };
            found.push((blob_column(row, "id")?, stored));
        }
    }
    Ok(found)
}

/// Up to `limit` trees of `tenant` recorded complete, with ids after
/// `after`, in id order.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn complete_trees_page(
    db: &Database,
    tenant: TenantId,
    after: Option<BlobId>,
    limit: usize,
) -> Result<Vec<BlobId>, DbError> {
    let rows = sqlx::query(
        "SELECT tree_id FROM complete_trees WHERE tenant_id = $1 AND tree_id > $2 \
         ORDER BY tree_id LIMIT $3",
    )
    .bind(tenant.to_hex())
    .bind(after.map_or_else(Vec::new, |id| id.as_bytes().to_vec()))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list complete trees"))?;
    rows.iter().map(|row| blob_column(row, "tree_id")).collect()
}

/// A stored pack and the blobs indexed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackContents {
    /// The pack.
    pub id: PackId,
    /// Size of its object in bytes.
    pub size: u64,
    /// Entries in its table: more than `blobs` when some of its blobs were
    /// first indexed from another pack, whose copies are the live ones.
    pub blob_count: u64,
    /// The blobs whose index rows name it, with their sealed lengths. Empty
    /// when every blob of its table was first indexed from another pack.
    pub blobs: Vec<(BlobId, u64)>,
}

/// Up to `limit` packs of `tenant` with ids after `after`, in id order,
/// each with the blobs indexed in it.
///
/// # Errors
///
/// Fails when a query fails or a stored row does not decode.
pub async fn packs_page(
    db: &Database,
    tenant: TenantId,
    after: Option<PackId>,
    limit: usize,
) -> Result<Vec<PackContents>, DbError> {
    let rows = sqlx::query(
        "SELECT id, size, blob_count FROM packs WHERE tenant_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3",
    )
    .bind(tenant.to_hex())
    .bind(after.map_or_else(Vec::new, |id| id.as_bytes().to_vec()))
    .bind(i64::try_from(limit.min(MAX_BOUND_IDS)).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list packs"))?;
    let mut packs = Vec::with_capacity(rows.len());
    for row in &rows {
        let read = query_error("decode pack row");
        let id: Vec<u8> = row.try_get("id").map_err(read)?;
        let size: i64 = row.try_get("size").map_err(read)?;
        let blob_count: i64 = row.try_get("blob_count").map_err(read)?;
        packs.push(PackContents {
            id: id_from_bytes("packs.id", &id, PackId::from_bytes)?,
            size: u64::try_from(size).unwrap_or_default(),
            blob_count: u64::try_from(blob_count).unwrap_or_default(),
            blobs: Vec::new(),
        });
    }
    if packs.is_empty() {
        return Ok(packs);
    }
    let ids: Vec<BlobId> = packs
        .iter()
        .map(|pack| BlobId::from_bytes(*pack.id.as_bytes()))
        .collect();
    let rows = tenant_ids_query(tenant, &ids, |list| {
        format!(
            "SELECT pack_id, id, length FROM blobs WHERE tenant_id = $1 AND pack_id IN ({list})"
        )
    })
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list the blobs of packs"))?;
    for row in &rows {
        let read = query_error("decode blob row");
        let pack: Vec<u8> = row.try_get("pack_id").map_err(read)?;
        let pack = id_from_bytes("blobs.pack_id", &pack, PackId::from_bytes)?;
        let length: i64 = row.try_get("length").map_err(read)?;
        let blob = blob_column(row, "id")?;
        // The page is in id order, so the pack is found by binary search.
        if let Ok(index) = packs.binary_search_by(|candidate| candidate.id.cmp(&pack)) {
            packs[index]
                .blobs
                .push((blob, u64::try_from(length).unwrap_or_default()));
        }
    }
    Ok(packs)
}

/// Reads a 32-byte blob id column.
fn blob_column(row: &AnyRow, column: &'static str) -> Result<BlobId, DbError> {
    let bytes: Vec<u8> = row
        .try_get(column)
        .map_err(query_error("decode an id column"))?;
    id_from_bytes(column, &bytes, BlobId::from_bytes)
}

/// Reads a nullable `length` column.
fn length_column(row: &AnyRow) -> Result<Option<u64>, DbError> {
    let length: Option<i64> = row
        .try_get("length")
        .map_err(query_error("decode a blob length"))?;
    Ok(length.map(|value| u64::try_from(value).unwrap_or_default()))
}

/// Reads a nullable `kind` column as a [`BlobKind`].
fn kind_column(row: &AnyRow) -> Result<Option<BlobKind>, DbError> {
    let kind: Option<i64> = row
        .try_get("kind")
        .map_err(query_error("decode a blob kind"))?;
    kind.map(|value| {
        u8::try_from(value)
            .ok()
            .and_then(BlobKind::from_u8)
            .ok_or_else(|| DbError::Corrupt {
                what: "blobs.kind",
                problem: format!("{value} is not a blob kind"),
            })
    })
    .transpose()
}
