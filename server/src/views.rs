//! The JSON shapes of plans, jobs, agents and storage usage, shared by the command
//! line's `--json` output and the operator API, so a script can move from
//! one to the other without relearning a field.

use serde_json::json;

use crate::db::agent_presence::Presence;
use crate::db::jobs::JobSummary;
use crate::db::plans::Plan;
use crate::db::restore_tests::{Recorded, Rehearsals};
use crate::domain::{ByteSize, PlanDuration};
use crate::operations::retention::PlanDecisions;
use crate::operations::usage::Usage;

/// A plan.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let secs = |d: Option<PlanDuration>| d.map(PlanDuration::as_secs);
    let r = &plan.retention;
    json!({
        "id": plan.id.to_hex(),
        "name": plan.name,
        "agents": plan.agents,
        "sources": plan.sources,
        "excludes": plan.excludes,
        "schedule": plan.schedule,
        "timezone": plan.timezone,
        "retention": {
            "keep_last": r.keep_last, "keep_hourly": r.keep_hourly, "keep_daily": r.keep_daily,
            "keep_weekly": r.keep_weekly, "keep_monthly": r.keep_monthly,
            "keep_yearly": r.keep_yearly, "keep_within_seconds": secs(r.keep_within),
        },
        "rpo_seconds": secs(plan.rpo),
        "rto_seconds": secs(plan.rto),
        "restore_test_every_seconds": secs(plan.restore_test_every),
        "restore_test_max_bytes": plan.restore_test_max.map(ByteSize::bytes),
        "created_at": plan.created_at.to_rfc3339(),
        "updated_at": plan.updated_at.to_rfc3339(),
    })
}

/// A plan's restore tests: the newest, the newest good one, and whether
/// that one restored within the RTO.
pub fn rehearsals_json(plan: &Plan, tests: &Rehearsals) -> serde_json::Value {
    let one = |test: &Option<Recorded>| {
        test.as_ref().map(|t| {
            json!({
                "snapshot": t.snapshot.to_hex(),
                "succeeded": t.succeeded,
                "error": t.error,
                "files": t.files,
                "bytes": t.bytes,
                "restore_ms": t.restore_ms,
                "check_ms": t.check_ms,
                "bytes_per_second": t.bytes_per_second(),
                "sampled": t.sampled,
                "finished_at": t.finished_at.to_rfc3339(),
            })
        })
    };
    json!({
        "last": one(&tests.last),
        "last_good": one(&tests.last_good),
        "rto": rto_status(plan, tests),
    })
}

/// Whether the last good rehearsal restored within the plan's RTO:
/// "met", "missed", "untested", or `None` without an RTO.
pub fn rto_status(plan: &Plan, tests: &Rehearsals) -> Option<&'static str> {
    let rto = plan.rto?;
    Some(match &tests.last_good {
        None => "untested",
        Some(good) if good.restore_ms <= rto.as_secs().saturating_mul(1000) => "met",
        Some(_) => "missed",
    })
}

/// A job.
pub fn job_json(job: &JobSummary) -> serde_json::Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
    json!({
        "id": job.id.to_hex(),
        "plan": job.plan,
        "agent": job.agent,
        "kind": job.kind,
        "trigger": job.trigger,
        "state": job.state,
        "slot_at": time(job.slot_at),
        "created_at": job.created_at.to_rfc3339(),
        "claimed_at": time(job.claimed_at),
        "finished_at": time(job.finished_at),
        "bytes": job.bytes,
        "files": job.files,
        "bytes_per_second": job.bytes_per_second,
        "progress_at": time(job.progress_at),
        "error": job.error,
    })
}

/// An agent with its presence `state` (online, offline or revoked).
pub fn presence_json(agent: &Presence, state: &str) -> serde_json::Value {
    json!({
        "id": agent.id.to_hex(),
        "name": agent.name,
        "state": state,
        "last_seen_at": agent.last_seen_at.map(|t| t.to_rfc3339()),
        "version": agent.version,
        "hostname": agent.hostname,
        "os": agent.os,
        "filesystems": agent.filesystems,
        "revoked_at": agent.revoked_at.map(|t| t.to_rfc3339()),
    })
}

/// A retention preview: one entry per snapshot, with its decision and reasons.
pub fn decisions_json(decided: &[PlanDecisions]) -> serde_json::Value {
    decided
        .iter()
        .flat_map(|plan| {
            plan.decisions.iter().map(|decision| {
                json!({
                    "plan": plan.plan,
                    "agent": plan.agent_name,
                    "snapshot": decision.id.to_hex(),
                    "time": decision.time.to_rfc3339(),
                    "keep": decision.keep,
                    "reasons": decision.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
        })
        .collect()
}

/// A tenant's storage usage: `stored` now, and `last_gc` (null before any
/// run) with what that run found. Every figure is an integer count of
/// bytes or objects; see `crate::db::usage` for what each one counts.
pub fn usage_json(usage: &Usage) -> serde_json::Value {
    let stored = &usage.stored;
    let last_gc = usage.last_gc.as_ref().map(|last| {
        let groups: Vec<serde_json::Value> = usage
            .named_groups()
            .map(|(group, names)| {
                json!({
                    "plan": names.plan,
                    "plan_id": group.group.plan.map(|id| id.to_hex()),
                    "agent": names.agent,
                    "agent_id": group.group.agent.to_hex(),
                    "snapshots": group.snapshots,
                    "referenced_bytes": group.referenced_bytes,
                    "referenced_blobs": group.referenced_blobs,
                })
            })
            .collect();
        let at_mark = last.dead_pack_bytes + last.partly_dead_bytes;
        json!({
            "computed_at": last.computed_at.to_rfc3339(),
            "live_bytes": last.live_bytes,
            "live_blobs": last.live_blobs,
            "reclaimable": {
                "bytes": at_mark,
                "dead_pack_bytes": last.dead_pack_bytes,
                "dead_packs": last.dead_packs,
                "partly_dead_bytes": last.partly_dead_bytes,
                "reclaimed_bytes": last.reclaimed_bytes,
                "remaining_bytes": at_mark.saturating_sub(last.reclaimed_bytes),
            },
            "walk_ms": last.walk_millis,
            "groups": groups,
        })
    });
    json!({
        "stored": { "bytes": stored.bytes, "packs": stored.packs, "blobs": stored.blobs },
        "last_gc": last_gc,
    })
}
