//! Restoring a snapshot (or part of one) into a directory, byte-identical
//! and safely, whatever the snapshot holds.
//!
//! # Passes
//! 1. [`walk`]: the trees are read level by level into a flat listing
//!    (filtered by `--include`).
//! 2. [`prepare`]: directories are made, the `--overwrite` policy decided,
//!    symlinks, fifos and device nodes made; files and hard links listed.
//! 3. [`content`]: file contents downloaded pack by pack (long range
//!    reads, in parallel) and each chunk written wherever it belongs, out
//!    of order within a file (sparse, under temporary names, renamed into
//!    place only when complete).
//! 4. [`finish`]: hard links, then directory metadata, deepest first.
//!
//! # Safety
//! Every file-system operation goes through [`safe`]: no name with `/`,
//! NUL, `.` or `..` is used, no symlink is ever followed below the target,
//! and nothing is created outside it.
//!
//! # Failures
//! A damaged or missing chunk fails only the files that need it: each is
//! named with the blob and pack, its temporary file removed (so it is never
//! left looking complete), and the restore goes on. The caller gets every
//! problem in [`Summary`] and turns errors into a non-zero exit.

pub mod content;
pub mod finish;
pub mod meta;
pub mod prepare;
pub mod progress;
pub mod safe;
pub mod sparse;
pub mod walk;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use stowage_protocol::tree::EntryContent;

use crate::cli::Overwrite;
use crate::reader::RepoReader;
use progress::Progress;
use walk::{Filter, Listing, Node, Start};

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// What to do with entries already in the target.
    pub overwrite: Overwrite,
    /// Only these paths (relative to the start), or everything.
    pub filter: Filter,
    /// Show a progress bar on standard error.
    pub show_progress: bool,
    /// Where files and bytes written are counted, for a watcher (the
    /// daemon's progress reports); a fresh one when nobody watches.
    pub tally: Arc<crate::tally::Tally>,
}

/// How many entries of each kind were restored or skipped.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// Regular files written.
    pub files: u64,
    /// Directories made or reused.
    pub dirs: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Symlinks, fifos and device nodes made.
    pub special: u64,
    /// Entries left as they were by the overwrite policy.
    pub skipped: u64,
}

/// Errors and warnings, each with the path it concerns (relative to the target).
#[derive(Debug, Clone, Default)]
pub struct Problems {
    /// What failed to restore; any makes the restore fail.
    pub errors: Vec<(Vec<u8>, String)>,
    /// What was restored incompletely but does not fail the restore.
    pub warnings: Vec<(Vec<u8>, String)>,
}

impl Problems {
    /// Records an error about `path`.
    pub fn error(&mut self, path: &[u8], message: impl Into<String>) {
        self.errors.push((path.to_vec(), message.into()));
    }

    /// Records a warning about `path`.
    pub fn warn(&mut self, path: &[u8], message: impl Into<String>) {
        self.warnings.push((path.to_vec(), message.into()));
    }

    /// Adds `other`'s problems to these.
    pub fn merge(&mut self, other: Self) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Entries restored or skipped.
    pub counts: Counts,
    /// Content bytes written.
    pub bytes: u64,
    /// Wall time.
    pub duration: Duration,
    /// Everything that went wrong.
    pub problems: Problems,
}

/// Joins a directory path and a name with `/` (the name alone at the top).
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Splits a relative path into its directory and its last component.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&[], path),
    }
}

/// Restores `start` (a tree, or one entry) into the directory `target`.
///
/// # Errors
///
/// The target cannot be created or opened, or the server cannot say where
/// trees or chunks are. Everything else is reported in the [`Summary`].
pub async fn restore(
    reader: &RepoReader,
    start: Start,
    target: &Path,
    options: &RestoreOptions,
) -> anyhow::Result<Summary> {
    let began = Instant::now();
    let listing = match start {
        Start::Tree(tree) => walk::walk(reader, tree, &options.filter).await?,
        Start::Entry(entry) => Listing {
            nodes: vec![Node {
                path: entry.name.as_bytes().to_vec(),
                parent: None,
                entry,
            }],
            errors: Vec::new(),
        },
    };
    restore_listing(reader, listing, target, options, began).await
}

/// Restores the entries of a walk into `target`; see [`restore`].
///
/// # Errors
///
/// As [`restore`].
pub async fn restore_listing(
    reader: &RepoReader,
    listing: Listing,
    target: &Path,
    options: &RestoreOptions,
    began: Instant,
) -> anyhow::Result<Summary> {
    let mut problems = Problems::default();
    for (path, error) in listing.errors {
        problems.error(&path, format!("directory contents not restored - {error}"));
    }
    let target =
        Arc::new(safe::Target::open(target).map_err(|e| {
            anyhow::anyhow!("unable to open the target {} - {e}", target.display())
        })?);
    let (total_files, total_bytes) = totals(&listing.nodes);
    let chown = meta::running_as_root();
    let overwrite = options.overwrite;
    let nodes = listing.nodes;
    let prepared = {
        let target = Arc::clone(&target);
        tokio::task::spawn_blocking(move || prepare::prepare(&target, nodes, overwrite, chown))
            .await?
    };
    let prepare::Prepared {
        files,
        links,
        dirs,
        mut counts,
        problems: found,
    } = prepared;
    problems.merge(found);

    let progress = Arc::new(Progress::new(
        total_files,
        total_bytes,
        options.show_progress,
        Arc::clone(&options.tally),
    ));
    let files = Arc::new(files);
    let (written, found) = content::restore(
        reader,
        Arc::clone(&target),
        Arc::clone(&files),
        chown,
        Arc::clone(&progress),
    )
    .await?;
    progress.finish();
    problems.merge(found);
    counts.files = written.iter().filter(|ok| **ok).count() as u64;

    let (counts, problems) = tokio::task::spawn_blocking(move || {
        let mut counts = counts;
        let mut problems = problems;
        finish::link(
            &target,
            &files,
            &written,
            &links,
            &mut counts,
            &mut problems,
        );
        finish::directories(&target, &dirs, chown, &mut problems);
        (counts, problems)
    })
    .await?;
    Ok(Summary {
        counts,
        bytes: progress.bytes(),
        duration: began.elapsed(),
        problems,
    })
}

/// Files and content bytes in the listing, for the progress bar.
fn totals(nodes: &[Node]) -> (u64, u64) {
    nodes
        .iter()
        .filter(|n| matches!(n.entry.content, EntryContent::File { .. }))
        .fold((0, 0), |(files, bytes), n| {
            (files + 1, bytes + n.entry.size)
        })
}

#[cfg(test)]
pub(crate) mod tests;
