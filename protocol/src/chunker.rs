//! Content-defined chunking (FastCDC 2020, via the `fastcdc` crate).
//!
//! Boundaries depend on content, not offsets, so inserting bytes into a file
//! changes only the chunks around the edit and the rest dedup.
//!
//! # Keyed boundaries
//!
//! With a fixed gear table, anyone could compute where a known file would be
//! cut and recognise it from the chunk sizes visible in pack tables. The
//! chunker is therefore seeded from the tenant's id key
//! ([`IdKey::chunker_seed`]): fastcdc XORs the 64-bit seed into every gear
//! table entry, so boundaries differ per tenant and cannot be predicted
//! without the key. This is a light keying, not a PRF: the seed is 64 bits
//! and one constant is XORed into all entries, so an attacker who knows a
//! tenant's plaintext *and* sees the matching chunk sizes may be able to
//! narrow the seed down. Chunk sizes still leak roughly how large files are.
//! The repository config records `seeded: true`.
//!
//! Two APIs: [`Chunker::chunks`] iterates over the chunks of a slice, and
//! [`StreamChunker`] reads any [`std::io::Read`] with memory bounded by 1.5 times
//! the maximum chunk size, lending each chunk as a slice
//! ([`StreamChunker::next_chunk`], no copy) or yielding owned chunks as an
//! [`Iterator`].

mod stream;

pub use stream::{ChunkRef, OwnedChunk, StreamChunker};

use std::borrow::Cow;

use fastcdc::v2020;

use crate::crypto::IdKey;
use crate::error::{Error, ErrorKind};

/// Name of the chunking algorithm recorded in the repository config. Never modify.
pub const CHUNKER_ALGORITHM: &str = "fastcdc-v2020";

/// Sizes (bytes) and normalization level of the content-defined chunker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// No chunk except a file's last is smaller.
    pub min_size: u32,
    /// The size chunks cluster around.
    pub avg_size: u32,
    /// No chunk is larger; also bounds memory per stream.
    pub max_size: u32,
    /// FastCDC normalization level 0..=3: higher clusters sizes tighter around the average.
    pub normalization: u8,
}

impl ChunkerParams {
    /// 512 KiB / 1 MiB / 8 MiB with normalization level 1 (fastcdc's default):
    /// large enough to keep per-chunk overhead and index size low, small
    /// enough that an edit rewrites about a megabyte.
    pub const DEFAULT: Self = Self {
        min_size: 512 * 1024,
        avg_size: 1024 * 1024,
        max_size: 8 * 1024 * 1024,
        normalization: 1,
    };

    /// Checks the sizes against fastcdc's accepted ranges, that they are
    /// even and strictly increasing, and the normalization level.
    ///
    /// # Errors
    ///
    /// The [`ChunkerError`] naming the first parameter that is wrong.
    pub fn validate(&self) -> Result<(), ChunkerError> {
        let check = |name, value: u32, min: usize, max: usize| {
            let value = value as usize;
            if !(min..=max).contains(&value) {
                return Err(ChunkerError::SizeOutOfRange {
                    name,
                    value,
                    min,
                    max,
                });
            }
            if !value.is_multiple_of(2) {
                return Err(ChunkerError::OddSize { name, value });
            }
            Ok(())
        };
        check(
            "minimum",
            self.min_size,
            v2020::MINIMUM_MIN,
            v2020::MINIMUM_MAX,
        )?;
        check(
            "average",
            self.avg_size,
            v2020::AVERAGE_MIN,
            v2020::AVERAGE_MAX,
        )?;
        check(
            "maximum",
            self.max_size,
            v2020::MAXIMUM_MIN,
            v2020::MAXIMUM_MAX,
        )?;
        if !(self.min_size < self.avg_size && self.avg_size < self.max_size) {
            return Err(ChunkerError::NotIncreasing(*self));
        }
        if self.normalization > 3 {
            return Err(ChunkerError::Normalization(self.normalization));
        }
        Ok(())
    }

    fn level(&self) -> v2020::Normalization {
        match self.normalization {
            0 => v2020::Normalization::Level0,
            1 => v2020::Normalization::Level1,
            2 => v2020::Normalization::Level2,
            _ => v2020::Normalization::Level3,
        }
    }
}

