//! The `tenant_keys` table: each tenant's wrapped key material and
//! repository config, uploaded once by its first agent.
//!
//! The server cannot unwrap these bytes; it only keeps and returns them.
//! They are written once: a second upload of the very same bytes (a retry)
//! succeeds, different bytes are refused so no agent can swap a tenant's keys.

use chrono::{DateTime, Utc};
use sqlx::Row;
use stowage_protocol::ids::TenantId;

use super::{Database, DbError, from_millis, now_millis, query_error};

/// A tenant's stored keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKeys {
    /// The wrapped id key and recovery secret (`WrappedTenantKeys` bytes).
    pub wrapped_keys: Vec<u8>,
    /// The recovery public key, for write-only agents.
    pub public_key: Vec<u8>,
    /// The repository config's JSON text, exactly as uploaded.
    pub repo_config: String,
    /// When the keys were uploaded.
    pub created_at: DateTime<Utc>,
}

/// What an upload carries.
#[derive(Debug, Clone, Copy)]
pub struct NewTenantKeys<'a> {
    /// The wrapped key bytes.
    pub wrapped_keys: &'a [u8],
    /// The recovery public key bytes.
    pub public_key: &'a [u8],
    /// The repository config's JSON text.
    pub repo_config: &'a str,
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The keys were stored now.
    Stored,
    /// The same keys were stored before (a retried upload).
    AlreadyStored,
}

/// Stores `tenant`'s keys unless it has some.
///
/// # Errors
///
/// [`DbError::AlreadyExists`] when the tenant has different keys;
/// [`DbError::Query`] otherwise (including an unknown tenant).
pub async fn put(
    db: &Database,
    tenant: TenantId,
    new: NewTenantKeys<'_>,
) -> Result<PutOutcome, DbError> {
    let done = sqlx::query(
        "INSERT INTO tenant_keys (tenant_id, wrapped_keys, public_key, repo_config, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant.to_hex())
    .bind(new.wrapped_keys.to_vec())
    .bind(new.public_key.to_vec())
    .bind(new.repo_config)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .map_err(query_error("store tenant keys"))?;
    if done.rows_affected() == 1 {
        return Ok(PutOutcome::Stored);
    }
    let stored = get(db, tenant).await?;
    if stored.wrapped_keys == new.wrapped_keys
        && stored.public_key == new.public_key
        && stored.repo_config == new.repo_config
    {
        Ok(PutOutcome::AlreadyStored)
    } else {
        Err(DbError::AlreadyExists {
            what: "keys of tenant",
            value: tenant.to_hex(),
        })
    }
}

/// `tenant`'s keys.
///
/// # Errors
///
/// [`DbError::NotFound`] when the tenant has none yet.
pub async fn get(db: &Database, tenant: TenantId) -> Result<TenantKeys, DbError> {
    let row = sqlx::query(
        "SELECT wrapped_keys, public_key, repo_config, created_at FROM tenant_keys \
         WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read tenant keys"))?
    .ok_or_else(|| DbError::NotFound {
        what: "keys of tenant",
        key: tenant.to_hex(),
    })?;
    let read = query_error("decode tenant keys");
    Ok(TenantKeys {
        wrapped_keys: row.try_get("wrapped_keys").map_err(read)?,
        public_key: row.try_get("public_key").map_err(read)?,
        repo_config: row.try_get("repo_config").map_err(read)?,
        created_at: from_millis(
            "tenant_keys.created_at",
            row.try_get("created_at").map_err(read)?,
        )?,
    })
}
