//! Mark: every blob reachable from a tenant's roots, read from the index in
//! pages and batches, with memory bounded by the live set.
//!
//! Roots are every snapshot's root tree (and error log), and every blob
//! leased to an upload session that is open — which includes every blob of
//! every pack such a session uploaded, because indexing a pack leases its
//! blobs in the same transaction. A leased tree is a root like any other,
//! so everything below it is kept: `complete_trees` promises that a tree's
//! whole subtree is stored, and a backup that reuses a leased tree trusts
//! that promise.
//!
//! The walk keeps a stack of trees still to expand and expands up to
//! [`BATCH`] of them per query (`blob_refs` joined to `blobs` for the kinds),
//! so besides the [`LiveSet`] it holds at most a few batches of ids.
//!
//! The same join gives each blob's sealed length, so the walk also sums
//! the distinct stored blobs it reaches ([`Reached`]): the tenant's live
//! bytes for the mark, and, started from one group's snapshots only
//! ([`Marker::empty`]), what that group references (`super::usage`).

use std::collections::HashMap;

use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, SnapshotId, TenantId, UploadSessionId};

use super::live_set::{IdSet, LiveSet};
use crate::db::gc::{self as queries, SnapshotRoots, StoredBlob};
use crate::db::{Database, DbError, now_millis};

/// Ids per query, the bound of the `IN (…)` lists.
pub const BATCH: usize = 500;
/// Rows per page of a listing.
const PAGE: usize = 5_000;

/// The distinct stored blobs a walk reached, and their sealed bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// How many (a reference to a blob the tenant lacks is not counted).
    pub blobs: u64,
    /// Sum of their sealed lengths.
    pub bytes: u64,
}

impl Reached {
    fn add(&mut self, blob: StoredBlob) {
        self.blobs += 1;
        self.bytes += blob.length;
    }
}

/// Which snapshots a walk started from, as a count and an order-free
/// fingerprint of their ids: two walks from the same snapshots have equal
/// sets, so one walk's [`Reached`] can stand in for the other's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotSet {
    count: u64,
    fingerprint: u64,
}

impl SnapshotSet {
    /// Adds `snapshot` (each snapshot once).
    pub fn add(&mut self, snapshot: SnapshotId) {
        let hash = blake3::hash(snapshot.as_bytes());
        let mut word = [0u8; 8];
        word.copy_from_slice(&hash.as_bytes()[..8]);
        self.count += 1;
        self.fingerprint = self.fingerprint.wrapping_add(u64::from_le_bytes(word));
    }
}

/// What a finished mark reached and from which roots, kept after its live
/// set is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkSummary {
    /// The distinct stored blobs reached.
    pub reached: Reached,
    /// The snapshots it started from.
    pub snapshots: SnapshotSet,
    /// Whether upload leases were roots too.
    pub leases: bool,
}

/// A mark in progress or done: the live set and what it was built from.
#[derive(Debug)]
pub struct Marker {
    /// Whose blobs.
    tenant: TenantId,
    /// What is live so far.
    live: LiveSet,
    /// The stored blobs among `live`, counted as each is first marked.
    reached: Reached,
    /// Trees marked but not yet expanded.
    stack: Vec<BlobId>,
    /// The open sessions whose leases were read, with the lease expiry seen
    /// then: a session that is new or whose expiry moved has had a request
    /// since, and may have leased more.
    sessions: HashMap<UploadSessionId, i64>,
    /// When the mark started, in milliseconds since the epoch.
    started_at: i64,
    /// The snapshots whose roots were marked.
    snapshots: SnapshotSet,
}

