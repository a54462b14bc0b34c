//! A whole plan as validated at the edge: what to back up, when, how long
//! to keep it and which recovery objectives it must meet.
//!
//! Every rule is checked here, before the database is touched, so a refused
//! plan leaves nothing behind. The agents a plan runs on are checked against
//! the tenant's agents by the caller, which has the database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::byte_size::{ByteSize, ByteSizeError};
use super::plan_duration::{PlanDuration, PlanDurationError, format_seconds};
use super::plan_name::{PlanName, PlanNameError};
use super::retention::{KeepCounts, RetentionError, RetentionPolicy};
use super::schedule::{Schedule, ScheduleError};

/// What a plan backs up: files under paths, or the output of a command
/// (e.g. a database dump) stored as one file. Stored as this JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sources {
    /// Files and directories, absolute paths on the agent's machine.
    Paths(Vec<String>),
    /// A command whose standard output is streamed into the snapshot.
    Command {
        /// Run by the agent through its shell.
        command: String,
        /// The file name the output gets in the snapshot.
        stdin_name: String,
    },
}

/// A plan as typed, before any check.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// `--name`.
    pub name: String,
    /// `--path`, repeated.
    pub paths: Vec<String>,
    /// `--command`.
    pub command: Option<String>,
    /// `--stdin-name`.
    pub stdin_name: Option<String>,
    /// `--exclude`, repeated.
    pub excludes: Vec<String>,
    /// `--schedule`.
    pub schedule: String,
    /// `--timezone`; UTC when absent.
    pub timezone: Option<String>,
    /// `--keep-*` counts.
    pub keep: KeepCounts,
    /// `--keep-within`.
    pub keep_within: Option<String>,
    /// `--rpo`.
    pub rpo: Option<String>,
    /// `--rto`.
    pub rto: Option<String>,
    /// `--restore-test-every`.
    pub restore_test_every: Option<String>,
    /// `--restore-test-max`.
    pub restore_test_max: Option<String>,
}

/// A checked plan.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// Unique within the tenant.
    pub name: PlanName,
    /// What to back up.
    pub sources: Sources,
    /// Glob patterns of paths to leave out.
    pub excludes: Vec<String>,
    /// When to run.
    pub schedule: Schedule,
    /// What to keep.
    pub retention: RetentionPolicy,
    /// Most data a restore may lose: the longest acceptable age of the
    /// newest snapshot.
    pub rpo: Option<PlanDuration>,
    /// Longest acceptable time to restore.
    pub rto: Option<PlanDuration>,
    /// How often a restore test must run.
    pub restore_test_every: Option<PlanDuration>,
    /// A restore test's size cap: a sample of files up to this size
    /// instead of the whole snapshot.
    pub restore_test_max: Option<ByteSize>,
}

/// Why a plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanSpecError {
    /// Bad name.
    #[error(transparent)]
    Name(#[from] PlanNameError),
    /// Neither paths nor a command.
    #[error(
        "a plan needs something to back up: give --path (repeatable) or --command with --stdin-name"
    )]
    NoSource,
    /// Both paths and a command.
    #[error(
        "a plan backs up either paths or a command's output, not both: drop --path or --command"
    )]
    PathsAndCommand,
    /// A command without its file name, or a name without a command.
    #[error(
        "--command and --stdin-name go together: the command's output is stored under that file name"
    )]
    CommandWithoutName,
    /// An empty command or stdin name.
    #[error("{0} cannot be empty")]
    Empty(&'static str),
    /// A relative or empty path.
    #[error("{0:?} is not an absolute path; plan paths start with /")]
    RelativePath(String),
    /// A blank exclude pattern.
    #[error("an --exclude pattern cannot be empty")]
    EmptyExclude,
    /// Bad cron or zone.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Bad duration, with the option it was given to.
    #[error("{option}: {source}")]
    Duration {
        /// e.g. "--rpo".
        option: &'static str,
        /// The parse error.
        source: PlanDurationError,
    },
    /// Bad keep count.
    #[error(transparent)]
    Retention(#[from] RetentionError),
    /// Bad restore-test size cap.
    #[error("--restore-test-max: {0}")]
    RestoreTestMax(#[from] ByteSizeError),
    /// The schedule leaves longer gaps than the RPO allows.
    #[error(
        "the schedule {schedule} leaves {gap} between backups ({between}), longer than the RPO of {rpo}; run it more often or raise --rpo"
    )]
    RpoShorterThanInterval {
        /// The schedule, with its zone.
        schedule: String,
        /// The first wait longer than the RPO.
        gap: String,
        /// Its ends.
        between: String,
        /// The RPO.
        rpo: String,
    },
}

