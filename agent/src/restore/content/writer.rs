//! One writer thread: opens each downloaded chunk once and writes it to
//! every place it belongs, then finishes the files whose last write it did.

use std::sync::Arc;

use stowage_protocol::blob::BlobOpener;
use stowage_protocol::tree::FileChunk;
use tokio::sync::mpsc;

use super::files::{DirCache, Done, FileTable};
use super::plan::Use;
use super::{Batch, FileJob};
use crate::reader::RepoReader;
use crate::restore::progress::Progress;
use crate::restore::safe::{self, Target};
use crate::restore::{Problems, meta, sparse};

/// What a writer is given to do.
pub enum Work {
    /// Files without content (empty files): create and finish them.
    Empty(Vec<usize>),
    /// This writer's share of a downloaded batch: whole groups of uses of
    /// one blob, in reading order.
    Batch {
        /// The downloaded blobs (shared with the other writers).
        batch: Arc<Batch>,
        /// The uses to write.
        uses: Vec<Use>,
    },
}

/// The shared parts every writer reads.
pub struct Shared {
    pub reader: RepoReader,
    pub files: Arc<Vec<FileJob>>,
    pub table: FileTable,
    pub target: Arc<Target>,
    pub chown: bool,
    pub progress: Arc<Progress>,
}

/// One writer's state; see the module docs.
pub struct Writer<'a> {
    shared: &'a Shared,
    opener: BlobOpener,
    /// One chunk's plaintext, reused for every chunk this writer opens.
    plain: Vec<u8>,
    dirs: DirCache,
    failed: Vec<usize>,
    problems: Problems,
}

impl<'a> Writer<'a> {
    pub fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            opener: BlobOpener::new(),
            plain: Vec::new(),
            dirs: DirCache::default(),
            failed: Vec::new(),
            problems: Problems::default(),
        }
    }

    /// Works until the channel closes; returns the failed files and the problems found.
    pub fn run(mut self, mut rx: mpsc::Receiver<Work>) -> (Vec<usize>, Problems) {
        while let Some(work) = rx.blocking_recv() {
            match work {
                Work::Empty(files) => {
                    for file in files {
                        self.finish(Done {
                            file,
                            handle: None,
                            created: false,
                            failures: Vec::new(),
                        });
                    }
                }
                Work::Batch { batch, uses } => {
                    let files = &self.shared.files;
                    let id = |use_: &Use| use_.chunk_in(files).id;
                    for group in uses.chunk_by(|a, b| id(a) == id(b)) {
                        self.blob(&batch, group);
                    }
                }
            }
        }
        (self.failed, self.problems)
    }

    /// Opens one blob and writes it at every use in `group`.
    fn blob(&mut self, batch: &Batch, group: &[Use]) {
        let first = &group[0];
        let part: FileChunk = first.chunk_in(&self.shared.files);
        let opened = match batch.blobs.get(&part.id) {
            Some(Ok(sealed)) => self
                .shared
                .reader
                .open_into(&mut self.opener, sealed, &mut self.plain)
                .map_err(|error| error.to_string())
                .and_then(|()| {
                    if self.plain.len() == part.len as usize {
                        Ok(())
                    } else {
                        Err(format!(
                            "chunk {} holds {} bytes, but the snapshot says {}",
                            part.id,
                            self.plain.len(),
                            part.len
                        ))
                    }
                }),
            Some(Err(error)) => Err(error.to_string()),
            None => Err(format!("chunk {} was not downloaded", part.id)),
        };
        for use_ in group {
            let failure = match &opened {
                Ok(()) => self.write(use_),
                Err(message) => Some(message.clone()),
            };
            if let Some(done) = self.shared.table.done(use_.file, failure) {
                self.finish(done);
            }
        }
    }

    /// Writes the open chunk at `use_`; the failure, if any.
    fn write(&self, use_: &Use) -> Option<String> {
        match self.shared.table.handle(use_.file) {
            Ok(None) => None,
            Err(message) => Some(message),
            Ok(Some(handle)) => match sparse::write_sparse(&handle, use_.offset, &self.plain) {
                Ok(()) => {
                    self.shared.progress.add_bytes(self.plain.len() as u64);
                    None
                }
                Err(error) => Some(format!("writing failed - {error}")),
            },
        }
    }

    /// Completes a file whose writes are all done: sets its length and
    /// metadata and moves it onto its name, or removes it if anything failed.
    fn finish(&mut self, done: Done) {
        let shared = self.shared;
        let job = &shared.files[done.file];
        let temp = safe::partial_name(done.file);
        let dir = match self.dirs.get(&shared.target, &job.dir) {
            Ok(dir) => dir,
            Err(error) => {
                let mut messages = done.failures;
                messages.push(format!("its directory cannot be opened - {error}"));
                self.fail(done.file, messages);
                return;
            }
        };
        if !done.failures.is_empty() {
            if done.created {
                let _ = safe::remove(&dir, &temp);
            }
            self.fail(done.file, done.failures);
            return;
        }
        let file = match done.handle {
            Some(handle) => Ok(handle),
            None if done.created => safe::reopen_file(&dir, &temp).map(Arc::new),
            None => safe::create_file(&dir, &temp).map(Arc::new),
        };
        let result = file
            .map_err(|error| format!("cannot be opened to finish - {error}"))
            .and_then(|file| {
                file.set_len(job.entry.size)
                    .map_err(|e| format!("setting its length failed - {e}"))?;
                let warnings =
                    meta::apply_fd(&file, &job.entry, shared.chown).map_err(|e| e.to_string())?;
                drop(file);
                for warning in warnings {
                    self.problems.warn(&job.path(), warning);
                }
                safe::rename(&dir, &temp, &job.name)
                    .map_err(|e| format!("moving it into place failed - {e}"))
            });
        match result {
            Ok(()) => shared.progress.add_file(),
            Err(message) => {
                let _ = safe::remove(&dir, &temp);
                self.fail(done.file, vec![message]);
            }
        }
    }

    /// Records every cause of a file's failure (one error per cause, so a
    /// report grouped by cause lists the file under each).
    fn fail(&mut self, file: usize, messages: Vec<String>) {
        self.failed.push(file);
        let path = self.shared.files[file].path();
        for message in messages {
            self.problems.error(&path, message);
        }
        self.shared.progress.add_file();
    }
}
