//! The job settings: how long a claim keeps a job, how often the scheduler
//! ticks, and the scheduler's clock — a testing aid that lets schedule time
//! run faster than wall time — and when a silent agent counts as offline
//! (`[agents] offline_after`).
//!
//! ```toml
//! [jobs]
//! lease = "10m"             # a claim or progress report keeps the job this long
//!
//! [scheduler]
//! tick = "5s"               # how often each instance looks for due slots
//! clock_speed = 1           # TESTING AID: schedule time runs N× wall time
//! clock_origin = "2026-12-01T00:00:00Z"   # TESTING AID: where the two meet
//! ```
//!
//! `STOWAGE_JOB_LEASE`, `STOWAGE_SCHEDULER_TICK`,
//! `STOWAGE_SCHEDULER_CLOCK_SPEED` and `STOWAGE_SCHEDULER_CLOCK_ORIGIN`
//! override them. Durations are a whole number and a unit: `ms`, `s`, `m`, `h`.
//!
//! The clock speed exists so an end-to-end test can watch a `* * * * *`
//! schedule fire every second (speed 60) instead of every minute. It only
//! moves the time used to find due slots; leases, `created_at`, claims and
//! everything else keep the wall clock. Leave it at 1 in production.
//! Instances that share a database in such a test must share the origin,
//! or their schedule clocks disagree (see [`crate::scheduler::ScheduleClock`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::layers::FileAgents;
use super::layers::{Layers, Sourced};
use super::values::invalid;
use super::{AgentSettings, ConfigError, DEFAULT_OFFLINE_AFTER};

/// How long a claim keeps a job when nothing else is configured.
pub const DEFAULT_LEASE: Duration = Duration::from_mins(10);
/// How often the scheduler ticks when nothing else is configured.
pub const DEFAULT_TICK: Duration = Duration::from_secs(5);
/// The fastest schedule clock: an hour of schedule time per wall second.
pub const MAX_CLOCK_SPEED: u32 = 3600;

/// How agents hold their jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    /// How long a claim or a progress report keeps a job the agent's; a job
    /// whose agent reports nothing for this long fails. Agents report at
    /// least every few minutes, so a lease shorter than that fails live jobs.
    pub lease: Duration,
}

/// How the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// How often each instance enqueues due slots and fails expired leases;
    /// a slot's job is enqueued at most this long (in wall time) after it.
    pub tick: Duration,
    /// Testing aid: schedule time runs this many times faster than wall
    /// time from [`Self::clock_origin`]; 1 (the default) is the wall clock.
    pub clock_speed: u32,
    /// Testing aid: the wall time at which schedule time equals wall time
    /// and starts to run at [`Self::clock_speed`]; `None` is the server's start.
    pub clock_origin: Option<DateTime<Utc>>,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease: DEFAULT_LEASE,
        }
    }
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            tick: DEFAULT_TICK,
            clock_speed: 1,
            clock_origin: None,
        }
    }
}

/// `[jobs]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileJobs {
    lease: Option<String>,
}

/// `[scheduler]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileScheduler {
    tick: Option<String>,
    clock_speed: Option<u32>,
    clock_origin: Option<String>,
}

pub(super) fn job_settings(
    layers: &Layers<'_>,
    file: Option<FileJobs>,
) -> Result<JobSettings, ConfigError> {
    let file = file.unwrap_or_default();
    let lease = layers
        .get("STOWAGE_JOB_LEASE", "jobs.lease", file.lease)
        .map_or(Ok(DEFAULT_LEASE), |v| {
            parse_duration(&v, Duration::from_secs(1), Duration::from_hours(24))
        })?;
    Ok(JobSettings { lease })
}

pub(super) fn agent_settings(
    layers: &Layers<'_>,
    file: Option<FileAgents>,
) -> Result<AgentSettings, ConfigError> {
    let file = file.unwrap_or_default();
    // Agents are marked seen at most once a minute: a shorter silence
    // would show busy agents as offline.
    let offline_after = layers
        .get(
            "STOWAGE_AGENT_OFFLINE_AFTER",
            "agents.offline_after",
            file.offline_after,
        )
        .map_or(Ok(DEFAULT_OFFLINE_AFTER), |v| {
            parse_duration(&v, Duration::from_secs(90), Duration::from_hours(24 * 7))
        })?;
    Ok(AgentSettings { offline_after })
}

pub(super) fn scheduler_settings(
    layers: &Layers<'_>,
    file: Option<FileScheduler>,
) -> Result<SchedulerSettings, ConfigError> {
    let file = file.unwrap_or_default();
    let tick = layers
        .get("STOWAGE_SCHEDULER_TICK", "scheduler.tick", file.tick)
        .map_or(Ok(DEFAULT_TICK), |v| {
            parse_duration(&v, Duration::from_millis(10), Duration::from_hours(1))
        })?;
    let clock_speed = layers
        .get(
            "STOWAGE_SCHEDULER_CLOCK_SPEED",
            "scheduler.clock_speed",
            file.clock_speed.map(|n| n.to_string()),
        )
        .map_or(Ok(1), |v| parse_speed(&v))?;
    let clock_origin = layers
        .get(
            "STOWAGE_SCHEDULER_CLOCK_ORIGIN",
            "scheduler.clock_origin",
            file.clock_origin,
        )
        .map(|v| parse_time(&v))
        .transpose()?;
    Ok(SchedulerSettings {
        tick,
        clock_speed,
        clock_origin,
    })
}

/// A whole number and a unit (`ms`, `s`, `m`, `h`) within `[min, max]`.
pub(super) fn parse_duration(
    v: &Sourced,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let text = v.value.trim();
    let bad = || {
        invalid(
            v,
            format!("{text:?} is not a duration like 250ms, 5s, 10m or 1h"),
        )
    };
    let (number, unit) = crate::domain::number_and_unit(text).ok_or_else(bad)?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let duration = Duration::from_millis(number.saturating_mul(millis_per_unit));
    if duration < min || duration > max {
        return Err(invalid(
            v,
            format!("{text:?} is out of range; it must be from {min:?} to {max:?}"),
        ));
    }
    Ok(duration)
}

fn parse_speed(v: &Sourced) -> Result<u32, ConfigError> {
    v.value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_CLOCK_SPEED).contains(n))
        .ok_or_else(|| {
            invalid(
                v,
                format!(
                    "{:?} is not a clock speed from 1 (the wall clock, for production) to {MAX_CLOCK_SPEED}",
                    v.value
                ),
            )
        })
}

fn parse_time(v: &Sourced) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(v.value.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| {
            invalid(
                v,
                format!(
                    "{:?} is not an RFC 3339 time like 2026-12-01T00:00:00Z - {err}",
                    v.value
                ),
            )
        })
}
