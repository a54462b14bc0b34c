//! How often and how patiently a failed request is tried again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attempts and backoff for retryable failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, including the first.
    pub attempts: u32,
    /// Wait after the first failure; doubles each time.
    pub first_delay: Duration,
    /// Longest wait between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six tries over about half a minute: rides out a server restart or a
    /// short network outage, yet a dead server is reported within a minute.
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `failed + 1`: the server's `Retry-After` when it
    /// sent one, else exponential backoff with up to 50 % random jitter so
    /// many agents do not come back at the same instant.
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay * 6);
        }
        let exponent = failed.saturating_sub(1).min(16);
        let base = self
            .first_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let jitter = base.mul_f64(f64::from(nanos % 1000) / 2000.0);
        base + jitter
    }
}

/// The `Retry-After` header in seconds, if present.
pub(super) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_under_half() {
        let policy = RetryPolicy::default();
        for failed in 1..10 {
            let base = policy
                .first_delay
                .saturating_mul(1 << (failed - 1))
                .min(policy.max_delay);
            let delay = policy.delay(failed, None);
            assert!(
                delay >= base && delay <= base + base / 2,
                "{failed}: {delay:?}"
            );
        }
    }

    #[test]
    fn retry_after_from_the_server_wins() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
