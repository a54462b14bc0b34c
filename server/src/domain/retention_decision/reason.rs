//! Why a snapshot is kept, as a value a report can show and a test can
//! compare, and the calendar buckets the period rules sort snapshots into.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use crate::domain::PlanDuration;

/// The calendar unit of a bucket rule (`keep_hourly` … `keep_yearly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// A local clock hour: `2026-10-25 02h`.
    Hourly,
    /// A local calendar day: `2026-11-27`.
    Daily,
    /// An ISO 8601 week, Monday to Sunday, in its ISO year: `2026-W53`.
    Weekly,
    /// A local calendar month: `2026-11`.
    Monthly,
    /// A local calendar year: `2026`.
    Yearly,
}

impl Period {
    /// The bucket `time` falls in, read as wall-clock time in `zone`. The
    /// label is the bucket's identity: two snapshots share a bucket exactly
    /// when their labels are equal (restic's `ymdh`, `ymd`, `yw`, `ym`, `y`).
    pub fn bucket(self, time: DateTime<Utc>, zone: Tz) -> String {
        let local = time.with_timezone(&zone);
        match self {
            Self::Hourly => local.format("%Y-%m-%d %Hh").to_string(),
            Self::Daily => local.format("%Y-%m-%d").to_string(),
            Self::Weekly => {
                // The ISO year, not the calendar year: 2027-01-03 is in 2026-W53.
                let week = local.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Self::Monthly => local.format("%Y-%m").to_string(),
            Self::Yearly => local.format("%Y").to_string(),
        }
    }

    /// The rule's name as the user types it after `--keep-`.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }
}

/// One rule that keeps a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Pinned; no rule may forget it.
    Pinned {
        /// Why, as the pin was given ("legal hold"); may be empty.
        note: String,
    },
    /// Among the `of` newest snapshots (`keep_last`).
    Last {
        /// 1 for the newest.
        nth: u32,
        /// The rule's count.
        of: u32,
    },
    /// The newest snapshot of its bucket.
    Newest {
        /// Which rule.
        period: Period,
        /// The bucket's label, e.g. "2026-11-27".
        bucket: String,
        /// 1 for the newest bucket the rule kept.
        nth: u32,
        /// The rule's count.
        of: u32,
    },
    /// The oldest snapshot, kept because the rule had count left when the
    /// walk reached it although its bucket was already kept.
    Oldest {
        /// Which rule.
        period: Period,
        /// The count this keep used up.
        nth: u32,
        /// The rule's count.
        of: u32,
    },
    /// Less than `duration` older than the newest snapshot.
    Within {
        /// The rule's duration.
        duration: PlanDuration,
        /// The newest unpinned snapshot's time, which the duration counts from.
        newest: DateTime<Utc>,
    },
    /// The policy has no rule, so everything is kept.
    NoPolicy,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pinned { note } if note.is_empty() => write!(f, "pinned"),
            Self::Pinned { note } => write!(f, "pinned ({note})"),
            Self::Last { nth, of } => write!(f, "one of the {of} newest (last {nth} of {of})"),
            Self::Newest {
                period,
                bucket,
                nth,
                of,
            } => write!(
                f,
                "the newest of {bucket} ({} {nth} of {of})",
                period.rule()
            ),
            Self::Oldest { period, nth, of } => write!(
                f,
                "the oldest snapshot, kept while {} has count left ({} {nth} of {of})",
                period.rule(),
                period.rule()
            ),
            Self::Within { duration, newest } => write!(
                f,
                "within {duration} of the newest snapshot ({})",
                newest.format("%Y-%m-%d %H:%M UTC")
            ),
            Self::NoPolicy => write!(f, "kept because the plan has no retention rule"),
        }
    }
}
