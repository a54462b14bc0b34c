//! restic's documented policy semantics rebuilt as a table: each case
//! names its rule, and its kept set is derived by hand in the comment above
//! it, so a change in semantics shows up as a named, explained failure.

use chrono_tz::Tz;

use super::{daily_noons, kept};
use crate::domain::{PlanDuration, RetentionPolicy};

/// One row of the restic table: the kept set is written out by hand.
struct Case {
    name: &'static str,
    policy: RetentionPolicy,
    times: Vec<String>,
    kept: Vec<&'static str>,
}

fn strings(times: &[&str]) -> Vec<String> {
    times.iter().map(|time| (*time).to_owned()).collect()
}

/// keep-last, keep-daily and keep-weekly on their own.
fn count_cases() -> Vec<Case> {
    let none = RetentionPolicy::default();
    vec![
        Case {
            name: "keep-last 3 keeps the three newest",
            policy: RetentionPolicy {
                keep_last: Some(3),
                ..none
            },
            times: strings(&[
                "2026-11-01 10:00",
                "2026-11-02 10:00",
                "2026-11-03 10:00",
                "2026-11-04 10:00",
                "2026-11-05 10:00",
            ]),
            kept: vec!["2026-11-05 10:00", "2026-11-04 10:00", "2026-11-03 10:00"],
        },
        Case {
            // Days 20, 18 and 15 have two snapshots: only the evening one of
            // each counts, so seven days reach back to the 14th.
            name: "keep-daily 7 keeps the newest of each of the seven newest days",
            policy: RetentionPolicy {
                keep_daily: Some(7),
                ..none
            },
            times: {
                let mut times = daily_noons("2026-11-20", 20);
                times.extend(strings(&[
                    "2026-11-20 22:00",
                    "2026-11-18 22:00",
                    "2026-11-15 22:00",
                ]));
                times
            },
            kept: vec![
                "2026-11-20 22:00",
                "2026-11-19 12:00",
                "2026-11-18 22:00",
                "2026-11-17 12:00",
                "2026-11-16 12:00",
                "2026-11-15 22:00",
                "2026-11-14 12:00",
            ],
        },
        Case {
            // 2026 has 53 ISO weeks; 2026-W53 runs Mon 2026-12-28 to Sun
            // 2027-01-03, so 12-29, 01-02 and 01-03 are one bucket whose
            // newest is 01-03. A calendar-year week would split it.
            name: "keep-weekly 4 treats ISO week 53 across new year as one week",
            policy: RetentionPolicy {
                keep_weekly: Some(4),
                ..none
            },
            times: strings(&[
                "2026-12-14 10:00", // W51
                "2026-12-20 10:00", // W51, Sunday
                "2026-12-23 10:00", // W52
                "2026-12-27 10:00", // W52, Sunday
                "2026-12-29 10:00", // W53
                "2027-01-02 10:00", // W53
                "2027-01-03 10:00", // W53, Sunday
                "2027-01-05 10:00", // 2027-W01
                "2027-01-09 10:00", // 2027-W01
            ]),
            kept: vec![
                "2027-01-09 10:00",
                "2027-01-03 10:00",
                "2026-12-27 10:00",
                "2026-12-20 10:00",
            ],
        },
    ]
}

/// keep-monthly and keep-yearly, and restic's oldest-snapshot keep.
fn calendar_cases() -> Vec<Case> {
    let none = RetentionPolicy::default();
    vec![
        Case {
            // September, May and June have none: six months with snapshots
            // reach back to March, eight calendar months.
            name: "keep-monthly 6 counts only months that have snapshots",
            policy: RetentionPolicy {
                keep_monthly: Some(6),
                ..none
            },
            times: strings(&[
                "2025-12-15 10:00",
                "2026-01-15 10:00",
                "2026-03-15 10:00",
                "2026-04-15 10:00",
                "2026-07-15 10:00",
                "2026-08-15 10:00",
                "2026-10-01 10:00",
                "2026-10-15 10:00",
                "2026-11-15 10:00",
            ]),
            kept: vec![
                "2026-11-15 10:00",
                "2026-10-15 10:00",
                "2026-08-15 10:00",
                "2026-07-15 10:00",
                "2026-04-15 10:00",
                "2026-03-15 10:00",
            ],
        },
        Case {
            name: "keep-yearly 3 keeps the last snapshot of each of three years with snapshots",
            policy: RetentionPolicy {
                keep_yearly: Some(3),
                ..none
            },
            times: strings(&[
                "2022-01-01 10:00",
                "2023-07-01 10:00",
                "2025-03-01 10:00",
                "2025-12-31 23:00",
                "2026-01-05 10:00",
                "2026-06-01 10:00",
            ]),
            kept: vec!["2026-06-01 10:00", "2025-12-31 23:00", "2023-07-01 10:00"],
        },
        Case {
            // Three days, two snapshots each, count 5: the evenings use 3, and
            // the walk ends on the 1st's morning with count left, which restic
            // keeps as "oldest daily snapshot" although its day is kept.
            name: "a rule with count left at the end also keeps the oldest snapshot",
            policy: RetentionPolicy {
                keep_daily: Some(5),
                ..none
            },
            times: strings(&[
                "2026-11-01 08:00",
                "2026-11-01 20:00",
                "2026-11-02 08:00",
                "2026-11-02 20:00",
                "2026-11-03 08:00",
                "2026-11-03 20:00",
            ]),
            kept: vec![
                "2026-11-03 20:00",
                "2026-11-02 20:00",
                "2026-11-01 20:00",
                "2026-11-01 08:00",
            ],
        },
    ]
}

