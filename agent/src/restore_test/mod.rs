//! Restore tests: a rehearsal of a restore that proves a snapshot comes
//! back intact and measures how long that takes.
//!
//! # Steps
//! 1. The snapshot's trees are walked in full ([`crate::restore::walk`]).
//! 2. With a size cap, [`sample`] picks a deterministic sample of files
//!    (same seed, same snapshot, same files); without one, or when the
//!    whole snapshot fits, everything is restored.
//! 3. The entries are restored into a fresh [`scratch`] directory by the
//!    same code as `stowage restore` ([`crate::restore::restore_listing`]);
//!    its wall time is `restore_ms`, the figure a recovery time objective
//!    is about.
//! 4. [`check`] reads every restored file back and compares each chunk's
//!    keyed hash with the id in the snapshot's tree; its wall time is
//!    `check_ms`.
//! 5. The scratch copy is deleted, whatever happened before.
//!
//! The report is produced in every case, also when the restore or the
//! check failed, so the server records what was measured next to the error.
//!
//! # Progress
//! Files and bytes count into one [`Tally`]: first those the restore
//! writes, then those the check reads back, so a watcher sees each byte
//! twice and a rate that is that of the current step.

pub mod check;
pub mod sample;
pub mod scratch;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use stowage_protocol::api::RestoreTestReport;
use stowage_protocol::ids::{BlobId, SnapshotId};

use crate::cli::Overwrite;
use crate::reader::RepoReader;
use crate::restore::walk::{self, Filter};
use crate::restore::{self, RestoreOptions};
use crate::tally::Tally;
use scratch::Scratch;

/// Most restore problems a failed test lists in its log.
const MAX_LOGGED_PROBLEMS: usize = 50;

/// Where and how much to rehearse.
#[derive(Debug, Clone)]
pub struct RestoreTestOptions {
    /// The directory holding scratch directories (`--scratch-dir`).
    pub scratch_root: PathBuf,
    /// This test's scratch directory's name (the job's, so two tests never share one).
    pub name: String,
    /// The size cap of the sample; `None` restores everything.
    pub max_bytes: Option<u64>,
    /// Picks the sample.
    pub seed: u64,
}

/// How a restore test ended.
#[derive(Debug, Clone)]
pub struct RestoreTestOutcome {
    /// What was measured (zeros for what did not happen).
    pub report: RestoreTestReport,
    /// What happened, line by line.
    pub log: String,
    /// Why the test failed, as a sentence; `None` when it passed.
    pub error: Option<String>,
}

/// Rehearses restoring `snapshot`, whose root tree is `root` (see the
/// module docs).
pub async fn run(
    reader: &RepoReader,
    snapshot: SnapshotId,
    root: BlobId,
    options: &RestoreTestOptions,
    tally: Arc<Tally>,
) -> RestoreTestOutcome {
    let mut outcome = RestoreTestOutcome {
        report: RestoreTestReport {
            snapshot,
            files: 0,
            bytes: 0,
            restore_ms: 0,
            check_ms: 0,
            sampled: false,
        },
        log: String::new(),
        error: None,
    };
    let scratch = match Scratch::create(&options.scratch_root, &options.name) {
        Ok(scratch) => scratch,
        Err(error) => {
            outcome.error = Some(format!(
                "unable to make the scratch directory {} for the restore test - {error}",
                options.scratch_root.join(&options.name).display()
            ));
            return outcome;
        }
    };
    let rehearsal = rehearse(
        reader,
        (snapshot, root),
        options,
        &scratch,
        tally,
        &mut outcome,
    );
    if let Err(error) = rehearsal.await {
        outcome.error = Some(error);
    }
    let removed = tokio::task::spawn_blocking(move || scratch.remove()).await;
    let removed = removed.unwrap_or_else(|error| Err(format!("the removal failed - {error}")));
    if let Err(error) = removed {
        let _ = writeln!(outcome.log, "{error}");
        outcome.error.get_or_insert(error);
    }
    outcome
}

/// Steps 1 to 4, filling in `outcome` as they go.
async fn rehearse(
    reader: &RepoReader,
    (id, root): (SnapshotId, BlobId),
    options: &RestoreTestOptions,
    scratch: &Scratch,
    tally: Arc<Tally>,
    outcome: &mut RestoreTestOutcome,
) -> Result<(), String> {
    let listing = walk::walk(reader, root, &Filter::default())
        .await
        .map_err(|error| format!("unable to read the trees of snapshot {id} - {error}"))?;
    let sample = sample::choose(listing, options.max_bytes, options.seed)
        .map_err(|error| format!("snapshot {id}: {error}"))?;
    outcome.report.sampled = sample.sampled;
    let restore_options = RestoreOptions {
        overwrite: Overwrite::Always,
        filter: Filter::default(),
        show_progress: false,
        tally: Arc::clone(&tally),
    };
    let began = Instant::now();
    let summary = restore::restore_listing(
        reader,
        sample.listing,
        scratch.path(),
        &restore_options,
        began,
    )
    .await
    .map_err(|error| format!("the restore of snapshot {id} failed - {error:#}"))?;
    outcome.report.restore_ms = millis(began);
    let _ = writeln!(
        outcome.log,
        "restored {} files ({} bytes) of snapshot {id}{} in {} ms",
        summary.counts.files,
        summary.bytes,
        if sample.sampled { " (a sample)" } else { "" },
        outcome.report.restore_ms
    );
    for (path, warning) in &summary.problems.warnings {
        let _ = writeln!(
            outcome.log,
            "warning: {}: {warning}",
            String::from_utf8_lossy(path)
        );
    }
    if let Some((path, first)) = summary.problems.errors.first() {
        for (path, error) in summary.problems.errors.iter().take(MAX_LOGGED_PROBLEMS) {
            let _ = writeln!(
                outcome.log,
                "error: {}: {error}",
                String::from_utf8_lossy(path)
            );
        }
        return Err(format!(
            "the restore of snapshot {id} left {} entries not restored, the first {:?}: {first}",
            summary.problems.errors.len(),
            String::from_utf8_lossy(path)
        ));
    }
    let began = Instant::now();
    let (target, key) = (scratch.path().to_path_buf(), reader.keys().id_key.clone());
    let checked =
        tokio::task::spawn_blocking(move || check::check_all(&target, &sample.files, &key, &tally))
            .await
            .map_err(|error| format!("the check of the restored files stopped - {error}"))?;
    outcome.report.check_ms = millis(began);
    let (counted, result) = match checked {
        Ok(counted) => (counted, Ok(())),
        Err((counted, error)) => (counted, Err(error.to_string())),
    };
    outcome.report.files = counted.files;
    outcome.report.bytes = counted.bytes;
    let _ = writeln!(
        outcome.log,
        "checked {} files ({} bytes) against the snapshot in {} ms",
        counted.files, counted.bytes, outcome.report.check_ms
    );
    result
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
