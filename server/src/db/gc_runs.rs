//! Who collects which tenant's garbage, and what the runs did (`gc_runs`,
//! one row per tenant; see [`crate::gc::claim`] and
//! [`crate::scheduler::gc_pass`]).
//!
//! A claim is one upsert whose `WHERE` both backends evaluate under the
//! row's lock: it takes the row only when no other holder's lease is
//! running and no run started within the given gap. Two instances claiming
//! at once: one writes, the other's condition is then false and it changes
//! nothing. No in-process state is involved, so this holds across servers.

use sqlx::Row;
use stowage_protocol::ids::TenantId;

use super::{Database, DbError, from_millis, query_error, to_i64};

/// What the runs on one tenant have done, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRunTotals {
    /// Runs that finished.
    pub runs: u64,
    /// Runs that failed (each logged; retried after the interval).
    pub failures: u64,
    /// Packs the finished runs deleted.
    pub packs_deleted: u64,
    /// Bytes the finished runs reclaimed, orphan objects included.
    pub bytes_reclaimed: u64,
    /// When the newest run finished.
    pub last_finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The newest failure's cause, until a run finishes.
    pub last_error: Option<String>,
}

/// A claim's terms: times in stored milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// This run's holder id.
    pub holder: &'a str,
    /// Now.
    pub now: i64,
    /// Until when the claim is this holder's if it never finishes.
    pub lease_until: i64,
    /// A run that started after this is recent enough: no new one yet.
    pub started_before: i64,
}

/// Claims `tenant`'s collection for `claim.holder`; true when this call got
/// it, false when another holder's lease runs or a run started recently.
///
/// # Errors
///
/// Fails when the statement fails; then nothing is claimed.
pub async fn claim(db: &Database, tenant: TenantId, claim: Claim<'_>) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO gc_runs (tenant_id, holder, lease_expires_at, last_started_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET holder = excluded.holder, \
           lease_expires_at = excluded.lease_expires_at, \
           last_started_at = excluded.last_started_at \
         WHERE gc_runs.lease_expires_at <= $5 AND gc_runs.last_started_at <= $6",
    )
    .bind(tenant.to_hex())
    .bind(claim.holder)
    .bind(claim.lease_until)
    .bind(claim.now)
    .bind(claim.now)
    .bind(claim.started_before)
    .execute(db.pool())
    .await
    .map_err(query_error("claim a tenant's garbage collection"))?;
    Ok(done.rows_affected() == 1)
}

/// Extends `holder`'s claim on `tenant` to `lease_until`; false when the
/// claim is no longer `holder`'s (it ran out and another run took it).
///
/// # Errors
///
/// Fails when the statement fails.
pub async fn renew(
    db: &Database,
    tenant: TenantId,
    holder: &str,
    lease_until: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE gc_runs SET lease_expires_at = $3 WHERE tenant_id = $1 AND holder = $2",
    )
    .bind(tenant.to_hex())
    .bind(holder)
    .bind(lease_until)
    .execute(db.pool())
    .await
    .map_err(query_error("renew a garbage collection claim"))?;
    Ok(done.rows_affected() == 1)
}

/// Records a finished run and releases the claim if `holder` still has it
/// (a run that outlived its lease still adds its numbers).
///
/// # Errors
///
/// Fails when the statement fails; the lease then runs out on its own.
pub async fn finished(
    db: &Database,
    tenant: TenantId,
    holder: &str,
    packs_deleted: u64,
    bytes_reclaimed: u64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE gc_runs SET runs = runs + 1, packs_deleted = packs_deleted + $3, \
           bytes_reclaimed = bytes_reclaimed + $4, last_finished_at = $5, last_error = NULL, \
           lease_expires_at = CASE WHEN holder = $6 THEN 0 ELSE lease_expires_at END, \
           holder = CASE WHEN holder = $2 THEN NULL ELSE holder END \
         WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .bind(holder)
    .bind(to_i64(packs_deleted))
    .bind(to_i64(bytes_reclaimed))
    .bind(super::now_millis())
    .bind(holder)
    .execute(db.pool())
    .await
    .map_err(query_error("record a finished garbage collection"))?;
    Ok(())
}

/// Records a failed run with its cause and releases the claim if `holder`
/// still has it; the next run comes after the interval, as after success.
///
/// # Errors
///
/// Fails when the statement fails; the lease then runs out on its own.
pub async fn failed(
    db: &Database,
    tenant: TenantId,
    holder: &str,
    cause: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE gc_runs SET failures = failures + 1, last_error = $3, \
           lease_expires_at = CASE WHEN holder = $4 THEN 0 ELSE lease_expires_at END, \
           holder = CASE WHEN holder = $2 THEN NULL ELSE holder END \
         WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .bind(holder)
    .bind(cause)
    .bind(holder)
    .execute(db.pool())
    .await
    .map_err(query_error("record a failed garbage collection"))?;
    Ok(())
}

/// The totals of the runs on `tenant`, scheduled and by the `gc` command;
/// `None` before its first claim.
///
/// # Errors
///
/// Fails when the query fails or the row does not decode.
pub async fn totals(db: &Database, tenant: TenantId) -> Result<Option<GcRunTotals>, DbError> {
    let row = sqlx::query(
        "SELECT runs, failures, packs_deleted, bytes_reclaimed, last_finished_at, last_error \
         FROM gc_runs WHERE tenant_id = $1",
    )
    .bind(tenant.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read garbage collection totals"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let read = query_error("decode a gc_runs row");
    let count = |column: &str| -> Result<u64, DbError> {
        let value: i64 = row.try_get(column).map_err(read)?;
        Ok(u64::try_from(value).unwrap_or_default())
    };
    let last_finished_at: Option<i64> = row.try_get("last_finished_at").map_err(read)?;
    Ok(Some(GcRunTotals {
        runs: count("runs")?,
        failures: count("failures")?,
        packs_deleted: count("packs_deleted")?,
        bytes_reclaimed: count("bytes_reclaimed")?,
        last_finished_at: last_finished_at
            .map(|millis| from_millis("gc_runs.last_finished_at", millis))
            .transpose()?,
        last_error: row.try_get("last_error").map_err(read)?,
    }))
}
