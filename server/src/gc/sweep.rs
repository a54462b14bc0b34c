//! Sweep: find the packs whose every blob is dead, then remove them — the
//! index rows in a transaction that re-checks against backups running
//! meanwhile, the objects only after it committed.
//!
//! Before the first removal, every tree recorded in `complete_trees` that
//! the mark did not reach loses that record ([`forget_dead_trees`]): such a
//! tree may survive in a pack that also holds live blobs while blobs below
//! it go, and its record would then promise a commit a subtree that is no
//! longer whole.

use std::time::{Duration, Instant};

use stowage_protocol::ids::{BlobId, PackId, TenantId};

use super::catch_up::CatchUp;
use super::fault::{self, FaultPoint};
use super::mark::{BATCH, Marker};
use super::objects;
use super::repack::RepackCandidate;
use super::report::GcReport;
use crate::db::gc::{self as queries, PackContents};
use crate::db::{Database, complete_trees, now_millis};
use crate::storage::ObjectStore;

/// Packs removed per sweep transaction. Each takes some fifty blob rows
/// and their references with it, and on SQLite the transaction holds the
/// database's only write lock: at 64 packs that was 0.3–1.6 s, and a
/// backup whose writes met the sweep ran 1.3× slower
/// (`docs/benchmarks/gc.md`). Eight keep each hold to tens of milliseconds.
const PACKS_PER_TRANSACTION: usize = 8;
/// After each transaction the sweep rests this many times as long as the
/// transaction took, so that it uses the database a quarter of the time at
/// most while backups run beside it. On SQLite the transaction holds the
/// database's only write lock, and writers waiting for it — a backup's
/// leases, pack index rows, its commit — get it before the next sweep
/// transaction does; on PostgreSQL deleting the rows takes the database
/// server's CPU and disk, which the backups' ingest shares. Back to back,
/// the sweep made a backup beside it up to 1.5× slower on PostgreSQL
/// (`docs/benchmarks/gc.md`).
const REST_PER_HELD: u32 = 3;
/// The longest rest after one sweep transaction.
const MAX_REST_BETWEEN_TRANSACTIONS: Duration = Duration::from_millis(300);
/// Rows per page when listing packs and complete trees.
const PAGE: usize = BATCH;

/// A pack whose every indexed blob is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadPack {
    /// The pack.
    pub id: PackId,
    /// Its object's size.
    pub size: u64,
    /// How many index rows name it.
    pub blobs: u64,
}

/// The tenant's packs that garbage collection acts on.
#[derive(Debug, Default)]
pub struct Classified {
    /// Packs whose every indexed blob is dead.
    pub dead: Vec<DeadPack>,
    /// Packs with live blobs whose live fraction is below the threshold.
    pub repack: Vec<RepackCandidate>,
}

