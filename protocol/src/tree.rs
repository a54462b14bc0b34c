//! Directory trees: the serialized form of a directory's entries.
//!
//! A directory is stored as one tree blob (a *leaf*) or, when it is huge, as
//! several leaves plus an *index* that lists them in order. Both are sealed
//! like data chunks (blob kind 2). The serializer ([`TreeBuilder`]) is the only
//! way to produce tree bytes, and it sorts entries and splits leaves at
//! content-defined points, so identical directories always give identical
//! bytes (and dedup), and inserting one file into a directory of a million
//! entries rewrites one leaf and the index rather than the whole directory.
//!
//! Plaintext layout (version 2, little-endian):
//!
//! ```text
//! 0   4  magic "STRE"
//! 4   1  version = 2
//! 5   1  node: 1 = leaf (entries), 2 = index (parts)
//! 6   4  count (u32)
//! 10  …  leaf: `count` entries; index: `count` BlobIds of leaf parts, in order
//! ```
//!
//! The entry layout is documented on [`TreeEntry`]. The decoder
//! ([`TreeNode::decode`]) checks every length against the bytes remaining
//! before allocating, and rejects anything the serializer would not have
//! written: unsorted or duplicate names, unsorted xattrs, nanoseconds ≥ 10⁹,
//! unknown kinds, type bits in the mode, empty chunks, chunk lengths that do
//! not add up to the file's size, trailing bytes.
//!
//! # Versions
//!
//! Version 2 stores each file chunk's plaintext length next to its id
//! ([`FileChunk`]), so a restore knows every chunk's offset in its file
//! before opening any and can write a large file out of order. Version 1
//! stored ids only; it was written by pre-release builds alone, so this build
//! refuses it ([`TreeError::PreReleaseVersion1`]) rather than carry a second
//! decoder: such a repository needs a new backup.

mod build;
mod decode;
mod encode;
mod entry;

pub use build::{BuiltTree, TreeBlob, TreeBuilder, join_parts};
pub use decode::TreeNode;
pub use entry::{
    EntryContent, EntryKind, EntryName, FileChunk, HardlinkGroup, MAX_NAME_LEN, Timestamp,
    TreeEntry, Xattr,
};

/// Magic at the start of every tree plaintext. Never modify: every version of the format starts with it.
pub const TREE_MAGIC: [u8; 4] = *b"STRE";
/// The tree layout version this crate writes, and the only one it reads
/// (version 1, without chunk lengths, came from pre-release builds only).
/// Never modify the meaning of version 2.
pub const TREE_VERSION: u8 = 2;
/// Node byte of a leaf (a run of entries). Never modify.
pub const NODE_LEAF: u8 = 1;
/// Node byte of an index (the ordered ids of a directory's leaves). Never modify.
pub const NODE_INDEX: u8 = 2;
/// Length of the node header: magic, version, node, count.
pub const TREE_HEADER_LEN: usize = 10;
/// A leaf holds at most this many entries; a bigger directory is split.
pub const MAX_LEAF_ENTRIES: usize = 4096;
/// A leaf is split before it would grow past this many bytes (a single
/// entry bigger than this, e.g. a file of millions of chunks, gets a leaf of its own).
pub const MAX_LEAF_BYTES: usize = 4 * 1024 * 1024;
/// A content-defined split point only counts once a part holds this many entries.
pub const MIN_PART_ENTRIES: usize = 64;

/// A tree could not be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// An entry name is empty, ".", "..", too long, or contains '/' or NUL.
    #[error("invalid entry name {name:?}: {reason}")]
    InvalidName {
        /// The name (lossily decoded, truncated to 80 characters).
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The bytes ended inside a field.
    #[error("tree is truncated while reading {what}: need {needed} bytes, {remaining} remain")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The plaintext does not start with "STRE".
    #[error("not a tree: magic is {found:02x?}, expected \"STRE\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// The version byte is not one this crate reads.
    #[error(
        "tree version {0} is not supported (this build reads version {current})",
        current = TREE_VERSION
    )]
    UnsupportedVersion(u8),
    /// The tree is version 1, which only pre-release builds wrote.
    #[error(
        "tree version 1 (written by pre-release builds, without chunk lengths) is not read by \
         this build; make a new backup to replace the snapshots that use it"
    )]
    PreReleaseVersion1,
    /// The node byte is neither leaf nor index.
    #[error("unknown tree node type {0} (expected 1 = leaf or 2 = index)")]
    UnknownNode(u8),
    /// A count cannot fit in the bytes that remain, or exceeds a limit.
    #[error("tree claims {count} {what}, but at most {max} fit")]
    CountTooLarge {
        /// What is being counted.
        what: &'static str,
        /// The claimed count.
        count: u64,
        /// The most the input (or the format) allows.
        max: u64,
    },
    /// An index node lists fewer than two parts (a single leaf is never indexed).
    #[error("tree index lists {0} parts; an index needs at least two")]
    IndexTooSmall(u32),
    /// An entry's kind byte is unknown.
    #[error("entry {name:?} has unknown kind {kind}")]
    UnknownKind {
        /// The entry's name.
        name: String,
        /// The kind byte.
        kind: u8,
    },
    /// Names are not strictly increasing.
    #[error("entry {name:?} follows {previous:?}: entries must be sorted by name")]
    NotSorted {
        /// The earlier name.
        previous: String,
        /// The name that should have come first.
        name: String,
    },
    /// Two entries have the same name.
    #[error("entry name {0:?} appears twice in one directory")]
    DuplicateName(String),
    /// A field of an entry breaks a rule of the format.
    #[error("entry {name:?}: {problem}")]
    InvalidEntry {
        /// The entry's name.
        name: String,
        /// What is wrong, as a sentence fragment.
        problem: String,
    },
    /// Bytes follow the last field.
    #[error("tree has {0} unexpected bytes after its last field")]
    TrailingBytes(usize),
    /// Leaf parts joined through an index are empty or out of order.
    #[error("tree index part {part} is empty or out of order with the part before it")]
    PartsOutOfOrder {
        /// Position of the offending part.
        part: usize,
    },
}

impl From<TreeError> for crate::error::Error {
    fn from(err: TreeError) -> Self {
        use crate::error::ErrorKind;
        let kind = match err {
            TreeError::UnsupportedVersion(_) | TreeError::PreReleaseVersion1 => {
                ErrorKind::Unsupported
            }
            TreeError::InvalidName { .. }
            | TreeError::DuplicateName(_)
            | TreeError::InvalidEntry { .. } => ErrorKind::Invalid,
            _ => ErrorKind::Corrupt,
        };
        Self::new(kind, err)
    }
}

impl From<crate::wire::Truncated> for TreeError {
    fn from(t: crate::wire::Truncated) -> Self {
        Self::Truncated {
            what: t.what,
            needed: t.needed,
            remaining: t.remaining,
        }
    }
}
