//! Garbage collection: mark the blobs a tenant still needs, delete the
//! packs in which every blob is dead, and repack those mostly dead.
//!
//! `stowage-server gc --tenant T` runs [`collect`]; it needs no keys, only
//! the index (`packs`, `blobs`, `blob_refs`) and the object store.
//!
//! # Layout
//!
//! - `live_set.rs` — the visited set: 16-byte id prefixes, exact trees.
//! - `mark.rs` — roots (snapshots, leases of open sessions) and the walk.
//! - `sweep.rs` — which packs are wholly dead or to repack; the sweep
//!   transactions.
//! - `catch_up.rs` — opening a transaction in which the mark is current.
//! - `claim.rs` — one run per tenant at a time, for the scheduled pass
//!   and the `gc` command alike.
//! - `repack.rs` — replacing partly dead packs, crash-safe;
//!   `repack_copy.rs` — copying their live sealed blobs into a new pack.
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
//!    transaction.
//! 5. Repack the packs that hold dead bytes and whose live blobs fill less
//!    than `repack_below_percent` (80 % by default) of them: each becomes a
//!    new pack of its live sealed blobs, copied verbatim under the same
//!    sealed data key (see `repack.rs` for the order that makes it
//!    crash-safe). Packs are not merged: a version-1 pack carries one data
//!    key, and blobs of two packs are sealed under two keys the server does
//!    not hold (`repack_copy.rs`).
//! 6. Delete pack objects that have had no index row for longer than the
//!    orphan age, recording each deletion first.
//! 7. Drop deletion records finished longer ago than the orphan age.
//! 8. Record the tenant's storage usage: live and dead bytes from 2 and 4,
//!    and per plan and agent what its snapshots reference (`usage.rs`).
//!
//! A dry run does 2 and the sorting of 4 and 5 and reports; it writes
//! nothing.
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
//! inside its transaction, and when a sweep ran in between walks again
//! inside the transaction, where the lock keeps every sweep out until it
//! ends, so no snapshot becomes visible on the strength of a walk that saw
//! a blob a sweep then deleted, and a long sweep cannot hold a commit back. Sessions that keep being active make the run catch up
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
//! **A repack moves live blobs.** Its transaction is a sweep transaction
//! (epoch bump, catch-up, the old packs' rows and blob rows locked), so
//! everything above holds for the rows it deletes; the blobs it copied keep
//! their rows, moved to the new pack, which was written and durable before
//! the transaction began. A blob of an old pack that was not copied and is
//! now marked or leased keeps the old pack as it is. The old objects go
//! only after the commit, through `gc_pending_deletes` like a sweep's.
//!
//! **An upload of a pack GC is deleting.** Pack ids are hashes of pack
//! bytes, so a retried upload stores the very object a sweep (or the
//! orphan sweep) may be deleting; indexed in between, the index would name
//! an object then gone. Every deletion is therefore recorded, stamped with
//! the epoch of its transaction, before its object is deleted, and the
//! record stays as a tombstone after. An upload reads the epoch before it
//! writes and is refused (retryable) when a record of its pack is
//! unfinished then, or at its index transaction when a record is
//! unfinished or newer than its reading — `crate::db::gc_tombstones` has
//! the argument for each interleaving.
//!
//! # Memory
//!
//! The mark reads roots and references in pages and batches of at most 500
//! ids; what it keeps is the [`live_set::LiveSet`] — 20–40 bytes per
//! live blob, see there — plus the list of wholly dead packs and of packs
//! to repack (about 50 bytes each). A repack holds one old pack object and
//! its new copy in memory at a time: twice the pack size, 32 MiB for the
//! agent's 16 MiB packs, 256 MiB at the 128 MiB maximum.
//! Step 8 walks one plan/agent group at a time with a fresh set, after the
//! sweep has dropped the mark's, so no set is larger than the tenant's.

mod catch_up;
pub mod claim;
mod fault;
pub mod live_set;
mod mark;
mod objects;
mod repack;
mod repack_copy;
mod report;
mod sweep;
mod usage;

