//! The mark's visited set: which blobs are live, in as little memory as a
//! set of millions of ids allows.
//!
//! A blob is recorded by the first 16 bytes of its id ([`LiveSet::mark`]):
//! a `u128` in a hash set, 17 bytes per bucket with its control byte. A
//! table doubles as it grows and keeps one bucket in eight free, so that is
//! 20–40 bytes per live blob, about half of what full 32-byte ids would
//! take; `scripts/bench-gc` measured 37 bytes per live blob for 980,892
//! live blobs, and 88 MiB peak RSS for the whole `gc` process.
//!
//! Two different ids that share 16 bytes look alike to
//! [`LiveSet::is_marked`], and that can only err one way: a garbage blob
//! sharing a prefix with a live one is kept, never the reverse, because the
//! sweep deletes only blobs that are *not* marked.
//!
//! Which trees had their references walked must be exact, though: if a
//! tree were taken for walked because another id shares its prefix, its
//! children would never be marked and would be collected while live. So
//! trees are also kept by full id ([`LiveSet::mark_tree`]); they are a few
//! percent of a repository's blobs. The blobs that roots name (snapshot
//! roots, leased blobs) are kept by full id too, so the sweep can tell a
//! root it has not seen from one it has.
//!
//! Ids are keyed BLAKE3 hashes, uniformly distributed, so the set hashes
//! them by taking their first eight bytes instead of running SipHash.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use stowage_protocol::ids::BlobId;

/// A hasher for ids that are already uniformly random: it folds the bytes
/// it is given into a `u64` without mixing them further.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }

    fn write_u128(&mut self, value: u128) {
        // The low half of the prefix; truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let low = value as u64;
        self.0 = self.0.rotate_left(17) ^ low;
    }
}

/// A hash set keyed by [`IdHasher`].
pub type IdSet<T> = HashSet<T, BuildHasherDefault<IdHasher>>;

/// The blobs the mark found live; see the module docs.
#[derive(Debug, Default)]
pub struct LiveSet {
    /// First 16 bytes of every marked blob.
    prefixes: IdSet<u128>,
    /// Every tree whose references were (or are about to be) walked.
    trees: IdSet<BlobId>,
    /// Every blob a root named: snapshot roots and error logs, leases.
    roots: IdSet<BlobId>,
}

impl LiveSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `id` live; answers whether its prefix was new.
    pub fn mark(&mut self, id: &BlobId) -> bool {
        self.prefixes.insert(prefix(id))
    }

    /// Marks tree `id` live and walked; answers whether it was new, i.e.
    /// whether the caller must walk its references.
    pub fn mark_tree(&mut self, id: &BlobId) -> bool {
        self.mark(id);
        self.trees.insert(*id)
    }

    /// Records that a root names `id` (it is marked separately).
    pub fn add_root(&mut self, id: &BlobId) -> bool {
        self.roots.insert(*id)
    }

    /// Whether a root already named `id`.
    pub fn has_root(&self, id: &BlobId) -> bool {
        self.roots.contains(id)
    }

    /// Whether tree `id` was walked.
    pub fn has_tree(&self, id: &BlobId) -> bool {
        self.trees.contains(id)
    }

    /// Whether `id` (or another id with its first 16 bytes) is marked.
    pub fn is_marked(&self, id: &BlobId) -> bool {
        self.prefixes.contains(&prefix(id))
    }

    /// How many distinct prefixes are marked: the live blobs, give or take
    /// a collision.
    pub fn len(&self) -> u64 {
        self.prefixes.len() as u64
    }

    /// Whether nothing is marked.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The heap the sets' tables take, in bytes: slots and control bytes
    /// of every bucket (a table keeps one bucket in eight free, so it has
    /// about 8/7 of its capacity in buckets), not the allocator's overhead.
    pub fn heap_bytes(&self) -> u64 {
        let table = |capacity: usize, slot: usize| (capacity * 8 / 7 * (slot + 1)) as u64;
        table(self.prefixes.capacity(), 16)
            + table(self.trees.capacity(), 32)
            + table(self.roots.capacity(), 32)
    }
}

/// The first 16 bytes of `id`.
fn prefix(id: &BlobId) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&id.as_bytes()[..16]);
    u128::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8, last: u8) -> BlobId {
        let mut bytes = [first; 32];
        bytes[31] = last;
        BlobId::from_bytes(bytes)
    }

    #[test]
    fn a_marked_blob_is_marked_and_an_unmarked_one_is_not() {
        // Arrange
        let mut live = LiveSet::new();

        // Act
        let first = live.mark(&id(1, 1));

        // Assert
        assert!(first);
        assert!(live.is_marked(&id(1, 1)));
        assert!(!live.is_marked(&id(2, 1)));
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn an_id_sharing_the_first_16_bytes_looks_marked_so_it_is_kept() {
        // Arrange
        let mut live = LiveSet::new();
        live.mark(&id(3, 1));

        // Act
        let lookalike = live.is_marked(&id(3, 2));

        // Assert: the collision keeps garbage; it can never drop a live blob.
        assert!(lookalike);
    }

    #[test]
    fn a_tree_sharing_a_prefix_with_a_marked_blob_is_still_walked() {
        // Arrange
        let mut live = LiveSet::new();
        live.mark(&id(4, 1));

        // Act
        let walk = live.mark_tree(&id(4, 2));

        // Assert
        assert!(walk, "a prefix collision must not skip a tree's children");
        assert!(!live.mark_tree(&id(4, 2)));
        assert!(live.has_tree(&id(4, 2)));
    }

    #[test]
    fn roots_are_remembered_by_full_id() {
        let mut live = LiveSet::new();

        live.add_root(&id(5, 1));

        assert!(live.has_root(&id(5, 1)));
        assert!(!live.has_root(&id(5, 2)));
    }
}