impl PlanSpec {
    /// Checks every rule; `now` starts the year over which the schedule's
    /// gaps are measured against the RPO.
    ///
    /// # Errors
    ///
    /// The first rule the input breaks, as a sentence naming the input.
    pub fn parse(input: &PlanInput, now: DateTime<Utc>) -> Result<Self, PlanSpecError> {
        let name = PlanName::parse(&input.name)?;
        let sources = sources(input)?;
        let excludes = input
            .excludes
            .iter()
            .map(|glob| {
                let glob = glob.trim();
                if glob.is_empty() {
                    Err(PlanSpecError::EmptyExclude)
                } else {
                    Ok(glob.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let schedule =
            Schedule::parse(&input.schedule, input.timezone.as_deref().unwrap_or("UTC"))?;
        let keep_within = duration("--keep-within", input.keep_within.as_deref())?;
        let retention = RetentionPolicy::parse(input.keep, keep_within)?;
        let rpo = duration("--rpo", input.rpo.as_deref())?;
        let rto = duration("--rto", input.rto.as_deref())?;
        let restore_test_every =
            duration("--restore-test-every", input.restore_test_every.as_deref())?;
        let restore_test_max = input
            .restore_test_max
            .as_deref()
            .map(ByteSize::parse)
            .transpose()?;
        // Without an RPO, any wait will do; a limit beyond the horizon still
        // finds a schedule that never runs.
        let limit = rpo.map_or(u64::MAX, PlanDuration::as_secs);
        if let (Some(rpo), Some(gap)) = (rpo, schedule.gap_longer_than(now, limit)?) {
            return Err(PlanSpecError::RpoShorterThanInterval {
                schedule: schedule.to_string(),
                gap: format_seconds(gap.seconds),
                between: format!("{} to {}", gap.from.to_rfc3339(), gap.to.to_rfc3339()),
                rpo: rpo.to_string(),
            });
        }
        Ok(Self {
            name,
            sources,
            excludes,
            schedule,
            retention,
            rpo,
            rto,
            restore_test_every,
            restore_test_max,
        })
    }
}

fn sources(input: &PlanInput) -> Result<Sources, PlanSpecError> {
    match (&input.command, &input.stdin_name, input.paths.is_empty()) {
        (None, None, true) => Err(PlanSpecError::NoSource),
        (Some(_), _, false) => Err(PlanSpecError::PathsAndCommand),
        (None, None, false) => {
            let paths = input.paths.iter().map(|path| {
                let path = path.trim();
                if path.starts_with('/') {
                    Ok(path.to_owned())
                } else {
                    Err(PlanSpecError::RelativePath(path.to_owned()))
                }
            });
            Ok(Sources::Paths(paths.collect::<Result<_, _>>()?))
        }
        (Some(command), Some(stdin_name), true) => {
            let (command, stdin_name) = (command.trim(), stdin_name.trim());
            if command.is_empty() {
                Err(PlanSpecError::Empty("--command"))
            } else if stdin_name.is_empty() || stdin_name.contains('/') {
                Err(PlanSpecError::Empty("--stdin-name (a file name without /)"))
            } else {
                Ok(Sources::Command {
                    command: command.to_owned(),
                    stdin_name: stdin_name.to_owned(),
                })
            }
        }
        _ => Err(PlanSpecError::CommandWithoutName),
    }
}

fn duration(
    option: &'static str,
    text: Option<&str>,
) -> Result<Option<PlanDuration>, PlanSpecError> {
    text.map(PlanDuration::parse)
        .transpose()
        .map_err(|source| PlanSpecError::Duration { option, source })
}

#[cfg(test)]
mod tests;
