//! Which files a capped restore test restores: a deterministic sample.
//!
//! Every file of the snapshot gets a sort key, the keyed BLAKE3 of its
//! path under a key derived from the job's seed; files are taken in key
//! order, each one whose size still fits in what is left of the cap, the
//! others skipped (so one big file does not end the sample early). The
//! same seed and the same snapshot therefore always pick the same files,
//! and another seed picks another spread of the tree.
//!
//! A file larger than the cap is never sampled. When every file of the
//! snapshot is larger than the cap, nothing can be sampled, and the test
//! fails saying so rather than reporting that it checked nothing. When the
//! whole snapshot fits in the cap, it is all restored (symlinks and the
//! other non-file entries too) and the test is not a sample.
//!
//! A sampled file comes with the directories above it, so its path and
//! the directories' metadata are restored as in a full restore.

use stowage_protocol::tree::{EntryContent, FileChunk};

use crate::restore::walk::{Listing, Node};

/// Derivation context of the sample key. Never modify: a new value would
/// make every seed pick different files than it did before.
pub const SAMPLE_KEY_CONTEXT: &str = "stowage 2026-11 restore-test sample v1";

/// A file the check compares with the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Path relative to the restore target, components joined by `/`.
    pub path: Vec<u8>,
    /// The size the snapshot records.
    pub size: u64,
    /// The chunks the snapshot records, in order.
    pub chunks: Vec<FileChunk>,
}

/// What to restore and what to check afterwards.
#[derive(Debug)]
pub struct Sample {
    /// The entries to restore: the sampled files and the directories above
    /// them, or the whole walk.
    pub listing: Listing,
    /// Every file to check after the restore.
    pub files: Vec<Expected>,
    /// Whether a cap left files out.
    pub sampled: bool,
}

/// Why nothing could be sampled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no file of the snapshot fits in the restore test's cap of {cap} bytes (the smallest is \
     {smallest} bytes); raise the cap or test without one"
)]
pub struct NothingFits {
    /// The cap.
    pub cap: u64,
    /// The smallest file's size.
    pub smallest: u64,
}

/// Picks what a restore test restores from the snapshot's full `listing`:
/// everything without a cap (or when everything fits), else the sample
/// `seed` picks under `max_bytes` (see the module docs).
///
/// # Errors
///
/// [`NothingFits`]: there are files, but each is larger than the cap.
pub fn choose(listing: Listing, max_bytes: Option<u64>, seed: u64) -> Result<Sample, NothingFits> {
    let files: Vec<usize> = (0..listing.nodes.len())
        .filter(|&index| is_file(&listing.nodes[index]))
        .collect();
    let total: u64 = files.iter().map(|&i| listing.nodes[i].entry.size).sum();
    let cap = match max_bytes {
        Some(cap) if total > cap => cap,
        _ => {
            let files = files.iter().map(|&i| expected(&listing.nodes[i])).collect();
            return Ok(Sample {
                listing,
                files,
                sampled: false,
            });
        }
    };
    let chosen = pick(&listing.nodes, &files, cap, seed);
    if chosen.is_empty() {
        let smallest = files.iter().map(|&i| listing.nodes[i].entry.size).min();
        return Err(NothingFits {
            cap,
            smallest: smallest.unwrap_or(0),
        });
    }
    Ok(keep_with_ancestors(listing, &chosen))
}

/// The files taken, in key order, while their sizes fit in `cap`.
fn pick(nodes: &[Node], files: &[usize], cap: u64, seed: u64) -> Vec<usize> {
    let key = blake3::derive_key(SAMPLE_KEY_CONTEXT, &seed.to_le_bytes());
    let mut ordered: Vec<([u8; 32], usize)> = files
        .iter()
        .map(|&index| {
            (
                *blake3::keyed_hash(&key, &nodes[index].path).as_bytes(),
                index,
            )
        })
        .collect();
    ordered.sort_unstable();
    let mut room = cap;
    let mut chosen = Vec::new();
    for (_, index) in ordered {
        let size = nodes[index].entry.size;
        if size <= room {
            room -= size;
            chosen.push(index);
        }
    }
    chosen
}

/// The chosen files and every directory above them, in walk order, with
/// the parent indexes renumbered.
fn keep_with_ancestors(listing: Listing, chosen: &[usize]) -> Sample {
    let nodes = listing.nodes;
    let mut keep = vec![false; nodes.len()];
    for &index in chosen {
        let mut at = Some(index);
        while let Some(i) = at {
            if keep[i] {
                break;
            }
            keep[i] = true;
            at = nodes[i].parent;
        }
    }
    let mut new_index = vec![usize::MAX; nodes.len()];
    let mut kept = Vec::new();
    let mut files = Vec::new();
    for (old, mut node) in nodes.into_iter().enumerate() {
        if !keep[old] {
            continue;
        }
        node.parent = node.parent.map(|p| new_index[p]);
        new_index[old] = kept.len();
        if is_file(&node) {
            files.push(expected(&node));
        }
        kept.push(node);
    }
    Sample {
        listing: Listing {
            nodes: kept,
            errors: listing.errors,
        },
        files,
        sampled: true,
    }
}

