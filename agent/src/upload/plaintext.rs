//! The engine's copy of a chunk's plaintext, in memory the process gives
//! back to the system as soon as the chunk is sealed.
//!
//! A chunk is copied out of its reader's window in the reader thread and
//! freed in a seal thread, up to [`super::PLAINTEXT_BUDGET`] of them at once,
//! each 0.5–8 MiB. Through glibc's allocator that pattern does not return
//! memory: the first freed large block raises the allocator's mmap
//! threshold to its size, later chunks then come from per-thread arenas,
//! and frees from another thread leave those arenas fragmented and
//! resident. Measured on 1.5 GB of real files (scripts/bench-agent), the
//! backup's peak RSS was 145–205 MB against a configured bound of about
//! 130 MB, and two 32 MB arena heaps were resident at the peak. Giving
//! each large copy its own anonymous mapping makes freeing it an `munmap`,
//! so the resident size follows the bytes actually in flight. The cost is
//! one `mmap`/`munmap` pair and the page faults per chunk, which is what
//! glibc itself does below its threshold.

use std::ops::Deref;

/// Copies below this size stay on the heap: they are too small to
/// fragment anything, and a mapping costs at least a page.
const MAP_AT_LEAST: usize = 64 * 1024;

/// A blob's plaintext, owned by the engine until it is sealed.
#[derive(Debug)]
pub enum Plaintext {
    /// Trees, small chunks, and copies when a mapping could not be made.
    Heap(Vec<u8>),
    /// A large chunk copy in its own anonymous mapping, unmapped on drop.
    Mapped(memmap2::MmapMut),
}

impl Plaintext {
    /// A copy of `data`: mapped when large, on the heap otherwise (or when
    /// the system refuses a mapping, which only costs the memory behaviour).
    pub fn copy_of(data: &[u8]) -> Self {
        if data.len() >= MAP_AT_LEAST
            && let Ok(mut mapped) = memmap2::MmapMut::map_anon(data.len())
        {
            mapped.copy_from_slice(data);
            return Self::Mapped(mapped);
        }
        Self::Heap(data.to_vec())
    }
}

impl From<Vec<u8>> for Plaintext {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Heap(bytes)
    }
}

impl Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Heap(bytes) => bytes,
            Self::Mapped(mapped) => mapped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_copies_stay_on_the_heap_and_large_ones_are_mapped() {
        let small = vec![7u8; MAP_AT_LEAST - 1];
        let large: Vec<u8> = (0..=u8::MAX).cycle().take(MAP_AT_LEAST * 3 + 5).collect();
        let small_copy = Plaintext::copy_of(&small);
        let large_copy = Plaintext::copy_of(&large);
        assert!(matches!(small_copy, Plaintext::Heap(_)));
        assert!(matches!(large_copy, Plaintext::Mapped(_)));
        assert_eq!(&*small_copy, &small[..]);
        assert_eq!(&*large_copy, &large[..]);
    }

    #[test]
    fn an_empty_copy_is_empty() {
        assert!(Plaintext::copy_of(&[]).is_empty());
    }
}
