//! Operator API keys: the [`AuthenticatedOperator`] extractor.
//!
//! A key is `sk_<tenant id hex>.<key id hex>.<secret hex>`: the prefix
//! tells it from an agent credential at a glance (and in a leaked log),
//! the ids find its row directly, and the secret is checked against the
//! stored hash in constant time ([`token::verify`]). Every failure gets
//! the same 401, and spends the client address's request budget. A key
//! acts with its role: viewers read, operators and above change plans and
//! start jobs ([`AuthenticatedOperator::require`]).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use anyhow::Context;
use secrecy::SecretString;
use stowage_protocol::api::codes;
use stowage_protocol::ids::{ApiKeyId, TenantId};

use crate::auth::{bearer, token};
use crate::db::{Database, DbError, api_keys};
use crate::domain::Role;
use crate::rate_limit::RateLimits;
use crate::routes::api::Failure;

/// What every key starts with.
pub const KEY_PREFIX: &str = "sk_";

/// A request made with a valid, unrevoked API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedOperator {
    /// The key's tenant; every query of the request is scoped to it.
    pub tenant: TenantId,
    /// The key.
    pub key: ApiKeyId,
    /// What it may do.
    pub role: Role,
}

impl AuthenticatedOperator {
    /// The audit log's name for this caller.
    pub fn actor(&self) -> String {
        format!("api-key:{}", self.key.to_hex())
    }

    /// Passes when the key's role is `least` or more powerful.
    ///
    /// # Errors
    ///
    /// 403 naming the role needed.
    pub fn require(&self, least: Role) -> Result<(), Failure> {
        let rank = |role: Role| Role::ALL.iter().position(|r| *r == role);
        if rank(self.role) <= rank(least) {
            Ok(())
        } else {
            Err(Failure::Forbidden(format!(
                "this API key has the {} role; this needs {least} or above",
                self.role
            )))
        }
    }
}

/// The key handed out for key `id` of `tenant` with `secret`.
pub fn key(tenant: TenantId, id: ApiKeyId, secret: &str) -> String {
    format!("{KEY_PREFIX}{}.{}.{secret}", tenant.to_hex(), id.to_hex())
}

impl FromRequest for AuthenticatedOperator {
    type Error = Failure;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Failure>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let header = bearer::header(request);
        let db = request.app_data::<web::Data<Database>>().cloned();
        let limits = request.app_data::<web::Data<RateLimits>>().cloned();
        let address = request.peer_addr().map(|peer| peer.ip());
        Box::pin(async move {
            let db = db
                .context("the database is not registered with the HTTP server")
                .map_err(Failure::Unexpected)?;
            match authenticate(&db, header.as_deref()).await {
                Err(failure @ Failure::Unauthorized { .. }) => {
                    if let (Some(limits), Some(address)) = (limits, address) {
                        limits.check_address(address)?;
                    }
                    Err(failure)
                }
                other => other,
            }
        })
    }
}

fn unauthorized() -> Failure {
    Failure::Unauthorized {
        code: codes::UNAUTHORIZED,
        message: "the API key is missing, invalid or revoked".to_owned(),
    }
}

async fn authenticate(
    db: &Database,
    header: Option<&str>,
) -> Result<AuthenticatedOperator, Failure> {
    let (tenant, id, secret) =
        bearer::parse::<ApiKeyId>(header, KEY_PREFIX).ok_or_else(unauthorized)?;
    let stored = match api_keys::check(db, tenant, id).await {
        Ok(stored) => stored,
        Err(DbError::NotFound { .. }) => return Err(unauthorized()),
        Err(other) => return Err(anyhow::Error::new(other).into()),
    };
    if stored.revoked || !token::verify(&SecretString::from(secret.to_owned()), &stored.secret_hash)
    {
        return Err(unauthorized());
    }
    api_keys::touch(db, tenant, id)
        .await
        .context("unable to record an API key's use")?;
    Ok(AuthenticatedOperator {
        tenant,
        key: id,
        role: stored.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(role: Role) -> AuthenticatedOperator {
        AuthenticatedOperator {
            tenant: TenantId::random(),
            key: ApiKeyId::random(),
            role,
        }
    }

    #[test]
    fn a_role_passes_for_itself_and_weaker_needs_only() {
        assert!(with(Role::Operator).require(Role::Operator).is_ok());
        assert!(with(Role::Owner).require(Role::Viewer).is_ok());
        let refused = with(Role::Viewer).require(Role::Operator).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("viewer role; this needs operator")
        );
    }

    #[test]
    fn a_key_names_its_tenant_and_id_after_the_prefix() {
        let tenant = TenantId::from_bytes([1; 16]);
        let id = ApiKeyId::from_bytes([2; 16]);

        assert_eq!(
            key(tenant, id, "abc"),
            format!("sk_{}.{}.abc", "01".repeat(16), "02".repeat(16))
        );
    }
}
