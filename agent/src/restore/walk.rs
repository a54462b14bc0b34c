//! Walking a snapshot's trees into a flat listing, as `restore` and `ls` need it.
//!
//! The walk goes level by level: all directories of one depth are read in
//! one batch ([`RepoReader::directories`]: one locate, blobs grouped by
//! pack), so a snapshot of a million directories costs a few requests per
//! level, not per directory. The result lists every entry once, parents
//! before children, in name order (depth first), with its path relative to
//! where the walk started. It holds every entry (names, metadata and chunk
//! ids) in memory: about 150 bytes plus 32 per chunk for each entry, so
//! memory grows with the number of files restored, never with their size.

use std::collections::HashMap;

use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{EntryContent, TreeEntry};

use crate::reader::{ReadError, RepoReader};

/// One entry of the walk.
#[derive(Debug, Clone)]
pub struct Node {
    /// Path relative to the start, components joined by `/`.
    pub path: Vec<u8>,
    /// Index of the parent directory's node, `None` at the top level.
    pub parent: Option<usize>,
    /// The entry as the snapshot stores it.
    pub entry: TreeEntry,
}

/// Everything the walk found, and the directories it could not read.
#[derive(Debug, Default)]
pub struct Listing {
    /// Entries, parents before children, depth first in name order.
    pub nodes: Vec<Node>,
    /// Directories whose tree could not be read (path, "" for the start), with why.
    pub errors: Vec<(Vec<u8>, ReadError)>,
}

/// Which paths (relative to the start) a walk keeps: all, or those inside
/// or above one of the included paths.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    includes: Vec<Vec<u8>>,
}

impl Filter {
    /// A filter keeping `includes` (components joined by `/`; leading,
    /// trailing and repeated slashes ignored), or everything when empty.
    pub fn new<'a>(includes: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self {
            includes: includes.into_iter().map(normalize).collect(),
        }
    }

    /// Whether `path` is kept: it is inside an included path, is one, or
    /// is a directory on the way to one.
    pub fn admits(&self, path: &[u8]) -> bool {
        self.includes.is_empty()
            || self
                .includes
                .iter()
                .any(|include| include.is_empty() || within(path, include) || within(include, path))
    }
}

/// `path` equals `base` or lies below it.
fn within(path: &[u8], base: &[u8]) -> bool {
    path.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
}

/// Joins the non-empty components of `path` with single slashes.
pub fn normalize(path: &[u8]) -> Vec<u8> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(&b'/')
}

/// Walks the directory `root` and everything below it that `filter` keeps.
///
/// # Errors
///
/// Only [`ReadError::Locate`]: the server could not say where trees are.
/// A directory that cannot be read is listed in [`Listing::errors`] and
/// the rest of the walk goes on.
pub async fn walk(
    reader: &RepoReader,
    root: BlobId,
    filter: &Filter,
) -> Result<Listing, ReadError> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut children: Vec<Vec<usize>> = Vec::new();
    let mut top: Vec<usize> = Vec::new();
    let mut errors = Vec::new();
    let mut level: Vec<(Option<usize>, BlobId)> = vec![(None, root)];
    while !level.is_empty() {
        let ids: Vec<BlobId> = level.iter().map(|(_, id)| *id).collect();
        let read: HashMap<BlobId, Result<Vec<TreeEntry>, ReadError>> =
            reader.directories(&ids).await?.into_iter().collect();
        let mut next = Vec::new();
        for (parent, id) in level {
            let parent_path = parent
                .map_or(&[][..], |p| nodes[p].path.as_slice())
                .to_vec();
            let entries = match &read[&id] {
                Ok(entries) => entries,
                Err(error) => {
                    errors.push((parent_path, error.clone()));
                    continue;
                }
            };
            for entry in entries {
                let mut path = parent_path.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(entry.name.as_bytes());
                if !filter.admits(&path) {
                    continue;
                }
                let index = nodes.len();
                if let EntryContent::Dir { subtree } = entry.content {
                    next.push((Some(index), subtree));
                }
                nodes.push(Node {
                    path,
                    parent,
                    entry: entry.clone(),
                });
                children.push(Vec::new());
                match parent {
                    Some(p) => children[p].push(index),
                    None => top.push(index),
                }
            }
        }
        level = next;
    }
    Ok(Listing {
        nodes: depth_first(nodes, &children, &top),
        errors,
    })
}

/// Reorders breadth-first nodes depth first (children were pushed in name
/// order), fixing the parent indexes.
fn depth_first(nodes: Vec<Node>, children: &[Vec<usize>], top: &[usize]) -> Vec<Node> {
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let mut new_index = vec![usize::MAX; slots.len()];
    let mut out = Vec::with_capacity(slots.len());
    let mut stack: Vec<usize> = top.iter().rev().copied().collect();
    while let Some(old) = stack.pop() {
        let mut node = slots[old].take().expect("each node is visited once");
        node.parent = node.parent.map(|p| new_index[p]);
        new_index[old] = out.len();
        out.push(node);
        stack.extend(children[old].iter().rev());
    }
    out
}

/// Where a walk starts: the tree of a directory, or a single entry when
/// the path inside the snapshot names something else.
#[derive(Debug, Clone)]
pub enum Start {
    /// A directory's tree (the snapshot root, or a directory inside it).
    Tree(BlobId),
    /// One non-directory entry.
    Entry(TreeEntry),
}

/// Follows `path` (components joined by `/`) down from the tree `root`.
///
/// # Errors
///
/// A tree on the way cannot be read, a component does not exist, or a
/// component before the last is not a directory.
pub async fn resolve(reader: &RepoReader, root: BlobId, path: &[u8]) -> anyhow::Result<Start> {
    let path = normalize(path);
    let mut current = Start::Tree(root);
    if path.is_empty() {
        return Ok(current);
    }
    let mut seen: Vec<u8> = Vec::new();
    for component in path.split(|b| *b == b'/') {
        let tree = match &current {
            Start::Tree(tree) => *tree,
            Start::Entry(_) => anyhow::bail!(
                "{:?} in the snapshot is not a directory",
                String::from_utf8_lossy(&seen)
            ),
        };
        if !seen.is_empty() {
            seen.push(b'/');
        }
        seen.extend_from_slice(component);
        let entries = reader.directory(&tree).await?;
        let entry = entries
            .into_iter()
            .find(|e| e.name.as_bytes() == component)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "there is no {:?} in the snapshot",
                    String::from_utf8_lossy(&seen)
                )
            })?;
        current = match entry.content {
            EntryContent::Dir { subtree } => Start::Tree(subtree),
            _ => Start::Entry(entry),
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_include_keeps_itself_its_contents_and_the_directories_above_it() {
        let filter = Filter::new([&b"/etc/ssh/"[..], b"home//alice"]);
        for kept in [
            &b"etc"[..],
            b"etc/ssh",
            b"etc/ssh/sshd_config",
            b"home",
            b"home/alice/x",
        ] {
            assert!(filter.admits(kept), "{:?}", String::from_utf8_lossy(kept));
        }
        for dropped in [&b"etc/passwd"[..], b"etc/sshd", b"home/bob", b"var"] {
            assert!(
                !filter.admits(dropped),
                "{:?}",
                String::from_utf8_lossy(dropped)
            );
        }
        assert!(Filter::default().admits(b"anything"));
    }

    #[test]
    fn paths_are_normalized_to_single_slashes() {
        assert_eq!(normalize(b"//a///b/"), b"a/b");
        assert_eq!(normalize(b"/"), b"");
    }
}
