//! `stowage daemon`: the agent as a service. It asks the server for this
//! agent's jobs (a long poll, so a queued job starts within a second or
//! two), runs each one, keeps its lease alive while it runs, and reports
//! how it ended, with the summary as the job's log.
//!
//! - **Unreachable server:** waits with jittered exponential backoff (1 s
//!   doubling to 5 minutes) and tries again; a server restart costs one
//!   failed poll. Every failure is printed (the journal, under systemd).
//! - **One job at a time:** so one backup per plan runs at a time, and the
//!   next job waits in the queue, not on this machine.
//! - **Shutdown:** SIGTERM or SIGINT stops taking jobs; a job already
//!   running is finished (and reported) first.
//! - **Priority:** backups run at low CPU and I/O priority unless
//!   `--normal-priority` says otherwise: a scheduled backup should not slow
//!   the machine it protects.
//!
//! Job kinds other than backup (restore, verify, restore tests) are
//! reported as failed with the reason, until this agent learns them.

use std::path::PathBuf;
use std::time::Duration;

use stowage_protocol::api::{ClaimedJob, JobFinish, JobProgress, JobWork};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{BackupArgs, DaemonArgs, Global, Outcome};
use crate::commands::backup;
use crate::context::AgentContext;

/// How long one poll waits for a job at the server.
const CLAIM_WAIT_SECONDS: u32 = 30;
/// How often a running job's lease is renewed (the server's lease is 10 minutes).
const RENEW_EVERY: Duration = Duration::from_mins(1);
/// First pause after a failed poll; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between polls of an unreachable server.
const MAX_BACKOFF: Duration = Duration::from_mins(5);

/// Runs `stowage daemon` until SIGTERM or SIGINT.
///
/// # Errors
///
/// Not enrolled, or the signal handlers cannot be installed.
pub async fn run(global: &Global, args: DaemonArgs) -> anyhow::Result<Outcome> {
    let context = AgentContext::load(global)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    eprintln!(
        "stowage daemon: agent {} waiting for jobs from {}",
        context.profile.agent_id, context.profile.server
    );
    let mut failures = 0u32;
    loop {
        let claimed = tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            claimed = context.client.claim_job(CLAIM_WAIT_SECONDS) => claimed,
        };
        match claimed {
            Ok(None) => failures = 0,
            Ok(Some(job)) => {
                failures = 0;
                run_job(global, &context, &args, job).await;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let pause = backoff(failures);
                eprintln!(
                    "stowage daemon: cannot take jobs from the server ({error}); trying again in {}s",
                    pause.as_secs()
                );
                tokio::select! {
                    _ = terminate.recv() => break,
                    _ = interrupt.recv() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    eprintln!("stowage daemon: stopped");
    Ok(Outcome::Success)
}

/// The pause after `failures` failed polls in a row: doubling from
/// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], less up to a quarter at random
/// so that agents cut off together do not all come back at once.
fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let pause = doubled.min(MAX_BACKOFF);
    let mut random = [0u8; 2];
    let jitter = if getrandom::fill(&mut random).is_ok() {
        f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX) / 4.0
    } else {
        0.0
    };
    pause.mul_f64(1.0 - jitter)
}

/// Runs one claimed job, renewing its lease meanwhile, and reports the end.
async fn run_job(global: &Global, context: &AgentContext, args: &DaemonArgs, job: ClaimedJob) {
    eprintln!(
        "stowage daemon: job {} ({}) started",
        job.job_id,
        job.work.kind()
    );
    let renewer = {
        let (client, id) = (context.client.clone(), job.job_id);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let progress = JobProgress::default();
                if let Err(error) = client.job_progress(&id, progress).await {
                    eprintln!("stowage daemon: job {id}: renewing its lease failed ({error})");
                }
            }
        })
    };
    let finish = match job.work {
        JobWork::Backup(spec) => {
            let backup_args = BackupArgs {
                paths: spec.paths.into_iter().map(PathBuf::from).collect(),
                exclude: spec.excludes,
                exclude_file: Vec::new(),
                one_file_system: false,
                tags: Vec::new(),
                stdin_name: spec.stdin_name,
                command: spec.command,
                limit_upload: None,
                low_priority: !args.normal_priority,
                host: None,
                json: false,
            };
            match backup::run_for_plan(global, backup_args, job.plan_id, std::sync::Arc::default())
                .await
            {
                Ok(done) => JobFinish {
                    error: None,
                    progress: JobProgress {
                        bytes: done.bytes_read,
                        files: done.files,
                        bytes_per_second: 0,
                    },
                    log: if matches!(done.outcome, Outcome::Partial) {
                        format!(
                            "{}some source files could not be read (see the snapshot's error log)\n",
                            done.summary
                        )
                    } else {
                        done.summary
                    },
                    restore_test: None,
                },
                Err(error) => failed(format!("{error:#}")),
            }
        }
        other => failed(format!("this agent does not run {} jobs yet", other.kind())),
    };
    renewer.abort();
    let outcome = finish
        .error
        .clone()
        .unwrap_or_else(|| "succeeded".to_owned());
    match context.client.finish_job(&job.job_id, &finish).await {
        Ok(()) => eprintln!("stowage daemon: job {} ended: {outcome}", job.job_id),
        Err(error) => eprintln!(
            "stowage daemon: job {} ended ({outcome}) but the server did not take the report ({error})",
            job.job_id
        ),
    }
}

fn failed(error: String) -> JobFinish {
    JobFinish {
        log: error.clone(),
        error: Some(error),
        progress: JobProgress::default(),
        restore_test: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_five_minutes_with_at_most_a_quarter_off() {
        for (failures, full) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)] {
            let pause = backoff(failures).as_secs_f64();
            let full = f64::from(full);
            assert!(pause <= full && pause >= full * 0.75, "{failures}: {pause}");
        }
    }
}
