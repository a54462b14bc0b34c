//! `stowage daemon`: the agent as a service. It asks the server for this
//! agent's jobs (a long poll, so a queued job starts within a second or
//! two), runs each one (see [`crate::daemon`]), reports its progress every
//! 10 s — which keeps its lease — and reports how it ended, with the
//! summary as the job's log.
//!
//! - **Unreachable server:** waits with jittered exponential backoff (1 s
//!   doubling to 5 minutes) and tries again; a server restart costs one
//!   failed poll. Every failure is printed (the journal, under systemd).
//! - **One job at a time:** so one backup per plan runs at a time, and the
//!   next job waits in the queue, not on this machine.
//! - **Lost lease:** when the server answers a progress report with 404,
//!   the job is no longer this agent's: it is stopped and not reported.
//! - **Presence:** the first claim, and one every 5 minutes after, carry
//!   the host's facts (version, OS, host name, free space).
//! - **Shutdown:** SIGTERM or SIGINT stops taking jobs; a running job gets
//!   `--stop-grace` (5 minutes) to finish and report, and is then
//!   abandoned and reported as interrupted; a second signal abandons it at
//!   once.
//! - **Priority:** backups run at low CPU and I/O priority unless
//!   `--normal-priority` says otherwise: a scheduled backup should not slow
//!   the machine it protects.

use std::time::Duration;

use stowage_protocol::api::{ClaimedJob, JobFinish, JobWork};
use tokio::time::Instant;

use crate::cli::{DaemonArgs, Global, Outcome};
use crate::context::AgentContext;
use crate::daemon::facts::Presence;
use crate::daemon::progress::{self, Counters};
use crate::daemon::shutdown::Shutdown;
use crate::daemon::supervise::{self, Ending};
use crate::daemon::work::{self, WorkOptions};

/// How long one poll waits for a job at the server.
const CLAIM_WAIT_SECONDS: u32 = 30;
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
    let mut shutdown = Shutdown::listen()?;
    let options = WorkOptions {
        normal_priority: args.normal_priority,
        scratch_root: args.scratch_dir.clone().unwrap_or_else(std::env::temp_dir),
    };
    let mut presence = Presence::default();
    eprintln!(
        "stowage daemon: agent {} waiting for jobs from {}",
        context.profile.agent_id, context.profile.server
    );
    let mut failures = 0u32;
    while !shutdown.requested() {
        let facts = presence.due(Instant::now());
        let sends_facts = facts.is_some();
        let claimed = tokio::select! {
            () = shutdown.wait() => break,
            claimed = context.client.claim_job(CLAIM_WAIT_SECONDS, facts) => claimed,
        };
        match claimed {
            Ok(job) => {
                failures = 0;
                if sends_facts {
                    presence.sent(Instant::now());
                }
                if let Some(job) = job {
                    if let JobWork::Backup(spec) = &job.work {
                        presence.note_sources(&spec.paths);
                    }
                    run_job(global, &context, &options, &args, &mut shutdown, job).await;
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let pause = backoff(failures);
                eprintln!(
                    "stowage daemon: cannot take jobs from the server ({error}); trying again in {}s",
                    pause.as_secs()
                );
                tokio::select! {
                    () = shutdown.wait() => break,
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

/// Runs one claimed job, reporting its progress meanwhile, and reports
/// its end — unless the server took it back.
async fn run_job(
    global: &Global,
    context: &AgentContext,
    options: &WorkOptions,
    args: &DaemonArgs,
    shutdown: &mut Shutdown,
    job: ClaimedJob,
) {
    let id = job.job_id;
    let kind = job.work.kind();
    eprintln!("stowage daemon: job {id} ({kind}) started");
    let began = Instant::now();
    let counters = Counters::for_work(&job.work);
    let work = work::run(global, context, options, &job, &counters);
    let lost = progress::keep_reporting(&counters, |progress| {
        let client = context.client.clone();
        async move { client.job_progress(&id, progress).await.map(drop) }
    });
    let mut finish = match supervise::supervise(work, lost, shutdown, args.stop_grace.0).await {
        Ending::Finished(finish) => finish,
        Ending::Lost => {
            counters.stop();
            eprintln!(
                "stowage daemon: job {id} is no longer this agent's (its lease ran out at the \
                 server); stopped it without reporting"
            );
            return;
        }
        Ending::Interrupted(how) => {
            counters.stop();
            supervise::interrupted(kind, how, counters.progress())
        }
    };
    average_rate(&mut finish, began.elapsed());
    report(context, &id, &finish).await;
}

/// Fills in the job's average rate when the job gave none.
fn average_rate(finish: &mut JobFinish, took: Duration) {
    let progress = &mut finish.progress;
    if progress.bytes_per_second == 0 && took.as_millis() > 0 {
        let per_second = u128::from(progress.bytes) * 1000 / took.as_millis();
        progress.bytes_per_second = u64::try_from(per_second).unwrap_or(u64::MAX);
    }
}

async fn report(context: &AgentContext, id: &stowage_protocol::ids::JobId, finish: &JobFinish) {
    let outcome = finish.error.as_deref().unwrap_or("succeeded");
    match context.client.finish_job(id, finish).await {
        Ok(()) => eprintln!("stowage daemon: job {id} ended: {outcome}"),
        Err(error) => eprintln!(
            "stowage daemon: job {id} ended ({outcome}) but the server did not take the report ({error})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use stowage_protocol::api::JobProgress;

    use super::*;

    #[test]
    fn the_backoff_doubles_to_five_minutes_with_at_most_a_quarter_off() {
        for (failures, full) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)] {
            let pause = backoff(failures).as_secs_f64();
            let full = f64::from(full);
            assert!(pause <= full && pause >= full * 0.75, "{failures}: {pause}");
        }
    }

    #[test]
    fn a_finished_job_without_a_rate_gets_its_average() {
        // Arrange
        let mut finish = work::failed("x".to_owned());
        finish.progress = JobProgress {
            bytes: 10_000,
            files: 1,
            bytes_per_second: 0,
        };
        // Act
        average_rate(&mut finish, Duration::from_secs(4));
        // Assert
        assert_eq!(finish.progress.bytes_per_second, 2500);
    }
}