use std::time::{Duration, Instant};

use anyhow::Context;

use stowage_protocol::ids::TenantId;

pub use fault::FaultPoint;
pub use mark::{MarkSummary, Marker};
pub use report::GcReport;

use catch_up::CatchUp;

use crate::db::{Database, duration_millis, ended_sessions, gc_sweep, gc_tombstones, now_millis};
use crate::storage::ObjectStore;

/// How a run behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Report what would be reclaimed; change nothing.
    pub dry_run: bool,
    /// How long a pack object must have had no index row before it is
    /// deleted as an orphan: longer than any upload between writing its
    /// object and indexing it. Finished deletion records are kept as long.
    pub orphan_min_age: Duration,
    /// Repack a pack that holds dead bytes when its live blobs fill less
    /// than this percentage of it; 0 turns repacking off.
    pub repack_below_percent: u8,
}

/// The default of [`GcOptions::repack_below_percent`]: a pack is rewritten
/// once a fifth of it is dead. Rewriting copies the live four fifths, so a
/// lower bar would copy many bytes to free few; a higher one would leave
/// much garbage stored.
pub const DEFAULT_REPACK_BELOW_PERCENT: u8 = 80;

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            orphan_min_age: Duration::from_hours(1),
            repack_below_percent: DEFAULT_REPACK_BELOW_PERCENT,
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
        let purged = ended_sessions::purge(db, tenant).await?;
        report.expired_leases_released = purged.leases;
        report.ended_sessions_removed = purged.sessions;
    }
    objects::finish_pending(db, store, tenant, options.dry_run, &mut report).await?;
    let marker = mark(db, tenant, &mut report).await?;
    let reclaimed = |report: &GcReport| report.bytes_reclaimed + report.repack_bytes_reclaimed;
    let reclaimed_before = reclaimed(&report);
    let summary = sweep(db, store, tenant, marker, options, &mut report).await?;
    if !options.dry_run {
        let swept = reclaimed(&report) - reclaimed_before;
        usage::account(db, tenant, swept, summary, &mut report)
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
/// remove wholly dead packs, delete orphan objects. Answers what the mark,
/// caught up, reached and from which roots; its live set is dropped.
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
) -> anyhow::Result<MarkSummary> {
    let classified =
        sweep::classify(db, tenant, &marker, options.repack_below_percent, report).await?;
    let dead = &classified.dead;
    report.dead_packs_at_mark = dead.len() as u64;
    report.dead_pack_bytes_at_mark = dead.iter().map(|pack| pack.size).sum();
    if options.dry_run {
        report.packs_deleted = dead.len() as u64;
        report.blobs_deleted = dead.iter().map(|pack| pack.blobs).sum();
        report.bytes_reclaimed += dead.iter().map(|pack| pack.size).sum::<u64>();
        repack::estimate(&classified.repack, report);
    } else {
        gc_sweep::ensure_epoch(db, tenant).await?;
        sweep::forget_dead_trees(db, tenant, &marker).await?;
        let mut catch_up = CatchUp::new(&marker);
        sweep::sweep(db, store, tenant, &mut marker, &mut catch_up, dead, report).await?;
        repack::repack(
            db,
            store,
            tenant,
            &mut marker,
            &mut catch_up,
            &classified.repack,
            report,
        )
        .await?;
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
    if !options.dry_run {
        let finished_before = now_millis() - duration_millis(options.orphan_min_age);
        report.tombstones_pruned = gc_tombstones::prune(db, tenant, finished_before).await?;
    }
    tracing::info!(
        tenant.id = %tenant,
        packs_deleted = report.packs_deleted,
        packs_repacked = report.packs_repacked,
        repack_bytes_reclaimed = report.repack_bytes_reclaimed,
        blobs_deleted = report.blobs_deleted,
        bytes_reclaimed = report.bytes_reclaimed,
        dry_run = options.dry_run,
        "garbage collection swept"
    );
    Ok(marker.summary())
}
