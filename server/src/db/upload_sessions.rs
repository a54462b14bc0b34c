//! The `upload_sessions` and `session_leases` tables: a backup in progress.
//!
//! A session holds a lease that every request on it extends. Blobs the
//! server reported present to the session are recorded as leased, so garbage
//! collection keeps them until the lease runs out or the snapshot is
//! committed — otherwise a blob could be collected between "you have it" and
//! the commit that references it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use stowage_protocol::ids::{AgentId, BlobId, PackId, TenantId, UploadSessionId};

use super::{
    Database, DbError, MAX_BOUND_IDS, duration_millis, from_millis, now_millis, parse_id,
    placeholders, query_error,
};

/// Columns read by [`decode`].
const COLUMNS: &str = "id, agent_id, created_at, lease_expires_at, committed_at";

/// A stored upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// Random id.
    pub id: UploadSessionId,
    /// The agent uploading.
    pub agent_id: AgentId,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When the lease ends unless extended.
    pub lease_expires_at: DateTime<Utc>,
    /// When its snapshot was committed, if it was.
    pub committed_at: Option<DateTime<Utc>>,
}

/// Opens a session for `agent` of `tenant` with a lease of `lease`.
///
/// # Errors
///
/// Fails when the insert fails (including an unknown tenant or agent).
pub async fn open(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    lease: Duration,
) -> Result<UploadSession, DbError> {
    let now = now_millis();
    let session = UploadSession {
        id: UploadSessionId::random(),
        agent_id: agent,
        created_at: from_millis("upload_sessions.created_at", now)?,
        lease_expires_at: from_millis(
            "upload_sessions.lease_expires_at",
            now + duration_millis(lease),
        )?,
        committed_at: None,
    };
    sqlx::query(
        "INSERT INTO upload_sessions (id, tenant_id, agent_id, created_at, lease_expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session.id.to_hex())
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(now)
    .bind(session.lease_expires_at.timestamp_millis())
    .execute(db.pool())
    .await
    .map_err(query_error("open upload session"))?;
    Ok(session)
}

/// The session of `tenant` with this id.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such session.
pub async fn get(
    db: &Database,
    tenant: TenantId,
    id: UploadSessionId,
) -> Result<UploadSession, DbError> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM upload_sessions WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read upload session"))?
    .map(|row| decode(&row))
    .transpose()?
    .ok_or_else(|| not_found(id))
}

/// Extends a live, uncommitted session's lease to `lease` from now.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such session, or it is
/// committed or its lease has run out (the agent must open a new one).
pub async fn extend_lease(
    db: &Database,
    tenant: TenantId,
    id: UploadSessionId,
    lease: Duration,
) -> Result<DateTime<Utc>, DbError> {
    let now = now_millis();
    let until = now + duration_millis(lease);
    let done = sqlx::query(
        "UPDATE upload_sessions SET lease_expires_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND committed_at IS NULL AND lease_expires_at > $4",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(until)
    .bind(now)
    .execute(db.pool())
    .await
    .map_err(query_error("extend upload session lease"))?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    from_millis("upload_sessions.lease_expires_at", until)
}

/// Records that `ids` were reported present to session `id` (repeats are
/// fine), all or none.
///
/// # Errors
///
/// Fails when an insert fails (including an unknown session).
pub async fn lease_blobs(
    db: &Database,
    tenant: TenantId,
    id: UploadSessionId,
    ids: &[BlobId],
) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    lease_blobs_in(&mut tx, tenant, id, ids).await?;
    tx.commit()
        .await
        .map_err(query_error("commit leasing blobs to an upload session"))
}

