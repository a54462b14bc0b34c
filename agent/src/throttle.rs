//! `--limit-upload` / `--limit-download`: a token bucket shared by every
//! transfer of one command, so the limit holds for the sum of parallel
//! uploads rather than for each.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::units::Rate;

/// A shared byte-rate limit. `None` rate means unlimited and costs nothing.
#[derive(Debug)]
pub struct Throttle {
    rate: Option<u64>,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may go now; negative when borrowed ahead.
    available: f64,
    refilled_at: Instant,
}

impl Throttle {
    /// A limit of `rate` bytes per second, or none.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate: rate.map(Rate::bytes_per_second),
            state: Mutex::new(Bucket {
                available: 0.0,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Waits until `bytes` more may be sent. A transfer larger than one
    /// second's budget borrows ahead and the next caller waits it off, so
    /// the long-run rate is exact without splitting transfers.
    pub async fn take(&self, bytes: u64) {
        let wait = self.reserve(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Like [`Throttle::take`] for a blocking thread.
    pub fn take_blocking(&self, bytes: u64) {
        let wait = self.reserve(bytes, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    fn reserve(&self, bytes: u64, now: Instant) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        #[allow(clippy::cast_precision_loss)]
        let rate = rate as f64;
        let mut bucket = self
            .state
            .lock()
            .expect("the throttle lock is never poisoned");
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        // At most one second's worth may accumulate while idle.
        bucket.available = (bucket.available + elapsed * rate).min(rate);
        bucket.refilled_at = now;
        #[allow(clippy::cast_precision_loss)]
        let cost = bytes as f64;
        bucket.available -= cost;
        if bucket.available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.available / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_never_waits() {
        let throttle = Throttle::new(None);
        assert_eq!(throttle.reserve(u64::MAX, Instant::now()), Duration::ZERO);
    }

    #[test]
    fn ten_seconds_of_bytes_at_once_owe_ten_seconds() {
        let throttle = Throttle::new(Some(Rate::from_bytes_per_second(1000)));
        let now = Instant::now();
        let first = throttle.reserve(10_000, now);
        assert!((first.as_secs_f64() - 10.0).abs() < 0.01, "{first:?}");
        // The next caller waits for the debt and its own bytes.
        let second = throttle.reserve(1000, now);
        assert!((second.as_secs_f64() - 11.0).abs() < 0.01, "{second:?}");
    }

    #[test]
    fn idle_time_earns_at_most_one_second_of_credit() {
        let throttle = Throttle::new(Some(Rate::from_bytes_per_second(1000)));
        let start = Instant::now();
        let later = start + Duration::from_mins(1);
        assert_eq!(throttle.reserve(1000, later), Duration::ZERO);
        assert!(throttle.reserve(1000, later) > Duration::from_millis(900));
    }
}
