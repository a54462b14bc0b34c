//! One garbage collection run per tenant at a time: the scheduled pass on
//! every instance and the `gc` command all claim the tenant's `gc_runs`
//! row ([`gc_runs::claim`]) before they run, and keep the claim alive while
//! they do.
//!
//! Two runs at once are designed to be safe (see the module docs of
//! [`crate::gc`]), but each race between two collectors is one more thing
//! that must be right: a copy one run gives up on while the other writes
//! the same bytes, two runs finishing the same deletion, two recordings of
//! the usage. Taking turns removes them all, and the work is not done
//! twice. The lease is short and renewed every [`RENEW_EVERY`] by the run,
//! so a run whose process died (killed, power cut) holds the tenant for at
//! most [`CLAIM_LEASE`], and a run that outlives its lease anyway (its
//! database unreachable for a minute) is still safe, only no longer alone.

use std::time::Duration;

use stowage_protocol::ids::TenantId;

use super::GcReport;
use crate::db::gc_runs::{self, Claim};
use crate::db::{Database, DbError, duration_millis, now_millis};

/// How long a claim holds a tenant past its last renewal.
pub const CLAIM_LEASE: Duration = Duration::from_mins(1);

/// How often a running collection renews its claim.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// How often a run waiting for another's claim tries again.
const WAIT_RETRY: Duration = Duration::from_secs(1);

/// A claim being renewed in the background until [`Self::release`] records
/// the run (dropping it only stops renewing; the lease then runs out).
#[derive(Debug)]
pub struct HeldClaim {
    renewal: tokio::task::JoinHandle<()>,
    db: Database,
    tenant: TenantId,
    holder: String,
}

impl HeldClaim {
    /// Stops renewing, then records the run's `outcome` in the tenant's
    /// totals (a report, or the cause of its failure) and releases the
    /// claim.
    ///
    /// # Errors
    ///
    /// Fails when the record's statement fails; the lease then runs out
    /// by itself within [`CLAIM_LEASE`].
    pub async fn release(self, outcome: Result<&GcReport, &str>) -> Result<(), DbError> {
        self.renewal.abort();
        match outcome {
            Ok(report) => {
                gc_runs::finished(
                    &self.db,
                    self.tenant,
                    &self.holder,
                    report.packs_deleted,
                    report.bytes_reclaimed + report.orphan_bytes_deleted,
                )
                .await
            }
            Err(cause) => gc_runs::failed(&self.db, self.tenant, &self.holder, cause).await,
        }
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Claims `tenant` for `holder` unless another holder's lease runs or a run
/// started after `started_before` (stored milliseconds); renews it until
/// the answer is dropped. `None` when the tenant is not claimable now.
///
/// # Errors
///
/// Fails when the claim's statement fails; then nothing is claimed.
pub async fn try_claim(
    db: &Database,
    tenant: TenantId,
    holder: &str,
    started_before: i64,
) -> Result<Option<HeldClaim>, DbError> {
    let now = now_millis();
    let claim = Claim {
        holder,
        now,
        lease_until: now + duration_millis(CLAIM_LEASE),
        started_before,
    };
    if !gc_runs::claim(db, tenant, claim).await? {
        return Ok(None);
    }
    let renewal = tokio::spawn({
        let (db, holder) = (db.clone(), holder.to_owned());
        async move {
            let mut every = tokio::time::interval(RENEW_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let lease_until = now_millis() + duration_millis(CLAIM_LEASE);
                match gc_runs::renew(&db, tenant, &holder, lease_until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(tenant.id = %tenant, "garbage collection outlived its claim, which another run took; both runs go on");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(tenant.id = %tenant, %error, "renewing the garbage collection claim failed; trying again");
                    }
                }
            }
        }
    });
    Ok(Some(HeldClaim {
        renewal,
        db: db.clone(),
        tenant,
        holder: holder.to_owned(),
    }))
}

/// Claims `tenant` for `holder` as soon as no other run holds it, however
/// recently one ran; calls `waiting` once if it has to wait.
///
/// # Errors
///
/// Fails when a claim's statement fails.
pub async fn claim_when_free(
    db: &Database,
    tenant: TenantId,
    holder: &str,
    waiting: impl FnOnce(),
) -> Result<HeldClaim, DbError> {
    let mut waiting = Some(waiting);
    loop {
        if let Some(held) = try_claim(db, tenant, holder, now_millis()).await? {
            return Ok(held);
        }
        if let Some(tell) = waiting.take() {
            tell();
        }
        tokio::time::sleep(WAIT_RETRY).await;
    }
}
