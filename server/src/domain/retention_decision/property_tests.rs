//! Properties over random policies and snapshot sets. The server has no
//! property-testing crate, so a fixed-seed xorshift generator drives a plain
//! loop: every run checks the same thousand cases, and a failure names its
//! case number.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{Candidate, Decision, decide};
use crate::domain::{PlanDuration, RetentionPolicy};

/// Marsaglia's xorshift64: deterministic, and plenty for picking test data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn count(&mut self) -> Option<u32> {
        self.chance(50)
            .then(|| u32::try_from(self.below(8)).expect("small"))
    }
}

const CASES: u64 = 1000;
const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Asia__Tokyo,
    Tz::America__New_York,
    Tz::Europe__Berlin,
    Tz::Asia__Kolkata,
];

fn random_policy(random: &mut Random) -> RetentionPolicy {
    RetentionPolicy {
        keep_last: random.count(),
        keep_hourly: random.count(),
        keep_daily: random.count(),
        keep_weekly: random.count(),
        keep_monthly: random.count(),
        keep_yearly: random.count(),
        keep_within: random
            .chance(30)
            .then(|| PlanDuration::from_secs(1 + random.below(40 * 86_400)).unwrap()),
    }
}

/// Up to 40 snapshots over about two years, a quarter of them on a few
/// shared instants so that equal times occur, a tenth pinned.
fn random_snapshots(random: &mut Random) -> Vec<Candidate<u32>> {
    let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).expect("2026-01-01");
    let shared: Vec<i64> = (0..3)
        .map(|_| i64::try_from(random.below(700 * 86_400)).expect("small"))
        .collect();
    (0..random.below(41))
        .map(|id| {
            let offset = if random.chance(25) {
                shared[usize::try_from(random.below(3)).expect("small")]
            } else {
                i64::try_from(random.below(700 * 86_400)).expect("small")
            };
            Candidate {
                id: u32::try_from(id).expect("small"),
                time: start + TimeDelta::seconds(offset),
                pin: random.chance(10).then(|| "pinned by the test".to_owned()),
            }
        })
        .collect()
}

fn shuffled<T: Clone>(items: &[T], random: &mut Random) -> Vec<T> {
    let mut items = items.to_vec();
    for at in (1..items.len()).rev() {
        let other = usize::try_from(random.below(at as u64 + 1)).expect("small");
        items.swap(at, other);
    }
    items
}

fn kept_count(decisions: &[Decision<u32>]) -> usize {
    decisions.iter().filter(|decision| decision.keep).count()
}

#[test]
fn the_newest_snapshot_is_kept_whenever_any_rule_is_in_use() {
    let mut random = Random(0x5EED_0001);
    for case in 0..CASES {
        // Arrange
        let policy = random_policy(&mut random);
        let snapshots = random_snapshots(&mut random);
        let zone = ZONES[usize::try_from(random.below(5)).expect("small")];
        let counts = [
            policy.keep_last,
            policy.keep_hourly,
            policy.keep_daily,
            policy.keep_weekly,
            policy.keep_monthly,
            policy.keep_yearly,
        ];
        let in_use =
            counts.iter().any(|count| count.unwrap_or(0) >= 1) || policy.keep_within.is_some();
        // Act
        let decisions = decide(&policy, zone, &snapshots);
        // Assert
        let newest = snapshots.iter().map(|s| (s.time, s.id)).max();
        if let (true, Some((time, id))) = (in_use, newest) {
            let decision = decisions.iter().find(|d| d.id == id).unwrap();
            assert!(
                decision.keep && decision.time == time,
                "case {case}: {policy:?} in {zone} forgets the newest snapshot"
            );
        }
        assert!(
            decisions.iter().all(|d| d.keep != d.reasons.is_empty()),
            "case {case}: keep disagrees with reasons"
        );
    }
}

#[test]
fn the_decision_does_not_depend_on_the_input_order() {
    let mut random = Random(0x5EED_0002);
    for case in 0..CASES {
        // Arrange
        let policy = random_policy(&mut random);
        let snapshots = random_snapshots(&mut random);
        let zone = ZONES[usize::try_from(random.below(5)).expect("small")];
        let reordered = shuffled(&snapshots, &mut random);
        // Act
        let original = decide(&policy, zone, &snapshots);
        let from_reordered = decide(&policy, zone, &reordered);
        // Assert
        assert_eq!(
            original, from_reordered,
            "case {case}: {policy:?} in {zone} depends on input order"
        );
        assert_eq!(original.len(), snapshots.len(), "case {case}");
    }
}

#[test]
fn keep_last_alone_keeps_the_pinned_and_then_n_or_all_of_the_rest() {
    let mut random = Random(0x5EED_0003);
    for case in 0..CASES {
        // Arrange
        let n = u32::try_from(1 + random.below(30)).expect("small");
        let policy = RetentionPolicy {
            keep_last: Some(n),
            ..RetentionPolicy::default()
        };
        let snapshots = random_snapshots(&mut random);
        let pinned = snapshots.iter().filter(|s| s.pin.is_some()).count();
        let unpinned = snapshots.len() - pinned;
        // Act
        let decisions = decide(&policy, Tz::UTC, &snapshots);
        // Assert
        let expected = pinned + unpinned.min(usize::try_from(n).expect("small"));
        assert_eq!(
            kept_count(&decisions),
            expected,
            "case {case}: keep-last {n} over {unpinned} unpinned and {pinned} pinned"
        );
    }
}
