//! The files a restore is writing: created on their first chunk, kept open
//! (at most [`MAX_OPEN`] at once), finished when their last chunk is written.
//!
//! Chunks arrive in pack order, so one file's chunks come in any order and
//! from any writer thread; every write is positioned (`pwrite`), and the
//! writers share one handle per file. Each file counts the writes it still
//! needs; the writer that brings the count to zero finishes the file
//! (length, metadata, rename onto its real name) or, if any chunk failed,
//! removes the partial file. A file whose first chunk failed is never
//! created, and no write is spent on a file that has already failed.
//!
//! Reading a pack at a time means a file may wait for a pack far ahead
//! (an incremental snapshot's unchanged chunks sit in old packs), so many
//! files can be started at once. Past [`MAX_OPEN`] open files the one
//! used longest ago, and not being written right now, is closed; its next
//! chunk opens it again (never following a symlink, see [`safe::reopen_file`]).

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, PoisonError};

use super::FileJob;
use crate::restore::safe::{self, Target};

/// Files held open at once, beyond those being written at this moment.
/// Far below the usual limit of 1024 descriptors, and enough that the
/// files of a few packs in flight never need reopening.
pub const MAX_OPEN: usize = 128;

/// A file whose writes are all done: to finish, or to remove.
#[derive(Debug)]
pub struct Done {
    /// Index of the file.
    pub file: usize,
    /// The open handle, if the file was created and is still open.
    pub handle: Option<Arc<File>>,
    /// Whether the partial file exists.
    pub created: bool,
    /// Every distinct cause of failure; empty when all chunks were written.
    pub failures: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    left: u32,
    created: bool,
    handle: Option<Arc<File>>,
    last_used: u64,
    failures: Vec<String>,
}

#[derive(Debug)]
struct Inner {
    states: Vec<State>,
    /// Files whose `handle` is set.
    open: Vec<usize>,
    tick: u64,
    dir: DirCache,
}

/// The restore's files and their progress.
#[derive(Debug)]
pub struct FileTable {
    jobs: Arc<Vec<FileJob>>,
    target: Arc<Target>,
    inner: Mutex<Inner>,
}

impl FileTable {
    /// A table for `jobs`, where `left[i]` is the number of writes file `i` needs.
    pub fn new(jobs: Arc<Vec<FileJob>>, target: Arc<Target>, left: &[u32]) -> Self {
        let states = left
            .iter()
            .map(|&left| State {
                left,
                ..State::default()
            })
            .collect();
        Self {
            jobs,
            target,
            inner: Mutex::new(Inner {
                states,
                open: Vec::new(),
                tick: 0,
                dir: DirCache::default(),
            }),
        }
    }

    /// The handle to write file `file` through, creating or reopening it;
    /// `Ok(None)` when the file has already failed and is not worth writing.
    ///
    /// # Errors
    ///
    /// Why the file could not be created or reopened, as a message.
    pub fn handle(&self, file: usize) -> Result<Option<Arc<File>>, String> {
        let mut inner = self.lock();
        let Inner {
            states,
            open,
            tick,
            dir,
        } = &mut *inner;
        *tick += 1;
        let state = &mut states[file];
        if !state.failures.is_empty() {
            return Ok(None);
        }
        state.last_used = *tick;
        if let Some(handle) = &state.handle {
            return Ok(Some(Arc::clone(handle)));
        }
        let job = &self.jobs[file];
        let temp = safe::partial_name(file);
        let opened = dir.get(&self.target, &job.dir).and_then(|dir| {
            if state.created {
                safe::reopen_file(&dir, &temp)
            } else {
                safe::create_file(&dir, &temp)
            }
        });
        let handle = match opened {
            Ok(opened) => Arc::new(opened),
            Err(error) if state.created => {
                return Err(format!("its partial file cannot be opened again - {error}"));
            }
            Err(error) => return Err(format!("cannot be created - {error}")),
        };
        state.created = true;
        state.handle = Some(Arc::clone(&handle));
        open.push(file);
        if open.len() > MAX_OPEN {
            close_idlest(states, open);
        }
        Ok(Some(handle))
    }

    /// Records one write of `file` as done (with its failure, if any); the
    /// caller must have dropped the handle it wrote through. Returns the
    /// file when that was its last write.
    pub fn done(&self, file: usize, failure: Option<String>) -> Option<Done> {
        let mut inner = self.lock();
        let state = &mut inner.states[file];
        if let Some(failure) = failure
            && !state.failures.contains(&failure)
        {
            state.failures.push(failure);
        }
        state.left = state.left.saturating_sub(1);
        if state.left > 0 {
            return None;
        }
        let done = Done {
            file,
            handle: state.handle.take(),
            created: state.created,
            failures: std::mem::take(&mut state.failures),
        };
        if done.handle.is_some() {
            inner.open.retain(|&f| f != file);
        }
        Some(done)
    }

