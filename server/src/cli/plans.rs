//! `plan create|update|delete|list|run|test`, `jobs`, `restore`, `verify`
//! and `agents`: a tenant's plans, jobs and agents from the command line.
//!
//! Like the other administration commands they open the servers' database,
//! resolve `--tenant` by name, print results on stdout (`--json` for
//! scripts) and record changes in the audit log. Every input is checked by
//! `domain::PlanSpec` and against the tenant's agents before anything is
//! written, so a refused plan leaves nothing behind. The work itself is
//! done by [`crate::operations`], which the operator API shares.

use anyhow::{anyhow, bail};
use clap::Args;
use stowage_protocol::ids::JobId;

use super::admin::{CLI_ACTOR, open, tenant_id};
use super::table;
use crate::configuration::Settings;
use crate::db::jobs;
use crate::db::plans;
use crate::db::restore_tests::{self, Rehearsals};
use crate::domain::{KeepCounts, PlanInput, PlanSpec, Sources};
use crate::operations::{self, OpError};
use crate::views::{job_json, plan_json, rehearsals_json, rto_status};

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
    /// Rehearse a sample of files up to this size instead of the whole
    /// snapshot, e.g. 10G.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub restore_test_max: Option<String>,
    /// (`plan update` only) The plan's new name.
    #[arg(long, value_name = "NAME")]
    pub rename: Option<String>,
}

impl PlanCreateArgs {
    fn input(&self) -> PlanInput {
        PlanInput {
            name: self.rename.clone().unwrap_or_else(|| self.name.clone()),
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
            restore_test_max: self.restore_test_max.clone(),
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
    if args.rename.is_some() {
        bail!("--rename changes an existing plan's name; it belongs to `plan update`");
    }
    let input = args.input();
    PlanSpec::parse(&input, chrono::Utc::now())?;
    let db = open(settings).await?;
    let tenant = tenant_id(&db, &args.tenant).await?;
    let plan = operations::plans::create(&db, tenant, CLI_ACTOR, &input, &args.agents).await;
    db.close().await;
    Ok(plan.map_err(in_tenant(&args.tenant))?.id.to_hex())
}

/// Replaces the definition of the plan named `--name` (every option is the
/// plan's new value, as for `plan create`).
///
/// # Errors
///
/// As [`create`], and an unknown plan.
pub async fn update(settings: &Settings, args: &PlanCreateArgs) -> anyhow::Result<String> {
    let input = args.input();
    PlanSpec::parse(&input, chrono::Utc::now())?;
    let db = open(settings).await?;
    let tenant = tenant_id(&db, &args.tenant).await?;
    let plan =
        operations::plans::update(&db, tenant, CLI_ACTOR, &args.name, &input, &args.agents).await;
    db.close().await;
    Ok(plan.map_err(in_tenant(&args.tenant))?.id.to_hex())
}

/// Deletes a plan (its queued jobs are cancelled, its history kept).
///
/// # Errors
///
/// An unknown tenant or plan, a running job of the plan, or a database failure.
pub async fn delete(settings: &Settings, tenant_name: &str, plan_name: &str) -> anyhow::Result<()> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let done = operations::plans::delete(&db, tenant, CLI_ACTOR, plan_name).await;
    db.close().await;
    done.map_err(in_tenant(tenant_name))
}

/// Enqueues a restore test of the plan on each of its agents that has a
/// snapshot of it; returns the job ids.
///
/// # Errors
///
/// An unknown tenant or plan, no snapshot to rehearse, or a database failure.
pub async fn test(
    settings: &Settings,
    tenant_name: &str,
    plan_name: &str,
) -> anyhow::Result<Vec<JobId>> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let ids = operations::plans::restore_test_now(&db, tenant, CLI_ACTOR, plan_name).await;
    db.close().await;
    ids.map_err(in_tenant(tenant_name))
}

/// Prefixes an operation's refusal with the tenant it happened in.
pub(super) fn in_tenant(tenant_name: &str) -> impl FnOnce(OpError) -> anyhow::Error + '_ {
    move |error| match error {
        OpError::Db(db) => db.into(),
        refused => anyhow!("tenant {:?}: {refused}", tenant_name.trim()),
    }
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
    let mut rehearsals = Vec::with_capacity(plans.len());
    for plan in &plans {
        rehearsals.push(restore_tests::for_plan(&db, tenant, plan.id).await?);
    }
    db.close().await;
    if as_json {
        let array: Vec<_> = plans
            .iter()
            .zip(&rehearsals)
            .map(|(plan, tests)| {
                let mut value = plan_json(plan);
                value["restore_tests"] = rehearsals_json(plan, tests);
                value
            })
            .collect();
        return Ok(format!("{}\n", serde_json::Value::from(array)));
    }
    let rows: Vec<Vec<String>> = plans
        .iter()
        .zip(&rehearsals)
        .map(|(plan, tests)| {
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
                last_test(tests),
                rto_status(plan, tests).unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    Ok(table::render(
        &[
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "AGENTS",
            "SOURCES",
            "RPO",
            "LAST RESTORE TEST",
            "RTO",
        ],
        &rows,
    ))
}

/// "ok 2026-11-27 04:00 (restore 12.3s)" or "failed …", for the table.
fn last_test(tests: &Rehearsals) -> String {
    let Some(last) = &tests.last else {
        return "never".to_owned();
    };
    let when = last.finished_at.format("%Y-%m-%d %H:%M");
    #[allow(clippy::cast_precision_loss)]
    let seconds = last.restore_ms as f64 / 1000.0;
    if last.succeeded {
        format!("ok {when} (restore {seconds:.1}s)")
    } else {
        format!("failed {when}")
    }
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
    let ids = operations::plans::run_now(&db, tenant, CLI_ACTOR, plan_name).await;
    db.close().await;
    ids.map_err(in_tenant(tenant_name))
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
                match (job.state.as_str(), job.bytes_per_second) {
                    ("running", Some(rate)) => format!("{} KiB/s", rate / 1024),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    Ok(table::render(
        &[
            "ID", "PLAN", "AGENT", "KIND", "STATE", "CREATED", "FINISHED", "BYTES", "RATE",
        ],
        &rows,
    ))
}
