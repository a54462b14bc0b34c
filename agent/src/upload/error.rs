//! What can stop the upload engine, named so an operator can act: the
//! reader that failed, the pack and the server's answer.

use std::sync::Arc;

use stowage_protocol::blob::BlobKind;
use stowage_protocol::chunker::ChunkerError;
use stowage_protocol::crypto::CryptoError;
use stowage_protocol::ids::PackId;
use stowage_protocol::pack::PackError;

use crate::api::CallError;

/// Why a call on the [`Uploader`](super::Uploader) failed.
///
/// Only [`UploadError::Read`] leaves the engine usable: it is the caller's
/// reader that failed (the backup records the file as unreadable and goes
/// on). Every other error is fatal: it fails that call, every later call
/// and [`finish`](super::Uploader::finish).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The caller's reader failed; blobs already queued from it stay queued.
    #[error("reading the source failed after {offset} bytes - {source}")]
    Read {
        /// Bytes read and chunked before the failure.
        offset: u64,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
    /// Asking the server which blobs it already holds failed.
    #[error("asking the server which of {ids} blobs it already holds failed - {source}")]
    Missing {
        /// Ids in the failed query.
        ids: usize,
        /// The server's refusal, or no answer.
        #[source]
        source: Box<CallError>,
    },
    /// A pack upload failed after the client's retries.
    #[error("uploading {kind} pack {pack} ({bytes} bytes, {blobs} blobs) failed - {source}")]
    Upload {
        /// The pack's id.
        pack: PackId,
        /// Whether it held data or trees.
        kind: BlobKind,
        /// Its size.
        bytes: usize,
        /// Number of blobs in it.
        blobs: usize,
        /// The server's refusal (status and message), or no answer.
        #[source]
        source: Box<CallError>,
    },
    /// The server stored a pack under another id than the one it was sent as.
    #[error("the server acknowledged pack {sent} as {answered}")]
    PackMismatch {
        /// The id the agent computed and sent.
        sent: PackId,
        /// The id the server answered with.
        answered: PackId,
    },
    /// The repository's chunker parameters are unusable.
    #[error("the repository's chunker parameters are unusable - {0}")]
    Chunker(#[source] ChunkerError),
    /// A pack's data key could not be sealed to the tenant's public key.
    #[error("sealing a pack's data key to the tenant's public key failed - {0}")]
    DataKey(#[source] CryptoError),
    /// A sealed blob did not fit a pack (a bug: sealed blobs are always well formed).
    #[error("adding a sealed blob to a pack failed - {0}")]
    Pack(#[source] PackError),
    /// An engine thread could not be started or died.
    #[error("the upload engine's {what} failed - {problem}")]
    Engine {
        /// Which part: "seal thread", "dedup thread"…
        what: &'static str,
        /// What happened.
        problem: String,
    },
    /// An earlier failure stopped the engine; every later call reports it.
    #[error("the upload stopped after an earlier failure: {0}")]
    Stopped(Arc<UploadError>),
}

impl UploadError {
    /// Whether the engine can go on after this error (only a reader failure).
    pub fn is_read(&self) -> bool {
        matches!(self, Self::Read { .. })
    }

    /// The original failure behind any [`UploadError::Stopped`] wrapping.
    pub fn root(&self) -> &UploadError {
        match self {
            Self::Stopped(cause) => cause.root(),
            other => other,
        }
    }
}
