//! Agent authentication: the [`AuthenticatedAgent`] extractor.
//!
//! An agent credential is `<tenant id hex>.<agent id hex>.<secret hex>`.
//! The ids locate the agent's row directly (no scan, no lookup by hash), and
//! the secret is checked against the stored hash in constant time
//! ([`token::verify`]). Every failure — no header, bad shape, unknown agent,
//! wrong secret, revoked agent — gets the same 401 so a caller learns
//! nothing about which part was wrong.
//!
//! An authenticated request then spends one request of its agent's rate
//! budget; a failed one spends its client address's ([`crate::rate_limit`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use anyhow::Context;
use secrecy::SecretString;
use stowage_protocol::api::codes;
use stowage_protocol::ids::{AgentId, TenantId};

use crate::auth::{bearer, token};
use crate::db::{Database, DbError, agents};
use crate::rate_limit::RateLimits;
use crate::routes::api::Failure;

/// Longest interval between two writes of an agent's `last_seen_at`.
const LAST_SEEN_RESOLUTION: Duration = Duration::from_mins(1);

/// A request made with a valid, unrevoked agent credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedAgent {
    /// The agent's tenant; every query of the request is scoped to it.
    pub tenant: TenantId,
    /// The agent.
    pub agent: AgentId,
}

/// The credential handed to an agent at enrollment.
pub fn credential(tenant: TenantId, agent: AgentId, secret: &str) -> String {
    format!("{}.{}.{secret}", tenant.to_hex(), agent.to_hex())
}

impl FromRequest for AuthenticatedAgent {
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
            let limits = limits
                .context("the rate limits are not registered with the HTTP server")
                .map_err(Failure::Unexpected)?;
            match authenticate(&db, header.as_deref()).await {
                Ok(who) => {
                    limits.check_agent(who.tenant, who.agent)?;
                    Ok(who)
                }
                Err(failure @ Failure::Unauthorized { .. }) => {
                    // Failed attempts spend the address's budget, never the
                    // budget of the credential they claim.
                    if let Some(address) = address {
                        limits.check_address(address)?;
                    }
                    Err(failure)
                }
                Err(other) => Err(other),
            }
        })
    }
}

fn unauthorized() -> Failure {
    Failure::Unauthorized {
        code: codes::UNAUTHORIZED,
        message: "the agent credential is missing, invalid or revoked".to_owned(),
    }
}

async fn authenticate(db: &Database, header: Option<&str>) -> Result<AuthenticatedAgent, Failure> {
    let (tenant, agent, secret) = bearer::parse::<AgentId>(header, "").ok_or_else(unauthorized)?;
    let stored = match agents::credential_hash(db, tenant, agent).await {
        Ok(stored) => stored,
        Err(DbError::NotFound { .. }) => return Err(unauthorized()),
        Err(other) => return Err(anyhow::Error::new(other).into()),
    };
    if !token::verify(&SecretString::from(secret.to_owned()), &stored) {
        return Err(unauthorized());
    }
    let row = agents::get(db, tenant, agent)
        .await
        .context("unable to read an authenticated agent")?;
    if row.revoked_at.is_some() {
        return Err(unauthorized());
    }
    agents::touch_last_seen(db, tenant, agent, LAST_SEEN_RESOLUTION)
        .await
        .context("unable to record when an agent was last seen")?;
    Ok(AuthenticatedAgent { tenant, agent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_names_tenant_and_agent_before_the_secret() {
        let tenant = TenantId::from_bytes([1; 16]);
        let agent = AgentId::from_bytes([2; 16]);

        let credential = credential(tenant, agent, "abc");

        assert_eq!(
            credential,
            format!("{}.{}.abc", "01".repeat(16), "02".repeat(16))
        );
    }
}
