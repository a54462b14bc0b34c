//! Restore progress: counters the writers bump, and a bar on a terminal.
//!
//! Totals are known before any content is written (the trees give every
//! file and size), so the bar shows files, bytes, rate and an ETA. The
//! counters are a [`Tally`] the caller may share, so the daemon can report
//! them while the restore runs; the writers never wait for the display.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::tally::Tally;

/// Files and bytes written so far, against the totals.
#[derive(Debug)]
pub struct Progress {
    /// Files and bytes written, shared with whoever watches the restore.
    tally: Arc<Tally>,
    total_files: u64,
    bar: ProgressBar,
}

impl Progress {
    /// Counters for `total_files` files of `total_bytes` bytes, with a bar
    /// on standard error when `show` (a terminal and no --no-progress / --json),
    /// counting into `tally`.
    pub fn new(total_files: u64, total_bytes: u64, show: bool, tally: Arc<Tally>) -> Self {
        let bar = if show {
            let bar = ProgressBar::new(total_bytes);
            let style = ProgressStyle::with_template(
                "{msg} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_bar}",
            )
            .expect("the template is valid");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        let progress = Self {
            tally,
            total_files,
            bar,
        };
        progress.refresh();
        progress
    }

    /// One more file finished (written or failed).
    pub fn add_file(&self) {
        self.tally.add_file();
        self.refresh();
    }

    /// `bytes` more content written.
    pub fn add_bytes(&self, bytes: u64) {
        let total = self.tally.add_bytes(bytes);
        self.bar.set_position(total);
    }

    /// Content bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.tally.bytes()
    }

    fn refresh(&self) {
        if !self.bar.is_hidden() {
            self.bar
                .set_message(format!("files {}/{}", self.tally.files(), self.total_files));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_across_threads() {
        let tally = Arc::new(Tally::default());
        let progress = Progress::new(10, 1000, false, Arc::clone(&tally));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        progress.add_bytes(10);
                    }
                });
            }
        });
        assert_eq!(progress.bytes(), 1000);
        assert_eq!(tally.bytes(), 1000, "the shared tally sees the same count");
    }
}
