//! The serializer: sorts entries, splits huge directories, and returns the blobs to store.

use std::ops::Range;

use super::encode::{encode_entry, entry_refs, write_header};
use super::entry::{TreeEntry, quote};
use super::{
    MAX_LEAF_BYTES, MAX_LEAF_ENTRIES, MIN_PART_ENTRIES, NODE_INDEX, NODE_LEAF, TREE_HEADER_LEN,
    TreeError,
};
use crate::crypto::IdKey;
use crate::ids::BlobId;

/// One tree blob ready to be sealed and packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeBlob {
    /// The blob's id (computed by the caller's id function).
    pub id: BlobId,
    /// The plaintext to seal.
    pub plaintext: Vec<u8>,
    /// The ids this blob references (chunks, subtrees, or leaf parts),
    /// sorted and deduplicated: exactly what the pack table wants.
    pub refs: Vec<BlobId>,
}

/// A serialized directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTree {
    /// The id a parent entry (or a snapshot) stores for this directory.
    pub root: BlobId,
    /// The blobs to store: leaves first, the root (an index, or the only leaf) last.
    pub blobs: Vec<TreeBlob>,
}

/// Collects a directory's entries and serializes them canonically.
///
/// The order of [`push`](Self::push) calls does not matter: [`build`](Self::build)
/// sorts by name and sorts each entry's xattrs, so the same directory always
/// gives the same bytes.
#[derive(Debug, Default, Clone)]
pub struct TreeBuilder {
    /// Entries in push order.
    entries: Vec<TreeEntry>,
}

impl TreeBuilder {
    /// An empty builder (an empty directory if built as is).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `entries` entries.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            entries: Vec::with_capacity(entries),
        }
    }

    /// Adds an entry.
    pub fn push(&mut self, entry: TreeEntry) {
        self.entries.push(entry);
    }

    /// Entries pushed so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serializes the directory with the tenant's id key ([`IdKey::tree_id`]).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_keyed(self, id_key: &IdKey) -> Result<BuiltTree, TreeError> {
        self.build(&|plaintext| id_key.tree_id(plaintext))
    }

    /// Serializes the directory; `tree_id` maps a tree plaintext to its blob id
    /// (the tenant's keyed tree hash, `crypto`'s tree id).
    ///
    /// # Errors
    ///
    /// [`TreeError::DuplicateName`] when two entries share a name, and
    /// [`TreeError::InvalidEntry`] when an entry breaks a field rule (mode type
    /// bits, nanoseconds ≥ 10⁹, repeated or empty xattr names, an empty symlink
    /// target, a length beyond its field).
    pub fn build(mut self, tree_id: &dyn Fn(&[u8]) -> BlobId) -> Result<BuiltTree, TreeError> {
        self.entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = self.entries.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(TreeError::DuplicateName(quote(pair[0].name.as_bytes())));
        }
        let mut body = Vec::new();
        let mut ends = Vec::with_capacity(self.entries.len());
        for entry in &mut self.entries {
            entry.xattrs.sort_by(|a, b| a.name.cmp(&b.name));
            encode_entry(entry, &mut body)?;
            ends.push(body.len());
        }
        let parts = split(&self.entries, &ends);
        let leaf = |part: &Range<usize>| {
            let start = if part.start == 0 {
                0
            } else {
                ends[part.start - 1]
            };
            let end = if part.end == 0 { 0 } else { ends[part.end - 1] };
            let mut plaintext = Vec::with_capacity(TREE_HEADER_LEN + end - start);
            write_header(&mut plaintext, NODE_LEAF, count_u32(part.len()));
            plaintext.extend_from_slice(&body[start..end]);
            let refs = sorted_refs(self.entries[part.clone()].iter().flat_map(entry_refs));
            TreeBlob {
                id: tree_id(&plaintext),
                plaintext,
                refs,
            }
        };
        let mut blobs: Vec<TreeBlob> = parts.iter().map(leaf).collect();
        if blobs.len() > 1 {
            let mut plaintext = Vec::with_capacity(TREE_HEADER_LEN + blobs.len() * BlobId::LEN);
            write_header(&mut plaintext, NODE_INDEX, count_u32(blobs.len()));
            for part in &blobs {
                plaintext.extend_from_slice(part.id.as_bytes());
            }
            let refs = sorted_refs(blobs.iter().map(|b| b.id));
            blobs.push(TreeBlob {
                id: tree_id(&plaintext),
                plaintext,
                refs,
            });
        }
        let root = blobs
            .last()
            .map_or_else(|| unreachable!("split yields a part"), |b| b.id);
        Ok(BuiltTree { root, blobs })
    }
}

