//! Coalescing the blobs wanted from one pack into few range requests.
//!
//! A restore wants most blobs of most packs it touches, and those blobs lie
//! back to back, so one request per blob would make restore speed a
//! function of request latency. Neighbouring blobs are read in one request;
//! a small gap (blobs not wanted) is read and thrown away when that is cheaper
//! than another round trip, and a request never grows past a size that
//! bounds the memory each request in flight holds.

use std::ops::Range;

use stowage_protocol::api::BlobLocation;

/// Read through a gap of at most this many unwanted bytes rather than start
/// another request (about one round trip's worth of transfer on a fast link).
pub const MAX_GAP: u64 = 1 << 20;

/// A coalesced request is at most this long (unless one blob alone is longer).
pub const MAX_SPAN: u64 = 16 << 20;

/// One range request and the blobs it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The bytes of the pack to fetch.
    pub range: Range<u64>,
    /// The blobs inside it, in offset order.
    pub blobs: Vec<BlobLocation>,
}

/// Groups `blobs` (of one pack, any order, duplicates allowed) into spans:
/// sorted by offset, one entry per distinct blob, neighbours merged while
/// the gap between them is at most `max_gap` and the span stays within
/// `max_span`.
pub fn coalesce(blobs: &[BlobLocation], max_gap: u64, max_span: u64) -> Vec<Span> {
    let mut sorted: Vec<BlobLocation> = blobs.to_vec();
    sorted.sort_unstable_by_key(|b| (b.offset, b.id));
    sorted.dedup_by_key(|b| b.id);
    let mut spans: Vec<Span> = Vec::new();
    for blob in sorted {
        let start = u64::from(blob.offset);
        let end = start + u64::from(blob.length);
        if let Some(last) = spans.last_mut() {
            let gap = start.saturating_sub(last.range.end);
            if start >= last.range.start
                && gap <= max_gap
                && end.max(last.range.end) - last.range.start <= max_span
            {
                last.range.end = last.range.end.max(end);
                last.blobs.push(blob);
                continue;
            }
        }
        spans.push(Span {
            range: start..end,
            blobs: vec![blob],
        });
    }
    spans
}

#[cfg(test)]
mod tests {
    use stowage_protocol::blob::BlobKind;
    use stowage_protocol::ids::{BlobId, PackId};

    use super::*;

    fn at(n: u8, offset: u32, length: u32) -> BlobLocation {
        BlobLocation {
            id: BlobId::from_bytes([n; 32]),
            pack_id: PackId::from_bytes([9; 32]),
            offset,
            length,
            kind: BlobKind::Data,
        }
    }

    fn ranges(spans: &[Span]) -> Vec<Range<u64>> {
        spans.iter().map(|s| s.range.clone()).collect()
    }

    #[test]
    fn adjacent_blobs_in_any_order_become_one_request() {
        let spans = coalesce(
            &[at(3, 300, 100), at(1, 88, 112), at(2, 200, 100)],
            0,
            MAX_SPAN,
        );
        assert_eq!(ranges(&spans), vec![88..400]);
        let ids: Vec<u8> = spans[0].blobs.iter().map(|b| b.id.as_bytes()[0]).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn a_small_gap_is_read_through_and_a_large_one_splits() {
        let blobs = [at(1, 100, 10), at(2, 150, 10), at(3, 1000, 10)];
        assert_eq!(
            ranges(&coalesce(&blobs, 100, MAX_SPAN)),
            [100..160, 1000..1010]
        );
        assert_eq!(ranges(&coalesce(&blobs, 1000, MAX_SPAN)), vec![100..1010]);
    }

    #[test]
    fn a_span_never_grows_past_the_limit_but_a_huge_blob_stands_alone() {
        let blobs = [at(1, 0, 60), at(2, 60, 60), at(3, 120, 500), at(4, 620, 10)];
        let spans = coalesce(&blobs, 0, 128);
        assert_eq!(ranges(&spans), [0..120, 120..620, 620..630]);
    }

    #[test]
    fn duplicates_are_fetched_once() {
        let spans = coalesce(&[at(1, 100, 10), at(1, 100, 10)], 0, MAX_SPAN);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].blobs.len(), 1);
    }
}
