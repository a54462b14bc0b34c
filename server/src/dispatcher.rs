//! The claim dispatcher: wakes an agent's waiting claims when a job for it
//! is queued, so waiting claims need not poll the database.
//!
//! A claim (`POST /jobs/claim`) looks for a job once when it arrives. If
//! there is none it registers here under its (tenant, agent) and sleeps.
//! One task per instance ([`run`]) asks the database every [`PASS`] for the
//! agents with a newly queued job ([`queued_jobs::agents_with_new_jobs`])
//! and wakes the registered claims of those agents, which then look again.
//! A claim also looks on its own every [`FALLBACK`], in case a wake was
//! missed (see below).
//!
//! Why this shape: the database stays the only source of truth, so a job
//! inserted by another instance, by the CLI, or by this instance's
//! scheduler is seen the same way, on SQLite and PostgreSQL alike, with no
//! LISTEN/NOTIFY (which SQLite lacks) and no instance-to-instance traffic.
//! A claim that is woken still claims with the atomic `claim_next` (SKIP
//! LOCKED on PostgreSQL), so a job is claimed exactly once however many
//! claims of however many instances are woken for it; a spurious wake
//! costs one indexed query.
//!
//! # Cost model
//!
//! - Polling (before): one query per waiting claim per second: 1,000
//!   waiting agents were 1,000 queries a second, busy or idle.
//! - Now, per instance: one query per [`PASS`] (4 a second) while any claim
//!   waits, none while none waits; it reads the queued rows of the partial
//!   index and returns the agents of the jobs queued in the last
//!   [`NEWS_WINDOW`]. Per claim: one query on arrival, one per wake, one
//!   per [`FALLBACK`] of waiting beyond the first, none at the end of the
//!   wait. 1,000 idle agents waiting 30 s each: about 33 arrival queries
//!   and 4 dispatcher passes a second. Per job: one claim.
//! - Memory: one map entry (a `Notify`) per agent with a waiting claim on
//!   this instance, removed when its last waiting claim leaves.
//! - Latency from commit to claim: half a [`PASS`] on average, at most one
//!   pass plus a claim; jobs this instance's scheduler enqueues are looked
//!   for at once ([`Dispatcher::look_now`]).
//!
//! A wake can be missed only when a job's commit lands more than
//! [`NEWS_WINDOW`] after its `created_at` (a stalled transaction) or the
//! inserting instance's clock lags this one's by more than that; the
//! claim then finds the job at its next [`FALLBACK`] look.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use stowage_protocol::ids::{AgentId, TenantId};
use tokio::sync::Notify;

use crate::db::{Database, queued_jobs};

/// How often the dispatcher asks for agents with new jobs.
pub const PASS: Duration = Duration::from_millis(250);
/// How often a waiting claim looks for a job on its own, woken or not:
/// only a claim waiting longer than this (the agent daemon waits 30 s)
/// ever does, since each claim looks when it arrives.
pub const FALLBACK: Duration = Duration::from_secs(30);
/// How long a queued job counts as news: its agent's claims are woken on
/// every pass within this time of its `created_at` until it is claimed.
pub const NEWS_WINDOW: Duration = Duration::from_secs(20);

/// The waiting claims of this instance, by agent.
#[derive(Debug, Default)]
pub struct Dispatcher {
    /// One entry per agent with at least one waiting claim.
    waiting: Mutex<HashMap<(TenantId, AgentId), Waiting>>,
    /// Set by [`Dispatcher::look_now`] to start a pass before the next one is due.
    look_now: Notify,
}

#[derive(Debug)]
struct Waiting {
    /// Wakes every waiting claim of the agent.
    wake: Arc<Notify>,
    /// How many claims wait; the entry goes when this reaches zero.
    claims: usize,
}

