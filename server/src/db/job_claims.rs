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
use stowage_protocol::ids::{AgentId, JobId, PlanId, TenantId};

use super::{Backend, Database, DbError, from_millis, now_millis, parse_id, query_error};

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
    .bind(now + millis(lease))
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
    let expires = now_millis() + millis(lease);
    let done = sqlx::query(
        "UPDATE jobs SET lease_expires_at = $4, bytes = $5, files = $6 \
         WHERE tenant_id = $1 AND agent_id = $2 AND id = $3 AND state = 'running'",
    )
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(job.to_hex())
    .bind(expires)
    .bind(to_i64(progress.bytes))
    .bind(to_i64(progress.files))
    .execute(db.pool())
    .await
    .map_err(query_error("renew a job's lease"))?;
    if done.rows_affected() == 0 {
        return Err(not_running(job));
    }
    from_millis("jobs.lease_expires_at", expires)
}

/// Ends running job `job` with `outcome`, its final `progress` and the end of
/// its `log` (at most [`MAX_LOG_BYTES`]).
///
/// # Errors
///
/// [`DbError::NotFound`] as for [`renew`].
pub async fn finish(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    job: JobId,
    outcome: &Outcome,
    progress: Progress,
    log: &str,
) -> Result<(), DbError> {
    let (state, error) = match outcome {
        Outcome::Succeeded => ("succeeded", None),
        Outcome::Failed(why) => ("failed", Some(why.as_str())),
    };
    let done = sqlx::query(
        "UPDATE jobs SET state = $4, finished_at = $5, error = $6, log = $7, bytes = $8, files = $9 \
         WHERE tenant_id = $1 AND agent_id = $2 AND id = $3 AND state = 'running'",
    )
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(job.to_hex())
    .bind(state)
    .bind(now_millis())
    .bind(error)
    .bind(log_tail(log))
    .bind(to_i64(progress.bytes))
    .bind(to_i64(progress.files))
    .execute(db.pool())
    .await
    .map_err(query_error("finish a job"))?;
    if done.rows_affected() == 0 {
        return Err(not_running(job));
    }
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

fn millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4)
}

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
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
