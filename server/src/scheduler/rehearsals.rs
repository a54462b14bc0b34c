//! Restore tests on a plan's cadence (`--restore-test-every`).
//!
//! A plan's rehearsal slots are its creation time plus whole multiples of
//! the cadence: slot 0 is the creation itself, so the first rehearsal runs
//! as soon as an agent has a snapshot of the plan, and then one per
//! cadence. Each agent of the plan rehearses restoring its own newest
//! snapshot of the plan. Like backup slots, a rehearsal slot is a job key
//! (tenant, plan, agent, kind, slot) inserted with `ON CONFLICT DO
//! NOTHING`, so every instance may try and exactly one job results; after
//! downtime only the newest slot is enqueued.

use chrono::{DateTime, Utc};

use crate::db::{Database, DbError, jobs, plans};
use crate::operations::plans::rehearsal_of;

/// Enqueues the due rehearsal slot of every agent of every plan with a
/// restore-test cadence whose agent has a snapshot to rehearse; returns
/// how many jobs this call enqueued.
///
/// # Errors
///
/// A failed query or insert; the rest are tried next tick.
pub async fn enqueue_due(db: &Database, now: DateTime<Utc>) -> Result<u32, DbError> {
    let mut enqueued = 0;
    for target in jobs::rehearsal_targets(db).await? {
        let Some(slot) = newest_slot(target.plan_created_at, target.every, now) else {
            continue;
        };
        if target.last_slot.is_some_and(|last| last >= slot) {
            continue;
        }
        let plan = plans::get(db, target.tenant, target.plan).await?;
        let Some(work) = rehearsal_of(db, target.tenant, &plan, target.agent).await? else {
            continue;
        };
        if jobs::insert_scheduled_restore_test(
            db,
            target.tenant,
            target.plan,
            target.agent,
            slot,
            &work,
        )
        .await?
        {
            enqueued += 1;
        }
    }
    Ok(enqueued)
}

/// The newest slot `created + k × every` (k ≥ 0) at or before `now`.
fn newest_slot(
    created: DateTime<Utc>,
    every: std::time::Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let since = now.signed_duration_since(created).to_std().ok()?;
    let every_ms = every.as_millis().max(1);
    let whole = since.as_millis() / every_ms * every_ms;
    let offset = chrono::Duration::milliseconds(i64::try_from(whole).ok()?);
    created.checked_add_signed(offset)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_first_slot_is_the_plans_creation_then_one_per_cadence() {
        let created = utc("2027-01-01T10:00:00Z");
        let week = Duration::from_hours(24 * 7);

        let slots = [
            newest_slot(created, week, utc("2027-01-01T10:00:00Z")),
            newest_slot(created, week, utc("2027-01-08T09:59:59Z")),
            newest_slot(created, week, utc("2027-01-08T10:00:00Z")),
            newest_slot(created, week, utc("2027-03-01T00:00:00Z")),
            newest_slot(created, week, utc("2026-12-31T00:00:00Z")),
        ];

        assert_eq!(
            slots,
            [
                Some(utc("2027-01-01T10:00:00Z")),
                Some(utc("2027-01-01T10:00:00Z")),
                Some(utc("2027-01-08T10:00:00Z")),
                Some(utc("2027-02-26T10:00:00Z")),
                None,
            ]
        );
    }
}
