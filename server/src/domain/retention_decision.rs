//! Which snapshots a [`RetentionPolicy`] keeps, and why: a pure function of
//! the policy, the plan's time zone and the snapshot list, so the forget job,
//! the dry-run page and the tests all see the same answer.
//!
//! The rules are restic's `forget` policy (restic
//! `internal/restic/snapshot_policy.go`, 0.17 and later):
//!
//! - Snapshots are walked newest first. Newer means a later time, or the same
//!   time and a greater id, so identical times still give one order whatever
//!   order the caller passes them in.
//! - `keep_last n` keeps the n newest.
//! - `keep_hourly` … `keep_yearly` each sort a snapshot into a bucket (an hour,
//!   a day, an ISO week, a month, a year) and keep it when its bucket differs
//!   from the last bucket the rule kept, until the rule has kept its count of
//!   buckets. The count is of buckets that hold a snapshot, so gaps make a rule
//!   reach further back: `keep_monthly 6` over a history with missing months
//!   keeps six months that have snapshots, not the last six calendar months.
//! - When a rule still has count left at the oldest snapshot, it keeps the
//!   oldest as well, even in a bucket it has already kept (restic's "oldest
//!   daily snapshot"): a young plan keeps its first backup.
//! - `keep_within d` keeps every snapshot strictly less than d older than the
//!   newest snapshot — the newest, not the current time, so a plan whose agent
//!   went quiet does not lose its history to the clock.
//! - A snapshot is kept when any rule keeps it, and every rule that keeps it
//!   is listed as a [`Reason`].
//! - A rule with count 0 is unused; a policy with no rule in use keeps every
//!   snapshot ([`Reason::NoPolicy`]): nothing is forgotten by accident.
//!
//! Pinned snapshots (legal hold, a restore in progress) are always kept, and
//! the rules run over the unpinned snapshots alone, exactly as if the pinned
//! ones did not exist: a pin uses up no count and is not the "newest" for
//! `keep_within`.
//!
//! # Time zones and daylight saving
//!
//! Buckets are local wall-clock time in the plan's zone, as the plan's owner
//! reads a calendar: a snapshot at 23:30 UTC is already the next day in
//! Asia/Tokyo and belongs to that day's bucket. On a fall-back day the local
//! hour 02:00–03:00 happens twice (Europe/Berlin, last Sunday of October):
//! snapshots at 00:30 UTC and 01:30 UTC are both 02:30 local, so they share
//! the hourly bucket "02" and `keep_hourly` keeps only the newer. On a
//! spring-forward day the local day is 23 hours long and is still one daily
//! bucket. `keep_within` alone is measured in elapsed seconds, not wall time.

mod reason;

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tests;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::retention::RetentionPolicy;

pub use reason::{Period, Reason};

/// One snapshot as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<T> {
    /// Handed back in the [`Decision`]; also breaks ties between equal times.
    pub id: T,
    /// When the snapshot was taken; buckets read it in the plan's zone.
    pub time: DateTime<Utc>,
    /// Why the snapshot must not be forgotten (e.g. "legal hold"), or `None`
    /// when it is not pinned; a pinned snapshot is always kept.
    pub pin: Option<String>,
}

/// What the policy does with one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<T> {
    /// The candidate's id.
    pub id: T,
    /// The candidate's time, so a report needs no second lookup.
    pub time: DateTime<Utc>,
    /// Kept, or to be forgotten; true exactly when `reasons` is not empty.
    pub keep: bool,
    /// Every rule that keeps the snapshot, in rule order: pin, last, hourly,
    /// daily, weekly, monthly, yearly, within.
    pub reasons: Vec<Reason>,
}

