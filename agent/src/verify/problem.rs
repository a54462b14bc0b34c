//! What `verify` found wrong, each naming the object and, once mapped, the
//! files it damages.

use std::fmt;

use serde::Serialize;
use stowage_protocol::ids::{BlobId, PackId, SnapshotId};

/// One defect in the repository as this agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A directory's tree cannot be fetched, opened or decoded.
    TreeUnreadable {
        /// The snapshot it was reached from.
        snapshot: SnapshotId,
        /// The tree blob.
        tree: BlobId,
        /// The directory's path inside the snapshot.
        path: String,
        /// Why.
        error: String,
    },
    /// The server's index does not know a blob some file needs.
    BlobMissing {
        /// The blob.
        blob: BlobId,
    },
    /// The pack object is gone, or its header does not open.
    PackUnreadable {
        /// The pack.
        pack: PackId,
        /// Why.
        error: String,
    },
    /// The pack's bytes do not hash to its id: it was damaged in storage.
    PackDamaged {
        /// The pack.
        pack: PackId,
        /// What the check said.
        error: String,
    },
    /// One blob of a readable pack fails its tag, its id or its header.
    BlobDamaged {
        /// The pack holding it.
        pack: PackId,
        /// The blob.
        blob: BlobId,
        /// Why.
        error: String,
    },
}

impl Problem {
    /// The pack the problem lies in, when it is one.
    pub fn pack(&self) -> Option<&PackId> {
        match self {
            Self::PackUnreadable { pack, .. }
            | Self::PackDamaged { pack, .. }
            | Self::BlobDamaged { pack, .. } => Some(pack),
            Self::TreeUnreadable { .. } | Self::BlobMissing { .. } => None,
        }
    }

    /// The blob the problem concerns, when it is one blob.
    pub fn blob(&self) -> Option<&BlobId> {
        match self {
            Self::BlobMissing { blob } | Self::BlobDamaged { blob, .. } => Some(blob),
            Self::TreeUnreadable { tree, .. } => Some(tree),
            Self::PackUnreadable { .. } | Self::PackDamaged { .. } => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TreeUnreadable {
                snapshot,
                tree,
                path,
                error,
            } => write!(
                f,
                "snapshot {}: directory {path:?} (tree {tree}) is unreadable - {error}",
                &snapshot.to_hex()[..16]
            ),
            Self::BlobMissing { blob } => {
                write!(f, "blob {blob} is not stored on the server")
            }
            Self::PackUnreadable { pack, error } => {
                write!(f, "pack {pack} cannot be read - {error}")
            }
            Self::PackDamaged { pack, error } => {
                write!(f, "pack {pack} is damaged - {error}")
            }
            Self::BlobDamaged { pack, blob, error } => {
                write!(f, "blob {blob} in pack {pack} is damaged - {error}")
            }
        }
    }
}

/// A file that cannot be restored intact because of a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedFile {
    /// The snapshot holding it.
    pub snapshot: SnapshotId,
    /// Its path inside the snapshot.
    pub path: String,
    /// The first damaged or missing chunk.
    pub blob: BlobId,
}
