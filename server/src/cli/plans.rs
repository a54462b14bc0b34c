//! `plan create`, `plan list`, `plan run` and `jobs`: a tenant's backup
//! plans and their jobs from the command line.
//!
//! Like the other administration commands they open the servers' database,
//! resolve `--tenant` by name, print results on stdout (`--json` for
//! scripts) and record changes in the audit log. Every input is checked by
//! `domain::PlanSpec` and against the tenant's agents before anything is
//! written, so a refused plan leaves nothing behind.

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::json;
use stowage_protocol::ids::{AgentId, JobId, TenantId};

use super::admin::{CLI_ACTOR, open, tenant_id};
use super::table;
use crate::configuration::Settings;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::jobs::{self, JobSummary};
use crate::db::plans::{self, Plan};
use crate::db::{Database, DbError, agents};
use crate::domain::{KeepCounts, PlanDuration, PlanInput, PlanSpec, Sources};

/// `plan create` options.
#[derive(Debug, Clone, Args)]
pub struct PlanCreateArgs {
    /// Name of the tenant the plan belongs to.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The plan's name, unique within the tenant.
    #[arg(long)]
    pub name: String,
    /// An agent that runs the plan (its `stowage enroll --name`); repeatable.
    #[arg(long = "agent", value_name = "AGENT", required = true)]
    pub agents: Vec<String>,
    /// An absolute path to back up; repeatable. Or use --command.
    #[arg(long = "path", value_name = "PATH", num_args = 1..)]
    pub paths: Vec<String>,
    /// A command whose output is backed up as one file (e.g. a database dump).
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// The file name the --command output gets in the snapshot.
    #[arg(long, value_name = "NAME")]
    pub stdin_name: Option<String>,
    /// A glob of paths to leave out; repeatable.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// When to run: a 5-field cron expression, e.g. '0 2 * * *'.
    #[arg(long, value_name = "CRON")]
    pub schedule: String,
    /// The IANA time zone the schedule is read in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,
    /// Keep the newest N snapshots.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_last: Option<i64>,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_hourly: Option<i64>,
    /// Keep the newest snapshot of each of the last N days.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_daily: Option<i64>,
    /// Keep the newest snapshot of each of the last N weeks.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_weekly: Option<i64>,
    /// Keep the newest snapshot of each of the last N months.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_monthly: Option<i64>,
    /// Keep the newest snapshot of each of the last N years.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_yearly: Option<i64>,
    /// Keep every snapshot younger than this (relative to the newest), e.g. 30d.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub keep_within: Option<String>,
    /// Recovery point objective: the oldest the newest backup may be, e.g. 24h.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub rpo: Option<String>,
    /// Recovery time objective, e.g. 4h.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub rto: Option<String>,
    /// How often a restore test must run, e.g. 7d.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub restore_test_every: Option<String>,
}

impl PlanCreateArgs {
    fn input(&self) -> PlanInput {
        PlanInput {
            name: self.name.clone(),
            paths: self.paths.clone(),
            command: self.command.clone(),
            stdin_name: self.stdin_name.clone(),
            excludes: self.excludes.clone(),
            schedule: self.schedule.clone(),
            timezone: Some(self.timezone.clone()),
            keep: KeepCounts {
                last: self.keep_last,
                hourly: self.keep_hourly,
                daily: self.keep_daily,
                weekly: self.keep_weekly,
                monthly: self.keep_monthly,
                yearly: self.keep_yearly,
            },
            keep_within: self.keep_within.clone(),
            rpo: self.rpo.clone(),
            rto: self.rto.clone(),
            restore_test_every: self.restore_test_every.clone(),
        }
    }
}

/// Validates and stores a plan; returns its id.
///
/// # Errors
///
/// The first rule the input breaks, an unknown tenant or agent, a taken
/// name, or a database failure.
pub async fn create(settings: &Settings, args: &PlanCreateArgs) -> anyhow::Result<String> {
    let spec = PlanSpec::parse(&args.input(), chrono::Utc::now())?;
    let db = open(settings).await?;
    let tenant = tenant_id(&db, &args.tenant).await?;
    let agents = resolve_agents(&db, tenant, &args.tenant, &args.agents).await?;
    let id = plans::insert(&db, tenant, &spec, &agents)
        .await
        .map_err(|err| match err {
            DbError::AlreadyExists { value, .. } => anyhow!(
                "tenant {:?} already has a plan named {value:?}",
                args.tenant.trim()
            ),
            other => other.into(),
        })?;
    let details = json!({ "name": spec.name.as_str(), "agents": args.agents }).to_string();
    record(&db, tenant, "plan.create", &id.to_hex(), &details).await?;
    db.close().await;
    Ok(id.to_hex())
}

/// The tenant's agents named `names`, in order, without repeats.
async fn resolve_agents(
    db: &Database,
    tenant: TenantId,
    tenant_name: &str,
    names: &[String],
) -> anyhow::Result<Vec<AgentId>> {
    let known = agents::list(db, tenant).await?;
    let mut ids = Vec::new();
    for name in names {
        let name = name.trim();
        let agent = known.iter().find(|agent| agent.name == name).ok_or_else(|| {
            anyhow!(
                "tenant {:?} has no agent named {name:?} (agents are named at `stowage enroll --name`)",
                tenant_name.trim()
            )
        })?;
        if agent.revoked_at.is_some() {
            bail!(
                "agent {name:?} of tenant {:?} is revoked",
                tenant_name.trim()
            );
        }
        if !ids.contains(&agent.id) {
            ids.push(agent.id);
        }
    }
    Ok(ids)
}

