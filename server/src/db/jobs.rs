//! The `jobs` table: units of work for one agent — backups now, restores,
//! verifies and restore tests later — with their state and outcome.
//!
//! Scheduled jobs are inserted with `ON CONFLICT DO NOTHING` on the unique
//! key (tenant, plan, agent, slot): every server instance may try to enqueue
//! the same due slot, and exactly one job results ([`insert_scheduled`]).

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use stowage_protocol::api::{JobRestoreTest, JobWork};
use stowage_protocol::ids::{AgentId, JobId, PlanId, TenantId};

use super::{Database, DbError, from_millis, now_millis, parse_id, query_error};

/// What caused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTrigger {
    /// A schedule slot came due.
    Schedule,
    /// `plan run` or the dashboard's "run now".
    RunNow,
    /// An API call.
    Api,
}

impl JobTrigger {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::RunNow => "run_now",
            Self::Api => "api",
        }
    }
}

/// A recent job, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    /// Random id.
    pub id: JobId,
    /// The plan's name, if the job belongs to a plan.
    pub plan: Option<String>,
    /// The agent's name.
    pub agent: String,
    /// backup, restore, verify or restore_test.
    pub kind: String,
    /// schedule, run_now or api.
    pub trigger: String,
    /// queued, running, succeeded, failed or cancelled.
    pub state: String,
    /// The schedule slot of a scheduled job.
    pub slot_at: Option<DateTime<Utc>>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When an agent took it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes read by the backup, once reported.
    pub bytes: Option<i64>,
    /// Files read by the backup, once reported.
    pub files: Option<i64>,
    /// The agent's latest reported rate, bytes a second.
    pub bytes_per_second: Option<i64>,
    /// When the agent last reported progress.
    pub progress_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Enqueues a backup of plan `plan` of `tenant` on each of the plan's
/// agents, now, in one transaction; returns the new jobs' ids (none when
/// the plan has no agents).
///
/// # Errors
///
/// Fails when a statement fails; then no job is enqueued.
pub async fn enqueue_run_now(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
) -> Result<Vec<JobId>, DbError> {
    let mut tx = db.begin().await?;
    let agents = sqlx::query(
        "SELECT agent_id FROM plan_agents WHERE tenant_id = $1 AND plan_id = $2 ORDER BY agent_id",
    )
    .bind(tenant.to_hex())
    .bind(plan.to_hex())
    .fetch_all(&mut *tx)
    .await
    .map_err(query_error("read the agents of a plan"))?;
    let now = now_millis();
    let mut ids = Vec::with_capacity(agents.len());
    for row in &agents {
        let agent: String = row
            .try_get("agent_id")
            .map_err(query_error("decode plan agent"))?;
        let id = JobId::random();
        sqlx::query(
            "INSERT INTO jobs (id, tenant_id, plan_id, agent_id, kind, \"trigger\", state, created_at) \
             VALUES ($1, $2, $3, $4, 'backup', $5, 'queued', $6)",
        )
        .bind(id.to_hex())
        .bind(tenant.to_hex())
        .bind(plan.to_hex())
        .bind(agent)
        .bind(JobTrigger::RunNow.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_error("enqueue a job"))?;
        ids.push(id);
    }
    tx.commit()
        .await
        .map_err(query_error("commit enqueued jobs"))?;
    Ok(ids)
}

/// Enqueues the backup of plan `plan` on `agent` for schedule slot
/// `slot_at`, unless a job for that slot exists; returns whether this call
/// inserted it. Safe to call from every server instance at once.
///
/// # Errors
///
/// Fails when the statement fails (including a plan or agent of another tenant).
pub async fn insert_scheduled(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
    agent: AgentId,
    slot_at: DateTime<Utc>,
) -> Result<bool, DbError> {
    insert_slot(db, tenant, plan, agent, slot_at, None).await
}

/// Enqueues restore test `work` of plan `plan` on `agent` for restore-test
/// slot `slot_at` (slots of the plan's rehearsal cadence, keyed apart from
/// its backup slots), unless one exists; returns whether this call
/// inserted it.
///
/// # Errors
///
/// As [`insert_scheduled`].
pub async fn insert_scheduled_restore_test(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
    agent: AgentId,
    slot_at: DateTime<Utc>,
    work: &JobRestoreTest,
) -> Result<bool, DbError> {
    let work = JobWork::RestoreTest(work.clone());
    insert_slot(db, tenant, plan, agent, slot_at, Some(&work)).await
}

async fn insert_slot(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
    agent: AgentId,
    slot_at: DateTime<Utc>,
    work: Option<&JobWork>,
) -> Result<bool, DbError> {
    let kind = work.map_or("backup", JobWork::kind);
    let done = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, plan_id, agent_id, kind, \"trigger\", slot_at, state, created_at, params) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9) \
         ON CONFLICT (tenant_id, plan_id, agent_id, kind, slot_at) DO NOTHING",
    )
    .bind(JobId::random().to_hex())
    .bind(tenant.to_hex())
    .bind(plan.to_hex())
    .bind(agent.to_hex())
    .bind(kind)
    .bind(JobTrigger::Schedule.as_str())
    .bind(slot_at.timestamp_millis())
    .bind(now_millis())
    .bind(work.map(params_json).transpose()?)
    .execute(db.pool())
    .await
    .map_err(query_error("enqueue a scheduled job"))?;
    Ok(done.rows_affected() == 1)
}

