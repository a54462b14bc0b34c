//! The `snapshots` table: committed backups, the one record per backup the
//! server can read.
//!
//! The id is the BLAKE3 of the record's canonical JSON, so the same commit
//! retried has the same id and [`insert`] reports it instead of failing. The
//! root, host, plan and times are copied out of the record into columns for
//! listing and retention; `record` keeps the canonical text itself.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use stowage_protocol::ids::{AgentId, BlobId, PlanId, SnapshotId, TenantId};

use super::{Database, DbError, from_millis, id_from_bytes, now_millis, parse_id, query_error};

/// Columns read by [`decode`].
const COLUMNS: &str =
    "id, agent_id, record, root, hostname, plan_id, started_at, finished_at, committed_at";

/// What a commit stores.
#[derive(Debug, Clone, Copy)]
pub struct NewSnapshot<'a> {
    /// BLAKE3 of `record`.
    pub id: SnapshotId,
    /// The committing agent.
    pub agent_id: AgentId,
    /// The record's canonical JSON.
    pub record: &'a str,
    /// The root tree blob.
    pub root: BlobId,
    /// The source machine's host name.
    pub hostname: &'a str,
    /// The plan it ran for, if any.
    pub plan_id: Option<PlanId>,
    /// When the backup started.
    pub started_at: DateTime<Utc>,
    /// When the backup finished.
    pub finished_at: DateTime<Utc>,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// BLAKE3 of `record`.
    pub id: SnapshotId,
    /// The committing agent.
    pub agent_id: AgentId,
    /// The record's canonical JSON.
    pub record: String,
    /// The root tree blob.
    pub root: BlobId,
    /// The source machine's host name.
    pub hostname: String,
    /// The plan it ran for, if any.
    pub plan_id: Option<PlanId>,
    /// When the backup started.
    pub started_at: DateTime<Utc>,
    /// When the backup finished.
    pub finished_at: DateTime<Utc>,
    /// When the server accepted the commit.
    pub committed_at: DateTime<Utc>,
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The snapshot was stored now.
    Committed,
    /// It was stored before (a retried commit); nothing changed.
    AlreadyCommitted,
}

/// Stores a snapshot of `tenant` unless it is stored already.
///
/// # Errors
///
/// Fails when the insert fails (including an unknown tenant).
pub async fn insert(
    db: &Database,
    tenant: TenantId,
    new: NewSnapshot<'_>,
) -> Result<InsertOutcome, DbError> {
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(query_error("reach the database to insert a snapshot"))?;
    insert_in(&mut conn, tenant, new).await
}

/// [`insert`] on `conn`: the commit route passes the transaction that also
/// closes the upload session, so the snapshot is visible only once both
/// writes are.
///
/// # Errors
///
/// Fails when the insert fails (including an unknown tenant).
pub async fn insert_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    new: NewSnapshot<'_>,
) -> Result<InsertOutcome, DbError> {
    let done = sqlx::query(
        "INSERT INTO snapshots (tenant_id, id, agent_id, record, root, hostname, plan_id, \
         started_at, finished_at, committed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant.to_hex())
    .bind(new.id.as_bytes().to_vec())
    .bind(new.agent_id.to_hex())
    .bind(new.record)
    .bind(new.root.as_bytes().to_vec())
    .bind(new.hostname)
    .bind(new.plan_id.map(|plan| plan.to_hex()))
    .bind(new.started_at.timestamp_millis())
    .bind(new.finished_at.timestamp_millis())
    .bind(now_millis())
    .execute(&mut *conn)
    .await
    .map_err(query_error("insert snapshot"))?;
    Ok(if done.rows_affected() == 1 {
        InsertOutcome::Committed
    } else {
        InsertOutcome::AlreadyCommitted
    })
}

/// The snapshot of `tenant` with this id.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such snapshot.
pub async fn get(
    db: &Database,
    tenant: TenantId,
    id: SnapshotId,
) -> Result<StoredSnapshot, DbError> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.to_hex())
    .bind(id.as_bytes().to_vec())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read snapshot"))?
    .map(|row| decode(&row))
    .transpose()?
    .ok_or_else(|| DbError::NotFound {
        what: "snapshot",
        key: id.to_hex(),
    })
}

/// Which snapshots a [`list_page`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    /// Only snapshots of this plan; all plans (and manual backups) when `None`.
    pub plan: Option<PlanId>,
    /// Only snapshots after this one in the order of [`list_page`]: the page
    /// after the one ending at it. From the newest when `None`.
    pub before: Option<&'a StoredSnapshot>,
}

/// The newest `limit` snapshots of `tenant` that pass `filter`, newest first
/// (by commit time, then id).
///
/// # Errors
///
/// Fails when the query fails.
pub async fn list_page(
    db: &Database,
    tenant: TenantId,
    filter: ListFilter<'_>,
    limit: u32,
) -> Result<Vec<StoredSnapshot>, DbError> {
    let mut next = 2;
    let mut placeholder = || {
        next += 1;
        format!("${}", next - 1)
    };
    let plan_clause = match filter.plan {
        Some(_) => format!(" AND plan_id = {}", placeholder()),
        None => String::new(),
    };
    let before_clause = match filter.before {
        Some(_) => format!(
            " AND (committed_at < {} OR (committed_at = {} AND id < {}))",
            placeholder(),
            placeholder(),
            placeholder()
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = $1{plan_clause}{before_clause} \
         ORDER BY committed_at DESC, id DESC LIMIT {}",
        placeholder()
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_hex());
    if let Some(plan) = filter.plan {
        query = query.bind(plan.to_hex());
    }
    if let Some(cursor) = filter.before {
        let at = cursor.committed_at.timestamp_millis();
        query = query.bind(at).bind(at).bind(cursor.id.as_bytes().to_vec());
    }
    query
        .bind(i64::from(limit))
        .fetch_all(db.pool())
        .await
        .map_err(query_error("list a page of snapshots"))?
        .iter()
        .map(decode)
        .collect()
}

/// The newest snapshot that agent `agent` of `tenant` committed for plan
/// `plan`, if any.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn newest_of_plan_agent(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
    agent: AgentId,
) -> Result<Option<StoredSnapshot>, DbError> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = $1 AND plan_id = $2 AND agent_id = $3 \
         ORDER BY committed_at DESC, id DESC LIMIT 1"
    )))
    .bind(tenant.to_hex())
    .bind(plan.to_hex())
    .bind(agent.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read a plan's newest snapshot"))?
    .as_ref()
    .map(decode)
    .transpose()
}

fn decode(row: &AnyRow) -> Result<StoredSnapshot, DbError> {
    let read = query_error("decode snapshot row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let bytes = |column: &str| row.try_get::<Vec<u8>, _>(column).map_err(read);
    let time = |column: &'static str| -> Result<DateTime<Utc>, DbError> {
        from_millis(column, row.try_get(column).map_err(read)?)
    };
    let plan: Option<String> = row.try_get("plan_id").map_err(read)?;
    Ok(StoredSnapshot {
        id: id_from_bytes("snapshots.id", &bytes("id")?, SnapshotId::from_bytes)?,
        agent_id: parse_id("snapshots.agent_id", &text("agent_id")?)?,
        record: text("record")?,
        root: id_from_bytes("snapshots.root", &bytes("root")?, BlobId::from_bytes)?,
        hostname: text("hostname")?,
        plan_id: plan
            .map(|plan| parse_id("snapshots.plan_id", &plan))
            .transpose()?,
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
        committed_at: time("committed_at")?,
    })
}