/// Prints the tenant's plans.
///
/// # Errors
///
/// An unknown tenant or a database failure.
pub async fn list(settings: &Settings, tenant_name: &str, as_json: bool) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let plans = plans::list(&db, tenant).await?;
    db.close().await;
    if as_json {
        let array: Vec<_> = plans.iter().map(plan_json).collect();
        return Ok(format!("{}\n", serde_json::Value::from(array)));
    }
    let rows: Vec<Vec<String>> = plans
        .iter()
        .map(|plan| {
            vec![
                plan.name.clone(),
                plan.schedule.clone(),
                plan.timezone.clone(),
                plan.agents.join(","),
                match &plan.sources {
                    Sources::Paths(paths) => paths.join(","),
                    Sources::Command { stdin_name, .. } => format!("command > {stdin_name}"),
                },
                plan.rpo.map(|d| d.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    Ok(table::render(
        &["NAME", "SCHEDULE", "TIMEZONE", "AGENTS", "SOURCES", "RPO"],
        &rows,
    ))
}

fn plan_json(plan: &Plan) -> serde_json::Value {
    let secs = |d: Option<PlanDuration>| d.map(PlanDuration::as_secs);
    let r = &plan.retention;
    json!({
        "id": plan.id.to_hex(),
        "name": plan.name,
        "agents": plan.agents,
        "sources": plan.sources,
        "excludes": plan.excludes,
        "schedule": plan.schedule,
        "timezone": plan.timezone,
        "retention": {
            "keep_last": r.keep_last, "keep_hourly": r.keep_hourly, "keep_daily": r.keep_daily,
            "keep_weekly": r.keep_weekly, "keep_monthly": r.keep_monthly,
            "keep_yearly": r.keep_yearly, "keep_within_seconds": secs(r.keep_within),
        },
        "rpo_seconds": secs(plan.rpo),
        "rto_seconds": secs(plan.rto),
        "restore_test_every_seconds": secs(plan.restore_test_every),
        "created_at": plan.created_at.to_rfc3339(),
        "updated_at": plan.updated_at.to_rfc3339(),
    })
}

/// Enqueues a backup of the plan on each of its agents; returns the job ids.
///
/// # Errors
///
/// An unknown tenant or plan, or a database failure.
pub async fn run(
    settings: &Settings,
    tenant_name: &str,
    plan_name: &str,
) -> anyhow::Result<Vec<JobId>> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let plan = plans::get_by_name(&db, tenant, plan_name.trim())
        .await
        .map_err(|err| match err {
            DbError::NotFound { .. } => anyhow!(
                "tenant {:?} has no plan named {:?}",
                tenant_name.trim(),
                plan_name.trim()
            ),
            other => other.into(),
        })?;
    let ids = jobs::enqueue_run_now(&db, tenant, plan.id)
        .await
        .context("Failed to enqueue the plan's jobs")?;
    let job_ids: Vec<String> = ids.iter().map(JobId::to_hex).collect();
    let details = json!({ "plan": plan.name, "jobs": job_ids }).to_string();
    record(&db, tenant, "plan.run", &plan.id.to_hex(), &details).await?;
    db.close().await;
    Ok(ids)
}

/// Prints the tenant's most recent jobs, newest first.
///
/// # Errors
///
/// An unknown tenant or a database failure.
pub async fn list_jobs(
    settings: &Settings,
    tenant_name: &str,
    limit: u32,
    as_json: bool,
) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let jobs = jobs::list_recent(&db, tenant, limit).await?;
    db.close().await;
    if as_json {
        let array: Vec<_> = jobs.iter().map(job_json).collect();
        return Ok(format!("{}\n", serde_json::Value::from(array)));
    }
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                job.id.to_hex(),
                job.plan.clone().unwrap_or_default(),
                job.agent.clone(),
                job.kind.clone(),
                job.state.clone(),
                time(Some(job.created_at)),
                time(job.finished_at),
                job.bytes.map(|b| b.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    Ok(table::render(
        &[
            "ID", "PLAN", "AGENT", "KIND", "STATE", "CREATED", "FINISHED", "BYTES",
        ],
        &rows,
    ))
}

fn job_json(job: &JobSummary) -> serde_json::Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
    json!({
        "id": job.id.to_hex(),
        "plan": job.plan,
        "agent": job.agent,
        "kind": job.kind,
        "trigger": job.trigger,
        "state": job.state,
        "slot_at": time(job.slot_at),
        "created_at": job.created_at.to_rfc3339(),
        "claimed_at": time(job.claimed_at),
        "finished_at": time(job.finished_at),
        "bytes": job.bytes,
        "files": job.files,
        "error": job.error,
    })
}

async fn record(
    db: &Database,
    tenant: TenantId,
    action: &str,
    object: &str,
    details: &str,
) -> anyhow::Result<()> {
    audit::record(
        db,
        Some(tenant),
        NewAuditEntry {
            actor: CLI_ACTOR,
            action,
            object,
            details,
        },
    )
    .await?;
    Ok(())
}
