//! The commit's reachability check: does every blob a snapshot reaches exist?
//!
//! The walk goes level by level from the root (and the error log) through
//! the tree references recorded at pack ingest, with a visited set, one
//! query per level for the blobs' kinds, one for which trees are already
//! known complete and one for the references of the rest. It stops at trees
//! in [`crate::db::complete_trees`] — an earlier commit checked everything
//! below them — so a commit walks only what is new since the snapshots
//! before it, and reports the trees it walked so the commit can record them
//! in turn.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;
use stowage_protocol::api::MAX_REPORTED_MISSING;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, TenantId};

use crate::db::{Database, DbError, complete_trees, packs};

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// Up to [`MAX_REPORTED_MISSING`] reachable ids the tenant does not hold.
    pub missing: Vec<BlobId>,
    /// How many reachable ids are missing in all.
    pub missing_total: usize,
    /// The trees whose references were read: reachable, stored and not yet
    /// known complete. When nothing is missing they are all complete now.
    pub walked_trees: Vec<BlobId>,
    /// The kind of each start that is stored.
    pub start_kinds: HashMap<BlobId, BlobKind>,
}

/// Walks from `starts` through tree references (see the module docs), on
/// a connection of its own.
///
/// A missing tree's references are unknown, so the walk cannot see below
/// it; the agent learns of those on its next commit.
///
/// # Errors
///
/// Fails when no connection can be had or a query fails.
pub async fn walk(db: &Database, tenant: TenantId, starts: &[BlobId]) -> Result<Walk, DbError> {
    walk_in(&mut *db.acquire().await?, tenant, starts).await
}

/// [`walk`] on `conn`: a connection, or a transaction whose locks keep
/// what the walk sees from changing until it ends.
///
/// # Errors
///
/// Fails when a query fails.
pub async fn walk_in(
    conn: &mut AnyConnection,
    tenant: TenantId,
    starts: &[BlobId],
) -> Result<Walk, DbError> {
    let mut found = Walk::default();
    let mut visited: HashSet<BlobId> = HashSet::new();
    let mut frontier: Vec<BlobId> = starts
        .iter()
        .copied()
        .filter(|id| visited.insert(*id))
        .collect();
    let mut first_level = true;
    while !frontier.is_empty() {
        let kinds: HashMap<BlobId, BlobKind> = packs::locate_in(conn, tenant, &frontier)
            .await?
            .into_iter()
            .map(|location| (location.id, location.kind))
            .collect();
        if first_level {
            found.start_kinds.clone_from(&kinds);
            first_level = false;
        }
        let mut trees = Vec::new();
        for id in &frontier {
            match kinds.get(id) {
                None => {
                    found.missing_total += 1;
                    if found.missing.len() < MAX_REPORTED_MISSING {
                        found.missing.push(*id);
                    }
                }
                Some(BlobKind::Tree) => trees.push(*id),
                Some(BlobKind::Data) => {}
            }
        }
        let complete: HashSet<BlobId> = complete_trees::known_in(conn, tenant, &trees)
            .await?
            .into_iter()
            .collect();
        trees.retain(|tree| !complete.contains(tree));
        frontier = packs::refs_of_in(conn, tenant, &trees)
            .await?
            .into_iter()
            .filter(|child| visited.insert(*child))
            .collect();
        // Id order, so the missing ids reported are the same on every engine.
        frontier.sort_unstable();
        found.walked_trees.extend(trees);
    }
    Ok(found)
}
