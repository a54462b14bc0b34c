//! Counters of one backup run and the list of source errors, shared by the
//! walk's threads; warnings go to the [`Reporter`] as they happen. The
//! caller may hold them too (the daemon reads the counters while the backup
//! runs, and may ask it to stop).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;
use stowage_protocol::snapshot::{MAX_SOURCE_ERRORS, RawPath, SourceError};

use super::progress::Reporter;

/// Why a walk asked to stop ended.
pub const STOPPED: &str = "the backup was stopped before it finished";

/// Live counters (atomics, updated by every walk thread).
#[derive(Debug, Default)]
pub struct Stats {
    /// Regular files in the snapshot.
    pub files: AtomicU64,
    /// Files the cache did not know.
    pub files_new: AtomicU64,
    /// Files the cache knew, but changed.
    pub files_changed: AtomicU64,
    /// Files reused from the cache without reading.
    pub files_unchanged: AtomicU64,
    /// Directories in the snapshot (the root included).
    pub dirs: AtomicU64,
    /// Directories the cache did not know.
    pub dirs_new: AtomicU64,
    /// Directories whose tree differs from the cached one.
    pub dirs_changed: AtomicU64,
    /// Directories whose tree is the cached one.
    pub dirs_unchanged: AtomicU64,
    /// Sum of the regular files' sizes.
    pub total_bytes: AtomicU64,
    /// Bytes read from files.
    pub bytes_read: AtomicU64,
    /// Bytes read plus the sizes of skipped unchanged files (progress).
    pub bytes_done: AtomicU64,
    /// Files done, read or not (progress).
    pub files_done: AtomicU64,
    /// Tree blobs handed to the uploader.
    pub tree_blobs: AtomicU64,
    /// Files or directories skipped because they could not be read.
    pub unreadable: AtomicU64,
    /// Files that changed while being read.
    pub changed_while_read: AtomicU64,
    /// Every source error, up to [`MAX_SOURCE_ERRORS`].
    errors: Mutex<Vec<SourceError>>,
    /// Set by whoever runs the backup to stop it: the walk takes no new
    /// task once it is set (a file being read is finished first).
    stop: AtomicBool,
}

/// The final counts, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Regular files in the snapshot.
    pub files: u64,
    /// Files new to the cache.
    pub files_new: u64,
    /// Files changed since the cached snapshot.
    pub files_changed: u64,
    /// Files reused unread.
    pub files_unchanged: u64,
    /// Directories in the snapshot.
    pub dirs: u64,
    /// Directories new to the cache.
    pub dirs_new: u64,
    /// Directories whose tree changed.
    pub dirs_changed: u64,
    /// Directories whose tree is unchanged.
    pub dirs_unchanged: u64,
    /// Sum of file sizes.
    pub total_bytes: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Tree blobs stored (before dedup).
    pub tree_blobs: u64,
    /// Unreadable files and directories.
    pub unreadable: u64,
    /// Files that changed while being read.
    pub changed_while_read: u64,
}

impl Stats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records a file or directory that could not be read (skipped).
    pub fn unreadable(&self, reporter: &Reporter, path: &Path, message: &str) {
        Self::bump(&self.unreadable);
        reporter.warn(&format!("skipping {} - {message}", path.display()));
        self.log(path, message.to_owned());
    }

    /// Records a file whose size or times changed while it was read.
    pub fn changed_while_read(&self, reporter: &Reporter, path: &Path) {
        Self::bump(&self.changed_while_read);
        let message = "the file changed while it was being read; the snapshot holds the bytes \
                       read, which may be inconsistent";
        reporter.warn(&format!("{} - {message}", path.display()));
        self.log(path, message.to_owned());
    }

    fn log(&self, path: &Path, message: String) {
        use std::os::unix::ffi::OsStrExt;
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.len() < MAX_SOURCE_ERRORS {
            errors.push(SourceError {
                path: RawPath(path.as_os_str().as_bytes().to_vec()),
                message,
            });
        }
    }

    /// The source errors recorded (at most [`MAX_SOURCE_ERRORS`]).
    pub fn errors(&self) -> Vec<SourceError> {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asks the walk to stop: it fails with [`STOPPED`] after the files in hand.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether [`Stats::request_stop`] was called.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Every error, past the list's cap too.
    pub fn error_count(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed) + self.changed_while_read.load(Ordering::Relaxed)
    }

    /// A snapshot of the counters.
    pub fn counts(&self) -> Counts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counts {
            files: get(&self.files),
            files_new: get(&self.files_new),
            files_changed: get(&self.files_changed),
            files_unchanged: get(&self.files_unchanged),
            dirs: get(&self.dirs),
            dirs_new: get(&self.dirs_new),
            dirs_changed: get(&self.dirs_changed),
            dirs_unchanged: get(&self.dirs_unchanged),
            total_bytes: get(&self.total_bytes),
            bytes_read: get(&self.bytes_read),
            tree_blobs: get(&self.tree_blobs),
            unreadable: get(&self.unreadable),
            changed_while_read: get(&self.changed_while_read),
        }
    }
}
