//! Storage accounting, done by garbage collection because it already walks
//! what the tenant's snapshots reference: per (plan, agent) group, the
//! distinct stored blobs its snapshots reach, next to the tenant's live
//! total and what the run found dead. `stowage-server usage` and `GET
//! /api/v1/usage` show the last run's figures beside the bytes stored now.
//!
//! Each group is walked on its own with a fresh [`Marker`] over its
//! snapshots only, after the sweep has dropped the tenant's mark: at most
//! one live set is in memory at a time, and the largest is never bigger than
//! the tenant's. A blob that several groups reach counts in each of them;
//! the tenant's live total counts it once, which is why both are kept. The
//! cost — one more walk per group, so about one more mark when groups share
//! little — is in the run's report (`usage_seconds`). A tenant with a single
//! group (one plan on one agent, the common small case) is not walked
//! again when the mark started from exactly that group's snapshots (same
//! count and fingerprint of ids) and from no upload lease: what the mark
//! reached is then exactly what the group references.
//!
//! A dry run walks nothing here and records nothing: it promises to write
//! nothing, and the figures it could give are the next real run's anyway.

use std::time::Instant;

use chrono::Utc;
use stowage_protocol::ids::TenantId;

use super::GcReport;
use super::mark::{MarkSummary, Marker, Reached, SnapshotSet};
use crate::db::usage::{self, GroupUsage, RecordedUsage, SnapshotGroup};
use crate::db::{Database, DbError};

/// Snapshots read per page of a group.
const PAGE: usize = 5_000;

/// Walks every group of `tenant`'s snapshots and records them with the
/// run's figures from `report` and the bytes its sweep and repack deleted
/// (`swept_bytes`), replacing the last run's. `mark` is what the run's
/// mark reached: when the tenant has one group and the mark started from
/// exactly its snapshots and no lease, the group's figures are the mark's
/// and it is not walked again.
///
/// # Errors
///
/// Fails when a query fails; the previous figures stay then.
pub async fn account(
    db: &Database,
    tenant: TenantId,
    swept_bytes: u64,
    mark: MarkSummary,
    report: &mut GcReport,
) -> Result<(), DbError> {
    let started = Instant::now();
    let all = usage::snapshot_groups(db, tenant).await?;
    let only_group = all.len() == 1;
    let mut groups = Vec::new();
    for (group, snapshots) in all {
        let reached =
            if only_group && !mark.leases && roots_of(db, tenant, group).await? == mark.snapshots {
                mark.reached
            } else {
                report.usage_groups_walked += 1;
                walk(db, tenant, group, report).await?
            };
        groups.push(GroupUsage {
            group,
            snapshots,
            referenced_blobs: reached.blobs,
            referenced_bytes: reached.bytes,
        });
    }
    let elapsed = started.elapsed();
    report.usage_groups = groups.len() as u64;
    report.usage_seconds = elapsed.as_secs_f64();
    let recorded = RecordedUsage {
        computed_at: Utc::now(),
        live_blobs: report.live_stored_blobs,
        live_bytes: report.live_bytes,
        dead_packs: report.dead_packs_at_mark,
        dead_pack_bytes: report.dead_pack_bytes_at_mark,
        partly_dead_bytes: report.bytes_reclaimable_by_repack,
        reclaimed_bytes: swept_bytes,
        walk_millis: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        groups,
    };
    usage::record(db, tenant, &recorded).await?;
    tracing::info!(
        tenant.id = %tenant,
        groups = report.usage_groups,
        usage_seconds = report.usage_seconds,
        "storage usage recorded"
    );
    Ok(())
}

/// The snapshots of `group`, read page by page.
async fn roots_of(
    db: &Database,
    tenant: TenantId,
    group: SnapshotGroup,
) -> Result<SnapshotSet, DbError> {
    let mut set = SnapshotSet::default();
    let mut after = None;
    loop {
        let page = usage::group_roots_page(db, tenant, group, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for snapshot in &page {
            set.add(snapshot.id);
        }
    }
    Ok(set)
}

/// What `group`'s snapshots reach, walked with a fresh [`Marker`].
async fn walk(
    db: &Database,
    tenant: TenantId,
    group: SnapshotGroup,
    report: &mut GcReport,
) -> Result<Reached, DbError> {
    let mut marker = Marker::empty(tenant);
    let mut after = None;
    loop {
        let page = usage::group_roots_page(db, tenant, group, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        marker.extend(db, &page).await?;
    }
    report.usage_set_bytes = report.usage_set_bytes.max(marker.live().heap_bytes());
    Ok(marker.reached())
}
