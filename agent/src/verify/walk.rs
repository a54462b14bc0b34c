//! Walking every directory of a set of snapshots, each tree fetched once,
//! several at a time (a walk is bound by round trips, not by bytes).

use std::collections::{HashSet, VecDeque};

use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::tree::{EntryContent, TreeEntry};
use tokio::task::JoinSet;

use super::problem::Problem;
use crate::reader::RepoReader;
use crate::restore::join;

/// Trees fetched at once.
const TREES_IN_FLIGHT: usize = 16;

/// One directory to visit: where it was reached from and its path.
struct Pending {
    snapshot: SnapshotId,
    tree: BlobId,
    path: Vec<u8>,
}

/// Visits every entry of every directory reachable from `roots`, calling
/// `visit(snapshot, directory path, entry)`; a tree shared by several
/// snapshots or directories is visited once. Unreadable trees become
/// [`Problem::TreeUnreadable`] and the walk goes on. Returns the number of
/// trees read and the problems.
///
/// Memory: the set of trees seen (about 64 bytes per tree) plus the
/// directories waiting to be read.
pub async fn walk(
    reader: &RepoReader,
    roots: &[(SnapshotId, BlobId)],
    mut visit: impl FnMut(&SnapshotId, &[u8], &TreeEntry),
) -> (u64, Vec<Problem>) {
    let mut seen: HashSet<BlobId> = HashSet::new();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    for (snapshot, root) in roots {
        if seen.insert(*root) {
            queue.push_back(Pending {
                snapshot: *snapshot,
                tree: *root,
                path: Vec::new(),
            });
        }
    }
    let mut problems = Vec::new();
    let mut trees = 0u64;
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.len() < TREES_IN_FLIGHT {
            let Some(pending) = queue.pop_front() else {
                break;
            };
            let reader = reader.clone();
            in_flight.spawn(async move {
                let entries = reader.directory(&pending.tree).await;
                (pending, entries)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (pending, entries) = joined.expect("a tree fetch never panics");
        trees += 1;
        let entries = match entries {
            Ok(entries) => entries,
            Err(error) => {
                problems.push(Problem::TreeUnreadable {
                    snapshot: pending.snapshot,
                    tree: pending.tree,
                    path: display_path(&pending.path),
                    error: error.to_string(),
                });
                continue;
            }
        };
        for entry in &entries {
            visit(&pending.snapshot, &pending.path, entry);
            if let EntryContent::Dir { subtree } = &entry.content
                && seen.insert(*subtree)
            {
                queue.push_back(Pending {
                    snapshot: pending.snapshot,
                    tree: *subtree,
                    path: join(&pending.path, entry.name.as_bytes()),
                });
            }
        }
    }
    (trees, problems)
}

/// A raw path for people: `/` for the root, invalid UTF-8 shown escaped.
pub fn display_path(path: &[u8]) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}", String::from_utf8_lossy(path))
    }
}
