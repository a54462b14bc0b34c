//! Opening a sweep transaction that is current: before a transaction that
//! deletes index rows (a sweep's or a repack's) trusts the mark, it checks
//! under the epoch bump for roots that appeared since the mark — snapshots
//! committed since shortly before it started, sessions that are new or had
//! a request since their leases were read — and, finding some, drops the
//! transaction, extends the mark from them and tries again (see `super`
//! docs, "A backup commits while GC runs").

use stowage_protocol::ids::TenantId;

use super::mark::Marker;
use super::report::GcReport;
use crate::db::gc_sweep::{self, SweepTransaction};
use crate::db::{Database, now_millis};

/// How far before the mark's start a snapshot counts as possibly unseen:
/// covers a commit whose time was taken just before its transaction ended,
/// and clocks of several server instances that disagree a little.
const SNAPSHOT_MARGIN_MILLIS: i64 = 10 * 60 * 1000;
/// Times per run the mark catches up with sessions that stay active; after
/// that the run goes on without waiting for them (see `super` docs).
const MAX_SESSION_CATCH_UPS: u64 = 3;

/// The catch-up state of one run, shared by its sweep and its repack.
#[derive(Debug)]
pub struct CatchUp {
    /// Snapshots committed since then may be unseen by the mark.
    since: i64,
    /// Catch-ups made for active sessions so far.
    session_catch_ups: u64,
}

impl CatchUp {
    /// The state for a run whose mark is `marker`.
    pub fn new(marker: &Marker) -> Self {
        Self {
            since: marker.started_at() - SNAPSHOT_MARGIN_MILLIS,
            session_catch_ups: 0,
        }
    }

    /// Begins a sweep transaction for `tenant` in which `marker` covers
    /// every root, extending it (outside any transaction) as often as needed.
    ///
    /// # Errors
    ///
    /// Fails when a query fails.
    pub async fn begin(
        &mut self,
        db: &Database,
        tenant: TenantId,
        marker: &mut Marker,
        report: &mut GcReport,
    ) -> anyhow::Result<SweepTransaction> {
        loop {
            let mut tx = gc_sweep::begin(db, tenant).await?;
            let snapshots = marker.unseen_snapshots(&tx.snapshots_since(self.since).await?);
            let mut sessions = marker.active_sessions(&tx.live_sessions(now_millis()).await?);
            if self.session_catch_ups >= MAX_SESSION_CATCH_UPS {
                sessions.clear();
            }
            if snapshots.is_empty() && sessions.is_empty() {
                return Ok(tx);
            }
            // Roots appeared since the mark: extend it outside the
            // transaction (SQLite's write lock stays free), then retry.
            drop(tx);
            if !sessions.is_empty() {
                self.session_catch_ups += 1;
            }
            marker.catch_up(db, &snapshots, &sessions).await?;
            report.catch_ups += 1;
        }
    }
}