/// Lists the tenant's packs page by page and sorts them: wholly dead ones,
/// and packs to repack — those that hold something dead (a dead blob, or a
/// copy of a blob indexed from another pack) and whose live blobs fill less
/// than `repack_below_percent` of the object. Partly dead ones are counted
/// in `report`.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn classify(
    db: &Database,
    tenant: TenantId,
    marker: &Marker,
    repack_below_percent: u8,
    report: &mut GcReport,
) -> anyhow::Result<Classified> {
    let live = marker.live();
    let mut classified = Classified::default();
    let mut after = None;
    loop {
        let page = queries::packs_page(db, tenant, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for PackContents {
            id,
            size,
            blob_count,
            blobs,
        } in page
        {
            let dead_blobs: Vec<&(BlobId, u64)> = blobs
                .iter()
                .filter(|(blob, _)| !live.is_marked(blob))
                .collect();
            if dead_blobs.len() == blobs.len() {
                classified.dead.push(DeadPack {
                    id,
                    size,
                    blobs: blobs.len() as u64,
                });
                continue;
            }
            if !dead_blobs.is_empty() {
                report.partly_dead_packs += 1;
                report.partly_dead_blobs += dead_blobs.len() as u64;
                report.bytes_reclaimable_by_repack +=
                    dead_blobs.iter().map(|(_, length)| length).sum::<u64>();
            }
            let live_bytes = blobs
                .iter()
                .filter(|(blob, _)| live.is_marked(blob))
                .map(|(_, length)| length)
                .sum::<u64>();
            let holds_dead = !dead_blobs.is_empty() || blob_count > blobs.len() as u64;
            if holds_dead
                && u128::from(live_bytes) * 100
                    < u128::from(size) * u128::from(repack_below_percent)
            {
                classified.repack.push(RepackCandidate {
                    id,
                    size,
                    live_bytes,
                });
            }
        }
    }
    Ok(classified)
}

/// Removes the `complete_trees` records of every tree the mark did not
/// walk; see the module docs. Answers how many went.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn forget_dead_trees(
    db: &Database,
    tenant: TenantId,
    marker: &Marker,
) -> anyhow::Result<u64> {
    let mut forgotten = 0;
    let mut after = None;
    loop {
        let page = queries::complete_trees_page(db, tenant, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(*last);
        let dead: Vec<BlobId> = page
            .into_iter()
            .filter(|tree| !marker.live().has_tree(tree))
            .collect();
        if dead.is_empty() {
            continue;
        }
        let mut tx = db.begin().await?;
        complete_trees::forget(&mut tx, tenant, &dead).await?;
        tx.commit().await?;
        forgotten += dead.len() as u64;
    }
    Ok(forgotten)
}

/// Removes `dead` packs, [`PACKS_PER_TRANSACTION`] at a time; see the
/// `super` docs for the checks each transaction makes.
///
/// # Errors
///
/// Fails when a query or an object deletion fails; what was committed
/// before stays done, and the next run finishes what was left.
pub async fn sweep(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    marker: &mut Marker,
    catch_up: &mut CatchUp,
    dead: &[DeadPack],
    report: &mut GcReport,
) -> anyhow::Result<()> {
    for batch in dead.chunks(PACKS_PER_TRANSACTION) {
        let ids: Vec<PackId> = batch.iter().map(|pack| pack.id).collect();
        let (doomed, held) = {
            let mut tx = catch_up.begin(db, tenant, marker, report).await?;
            let locked = Instant::now();
            let now = now_millis();
            let present = tx.lock_packs(&ids).await?;
            let blobs = tx.lock_blobs(&ids).await?;
            let leased = tx.leased_packs(&ids, now).await?;
            let revived: Vec<PackId> = blobs
                .iter()
                .filter(|(_, blob)| marker.live().is_marked(blob))
                .map(|(pack, _)| *pack)
                .collect();
            let doomed: Vec<DeadPack> = batch
                .iter()
                .filter(|pack| present.contains(&pack.id))
                .filter(|pack| !leased.contains(&pack.id) && !revived.contains(&pack.id))
                .copied()
                .collect();
            report.packs_kept_by_backups += (present.len() - doomed.len()) as u64;
            let sized: Vec<(PackId, u64)> =
                doomed.iter().map(|pack| (pack.id, pack.size)).collect();
            report.blobs_deleted += tx.delete_packs(&sized).await?;
            tx.commit().await?;
            (doomed, locked.elapsed())
        };
        tracing::debug!(
            tenant.id = %tenant,
            packs = doomed.len(),
            held_ms = held.as_millis(),
            "sweep transaction committed"
        );
        tokio::time::sleep((held * REST_PER_HELD).min(MAX_REST_BETWEEN_TRANSACTIONS)).await;
        fault::reached(FaultPoint::AfterRows);
        report.packs_deleted += doomed.len() as u64;
        report.bytes_reclaimed += doomed.iter().map(|pack| pack.size).sum::<u64>();
        let ids: Vec<PackId> = doomed.iter().map(|pack| pack.id).collect();
        objects::delete_pack_objects(db, store, tenant, &ids).await?;
    }
    Ok(())
}
