//! The running job's progress, sent to the server every
//! [`REPORT_EVERY`]: bytes and files so far, and the rate over the last
//! [`RATE_WINDOW`]. The same call renews the job's lease, so it is sent
//! even when nothing moved (a restore waiting on a slow server is still
//! alive). When the server answers 404 the job is no longer this agent's
//! (its lease ran out and the server failed it): reporting stops, and the
//! caller must stop the job and not report its end.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use stowage_protocol::api::{JobProgress, JobWork};
use tokio::time::Instant;

use crate::api::CallError;
use crate::backup::stats::Stats;
use crate::tally::Tally;

/// How often progress is reported (and the lease renewed).
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How far back the reported rate looks.
pub const RATE_WINDOW: Duration = Duration::from_mins(1);

/// Where a running job counts what it has done.
#[derive(Debug, Clone)]
pub enum Counters {
    /// A backup's walk counters (bytes read from files, as the final report
    /// counts them, and files done), through which it can also be asked to
    /// stop.
    Backup(Arc<Stats>),
    /// A restore's or restore test's files and bytes.
    Tally(Arc<Tally>),
    /// A job that counts nothing (a verify): progress only renews the lease.
    Nothing,
}

impl Counters {
    /// Fresh counters for `work`.
    pub fn for_work(work: &JobWork) -> Self {
        match work {
            JobWork::Backup(_) => Self::Backup(Arc::default()),
            JobWork::Restore(_) | JobWork::RestoreTest(_) => Self::Tally(Arc::default()),
            JobWork::Verify(_) => Self::Nothing,
        }
    }

    /// Bytes and files done so far.
    pub fn read(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        match self {
            Self::Backup(stats) => (
                stats.bytes_read.load(Relaxed),
                stats.files_done.load(Relaxed),
            ),
            Self::Tally(tally) => (tally.bytes(), tally.files()),
            Self::Nothing => (0, 0),
        }
    }

    /// Asks a job running on threads of its own (a backup) to stop; async
    /// jobs stop when their future is dropped.
    pub fn stop(&self) {
        if let Self::Backup(stats) = self {
            stats.request_stop();
        }
    }

    /// The counts now, without a rate.
    pub fn progress(&self) -> JobProgress {
        let (bytes, files) = self.read();
        JobProgress {
            bytes,
            files,
            bytes_per_second: 0,
        }
    }
}

/// The recent rate, from the byte counts seen in the last [`RATE_WINDOW`].
#[derive(Debug)]
pub struct RateWindow {
    /// (when, bytes so far), oldest first.
    samples: VecDeque<(Instant, u64)>,
    window: Duration,
}

impl RateWindow {
    /// An empty window of `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            samples: VecDeque::new(),
            window,
        }
    }

    /// Records `bytes` done by `at` and returns the rate over the window in
    /// bytes a second (0 with a single sample, or when the count went back).
    pub fn observe(&mut self, at: Instant, bytes: u64) -> u64 {
        self.samples.push_back((at, bytes));
        while self
            .samples
            .front()
            .is_some_and(|(then, _)| at.duration_since(*then) > self.window)
        {
            self.samples.pop_front();
        }
        let Some(&(then, before)) = self.samples.front() else {
            return 0;
        };
        let seconds = at.duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            return 0;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rate = (bytes.saturating_sub(before) as f64 / seconds).round() as u64;
        rate
    }
}

/// Sends `counters` through `send` every [`REPORT_EVERY`] until it fails
/// with 404; returns then (other failures are printed and the next
/// report tries again).
pub async fn keep_reporting<F, Fut>(counters: &Counters, mut send: F)
where
    F: FnMut(JobProgress) -> Fut,
    Fut: Future<Output = Result<(), CallError>>,
{
    let mut rate = RateWindow::new(RATE_WINDOW);
    rate.observe(Instant::now(), counters.read().0);
    let mut ticks = tokio::time::interval_at(Instant::now() + REPORT_EVERY, REPORT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = ticks.tick().await;
        let (bytes, files) = counters.read();
        let progress = JobProgress {
            bytes,
            files,
            bytes_per_second: rate.observe(now, bytes),
        };
        match send(progress).await {
            Ok(()) => {}
            Err(error) if error.is_not_found() => return,
            Err(error) => {
                eprintln!("stowage daemon: reporting progress failed ({error}); trying again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use stowage_protocol::api::{ApiError, codes};

    use super::*;

    #[test]
    fn the_rate_covers_only_the_last_window() {
        // Arrange
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut window = RateWindow::new(Duration::from_mins(1));
        // Act / Assert
        assert_eq!(window.observe(at(0), 0), 0, "one sample has no rate");
        assert_eq!(window.observe(at(10), 1000), 100);
        assert_eq!(window.observe(at(60), 1000), 17, "1000 bytes in 60 s");
        assert_eq!(
            window.observe(at(80), 1000),
            0,
            "nothing moved in the last 60 s"
        );
    }

    #[test]
    fn a_backup_reports_the_bytes_it_read_not_those_it_skipped_and_can_be_stopped() {
        // Arrange
        let stats = Arc::new(Stats::default());
        Stats::add(&stats.bytes_read, 100);
        Stats::add(&stats.bytes_done, 5100);
        Stats::add(&stats.files_done, 3);
        let counters = Counters::Backup(Arc::clone(&stats));
        // Act
        let read = counters.read();
        counters.stop();
        // Assert
        assert_eq!(read, (100, 3));
        assert!(stats.stop_requested());
    }

    fn not_found() -> CallError {
        CallError::Api {
            what: "POST jobs/x/progress".to_owned(),
            status: 404,
            error: ApiError::new(codes::NOT_FOUND, "no such running job", false),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_goes_out_every_ten_seconds_until_the_server_answers_404() {
        // Arrange
        let tally = Arc::new(Tally::default());
        let counters = Counters::Tally(Arc::clone(&tally));
        let sent: Mutex<Vec<(Instant, JobProgress)>> = Mutex::new(Vec::new());
        let start = Instant::now();
        // Act
        keep_reporting(&counters, |progress| {
            let mut sent = sent.lock().unwrap();
            sent.push((Instant::now(), progress));
            tally.add_bytes(500);
            tally.add_file();
            let answer = if sent.len() == 3 {
                Err(not_found())
            } else {
                Ok(())
            };
            async move { answer }
        })
        .await;
        // Assert
        let sent = sent.into_inner().unwrap();
        let times: Vec<u64> = sent.iter().map(|(t, _)| (*t - start).as_secs()).collect();
        assert_eq!(times, [10, 20, 30]);
        assert_eq!(
            sent[0].1,
            JobProgress {
                bytes: 0,
                files: 0,
                bytes_per_second: 0
            }
        );
        assert_eq!(
            sent[2].1,
            JobProgress {
                bytes: 1000,
                files: 2,
                bytes_per_second: 33
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_do_not_stop_the_reports() {
        // Arrange
        let calls = Mutex::new(0);
        // Act
        keep_reporting(&Counters::Nothing, |_| {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            let answer = match *calls {
                1 | 2 => Err(CallError::Protocol {
                    what: "POST jobs/x/progress".to_owned(),
                    status: 502,
                    problem: "a proxy page".to_owned(),
                }),
                _ => Err(not_found()),
            };
            async move { answer }
        })
        .await;
        // Assert
        assert_eq!(calls.into_inner().unwrap(), 3);
    }
}
