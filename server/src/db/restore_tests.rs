//! The `restore_tests` table: what each finished restore test (a timed
//! rehearsal restore on an agent) measured, kept per plan so "when was the
//! last good rehearsal, and how long did the restore take against the
//! plan's RTO" is one indexed lookup.
//!
//! Rows are written in the transaction that ends the job
//! ([`crate::db::job_claims::finish`]), failed rehearsals too: a check that
//! found a damaged file is exactly what an operator must see.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use stowage_protocol::api::RestoreTestReport;
use stowage_protocol::ids::{AgentId, JobId, PlanId, SnapshotId, TenantId};

use super::{Database, DbError, from_millis, parse_id, query_error, to_i64};

/// A finished restore test, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Result {
    /// The restore-test job.
    pub job: JobId,
    /// Its plan.
    pub plan: PlanId,
    /// The agent that rehearsed.
    pub agent: AgentId,
    /// What it measured.
    pub report: RestoreTestReport,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A recorded restore test, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The snapshot rehearsed.
    pub snapshot: SnapshotId,
    /// Whether every byte restored and checked.
    pub succeeded: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// Files restored and checked.
    pub files: u64,
    /// Bytes restored and checked.
    pub bytes: u64,
    /// Wall time of the restore alone.
    pub restore_ms: u64,
    /// Wall time of the byte check.
    pub check_ms: u64,
    /// Whether a size cap made it a sample.
    pub sampled: bool,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

impl Recorded {
    /// Restore throughput in bytes a second (0 for an instant restore).
    pub fn bytes_per_second(&self) -> u64 {
        if self.restore_ms == 0 {
            return 0;
        }
        self.bytes.saturating_mul(1000) / self.restore_ms
    }
}

/// The newest restore test of a plan, and its newest good one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rehearsals {
    /// The newest, good or not.
    pub last: Option<Recorded>,
    /// The newest that succeeded.
    pub last_good: Option<Recorded>,
}

/// Records `result` for `tenant`, ended at `now` (milliseconds), inside the
/// caller's transaction.
///
/// # Errors
///
/// Fails when the insert fails (a job recorded twice, a plan of another tenant).
pub async fn record(
    tx: &mut Transaction<'static, Any>,
    tenant: TenantId,
    result: &Result,
    now: i64,
) -> std::result::Result<(), DbError> {
    let report = &result.report;
    sqlx::query(
        "INSERT INTO restore_tests (job_id, tenant_id, plan_id, agent_id, snapshot_id, succeeded, \
         error, files, bytes, restore_ms, check_ms, sampled, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(result.job.to_hex())
    .bind(tenant.to_hex())
    .bind(result.plan.to_hex())
    .bind(result.agent.to_hex())
    .bind(report.snapshot.to_hex())
    .bind(i64::from(result.error.is_none()))
    .bind(result.error.as_deref())
    .bind(to_i64(report.files))
    .bind(to_i64(report.bytes))
    .bind(to_i64(report.restore_ms))
    .bind(to_i64(report.check_ms))
    .bind(i64::from(report.sampled))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(query_error("record a restore test"))?;
    Ok(())
}

/// The newest restore test of plan `plan` of `tenant`, and the newest good one.
///
/// # Errors
///
/// Fails when a query fails or a row does not decode.
pub async fn for_plan(
    db: &Database,
    tenant: TenantId,
    plan: PlanId,
) -> std::result::Result<Rehearsals, DbError> {
    let newest = |only_good: bool| {
        let filter = if only_good { " AND succeeded = 1" } else { "" };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT snapshot_id, succeeded, error, files, bytes, restore_ms, check_ms, sampled, \
             finished_at FROM restore_tests WHERE tenant_id = $1 AND plan_id = $2{filter} \
             ORDER BY finished_at DESC LIMIT 1"
        )))
        .bind(tenant.to_hex())
        .bind(plan.to_hex())
        .fetch_optional(db.pool())
    };
    let last = newest(false)
        .await
        .map_err(query_error("read a plan's latest restore test"))?;
    let last_good = newest(true)
        .await
        .map_err(query_error("read a plan's latest good restore test"))?;
    Ok(Rehearsals {
        last: last.as_ref().map(decode).transpose()?,
        last_good: last_good.as_ref().map(decode).transpose()?,
    })
}

fn decode(row: &AnyRow) -> std::result::Result<Recorded, DbError> {
    let read = query_error("decode a restore test");
    let number = |column: &'static str| -> std::result::Result<u64, DbError> {
        let value: i64 = row.try_get(column).map_err(read)?;
        u64::try_from(value).map_err(|_| DbError::Corrupt {
            what: column,
            problem: format!("{value} is negative"),
        })
    };
    Ok(Recorded {
        snapshot: parse_id(
            "restore_tests.snapshot_id",
            &row.try_get::<String, _>("snapshot_id").map_err(read)?,
        )?,
        succeeded: number("succeeded")? == 1,
        error: row.try_get("error").map_err(read)?,
        files: number("files")?,
        bytes: number("bytes")?,
        restore_ms: number("restore_ms")?,
        check_ms: number("check_ms")?,
        sampled: number("sampled")? == 1,
        finished_at: from_millis(
            "restore_tests.finished_at",
            row.try_get("finished_at").map_err(read)?,
        )?,
    })
}
