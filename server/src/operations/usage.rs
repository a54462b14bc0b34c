//! A tenant's storage usage, for every front end (`stowage-server usage`
//! and `GET /api/v1/usage`): the bytes stored now, read from the index at
//! once, beside what the last garbage collection recorded — live,
//! reclaimable, and referenced per plan and agent ([`crate::gc`]) — with
//! plan and agent names put to the recorded ids.
//!
//! Referenced and reclaimable bytes are only as fresh as the last `gc`;
//! `computed_at` says when that was, and their absence says no run
//! recorded any.

use std::collections::HashMap;

use stowage_protocol::ids::{AgentId, PlanId, TenantId};

use super::OpError;
use crate::db::usage::{self, GroupUsage, RecordedUsage, Stored};
use crate::db::{Database, agents, plans};

/// What `usage` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Packs stored now.
    pub stored: Stored,
    /// What the last garbage collection recorded; `None` before any.
    pub last_gc: Option<RecordedUsage>,
    /// Names of the groups of `last_gc`, in its order.
    pub groups: Vec<GroupNames>,
}

/// The names of a recorded group's plan and agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNames {
    /// The plan's name; `None` for snapshots of no plan, or of a plan
    /// deleted since (then [`GroupUsage`] still has its id).
    pub plan: Option<String>,
    /// The agent's name (empty for an agent that no longer exists).
    pub agent: String,
}

impl Usage {
    /// Each recorded group with its names.
    pub fn named_groups(&self) -> impl Iterator<Item = (&GroupUsage, &GroupNames)> {
        self.last_gc
            .iter()
            .flat_map(|last| last.groups.iter())
            .zip(&self.groups)
    }
}

/// `tenant`'s usage now.
///
/// # Errors
///
/// A database failure.
pub async fn usage(db: &Database, tenant: TenantId) -> Result<Usage, OpError> {
    let stored = usage::stored(db, tenant).await?;
    let last_gc = usage::last(db, tenant).await?;
    let plans: HashMap<PlanId, String> = plans::list(db, tenant)
        .await?
        .into_iter()
        .map(|plan| (plan.id, plan.name))
        .collect();
    let agents: HashMap<AgentId, String> = agents::list(db, tenant)
        .await?
        .into_iter()
        .map(|agent| (agent.id, agent.name))
        .collect();
    let groups = last_gc
        .iter()
        .flat_map(|last| last.groups.iter())
        .map(|usage| GroupNames {
            plan: usage.group.plan.and_then(|id| plans.get(&id).cloned()),
            agent: agents.get(&usage.group.agent).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Usage {
        stored,
        last_gc,
        groups,
    })
}
