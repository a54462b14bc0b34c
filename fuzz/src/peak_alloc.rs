//! A global allocator that remembers the largest single allocation made
//! while a closure runs.
//!
//! `BlobOpener::open` promises that no allocation exceeds the caller's
//! maximum plaintext size. libFuzzer's `-malloc_limit_mb` only catches
//! allocations in the hundreds of megabytes; this checks the promise to the
//! byte, so a decompression bomb that allocates "only" 4 MiB past a 64 KiB cap
//! still fails the run. It wraps the system allocator (which the sanitizer
//! intercepts as usual) and counts nothing outside [`measure`].
//!
//! This is the one place with `unsafe`: `GlobalAlloc` cannot be implemented
//! without it. The fuzz crate is outside the workspace and its
//! `unsafe_code = "forbid"` lint; its own lints deny `unsafe` everywhere else.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Whether [`measure`] is running on this thread (per thread, so other
    /// threads' allocations, e.g. parallel tests, never count).
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    /// Largest allocation or reallocation size seen while tracking.
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, plus the peak bookkeeping; install with `#[global_allocator]`.
#[derive(Debug)]
pub struct PeakAlloc;

/// Records `size`; const-initialised thread locals without destructors never
/// allocate, so this is safe to call from inside the allocator.
fn note(size: usize) {
    if TRACKING.try_with(Cell::get).unwrap_or(false) {
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(size)));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping touches only thread-local cells and never allocates.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the largest single allocation it
/// made on this thread through the global allocator (0 if none). Only
/// meaningful when [`PeakAlloc`] is the global allocator; not reentrant.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.set(0);
    TRACKING.set(true);
    let result = f();
    TRACKING.set(false);
    (result, PEAK.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOC: PeakAlloc = PeakAlloc;

    #[test]
    fn the_largest_allocation_inside_the_closure_is_reported() {
        let (buffers, peak) = measure(|| (vec![1u8; 100], vec![2u8; 70_000]));
        assert_eq!(peak, 70_000);
        drop(buffers);
        let ((), peak) = measure(|| ());
        assert_eq!(peak, 0);
    }

    #[test]
    fn growing_a_vector_reports_its_final_capacity() {
        let (grown, peak) = measure(|| {
            let mut bytes = Vec::with_capacity(16);
            bytes.extend_from_slice(&[0u8; 4096]);
            bytes
        });
        assert_eq!(peak, grown.capacity());
    }
}
