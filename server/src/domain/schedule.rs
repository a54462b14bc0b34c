//! When a plan runs: a 5-field crontab expression read in an IANA time zone.
//!
//! Slots are wall-clock times in the plan's zone, so "02:30 daily" stays at
//! 02:30 local time across daylight-saving changes. On the spring-forward day
//! 02:30 does not exist; the slot moves to the first instant after the gap
//! (03:00), as croner resolves it. On the fall-back day 02:30 happens twice;
//! the job runs once.
//!
//! [`Schedule::gap_longer_than`] finds a wait between consecutive slots
//! longer than the RPO within a year: a backup that runs less often than
//! the RPO cannot meet it.

use std::fmt;

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::plan_duration::format_seconds;

/// How far ahead [`Schedule::gap_longer_than`] looks: a year, so weekly,
/// monthly and yearly patterns and both daylight-saving changes are seen.
const HORIZON_DAYS: i64 = 366;
/// [`HORIZON_DAYS`] in seconds.
const HORIZON_SECONDS: u64 = 366 * 86_400;

/// A parsed cron expression and the zone its wall-clock times are read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as the user wrote it (trimmed), for storage and display.
    cron_text: String,
    cron: Cron,
    zone: Tz,
}

/// Why a schedule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not a 5-field crontab expression.
    #[error(
        "{text:?} is not a cron schedule of 5 fields like '0 2 * * *' (minute hour day-of-month month day-of-week) - {problem}"
    )]
    BadCron {
        /// The expression.
        text: String,
        /// What croner found wrong.
        problem: String,
    },
    /// Not an IANA zone name.
    #[error("{0:?} is not a time zone of the IANA database like Europe/Berlin or UTC")]
    UnknownZone(String),
    /// The pattern never matches (e.g. 30 February).
    #[error("the schedule {0:?} never runs within a year")]
    NeverRuns(String),
}

/// The longest wait between two consecutive slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The slot the wait starts after.
    pub from: DateTime<Utc>,
    /// The next slot.
    pub to: DateTime<Utc>,
    /// The wait in seconds, minus the hour a fall-back clock change adds
    /// (see [`Schedule::gap_longer_than`]).
    pub seconds: u64,
}

impl Schedule {
    /// Parses `cron` (exactly 5 fields, no seconds or years) and `zone`.
    ///
    /// # Errors
    ///
    /// Names the bad expression or zone.
    pub fn parse(cron: &str, zone: &str) -> Result<Self, ScheduleError> {
        let cron_text = cron.split_whitespace().collect::<Vec<_>>().join(" ");
        let bad = |problem: String| ScheduleError::BadCron {
            text: cron.trim().to_owned(),
            problem,
        };
        let fields = cron_text.split(' ').count();
        if cron_text.starts_with('@') || fields != 5 {
            return Err(bad(format!("it has {fields} fields")));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&cron_text)
            .map_err(|err| bad(err.to_string()))?;
        let zone_name = zone.trim();
        let zone: Tz = zone_name
            .parse()
            .map_err(|_| ScheduleError::UnknownZone(zone_name.to_owned()))?;
        Ok(Self {
            cron_text,
            cron: parsed,
            zone,
        })
    }

    /// The expression, normalised to single spaces.
    pub fn cron(&self) -> &str {
        &self.cron_text
    }

