//! What the user sees while a backup runs: warnings on standard error, and
//! on a terminal a progress bar (files, bytes, rate, ETA). The totals come
//! from a scanner thread that walks the same paths with only `lstat`, ahead
//! of the readers; until it finishes, the totals grow.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::exclude::Excludes;
use super::source::{self, Sources};
use super::stats::Stats;

/// Prints warnings (above the bar when there is one) and owns the bar.
#[derive(Debug)]
pub struct Reporter {
    /// The bar, only on a terminal and without --no-progress.
    bar: Option<ProgressBar>,
}

impl Reporter {
    /// A reporter with a bar when `wanted` and standard error is a terminal.
    pub fn new(wanted: bool) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:28}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Self { bar }
    }

    /// Prints `message` as a warning on standard error.
    pub fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("stowage: warning: {message}")),
            None => eprintln!("stowage: warning: {message}"),
        }
    }

    /// Runs `work` while a scanner counts the totals and a ticker draws
    /// the bar; without a bar, just runs `work`.
    pub fn track<T>(
        &self,
        stats: &Stats,
        sources: &Sources,
        excludes: &Excludes,
        one_file_system: bool,
        work: impl FnOnce() -> T,
    ) -> T {
        let Some(bar) = &self.bar else {
            return work();
        };
        let done = AtomicBool::new(false);
        let total_files = AtomicU64::new(0);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                scan(sources, excludes, one_file_system, &done, &mut |size| {
                    total_files.fetch_add(1, Ordering::Relaxed);
                    bar.inc_length(size);
                });
            });
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(stats.bytes_done.load(Ordering::Relaxed));
                    bar.set_message(format!(
                        "{}/{} files",
                        stats.files_done.load(Ordering::Relaxed),
                        total_files.load(Ordering::Relaxed)
                    ));
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            let result = work();
            done.store(true, Ordering::Relaxed);
            result
        });
        bar.finish_and_clear();
        result
    }
}

/// Walks what the backup will walk, calling `on_file` with each regular
/// file's size, until done or `stop` is set.
fn scan(
    sources: &Sources,
    excludes: &Excludes,
    one_file_system: bool,
    stop: &AtomicBool,
    on_file: &mut dyn FnMut(u64),
) {
    let mut stack: Vec<(PathBuf, Option<u64>)> = vec![(source::root().to_path_buf(), None)];
    while let Some((dir, device)) = stack.pop() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let children: Vec<PathBuf> = match sources.selected_children(&dir) {
            Some(names) => selected(&dir, names),
            None => match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| !excludes.is_excluded(path))
                    .collect(),
                Err(_) => continue,
            },
        };
        let virtual_dir = sources.selected_children(&dir).is_some();
        for child in children {
            let Ok(meta) = std::fs::symlink_metadata(&child) else {
                continue;
            };
            if meta.is_file() {
                on_file(meta.size());
            } else if meta.is_dir() {
                let crosses = !virtual_dir && device.is_some_and(|device| device != meta.dev());
                if !(one_file_system && crosses) {
                    stack.push((child, Some(meta.dev())));
                }
            }
        }
    }
}

fn selected(dir: &Path, names: &BTreeSet<OsString>) -> Vec<PathBuf> {
    names.iter().map(|name| dir.join(name)).collect()
}