/// A job that is not a plan's scheduled backup.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The plan it belongs to, if any (a restore test always has one).
    pub plan: Option<PlanId>,
    /// The agent that runs it.
    pub agent: AgentId,
    /// What it does; stored with the job.
    pub work: JobWork,
    /// run_now or api.
    pub trigger: JobTrigger,
}

/// Enqueues `job` for `tenant` now; returns its id.
///
/// # Errors
///
/// Fails when the statement fails (including an agent or plan of another
/// tenant, which the foreign keys refuse).
pub async fn enqueue(db: &Database, tenant: TenantId, job: &NewJob) -> Result<JobId, DbError> {
    let id = JobId::random();
    sqlx::query(
        "INSERT INTO jobs (id, tenant_id, plan_id, agent_id, kind, \"trigger\", state, created_at, params) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8)",
    )
    .bind(id.to_hex())
    .bind(tenant.to_hex())
    .bind(job.plan.map(|plan| plan.to_hex()))
    .bind(job.agent.to_hex())
    .bind(job.work.kind())
    .bind(job.trigger.as_str())
    .bind(now_millis())
    .bind(params_json(&job.work)?)
    .execute(db.pool())
    .await
    .map_err(query_error("enqueue a job"))?;
    Ok(id)
}

/// The stored form of a job's work.
fn params_json(work: &JobWork) -> Result<String, DbError> {
    serde_json::to_string(work).map_err(|error| DbError::Corrupt {
        what: "jobs.params",
        problem: format!("a job's work does not serialise: {error}"),
    })
}

/// One agent of one plan, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTarget {
    /// The plan's tenant.
    pub tenant: TenantId,
    /// The plan.
    pub plan: PlanId,
    /// One of the plan's agents.
    pub agent: AgentId,
    /// The plan's cron expression.
    pub schedule: String,
    /// The zone it is read in.
    pub timezone: String,
    /// When the plan was created: no slot before it is ever due.
    pub plan_created_at: DateTime<Utc>,
    /// The newest slot a job was enqueued for, by any server instance.
    pub last_slot: Option<DateTime<Utc>>,
}

/// Every agent of every plan of every tenant, with the newest slot
/// enqueued for it. The scheduler is the one caller that works across
/// tenants: it reads this list, then enqueues each job under the target's
/// own tenant ([`insert_scheduled`]).
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn schedule_targets(db: &Database) -> Result<Vec<ScheduleTarget>, DbError> {
    let rows = sqlx::query(
        "SELECT pa.tenant_id, pa.plan_id, pa.agent_id, p.schedule, p.timezone, p.created_at, \
         (SELECT MAX(j.slot_at) FROM jobs j WHERE j.tenant_id = pa.tenant_id \
          AND j.plan_id = pa.plan_id AND j.agent_id = pa.agent_id) AS last_slot \
         FROM plan_agents pa JOIN plans p ON p.tenant_id = pa.tenant_id AND p.id = pa.plan_id",
    )
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list the plans to schedule"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode a plan to schedule");
            let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
            let last: Option<i64> = row.try_get("last_slot").map_err(read)?;
            Ok(ScheduleTarget {
                tenant: parse_id("plan_agents.tenant_id", &text("tenant_id")?)?,
                plan: parse_id("plan_agents.plan_id", &text("plan_id")?)?,
                agent: parse_id("plan_agents.agent_id", &text("agent_id")?)?,
                schedule: text("schedule")?,
                timezone: text("timezone")?,
                plan_created_at: from_millis(
                    "plans.created_at",
                    row.try_get("created_at").map_err(read)?,
                )?,
                last_slot: last
                    .map(|millis| from_millis("jobs.slot_at", millis))
                    .transpose()?,
            })
        })
        .collect()
}

/// One agent of one plan with a restore-test cadence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehearsalTarget {
    /// The plan's tenant.
    pub tenant: TenantId,
    /// The plan.
    pub plan: PlanId,
    /// One of the plan's agents; it rehearses restoring its own snapshots.
    pub agent: AgentId,
    /// When the plan was created: cadence slots count from it.
    pub plan_created_at: DateTime<Utc>,
    /// The plan's restore-test cadence.
    pub every: std::time::Duration,
    /// The plan's rehearsal size cap.
    pub max_bytes: Option<u64>,
    /// The newest restore-test slot enqueued for it, by any instance.
    pub last_slot: Option<DateTime<Utc>>,
}