/// Rules together, keep-within, and keep-last 0.
fn combined_and_unused_cases() -> Vec<Case> {
    let none = RetentionPolicy::default();
    vec![
        Case {
            // 60 noons, 2026-09-29 .. 2026-11-27 (a Friday).
            // daily 7:   Nov 27, 26, 25, 24, 23, 22, 21.
            // weekly 4:  newest of each ISO week (Mon-Sun): Nov 23-29 → 27
            //            (already daily), Nov 16-22 → 22 (daily), Nov 9-15 →
            //            15, Nov 2-8 → 8. New: 15 and 8.
            // monthly 6: Nov → 27, Oct → 31, Sep → 30; only three months
            //            exist, so count is left at the oldest snapshot, Sep
            //            29, which is kept too (restic's "oldest monthly").
            // Total: 7 + 2 + 3 = 12.
            name: "daily 7, weekly 4 and monthly 6 over 60 daily snapshots",
            policy: RetentionPolicy {
                keep_daily: Some(7),
                keep_weekly: Some(4),
                keep_monthly: Some(6),
                ..none
            },
            times: daily_noons("2026-11-27", 60),
            kept: vec![
                "2026-11-27 12:00",
                "2026-11-26 12:00",
                "2026-11-25 12:00",
                "2026-11-24 12:00",
                "2026-11-23 12:00",
                "2026-11-22 12:00",
                "2026-11-21 12:00",
                "2026-11-15 12:00",
                "2026-11-08 12:00",
                "2026-10-31 12:00",
                "2026-09-30 12:00",
                "2026-09-29 12:00",
            ],
        },
        Case {
            // Years in the past: measured from now, nothing would be kept.
            // The cutoff is 2020-02-25 10:00, exclusive, as in restic.
            name: "keep-within 2d counts from the newest snapshot, not from now",
            policy: RetentionPolicy {
                keep_within: Some(PlanDuration::parse("2d").unwrap()),
                ..none
            },
            times: strings(&[
                "2020-02-20 10:00",
                "2020-02-25 09:59",
                "2020-02-25 10:00",
                "2020-02-25 10:30",
                "2020-02-26 09:00",
                "2020-02-27 10:00",
            ]),
            kept: vec!["2020-02-27 10:00", "2020-02-26 09:00", "2020-02-25 10:30"],
        },
        Case {
            name: "keep-last 0 with another rule is the other rule alone",
            policy: RetentionPolicy {
                keep_last: Some(0),
                keep_daily: Some(1),
                ..none
            },
            times: strings(&["2026-11-25 10:00", "2026-11-26 10:00", "2026-11-27 10:00"]),
            kept: vec!["2026-11-27 10:00"],
        },
        Case {
            name: "keep-last 0 alone is an empty policy and keeps everything",
            policy: RetentionPolicy {
                keep_last: Some(0),
                ..none
            },
            times: strings(&["2026-11-25 10:00", "2026-11-26 10:00", "2026-11-27 10:00"]),
            kept: vec!["2026-11-27 10:00", "2026-11-26 10:00", "2026-11-25 10:00"],
        },
    ]
}

fn restic_cases() -> Vec<Case> {
    [count_cases(), calendar_cases(), combined_and_unused_cases()]
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn restic_policy_examples_keep_the_hand_derived_snapshots() {
    for case in restic_cases() {
        // Arrange: the cases above.
        // Act
        let kept = kept(&case.policy, Tz::UTC, &case.times);
        // Assert
        assert_eq!(kept, case.kept, "{}", case.name);
    }
}
