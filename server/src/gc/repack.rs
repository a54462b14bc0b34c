//! Repack: replace each partly dead pack whose live blobs fill too little
//! of it by a new pack holding only those blobs, copied sealed.
//!
//! The order is what makes it crash-safe:
//!
//! 1. Write the new pack objects ([`repack_copy`]) — each admitted like an
//!    upload: not while a deletion of that very pack, which another run
//!    that gave up on the same copy recorded, is unfinished (the mark is
//!    read first, so step 2 sees any deletion recorded later). An object
//!    store write is durable when it returns. Nothing names them yet: a crash here
//!    leaves unindexed objects, which the orphan sweep removes (or a rerun
//!    with the same live set writes the same bytes again and indexes them).
//! 2. In one sweep transaction — the same epoch bump, catch-up and locks
//!    as the sweep's ([`CatchUp`]) — re-read each old pack and its blob
//!    rows; index the new pack and move the rows of the copied blobs to it;
//!    delete the old pack's rows (its remaining, dead, blob rows with them)
//!    and record its object as a pending deletion. An old pack is left as
//!    it is when another run removed it, when one of its blobs that was not
//!    copied is now marked or leased (a backup started to rely on it), or
//!    when its new pack is indexed already or has a deletion recorded since
//!    step 1 began; a new pack nothing indexes is recorded for deletion.
//!    A copied blob that a backup leased meanwhile is live and moves.
//! 3. Only after the commit, delete the old objects.
//!
//! A blob can be in the tables of two packs (two racing uploads, or a retry
//! after a crash); only the pack its index row names holds the live copy,
//! and the other's copy counts as dead here: it is never copied.
//!
//! [`repack_copy`]: super::repack_copy

use std::collections::HashSet;

use stowage_protocol::ids::{BlobId, PackId, TenantId};

use super::catch_up::CatchUp;
use super::fault::{self, FaultPoint};
use super::mark::Marker;
use super::objects;
use super::repack_copy::{self, Copied, CopyOutcome};
use super::report::GcReport;
use crate::db::{Database, gc_sweep, now_millis};
use crate::storage::ObjectStore;

/// Old packs handled per transaction: their new packs are written first,
/// so this bounds what a crash can leave unindexed.
const PACKS_PER_TRANSACTION: usize = 16;

/// A pack to repack, as [`super::sweep::classify`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepackCandidate {
    /// The pack.
    pub id: PackId,
    /// Its object's size.
    pub size: u64,
    /// Sealed bytes of its live blobs.
    pub live_bytes: u64,
}

/// Counts what repacking `candidates` would do, for a dry run.
pub fn estimate(candidates: &[RepackCandidate], report: &mut GcReport) {
    report.packs_repacked += candidates.len() as u64;
    report.repack_packs_written += candidates.len() as u64;
    report.repack_bytes_copied += candidates.iter().map(|c| c.live_bytes).sum::<u64>();
    report.repack_bytes_reclaimed += candidates
        .iter()
        .map(|c| c.size.saturating_sub(c.live_bytes))
        .sum::<u64>();
}

/// Repacks `candidates`; see the module docs.
///
/// # Errors
///
/// Fails when a query, a read, a write or a deletion fails; what was
/// committed stays done, and the next run finishes what was left.
pub async fn repack(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    marker: &mut Marker,
    catch_up: &mut CatchUp,
    candidates: &[RepackCandidate],
    report: &mut GcReport,
) -> anyhow::Result<()> {
    for batch in candidates.chunks(PACKS_PER_TRANSACTION) {
        // Read before any new object is written: a deletion recorded for a
        // new pack after this is one that may have raced its write.
        let mark = gc_sweep::epoch(db, tenant).await?;
        let mut written = Vec::with_capacity(batch.len());
        for candidate in batch {
            match repack_copy::copy_live(
                db,
                store,
                tenant,
                marker.live(),
                candidate.id,
                candidate.size,
            )
            .await?
            {
                CopyOutcome::Written(copied) => written.push(copied),
                CopyOutcome::AllLive | CopyOutcome::ChangedMeanwhile => {
                    report.repack_packs_kept += 1;
                }
                CopyOutcome::Damaged(damaged) => {
                    tracing::warn!(tenant.id = %tenant, "{damaged}; it is left as it is");
                    report.repack_packs_damaged += 1;
                }
            }
        }
        if written.is_empty() {
            continue;
        }
        fault::reached(FaultPoint::AfterRepackWrite);
        let doomed = commit(db, tenant, marker, catch_up, &written, mark, report).await?;
        fault::reached(FaultPoint::AfterRepackRows);
        objects::delete_pack_objects(db, store, tenant, &doomed).await?;
    }
    Ok(())
}

/// Step 2 of the module docs for the packs `written`; answers the packs
/// whose objects are now to be deleted.
async fn commit(
    db: &Database,
    tenant: TenantId,
    marker: &mut Marker,
    catch_up: &mut CatchUp,
    written: &[Copied],
    mark: i64,
    report: &mut GcReport,
) -> anyhow::Result<Vec<PackId>> {
    let mut tx = catch_up.begin(db, tenant, marker, report).await?;
    let olds: Vec<PackId> = written.iter().map(|copy| copy.old).collect();
    let news: Vec<PackId> = written.iter().map(|copy| copy.new).collect();
    let present_old: HashSet<PackId> = tx.lock_packs(&olds).await?.into_iter().collect();
    let present_new: HashSet<PackId> = tx.lock_packs(&news).await?.into_iter().collect();
    let rows = tx.lock_blobs(&olds).await?;
    let leased: HashSet<BlobId> = tx
        .leased_blobs(&olds, now_millis())
        .await?
        .into_iter()
        .collect();
    let mut done = Vec::new();
    let mut abandoned = Vec::new();
    for copy in written {
        let copied: HashSet<BlobId> = copy.moved.iter().map(|blob| blob.id).collect();
        let revived = rows.iter().any(|(pack, blob)| {
            *pack == copy.old
                && !copied.contains(blob)
                && (marker.live().is_marked(blob) || leased.contains(blob))
        });
        let changed = !present_old.contains(&copy.old) || present_new.contains(&copy.new);
        if changed || revived || tx.deletion_blocks(copy.new, mark).await? {
            report.repack_packs_kept += 1;
            if !present_new.contains(&copy.new) {
                abandoned.push((copy.new, copy.new_size));
            }
            tracing::debug!(
                tenant.id = %tenant, old = %copy.old, new = %copy.new, changed, revived,
                "pack left as it is; its new copy is dropped unless indexed"
            );
            continue;
        }
        tx.index_repacked(
            copy.new,
            copy.new_size,
            copy.moved.len() as u64,
            &copy.moved,
        )
        .await?;
        tracing::debug!(tenant.id = %tenant, old = %copy.old, new = %copy.new, "pack repacked");
        done.push(copy);
    }
    let sized: Vec<(PackId, u64)> = done.iter().map(|copy| (copy.old, copy.old_size)).collect();
    report.repack_blobs_dropped += tx.delete_packs(&sized).await?;
    tx.record_deletions(&abandoned).await?;
    tx.commit().await?;
    for copy in &done {
        report.packs_repacked += 1;
        report.repack_packs_written += 1;
        report.repack_bytes_copied += copy.sealed_bytes;
        report.repack_bytes_reclaimed += copy.old_size.saturating_sub(copy.new_size);
    }
    Ok(done
        .iter()
        .map(|copy| copy.old)
        .chain(abandoned.iter().map(|(id, _)| *id))
        .collect())
}
