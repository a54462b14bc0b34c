//! Applying plans' retention policies: preview (which snapshots would go,
//! and why each one stays) and apply (forget what the policy lets go), and
//! pinning snapshots against both.
//!
//! A plan's policy applies to the plan's snapshots **per agent**: with
//! `--keep-daily 7` on three machines, each machine keeps its seven days.
//! Snapshots of manual backups (no plan) are never forgotten by retention.
//! Buckets (hours, days, weeks …) are read in the plan's time zone, as
//! its schedule is ([`crate::domain::retention_decision`]). Pinned
//! snapshots are always kept and use up no rule's count.
//!
//! Forgetting deletes snapshot rows only; the data goes when garbage
//! collection finds nothing else referencing it. Every forgotten snapshot
//! is in the tenant's audit log, under the actor that applied the policy
//! (or `scheduler` for the server's own hourly pass).

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use stowage_protocol::ids::{AgentId, SnapshotId, TenantId};

use super::{OpError, audit, known_snapshot};
use crate::db::snapshot_pins::{self, Pin};
use crate::db::{Database, DbError, agents, plans};
use crate::domain::{Candidate, Decision, decide};

/// What a policy decides for one plan's snapshots on one agent.
#[derive(Debug, Clone)]
pub struct PlanDecisions {
    /// The plan's name.
    pub plan: String,
    /// The agent whose snapshots these are.
    pub agent: AgentId,
    /// Its name.
    pub agent_name: String,
    /// Every snapshot, newest first, kept or not and why.
    pub decisions: Vec<Decision<SnapshotId>>,
}

/// What applying retention did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Snapshots kept.
    pub kept: usize,
    /// Snapshots forgotten.
    pub forgotten: Vec<SnapshotId>,
}

/// The decisions for every plan of `tenant`, or only the plan named `only`.
///
/// # Errors
///
/// [`OpError::NotFound`] for an unknown plan; a database failure.
pub async fn preview(
    db: &Database,
    tenant: TenantId,
    only: Option<&str>,
) -> Result<Vec<PlanDecisions>, OpError> {
    let plans = match only {
        Some(name) => vec![super::plans::by_name(db, tenant, name).await?],
        None => plans::list(db, tenant).await?,
    };
    let pins = snapshot_pins::pins(db, tenant).await?;
    let names: HashMap<AgentId, String> = agents::list(db, tenant)
        .await?
        .into_iter()
        .map(|agent| (agent.id, agent.name))
        .collect();
    let mut all = Vec::new();
    for plan in plans {
        let zone: chrono_tz::Tz = plan.timezone.parse().map_err(|_| {
            OpError::Db(DbError::Corrupt {
                what: "plans.timezone",
                problem: format!("{:?} is not a time zone", plan.timezone),
            })
        })?;
        let mut by_agent: BTreeMap<AgentId, Vec<Candidate<SnapshotId>>> = BTreeMap::new();
        for snapshot in snapshot_pins::of_plan(db, tenant, plan.id).await? {
            by_agent.entry(snapshot.agent).or_default().push(Candidate {
                id: snapshot.id,
                time: snapshot.time,
                pin: pins.get(&snapshot.id).map(|pin| pin.reason.clone()),
            });
        }
        for (agent, candidates) in by_agent {
            all.push(PlanDecisions {
                plan: plan.name.clone(),
                agent,
                agent_name: names.get(&agent).cloned().unwrap_or_default(),
                decisions: decide(&plan.retention, zone, &candidates),
            });
        }
    }
    Ok(all)
}

/// Applies the policies ([`preview`], then forget what it lets go).
///
/// # Errors
///
/// As [`preview`]; a database failure (then nothing is forgotten).
pub async fn apply(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    only: Option<&str>,
) -> Result<Applied, OpError> {
    let decided = preview(db, tenant, only).await?;
    let mut applied = Applied::default();
    let mut to_forget = Vec::new();
    for plan in &decided {
        for decision in &plan.decisions {
            if decision.keep {
                applied.kept += 1;
            } else {
                to_forget.push(decision.id);
            }
        }
    }
    applied.forgotten = snapshot_pins::forget(db, tenant, &to_forget).await?;
    for id in &applied.forgotten {
        let plan = decided
            .iter()
            .find(|plan| plan.decisions.iter().any(|d| d.id == *id))
            .map(|plan| plan.plan.as_str());
        let details = json!({ "plan": plan, "by": "retention policy" });
        audit(db, tenant, actor, "snapshot.forget", &id.to_hex(), &details).await?;
    }
    Ok(applied)
}

/// Forgets one snapshot by hand (an admin's decision, audited).
///
/// # Errors
///
/// [`OpError::Invalid`] for a malformed id, [`OpError::NotFound`] for an
/// unknown snapshot, [`OpError::Conflict`] for a pinned one.
pub async fn forget_one(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    snapshot: &str,
) -> Result<(), OpError> {
    let id = known_snapshot(db, tenant, snapshot).await?;
    if let Some(pin) = snapshot_pins::pins(db, tenant).await?.get(&id) {
        return Err(OpError::Conflict(pinned_message(id, pin)));
    }
    let forgotten = snapshot_pins::forget(db, tenant, &[id]).await?;
    if forgotten.is_empty() {
        return Err(OpError::Conflict(format!(
            "snapshot {id} was pinned or forgotten meanwhile; nothing changed"
        )));
    }
    let details = json!({ "by": "hand" });
    audit(db, tenant, actor, "snapshot.forget", &id.to_hex(), &details).await
}

/// Pins a snapshot (legal hold) with `reason`; returns false when it was pinned already.
///
/// # Errors
///
/// As [`forget_one`], and [`OpError::Invalid`] for an empty reason.
pub async fn pin(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    snapshot: &str,
    reason: &str,
) -> Result<bool, OpError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(OpError::Invalid(
            "a pin needs a reason, e.g. the case or ticket it holds the snapshot for".to_owned(),
        ));
    }
    let id = known_snapshot(db, tenant, snapshot).await?;
    let pinned = snapshot_pins::pin(db, tenant, id, reason, actor).await?;
    if pinned {
        let details = json!({ "reason": reason });
        audit(db, tenant, actor, "snapshot.pin", &id.to_hex(), &details).await?;
    }
    Ok(pinned)
}

/// Removes a snapshot's pin; returns false when it had none.
///
/// # Errors
///
/// As [`forget_one`].
pub async fn unpin(
    db: &Database,
    tenant: TenantId,
    actor: &str,
    snapshot: &str,
) -> Result<bool, OpError> {
    let id = known_snapshot(db, tenant, snapshot).await?;
    let unpinned = snapshot_pins::unpin(db, tenant, id).await?;
    if unpinned {
        audit(
            db,
            tenant,
            actor,
            "snapshot.unpin",
            &id.to_hex(),
            &json!({}),
        )
        .await?;
    }
    Ok(unpinned)
}

/// The pins of `tenant`.
///
/// # Errors
///
/// A database failure.
pub async fn pins(db: &Database, tenant: TenantId) -> Result<HashMap<SnapshotId, Pin>, OpError> {
    Ok(snapshot_pins::pins(db, tenant).await?)
}

fn pinned_message(id: SnapshotId, pin: &Pin) -> String {
    format!(
        "snapshot {id} is pinned ({}, by {} on {}); unpin it first",
        pin.reason,
        pin.pinned_by,
        pin.pinned_at.format("%Y-%m-%d")
    )
}
