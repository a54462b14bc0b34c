//! What a garbage collection run did (or, dry, would do), for the command
//! line: a few human lines, or JSON with the same numbers.

use std::fmt;

use serde::Serialize;

/// The outcome of one run of [`super::collect`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcReport {
    /// Nothing was changed; the reclaim numbers say what a real run would do.
    pub dry_run: bool,
    /// Blobs found live (distinct 16-byte prefixes).
    pub live_blobs: u64,
    /// Stored blobs among them, and their sealed bytes (at the mark).
    pub live_stored_blobs: u64,
    /// Sealed bytes of those: the tenant's deduplicated live total.
    pub live_bytes: u64,
    /// Packs whose every blob was dead at the mark, and their bytes: what
    /// the sweep set out to delete (running backups may keep some).
    pub dead_packs_at_mark: u64,
    /// Object bytes of those packs.
    pub dead_pack_bytes_at_mark: u64,
    /// Packs whose every blob is dead, removed (or removable).
    pub packs_deleted: u64,
    /// Blob index rows removed with them.
    pub blobs_deleted: u64,
    /// Bytes of pack objects removed with them, including objects left by
    /// an earlier run that stopped between its rows and its objects.
    pub bytes_reclaimed: u64,
    /// Dead-looking packs kept because a live session leased one of their
    /// blobs, or because a root that appeared during the run reached them.
    pub packs_kept_by_backups: u64,
    /// Packs holding both live and dead blobs: left for repacking.
    pub partly_dead_packs: u64,
    /// Dead blobs in those packs.
    pub partly_dead_blobs: u64,
    /// Sealed bytes of those dead blobs: what repacking would reclaim.
    pub bytes_reclaimable_by_repack: u64,
    /// Partly dead packs replaced by a new pack of their live blobs.
    pub packs_repacked: u64,
    /// New packs written and indexed by the repack.
    pub repack_packs_written: u64,
    /// Sealed bytes copied into them.
    pub repack_bytes_copied: u64,
    /// Old pack sizes minus new pack sizes: what the repack freed.
    pub repack_bytes_reclaimed: u64,
    /// Dead blob index rows removed with the old packs.
    pub repack_blobs_dropped: u64,
    /// Packs left unrepacked because a backup or another run changed them
    /// after they were chosen (a new pack already written is deleted).
    pub repack_packs_kept: u64,
    /// Packs left unrepacked because their object does not hash to their id
    /// or disagrees with the index (see the log; a scrub's business).
    pub repack_packs_damaged: u64,
    /// Deletion records dropped because they were finished long ago.
    pub tombstones_pruned: u64,
    /// Pack objects with no index row, deleted because they have been
    /// orphans for longer than the orphan age.
    pub orphans_deleted: u64,
    /// Bytes of those.
    pub orphan_bytes_deleted: u64,
    /// Orphan objects not yet old enough (an upload may be in flight).
    pub orphans_waiting: u64,
    /// Times the mark was extended from roots that appeared during the run.
    pub catch_ups: u64,
    /// Heap taken by the live set, in bytes.
    pub live_set_bytes: u64,
    /// Lease rows of upload sessions that expired uncommitted, released.
    pub expired_leases_released: u64,
    /// Upload sessions that ended more than a week ago, removed.
    pub ended_sessions_removed: u64,
    /// How long the mark took, in seconds.
    pub mark_seconds: f64,
    /// Plan/agent groups whose referenced bytes were recorded (none in a
    /// dry run).
    pub usage_groups: u64,
    /// Those of them walked on their own; a tenant's only group, when the
    /// mark started from exactly its snapshots, takes the mark's figures.
    pub usage_groups_walked: u64,
    /// How long walking them took, in seconds.
    pub usage_seconds: f64,
    /// Heap of the largest group's live set, in bytes.
    pub usage_set_bytes: u64,
    /// How long the whole run took, in seconds.
    pub total_seconds: f64,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would reclaim"
        } else {
            "reclaimed"
        };
        writeln!(
            f,
            "{verb} {} blobs in {} packs: {} bytes",
            self.blobs_deleted, self.packs_deleted, self.bytes_reclaimed
        )?;
        if self.dry_run {
            writeln!(
                f,
                "found {} orphan pack objects (a real run deletes those unindexed for longer \
                 than the orphan age)",
                self.orphans_waiting
            )?;
        } else {
            writeln!(
                f,
                "deleted {} orphan pack objects: {} bytes ({} younger than the orphan age kept)",
                self.orphans_deleted, self.orphan_bytes_deleted, self.orphans_waiting
            )?;
        }
        writeln!(
            f,
            "{} partly dead packs hold {} dead blobs: {} bytes reclaimable by repack",
            self.partly_dead_packs, self.partly_dead_blobs, self.bytes_reclaimable_by_repack
        )?;
        writeln!(
            f,
            "{verb} {} bytes by repacking {} packs into {} new ones ({} bytes copied)",
            self.repack_bytes_reclaimed,
            self.packs_repacked,
            self.repack_packs_written,
            self.repack_bytes_copied
        )?;
        if self.repack_packs_kept + self.repack_packs_damaged > 0 {
            writeln!(
                f,
                "{} packs not repacked: {} changed during the collection, {} damaged",
                self.repack_packs_kept + self.repack_packs_damaged,
                self.repack_packs_kept,
                self.repack_packs_damaged
            )?;
        }
        if self.packs_kept_by_backups > 0 {
            writeln!(
                f,
                "{} dead-looking packs kept for backups running during the collection",
                self.packs_kept_by_backups
            )?;
        }
        if self.expired_leases_released > 0 || self.ended_sessions_removed > 0 {
            writeln!(
                f,
                "released {} leases of expired upload sessions; removed {} sessions that ended \
                 over a week ago",
                self.expired_leases_released, self.ended_sessions_removed
            )?;
        }
        if !self.dry_run {
            writeln!(
                f,
                "usage of {} plan/agent groups recorded ({} walked) in {:.1} s",
                self.usage_groups, self.usage_groups_walked, self.usage_seconds
            )?;
        }
        writeln!(
            f,
            "{} live blobs ({} bytes) marked in {:.1} s ({} bytes of live set); {:.1} s in all",
            self.live_blobs,
            self.live_bytes,
            self.mark_seconds,
            self.live_set_bytes,
            self.total_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_says_what_it_would_reclaim() {
        // Arrange
        let report = GcReport {
            dry_run: true,
            blobs_deleted: 7,
            packs_deleted: 2,
            bytes_reclaimed: 4096,
            ..GcReport::default()
        };

        // Act
        let text = report.to_string();

        // Assert
        assert!(
            text.starts_with("would reclaim 7 blobs in 2 packs: 4096 bytes\n"),
            "{text}"
        );
        assert!(text.contains("bytes reclaimable by repack"), "{text}");
        assert!(
            text.contains("would reclaim 0 bytes by repacking 0 packs into 0 new ones"),
            "{text}"
        );
    }

    #[test]
    fn a_real_run_says_what_it_reclaimed() {
        let report = GcReport::default();

        assert!(
            report
                .to_string()
                .starts_with("reclaimed 0 blobs in 0 packs")
        );
    }
}
