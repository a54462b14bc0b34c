//! Running one job to one of its possible ends: it finished; the server
//! took it away (404 to a progress report); or the daemon was told to
//! stop — the job then gets the stop grace to finish, and is abandoned
//! when that runs out or at a second signal.
//!
//! An abandoned job is still reported, as failed with a sentence saying it
//! was interrupted ([`interrupted`]); for a backup that says the packs
//! already uploaded stay on the server: the server indexes every pack as it
//! arrives, and the next backup's `missing` query finds them, so the next
//! run uploads only what this one did not.

use std::future::{Future, pending};
use std::time::Duration;

use stowage_protocol::api::{JobFinish, JobProgress};
use tokio::time::{Instant, sleep_until};

use super::shutdown::Shutdown;
use crate::units::Span;

/// How a job's run ended.
#[derive(Debug)]
pub enum Ending {
    /// The job ran to its end; report this.
    Finished(JobFinish),
    /// The server says the job is not this agent's any more: stop, report nothing.
    Lost,
    /// Shutdown abandoned the job.
    Interrupted(Interruption),
}

/// Why shutdown abandoned a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// It did not finish within the stop grace.
    GraceOver(Duration),
    /// A second stop signal came.
    SecondSignal,
}

/// Drives `work` until it finishes, `lost` resolves (the server took the
/// job back), or shutdown abandons it: `grace` after the first signal
/// (counted from the start if one came before), or at once on a second.
pub async fn supervise(
    work: impl Future<Output = JobFinish>,
    lost: impl Future<Output = ()>,
    shutdown: &mut Shutdown,
    grace: Duration,
) -> Ending {
    let mut deadline = match shutdown.signals() {
        0 => None,
        1 => Some(Instant::now() + grace),
        _ => return Ending::Interrupted(Interruption::SecondSignal),
    };
    tokio::pin!(work);
    tokio::pin!(lost);
    loop {
        let grace_over = async {
            match deadline {
                Some(at) => sleep_until(at).await,
                None => pending().await,
            }
        };
        tokio::select! {
            biased;
            finish = &mut work => return Ending::Finished(finish),
            () = &mut lost => return Ending::Lost,
            signals = shutdown.next() => {
                if signals >= 2 {
                    return Ending::Interrupted(Interruption::SecondSignal);
                }
                if deadline.is_none() {
                    eprintln!(
                        "stowage daemon: stopping; the running job has {} to finish (a second \
                         signal stops it at once)",
                        Span(grace)
                    );
                    deadline = Some(Instant::now() + grace);
                }
            }
            () = grace_over => return Ending::Interrupted(Interruption::GraceOver(grace)),
        }
    }
}

/// The report of a job of `kind` abandoned by shutdown, with its counts so far.
pub fn interrupted(kind: &str, how: Interruption, progress: JobProgress) -> JobFinish {
    let kind = kind.replace('_', " ");
    let why = match how {
        Interruption::GraceOver(grace) => {
            format!("it did not finish within the {} stop grace", Span(grace))
        }
        Interruption::SecondSignal => "a second stop signal came".to_owned(),
    };
    let mut error =
        format!("the {kind} was interrupted by the agent's shutdown before it finished ({why})");
    if kind == "backup" {
        error.push_str(
            "; the packs it already uploaded are kept on the server, and the next backup \
             reuses them instead of uploading them again",
        );
    }
    JobFinish {
        log: format!("{error}\n"),
        error: Some(error),
        progress,
        restore_test: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    const GRACE: Duration = Duration::from_mins(5);

    fn done() -> JobFinish {
        JobFinish {
            error: None,
            progress: JobProgress::default(),
            log: "done".to_owned(),
            restore_test: None,
        }
    }

    /// A job that takes `length`, noting whether it got to its end.
    async fn job(length: Duration, ended: Arc<AtomicBool>) -> JobFinish {
        tokio::time::sleep(length).await;
        ended.store(true, Ordering::Relaxed);
        done()
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_ends_within_the_grace_after_a_signal_is_finished() {
        // Arrange
        let (signals, mut shutdown) = Shutdown::manual();
        let ended = Arc::new(AtomicBool::new(false));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_mins(1)).await;
            signals.send_modify(|n| *n += 1);
            pending::<()>().await;
        });
        // Act
        let ending = supervise(
            job(Duration::from_secs(200), ended),
            pending(),
            &mut shutdown,
            GRACE,
        )
        .await;
        // Assert
        assert!(matches!(ending, Ending::Finished(finish) if finish.log == "done"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_still_running_when_the_grace_runs_out_is_interrupted_then() {
        // Arrange
        let (signals, mut shutdown) = Shutdown::manual();
        let ended = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_mins(1)).await;
            signals.send_modify(|n| *n += 1);
            pending::<()>().await;
        });
        // Act
        let job = job(Duration::from_hours(1), Arc::clone(&ended));
        let ending = supervise(job, pending(), &mut shutdown, GRACE).await;
        // Assert
        assert!(matches!(
            ending,
            Ending::Interrupted(Interruption::GraceOver(GRACE))
        ));
        assert_eq!(
            (Instant::now() - start).as_secs(),
            360,
            "signal at 60 s + 300 s grace"
        );
        assert!(!ended.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_signal_interrupts_at_once() {
        // Arrange
        let (signals, mut shutdown) = Shutdown::manual();
        let start = Instant::now();
        tokio::spawn(async move {
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                signals.send_modify(|n| *n += 1);
            }
            pending::<()>().await;
        });
        // Act
        let job = job(Duration::from_hours(1), Arc::default());
        let ending = supervise(job, pending(), &mut shutdown, GRACE).await;
        // Assert
        assert!(matches!(
            ending,
            Ending::Interrupted(Interruption::SecondSignal)
        ));
        assert_eq!((Instant::now() - start).as_secs(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_before_the_job_started_starts_the_grace_at_once() {
        // Arrange
        let (signals, mut shutdown) = Shutdown::manual();
        signals.send_modify(|n| *n += 1);
        let start = Instant::now();
        // Act
        let job = job(Duration::from_hours(1), Arc::default());
        let ending = supervise(job, pending(), &mut shutdown, GRACE).await;
        // Assert
        assert!(matches!(
            ending,
            Ending::Interrupted(Interruption::GraceOver(_))
        ));
        assert_eq!((Instant::now() - start).as_secs(), 300);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_the_server_took_back_is_lost() {
        // Arrange
        let (_signals, mut shutdown) = Shutdown::manual();
        let lost = tokio::time::sleep(Duration::from_secs(30));
        // Act
        let job = job(Duration::from_hours(1), Arc::default());
        let ending = supervise(job, lost, &mut shutdown, GRACE).await;
        // Assert
        assert!(matches!(ending, Ending::Lost));
    }

    #[test]
    fn an_interrupted_backup_says_its_uploaded_packs_are_kept_and_reused() {
        // Act
        let backup = interrupted(
            "backup",
            Interruption::GraceOver(GRACE),
            JobProgress::default(),
        );
        let restore = interrupted(
            "restore_test",
            Interruption::SecondSignal,
            JobProgress::default(),
        );
        // Assert
        assert_eq!(
            backup.error.as_deref(),
            Some(
                "the backup was interrupted by the agent's shutdown before it finished (it did \
                 not finish within the 5m stop grace); the packs it already uploaded are kept \
                 on the server, and the next backup reuses them instead of uploading them again"
            )
        );
        assert_eq!(
            restore.error.as_deref(),
            Some(
                "the restore test was interrupted by the agent's shutdown before it finished \
                 (a second stop signal came)"
            )
        );
    }
}
