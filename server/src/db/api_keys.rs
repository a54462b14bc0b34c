//! The `api_keys` table: operator API keys, each inside one tenant with a
//! role that caps what it may do. Only a hash of the secret is stored.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use stowage_protocol::ids::{ApiKeyId, TenantId};

use super::{Database, DbError, from_millis, insert_error, now_millis, parse_id, query_error};
use crate::domain::Role;

/// A stored key (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Random id, part of the key.
    pub id: ApiKeyId,
    /// Unique within the tenant, e.g. "terraform".
    pub name: String,
    /// What the key may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What authentication needs of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// The stored hash of the secret.
    pub secret_hash: String,
    /// The key's role.
    pub role: Role,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Stores key `id` named `name` of `tenant` with `role` and the hash of its secret.
///
/// # Errors
///
/// [`DbError::AlreadyExists`] when the name is taken in the tenant.
pub async fn insert(
    db: &Database,
    tenant: TenantId,
    id: ApiKeyId,
    name: &str,
    role: Role,
    secret_hash: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, role, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_hex())
    .bind(tenant.to_hex())
    .bind(name)
    .bind(role.as_str())
    .bind(secret_hash)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .map_err(insert_error("insert API key", "API key", name))?;
    Ok(())
}

/// What authenticating key `id` of `tenant` needs, and marks it used.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such key.
pub async fn check(db: &Database, tenant: TenantId, id: ApiKeyId) -> Result<KeyCheck, DbError> {
    let row = sqlx::query(
        "SELECT secret_hash, role, revoked_at FROM api_keys WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read API key"))?
    .ok_or_else(|| DbError::NotFound {
        what: "API key",
        key: id.to_hex(),
    })?;
    let read = query_error("decode API key");
    let role: String = row.try_get("role").map_err(read)?;
    Ok(KeyCheck {
        secret_hash: row.try_get("secret_hash").map_err(read)?,
        role: role
            .parse()
            .map_err(|error: crate::domain::RoleParseError| DbError::Corrupt {
                what: "api_keys.role",
                problem: error.to_string(),
            })?,
        revoked: row
            .try_get::<Option<i64>, _>("revoked_at")
            .map_err(read)?
            .is_some(),
    })
}

/// Records that key `id` of `tenant` was used now.
///
/// # Errors
///
/// Fails when the update fails.
pub async fn touch(db: &Database, tenant: TenantId, id: ApiKeyId) -> Result<(), DbError> {
    sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.to_hex())
        .bind(id.to_hex())
        .bind(now_millis())
        .execute(db.pool())
        .await
        .map_err(query_error("record API key use"))?;
    Ok(())
}

/// Every key of `tenant`, by name.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<ApiKey>, DbError> {
    sqlx::query(
        "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_keys \
         WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list API keys"))?
    .iter()
    .map(decode)
    .collect()
}

/// Revokes the key of `tenant` named `name` (the first revocation time stays).
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such key.
pub async fn revoke(db: &Database, tenant: TenantId, name: &str) -> Result<(), DbError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
         WHERE tenant_id = $1 AND name = $2",
    )
    .bind(tenant.to_hex())
    .bind(name)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .map_err(query_error("revoke API key"))?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound {
            what: "API key",
            key: format!("{name:?}"),
        });
    }
    Ok(())
}

fn decode(row: &AnyRow) -> Result<ApiKey, DbError> {
    let read = query_error("decode API key");
    let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, DbError> {
        row.try_get::<Option<i64>, _>(column)
            .map_err(read)?
            .map(|millis| from_millis(column, millis))
            .transpose()
    };
    let role: String = row.try_get("role").map_err(read)?;
    Ok(ApiKey {
        id: parse_id(
            "api_keys.id",
            &row.try_get::<String, _>("id").map_err(read)?,
        )?,
        name: row.try_get("name").map_err(read)?,
        role: role
            .parse()
            .map_err(|error: crate::domain::RoleParseError| DbError::Corrupt {
                what: "api_keys.role",
                problem: error.to_string(),
            })?,
        created_at: from_millis(
            "api_keys.created_at",
            row.try_get("created_at").map_err(read)?,
        )?,
        last_used_at: time("last_used_at")?,
        revoked_at: time("revoked_at")?,
    })
}
