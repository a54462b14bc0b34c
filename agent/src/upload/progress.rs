//! Live counters of the upload engine: atomics the pipeline's threads add
//! to, read at any time (a progress bar, `--json`) without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// A copy of the engine's counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UploadProgress {
    /// Bytes read from the streams given to `store_stream`.
    pub bytes_read: u64,
    /// Data chunks cut from those streams (repeats included).
    pub chunks: u64,
    /// Data blobs the server did not hold and this run is uploading.
    pub chunks_new: u64,
    /// Plaintext bytes of the new data blobs.
    pub bytes_new: u64,
    /// Sealed (compressed and encrypted) bytes written into packs.
    pub bytes_sealed: u64,
    /// Packs the server acknowledged.
    pub packs_uploaded: u64,
    /// Of those, packs of data blobs.
    pub data_packs_uploaded: u64,
    /// Of those, packs of tree blobs.
    pub tree_packs_uploaded: u64,
    /// Pack bytes the server acknowledged.
    pub bytes_uploaded: u64,
    /// Blobs not uploaded because the server already held them or this run
    /// had already queued them.
    pub blobs_deduplicated: u64,
}

/// The atomics behind [`UploadProgress`], one per field.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub bytes_read: AtomicU64,
    pub chunks: AtomicU64,
    pub chunks_new: AtomicU64,
    pub bytes_new: AtomicU64,
    pub bytes_sealed: AtomicU64,
    pub packs_uploaded: AtomicU64,
    pub data_packs_uploaded: AtomicU64,
    pub tree_packs_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub blobs_deduplicated: AtomicU64,
}

/// Adds `n` to one counter. Relaxed: each counter is independent and only
/// ever grows; readers want a recent value, not a consistent cut.
pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// The current values.
    pub fn snapshot(&self) -> UploadProgress {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        UploadProgress {
            bytes_read: get(&self.bytes_read),
            chunks: get(&self.chunks),
            chunks_new: get(&self.chunks_new),
            bytes_new: get(&self.bytes_new),
            bytes_sealed: get(&self.bytes_sealed),
            packs_uploaded: get(&self.packs_uploaded),
            data_packs_uploaded: get(&self.data_packs_uploaded),
            tree_packs_uploaded: get(&self.tree_packs_uploaded),
            bytes_uploaded: get(&self.bytes_uploaded),
            blobs_deduplicated: get(&self.blobs_deduplicated),
        }
    }
}
