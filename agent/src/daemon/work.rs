//! What each kind of job does, with the agent's own commands' code: a
//! backup is `stowage backup` for the job's plan, a restore and a verify
//! go through [`crate::restore`] and [`crate::verify`] as `stowage
//! restore` and `stowage verify` do, and a restore test is
//! [`crate::restore_test`]. Each turns its outcome into the [`JobFinish`]
//! the server records: the error as a sentence, the final counts, and the
//! summary lines as the job's log.
//!
//! A job names its snapshot by id, which any agent of the tenant may read,
//! so a restore or test may use another machine's snapshot. A restore job
//! uses the default overwrite policy (`if-changed`), and its target must be
//! absolute: a daemon's working directory means nothing to whoever queued
//! the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use stowage_protocol::api::{
    ClaimedJob, JobBackup, JobFinish, JobProgress, JobRestore, JobRestoreTest, JobVerify, JobWork,
    SnapshotListItem,
};
use stowage_protocol::ids::SnapshotId;

use super::progress::Counters;
use crate::cli::{BackupArgs, Global, Outcome, Overwrite};
use crate::commands::{backup, restore as restore_command, verify as verify_command};
use crate::context::AgentContext;
use crate::reader::RepoReader;
use crate::restore::walk::{self, Filter, Start};
use crate::restore::{self, RestoreOptions};
use crate::restore_test::{self, RestoreTestOptions};
use crate::snapshot_select;
use crate::tally::Tally;
use crate::throttle::Throttle;
use crate::verify::{VerifyOptions, verify};

/// The daemon's settings that jobs use.
#[derive(Debug, Clone)]
pub struct WorkOptions {
    /// Run backups at normal priority rather than low.
    pub normal_priority: bool,
    /// Where restore tests make their scratch directories.
    pub scratch_root: PathBuf,
}

/// Runs `job`, counting into `counters` (made for it by [`Counters::for_work`]).
pub async fn run(
    global: &Global,
    context: &AgentContext,
    options: &WorkOptions,
    job: &ClaimedJob,
    counters: &Counters,
) -> JobFinish {
    let tally = match counters {
        Counters::Tally(tally) => Arc::clone(tally),
        _ => Arc::default(),
    };
    let result = match &job.work {
        JobWork::Backup(spec) => {
            let stats = match counters {
                Counters::Backup(stats) => Arc::clone(stats),
                _ => Arc::default(),
            };
            run_backup(global, options, job, spec, stats).await
        }
        JobWork::Restore(spec) => run_restore(context, spec, tally).await,
        JobWork::Verify(spec) => run_verify(context, spec).await,
        JobWork::RestoreTest(spec) => {
            let name = format!("stowage-restore-test-{}", job.job_id);
            let test_options = RestoreTestOptions {
                scratch_root: options.scratch_root.clone(),
                name,
                max_bytes: spec.max_bytes,
                seed: spec.seed,
            };
            run_restore_test(context, spec, &test_options, tally).await
        }
    };
    result.unwrap_or_else(|error| failed(format!("{error:#}")))
}

/// A job that failed before it produced anything else.
pub fn failed(error: String) -> JobFinish {
    JobFinish {
        log: format!("{error}\n"),
        error: Some(error),
        progress: JobProgress::default(),
        restore_test: None,
    }
}

async fn run_backup(
    global: &Global,
    options: &WorkOptions,
    job: &ClaimedJob,
    spec: &JobBackup,
    stats: Arc<crate::backup::stats::Stats>,
) -> anyhow::Result<JobFinish> {
    let args = BackupArgs {
        paths: spec.paths.iter().map(PathBuf::from).collect(),
        exclude: spec.excludes.clone(),
        exclude_file: Vec::new(),
        one_file_system: false,
        tags: Vec::new(),
        stdin_name: spec.stdin_name.clone(),
        command: spec.command.clone(),
        limit_upload: None,
        low_priority: !options.normal_priority,
        host: None,
        time: None,
        json: false,
    };
    let done = backup::run_for_plan(global, args, job.plan_id, stats).await?;
    let mut log = done.summary;
    if matches!(done.outcome, Outcome::Partial) {
        log.push_str("some source files could not be read (see the snapshot's error log)\n");
    }
    Ok(JobFinish {
        error: None,
        progress: counts(done.bytes_read, done.files),
        log,
        restore_test: None,
    })
}

