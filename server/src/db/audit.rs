//! The `audit_log` table: who did what to which object, per tenant.
//!
//! Entries are append-only; `tenant_id` is NULL for platform-level events.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use stowage_protocol::ids::TenantId;

use super::{Database, DbError, from_millis, new_row_id, now_millis, parse_id, query_error};

/// What to record.
#[derive(Debug, Clone, Copy)]
pub struct NewAuditEntry<'a> {
    /// Who acted: a user id, an agent id or "system".
    pub actor: &'a str,
    /// What they did, as a dotted verb such as `tenant.create`.
    pub action: &'a str,
    /// What it was done to, e.g. a snapshot id.
    pub object: &'a str,
    /// Free-form details, usually JSON.
    pub details: &'a str,
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Random row id.
    pub id: String,
    /// The tenant concerned, or `None` for platform events.
    pub tenant_id: Option<TenantId>,
    /// Who acted.
    pub actor: String,
    /// What they did.
    pub action: String,
    /// What it was done to.
    pub object: String,
    /// Free-form details.
    pub details: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// Appends an entry for `tenant` (or the platform, with `None`).
///
/// # Errors
///
/// Fails when the insert fails.
pub async fn record(
    db: &Database,
    tenant: Option<TenantId>,
    entry: NewAuditEntry<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit_log (id, tenant_id, actor, action, object, details, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_row_id())
    .bind(tenant.map(|t| t.to_hex()))
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.object)
    .bind(entry.details)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .map_err(query_error("record audit entry"))?;
    Ok(())
}

/// The newest `limit` entries of `tenant`, newest first.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn list_for_tenant(
    db: &Database,
    tenant: TenantId,
    limit: u32,
) -> Result<Vec<AuditEntry>, DbError> {
    sqlx::query(
        "SELECT id, tenant_id, actor, action, object, details, at FROM audit_log \
         WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(tenant.to_hex())
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list audit entries"))?
    .iter()
    .map(decode)
    .collect()
}

fn decode(row: &AnyRow) -> Result<AuditEntry, DbError> {
    let read = query_error("decode audit row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let tenant: Option<String> = row.try_get("tenant_id").map_err(read)?;
    Ok(AuditEntry {
        id: text("id")?,
        tenant_id: tenant
            .map(|t| parse_id("audit_log.tenant_id", &t))
            .transpose()?,
        actor: text("actor")?,
        action: text("action")?,
        object: text("object")?,
        details: text("details")?,
        at: from_millis("audit_log.at", row.try_get("at").map_err(read)?)?,
    })
}
