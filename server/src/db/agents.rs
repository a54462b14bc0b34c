//! The `agents` table: enrolled backup agents, each inside one tenant.
//!
//! The agent's credential is kept only as its hash (see `auth::token`);
//! revoking sets `revoked_at` and keeps the row, so snapshots and audit
//! entries still name a known agent.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use stowage_protocol::ids::{AgentId, TenantId};

use super::{Database, DbError, from_millis, insert_error, now_millis, parse_id, query_error};

/// Columns read by [`decode`].
const COLUMNS: &str = "id, tenant_id, name, hostname, created_at, last_seen_at, revoked_at";

/// A stored agent (without its credential hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Random id.
    pub id: AgentId,
    /// The tenant the agent backs up into.
    pub tenant_id: TenantId,
    /// Display name, unique within the tenant.
    pub name: String,
    /// The machine's host name as the agent reported it.
    pub hostname: String,
    /// When the agent enrolled.
    pub created_at: DateTime<Utc>,
    /// When the agent last made an authenticated request.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When the agent's credential was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What it takes to store an agent.
#[derive(Debug, Clone, Copy)]
pub struct NewAgent<'a> {
    /// The id, chosen by the caller so it can be recorded on the enrollment token first.
    pub id: AgentId,
    /// Display name.
    pub name: &'a str,
    /// Host name.
    pub hostname: &'a str,
    /// Hash of the agent's credential (`auth::token::hash`).
    pub credential_hash: &'a str,
}

/// Stores an agent of `tenant`.
///
/// # Errors
///
/// [`DbError::AlreadyExists`] when the name is taken in this tenant;
/// [`DbError::Query`] otherwise (including an unknown tenant).
pub async fn insert(db: &Database, tenant: TenantId, new: NewAgent<'_>) -> Result<Agent, DbError> {
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(query_error("acquire a connection to insert an agent"))?;
    insert_on(&mut conn, tenant, new).await
}

/// [`insert`] on one connection, so enrollment can run it inside its transaction.
pub(super) async fn insert_on(
    conn: &mut AnyConnection,
    tenant: TenantId,
    new: NewAgent<'_>,
) -> Result<Agent, DbError> {
    let agent = Agent {
        id: new.id,
        tenant_id: tenant,
        name: new.name.to_owned(),
        hostname: new.hostname.to_owned(),
        created_at: from_millis("agents.created_at", now_millis())?,
        last_seen_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO agents (id, tenant_id, name, hostname, credential_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(agent.id.to_hex())
    .bind(tenant.to_hex())
    .bind(new.name)
    .bind(new.hostname)
    .bind(new.credential_hash)
    .bind(agent.created_at.timestamp_millis())
    .execute(conn)
    .await
    .map_err(insert_error("insert agent", "agent", new.name))?;
    Ok(agent)
}

/// The agent of `tenant` with this id.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such agent.
pub async fn get(db: &Database, tenant: TenantId, id: AgentId) -> Result<Agent, DbError> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read agent"))?
    .map(|row| decode(&row))
    .transpose()?
    .ok_or_else(|| DbError::NotFound {
        what: "agent",
        key: id.to_hex(),
    })
}

/// The stored credential hash of an agent of `tenant`, for authentication.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such agent.
pub async fn credential_hash(
    db: &Database,
    tenant: TenantId,
    id: AgentId,
) -> Result<String, DbError> {
    let row = sqlx::query("SELECT credential_hash FROM agents WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.to_hex())
        .bind(id.to_hex())
        .fetch_optional(db.pool())
        .await
        .map_err(query_error("read agent credential"))?
        .ok_or_else(|| DbError::NotFound {
            what: "agent",
            key: id.to_hex(),
        })?;
    row.try_get("credential_hash")
        .map_err(query_error("decode agent credential"))
}

/// Records that an agent of `tenant` made an authenticated request now.
///
/// Writes at most once per `every` per agent (the `WHERE` skips fresher
/// rows), so authentication does not turn every request into a write.
///
/// # Errors
///
/// Fails when the update fails; an unknown agent changes nothing.
pub async fn touch_last_seen(
    db: &Database,
    tenant: TenantId,
    id: AgentId,
    every: std::time::Duration,
) -> Result<(), DbError> {
    let now = now_millis();
    let stale_before = now.saturating_sub(i64::try_from(every.as_millis()).unwrap_or(i64::MAX));
    sqlx::query(
        "UPDATE agents SET last_seen_at = $3 WHERE tenant_id = $1 AND id = $2 \
         AND (last_seen_at IS NULL OR last_seen_at < $4)",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(now)
    .bind(stale_before)
    .execute(db.pool())
    .await
    .map_err(query_error("record agent last seen"))?;
    Ok(())
}

/// Every agent of `tenant`, by name (unique per tenant, so the order is
/// stable even for agents enrolled in the same millisecond).
///
/// # Errors
///
/// Fails when the query fails.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<Agent>, DbError> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 ORDER BY name"
    )))
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list agents"))?
    .iter()
    .map(decode)
    .collect()
}

/// Revokes an agent's credential (idempotent: the first revocation time stays).
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such agent.
pub async fn revoke(db: &Database, tenant: TenantId, id: AgentId) -> Result<(), DbError> {
    let done = sqlx::query(
        "UPDATE agents SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(now_millis())
    .execute(db.pool())
    .await
    .map_err(query_error("revoke agent"))?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound {
            what: "agent",
            key: id.to_hex(),
        });
    }
    Ok(())
}

fn decode(row: &AnyRow) -> Result<Agent, DbError> {
    let read = query_error("decode agent row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, DbError> {
        row.try_get::<Option<i64>, _>(column)
            .map_err(read)?
            .map(|millis| from_millis(column, millis))
            .transpose()
    };
    Ok(Agent {
        id: parse_id("agents.id", &text("id")?)?,
        tenant_id: parse_id("agents.tenant_id", &text("tenant_id")?)?,
        name: text("name")?,
        hostname: text("hostname")?,
        created_at: from_millis(
            "agents.created_at",
            row.try_get("created_at").map_err(read)?,
        )?,
        last_seen_at: time("last_seen_at")?,
        revoked_at: time("revoked_at")?,
    })
}