impl Extend<TreeEntry> for TreeBuilder {
    fn extend<I: IntoIterator<Item = TreeEntry>>(&mut self, entries: I) {
        self.entries.extend(entries);
    }
}

impl FromIterator<TreeEntry> for TreeBuilder {
    fn from_iter<I: IntoIterator<Item = TreeEntry>>(entries: I) -> Self {
        Self {
            entries: entries.into_iter().collect(),
        }
    }
}

/// Counts in a leaf or index are bounded far below `u32::MAX` by the leaf limits
/// and by the size of memory an index would need.
fn count_u32(count: usize) -> u32 {
    u32::try_from(count).expect("a tree node never holds 2^32 items")
}

fn sorted_refs(ids: impl Iterator<Item = BlobId>) -> Vec<BlobId> {
    let mut refs: Vec<BlobId> = ids.collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

/// Cuts sorted entries into leaf parts (ranges of entry positions).
///
/// A directory that fits one leaf is one part. Otherwise a part ends after an
/// entry whose name's BLAKE3 hash starts with a zero byte once the part holds
/// at least [`MIN_PART_ENTRIES`], and before an entry that would take the part
/// past [`MAX_LEAF_ENTRIES`] or [`MAX_LEAF_BYTES`] (header included).
fn split(entries: &[TreeEntry], ends: &[usize]) -> Vec<Range<usize>> {
    let total_bytes = TREE_HEADER_LEN + ends.last().copied().unwrap_or(0);
    if entries.len() <= MAX_LEAF_ENTRIES && total_bytes <= MAX_LEAF_BYTES {
        return std::iter::once(0..entries.len()).collect();
    }
    let offset = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, entry) in entries.iter().enumerate() {
        let held = i - start;
        let bytes_with_entry = TREE_HEADER_LEN + ends[i] - offset(start);
        if held > 0 && (held == MAX_LEAF_ENTRIES || bytes_with_entry > MAX_LEAF_BYTES) {
            parts.push(start..i);
            start = i;
        }
        if i + 1 - start >= MIN_PART_ENTRIES
            && blake3::hash(entry.name.as_bytes()).as_bytes()[0] == 0
        {
            parts.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < entries.len() {
        parts.push(start..entries.len());
    }
    parts
}

/// Joins the decoded leaves of an index, in index order, into one entry list,
/// checking that every part is non-empty and that names keep increasing across parts.
///
/// # Errors
///
/// [`TreeError::PartsOutOfOrder`] naming the first offending part.
pub fn join_parts(parts: Vec<Vec<TreeEntry>>) -> Result<Vec<TreeEntry>, TreeError> {
    let mut joined: Vec<TreeEntry> = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for (position, part) in parts.into_iter().enumerate() {
        let in_order = match (joined.last(), part.first()) {
            (_, None) => false,
            (Some(last), Some(first)) => last.name < first.name,
            (None, Some(_)) => true,
        };
        if !in_order {
            return Err(TreeError::PartsOutOfOrder { part: position });
        }
        joined.extend(part);
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::super::{
        EntryContent, EntryName, FileChunk, HardlinkGroup, Timestamp, TreeNode, Xattr,
    };
    use super::*;

    fn test_id(bytes: &[u8]) -> BlobId {
        BlobId::from_bytes(*blake3::hash(bytes).as_bytes())
    }

    fn fifo(name: &str) -> TreeEntry {
        TreeEntry {
            name: EntryName::try_from(name).unwrap(),
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            user: b"alice".to_vec(),
            group: Vec::new(),
            mtime: Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            },
            size: 0,
            xattrs: Vec::new(),
            content: EntryContent::Fifo,
        }
    }

    /// A file of these chunks, its size the sum of their lengths.
    fn file(name: &str, chunks: Vec<FileChunk>) -> TreeEntry {
        TreeEntry {
            size: chunks.iter().map(|chunk| u64::from(chunk.len)).sum(),
            content: EntryContent::File {
                hardlink: None,
                chunks,
            },
            ..fifo(name)
        }
    }

    fn build(entries: Vec<TreeEntry>) -> Result<BuiltTree, TreeError> {
        entries.into_iter().collect::<TreeBuilder>().build(&test_id)
    }

    fn decode_dir(tree: &BuiltTree) -> Vec<TreeEntry> {
        let find = |id: &BlobId| &tree.blobs.iter().find(|b| b.id == *id).unwrap().plaintext;
        match TreeNode::decode(find(&tree.root)).unwrap() {
            TreeNode::Leaf(entries) => entries,
            TreeNode::Index(parts) => {
                let leaves = parts
                    .iter()
                    .map(|id| match TreeNode::decode(find(id)).unwrap() {
                        TreeNode::Leaf(entries) => entries,
                        TreeNode::Index(_) => panic!("index inside index"),
                    });
                join_parts(leaves.collect()).unwrap()
            }
        }
    }

    fn many(count: usize, prefix: &str) -> Vec<TreeEntry> {
        (0..count)
            .map(|i| fifo(&format!("{prefix}{i:06}")))
            .collect()
    }

    #[test]
    fn a_small_directory_is_one_sorted_leaf_that_decodes_to_its_entries() {
        // Arrange
        let chunk = FileChunk {
            id: test_id(b"chunk"),
            len: 300,
        };
        let mut symlink = fifo("link");
        symlink.content = EntryContent::Symlink {
            target: b"../x".to_vec(),
        };
        let mut dir = fifo("sub");
        dir.content = EntryContent::Dir {
            subtree: test_id(b"sub"),
        };
        let mut linked = file("b", vec![chunk, chunk]);
        linked.content = EntryContent::File {
            hardlink: Some(HardlinkGroup {
                device: 7,
                inode: 9,
            }),
            chunks: vec![chunk, chunk],
        };
        let entries = vec![
            dir.clone(),
            linked.clone(),
            symlink.clone(),
            file("a", vec![]),
        ];

        // Act
        let tree = build(entries).unwrap();

        // Assert
        assert_eq!(tree.blobs.len(), 1);
        assert_eq!(tree.root, test_id(&tree.blobs[0].plaintext));
        let names: Vec<_> = decode_dir(&tree)
            .into_iter()
            .map(|e| e.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b", "link", "sub"]);
        assert_eq!(decode_dir(&tree)[1], linked);
        let mut expected_refs = vec![chunk.id, test_id(b"sub")];
        expected_refs.sort();
        assert_eq!(tree.blobs[0].refs, expected_refs);
    }

    #[test]
    fn push_order_and_xattr_order_do_not_change_the_bytes() {
        let xattr = |n: &str| Xattr {
            name: n.as_bytes().to_vec(),
            value: b"v".to_vec(),
        };
        let mut one = fifo("x");
        one.xattrs = vec![xattr("user.b"), xattr("user.a")];
        let mut sorted = one.clone();
        sorted.xattrs.reverse();
        let first = build(vec![fifo("a"), one, fifo("z")]).unwrap();
        let second = build(vec![fifo("z"), sorted, fifo("a")]).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn an_empty_directory_is_an_empty_leaf() {
        let tree = build(Vec::new()).unwrap();
        assert_eq!(tree.blobs[0].plaintext, b"STRE\x02\x01\0\0\0\0");
        assert!(tree.blobs[0].refs.is_empty());
    }

    #[test]
    fn duplicate_names_and_duplicate_xattrs_are_rejected() {
        let err = build(vec![fifo("same"), fifo("other"), fifo("same")]).unwrap_err();
        assert_eq!(err, TreeError::DuplicateName("same".to_owned()));
        let mut entry = fifo("x");
        let xattr = Xattr {
            name: b"user.a".to_vec(),
            value: Vec::new(),
        };
        entry.xattrs = vec![xattr.clone(), xattr];
        assert!(matches!(
            build(vec![entry]),
            Err(TreeError::InvalidEntry { .. })
        ));
    }

    #[test]
    fn entries_breaking_field_rules_are_rejected_by_the_builder() {
        let mut type_bits = fifo("m");
        type_bits.mode = 0o100_644;
        let mut nanos = fifo("n");
        nanos.mtime.nanos = 1_000_000_000;
        let mut empty_target = fifo("s");
        empty_target.content = EntryContent::Symlink { target: Vec::new() };
        let mut long_user = fifo("u");
        long_user.user = vec![b'u'; 70_000];
        let chunk = |len| FileChunk {
            id: test_id(b"c"),
            len,
        };
        let empty_chunk = file("e", vec![chunk(3), chunk(0)]);
        let mut short = file("f", vec![chunk(1_048_576)]);
        short.size = 2_000_000;
        for entry in [
            type_bits,
            nanos,
            empty_target,
            long_user,
            empty_chunk,
            short,
        ] {
            let err = build(vec![entry]).unwrap_err();
            assert!(matches!(err, TreeError::InvalidEntry { .. }), "{err}");
        }
    }

    #[test]
    fn a_huge_directory_is_split_into_bounded_leaves_and_an_index() {
        // Arrange
        let entries = many(20_000, "file-");

        // Act
        let tree = build(entries.clone()).unwrap();

        // Assert
        assert!(tree.blobs.len() > 3, "{} blobs", tree.blobs.len());
        let index = &tree.blobs.last().unwrap();
        let TreeNode::Index(parts) = TreeNode::decode(&index.plaintext).unwrap() else {
            panic!("root is not an index");
        };
        assert_eq!(parts.len(), tree.blobs.len() - 1);
        for (part, blob) in parts.iter().zip(&tree.blobs) {
            assert_eq!(*part, blob.id);
            let TreeNode::Leaf(leaf) = TreeNode::decode(&blob.plaintext).unwrap() else {
                panic!("part is not a leaf");
            };
            assert!(leaf.len() <= MAX_LEAF_ENTRIES);
        }
        let mut refs = parts.clone();
        refs.sort();
        assert_eq!(index.refs, refs);
        assert_eq!(decode_dir(&tree), entries);
    }

    #[test]
    fn inserting_one_entry_into_a_huge_directory_rewrites_at_most_two_leaves() {
        let before = build(many(20_000, "f")).unwrap();
        let mut entries = many(20_000, "f");
        entries.push(fifo("f010000x"));
        let after = build(entries).unwrap();
        let new_leaves = after.blobs[..after.blobs.len() - 1]
            .iter()
            .filter(|b| !before.blobs.iter().any(|old| old.id == b.id))
            .count();
        assert!((1..=2).contains(&new_leaves), "{new_leaves} leaves changed");
        assert_ne!(before.root, after.root);
    }

    #[test]
    fn a_leaf_never_passes_the_byte_limit_unless_one_entry_alone_does() {
        // Arrange: one file entry bigger than a leaf, among small ones.
        let chunks: Vec<FileChunk> = (0u32..120_000)
            .map(|i| FileChunk {
                id: test_id(&i.to_le_bytes()),
                len: i + 1,
            })
            .collect();
        let mut entries = many(300, "a");
        entries.push(file("big", chunks));

        // Act
        let tree = build(entries.clone()).unwrap();

        // Assert
        let leaves = &tree.blobs[..tree.blobs.len() - 1];
        let oversized: Vec<_> = leaves
            .iter()
            .filter(|b| b.plaintext.len() > MAX_LEAF_BYTES)
            .collect();
        assert_eq!(oversized.len(), 1);
        let TreeNode::Leaf(alone) = TreeNode::decode(&oversized[0].plaintext).unwrap() else {
            panic!("not a leaf");
        };
        assert_eq!(alone.len(), 1);
        assert_eq!(decode_dir(&tree), entries);
    }

    #[test]
    fn joining_parts_rejects_empty_and_overlapping_parts() {
        let ok = join_parts(vec![vec![fifo("a")], vec![fifo("b")]]).unwrap();
        assert_eq!(ok.len(), 2);
        let overlap = join_parts(vec![vec![fifo("b")], vec![fifo("a")]]);
        assert_eq!(overlap, Err(TreeError::PartsOutOfOrder { part: 1 }));
        let empty = join_parts(vec![vec![fifo("a")], vec![]]);
        assert_eq!(empty, Err(TreeError::PartsOutOfOrder { part: 1 }));
    }
}
