//! Known answers for chunk boundaries: a fixed pseudo-random input, the
//! default parameters and a seed from a fixed id key must always give the
//! same cut points, read whole or through reads of 1, 3 and 64 KiB bytes.

mod kat_support;

use std::io::Read;

use kat_support::{check_vector, counting_bytes};
use stowage_protocol::chunker::{Chunker, ChunkerParams};
use stowage_protocol::crypto::IdKey;

/// 24 MiB from the BLAKE3 XOF, with a long run of zeros to hit the maximum size.
fn input() -> Vec<u8> {
    let mut data = vec![0u8; 24 << 20];
    blake3::Hasher::new()
        .update(b"stowage chunker known answer")
        .finalize_xof()
        .fill(&mut data);
    data[(10 << 20)..(20 << 20)].fill(0);
    data
}

fn chunker() -> Chunker {
    Chunker::for_tenant(
        ChunkerParams::DEFAULT,
        &IdKey::from_bytes(counting_bytes(0)),
    )
    .unwrap()
}

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

#[test]
fn default_boundaries_match_the_stored_vector_for_every_read_size() {
    // Arrange
    let data = input();
    let chunker = chunker();

    // Act
    let spans: Vec<String> = chunker
        .chunks(&data)
        .map(|s| format!("{} {}", s.offset, s.len))
        .collect();

    // Assert
    check_vector("chunker_default.txt", &spans.join("\n"));
    for step in [1, 3, 64 * 1024] {
        let streamed: Vec<String> = chunker
            .stream(Trickle { data: &data, step })
            .map(|c| {
                let c = c.unwrap();
                format!("{} {}", c.offset, c.data.len())
            })
            .collect();
        assert_eq!(streamed, spans, "read size {step}");
    }
}
