//! Agents taking jobs: claiming the oldest queued job under a lease,
//! renewing the lease with progress, finishing, and failing the jobs whose
//! agent stopped reporting.
//!
//! A claim is one `UPDATE … WHERE id = (oldest queued) AND state =
//! 'queued' RETURNING`: atomic on both engines, so a job is claimed once
//! however many requests (or server instances) race for it. On PostgreSQL
//! the inner select takes `FOR UPDATE SKIP LOCKED`, so a racing claim takes
//! the next queued job instead of waiting and then finding none; SQLite has
//! one writer at a time and needs no more.
//!
//! Every later step names the job, its tenant and its agent and requires
//! the job to be running: an agent whose lease ran out (its job already
//! failed) or whose job is another agent's is refused, never obeyed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};
use stowage_protocol::api::RestoreTestReport;
use stowage_protocol::ids::{AgentId, JobId, PlanId, TenantId};

use super::{
    Backend, Database, DbError, duration_millis, from_millis, now_millis, parse_id, query_error,
    restore_tests, to_i64,
};

/// Longest stored job log; a longer one keeps its end, where failures are.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// Why a job that stopped reporting failed.
pub const LEASE_EXPIRED: &str =
    "the agent stopped reporting: no progress arrived before the job's lease ran out";

/// A job an agent has just claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The job.
    pub id: JobId,
    /// Its plan, if it has one.
    pub plan: Option<PlanId>,
    /// backup, restore, verify or restore_test.
    pub kind: String,
    /// The stored work of a job that is not a plan's backup (JSON of
    /// `stowage_protocol::api::JobWork`).
    pub params: Option<String>,
    /// When the job fails unless the agent renews the lease.
    pub lease_expires_at: DateTime<Utc>,
}

/// What a running job has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read (a backup) or written (a restore).
    pub bytes: u64,
    /// Files done.
    pub files: u64,
    /// The agent's recent rate, bytes a second.
    pub bytes_per_second: u64,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it was for.
    Succeeded,
    /// It failed; the sentence says why.
    Failed(String),
}

/// Claims the oldest queued job of `agent` of `tenant` for `lease`, or
/// returns `None` when it has none.
///
/// # Errors
///
/// Fails when the statement fails.
pub async fn claim_next(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    lease: Duration,
) -> Result<Option<Claimed>, DbError> {
    let now = now_millis();
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE jobs SET state = 'running', claimed_at = $3, lease_expires_at = $4 \
         WHERE id = (SELECT id FROM jobs WHERE tenant_id = $1 AND agent_id = $2 \
           AND state = 'queued' ORDER BY created_at, id LIMIT 1{lock}) \
         AND state = 'queued' \
         RETURNING id, plan_id, kind, params, lease_expires_at"
    )))
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(now)
    .bind(now + duration_millis(lease))
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("claim a job"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let read = query_error("decode a claimed job");
    let plan: Option<String> = row.try_get("plan_id").map_err(read)?;
    Ok(Some(Claimed {
        id: parse_id("jobs.id", &row.try_get::<String, _>("id").map_err(read)?)?,
        plan: plan.map(|p| parse_id("jobs.plan_id", &p)).transpose()?,
        kind: row.try_get("kind").map_err(read)?,
        params: row.try_get("params").map_err(read)?,
        lease_expires_at: from_millis(
            "jobs.lease_expires_at",
            row.try_get("lease_expires_at").map_err(read)?,
        )?,
    }))
}

/// Renews the lease of running job `job` for another `lease` and records
/// its progress; returns the new expiry.
///
/// # Errors
///
/// [`DbError::NotFound`] when `agent` of `tenant` has no such running job
/// (another agent's, finished, or failed because its lease ran out): the
/// agent must stop working on it.
pub async fn renew(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    job: JobId,
    lease: Duration,
    progress: Progress,
) -> Result<DateTime<Utc>, DbError> {
    let now = now_millis();
    let expires = now + duration_millis(lease);
    let done = sqlx::query(
        "UPDATE jobs SET lease_expires_at = $4, bytes = $5, files = $6, bytes_per_second = $7, \
         progress_at = $8 \
         WHERE tenant_id = $1 AND agent_id = $2 AND id = $3 AND state = 'running'",
    )
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(job.to_hex())
    .bind(expires)
    .bind(to_i64(progress.bytes))
    .bind(to_i64(progress.files))
    .bind(to_i64(progress.bytes_per_second))
    .bind(now)
    .execute(db.pool())
    .await
    .map_err(query_error("renew a job's lease"))?;
    if done.rows_affected() == 0 {
        return Err(not_running(job));
    }
    from_millis("jobs.lease_expires_at", expires)
}

