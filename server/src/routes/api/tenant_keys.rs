//! `PUT` and `GET /api/v1/tenant/keys`: the tenant's wrapped keys and
//! repository config, written once by its first agent.
//!
//! The server cannot unwrap the keys; it checks that the bytes are a
//! well-formed version-1 wrapping and that the config parses, so a broken
//! agent cannot leave a tenant with keys nobody can read. A retry with the
//! very same bundle succeeds; a different bundle is refused so no agent can
//! swap a tenant's keys.

use actix_web::{HttpResponse, web};
use anyhow::Context;
use stowage_protocol::api::{TenantKeyBundle, codes};
use stowage_protocol::crypto::WrappedTenantKeys;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::tenant_keys::{self, NewTenantKeys, PutOutcome};
use crate::db::{Database, DbError};

/// Stores the tenant's key bundle: 201 when stored now, 200 for a retry of the same bundle.
///
/// # Errors
///
/// 400 when the wrapped keys or the config are invalid; 409 when the tenant
/// has different keys.
pub async fn put(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    body: web::Json<TenantKeyBundle>,
) -> Result<HttpResponse, Failure> {
    let bundle = body.into_inner();
    // Deserializing already checked the bytes; checking again keeps this
    // endpoint safe if the serde form ever loosens.
    let wrapped = WrappedTenantKeys::from_bytes(bundle.wrapped_keys.as_bytes())
        .map_err(|e| Failure::Validation(format!("the wrapped tenant keys are invalid - {e}")))?;
    bundle
        .repo_config()
        .map_err(|e| Failure::Validation(format!("the repository config is invalid - {e}")))?;
    let public_key = wrapped.public_key();
    let new = NewTenantKeys {
        wrapped_keys: wrapped.as_bytes(),
        public_key: public_key.as_bytes(),
        repo_config: &bundle.repo_config,
    };
    let outcome = tenant_keys::put(&db, who.tenant, new).await;
    let (action, result) = match outcome {
        Ok(PutOutcome::Stored) => ("tenant_keys.create", Ok(HttpResponse::Created().finish())),
        Ok(PutOutcome::AlreadyStored) => return Ok(HttpResponse::Ok().finish()),
        Err(DbError::AlreadyExists { .. }) => (
            "tenant_keys.replace_refused",
            Err(Failure::Conflict {
                code: codes::TENANT_KEYS_EXIST,
                message: "tenant keys already exist and cannot be replaced; fetch them instead"
                    .to_owned(),
            }),
        ),
        Err(other) => return Err(anyhow::Error::new(other).into()),
    };
    audit::record(
        &db,
        Some(who.tenant),
        NewAuditEntry {
            actor: &who.agent.to_hex(),
            action,
            object: &who.tenant.to_hex(),
            details: "{}",
        },
    )
    .await
    .context("unable to audit a tenant key upload")?;
    result
}

/// Returns the tenant's key bundle.
///
/// # Errors
///
/// 404 when the tenant has no keys yet.
pub async fn get(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
) -> Result<HttpResponse, Failure> {
    let stored = match tenant_keys::get(&db, who.tenant).await {
        Ok(stored) => stored,
        Err(DbError::NotFound { .. }) => {
            return Err(Failure::NotFound {
                code: codes::TENANT_KEYS_MISSING,
                message: "the tenant has no keys yet; the first agent must create them".to_owned(),
            });
        }
        Err(other) => return Err(anyhow::Error::new(other).into()),
    };
    let wrapped_keys = WrappedTenantKeys::from_bytes(&stored.wrapped_keys)
        .context("the stored wrapped tenant keys are invalid")?;
    Ok(HttpResponse::Ok().json(TenantKeyBundle {
        wrapped_keys,
        repo_config: stored.repo_config,
    }))
}