fn is_file(node: &Node) -> bool {
    matches!(node.entry.content, EntryContent::File { .. })
}

fn expected(node: &Node) -> Expected {
    let chunks = match &node.entry.content {
        EntryContent::File { chunks, .. } => chunks.clone(),
        _ => Vec::new(),
    };
    Expected {
        path: node.path.clone(),
        size: node.entry.size,
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use stowage_protocol::ids::BlobId;
    use stowage_protocol::tree::{EntryName, Timestamp, TreeEntry};

    use super::*;

    fn entry(name: &str, size: u64, content: EntryContent) -> TreeEntry {
        TreeEntry {
            name: EntryName::try_from(name).unwrap(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: Vec::new(),
            group: Vec::new(),
            mtime: Timestamp {
                seconds: 0,
                nanos: 0,
            },
            size,
            xattrs: Vec::new(),
            content,
        }
    }

    /// Directories d0..d4, each holding files f0..f9 of 100 × (i + 1) bytes.
    fn listing() -> Listing {
        let mut nodes = Vec::new();
        for d in 0..5 {
            let dir = nodes.len();
            let subtree = BlobId::from_bytes([0; 32]);
            nodes.push(Node {
                path: format!("d{d}").into_bytes(),
                parent: None,
                entry: entry(&format!("d{d}"), 0, EntryContent::Dir { subtree }),
            });
            for f in 0..10u64 {
                let content = EntryContent::File {
                    hardlink: None,
                    chunks: Vec::new(),
                };
                nodes.push(Node {
                    path: format!("d{d}/f{f}").into_bytes(),
                    parent: Some(dir),
                    entry: entry(&format!("f{f}"), 100 * (f + 1), content),
                });
            }
        }
        Listing {
            nodes,
            errors: Vec::new(),
        }
    }

    fn paths(sample: &Sample) -> Vec<String> {
        let list = sample
            .files
            .iter()
            .map(|f| String::from_utf8_lossy(&f.path));
        list.map(std::borrow::Cow::into_owned).collect()
    }

    #[test]
    fn the_same_seed_picks_the_same_files_and_another_seed_others() {
        // Act
        let first = choose(listing(), Some(2000), 7).unwrap();
        let again = choose(listing(), Some(2000), 7).unwrap();
        let other = choose(listing(), Some(2000), 8).unwrap();
        // Assert
        assert!(first.sampled);
        assert_eq!(paths(&first), paths(&again));
        assert_ne!(paths(&first), paths(&other));
    }

    #[test]
    fn sampled_sizes_stay_under_the_cap_and_a_file_larger_than_it_is_never_taken() {
        for seed in 0..20 {
            // Act
            let sample = choose(listing(), Some(950), seed).unwrap();
            // Assert
            let total: u64 = sample.files.iter().map(|f| f.size).sum();
            assert!(total <= 950, "seed {seed}: {total}");
            assert!(sample.files.iter().all(|f| f.size <= 950));
            assert!(!sample.files.is_empty());
        }
    }

    #[test]
    fn a_sampled_file_comes_with_its_directory_and_parents_point_at_kept_nodes() {
        // Act
        let sample = choose(listing(), Some(300), 3).unwrap();
        // Assert
        let nodes = &sample.listing.nodes;
        for (index, node) in nodes.iter().enumerate() {
            if let Some(parent) = node.parent {
                assert!(parent < index);
                let (dir, _) = crate::restore::split(&node.path);
                assert_eq!(nodes[parent].path, dir);
            }
        }
        let files = nodes.iter().filter(|n| is_file(n)).count();
        assert_eq!(files, sample.files.len());
        let dirs: std::collections::HashSet<&[u8]> = sample
            .files
            .iter()
            .map(|f| crate::restore::split(&f.path).0)
            .collect();
        assert_eq!(
            nodes.len(),
            files + dirs.len(),
            "only the files' own directories"
        );
    }

    #[test]
    fn without_a_cap_or_when_everything_fits_the_whole_snapshot_is_restored() {
        for cap in [None, Some(27_500), Some(u64::MAX)] {
            // Act
            let sample = choose(listing(), cap, 1).unwrap();
            // Assert
            assert!(!sample.sampled, "{cap:?}");
            assert_eq!(sample.listing.nodes.len(), 55);
            assert_eq!(sample.files.len(), 50);
        }
    }

    #[test]
    fn a_cap_below_every_file_fails_naming_the_smallest() {
        // Act
        let error = choose(listing(), Some(99), 1).unwrap_err();
        // Assert
        assert_eq!(
            error,
            NothingFits {
                cap: 99,
                smallest: 100
            }
        );
        assert!(error.to_string().contains("smallest is 100 bytes"));
    }
}