    /// The files that need no write at all (empty files), to finish first.
    pub fn without_writes(&self) -> Vec<usize> {
        let inner = self.lock();
        (0..inner.states.len())
            .filter(|&file| inner.states[file].left == 0)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the open file used longest ago that no writer holds right now.
fn close_idlest(states: &mut [State], open: &mut Vec<usize>) {
    let idlest = open
        .iter()
        .enumerate()
        .filter(|(_, file)| {
            states[**file]
                .handle
                .as_ref()
                .is_some_and(|h| Arc::strong_count(h) == 1)
        })
        .min_by_key(|(_, file)| states[**file].last_used)
        .map(|(position, _)| position);
    if let Some(position) = idlest {
        let file = open.swap_remove(position);
        states[file].handle = None;
    }
}

/// The directory of the last file opened, so consecutive files of one
/// directory do not walk the path again.
#[derive(Debug, Default)]
pub struct DirCache {
    last: Option<(Vec<u8>, OwnedFd)>,
}

impl DirCache {
    /// A descriptor of `relative` (a directory under the target).
    ///
    /// # Errors
    ///
    /// The directory cannot be opened safely.
    pub fn get(&mut self, target: &Target, relative: &[u8]) -> io::Result<OwnedFd> {
        if let Some((path, fd)) = &self.last
            && path == relative
        {
            return fd.try_clone();
        }
        let fd = target.open_dir(relative)?;
        let copy = fd.try_clone()?;
        self.last = Some((relative.to_vec(), fd));
        Ok(copy)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    fn table(dir: &std::path::Path, files: usize, writes: u32) -> FileTable {
        let jobs = (0..files)
            .map(|n| FileJob {
                dir: Vec::new(),
                name: format!("f{n}").into_bytes(),
                entry: crate::restore::tests::file("f", 0o644, 0, None),
            })
            .collect();
        let target = Arc::new(Target::open(dir).unwrap());
        FileTable::new(Arc::new(jobs), target, &vec![writes; files])
    }

    #[test]
    fn files_past_the_open_limit_are_closed_and_reopened_without_losing_writes() {
        // Arrange: more files than may be open, each written twice.
        let dir = tempfile::tempdir().unwrap();
        let count = MAX_OPEN + 20;
        let table = table(dir.path(), count, 2);

        // Act: every file's first byte, then every file's second.
        for file in 0..count {
            let handle = table.handle(file).unwrap().unwrap();
            handle.write_all_at(b"a", 0).unwrap();
            drop(handle);
            assert!(table.done(file, None).is_none());
        }
        let open_after_first_pass = table.lock().open.len();
        let mut done = Vec::new();
        for file in 0..count {
            let handle = table.handle(file).unwrap().unwrap();
            handle.write_all_at(b"b", 1).unwrap();
            drop(handle);
            done.push(table.done(file, None).unwrap());
        }

        // Assert
        assert_eq!(open_after_first_pass, MAX_OPEN);
        assert!(table.lock().open.is_empty());
        for finished in done {
            assert!(finished.created && finished.failures.is_empty());
            let path = dir
                .path()
                .join(std::str::from_utf8(&safe::partial_name(finished.file)).unwrap());
            assert_eq!(std::fs::read(path).unwrap(), b"ab");
        }
    }

    #[test]
    fn a_file_whose_first_chunk_failed_is_never_created_nor_written() {
        let dir = tempfile::tempdir().unwrap();
        let table = table(dir.path(), 1, 3);

        assert!(table.done(0, Some("chunk x is damaged".into())).is_none());
        assert!(table.handle(0).unwrap().is_none());
        assert!(table.done(0, Some("chunk x is damaged".into())).is_none());
        let finished = table.done(0, None).unwrap();

        assert!(!finished.created && finished.handle.is_none());
        assert_eq!(finished.failures, ["chunk x is damaged"]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_partial_file_replaced_by_a_symlink_is_not_followed_when_reopened() {
        // Arrange: a file written once, then closed by the open limit.
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let table = table(dir.path(), MAX_OPEN + 1, 2);
        for file in 0..=MAX_OPEN {
            drop(table.handle(file).unwrap().unwrap());
            table.done(file, None);
        }
        let temp = dir
            .path()
            .join(std::str::from_utf8(&safe::partial_name(0)).unwrap());
        std::fs::remove_file(&temp).unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &temp).unwrap();

        // Act
        let error = table.handle(0).unwrap_err();

        // Assert
        assert!(error.contains("cannot be opened again"), "{error}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