impl Default for ChunkerParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why chunking could not start or continue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkerError {
    /// A size outside fastcdc's accepted range.
    #[error("chunker {name} size {value} is outside the accepted range {min}..={max}")]
    SizeOutOfRange {
        /// "minimum", "average" or "maximum".
        name: &'static str,
        /// The rejected size.
        value: usize,
        /// Smallest accepted.
        min: usize,
        /// Largest accepted.
        max: usize,
    },
    /// An odd size (fastcdc scans two bytes at a time and needs even sizes).
    #[error("chunker {name} size {value} is odd; sizes must be even")]
    OddSize {
        /// "minimum", "average" or "maximum".
        name: &'static str,
        /// The rejected size.
        value: usize,
    },
    /// Sizes not strictly increasing.
    #[error("chunker sizes must satisfy minimum < average < maximum, got {} / {} / {}", .0.min_size, .0.avg_size, .0.max_size)]
    NotIncreasing(ChunkerParams),
    /// A normalization level other than 0..=3.
    #[error("chunker normalization level {0} is not one of 0, 1, 2, 3")]
    Normalization(u8),
    /// Reading the input failed.
    #[error("reading input for chunking failed at offset {offset}: {source}")]
    Read {
        /// Bytes successfully chunked before the failure.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<ChunkerError> for Error {
    fn from(err: ChunkerError) -> Self {
        match err {
            ChunkerError::Read { .. } => {
                let retryable = matches!(&err, ChunkerError::Read { source, .. } if matches!(
                    source.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ));
                if retryable {
                    Self::temporary(ErrorKind::Io, err)
                } else {
                    Self::new(ErrorKind::Io, err)
                }
            }
            _ => Self::new(ErrorKind::Invalid, err),
        }
    }
}

/// Where one chunk lies in a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkSpan {
    /// Offset of the chunk's first byte.
    pub offset: usize,
    /// Length in bytes (never 0).
    pub len: usize,
}

impl ChunkSpan {
    /// The chunk's byte range, for slicing.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// A configured, seeded chunker; cheap to clone.
#[derive(Clone)]
pub struct Chunker {
    /// The validated parameters.
    params: ChunkerParams,
    /// Cut-point masks below and above the average size.
    masks: (u64, u64),
    /// Gear tables (seeded copies, or fastcdc's static ones for seed 0).
    gear: Cow<'static, [u64]>,
    /// Left-shifted gear table, as fastcdc needs it.
    gear_ls: Cow<'static, [u64]>,
}

impl Chunker {
    /// A chunker with `params` whose gear table is XORed with `seed` (0 = fastcdc's unseeded table).
    ///
    /// # Errors
    ///
    /// As [`ChunkerParams::validate`].
    pub fn new(params: ChunkerParams, seed: u64) -> Result<Self, ChunkerError> {
        params.validate()?;
        let (gear, gear_ls) = v2020::get_gear_with_seed(seed);
        Ok(Self {
            params,
            masks: v2020::select_masks(params.avg_size as usize, params.level()),
            gear,
            gear_ls,
        })
    }

    /// The chunker of a tenant: seeded from its id key.
    ///
    /// # Errors
    ///
    /// As [`ChunkerParams::validate`].
    pub fn for_tenant(params: ChunkerParams, id_key: &IdKey) -> Result<Self, ChunkerError> {
        Self::new(params, id_key.chunker_seed())
    }

    /// The parameters this chunker cuts with.
    pub fn params(&self) -> &ChunkerParams {
        &self.params
    }

    /// The chunks of `data`, in order, covering it exactly.
    pub fn chunks<'a>(&'a self, data: &'a [u8]) -> SliceChunks<'a> {
        SliceChunks {
            chunker: self,
            data,
            offset: 0,
        }
    }

    /// A streaming chunker over `reader`.
    pub fn stream<R: std::io::Read>(&self, reader: R) -> StreamChunker<R> {
        StreamChunker::new(self.clone(), reader, Vec::new())
    }

    /// A streaming chunker over `reader` reusing `buffer`'s allocation
    /// (get it back with [`StreamChunker::into_buffer`]).
    pub fn stream_with_buffer<R: std::io::Read>(
        &self,
        reader: R,
        buffer: Vec<u8>,
    ) -> StreamChunker<R> {
        StreamChunker::new(self.clone(), reader, buffer)
    }

    /// Length of the first chunk of `window`. The window must hold at least
    /// `max_size` bytes unless it is the end of the input.
    pub(crate) fn cut(&self, window: &[u8]) -> usize {
        let (mask_s, mask_l) = self.masks;
        v2020::cut_gear(
            window,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            self.params.max_size as usize,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Iterator over the chunks of a slice; see [`Chunker::chunks`].
#[derive(Debug)]
pub struct SliceChunks<'a> {
    /// Cuts the chunks.
    chunker: &'a Chunker,
    /// The whole input.
    data: &'a [u8],
    /// Start of the next chunk.
    offset: usize,
}

impl Iterator for SliceChunks<'_> {
    type Item = ChunkSpan;

    fn next(&mut self) -> Option<ChunkSpan> {
        let len = self.chunker.cut(&self.data[self.offset..]);
        if len == 0 {
            return None;
        }
        let span = ChunkSpan {
            offset: self.offset,
            len,
        };
        self.offset += len;
        Some(span)
    }
}

#[cfg(test)]
mod tests;
