//! The dedup check: ids from every caller are coalesced into batches and
//! sent to the server in one `missing` query each, so a high-latency link
//! costs one round trip per batch rather than per chunk.
//!
//! A batch closes at [`MAX_IDS_PER_QUERY`] ids, at half the plaintext budget
//! (so the next batch can fill while this one is asked about), or 50 ms
//! after its first id — whichever comes first. The wait keeps a backup of
//! many small files to at most 20 queries a second, well inside the
//! server's default per-agent budget of 250 requests a second that pack
//! uploads share; it costs no throughput, because callers keep filling the
//! next batch meanwhile, and none at the end, because finishing sends the
//! last batch at once. Blobs the server
//! lacks go on to sealing; the others are dropped, and the server has now
//! leased them to the session, which is what makes a resumed backup after a
//! crash upload nothing the server already holds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use stowage_protocol::api::MAX_IDS_PER_QUERY;
use stowage_protocol::ids::BlobId;

use super::Blob;

/// When a batch must be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchLimits {
    /// Ids per query (the server accepts up to [`MAX_IDS_PER_QUERY`]).
    pub ids: usize,
    /// Plaintext bytes held by one batch.
    pub bytes: u64,
    /// Longest a blob waits for others to join its batch.
    pub wait: Duration,
}

impl BatchLimits {
    /// The engine's limits for a plaintext budget of `budget` bytes.
    pub fn for_budget(budget: u64) -> Self {
        Self {
            ids: MAX_IDS_PER_QUERY,
            bytes: budget / 2,
            wait: Duration::from_millis(50),
        }
    }
}

/// Blobs waiting for one `missing` query.
#[derive(Debug, Default)]
pub(super) struct Batch {
    blobs: Vec<Blob>,
    bytes: u64,
    /// When the first blob arrived.
    opened: Option<Instant>,
}

impl Batch {
    pub fn push(&mut self, blob: Blob, now: Instant) {
        self.opened.get_or_insert(now);
        self.bytes += blob.plaintext.len() as u64;
        self.blobs.push(blob);
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Whether the batch must go now, without waiting for its deadline.
    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.blobs.len() >= limits.ids || self.bytes >= limits.bytes
    }

    /// When the batch must go at the latest; `None` while empty.
    pub fn deadline(&self, limits: &BatchLimits) -> Option<Instant> {
        self.opened.map(|opened| opened + limits.wait)
    }

    /// Empties the batch, returning its blobs in arrival order.
    pub fn take(&mut self) -> Vec<Blob> {
        self.bytes = 0;
        self.opened = None;
        std::mem::take(&mut self.blobs)
    }
}

/// Splits `blobs` into those the server reported `missing` (to upload) and
/// those it holds, keeping arrival order. Ids in `missing` that were not
/// asked about are ignored.
pub(super) fn split_missing(blobs: Vec<Blob>, missing: &[BlobId]) -> (Vec<Blob>, Vec<Blob>) {
    let missing: HashSet<&BlobId> = missing.iter().collect();
    blobs
        .into_iter()
        .partition(|blob| missing.contains(&blob.id))
}

#[cfg(test)]
mod tests {
    use stowage_protocol::blob::BlobKind;

    use super::super::budget::ByteBudget;
    use super::*;

    fn blob(n: u8, len: usize) -> Blob {
        Blob {
            kind: BlobKind::Data,
            id: BlobId::from_bytes([n; 32]),
            plaintext: vec![n; len].into(),
            refs: Vec::new(),
            lease: ByteBudget::new(u64::MAX).acquire(len as u64),
        }
    }

    fn limits() -> BatchLimits {
        BatchLimits {
            ids: 3,
            bytes: 100,
            wait: Duration::from_millis(5),
        }
    }

    #[test]
    fn a_batch_is_full_at_the_id_limit() {
        let mut batch = Batch::default();
        let now = Instant::now();
        batch.push(blob(1, 1), now);
        batch.push(blob(2, 1), now);
        assert!(!batch.is_full(&limits()));
        batch.push(blob(3, 1), now);
        assert!(batch.is_full(&limits()));
    }

    #[test]
    fn a_batch_is_full_at_the_byte_limit() {
        let mut batch = Batch::default();
        batch.push(blob(1, 60), Instant::now());
        assert!(!batch.is_full(&limits()));
        batch.push(blob(2, 40), Instant::now());
        assert!(batch.is_full(&limits()));
    }

    #[test]
    fn the_deadline_runs_from_the_first_blob_and_resets_when_taken() {
        // Arrange
        let mut batch = Batch::default();
        let first = Instant::now();
        assert_eq!(batch.deadline(&limits()), None);

        // Act
        batch.push(blob(1, 1), first);
        batch.push(blob(2, 1), first + Duration::from_millis(3));

        // Assert
        assert_eq!(
            batch.deadline(&limits()),
            Some(first + Duration::from_millis(5))
        );
        let taken = batch.take();
        assert_eq!(taken.len(), 2);
        assert!(batch.is_empty());
        assert_eq!(batch.deadline(&limits()), None);
        assert!(!batch.is_full(&limits()));
    }

    #[test]
    fn only_the_blobs_the_server_lacks_go_on_in_order() {
        let blobs = vec![blob(1, 1), blob(2, 1), blob(3, 1), blob(4, 1)];
        let missing = [
            BlobId::from_bytes([3; 32]),
            BlobId::from_bytes([1; 32]),
            BlobId::from_bytes([9; 32]),
        ];
        let (new, present) = split_missing(blobs, &missing);
        let ids = |blobs: &[Blob]| blobs.iter().map(|b| b.id.as_bytes()[0]).collect::<Vec<_>>();
        assert_eq!(ids(&new), [1, 3]);
        assert_eq!(ids(&present), [2, 4]);
    }
}
