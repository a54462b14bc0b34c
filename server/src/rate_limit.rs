//! Request rate limits: one budget per agent credential, and one per client
//! address for requests that carry no valid credential (enrollment, failed
//! authentication).
//!
//! Why two: a busy agent must not starve its neighbours on the same server,
//! and a client guessing credentials or enrollment tokens must be slowed down
//! before it reaches the database — without letting it spend the budget of
//! the agent whose credential it claims (unauthenticated requests are counted
//! against the address, never against the claimed credential).
//!
//! Budgets are GCRA token buckets ([`governor`]): `per_second` requests are
//! replenished evenly over each second, and up to `burst` may arrive at once.
//! A refused request gets `429 rate_limited` with `Retry-After`, marked
//! retryable, so the agent backs off and tries again. The state lives in this
//! server process: with several instances behind a load balancer each
//! instance applies its own budget (the effective limit is multiplied by the
//! instance count), which is the usual trade for not touching the database
//! on every request.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use stowage_protocol::ids::{AgentId, TenantId};

use crate::routes::api::Failure;

/// Checks between two sweeps of idle keys out of the limiter maps, so their
/// memory stays proportional to the clients active recently.
const SWEEP_EVERY: u64 = 4096;

/// One budget: a sustained rate and the burst allowed on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests replenished per second.
    pub per_second: NonZeroU32,
    /// Requests that may arrive at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Budget {
    /// A budget of `per_second` sustained requests with `burst` at once.
    ///
    /// # Panics
    ///
    /// Panics when either is zero; settings are validated before this.
    pub const fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: NonZeroU32::new(per_second).expect("a rate limit of zero requests"),
            burst: NonZeroU32::new(burst).expect("a burst of zero requests"),
        }
    }

    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// The budgets the server applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Each agent credential's budget. A backup is cheap in requests (16 MiB
    /// packs: about 8 per second at 1 Gbit/s, plus batched missing-blob
    /// queries), and so is a restore, which reads pack by pack in ranges of
    /// a few MiB: 154 range requests for 1.5 GB of files, about 45 per
    /// second at 400 MB/s on two cores. `verify` reads trees, which are
    /// smaller, with more requests. The default (250 per second, 500 at
    /// once) lets several restores and verifies of one agent run
    /// unthrottled, because a throttled restore is an outage prolonged; it
    /// still stops a runaway agent long before it could starve the others.
    pub per_agent: Budget,
    /// Each client address's budget for requests without a valid credential.
    pub per_address: Budget,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_agent: Budget::new(250, 500),
            per_address: Budget::new(5, 20),
        }
    }
}

/// The live limiters, shared by every worker of the HTTP server.
pub struct RateLimits {
    settings: RateLimitSettings,
    per_agent: DefaultKeyedRateLimiter<(TenantId, AgentId)>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("settings", &self.settings)
            .field("tracked_agents", &self.per_agent.len())
            .field("tracked_addresses", &self.per_address.len())
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Fresh limiters with full budgets.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            settings,
            per_agent: RateLimiter::keyed(settings.per_agent.quota()),
            per_address: RateLimiter::keyed(settings.per_address.quota()),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// The budgets applied.
    pub fn settings(&self) -> RateLimitSettings {
        self.settings
    }

    /// Spends one request of an authenticated agent's budget.
    ///
    /// # Errors
    ///
    /// [`Failure::RateLimited`] when the budget is spent, saying when to retry.
    pub fn check_agent(&self, tenant: TenantId, agent: AgentId) -> Result<(), Failure> {
        self.sweep_now_and_then();
        self.per_agent
            .check_key(&(tenant, agent))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                refused(&format!("agent {agent}"), self.settings.per_agent, wait)
            })
    }

    /// Spends one request of a client address's budget for requests without
    /// a valid credential.
    ///
    /// # Errors
    ///
    /// [`Failure::RateLimited`] when the budget is spent, saying when to retry.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Failure> {
        self.sweep_now_and_then();
        self.per_address.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            refused(
                &format!("address {address}"),
                self.settings.per_address,
                wait,
            )
        })
    }

    /// Drops keys whose budget is full again, every [`SWEEP_EVERY`] checks.
    fn sweep_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_agent.retain_recent();
            self.per_address.retain_recent();
            self.per_agent.shrink_to_fit();
            self.per_address.shrink_to_fit();
        }
    }
}