async fn run_restore(
    context: &AgentContext,
    spec: &JobRestore,
    tally: Arc<Tally>,
) -> anyhow::Result<JobFinish> {
    let target = absolute_target(&spec.target)?;
    let (item, reader) = open_snapshot(context, &spec.snapshot, "restore a backup").await?;
    for path in &spec.paths {
        walk::resolve(&reader, item.record.root, path.as_bytes())
            .await
            .with_context(|| format!("snapshot {} has nothing to restore at {path:?}", item.id))?;
    }
    let options = RestoreOptions {
        overwrite: Overwrite::IfChanged,
        filter: Filter::new(spec.paths.iter().map(String::as_bytes)),
        show_progress: false,
        tally,
    };
    let summary =
        restore::restore(&reader, Start::Tree(item.record.root), target, &options).await?;
    let mut log = restore_command::summary_line(&summary, target);
    for line in restore_command::problem_lines(&summary.problems) {
        log.push('\n');
        log.push_str(&line);
    }
    log.push('\n');
    let failed = restore_command::failed_entries(&summary.problems);
    Ok(JobFinish {
        error: (failed > 0).then(|| {
            format!(
                "the restore of snapshot {} into {} left {failed} entries not restored (listed in \
                 the log)",
                item.id, spec.target
            )
        }),
        progress: counts(summary.bytes, summary.counts.files),
        log,
        restore_test: None,
    })
}

async fn run_verify(context: &AgentContext, spec: &JobVerify) -> anyhow::Result<JobFinish> {
    let (item, _) = open_snapshot(context, &spec.snapshot, "verify backups").await?;
    let options = VerifyOptions {
        read_data: spec.read_data,
        limit_download: None,
    };
    let report = verify(context, std::slice::from_ref(&item), options, |_| {}).await?;
    let mut log = String::new();
    for line in verify_command::problem_lines(&report) {
        log.push_str(&line);
        log.push('\n');
    }
    log.push_str(&verify_command::summary_line(&report));
    log.push('\n');
    Ok(JobFinish {
        error: (!report.problems.is_empty()).then(|| {
            format!(
                "the verify of snapshot {} found {} problem(s) affecting {} file(s) (listed in the \
                 log)",
                item.id,
                report.problems.len(),
                report.affected_file_count
            )
        }),
        progress: counts(report.bytes_read, report.files),
        log,
        restore_test: None,
    })
}

async fn run_restore_test(
    context: &AgentContext,
    spec: &JobRestoreTest,
    options: &RestoreTestOptions,
    tally: Arc<Tally>,
) -> anyhow::Result<JobFinish> {
    let (item, reader) = open_snapshot(context, &spec.snapshot, "restore a backup").await?;
    let outcome = restore_test::run(&reader, item.id, item.record.root, options, tally).await;
    let mut log = outcome.log;
    if let Some(error) = &outcome.error {
        log.push_str(error);
        log.push('\n');
    }
    Ok(JobFinish {
        error: outcome.error,
        progress: counts(outcome.report.bytes, outcome.report.files),
        log,
        restore_test: Some(outcome.report),
    })
}

/// The snapshot `id` (of any agent of the tenant) and a reader for it.
async fn open_snapshot(
    context: &AgentContext,
    id: &SnapshotId,
    what: &str,
) -> anyhow::Result<(SnapshotListItem, RepoReader)> {
    let keys = context.reading_keys(what)?.clone();
    let item = snapshot_select::resolve(&context.client, &id.to_hex(), "").await?;
    let throttle = Arc::new(Throttle::new(None));
    Ok((
        item,
        RepoReader::new(context.client.clone(), keys, throttle),
    ))
}

/// The restore target as a path, refused unless absolute.
fn absolute_target(target: &str) -> anyhow::Result<&Path> {
    let path = Path::new(target);
    if !path.is_absolute() {
        anyhow::bail!(
            "the restore target {target:?} is a relative path; a restore job needs an absolute \
             directory"
        );
    }
    Ok(path)
}

fn counts(bytes: u64, files: u64) -> JobProgress {
    JobProgress {
        bytes,
        files,
        bytes_per_second: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_restore_target_is_refused_with_a_sentence_naming_it() {
        // Act
        let relative = absolute_target("restored/here").unwrap_err();
        let absolute = absolute_target("/srv/restored").unwrap();
        // Assert
        assert_eq!(
            relative.to_string(),
            "the restore target \"restored/here\" is a relative path; a restore job needs an \
             absolute directory"
        );
        assert_eq!(absolute, Path::new("/srv/restored"));
    }
}
