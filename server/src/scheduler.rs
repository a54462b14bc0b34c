//! The scheduler: turns due schedule slots into jobs.
//!
//! Every server instance runs it, every tick ([`SchedulerSettings::tick`],
//! 5 s by default). A tick reads each agent of each plan with the newest
//! slot already enqueued for it, finds the newest slot that is due (after
//! that one and after the plan's creation, at or before now) and enqueues a
//! job for it. The database decides who wins: a job's key is (tenant, plan,
//! agent, slot) and the insert does nothing on a conflict, so however many
//! instances tick at once, each slot gets exactly one job — no lock, no
//! leader, no in-process state.
//!
//! Beside the tick, two passes run on their own intervals as their own
//! tasks: applying every plan's retention policy ([`retention_pass`]) and
//! collecting every tenant's garbage ([`gc_pass`]). The tick enqueues due
//! restore tests ([`rehearsals`]) and fails
//! every running job whose lease ran out (its agent
//! stopped reporting), naming the reason ([`job_claims::expire_leases`]).
//! "Now" for slots is the [`ScheduleClock`] (the wall clock, unless a test
//! speeds it up); "now" for leases is always the wall clock, so a fast
//! schedule clock never fails a job early.
//!
//! Only the newest due slot is enqueued. After downtime (of the server,
//! or of every instance) the missed slots produce one catch-up run, not a
//! burst: the backup that runs takes everything since the last one anyway.
//! The skipped slots are counted in the tick's report and logged.
//!
//! Cost: one query per tick for all plans, and per agent of a plan one
//! insert when a slot is due. Finding the newest due slot looks back in
//! growing windows (an hour, a day, a week, …), so a minutely schedule
//! after a year's downtime still costs a few dozen steps, not half a million.
//! A tick that enqueued jobs asks the [`Dispatcher`] to look for them at
//! once, so agents waiting on this instance get them without waiting for
//! its next pass.

mod clock;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use clock::ScheduleClock;

use crate::configuration::SchedulerSettings;
use crate::db::{Database, DbError, job_claims, jobs};
use crate::dispatcher::Dispatcher;
use crate::domain::Schedule;

pub mod gc_pass;
mod rehearsals;
pub mod retention_pass;

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Jobs this tick enqueued.
    pub enqueued: u32,
    /// Due slots another instance (or an earlier tick) had enqueued already.
    pub already_enqueued: u32,
    /// Older due slots left out because a newer one was due (downtime).
    pub skipped: u32,
    /// Plans whose stored schedule no longer parses (logged, left alone).
    pub unreadable: u32,
    /// Running jobs failed because their agent stopped renewing the lease.
    pub expired: u64,
    /// Restore tests enqueued on their plans' cadence.
    pub rehearsals: u32,
}

/// One tick: fails the jobs whose lease ended before now on the wall
/// clock, then enqueues the due slots as of now on `clock`.
///
/// "Now" is read after the plans are: a tick then never enqueues a slot
/// older than one another instance's tick (whose now came before this
/// read) might have skipped. Read before, a tick whose now is just before
/// a slot boundary could read another instance's newer slot for some
/// agents and leave them without the older slot the others got.
///
/// # Errors
///
/// A failed query or insert; what was not reached is tried next tick.
pub async fn tick(db: &Database, clock: &ScheduleClock) -> Result<TickReport, DbError> {
    let expired = job_claims::expire_leases(db, Utc::now()).await?;
    let targets = jobs::schedule_targets(db).await?;
    let report = enqueue_due_for(db, targets, clock.now()).await?;
    Ok(TickReport { expired, ..report })
}

/// Enqueues the newest due slot of every agent of every plan, as of
/// schedule time `now`.
///
/// # Errors
///
/// A failed query or insert; the slots not reached are tried next tick.
pub async fn enqueue_due(db: &Database, now: DateTime<Utc>) -> Result<TickReport, DbError> {
    enqueue_due_for(db, jobs::schedule_targets(db).await?, now).await
}

