//! Reading directories: a tree root is a leaf, or an index whose leaves are
//! fetched and joined. Many directories are read in one batch (one locate,
//! blobs grouped by pack), so walking a snapshot level by level costs a few
//! round trips per level rather than several per directory.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use stowage_protocol::api::BlobLocation;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::tree::{TreeEntry, TreeNode, join_parts};

use super::{PACKS_IN_FLIGHT, ReadError, RepoReader};

/// One directory's outcome.
pub type DirectoryResult = (BlobId, Result<Vec<TreeEntry>, ReadError>);

impl RepoReader {
    /// The entries of the directory whose tree root is `tree`, opened,
    /// id-checked and decoded (an index's leaves fetched and joined).
    ///
    /// # Errors
    ///
    /// Any [`ReadError`]: the tree is unknown, its pack is missing or
    /// damaged, it fails its tag or id check, or it does not decode.
    pub async fn directory(&self, tree: &BlobId) -> Result<Vec<TreeEntry>, ReadError> {
        let mut results = self.directories(std::slice::from_ref(tree)).await?;
        results.pop().map_or_else(
            || unreachable!("one result per tree"),
            |(_, entries)| entries,
        )
    }

    /// The entries of each directory in `trees` (duplicates answered once),
    /// read in one batch. Each directory's result stands alone.
    ///
    /// # Errors
    ///
    /// Only [`ReadError::Locate`]: the server could not say where the trees are.
    pub async fn directories(&self, trees: &[BlobId]) -> Result<Vec<DirectoryResult>, ReadError> {
        let mut wanted: Vec<BlobId> = trees.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut nodes = self.tree_nodes(&wanted).await?;
        let parts: Vec<BlobId> = nodes
            .values()
            .filter_map(|node| match node {
                Ok(TreeNode::Index(parts)) => Some(parts.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut leaves = self.tree_nodes(&parts).await?;
        Ok(wanted
            .into_iter()
            .map(|id| {
                let node = nodes.remove(&id).expect("every wanted tree has a result");
                (id, node.and_then(|node| join(id, node, &mut leaves)))
            })
            .collect())
    }

    /// Locates, reads and decodes tree blobs; one result per distinct id.
    async fn tree_nodes(
        &self,
        ids: &[BlobId],
    ) -> Result<HashMap<BlobId, Result<TreeNode, ReadError>>, ReadError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let located = self.locate(&ids).await?;
        for blob in located.unknown {
            out.insert(
                blob,
                Err(ReadError::BlobUnknown {
                    blob,
                    kind: BlobKind::Tree,
                }),
            );
        }
        let mut by_pack: HashMap<PackId, Vec<BlobLocation>> = HashMap::new();
        for location in located.found {
            if location.kind == BlobKind::Tree {
                by_pack.entry(location.pack_id).or_default().push(location);
            } else {
                out.insert(
                    location.id,
                    Err(ReadError::BadLocation {
                        pack: location.pack_id,
                        blob: location.id,
                        problem: "a directory names it as a tree, but it is a data blob".into(),
                    }),
                );
            }
        }
        let results: Vec<_> = stream::iter(by_pack)
            .map(|(pack, blobs)| async move {
                match self.read_blobs(&pack, &blobs).await {
                    Ok(results) => results,
                    Err(error) => blobs.iter().map(|b| (b.id, Err(error.clone()))).collect(),
                }
            })
            .buffer_unordered(PACKS_IN_FLIGHT)
            .collect()
            .await;
        for (id, plain) in results.into_iter().flatten() {
            let node = plain.and_then(|plain| {
                TreeNode::decode(&plain).map_err(|source| ReadError::Tree {
                    tree: id,
                    source: Arc::new(source),
                })
            });
            out.insert(id, node);
        }
        for id in ids {
            // The server answered neither found nor unknown: treat it as unknown.
            out.entry(id).or_insert(Err(ReadError::BlobUnknown {
                blob: id,
                kind: BlobKind::Tree,
            }));
        }
        Ok(out)
    }
}

/// A directory's entries from its root node and the decoded leaves.
fn join(
    id: BlobId,
    node: TreeNode,
    leaves: &mut HashMap<BlobId, Result<TreeNode, ReadError>>,
) -> Result<Vec<TreeEntry>, ReadError> {
    let parts = match node {
        TreeNode::Leaf(entries) => return Ok(entries),
        TreeNode::Index(parts) => parts,
    };
    let mut decoded = Vec::with_capacity(parts.len());
    for part in parts {
        // A part listed twice is a damaged index; it is caught by join_parts
        // (names must increase), so a clone for the second use is fine.
        let leaf = match leaves.get(&part) {
            Some(Ok(node)) => Ok(node.clone()),
            Some(Err(error)) => Err(error.clone()),
            None => unreachable!("every part was read"),
        }?;
        match leaf {
            TreeNode::Leaf(entries) => decoded.push(entries),
            TreeNode::Index(_) => return Err(ReadError::NestedIndex { index: id, part }),
        }
    }
    join_parts(decoded).map_err(|source| ReadError::Tree {
        tree: id,
        source: Arc::new(source),
    })
}
