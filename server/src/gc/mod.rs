//! Garbage collection, phase 1: mark the blobs a tenant still needs, and
//! delete the packs in which every blob is dead.
//!
//! `stowage-server gc --tenant T` runs [`collect`]; it needs no keys, only
//! the index (`packs`, `blobs`, `blob_refs`) and the object store.
//!
//! # Layout
//!
//! - `live_set.rs` — the visited set: 16-byte id prefixes, exact trees.
//! - `mark.rs` — roots (snapshots, leases of open sessions) and the walk.
//! - `sweep.rs` — which packs are wholly dead; the sweep transactions.
//! - `objects.rs` — deleting pack objects after their rows, and orphans.
//! - `fault.rs` — crash points for the crash tests.
//! - `report.rs` — what a run did.
//! - `usage.rs` — the storage accounting recorded at the end of a run.
//!
//! # Steps
//!
//! 1. Release the leases of upload sessions that expired uncommitted and
//!    remove sessions that ended long ago ([`ended_sessions`]); finish what
//!    an earlier run left: objects of packs whose rows it had deleted
//!    (`gc_pending_deletes`).
//! 2. Mark, from the index alone, every blob reachable from the tenant's
//!    roots: every snapshot's root (and error log), and every blob leased to
//!    an open upload session — including each blob of each pack such a
//!    session uploaded, which indexing leased — trees included, so a leased
//!    tree keeps its whole subtree.
//! 3. Forget the `complete_trees` record of every tree the mark did not
//!    reach, before anything below such a tree can go.
//! 4. Sweep the packs whose every indexed blob is unmarked, 64 per
//!    transaction; packs with both live and dead blobs are counted and left
//!    for repacking (phase 2).
//! 5. Delete pack objects that have had no index row for longer than the
//!    orphan age.
//! 6. Record the tenant's storage usage: live and dead bytes from 2 and 4,
//!    and per plan and agent what its snapshots reference (`usage.rs`).
//!
//! A dry run does 2 and 4's sorting and reports; it writes nothing.
//!
//! # Why it is safe
//!
//! The promise is that a blob some snapshot or some running backup needs is
//! never deleted, and that the index never names an object that is gone.
//! Deleting garbage late, or not at all, is always allowed.
//!
//! **A backup commits while GC runs.** Each sweep transaction first bumps
//! the tenant's epoch (`gc_epochs`), which makes it SQLite's single writer
//! or, on PostgreSQL, holds the epoch row that a commit locks. Inside it,
//! it reads the snapshots committed since shortly before the mark started
//! and the open sessions: a snapshot whose roots the mark has not seen, or
//! a session that is new or had a request since its leases were read,
//! sends the run back to extend the mark from them (outside the
//! transaction) before it retries — marking from the new roots, not
//! skipping. Then it locks the pack rows and their blob rows, keeps any
//! pack in which a blob is now marked or leased to an open session, and
//! deletes the rest (a pack another run swept meanwhile is not counted).
//! A commit, for its part, walks reachability before its transaction and
//! trusts what it saw; it reads the epoch before the walk and again, locked,
//! inside its transaction, and walks again when a sweep ran in between, so
//! no snapshot becomes visible on the strength of a walk that saw a blob a
//! sweep then deleted. Sessions that keep being active make the run catch up
//! at most three times; after that it deletes on the strength of the epoch
//! and the lease check alone, at the cost described next.
//!
//! **`missing` and the sweep.** `missing` reads which blobs are present and
//! leases them in one transaction ordered against the sweep's (SQLite's
//! write lock; on PostgreSQL the blob rows `FOR SHARE` against the sweep's
//! `FOR UPDATE`): either the sweep sees the lease and keeps the pack, or
//! `missing` finds the blob gone and the agent uploads it.
//!
//! **A lease expires mid-backup.** Its blobs are no longer roots and may
//! be collected. The session is then refused as expired, and a commit on
//! it fails; a backup whose session lived but which relied on a blob it
//! never asked about (reused from its parent snapshot, which retention
//! forgot meanwhile) has its commit fail naming the missing blobs, and the
//! agent drops its cache and uploads them again. Never a broken snapshot:
//! the commit's walk checks every blob it does not know complete, and the
//! epoch makes that check current, and step 3 ensures that no surviving
//! tree is recorded complete over a collected blob.
//!
//! **The server dies mid-sweep.** A sweep transaction is all or nothing.
//! Objects go only after their rows' transaction committed, and each is
//! recorded in `gc_pending_deletes` in that same transaction, so a crash
//! leaves at worst objects that nothing names and a record of them; the
//! next run deletes them first (step 1). An upload that died between
//! writing its object and indexing it leaves an object with no record;
//! step 5 finds it by listing the store and deletes it once it has been
//! unindexed for the orphan age (an hour by default), far longer than any
//! upload takes between its object write and its index commit.
//!
//! **What remains open.** Pack ids are hashes of pack bytes, which carry a
//! fresh data key and nonces, so the same pack id is only uploaded twice by
//! a retry of one upload. A retry that stores and indexes the very pack a
//! sweep just removed, in the moment between the sweep's row transaction
//! and its object deletion, would be indexed over an object then deleted;
//! the object deletion re-checks the `packs` row just before, which
//! narrows but does not close that window. Closing it needs ingest to
//! refuse packs with a pending deletion (left for phase 2, with repack).
//!
//! # Memory
//!
//! The mark reads roots and references in pages and batches of at most 500
//! ids; what it keeps is the [`live_set::LiveSet`] — 20–40 bytes per
//! live blob, see there — plus the list of wholly dead packs. Step 6 walks
//! one plan/agent group at a time with a fresh set, after the sweep has
//! dropped the mark's, so no set is larger than the tenant's.

