//! Creating, changing, deleting and running plans (see [`super`]).

use chrono::Utc;
use serde_json::json;
use stowage_protocol::api::{JobRestoreTest, JobWork};
use stowage_protocol::ids::{AgentId, JobId, TenantId};

use super::{OpError, audit};
use crate::db::jobs::{self, JobTrigger, NewJob};
use crate::db::plans::{self, DeleteError, Plan};
use crate::db::{Database, DbError, agents, snapshots};
use crate::domain::{ByteSize, PlanInput, PlanSpec};

/// Validates `input` and stores it as a new plan of `tenant` on the agents
/// named `agent_names`; returns the stored plan.
///
/// # Errors
///
/// [`OpError::Invalid`] for a rule broken or an unknown or revoked agent,
/// [`OpError::Conflict`] for a taken name; nothing is stored then.
pub async fn create(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    input: &PlanInput,
    agent_names: &[String],
) -> Result<Plan, OpError> {
    let spec = PlanSpec::parse(input, Utc::now()).map_err(|e| OpError::Invalid(e.to_string()))?;
    let agents = resolve_agents(db, tenant, agent_names).await?;
    let id = plans::insert(db, tenant, &spec, &agents)
        .await
        .map_err(|error| taken(error, spec.name.as_str()))?;
    let details = json!({ "name": spec.name.as_str(), "agents": agent_names });
    audit(db, tenant, actor, "plan.create", &id.to_hex(), &details).await?;
    Ok(plans::get_by_name(db, tenant, spec.name.as_str()).await?)
}

/// Replaces the whole definition of the plan named `name` with `input`
/// (which may rename it) and its agents with `agent_names`.
///
/// # Errors
///
/// As [`create`], and [`OpError::NotFound`] for an unknown plan.
pub async fn update(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    name: &str,
    input: &PlanInput,
    agent_names: &[String],
) -> Result<Plan, OpError> {
    let plan = by_name(db, tenant, name).await?;
    let spec = PlanSpec::parse(input, Utc::now()).map_err(|e| OpError::Invalid(e.to_string()))?;
    let agents = resolve_agents(db, tenant, agent_names).await?;
    plans::update(db, tenant, plan.id, &spec, &agents)
        .await
        .map_err(|error| taken(error, spec.name.as_str()))?;
    let details = json!({ "from": plan.name, "name": spec.name.as_str(), "agents": agent_names });
    audit(
        db,
        tenant,
        actor,
        "plan.update",
        &plan.id.to_hex(),
        &details,
    )
    .await?;
    Ok(plans::get_by_name(db, tenant, spec.name.as_str()).await?)
}

/// Deletes the plan named `name` (see [`plans::delete`] for what goes
/// with it and what stays).
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown plan, [`OpError::Conflict`] while
/// one of its jobs runs.
pub async fn delete(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    name: &str,
) -> Result<(), OpError> {
    let plan = by_name(db, tenant, name).await?;
    plans::delete(db, tenant, &plan)
        .await
        .map_err(|error| match error {
            DeleteError::Running { .. } => OpError::Conflict(error.to_string()),
            DeleteError::Db(db) => OpError::Db(db),
        })?;
    let details = json!({ "name": plan.name });
    audit(
        db,
        tenant,
        actor,
        "plan.delete",
        &plan.id.to_hex(),
        &details,
    )
    .await
}

/// Enqueues a backup of the plan named `name` on each of its agents, now.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown plan.
pub async fn run_now(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    name: &str,
) -> Result<Vec<JobId>, OpError> {
    let plan = by_name(db, tenant, name).await?;
    let ids = jobs::enqueue_run_now(db, tenant, plan.id).await?;
    let job_ids: Vec<String> = ids.iter().map(JobId::to_hex).collect();
    let details = json!({ "plan": plan.name, "jobs": job_ids });
    audit(db, tenant, actor, "plan.run", &plan.id.to_hex(), &details).await?;
    Ok(ids)
}

