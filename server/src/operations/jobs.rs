//! Starting restores and verifications on a chosen agent (see [`super`]).
//!
//! The snapshot may be any agent's of the tenant: restoring a lost
//! machine's backup onto its replacement is the point. Every agent of a
//! tenant holds the tenant's keys (unless enrolled write-only, which the
//! agent itself refuses with a sentence), so the server need not check
//! who made the snapshot.

use serde_json::json;
use stowage_protocol::api::{JobRestore, JobVerify, JobWork};
use stowage_protocol::ids::{AgentId, JobId, TenantId};

use super::{OpError, audit, known_snapshot};
use crate::db::jobs::{self, JobTrigger, NewJob};
use crate::db::{Database, agents};

/// A restore to start.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The snapshot's full id (64 hex digits).
    pub snapshot: String,
    /// The name of the agent that restores.
    pub agent: String,
    /// An absolute directory on that agent.
    pub target: String,
    /// Paths inside the snapshot; empty for all of it.
    pub paths: Vec<String>,
}

/// Enqueues `request` as a restore job; returns its id.
///
/// # Errors
///
/// [`OpError::Invalid`] for a malformed snapshot id, a relative target or
/// an empty path; [`OpError::NotFound`] for an unknown snapshot or agent.
pub async fn restore(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    request: &RestoreRequest,
) -> Result<JobId, OpError> {
    let snapshot = known_snapshot(db, tenant, &request.snapshot).await?;
    let agent = agent(db, tenant, &request.agent).await?;
    let target = request.target.trim();
    if !target.starts_with('/') {
        return Err(OpError::Invalid(format!(
            "the restore target {target:?} is not an absolute directory; it starts with /"
        )));
    }
    if request.paths.iter().any(|path| path.trim().is_empty()) {
        return Err(OpError::Invalid(
            "a path to restore cannot be empty; leave the list empty to restore everything"
                .to_owned(),
        ));
    }
    let work = JobWork::Restore(JobRestore {
        snapshot,
        paths: request.paths.iter().map(|p| p.trim().to_owned()).collect(),
        target: target.to_owned(),
    });
    let id = enqueue(db, tenant, agent, work).await?;
    let details = json!({
        "snapshot": snapshot.to_hex(), "agent": request.agent.trim(),
        "target": target, "paths": request.paths,
    });
    audit(db, tenant, actor, "job.restore", &id.to_hex(), &details).await?;
    Ok(id)
}

/// Enqueues a verification of snapshot `snapshot` on the agent named
/// `agent_name`, reading every blob when `read_data`; returns its id.
///
/// # Errors
///
/// As [`restore`].
pub async fn verify(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    snapshot_id: &str,
    agent_name: &str,
    read_data: bool,
) -> Result<JobId, OpError> {
    let snapshot = known_snapshot(db, tenant, snapshot_id).await?;
    let agent = agent(db, tenant, agent_name).await?;
    let work = JobWork::Verify(JobVerify {
        snapshot,
        read_data,
    });
    let id = enqueue(db, tenant, agent, work).await?;
    let details = json!({
        "snapshot": snapshot.to_hex(), "agent": agent_name.trim(), "read_data": read_data,
    });
    audit(db, tenant, actor, "job.verify", &id.to_hex(), &details).await?;
    Ok(id)
}

async fn enqueue(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    work: JobWork,
) -> Result<JobId, OpError> {
    let job = NewJob {
        plan: None,
        agent,
        work,
        trigger: JobTrigger::Api,
    };
    Ok(jobs::enqueue(db, tenant, &job).await?)
}

async fn agent(db: &Database, tenant: TenantId, name: &str) -> Result<AgentId, OpError> {
    let name = name.trim();
    let known = agents::list(db, tenant).await?;
    let agent = known
        .iter()
        .find(|agent| agent.name == name)
        .ok_or_else(|| OpError::NotFound(format!("there is no agent named {name:?}")))?;
    if agent.revoked_at.is_some() {
        return Err(OpError::Invalid(format!(
            "agent {name:?} is revoked and can run no job"
        )));
    }
    Ok(agent.id)
}
