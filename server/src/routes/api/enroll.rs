//! `POST /api/v1/agents/enroll`: a one-time token buys an agent credential.
//!
//! The token is consumed and the agent stored in one transaction
//! ([`enrollment_tokens::enroll`]), so of two racing enrollments with one
//! token exactly one gets an agent. The credential is shown in this response
//! only; the server keeps its hash.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use stowage_protocol::api::{EnrollRequest, EnrollResponse, codes};
use stowage_protocol::ids::AgentId;

use super::Failure;
use crate::auth::{agent, token};
use crate::db::agents::NewAgent;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::enrollment_tokens::{self, ConsumeError};
use crate::db::{Database, DbError, tenant_keys};
use crate::rate_limit::RateLimits;

/// Longest agent name or host name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Enrolls a new agent with the token in the body.
///
/// # Errors
///
/// 400 for a blank or overlong name; 401 for an unknown or expired token;
/// 409 for a used token or an agent name already taken in the tenant.
pub async fn enroll(
    db: web::Data<Database>,
    limits: web::Data<RateLimits>,
    http: HttpRequest,
    body: web::Json<EnrollRequest>,
) -> Result<HttpResponse, Failure> {
    // Enrollment carries no credential yet: it spends the client address's
    // budget, which slows token guessing down before it reaches the database.
    if let Some(peer) = http.peer_addr() {
        limits.check_address(peer.ip())?;
    }
    let request = body.into_inner();
    let name = checked_name("agent name", &request.agent_name)?;
    let hostname = checked_name("host name", &request.hostname)?;
    let secret = token::generate();
    let new = NewAgent {
        id: AgentId::random(),
        name,
        hostname,
        credential_hash: &secret.hash,
    };
    let stored = enrollment_tokens::enroll(&db, &request.token, new)
        .await
        .map_err(|error| refused(error, name))?;
    let tenant = stored.tenant_id;
    let details = serde_json::json!({ "name": name, "hostname": hostname }).to_string();
    audit::record(
        &db,
        Some(tenant),
        NewAuditEntry {
            actor: &stored.id.to_hex(),
            action: "agent.enroll",
            object: &stored.id.to_hex(),
            details: &details,
        },
    )
    .await
    .context("unable to audit an enrollment")?;
    let tenant_keys_exist = match tenant_keys::get(&db, tenant).await {
        Ok(_) => true,
        Err(DbError::NotFound { .. }) => false,
        Err(other) => return Err(anyhow::Error::new(other).into()),
    };
    Ok(HttpResponse::Created().json(EnrollResponse {
        agent_id: stored.id,
        tenant_id: tenant,
        credential: agent::credential(tenant, stored.id, secret.secret.expose_secret()),
        tenant_keys_exist,
    }))
}

fn checked_name<'a>(what: &str, value: &'a str) -> Result<&'a str, Failure> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Failure::Validation(format!("the {what} is empty")));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(Failure::Validation(format!(
            "the {what} is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(value)
}

fn refused(error: ConsumeError, name: &str) -> Failure {
    let message = error.to_string();
    match error {
        ConsumeError::Unknown | ConsumeError::Expired(_) => Failure::Unauthorized {
            code: codes::INVALID_TOKEN,
            message,
        },
        ConsumeError::AlreadyUsed(_) => Failure::Conflict {
            code: codes::INVALID_TOKEN,
            message,
        },
        ConsumeError::Db(DbError::AlreadyExists { .. }) => Failure::Conflict {
            code: codes::INVALID_REQUEST,
            message: format!(
                "an agent named {name:?} already exists in this tenant; choose another name"
            ),
        },
        ConsumeError::Db(other) => anyhow::Error::new(other)
            .context("unable to enroll an agent")
            .into(),
    }
}