/// A claim's place in the dispatcher; it leaves when this is dropped
/// (answered, or the client went away).
#[derive(Debug)]
pub struct WaitingClaim {
    dispatcher: Arc<Dispatcher>,
    key: (TenantId, AgentId),
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// An empty dispatcher.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a claim of `agent` of `tenant` that is about to wait.
    pub fn wait(self: &Arc<Self>, tenant: TenantId, agent: AgentId) -> WaitingClaim {
        let key = (tenant, agent);
        let mut waiting = self.lock();
        let entry = waiting.entry(key).or_insert_with(|| Waiting {
            wake: Arc::new(Notify::new()),
            claims: 0,
        });
        entry.claims += 1;
        WaitingClaim {
            dispatcher: Arc::clone(self),
            key,
            wake: Arc::clone(&entry.wake),
        }
    }

    /// How many agents have a waiting claim here.
    pub fn waiting_agents(&self) -> usize {
        self.lock().len()
    }

    /// Wakes the waiting claims of each agent in `agents` that has any;
    /// returns how many agents were woken.
    pub fn wake(&self, agents: &HashSet<(TenantId, AgentId)>) -> usize {
        let waiting = self.lock();
        let mut woken = 0;
        for (key, entry) in waiting.iter() {
            if agents.contains(key) {
                entry.wake.notify_waiters();
                woken += 1;
            }
        }
        woken
    }

    /// Asks for a pass now rather than at the next [`PASS`]: this instance
    /// has just queued jobs.
    pub fn look_now(&self) {
        self.look_now.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, AgentId), Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WaitingClaim {
    /// The notifier to wait on. Create (and `enable`) the `Notified` future
    /// before looking for a job, so a wake during the look is not lost.
    pub fn wake(&self) -> &Notify {
        &self.wake
    }
}

impl Drop for WaitingClaim {
    fn drop(&mut self) {
        let mut waiting = self.dispatcher.lock();
        if let Some(entry) = waiting.get_mut(&self.key) {
            entry.claims -= 1;
            if entry.claims == 0 {
                waiting.remove(&self.key);
            }
        }
    }
}

/// Runs the passes of `dispatcher` on `db` until the task is dropped.
/// A failed pass is logged; the claims' own [`FALLBACK`] looks cover it.
pub async fn run(dispatcher: Arc<Dispatcher>, db: Database) {
    let mut interval = tokio::time::interval(PASS);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = dispatcher.look_now.notified() => {}
        }
        if dispatcher.waiting_agents() == 0 {
            continue;
        }
        let since =
            Utc::now() - chrono::Duration::from_std(NEWS_WINDOW).unwrap_or(chrono::Duration::MAX);
        match queued_jobs::agents_with_new_jobs(&db, since).await {
            Ok(agents) => {
                dispatcher.wake(&agents);
            }
            Err(error) => {
                tracing::warn!(%error, "looking for newly queued jobs failed; waiting claims fall back to looking themselves");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TenantId, AgentId) {
        (TenantId::random(), AgentId::random())
    }

    #[test]
    fn an_agent_leaves_the_map_when_its_last_waiting_claim_leaves() {
        // Arrange
        let dispatcher = Dispatcher::new();
        let (tenant, agent) = pair();

        // Act
        let first = dispatcher.wait(tenant, agent);
        let second = dispatcher.wait(tenant, agent);
        let with_two = dispatcher.waiting_agents();
        drop(first);
        let with_one = dispatcher.waiting_agents();
        drop(second);

        // Assert
        assert_eq!((with_two, with_one, dispatcher.waiting_agents()), (1, 1, 0));
    }

    #[tokio::test]
    async fn only_the_claims_of_agents_with_news_are_woken() {
        // Arrange: two agents waiting, news for one of them.
        let dispatcher = Dispatcher::new();
        let (lucky, other) = (pair(), pair());
        let lucky_claim = dispatcher.wait(lucky.0, lucky.1);
        let other_claim = dispatcher.wait(other.0, other.1);
        let lucky_woken = lucky_claim.wake().notified();
        let other_woken = other_claim.wake().notified();
        tokio::pin!(lucky_woken, other_woken);
        lucky_woken.as_mut().enable();
        other_woken.as_mut().enable();

        // Act
        let woken = dispatcher.wake(&HashSet::from([lucky, pair()]));

        // Assert
        assert_eq!(woken, 1);
        let soon = Duration::from_millis(50);
        assert!(tokio::time::timeout(soon, lucky_woken).await.is_ok());
        assert!(tokio::time::timeout(soon, other_woken).await.is_err());
    }
}
