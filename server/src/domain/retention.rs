//! Which snapshots a plan keeps: restic-style rules, each optional. A
//! snapshot is kept when any rule keeps it; with no rule at all, every
//! snapshot is kept (nothing is ever forgotten by accident).

use super::plan_duration::PlanDuration;

/// The rules; `None` means the rule is unused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The newest N snapshots.
    pub keep_last: Option<u32>,
    /// The newest snapshot of each of the last N hours that have one.
    pub keep_hourly: Option<u32>,
    /// … days.
    pub keep_daily: Option<u32>,
    /// … ISO weeks.
    pub keep_weekly: Option<u32>,
    /// … months.
    pub keep_monthly: Option<u32>,
    /// … years.
    pub keep_yearly: Option<u32>,
    /// Every snapshot younger than this, relative to the newest.
    pub keep_within: Option<PlanDuration>,
}

/// The keep counts as typed (`--keep-daily 7`); signed, so that a negative
/// count reaches [`RetentionPolicy::parse`] and gets a sentence, not a
/// parser's complaint.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepCounts {
    /// `--keep-last`.
    pub last: Option<i64>,
    /// `--keep-hourly`.
    pub hourly: Option<i64>,
    /// `--keep-daily`.
    pub daily: Option<i64>,
    /// `--keep-weekly`.
    pub weekly: Option<i64>,
    /// `--keep-monthly`.
    pub monthly: Option<i64>,
    /// `--keep-yearly`.
    pub yearly: Option<i64>,
}

/// Why a retention rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// Zero, negative or absurdly large.
    #[error(
        "--keep-{rule} must be a count from 1 to 1000000, not {value}; leave it out to not use the rule"
    )]
    BadCount {
        /// e.g. "daily".
        rule: &'static str,
        /// What was given.
        value: i64,
    },
}

/// Largest keep count: a million snapshots is more than any schedule makes.
const MAX_KEEP: i64 = 1_000_000;

impl RetentionPolicy {
    /// Checks the counts; `keep_within` is already a valid duration.
    ///
    /// # Errors
    ///
    /// Names the first rule whose count is not from 1 to 1000000.
    pub fn parse(
        counts: KeepCounts,
        keep_within: Option<PlanDuration>,
    ) -> Result<Self, RetentionError> {
        let count = |rule: &'static str, value: Option<i64>| {
            value
                .map(|value| {
                    if (1..=MAX_KEEP).contains(&value) {
                        Ok(u32::try_from(value).expect("at most a million"))
                    } else {
                        Err(RetentionError::BadCount { rule, value })
                    }
                })
                .transpose()
        };
        Ok(Self {
            keep_last: count("last", counts.last)?,
            keep_hourly: count("hourly", counts.hourly)?,
            keep_daily: count("daily", counts.daily)?,
            keep_weekly: count("weekly", counts.weekly)?,
            keep_monthly: count("monthly", counts.monthly)?,
            keep_yearly: count("yearly", counts.yearly)?,
            keep_within,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_rules_stay_none() {
        let policy = RetentionPolicy::parse(
            KeepCounts {
                daily: Some(7),
                ..KeepCounts::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(policy.keep_daily, Some(7));
        assert_eq!(policy.keep_last, None);
    }

    #[test]
    fn zero_negative_and_huge_counts_are_refused_naming_the_rule() {
        for (counts, rule, value) in [
            (
                KeepCounts {
                    last: Some(0),
                    ..KeepCounts::default()
                },
                "last",
                0,
            ),
            (
                KeepCounts {
                    weekly: Some(-3),
                    ..KeepCounts::default()
                },
                "weekly",
                -3,
            ),
            (
                KeepCounts {
                    yearly: Some(1_000_001),
                    ..KeepCounts::default()
                },
                "yearly",
                1_000_001,
            ),
        ] {
            let err = RetentionPolicy::parse(counts, None).unwrap_err();
            assert_eq!(err, RetentionError::BadCount { rule, value });
            assert!(
                err.to_string()
                    .starts_with(&format!("--keep-{rule} must be"))
            );
        }
    }
}