mod fault;
pub mod live_set;
mod mark;
mod objects;
mod report;
mod sweep;
mod usage;

use std::time::{Duration, Instant};

use anyhow::Context;

use stowage_protocol::ids::TenantId;

pub use fault::FaultPoint;
pub use mark::Marker;
pub use report::GcReport;

use crate::db::{Database, ended_sessions, gc_sweep};
use crate::storage::ObjectStore;

/// How a run behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Report what would be reclaimed; change nothing.
    pub dry_run: bool,
    /// How long a pack object must have had no index row before it is
    /// deleted as an orphan: longer than any upload between writing its
    /// object and indexing it.
    pub orphan_min_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            orphan_min_age: Duration::from_hours(1),
        }
    }
}

/// Collects the garbage of `tenant`: [`mark`], then [`sweep`].
///
/// # Errors
///
/// Fails when a query, the listing or a deletion fails; everything done
/// before stays done, and a new run finishes the rest.
pub async fn collect(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    options: GcOptions,
) -> anyhow::Result<GcReport> {
    let started = Instant::now();
    let mut report = GcReport {
        dry_run: options.dry_run,
        ..GcReport::default()
    };
    if !options.dry_run {
        gc_sweep::ensure_epoch(db, tenant).await?;
    }
    if !options.dry_run {
        let purged = ended_sessions::purge(db, tenant).await?;
        report.expired_leases_released = purged.leases;
        report.ended_sessions_removed = purged.sessions;
    }
    objects::finish_pending(db, store, tenant, options.dry_run, &mut report).await?;
    let marker = mark(db, tenant, &mut report).await?;
    let reclaimed_before = report.bytes_reclaimed;
    sweep(db, store, tenant, marker, options, &mut report).await?;
    if !options.dry_run {
        let swept = report.bytes_reclaimed - reclaimed_before;
        usage::account(db, tenant, swept, &mut report)
            .await
            .context("unable to record the tenant's storage usage")?;
    }
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The mark of [`collect`]: everything reachable from `tenant`'s roots now.
/// Separate so tests can change the roots between mark and sweep.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn mark(
    db: &Database,
    tenant: TenantId,
    report: &mut GcReport,
) -> anyhow::Result<Marker> {
    let started = Instant::now();
    let marker = Marker::run(db, tenant).await?;
    report.mark_seconds = started.elapsed().as_secs_f64();
    report.live_blobs = marker.live().len();
    report.live_set_bytes = marker.live().heap_bytes();
    report.live_stored_blobs = marker.reached().blobs;
    report.live_bytes = marker.reached().bytes;
    tracing::info!(
        tenant.id = %tenant,
        live_blobs = report.live_blobs,
        live_set_bytes = report.live_set_bytes,
        "garbage collection marked"
    );
    fault::reached(FaultPoint::AfterMark);
    Ok(marker)
}

/// The sweep of [`collect`] after `marker`: forget dead complete trees,
/// remove wholly dead packs, delete orphan objects.
///
/// # Errors
///
/// Fails when a query, the listing or a deletion fails.
pub async fn sweep(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    mut marker: Marker,
    options: GcOptions,
    report: &mut GcReport,
) -> anyhow::Result<()> {
    let dead = sweep::classify(db, tenant, &marker, report).await?;
    report.dead_packs_at_mark = dead.len() as u64;
    report.dead_pack_bytes_at_mark = dead.iter().map(|pack| pack.size).sum();
    if options.dry_run {
        report.packs_deleted = dead.len() as u64;
        report.blobs_deleted = dead.iter().map(|pack| pack.blobs).sum();
        report.bytes_reclaimed += dead.iter().map(|pack| pack.size).sum::<u64>();
    } else {
        gc_sweep::ensure_epoch(db, tenant).await?;
        sweep::forget_dead_trees(db, tenant, &marker).await?;
        sweep::sweep(db, store, tenant, &mut marker, &dead, report).await?;
    }
    objects::sweep_orphans(
        db,
        store,
        tenant,
        options.orphan_min_age,
        options.dry_run,
        report,
    )
    .await?;
    tracing::info!(
        tenant.id = %tenant,
        packs_deleted = report.packs_deleted,
        blobs_deleted = report.blobs_deleted,
        bytes_reclaimed = report.bytes_reclaimed,
        dry_run = options.dry_run,
        "garbage collection swept"
    );
    Ok(())
}
