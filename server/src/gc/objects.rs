//! The object half of garbage collection: deleting pack objects whose index
//! rows are gone, and objects that never had any.
//!
//! A sweep deletes a pack's index rows first and records the pack in
//! `gc_pending_deletes` in the same transaction; only then is the object
//! deleted, and the record after it. So the index never names a missing
//! object, and a run that dies in between leaves a record that the next run
//! finishes from ([`finish_pending`]) before it marks.
//!
//! Objects with no index row at all come from an upload that died between
//! writing its object and indexing it. The store's listing finds them
//! ([`sweep_orphans`]); each is recorded the first time a run sees it and
//! deleted by a run that finds it still unindexed after the orphan age, so
//! an upload in flight (object written, index not yet committed) is never
//! taken. Its deletion is recorded in `gc_pending_deletes` before the
//! object goes, like a sweep's, so that a retried upload of the same pack
//! that raced it is refused ([`crate::db::gc_tombstones`]).

use std::collections::HashSet;
use std::time::Duration;

use stowage_protocol::ids::{PackId, TenantId};

use super::fault::{self, FaultPoint};
use super::report::GcReport;
use crate::db::{Database, duration_millis, gc_objects, gc_sweep, now_millis};
use crate::ingest::pack_key;
use crate::storage::ObjectStore;

/// Pending records handled per round.
const PENDING_PAGE: usize = 500;

/// Deletes the objects of `packs`, whose index rows a committed sweep
/// transaction removed, then their pending records. A pack indexed again
/// since (a retried upload of the same bytes) keeps its object.
///
/// # Errors
///
/// Fails when a query or a deletion fails; the records of the packs not
/// yet done stay for the next run.
pub async fn delete_pack_objects(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    packs: &[PackId],
) -> anyhow::Result<()> {
    let indexed: HashSet<PackId> = gc_objects::indexed_packs(db, tenant, packs)
        .await?
        .into_iter()
        .collect();
    for pack in packs.iter().filter(|pack| !indexed.contains(pack)) {
        let key = pack_key(tenant, *pack);
        store.delete(&key).await.map_err(|error| {
            anyhow::anyhow!(
                "unable to delete the object of dead pack {} - {error}",
                pack.to_hex()
            )
        })?;
        tracing::debug!(tenant.id = %tenant, pack.id = %pack, "dead pack object deleted");
        fault::reached(FaultPoint::AfterObject);
    }
    gc_objects::finish_pending(db, tenant, packs).await?;
    Ok(())
}

/// Finishes the object deletions an earlier run recorded but did not do;
/// counts them in `report` (a dry run only counts).
///
/// # Errors
///
/// Fails when a query or a deletion fails.
pub async fn finish_pending(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    dry_run: bool,
    report: &mut GcReport,
) -> anyhow::Result<()> {
    loop {
        let pending = gc_objects::pending_deletes(db, tenant, PENDING_PAGE).await?;
        report.bytes_reclaimed += pending.iter().map(|done| done.size).sum::<u64>();
        if dry_run || pending.is_empty() {
            return Ok(());
        }
        let packs: Vec<PackId> = pending.iter().map(|done| done.pack).collect();
        delete_pack_objects(db, store, tenant, &packs).await?;
        if pending.len() < PENDING_PAGE {
            return Ok(());
        }
    }
}

/// Deletes pack objects of `tenant` that have had no index row for at
/// least `min_age` (see the module docs); a dry run only counts them.
///
/// The store's listing of the tenant's packs is held in memory (the trait
/// has no paged listing): about a hundred bytes per pack object, far less
/// than the live set of their blobs.
///
/// # Errors
///
/// Fails when the listing, a query or a deletion fails.
pub async fn sweep_orphans(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    min_age: Duration,
    dry_run: bool,
    report: &mut GcReport,
) -> anyhow::Result<()> {
    let prefix = format!("tenants/{tenant}/packs/");
    let listed = store.list(&prefix).await.map_err(|error| {
        anyhow::anyhow!("unable to list the pack objects of tenant {tenant} - {error}")
    })?;
    let objects: Vec<(PackId, u64)> = listed
        .iter()
        .filter_map(|meta| {
            let name = meta.key.segments().last()?;
            let id = name.parse::<PackId>().ok()?;
            // Only keys this server writes: anything else is not ours to delete.
            (pack_key(tenant, id) == meta.key).then_some((id, meta.size))
        })
        .collect();
    let ids: Vec<PackId> = objects.iter().map(|(id, _)| *id).collect();
    let indexed: HashSet<PackId> = gc_objects::indexed_packs(db, tenant, &ids)
        .await?
        .into_iter()
        .collect();
    let orphans: Vec<(PackId, u64)> = objects
        .into_iter()
        .filter(|(id, _)| !indexed.contains(id))
        .collect();
    if dry_run {
        report.orphans_waiting += orphans.len() as u64;
        return Ok(());
    }
    let orphan_ids: Vec<PackId> = orphans.iter().map(|(id, _)| *id).collect();
    let first_seen: std::collections::HashMap<PackId, i64> =
        gc_objects::sight_orphans(db, tenant, &orphan_ids)
            .await?
            .into_iter()
            .collect();
    let old_enough = now_millis() - duration_millis(min_age);
    let due: HashSet<PackId> = orphans
        .iter()
        .filter(|(id, _)| first_seen.get(id).is_some_and(|seen| *seen <= old_enough))
        .map(|(id, _)| *id)
        .collect();
    let due_sized: Vec<(PackId, u64)> = orphans
        .iter()
        .filter(|(id, _)| due.contains(id))
        .copied()
        .collect();
    let recorded = record_orphan_deletions(db, tenant, &due_sized).await?;
    let mut deleted = Vec::new();
    for (id, size) in orphans {
        if recorded.contains(&id) {
            store.delete(&pack_key(tenant, id)).await.map_err(|error| {
                anyhow::anyhow!(
                    "unable to delete orphan pack object {} - {error}",
                    id.to_hex()
                )
            })?;
            tracing::debug!(tenant.id = %tenant, pack.id = %id, "orphan pack object deleted");
            report.orphans_deleted += 1;
            report.orphan_bytes_deleted += size;
            deleted.push(id);
        } else {
            report.orphans_waiting += 1;
        }
    }
    gc_objects::finish_pending(db, tenant, &deleted).await?;
    gc_objects::forget_orphans(db, tenant, &deleted).await?;
    Ok(())
}

/// Records the deletion of the orphan objects `due` (id and size) that are
/// still unindexed, in a sweep transaction that checks that under its
/// locks, and answers which were recorded. Recording before deleting is
/// what lets an upload of the same pack id that raced this deletion be
/// refused at its index (see [`crate::db::gc_tombstones`]); an upload that
/// indexed first keeps its object.
async fn record_orphan_deletions(
    db: &Database,
    tenant: TenantId,
    due: &[(PackId, u64)],
) -> anyhow::Result<HashSet<PackId>> {
    if due.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<PackId> = due.iter().map(|(id, _)| *id).collect();
    let mut tx = gc_sweep::begin(db, tenant).await?;
    let indexed: HashSet<PackId> = tx.lock_packs(&ids).await?.into_iter().collect();
    let unindexed: Vec<(PackId, u64)> = due
        .iter()
        .filter(|(id, _)| !indexed.contains(id))
        .copied()
        .collect();
    tx.record_deletions(&unindexed).await?;
    tx.commit().await?;
    Ok(unindexed.into_iter().map(|(id, _)| id).collect())
}