fn refused(who: &str, budget: Budget, wait: Duration) -> Failure {
    // Retry-After has whole seconds; never tell a client to retry at once.
    let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Failure::RateLimited {
        message: format!(
            "too many requests from {who}: the limit is {} per second with bursts of {}; \
             retry in {retry_after_secs} s",
            budget.per_second, budget.burst
        ),
        retry_after_secs: retry_after_secs.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(byte: u8) -> TenantId {
        TenantId::from_bytes([byte; 16])
    }

    fn agent(byte: u8) -> AgentId {
        AgentId::from_bytes([byte; 16])
    }

    fn retry_after(failure: &Failure) -> u64 {
        match failure {
            Failure::RateLimited {
                retry_after_secs, ..
            } => *retry_after_secs,
            other => panic!("expected a rate-limit refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_agent_gets_its_burst_then_is_refused_with_a_retry_time() {
        let limits = RateLimits::new(RateLimitSettings {
            per_agent: Budget::new(1, 3),
            ..RateLimitSettings::default()
        });

        for _ in 0..3 {
            limits.check_agent(tenant(1), agent(1)).unwrap();
        }
        let refused = limits.check_agent(tenant(1), agent(1)).unwrap_err();

        assert_eq!(retry_after(&refused), 1);
        let message = refused.to_string();
        assert!(message.contains(&agent(1).to_string()), "{message}");
        assert!(message.contains("1 per second"), "{message}");
    }

    #[test]
    fn one_busy_agent_does_not_spend_another_agents_budget() {
        let limits = RateLimits::new(RateLimitSettings {
            per_agent: Budget::new(1, 2),
            ..RateLimitSettings::default()
        });
        for _ in 0..2 {
            limits.check_agent(tenant(1), agent(1)).unwrap();
        }
        limits.check_agent(tenant(1), agent(1)).unwrap_err();

        limits.check_agent(tenant(1), agent(2)).unwrap();
        limits.check_agent(tenant(2), agent(1)).unwrap();
    }

    #[test]
    fn addresses_have_their_own_budget_apart_from_agents() {
        let limits = RateLimits::new(RateLimitSettings {
            per_agent: Budget::new(1, 1),
            per_address: Budget::new(1, 2),
        });
        let address: IpAddr = "192.0.2.7".parse().unwrap();

        limits.check_address(address).unwrap();
        limits.check_address(address).unwrap();
        let refused = limits.check_address(address).unwrap_err();

        assert!(refused.to_string().contains("192.0.2.7"), "{refused}");
        limits.check_agent(tenant(1), agent(1)).unwrap();
        limits.check_address("192.0.2.8".parse().unwrap()).unwrap();
    }

    #[test]
    fn a_spent_budget_is_replenished_over_time() {
        let limits = RateLimits::new(RateLimitSettings {
            per_agent: Budget::new(20, 1),
            ..RateLimitSettings::default()
        });
        limits.check_agent(tenant(1), agent(1)).unwrap();
        limits.check_agent(tenant(1), agent(1)).unwrap_err();

        std::thread::sleep(Duration::from_millis(60));

        limits.check_agent(tenant(1), agent(1)).unwrap();
    }

    #[test]
    fn idle_keys_are_swept_so_memory_follows_recent_clients() {
        let limits = RateLimits::new(RateLimitSettings {
            per_agent: Budget::new(1000, 1),
            per_address: Budget::new(1000, 1),
        });
        for byte in 0..=255 {
            limits.check_agent(tenant(byte), agent(byte)).unwrap();
        }
        assert_eq!(limits.per_agent.len(), 256);
        std::thread::sleep(Duration::from_millis(5));

        for _ in 0..SWEEP_EVERY {
            let _ = limits.check_address("192.0.2.1".parse().unwrap());
        }

        assert!(limits.per_agent.len() < 256, "{}", limits.per_agent.len());
    }
}
