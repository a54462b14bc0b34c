//! The scheduler's clock: the time used to find due schedule slots, and
//! nothing else.
//!
//! In production it is the wall clock. As a testing aid it can run N×
//! faster from an origin: schedule time = origin + N × (wall − origin), so
//! at 60× a `* * * * *` schedule comes due every wall second. Leases,
//! `created_at` and claims never read it — a job's lease is real time
//! whatever the speed (see [`crate::scheduler::tick`]).

use chrono::{DateTime, Utc};

use crate::configuration::SchedulerSettings;

/// Schedule time as a function of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleClock {
    /// The wall time at which schedule time equals wall time.
    origin: DateTime<Utc>,
    /// How many schedule milliseconds pass per wall millisecond.
    speed: u32,
}

impl ScheduleClock {
    /// The wall clock.
    pub fn wall() -> Self {
        Self {
            origin: DateTime::UNIX_EPOCH,
            speed: 1,
        }
    }

    /// A clock running `speed`× from `origin`.
    pub fn fast(origin: DateTime<Utc>, speed: u32) -> Self {
        Self {
            origin,
            speed: speed.max(1),
        }
    }

    /// The clock the settings ask for, its origin defaulting to `started`
    /// (the server's start).
    pub fn from_settings(settings: &SchedulerSettings, started: DateTime<Utc>) -> Self {
        Self::fast(
            settings.clock_origin.unwrap_or(started),
            settings.clock_speed,
        )
    }

    /// Schedule time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// Schedule time at wall time `wall`.
    pub fn at(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        if self.speed == 1 {
            return wall;
        }
        let elapsed = (wall - self.origin).num_milliseconds();
        let scaled = elapsed.saturating_mul(i64::from(self.speed));
        self.origin + chrono::Duration::milliseconds(scaled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Schedule;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn at_speed_one_schedule_time_is_wall_time() {
        let wall = utc("2027-03-01T12:34:56.789Z");

        assert_eq!(ScheduleClock::wall().at(wall), wall);
        assert_eq!(
            ScheduleClock::fast(utc("2020-01-01T00:00:00Z"), 1).at(wall),
            wall
        );
    }

    #[test]
    fn at_sixty_times_a_minutely_schedule_comes_due_every_wall_second() {
        // Arrange
        let origin = utc("2027-01-01T00:00:00Z");
        let clock = ScheduleClock::fast(origin, 60);
        let minutely = Schedule::parse("* * * * *", "UTC").unwrap();

        // Act: the slot due at each of five consecutive wall seconds.
        let slots: Vec<_> = (1..=5)
            .map(|second| {
                let now = clock.at(origin + chrono::Duration::seconds(second));
                minutely
                    .next_slot(now - chrono::Duration::seconds(1))
                    .unwrap()
            })
            .collect();

        // Assert
        let expected: Vec<_> = (1..=5)
            .map(|minute| origin + chrono::Duration::minutes(minute))
            .collect();
        assert_eq!(slots, expected);
    }

    #[test]
    fn before_the_origin_schedule_time_runs_behind_wall_time() {
        let origin = utc("2027-01-01T00:00:00Z");

        let earlier = ScheduleClock::fast(origin, 10).at(utc("2026-12-31T23:59:59Z"));

        assert_eq!(earlier, utc("2026-12-31T23:59:50Z"));
    }

    #[test]
    fn the_origin_defaults_to_the_servers_start() {
        let started = utc("2027-05-05T05:05:05Z");
        let settings = SchedulerSettings {
            clock_speed: 2,
            ..SchedulerSettings::default()
        };

        let clock = ScheduleClock::from_settings(&settings, started);

        assert_eq!(
            clock.at(started + chrono::Duration::seconds(3)),
            started + chrono::Duration::seconds(6)
        );
    }
}
