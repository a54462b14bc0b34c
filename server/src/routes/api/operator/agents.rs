//! `GET /api/v1/agents`: the tenant's agents with their presence.

use actix_web::{HttpResponse, web};
use chrono::Utc;

use crate::auth::api_key::AuthenticatedOperator;
use crate::configuration::AgentSettings;
use crate::db::{Database, agent_presence};
use crate::routes::api::Failure;
use crate::views::presence_json;

/// Every agent of the key's tenant: online or offline, version, host facts.
///
/// # Errors
///
/// 500 when the database fails.
pub async fn list(
    db: web::Data<Database>,
    settings: web::Data<AgentSettings>,
    who: AuthenticatedOperator,
) -> Result<HttpResponse, Failure> {
    let now = Utc::now();
    let agents = agent_presence::list(&db, who.tenant)
        .await
        .map_err(anyhow::Error::new)?;
    let array: Vec<_> = agents
        .iter()
        .map(|agent| presence_json(agent, agent.state(now, settings.offline_after).as_str()))
        .collect();
    Ok(HttpResponse::Ok().json(array))
}
