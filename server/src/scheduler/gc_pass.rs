//! The server collecting every tenant's garbage on its own, on every
//! instance, every `[gc] interval` (daily by default), so deleted and
//! forgotten data goes without an operator running `stowage-server gc`.
//!
//! Every instance runs the pass; the database decides who collects which
//! tenant. Before a run the instance claims the tenant's `gc_runs` row
//! ([`gc_runs::claim`]): the claim succeeds only when no other instance
//! holds an unexpired lease on it and no run on it started within nine
//! tenths of the interval. So with N instances each tenant is still
//! collected about once per interval, by one of them, and never while a
//! `gc` command runs on it ([`crate::gc::claim`]). A run renews its claim
//! while it runs; the claim of an instance that died runs out after
//! [`claim::CLAIM_LEASE`].
//!
//! A run's report goes to the log and its numbers into the tenant's totals.
//! A failed run is logged with its cause, recorded, and tried again after
//! the interval; the pass never stops the server. Each run is its own task,
//! so even a panic in one tenant's run only fails that run.
//!
//! The first pass comes one interval after start, not at start: restarting
//! a server (or a test starting one) does not set off a collection, and a
//! fleet restarted together does not collect everything at once.

use std::sync::Arc;

use stowage_protocol::ids::TenantId;

use crate::configuration::GcSettings;
use crate::db::{Database, duration_millis, new_row_id, now_millis, tenants};
use crate::gc::{self, GcOptions, GcReport, claim};
use crate::storage::ObjectStore;

/// What one pass over all tenants did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Tenants this instance collected.
    pub collected: u32,
    /// Tenants another run held or had collected within the interval.
    pub skipped: u32,
    /// Tenants whose run failed (logged, tried again next interval).
    pub failed: u32,
    /// Packs this pass deleted.
    pub packs_deleted: u64,
    /// Bytes this pass reclaimed.
    pub bytes_reclaimed: u64,
}

/// Runs [`collect_due`] every `settings.interval`, the first one interval
/// after start, until the task is dropped.
pub async fn run(db: Database, store: Arc<dyn ObjectStore>, settings: GcSettings) {
    let holder = new_row_id();
    let start = tokio::time::Instant::now() + settings.interval;
    let mut interval = tokio::time::interval_at(start, settings.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let report = collect_due(&db, &store, settings, &holder).await;
        if report.collected + report.failed > 0 {
            tracing::info!(
                collected = report.collected,
                skipped = report.skipped,
                failed = report.failed,
                packs_deleted = report.packs_deleted,
                bytes_reclaimed = report.bytes_reclaimed,
                "garbage collection pass finished"
            );
        }
    }
}

/// Collects every tenant this instance can claim as `holder` (see the
/// module docs). Failures are logged and counted, never returned.
pub async fn collect_due(
    db: &Database,
    store: &Arc<dyn ObjectStore>,
    settings: GcSettings,
    holder: &str,
) -> PassReport {
    let mut report = PassReport::default();
    let tenants = match tenants::list(db).await {
        Ok(tenants) => tenants,
        Err(error) => {
            tracing::error!(%error, "listing tenants for garbage collection failed; retrying next pass");
            report.failed += 1;
            return report;
        }
    };
    let min_gap = duration_millis(settings.interval) * 9 / 10;
    for tenant in tenants {
        let started_before = now_millis() - min_gap;
        let held = match claim::try_claim(db, tenant.id, holder, started_before).await {
            Ok(Some(held)) => held,
            Ok(None) => {
                report.skipped += 1;
                continue;
            }
            Err(error) => {
                tracing::error!(tenant.id = %tenant.id, %error, "claiming garbage collection failed; retrying next pass");
                report.failed += 1;
                continue;
            }
        };
        match run_one(db, store, tenant.id, settings, held).await {
            Some(run) => {
                report.collected += 1;
                report.packs_deleted += run.packs_deleted;
                report.bytes_reclaimed += run.bytes_reclaimed + run.orphan_bytes_deleted;
            }
            None => report.failed += 1,
        }
    }
    report
}

/// One tenant's run on its own task, recorded in `gc_runs`; `None` when it
/// failed (logged and recorded).
async fn run_one(
    db: &Database,
    store: &Arc<dyn ObjectStore>,
    tenant: TenantId,
    settings: GcSettings,
    held: claim::HeldClaim,
) -> Option<GcReport> {
    let options = GcOptions {
        dry_run: false,
        orphan_min_age: settings.orphan_min_age,
        ..GcOptions::default()
    };
    let task = {
        let (db, store) = (db.clone(), store.clone());
        tokio::spawn(async move { gc::collect(&db, store.as_ref(), tenant, options).await })
    };
    let outcome = match task.await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(error)) => Err(format!("{error:#}")),
        Err(join) => Err(format!("the run stopped abnormally - {join}")),
    };
    match &outcome {
        Ok(report) => tracing::info!(
            tenant.id = %tenant,
            packs_deleted = report.packs_deleted,
            blobs_deleted = report.blobs_deleted,
            bytes_reclaimed = report.bytes_reclaimed,
            orphans_deleted = report.orphans_deleted,
            packs_kept_by_backups = report.packs_kept_by_backups,
            partly_dead_packs = report.partly_dead_packs,
            catch_ups = report.catch_ups,
            seconds = report.total_seconds,
            "scheduled garbage collection finished"
        ),
        Err(cause) => {
            tracing::error!(tenant.id = %tenant, %cause, "scheduled garbage collection failed; retrying next interval");
        }
    }
    let recorded = held.release(outcome.as_ref().map_err(String::as_str)).await;
    if let Err(error) = recorded {
        tracing::error!(tenant.id = %tenant, %error, "recording a garbage collection run failed; its claim runs out on its own");
    }
    outcome.ok()
}