/// How a job ended, as its agent reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending<'a> {
    /// Succeeded, or failed and why.
    pub outcome: Outcome,
    /// The final counts.
    pub progress: Progress,
    /// The job's log; only its last [`MAX_LOG_BYTES`] are kept.
    pub log: &'a str,
    /// What a restore test measured (recorded only for a restore-test job).
    pub restore_test: Option<RestoreTestReport>,
}

/// Ends running job `job` with `ending`; a restore test's measurements are
/// recorded for its plan in the same transaction.
///
/// # Errors
///
/// [`DbError::NotFound`] as for [`renew`].
pub async fn finish(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    job: JobId,
    ending: &Ending<'_>,
) -> Result<(), DbError> {
    let (state, error) = match &ending.outcome {
        Outcome::Succeeded => ("succeeded", None),
        Outcome::Failed(why) => ("failed", Some(why.as_str())),
    };
    let now = now_millis();
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "UPDATE jobs SET state = $4, finished_at = $5, error = $6, log = $7, bytes = $8, files = $9 \
         WHERE tenant_id = $1 AND agent_id = $2 AND id = $3 AND state = 'running' \
         RETURNING kind, plan_id",
    )
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(job.to_hex())
    .bind(state)
    .bind(now)
    .bind(error)
    .bind(log_tail(ending.log))
    .bind(to_i64(ending.progress.bytes))
    .bind(to_i64(ending.progress.files))
    .fetch_optional(&mut *tx)
    .await
    .map_err(query_error("finish a job"))?
    .ok_or_else(|| not_running(job))?;
    let read = query_error("decode a finished job");
    let kind: String = row.try_get("kind").map_err(read)?;
    let plan: Option<String> = row.try_get("plan_id").map_err(read)?;
    if let (Some(report), "restore_test", Some(plan)) = (&ending.restore_test, kind.as_str(), plan)
    {
        let result = restore_tests::Result {
            job,
            plan: parse_id("jobs.plan_id", &plan)?,
            agent,
            report: *report,
            error: error.map(str::to_owned),
        };
        restore_tests::record(&mut tx, tenant, &result, now).await?;
    }
    tx.commit()
        .await
        .map_err(query_error("commit a finished job"))?;
    Ok(())
}

/// Fails every running job, of every tenant, whose lease ended before
/// `now`, with [`LEASE_EXPIRED`]; returns how many. Run by the scheduler's
/// tick on every instance (a job fails once: the update requires it running).
///
/// # Errors
///
/// Fails when the statement fails.
pub async fn expire_leases(db: &Database, now: DateTime<Utc>) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'failed', finished_at = $1, error = $2 \
         WHERE state = 'running' AND lease_expires_at < $1",
    )
    .bind(now.timestamp_millis())
    .bind(LEASE_EXPIRED)
    .execute(db.pool())
    .await
    .map_err(query_error("fail jobs whose lease expired"))?;
    Ok(done.rows_affected())
}

/// The last [`MAX_LOG_BYTES`] of `log`, cut at a character boundary.
fn log_tail(log: &str) -> &str {
    if log.len() <= MAX_LOG_BYTES {
        return log;
    }
    let mut start = log.len() - MAX_LOG_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

fn not_running(job: JobId) -> DbError {
    DbError::NotFound {
        what: "running job",
        key: job.to_hex(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_end_on_a_character_boundary() {
        let log = format!("{}{}", "é".repeat(MAX_LOG_BYTES), "the end");

        let kept = log_tail(&log);

        assert!(kept.len() <= MAX_LOG_BYTES && kept.ends_with("the end"));
        assert!(log_tail("short") == "short");
    }
}