/// Decides, for every snapshot, whether `policy` keeps it in `zone`.
///
/// Returns one [`Decision`] per candidate, newest first (see the module
/// docs for the order of equal times). Ids are expected to be unique.
pub fn decide<T: Clone + Ord>(
    policy: &RetentionPolicy,
    zone: Tz,
    snapshots: &[Candidate<T>],
) -> Vec<Decision<T>> {
    let mut order: Vec<&Candidate<T>> = snapshots.iter().collect();
    order.sort_by(|a, b| (b.time, &b.id).cmp(&(a.time, &a.id)));
    let mut decisions: Vec<Decision<T>> = order
        .iter()
        .map(|candidate| Decision {
            id: candidate.id.clone(),
            time: candidate.time,
            keep: false,
            reasons: candidate
                .pin
                .iter()
                .map(|note| Reason::Pinned { note: note.clone() })
                .collect(),
        })
        .collect();
    let unpinned: Vec<usize> = (0..order.len())
        .filter(|&at| order[at].pin.is_none())
        .collect();
    if has_no_rule(policy) {
        for &at in &unpinned {
            decisions[at].reasons.push(Reason::NoPolicy);
        }
    } else {
        apply_rules(policy, zone, &unpinned, &mut decisions);
    }
    for decision in &mut decisions {
        decision.keep = !decision.reasons.is_empty();
    }
    decisions
}

/// True when no count rule is in use (absent or 0) and there is no
/// `keep_within`: restic's "empty policy".
fn has_no_rule(policy: &RetentionPolicy) -> bool {
    let counts = [
        policy.keep_last,
        policy.keep_hourly,
        policy.keep_daily,
        policy.keep_weekly,
        policy.keep_monthly,
        policy.keep_yearly,
    ];
    counts.iter().all(|count| count.unwrap_or(0) == 0) && policy.keep_within.is_none()
}

/// Runs every rule over the unpinned snapshots (`walk`, newest first, as
/// indices into `decisions`). Rules are independent, so each walks alone.
fn apply_rules<T>(
    policy: &RetentionPolicy,
    zone: Tz,
    walk: &[usize],
    decisions: &mut [Decision<T>],
) {
    if let Some(of) = policy.keep_last.filter(|&count| count > 0) {
        for (nth, &at) in (1..=of).zip(walk) {
            decisions[at].reasons.push(Reason::Last { nth, of });
        }
    }
    let periods = [
        (Period::Hourly, policy.keep_hourly),
        (Period::Daily, policy.keep_daily),
        (Period::Weekly, policy.keep_weekly),
        (Period::Monthly, policy.keep_monthly),
        (Period::Yearly, policy.keep_yearly),
    ];
    for (period, count) in periods {
        if let Some(of) = count.filter(|&count| count > 0) {
            keep_newest_per_bucket(period, of, zone, walk, decisions);
        }
    }
    if let (Some(within), Some(&newest)) = (policy.keep_within, walk.first()) {
        let seconds = i64::try_from(within.as_secs()).expect("at most ten years of seconds");
        let cutoff = decisions[newest]
            .time
            .checked_sub_signed(TimeDelta::seconds(seconds));
        for &at in walk {
            if cutoff.is_none_or(|cutoff| decisions[at].time > cutoff) {
                decisions[at].reasons.push(Reason::Within {
                    duration: within,
                    newest: decisions[newest].time,
                });
            }
        }
    }
}

/// One bucket rule: keeps the newest snapshot of each of the `of` newest
/// buckets that have one, and the oldest snapshot if count is left there.
fn keep_newest_per_bucket<T>(
    period: Period,
    of: u32,
    zone: Tz,
    walk: &[usize],
    decisions: &mut [Decision<T>],
) {
    let mut last_bucket: Option<String> = None;
    let mut kept = 0;
    for (position, &at) in walk.iter().enumerate() {
        if kept == of {
            break;
        }
        let bucket = period.bucket(decisions[at].time, zone);
        let is_oldest = position + 1 == walk.len();
        let reason = if last_bucket.as_ref() != Some(&bucket) {
            Reason::Newest {
                period,
                bucket: bucket.clone(),
                nth: kept + 1,
                of,
            }
        } else if is_oldest {
            Reason::Oldest {
                period,
                nth: kept + 1,
                of,
            }
        } else {
            continue;
        };
        decisions[at].reasons.push(reason);
        kept += 1;
        last_bucket = Some(bucket);
    }
}
