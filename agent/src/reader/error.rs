//! Why reading a tree or a blob back failed, always naming the pack and/or
//! the blob, so a restore or a verify can tell the operator exactly what is
//! damaged and where.

use std::ops::Range;
use std::sync::Arc;

use stowage_protocol::blob::{BlobError, BlobKind};
use stowage_protocol::crypto::CryptoError;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::PackError;
use stowage_protocol::tree::TreeError;

use crate::api::CallError;

/// Reading from the repository failed. Cheap to clone (server errors are
/// shared), so one failed pack can be reported against every blob in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The server could not say where blobs are.
    #[error("unable to locate {count} blobs on the server - {source}")]
    Locate {
        /// How many ids were asked for.
        count: usize,
        /// The failed call.
        #[source]
        source: Arc<CallError>,
    },
    /// The server does not hold this blob (never stored, or lost from its index).
    #[error("{kind} blob {blob} is not stored on the server")]
    BlobUnknown {
        /// The blob.
        blob: BlobId,
        /// Data chunk or tree, as the caller expected it.
        kind: BlobKind,
    },
    /// The server's index places the blob in a pack, but the pack is gone (404).
    #[error("pack {pack} is missing on the server")]
    PackMissing {
        /// The pack.
        pack: PackId,
    },
    /// A ranged read of a pack failed for another reason.
    #[error("unable to read bytes {}..{} of pack {pack} - {source}", range.start, range.end)]
    PackFetch {
        /// The pack.
        pack: PackId,
        /// The byte range asked for.
        range: Range<u64>,
        /// The failed call.
        #[source]
        source: Arc<CallError>,
    },
    /// The pack's header is damaged.
    #[error("pack {pack} has a damaged header - {source}")]
    PackHeader {
        /// The pack.
        pack: PackId,
        /// What is wrong with it.
        #[source]
        source: Arc<PackError>,
    },
    /// The pack's data key does not open with this tenant's recovery secret.
    #[error("the data key of pack {pack} does not open - {source}")]
    DataKey {
        /// The pack.
        pack: PackId,
        /// Why it did not open.
        #[source]
        source: Arc<CryptoError>,
    },
    /// The server placed a blob somewhere it cannot be (wrong kind, past the
    /// pack's blob area) or a range came back too short for it.
    #[error("blob {blob} in pack {pack}: {problem}")]
    BadLocation {
        /// The pack.
        pack: PackId,
        /// The blob.
        blob: BlobId,
        /// What is wrong.
        problem: String,
    },
    /// The blob failed to open: a failed tag, a bad header, a decompression
    /// failure, or a plaintext that does not hash to its id.
    #[error("blob {blob} in pack {pack} is damaged - {source}")]
    Blob {
        /// The pack.
        pack: PackId,
        /// The blob.
        blob: BlobId,
        /// The failed check.
        #[source]
        source: Arc<BlobError>,
    },
    /// The blob opened, but its plaintext is not a valid tree.
    #[error("tree {tree} does not decode - {source}")]
    Tree {
        /// The tree blob (a leaf, or the index it belongs to).
        tree: BlobId,
        /// What is wrong.
        #[source]
        source: Arc<TreeError>,
    },
    /// A tree index lists another index as a part (indexes are never nested).
    #[error("tree index {index} lists part {part}, which is itself an index")]
    NestedIndex {
        /// The index.
        index: BlobId,
        /// The part that is an index.
        part: BlobId,
    },
}

impl ReadError {
    /// The pack this error is about, if it names one.
    pub fn pack(&self) -> Option<&PackId> {
        match self {
            Self::PackMissing { pack }
            | Self::PackFetch { pack, .. }
            | Self::PackHeader { pack, .. }
            | Self::DataKey { pack, .. }
            | Self::BadLocation { pack, .. }
            | Self::Blob { pack, .. } => Some(pack),
            Self::Locate { .. }
            | Self::BlobUnknown { .. }
            | Self::Tree { .. }
            | Self::NestedIndex { .. } => None,
        }
    }

    /// Whether the failure says something about the stored data (damage or
    /// loss) rather than about reaching the server.
    pub fn is_corruption(&self) -> bool {
        !matches!(self, Self::Locate { .. } | Self::PackFetch { .. })
    }

    /// Turns a failed ranged read into [`ReadError::PackMissing`] for a 404
    /// and [`ReadError::PackFetch`] otherwise.
    pub(crate) fn from_fetch(pack: PackId, range: Range<u64>, error: CallError) -> Self {
        if error.is_not_found() {
            Self::PackMissing { pack }
        } else {
            Self::PackFetch {
                pack,
                range,
                source: Arc::new(error),
            }
        }
    }
}
