//! Known answers: restic's policy examples (in `restic_cases`), then
//! reasons, zones, daylight saving, pins and ties.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{Candidate, Period, Reason, decide};
use crate::domain::{PlanDuration, RetentionPolicy};

mod restic_cases;

/// `2026-11-27 10:00` as a UTC instant.
fn at(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .unwrap_or_else(|err| panic!("{text:?} is not a test time - {err}"))
        .and_utc()
}

/// Unpinned candidates, ids in input order.
fn snapshots<S: AsRef<str>>(times: &[S]) -> Vec<Candidate<usize>> {
    times
        .iter()
        .enumerate()
        .map(|(id, time)| Candidate {
            id,
            time: at(time.as_ref()),
            pin: None,
        })
        .collect()
}

/// The kept snapshots' UTC times, newest first.
fn kept<S: AsRef<str>>(policy: &RetentionPolicy, zone: Tz, times: &[S]) -> Vec<String> {
    decide(policy, zone, &snapshots(times))
        .into_iter()
        .filter(|decision| decision.keep)
        .map(|decision| decision.time.format("%Y-%m-%d %H:%M").to_string())
        .collect()
}

/// `days` snapshots, one a day at 12:00 UTC, the last on `last_day`.
fn daily_noons(last_day: &str, days: i64) -> Vec<String> {
    let last = at(&format!("{last_day} 12:00"));
    (0..days)
        .map(|back| {
            (last - TimeDelta::days(back))
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .collect()
}

#[test]
fn an_empty_policy_keeps_every_snapshot_saying_so() {
    // Arrange
    let snapshots = snapshots(&["2026-11-26 10:00", "2026-11-27 10:00"]);
    // Act
    let decisions = decide(&RetentionPolicy::default(), Tz::UTC, &snapshots);
    // Assert
    assert!(decisions.iter().all(|decision| decision.keep));
    assert!(
        decisions
            .iter()
            .all(|decision| decision.reasons == [Reason::NoPolicy])
    );
}

#[test]
fn a_snapshot_kept_by_several_rules_lists_every_reason_as_a_sentence() {
    // Arrange
    let policy = RetentionPolicy {
        keep_last: Some(1),
        keep_daily: Some(7),
        keep_within: Some(PlanDuration::parse("1d").unwrap()),
        ..RetentionPolicy::default()
    };
    let times = daily_noons("2026-11-27", 3);
    // Act
    let decisions = decide(&policy, Tz::UTC, &snapshots(&times));
    // Assert
    let newest: Vec<String> = decisions[0]
        .reasons
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        newest,
        [
            "one of the 1 newest (last 1 of 1)",
            "the newest of 2026-11-27 (daily 1 of 7)",
            "within 24h of the newest snapshot (2026-11-27 12:00 UTC)",
        ]
    );
    assert_eq!(
        decisions[2].reasons[0].to_string(),
        "the newest of 2026-11-25 (daily 3 of 7)"
    );
}

#[test]
fn the_same_instants_fall_on_different_days_in_utc_tokyo_and_new_york() {
    // Arrange: 03:00Z is 12:00 in Tokyo and 22:00 the day before in New
    // York; 23:30Z is already the 27th in Tokyo; 14:30Z is 23:30 the 26th
    // in Tokyo. The 20th is a separate day everywhere.
    let policy = RetentionPolicy {
        keep_daily: Some(5),
        ..RetentionPolicy::default()
    };
    let times = [
        "2026-11-20 12:00",
        "2026-11-26 14:30",
        "2026-11-26 23:30",
        "2026-11-27 03:00",
    ];
    // Act
    let in_utc = kept(&policy, Tz::UTC, &times);
    let in_tokyo = kept(&policy, Tz::Asia__Tokyo, &times);
    let in_new_york = kept(&policy, Tz::America__New_York, &times);
    // Assert
    assert_eq!(
        in_utc,
        ["2026-11-27 03:00", "2026-11-26 23:30", "2026-11-20 12:00"]
    );
    assert_eq!(
        in_tokyo,
        ["2026-11-27 03:00", "2026-11-26 14:30", "2026-11-20 12:00"]
    );
    assert_eq!(in_new_york, ["2026-11-27 03:00", "2026-11-20 12:00"]);
}

#[test]
fn a_bucket_label_is_the_local_day_of_the_plan_zone() {
    // Arrange
    let late_utc = at("2026-11-26 23:30");
    // Act
    let tokyo = Period::Daily.bucket(late_utc, Tz::Asia__Tokyo);
    let new_york = Period::Daily.bucket(late_utc, Tz::America__New_York);
    // Assert
    assert_eq!(tokyo, "2026-11-27");
    assert_eq!(new_york, "2026-11-26");
}

#[test]
fn both_0230s_of_berlins_fall_back_night_share_one_hourly_bucket() {
    // Arrange: 00:30Z is 02:30 CEST, 01:30Z is 02:30 CET (2026-10-25);
    // 22:30Z the day before is 00:30 CEST, its own hour.
    let policy = RetentionPolicy {
        keep_hourly: Some(24),
        ..RetentionPolicy::default()
    };
    let times = ["2026-10-24 22:30", "2026-10-25 00:30", "2026-10-25 01:30"];
    // Act
    let decisions = decide(&policy, Tz::Europe__Berlin, &snapshots(&times));
    // Assert
    let keeps: Vec<_> = decisions.iter().map(|decision| decision.keep).collect();
    assert_eq!(
        keeps,
        [true, false, true],
        "newest first: 01:30Z, 00:30Z, 22:30Z"
    );
    assert_eq!(
        decisions[0].reasons[0].to_string(),
        "the newest of 2026-10-25 02h (hourly 1 of 24)"
    );
    assert_eq!(
        kept(&policy, Tz::UTC, &times).len(),
        3,
        "in UTC they are three hours"
    );
}

#[test]
fn berlins_23_hour_spring_forward_day_is_one_daily_bucket() {
    // Arrange: 2026-03-29 local runs from 23:00Z on the 28th (00:00 CET)
    // to 22:00Z on the 29th (24:00 CEST); 22:30Z on the 28th is 23:30 CET.
    let policy = RetentionPolicy {
        keep_daily: Some(3),
        ..RetentionPolicy::default()
    };
    let times = [
        "2026-03-28 22:30",
        "2026-03-28 23:15",
        "2026-03-29 00:30",
        "2026-03-29 21:30",
    ];
    // Act
    let kept = kept(&policy, Tz::Europe__Berlin, &times);
    // Assert
    assert_eq!(kept, ["2026-03-29 21:30", "2026-03-28 22:30"]);
}

#[test]
fn a_pinned_old_snapshot_is_kept_and_does_not_use_up_keep_last() {
    // Arrange: the oldest and the newest are pinned.
    let mut snapshots = snapshots(&daily_noons("2026-11-27", 5));
    snapshots[0].pin = Some("restore in progress".to_owned());
    snapshots[4].pin = Some("legal hold".to_owned());
    let policy = RetentionPolicy {
        keep_last: Some(2),
        ..RetentionPolicy::default()
    };
    // Act
    let decisions = decide(&policy, Tz::UTC, &snapshots);
    // Assert: newest first, so ids 0..4 come back as 0, 1, 2, 3, 4 = Nov 27 … 23.
    let keeps: Vec<_> = decisions.iter().map(|decision| decision.keep).collect();
    assert_eq!(keeps, [true, true, true, false, true]);
    assert_eq!(
        decisions[4].reasons,
        [Reason::Pinned {
            note: "legal hold".to_owned()
        }]
    );
    assert_eq!(decisions[4].reasons[0].to_string(), "pinned (legal hold)");
    assert_eq!(decisions[1].reasons, [Reason::Last { nth: 1, of: 2 }]);
    assert_eq!(decisions[2].reasons, [Reason::Last { nth: 2, of: 2 }]);
}

#[test]
fn equal_times_are_ordered_by_id_whatever_the_input_order() {
    // Arrange
    let time = at("2026-11-27 10:00");
    let candidate = |id| Candidate {
        id,
        time,
        pin: None,
    };
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..RetentionPolicy::default()
    };
    // Act
    let forwards = decide(&policy, Tz::UTC, &[candidate(7), candidate(9)]);
    let backwards = decide(&policy, Tz::UTC, &[candidate(9), candidate(7)]);
    // Assert: the greater id counts as the newer.
    assert_eq!(forwards, backwards);
    assert_eq!((forwards[0].id, forwards[0].keep), (9, true));
    assert_eq!((forwards[1].id, forwards[1].keep), (7, false));
}
