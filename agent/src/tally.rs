//! Running counts of a long job — bytes and files so far — that the job
//! bumps and someone else reads while it runs: the daemon, which reports
//! them to the server as the job's progress. Plain atomics, so the job
//! never waits for whoever watches; a command-line run simply never reads
//! them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes and files done so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// Content bytes done (written by a restore, read back by a check).
    bytes: AtomicU64,
    /// Files done (finished or failed).
    files: AtomicU64,
}

impl Tally {
    /// `bytes` more done.
    pub fn add_bytes(&self, bytes: u64) -> u64 {
        self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes
    }

    /// One more file done.
    pub fn add_file(&self) -> u64 {
        self.files.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Bytes done so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Files done so far.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_across_threads() {
        // Arrange
        let tally = Tally::default();
        // Act
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        tally.add_bytes(10);
                        tally.add_file();
                    }
                });
            }
        });
        // Assert
        assert_eq!((tally.bytes(), tally.files()), (1000, 100));
    }
}