/// [`lease_blobs`] on `conn`, a transaction the caller commits (pack
/// indexing leases in its own transaction).
///
/// # Errors
///
/// Fails when an insert fails (including an unknown session).
pub async fn lease_blobs_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: UploadSessionId,
    ids: &[BlobId],
) -> Result<(), DbError> {
    for batch in ids.chunks(MAX_BOUND_IDS) {
        let rows = (0..batch.len())
            .map(|i| format!("($1, $2, {})", placeholders(3 + i, 1)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO session_leases (tenant_id, session_id, blob_id) VALUES {rows} \
             ON CONFLICT (tenant_id, session_id, blob_id) DO NOTHING"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.to_hex())
            .bind(id.to_hex());
        for blob in batch {
            query = query.bind(blob.as_bytes().to_vec());
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(query_error("lease blobs to an upload session"))?;
    }
    Ok(())
}

/// Leases to session `id` every blob indexed in pack `pack` of `tenant`, in
/// one statement (a retried upload of an indexed pack, whose body is not
/// read). Blobs of the pack first indexed from another pack are not
/// included: their index rows name that pack.
///
/// # Errors
///
/// Fails when the insert fails (including an unknown session).
pub async fn lease_pack(
    db: &Database,
    tenant: TenantId,
    id: UploadSessionId,
    pack: PackId,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO session_leases (tenant_id, session_id, blob_id) \
         SELECT tenant_id, $2, id FROM blobs WHERE tenant_id = $1 AND pack_id = $3 \
         ON CONFLICT (tenant_id, session_id, blob_id) DO NOTHING",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(pack.as_bytes().to_vec())
    .execute(db.pool())
    .await
    .map_err(query_error(
        "lease the blobs of a pack to an upload session",
    ))?;
    Ok(())
}

/// Ends the lease of open session `id` of `tenant` now, exactly as if it
/// had run out: later requests on it are refused as expired.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such open session.
pub async fn expire(db: &Database, tenant: TenantId, id: UploadSessionId) -> Result<(), DbError> {
    let done = sqlx::query(
        "UPDATE upload_sessions SET lease_expires_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND committed_at IS NULL",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(now_millis() - 1)
    .execute(db.pool())
    .await
    .map_err(query_error("expire upload session"))?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// How many blobs session `id` of `tenant` holds leases on.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn leased_count(
    db: &Database,
    tenant: TenantId,
    id: UploadSessionId,
) -> Result<u64, DbError> {
    let count: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM session_leases WHERE tenant_id = $1 AND session_id = $2",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .fetch_one(db.pool())
    .await
    .map_err(query_error("count leased blobs"))?
    .try_get("n")
    .map_err(query_error("decode leased blob count"))?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Marks session `id` committed and drops its leases (the snapshot now
/// protects its blobs), whatever its lease. Committing twice keeps the first
/// time. The commit route uses [`mark_committed_in`] instead, inside the
/// transaction that stores the snapshot.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such session.
pub async fn mark_committed(
    db: &Database,
    tenant: TenantId,
    id: UploadSessionId,
) -> Result<(), DbError> {
    let mut tx = db
        .pool()
        .begin()
        .await
        .map_err(query_error("begin committing an upload session"))?;
    let done = sqlx::query(
        "UPDATE upload_sessions SET committed_at = COALESCE(committed_at, $3) \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(now_millis())
    .execute(&mut *tx)
    .await
    .map_err(query_error("commit upload session"))?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    sqlx::query("DELETE FROM session_leases WHERE tenant_id = $1 AND session_id = $2")
        .bind(tenant.to_hex())
        .bind(id.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(query_error("release upload session leases"))?;
    tx.commit()
        .await
        .map_err(query_error("commit upload session"))
}

/// Marks session `id` committed and drops its leases, on `conn` (the
/// committing transaction, which also stores the snapshot), but only if it
/// is open: uncommitted and its lease not run out. Answers whether it was;
/// `false` means another commit won or the lease expired, and the caller
/// must roll back. On PostgreSQL a racing commit of the same session waits
/// on the row and then finds it committed.
///
/// # Errors
///
/// Fails when a statement fails.
pub async fn mark_committed_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: UploadSessionId,
) -> Result<bool, DbError> {
    let now = now_millis();
    let done = sqlx::query(
        "UPDATE upload_sessions SET committed_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND committed_at IS NULL AND lease_expires_at > $4",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(query_error("commit upload session"))?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM session_leases WHERE tenant_id = $1 AND session_id = $2")
        .bind(tenant.to_hex())
        .bind(id.to_hex())
        .execute(&mut *conn)
        .await
        .map_err(query_error("release upload session leases"))?;
    Ok(true)
}

fn not_found(id: UploadSessionId) -> DbError {
    DbError::NotFound {
        what: "upload session",
        key: id.to_hex(),
    }
}

fn decode(row: &AnyRow) -> Result<UploadSession, DbError> {
    let read = query_error("decode upload session row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let committed: Option<i64> = row.try_get("committed_at").map_err(read)?;
    Ok(UploadSession {
        id: parse_id("upload_sessions.id", &text("id")?)?,
        agent_id: parse_id("upload_sessions.agent_id", &text("agent_id")?)?,
        created_at: from_millis(
            "upload_sessions.created_at",
            row.try_get("created_at").map_err(read)?,
        )?,
        lease_expires_at: from_millis(
            "upload_sessions.lease_expires_at",
            row.try_get("lease_expires_at").map_err(read)?,
        )?,
        committed_at: committed
            .map(|millis| from_millis("upload_sessions.committed_at", millis))
            .transpose()?,
    })
}
