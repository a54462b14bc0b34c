//! Which agents have news: the (tenant, agent) pairs with a queued job
//! created recently. The claim dispatcher ([`crate::dispatcher`]) asks this
//! a few times a second on each instance, in place of every waiting claim
//! asking for its own job.
//!
//! The query reads the partial index `jobs_queued` (tenant, agent,
//! created_at — queued rows only), so its cost follows the number of queued
//! jobs, not the history. Only jobs created after `since` are returned: a
//! job queued before a claim started waiting was taken by the claim's own
//! first look, so only newer jobs are news, and the agents of old jobs
//! nobody claims (an agent that is switched off) are not returned on every
//! pass.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Row;
use stowage_protocol::ids::{AgentId, TenantId};

use super::{Database, DbError, parse_id, query_error};

/// Every (tenant, agent) with a queued job created after `since`, across
/// all tenants (the caller only wakes the claims of each pair's own agent).
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn agents_with_new_jobs(
    db: &Database,
    since: DateTime<Utc>,
) -> Result<HashSet<(TenantId, AgentId)>, DbError> {
    let rows = sqlx::query(
        "SELECT DISTINCT tenant_id, agent_id FROM jobs \
         WHERE state = 'queued' AND created_at > $1",
    )
    .bind(since.timestamp_millis())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list the agents with newly queued jobs"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode an agent with a queued job");
            let tenant: String = row.try_get("tenant_id").map_err(read)?;
            let agent: String = row.try_get("agent_id").map_err(read)?;
            Ok((
                parse_id("jobs.tenant_id", &tenant)?,
                parse_id("jobs.agent_id", &agent)?,
            ))
        })
        .collect()
}
