//! The `tenants` table: one row per customer account.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use stowage_protocol::ids::TenantId;

use super::{Database, DbError, from_millis, insert_error, now_millis, parse_id, query_error};
use crate::domain::TenantName;

/// A stored tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Random id, also the tenant's object-store prefix.
    pub id: TenantId,
    /// Unique display name.
    pub name: TenantName,
    /// When the tenant was created.
    pub created_at: DateTime<Utc>,
}

/// Creates a tenant with a fresh id.
///
/// # Errors
///
/// [`DbError::AlreadyExists`] when the name is taken; [`DbError::Query`] otherwise.
pub async fn insert(db: &Database, name: &TenantName) -> Result<Tenant, DbError> {
    let tenant = Tenant {
        id: TenantId::random(),
        name: name.clone(),
        created_at: from_millis("tenants.created_at", now_millis())?,
    };
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(tenant.id.to_hex())
        .bind(tenant.name.as_str())
        .bind(tenant.created_at.timestamp_millis())
        .execute(db.pool())
        .await
        .map_err(insert_error("insert tenant", "tenant", name.as_str()))?;
    Ok(tenant)
}

/// The tenant with this id.
///
/// # Errors
///
/// [`DbError::NotFound`] when there is none.
pub async fn get(db: &Database, tenant: TenantId) -> Result<Tenant, DbError> {
    sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
        .bind(tenant.to_hex())
        .fetch_optional(db.pool())
        .await
        .map_err(query_error("read tenant"))?
        .map(|row| decode(&row))
        .transpose()?
        .ok_or_else(|| DbError::NotFound {
            what: "tenant",
            key: tenant.to_hex(),
        })
}

/// The tenant with this name, if any.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn find_by_name(db: &Database, name: &TenantName) -> Result<Option<Tenant>, DbError> {
    sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(db.pool())
        .await
        .map_err(query_error("find tenant by name"))?
        .map(|row| decode(&row))
        .transpose()
}

/// Every tenant, oldest first (for the platform administrator).
///
/// # Errors
///
/// Fails when the query fails.
pub async fn list(db: &Database) -> Result<Vec<Tenant>, DbError> {
    sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id")
        .fetch_all(db.pool())
        .await
        .map_err(query_error("list tenants"))?
        .iter()
        .map(decode)
        .collect()
}

fn decode(row: &AnyRow) -> Result<Tenant, DbError> {
    let read = query_error("decode tenant row");
    let id: String = row.try_get("id").map_err(read)?;
    let name: String = row.try_get("name").map_err(read)?;
    let created_at: i64 = row.try_get("created_at").map_err(read)?;
    Ok(Tenant {
        id: parse_id("tenants.id", &id)?,
        name: TenantName::parse(&name).map_err(|err| DbError::Corrupt {
            what: "tenants.name",
            problem: err.to_string(),
        })?,
        created_at: from_millis("tenants.created_at", created_at)?,
    })
}