/// Enqueues a restore test of the plan named `name` now: on each of its
/// agents, of that agent's newest snapshot of the plan, within the plan's
/// size cap. Agents without a snapshot of the plan are skipped.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown plan; [`OpError::Conflict`] when
/// no agent of the plan has a snapshot to rehearse.
pub async fn restore_test_now(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    name: &str,
) -> Result<Vec<JobId>, OpError> {
    let plan = by_name(db, tenant, name).await?;
    let mut ids = Vec::new();
    for agent in plan_agents(db, tenant, &plan).await? {
        let Some(work) = rehearsal_of(db, tenant, &plan, agent).await? else {
            continue;
        };
        let job = NewJob {
            plan: Some(plan.id),
            agent,
            work: JobWork::RestoreTest(work),
            trigger: JobTrigger::RunNow,
        };
        ids.push(jobs::enqueue(db, tenant, &job).await?);
    }
    if ids.is_empty() {
        return Err(OpError::Conflict(format!(
            "plan {:?} has no snapshot to rehearse yet; run a backup first",
            plan.name
        )));
    }
    let job_ids: Vec<String> = ids.iter().map(JobId::to_hex).collect();
    let details = json!({ "plan": plan.name, "jobs": job_ids });
    audit(
        db,
        tenant,
        actor,
        "plan.restore_test",
        &plan.id.to_hex(),
        &details,
    )
    .await?;
    Ok(ids)
}

/// A restore test of `agent`'s newest snapshot of `plan`, with a fresh
/// random sample seed; `None` when the agent has no snapshot of it.
///
/// # Errors
///
/// Fails when the database fails.
pub async fn rehearsal_of(
    db: &Database,
    tenant: TenantId,
    plan: &Plan,
    agent: AgentId,
) -> Result<Option<JobRestoreTest>, DbError> {
    let newest = snapshots::newest_of_plan_agent(db, tenant, plan.id, agent).await?;
    Ok(newest.map(|snapshot| JobRestoreTest {
        snapshot: snapshot.id,
        max_bytes: plan.restore_test_max.map(ByteSize::bytes),
        seed: random_seed(),
    }))
}

/// The plan of `tenant` named `name`.
///
/// # Errors
///
/// [`OpError::NotFound`] naming the plan.
pub async fn by_name(db: &Database, tenant: TenantId, name: &str) -> Result<Plan, OpError> {
    plans::get_by_name(db, tenant, name.trim())
        .await
        .map_err(|error| match error {
            DbError::NotFound { .. } => {
                OpError::NotFound(format!("there is no plan named {:?}", name.trim()))
            }
            other => OpError::Db(other),
        })
}

/// The ids of the agents of `plan`.
async fn plan_agents(
    db: &Database,
    tenant: TenantId,
    plan: &Plan,
) -> Result<Vec<AgentId>, OpError> {
    let known = agents::list(db, tenant).await?;
    Ok(known
        .iter()
        .filter(|agent| plan.agents.contains(&agent.name))
        .map(|agent| agent.id)
        .collect())
}

/// The tenant's unrevoked agents named `names`, in order, without repeats.
///
/// # Errors
///
/// [`OpError::Invalid`] naming an unknown or revoked agent, or when no
/// agent is named.
pub async fn resolve_agents(
    db: &Database,
    tenant: TenantId,
    names: &[String],
) -> Result<Vec<AgentId>, OpError> {
    if names.is_empty() {
        return Err(OpError::Invalid(
            "a plan needs at least one agent to run it".to_owned(),
        ));
    }
    let known = agents::list(db, tenant).await?;
    let mut ids = Vec::new();
    for name in names {
        let name = name.trim();
        let agent = known
            .iter()
            .find(|agent| agent.name == name)
            .ok_or_else(|| {
                OpError::Invalid(format!(
                    "there is no agent named {name:?} (agents are named at `stowage enroll --name`)"
                ))
            })?;
        if agent.revoked_at.is_some() {
            return Err(OpError::Invalid(format!(
                "agent {name:?} is revoked and can run no plan"
            )));
        }
        if !ids.contains(&agent.id) {
            ids.push(agent.id);
        }
    }
    Ok(ids)
}

fn taken(error: DbError, name: &str) -> OpError {
    match error {
        DbError::AlreadyExists { .. } => {
            OpError::Conflict(format!("there is already a plan named {name:?}"))
        }
        other => OpError::Db(other),
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    u64::from_le_bytes(bytes)
}
