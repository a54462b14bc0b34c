//! `api-key create|list|revoke`: operator API keys for automation.
//!
//! A key is shown once, at creation, on stdout; only its hash is kept. Its
//! role caps what it may do (viewer reads; operator and above change plans
//! and start jobs). Creating and revoking are audited.

use secrecy::ExposeSecret;
use serde_json::json;
use stowage_protocol::ids::ApiKeyId;

use super::admin::{CLI_ACTOR, open, tenant_id};
use super::table;
use crate::auth::{api_key, token};
use crate::configuration::Settings;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::{DbError, api_keys};
use crate::domain::Role;

/// Creates a key named `name` with `role`; returns the key (shown once).
///
/// # Errors
///
/// An unknown tenant or role, an empty or taken name, or a database failure.
pub async fn create(
    settings: &Settings,
    tenant_name: &str,
    name: &str,
    role: &str,
) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 {
        anyhow::bail!("an API key's name must be 1 to 64 characters, not {name:?}");
    }
    let role: Role = role.trim().parse()?;
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let id = ApiKeyId::random();
    let secret = token::generate();
    api_keys::insert(&db, tenant, id, name, role, &secret.hash)
        .await
        .map_err(|error| match error {
            DbError::AlreadyExists { .. } => anyhow::anyhow!(
                "tenant {:?} already has an API key named {name:?}",
                tenant_name.trim()
            ),
            other => other.into(),
        })?;
    let details = json!({ "name": name, "role": role.as_str() }).to_string();
    audit::record(
        &db,
        Some(tenant),
        NewAuditEntry {
            actor: CLI_ACTOR,
            action: "api_key.create",
            object: &id.to_hex(),
            details: &details,
        },
    )
    .await?;
    db.close().await;
    Ok(api_key::key(tenant, id, secret.secret.expose_secret()))
}

/// Prints the tenant's keys (never their secrets).
///
/// # Errors
///
/// An unknown tenant or a database failure.
pub async fn list(settings: &Settings, tenant_name: &str) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let keys = api_keys::list(&db, tenant).await?;
    db.close().await;
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            vec![
                key.name.clone(),
                key.role.to_string(),
                time(Some(key.created_at)),
                time(key.last_used_at),
                time(key.revoked_at),
            ]
        })
        .collect();
    Ok(table::render(
        &["NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"],
        &rows,
    ))
}

/// Revokes the key named `name`.
///
/// # Errors
///
/// An unknown tenant or key, or a database failure.
pub async fn revoke(settings: &Settings, tenant_name: &str, name: &str) -> anyhow::Result<()> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    api_keys::revoke(&db, tenant, name.trim())
        .await
        .map_err(|error| match error {
            DbError::NotFound { .. } => anyhow::anyhow!(
                "tenant {:?} has no API key named {:?}",
                tenant_name.trim(),
                name.trim()
            ),
            other => other.into(),
        })?;
    let details = json!({ "name": name.trim() }).to_string();
    audit::record(
        &db,
        Some(tenant),
        NewAuditEntry {
            actor: CLI_ACTOR,
            action: "api_key.revoke",
            object: name.trim(),
            details: &details,
        },
    )
    .await?;
    db.close().await;
    Ok(())
}