impl Marker {
    /// Marks everything reachable from `tenant`'s roots now.
    ///
    /// # Errors
    ///
    /// Fails when a query fails.
    pub async fn run(db: &Database, tenant: TenantId) -> Result<Self, DbError> {
        let mut marker = Self::empty(tenant);
        // Sessions (and so their leases) first: a session that commits while
        // the snapshots are read turns its leases into a snapshot the page
        // scan may miss, but the sweep's check of recent snapshots finds it.
        let sessions = queries::live_sessions(db, tenant, marker.started_at).await?;
        marker.mark_leases(db, &sessions).await?;
        let mut after = None;
        loop {
            let page = queries::snapshot_roots_page(db, tenant, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            marker.mark_snapshots(db, &page).await?;
        }
        marker.expand(db).await?;
        Ok(marker)
    }

    /// Marks what `snapshots` reach besides what is marked already, so a
    /// caller can feed a long list in pages.
    ///
    /// # Errors
    ///
    /// Fails when a query fails.
    pub async fn extend(
        &mut self,
        db: &Database,
        snapshots: &[SnapshotRoots],
    ) -> Result<(), DbError> {
        self.mark_snapshots(db, snapshots).await?;
        self.expand(db).await
    }

    /// A mark of `tenant` with nothing marked, to [`Marker::extend`] from
    /// chosen snapshots only — no leases, no other snapshot — so that the
    /// live set and [`Marker::reached`] are theirs alone.
    pub fn empty(tenant: TenantId) -> Self {
        Self {
            tenant,
            live: LiveSet::new(),
            reached: Reached::default(),
            stack: Vec::new(),
            sessions: HashMap::new(),
            started_at: now_millis(),
            snapshots: SnapshotSet::default(),
        }
    }

    /// The distinct stored blobs marked so far, and their bytes.
    pub fn reached(&self) -> Reached {
        self.reached
    }

    /// What this mark reached and from which roots, for `super::usage`.
    pub fn summary(&self) -> MarkSummary {
        MarkSummary {
            reached: self.reached,
            snapshots: self.snapshots,
            leases: !self.sessions.is_empty(),
        }
    }

    /// What is live.
    pub fn live(&self) -> &LiveSet {
        &self.live
    }

    /// When the mark started (milliseconds since the epoch).
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// The snapshots among `recent` that name a root the mark has not seen.
    pub fn unseen_snapshots(&self, recent: &[SnapshotRoots]) -> Vec<SnapshotRoots> {
        recent
            .iter()
            .filter(|snapshot| snapshot.roots.iter().any(|root| !self.live.has_root(root)))
            .cloned()
            .collect()
    }

    /// The sessions among `live` that are new or have had a request since
    /// their leases were read.
    pub fn active_sessions(&self, live: &[(UploadSessionId, i64)]) -> Vec<(UploadSessionId, i64)> {
        live.iter()
            .filter(|(id, expires)| self.sessions.get(id).is_none_or(|seen| expires > seen))
            .copied()
            .collect()
    }

    /// Marks from roots that appeared since: `snapshots` and every blob
    /// leased to `sessions`.
    ///
    /// # Errors
    ///
    /// Fails when a query fails.
    pub async fn catch_up(
        &mut self,
        db: &Database,
        snapshots: &[SnapshotRoots],
        sessions: &[(UploadSessionId, i64)],
    ) -> Result<(), DbError> {
        self.mark_leases(db, sessions).await?;
        self.mark_snapshots(db, snapshots).await?;
        self.expand(db).await
    }

    async fn mark_snapshots(
        &mut self,
        db: &Database,
        snapshots: &[SnapshotRoots],
    ) -> Result<(), DbError> {
        for snapshot in snapshots {
            self.snapshots.add(snapshot.id);
        }
        let roots: Vec<BlobId> = snapshots
            .iter()
            .flat_map(|snapshot| snapshot.roots.iter().copied())
            .collect();
        self.mark_roots(db, &roots).await
    }

    async fn mark_leases(
        &mut self,
        db: &Database,
        sessions: &[(UploadSessionId, i64)],
    ) -> Result<(), DbError> {
        for &(session, expires) in sessions {
            let mut after = None;
            loop {
                let page = queries::leased_page(db, self.tenant, session, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = Some(*last);
                self.mark_roots(db, &page).await?;
            }
            self.sessions.insert(session, expires);
        }
        Ok(())
    }

    /// Marks `roots`, pushing the trees among them that were not walked.
    async fn mark_roots(&mut self, db: &Database, roots: &[BlobId]) -> Result<(), DbError> {
        let fresh: Vec<BlobId> = roots
            .iter()
            .filter(|id| self.live.add_root(id) && !self.live.has_tree(id))
            .copied()
            .collect();
        for batch in fresh.chunks(BATCH) {
            // A root the tenant does not store is marked all the same: it
            // costs nothing and its upload may be on the way.
            let mut new: IdSet<BlobId> = IdSet::default();
            for id in batch {
                if self.live.mark(id) {
                    new.insert(*id);
                }
            }
            for (id, stored) in queries::kinds(db, self.tenant, batch).await? {
                if new.remove(&id) {
                    self.reached.add(stored);
                }
                if stored.kind == BlobKind::Tree && self.live.mark_tree(&id) {
                    self.stack.push(id);
                }
            }
            if self.stack.len() >= BATCH * 4 {
                self.expand(db).await?;
            }
        }
        Ok(())
    }

    /// Walks the references of every tree on the stack, depth first in
    /// batches, until the stack is empty.
    async fn expand(&mut self, db: &Database) -> Result<(), DbError> {
        while !self.stack.is_empty() {
            let take = self.stack.len().min(BATCH);
            let batch = self.stack.split_off(self.stack.len() - take);
            for (id, stored) in queries::refs_with_kinds(db, self.tenant, &batch).await? {
                if self.live.mark(&id)
                    && let Some(stored) = stored
                {
                    self.reached.add(stored);
                }
                let tree = stored.is_some_and(|stored| stored.kind == BlobKind::Tree);
                if tree && self.live.mark_tree(&id) {
                    self.stack.push(id);
                }
            }
        }
        Ok(())
    }
}