    /// The IANA zone name.
    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// The first slot strictly after `after`, or `None` when the pattern
    /// has no further match croner can find.
    pub fn next_slot(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|slot| slot.with_timezone(&Utc))
    }

    /// The first wait between consecutive slots longer than `limit` seconds
    /// within a year from `from` (the wait after the year's last slot
    /// included), or `None` when every wait is within it.
    ///
    /// Each wait is real elapsed time, less the hour by which a fall-back
    /// clock change stretches it: a daily 02:00 job in Europe/Berlin is 25
    /// hours apart once a year, and refusing `--rpo 24h` for it would be
    /// pedantic. Spring forward shortens the wait and needs no allowance.
    ///
    /// Slots are not visited one by one (an every-minute schedule has half
    /// a million a year): from a slot `s` it asks for the first slot at or
    /// after `s + limit / 2`; when that one is at most `limit` after `s`, no
    /// wait between them can exceed `limit` and the slots in between are
    /// skipped. Only the rare stretch that ends in a long wait is walked
    /// slot by slot. A year is a few hundred steps for a daily limit.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::NeverRuns`] when no slot falls within the year.
    pub fn gap_longer_than(
        &self,
        from: DateTime<Utc>,
        limit: u64,
    ) -> Result<Option<Gap>, ScheduleError> {
        let horizon = from + chrono::Duration::days(HORIZON_DAYS);
        let mut slot = self
            .next_slot(from)
            .filter(|s| *s <= horizon)
            .ok_or_else(|| ScheduleError::NeverRuns(self.cron_text.clone()))?;
        // Past two horizons a limit changes nothing, and durations stay in range.
        let limit = limit.min(2 * HORIZON_SECONDS);
        let as_span = |secs: u64| chrono::Duration::seconds(i64::try_from(secs).unwrap_or(0));
        let half = as_span((limit / 2).max(1));
        let limit_span = as_span(limit);
        while slot <= horizon {
            let probe = slot + half - chrono::Duration::seconds(1);
            let Some(ahead) = self.next_slot(probe.max(slot)) else {
                return Ok(None);
            };
            if ahead - slot <= limit_span {
                slot = ahead;
                continue;
            }
            // A long wait ends at `ahead`: walk the slots up to it.
            loop {
                let Some(next) = self.next_slot(slot) else {
                    return Ok(None);
                };
                let seconds = self.wait_seconds(slot, next);
                if seconds > limit {
                    return Ok(Some(Gap {
                        from: slot,
                        to: next,
                        seconds,
                    }));
                }
                slot = next;
                if slot >= ahead {
                    break;
                }
            }
        }
        Ok(None)
    }

    /// Seconds from `from` to `to`, less any growth of the zone's offset
    /// shrinking (fall back) between them.
    fn wait_seconds(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        let offset = |at: DateTime<Utc>| {
            i64::from(
                self.zone
                    .offset_from_utc_datetime(&at.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        };
        let fall_back = (offset(from) - offset(to)).max(0);
        u64::try_from((to - from).num_seconds() - fall_back).unwrap_or(0)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} in {}", self.cron_text, self.zone.name())
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} from {} to {}",
            format_seconds(self.seconds),
            self.from.to_rfc3339(),
            self.to.to_rfc3339()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_five_field_expression_and_a_zone_are_accepted_and_normalised() {
        let schedule = Schedule::parse(" 30  2 * * * ", "Europe/Berlin").unwrap();
        assert_eq!(schedule.cron(), "30 2 * * *");
        assert_eq!(schedule.zone(), "Europe/Berlin");
    }

    #[test]
    fn malformed_cron_expressions_are_refused_naming_them() {
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 25 * * *",
            "@daily",
            "x y z a b",
        ] {
            let err = Schedule::parse(bad, "UTC").unwrap_err();
            assert!(matches!(err, ScheduleError::BadCron { .. }), "{bad}: {err}");
            assert!(
                err.to_string().contains(&format!("{:?}", bad.trim())),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unknown_zone_is_refused_naming_it() {
        let err = Schedule::parse("0 2 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"Mars/Olympus\" is not a time zone of the IANA database like Europe/Berlin or UTC"
        );
    }

    #[test]
    fn slots_are_wall_clock_times_in_the_zone() {
        let schedule = Schedule::parse("0 9 * * *", "America/New_York").unwrap();
        // Arrange: 2027-01-15 is winter time, UTC-5.
        let slot = schedule.next_slot(utc("2027-01-15T00:00:00Z")).unwrap();
        assert_eq!(slot, utc("2027-01-15T14:00:00Z"));
    }

    #[test]
    fn a_daily_0230_slot_moves_past_the_spring_forward_gap_in_berlin() {
        // 2027-03-28: clocks jump from 02:00 CET to 03:00 CEST.
        let schedule = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();

        let before = schedule.next_slot(utc("2027-03-27T00:00:00Z")).unwrap();
        let on_the_day = schedule.next_slot(before).unwrap();
        let after = schedule.next_slot(on_the_day).unwrap();

        assert_eq!(before, utc("2027-03-27T01:30:00Z")); // 02:30 CET
        assert_eq!(on_the_day, utc("2027-03-28T01:00:00Z")); // 03:00 CEST
        assert_eq!(after, utc("2027-03-29T00:30:00Z")); // 02:30 CEST
    }

    #[test]
    fn a_daily_schedule_has_a_one_day_gap_despite_the_fall_back_hour() {
        let schedule = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let from = utc("2027-01-01T00:00:00Z");

        let within_a_day = schedule.gap_longer_than(from, 86_400).unwrap();
        let within_23_hours = schedule.gap_longer_than(from, 23 * 3600).unwrap();

        assert_eq!(within_a_day, None);
        assert_eq!(within_23_hours.unwrap().seconds, 86_400);
    }

    #[test]
    fn weekdays_at_nine_leave_a_weekend_gap_of_72_hours() {
        let schedule = Schedule::parse("0 9 * * 1-5", "UTC").unwrap();

        let gap = schedule
            .gap_longer_than(utc("2027-01-01T00:00:00Z"), 24 * 3600)
            .unwrap()
            .unwrap();

        assert_eq!(gap.seconds, 72 * 3600);
        assert_eq!(gap.from.format("%a").to_string(), "Fri");
        assert_eq!(gap.to.format("%a").to_string(), "Mon");
    }

    #[test]
    fn a_pattern_that_never_matches_is_refused() {
        let schedule = Schedule::parse("0 0 30 2 *", "UTC");
        let err = schedule
            .map_err(|e| e.to_string())
            .and_then(|s| {
                s.gap_longer_than(utc("2027-01-01T00:00:00Z"), 3600)
                    .map_err(|e| e.to_string())
            })
            .unwrap_err();
        assert!(err.contains("0 0 30 2 *"), "{err}");
    }

    #[test]
    fn a_long_wait_after_months_of_minutely_slots_is_found() {
        // Every minute from January to November: the wait is December.
        let schedule = Schedule::parse("* * * 1-11 *", "UTC").unwrap();

        let gap = schedule
            .gap_longer_than(utc("2027-01-01T00:00:00Z"), 3600)
            .unwrap()
            .unwrap();
        let every_minute = Schedule::parse("* * * * *", "UTC").unwrap();

        assert_eq!(gap.from, utc("2027-11-30T23:59:00Z"));
        assert_eq!(gap.to, utc("2028-01-01T00:00:00Z"));
        assert_eq!(
            every_minute
                .gap_longer_than(utc("2027-01-01T00:00:00Z"), 3600)
                .unwrap(),
            None
        );
    }
}