/// Every agent of every plan that has a restore-test cadence, with the
/// newest restore-test slot enqueued for it (across tenants, like
/// [`schedule_targets`]).
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn rehearsal_targets(db: &Database) -> Result<Vec<RehearsalTarget>, DbError> {
    let rows = sqlx::query(
        "SELECT pa.tenant_id, pa.plan_id, pa.agent_id, p.created_at, \
         p.restore_test_every_seconds, p.restore_test_max_bytes, \
         (SELECT MAX(j.slot_at) FROM jobs j WHERE j.tenant_id = pa.tenant_id \
          AND j.plan_id = pa.plan_id AND j.agent_id = pa.agent_id \
          AND j.kind = 'restore_test') AS last_slot \
         FROM plan_agents pa JOIN plans p ON p.tenant_id = pa.tenant_id AND p.id = pa.plan_id \
         WHERE p.restore_test_every_seconds IS NOT NULL",
    )
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list the plans to rehearse"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode a plan to rehearse");
            let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
            let last: Option<i64> = row.try_get("last_slot").map_err(read)?;
            let every: i64 = row.try_get("restore_test_every_seconds").map_err(read)?;
            let max_bytes: Option<i64> = row.try_get("restore_test_max_bytes").map_err(read)?;
            Ok(RehearsalTarget {
                tenant: parse_id("plan_agents.tenant_id", &text("tenant_id")?)?,
                plan: parse_id("plan_agents.plan_id", &text("plan_id")?)?,
                agent: parse_id("plan_agents.agent_id", &text("agent_id")?)?,
                plan_created_at: from_millis(
                    "plans.created_at",
                    row.try_get("created_at").map_err(read)?,
                )?,
                every: std::time::Duration::from_secs(u64::try_from(every).unwrap_or(1).max(1)),
                max_bytes: max_bytes.and_then(|bytes| u64::try_from(bytes).ok()),
                last_slot: last
                    .map(|millis| from_millis("jobs.slot_at", millis))
                    .transpose()?,
            })
        })
        .collect()
}

/// The newest `limit` jobs of `tenant`, newest first.
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn list_recent(
    db: &Database,
    tenant: TenantId,
    limit: u32,
) -> Result<Vec<JobSummary>, DbError> {
    sqlx::query(AssertSqlSafe(
        "SELECT j.id, p.name AS plan_name, a.name AS agent_name, j.kind, j.\"trigger\", j.state, \
         j.slot_at, j.created_at, j.claimed_at, j.finished_at, j.bytes, j.files, \
         j.bytes_per_second, j.progress_at, j.error \
         FROM jobs j \
         JOIN agents a ON a.tenant_id = j.tenant_id AND a.id = j.agent_id \
         LEFT JOIN plans p ON p.tenant_id = j.tenant_id AND p.id = j.plan_id \
         WHERE j.tenant_id = $1 ORDER BY j.created_at DESC, j.id DESC LIMIT $2",
    ))
    .bind(tenant.to_hex())
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list jobs"))?
    .iter()
    .map(decode)
    .collect()
}

/// Job `id` of `tenant` with its log.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such job.
pub async fn get(
    db: &Database,
    tenant: TenantId,
    id: JobId,
) -> Result<(JobSummary, String), DbError> {
    let row = sqlx::query(AssertSqlSafe(
        "SELECT j.id, p.name AS plan_name, a.name AS agent_name, j.kind, j.\"trigger\", j.state, \
         j.slot_at, j.created_at, j.claimed_at, j.finished_at, j.bytes, j.files, \
         j.bytes_per_second, j.progress_at, j.error, j.log \
         FROM jobs j \
         JOIN agents a ON a.tenant_id = j.tenant_id AND a.id = j.agent_id \
         LEFT JOIN plans p ON p.tenant_id = j.tenant_id AND p.id = j.plan_id \
         WHERE j.tenant_id = $1 AND j.id = $2",
    ))
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read job"))?
    .ok_or_else(|| DbError::NotFound {
        what: "job",
        key: id.to_hex(),
    })?;
    let log: Option<String> = row.try_get("log").map_err(query_error("decode job log"))?;
    Ok((decode(&row)?, log.unwrap_or_default()))
}

fn decode(row: &AnyRow) -> Result<JobSummary, DbError> {
    let read = query_error("decode job row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let optional_text = |column: &str| row.try_get::<Option<String>, _>(column).map_err(read);
    let number = |column: &str| row.try_get::<Option<i64>, _>(column).map_err(read);
    let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, DbError> {
        number(column)?
            .map(|millis| from_millis(column, millis))
            .transpose()
    };
    Ok(JobSummary {
        id: parse_id("jobs.id", &text("id")?)?,
        plan: optional_text("plan_name")?,
        agent: text("agent_name")?,
        kind: text("kind")?,
        trigger: text("trigger")?,
        state: text("state")?,
        slot_at: time("slot_at")?,
        created_at: from_millis("jobs.created_at", row.try_get("created_at").map_err(read)?)?,
        claimed_at: time("claimed_at")?,
        finished_at: time("finished_at")?,
        bytes: number("bytes")?,
        files: number("files")?,
        bytes_per_second: number("bytes_per_second")?,
        progress_at: time("progress_at")?,
        error: optional_text("error")?,
    })
}

impl fmt::Display for JobTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
