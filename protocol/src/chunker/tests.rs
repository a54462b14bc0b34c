//! Tests of the slice and streaming chunkers.

use std::collections::HashSet;
use std::io::Read;

use proptest::prelude::*;

use super::*;

/// Small sizes so tests see many chunks in little data.
const SMALL: ChunkerParams = ChunkerParams {
    min_size: 256,
    avg_size: 1024,
    max_size: 4096,
    normalization: 1,
};

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut block = 0u64;
    while out.len() < len {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[seed]);
        hasher.update(&block.to_le_bytes());
        out.extend_from_slice(hasher.finalize().as_bytes());
        block += 1;
    }
    out.truncate(len);
    out
}

/// A reader that returns at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn spans(chunker: &Chunker, data: &[u8]) -> Vec<ChunkSpan> {
    chunker.chunks(data).collect()
}

#[test]
fn the_default_parameters_are_valid_and_match_the_design() {
    assert!(ChunkerParams::DEFAULT.validate().is_ok());
    assert_eq!(ChunkerParams::DEFAULT.min_size, 512 * 1024);
    assert_eq!(ChunkerParams::DEFAULT.avg_size, 1024 * 1024);
    assert_eq!(ChunkerParams::DEFAULT.max_size, 8 * 1024 * 1024);
}

#[test]
fn bad_parameters_are_rejected_with_clear_messages() {
    let cases = [
        (
            ChunkerParams {
                min_size: 32,
                ..SMALL
            },
            "chunker minimum size 32 is outside the accepted range 64..=1048576",
        ),
        (
            ChunkerParams {
                avg_size: 1025,
                ..SMALL
            },
            "chunker average size 1025 is odd; sizes must be even",
        ),
        (
            ChunkerParams {
                max_size: 1 << 25,
                ..SMALL
            },
            "chunker maximum size 33554432 is outside the accepted range 1024..=16777216",
        ),
        (
            ChunkerParams {
                min_size: 2048,
                ..SMALL
            },
            "chunker sizes must satisfy minimum < average < maximum, got 2048 / 1024 / 4096",
        ),
        (
            ChunkerParams {
                normalization: 4,
                ..SMALL
            },
            "chunker normalization level 4 is not one of 0, 1, 2, 3",
        ),
    ];
    for (params, message) in cases {
        let err = Chunker::new(params, 0).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(Error::from(err).kind(), ErrorKind::Invalid);
    }
}

#[test]
fn empty_input_has_no_chunks() {
    let chunker = Chunker::new(SMALL, 1).unwrap();
    assert_eq!(chunker.chunks(&[]).count(), 0);
    assert!(chunker.stream(&[][..]).next().is_none());
}

#[test]
fn the_seed_changes_the_boundaries() {
    let data = noise(200_000, 1);
    let unseeded = spans(&Chunker::new(SMALL, 0).unwrap(), &data);
    let seeded = spans(
        &Chunker::for_tenant(SMALL, &IdKey::from_bytes([1; 32])).unwrap(),
        &data,
    );
    let other = spans(
        &Chunker::for_tenant(SMALL, &IdKey::from_bytes([2; 32])).unwrap(),
        &data,
    );
    assert_ne!(unseeded, seeded);
    assert_ne!(seeded, other);
}

#[test]
fn the_stream_chunker_matches_the_slice_chunker_for_any_read_size() {
    let chunker = Chunker::new(SMALL, 77).unwrap();
    let data = noise(100_000, 2);
    let expected: Vec<(u64, Vec<u8>)> = spans(&chunker, &data)
        .into_iter()
        .map(|s| (s.offset as u64, data[s.range()].to_vec()))
        .collect();
    for step in [1, 3, 4095, 64 * 1024] {
        let got: Vec<(u64, Vec<u8>)> = chunker
            .stream(Trickle { data: &data, step })
            .map(|c| c.map(|c| (c.offset, c.data)).unwrap())
            .collect();
        assert_eq!(got, expected, "read size {step}");
    }
}

#[test]
fn the_stream_chunker_lends_chunks_and_reuses_its_buffer() {
    let chunker = Chunker::new(SMALL, 5).unwrap();
    let data = noise(50_000, 3);
    let mut stream = chunker.stream(&data[..]);
    let mut total = 0;
    while let Some(chunk) = stream.next_chunk().unwrap() {
        assert_eq!(chunk.offset, total as u64);
        assert_eq!(chunk.data, &data[total..total + chunk.data.len()]);
        total += chunk.data.len();
    }
    assert_eq!(total, data.len());
    assert_eq!(stream.position(), data.len() as u64);
    let buffer = stream.into_buffer();
    assert!(
        buffer.len() <= SMALL.max_size as usize * 3 / 2,
        "{}",
        buffer.len()
    );
    let again = chunker.stream_with_buffer(&data[..], buffer);
    assert_eq!(again.count(), spans(&chunker, &data).len());
}

#[test]
fn a_read_error_is_reported_with_its_offset() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk gone"))
        }
    }
    let chunker = Chunker::new(SMALL, 0).unwrap();
    let err = chunker.stream(Failing).next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading input for chunking failed at offset 0: disk gone"
    );
    assert_eq!(Error::from(err).kind(), ErrorKind::Io);
}

#[test]
fn most_chunks_survive_a_prefix_insertion() {
    // Arrange
    let chunker = Chunker::new(SMALL, 9).unwrap();
    let data = noise(400_000, 4);
    let mut edited = b"a few inserted bytes at the very start".to_vec();
    edited.extend_from_slice(&data);

    // Act
    let before: HashSet<&[u8]> = spans(&chunker, &data)
        .iter()
        .map(|s| &data[s.range()])
        .collect();
    let after: Vec<&[u8]> = spans(&chunker, &edited)
        .iter()
        .map(|s| &edited[s.range()])
        .collect();

    // Assert
    let reused = after.iter().filter(|c| before.contains(*c)).count();
    assert!(
        reused * 10 >= after.len() * 9,
        "{reused} of {} chunks reused",
        after.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chunks_cover_the_input_exactly_and_respect_the_sizes(
        data in proptest::collection::vec(any::<u8>(), 0..30_000),
        seed in any::<u64>(),
    ) {
        let chunker = Chunker::new(SMALL, seed).unwrap();
        let spans = spans(&chunker, &data);
        let mut next = 0;
        for (i, span) in spans.iter().enumerate() {
            prop_assert_eq!(span.offset, next);
            prop_assert!(span.len <= SMALL.max_size as usize);
            if i + 1 < spans.len() {
                prop_assert!(span.len >= SMALL.min_size as usize);
            }
            next += span.len;
        }
        prop_assert_eq!(next, data.len());
    }

    #[test]
    fn low_entropy_input_is_cut_at_the_maximum(byte in any::<u8>(), len in 0usize..20_000) {
        let data = vec![byte; len];
        let chunker = Chunker::new(SMALL, 3).unwrap();
        let total: usize = chunker.chunks(&data).map(|s| s.len).sum();
        prop_assert_eq!(total, len);
        prop_assert!(chunker.chunks(&data).all(|s| s.len <= SMALL.max_size as usize));
    }
}