async fn enqueue_due_for(
    db: &Database,
    targets: Vec<jobs::ScheduleTarget>,
    now: DateTime<Utc>,
) -> Result<TickReport, DbError> {
    let mut report = TickReport::default();
    for target in targets {
        let schedule = match Schedule::parse(&target.schedule, &target.timezone) {
            Ok(schedule) => schedule,
            Err(error) => {
                tracing::warn!(plan.id = %target.plan, %error, "a stored plan's schedule does not parse; it is not scheduled");
                report.unreadable += 1;
                continue;
            }
        };
        let after = target.last_slot.unwrap_or(target.plan_created_at);
        let Some((slot, older)) = newest_due(&schedule, after, now) else {
            continue;
        };
        report.skipped += older;
        if jobs::insert_scheduled(db, target.tenant, target.plan, target.agent, slot).await? {
            report.enqueued += 1;
        } else {
            report.already_enqueued += 1;
        }
    }
    report.rehearsals = rehearsals::enqueue_due(db, now).await?;
    Ok(report)
}

/// The newest slot in `(after, now]`, and how many older slots in that
/// range it stands for (at least those in the window it was found in).
fn newest_due(
    schedule: &Schedule,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, u32)> {
    let mut window = chrono::Duration::hours(1);
    loop {
        let start = (now - window).max(after);
        let mut newest = None;
        let mut count = 0u32;
        let mut cursor = start;
        while let Some(slot) = schedule.next_slot(cursor).filter(|slot| *slot <= now) {
            newest = Some(slot);
            count = count.saturating_add(1);
            cursor = slot;
        }
        if let Some(slot) = newest {
            return Some((slot, count - 1));
        }
        if start == after {
            return None;
        }
        window = window * 8;
    }
}

/// Runs [`tick`] every `settings.tick` on `clock` until the task is
/// dropped; wakes `dispatcher` after a tick that enqueued jobs.
pub async fn run(
    db: Database,
    settings: SchedulerSettings,
    clock: ScheduleClock,
    dispatcher: Arc<Dispatcher>,
) {
    if settings.clock_speed > 1 {
        tracing::warn!(
            speed = settings.clock_speed,
            "the scheduler's clock runs fast (a testing aid): schedules come due early"
        );
    }
    let mut interval = tokio::time::interval(settings.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let outcome = tick(&db, &clock).await;
        if outcome
            .as_ref()
            .is_ok_and(|report| report.enqueued + report.rehearsals > 0)
        {
            dispatcher.look_now();
        }
        match outcome {
            Ok(report)
                if report.enqueued > 0
                    || report.skipped > 0
                    || report.expired > 0
                    || report.rehearsals > 0 =>
            {
                tracing::info!(
                    enqueued = report.enqueued,
                    rehearsals = report.rehearsals,
                    already_enqueued = report.already_enqueued,
                    skipped = report.skipped,
                    expired = report.expired,
                    "scheduled due slots; failed jobs whose lease ran out"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "scheduling due slots failed; retrying next tick");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_newest_due_slot_is_found_and_older_ones_counted() {
        let minutely = Schedule::parse("* * * * *", "UTC").unwrap();

        let found = newest_due(
            &minutely,
            utc("2027-01-01T00:00:00Z"),
            utc("2027-01-01T00:10:30Z"),
        );

        assert_eq!(found, Some((utc("2027-01-01T00:10:00Z"), 9)));
    }

    #[test]
    fn nothing_is_due_before_the_next_slot() {
        let nightly = Schedule::parse("0 2 * * *", "UTC").unwrap();

        let found = newest_due(
            &nightly,
            utc("2027-01-01T02:00:00Z"),
            utc("2027-01-02T01:59:59Z"),
        );

        assert_eq!(found, None);
    }

    #[test]
    fn after_a_year_of_downtime_a_minutely_schedule_yields_one_slot() {
        let minutely = Schedule::parse("* * * * *", "UTC").unwrap();

        let (slot, _) = newest_due(
            &minutely,
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:30Z"),
        )
        .unwrap();

        assert_eq!(slot, utc("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn a_weekly_slot_is_found_through_the_growing_windows() {
        let mondays = Schedule::parse("0 9 * * 1", "Europe/Berlin").unwrap();

        // 2027-01-04 is a Monday; 09:00 CET is 08:00 UTC.
        let found = newest_due(
            &mondays,
            utc("2027-01-01T00:00:00Z"),
            utc("2027-01-09T00:00:00Z"),
        );

        assert_eq!(found, Some((utc("2027-01-04T08:00:00Z"), 0)));
    }
}
