//! The server applying every plan's retention policy on its own, on every
//! instance, every `[retention] interval` (hourly by default), first at
//! start ([`run`]).
//!
//! Forgetting is idempotent (a snapshot row is deleted once; a second
//! instance finds it gone), so instances need no coordination: the worst
//! two concurrent passes do is compute the same decision twice. Each pass
//! is in the audit log under the actor `scheduler`, one entry per
//! forgotten snapshot.

use crate::configuration::RetentionSettings;
use crate::db::{Database, tenants};
use crate::operations::{OpError, retention};

/// The audit log's name for the server's own pass.
pub const ACTOR: &str = "scheduler";

/// Applies every tenant's plans' policies; returns how many snapshots it
/// forgot. A tenant whose pass fails is logged and left for the next pass.
pub async fn apply_all(db: &Database) -> u64 {
    let tenants = match tenants::list(db).await {
        Ok(tenants) => tenants,
        Err(error) => {
            tracing::error!(%error, "listing tenants for retention failed; retrying next pass");
            return 0;
        }
    };
    let mut forgotten = 0;
    for tenant in tenants {
        match retention::apply(db, tenant.id, ACTOR, None).await {
            Ok(applied) => forgotten += applied.forgotten.len() as u64,
            Err(OpError::Db(error)) => {
                tracing::error!(tenant.id = %tenant.id, %error, "applying retention failed");
            }
            Err(refused) => {
                tracing::error!(tenant.id = %tenant.id, %refused, "applying retention failed");
            }
        }
    }
    forgotten
}

/// Runs [`apply_all`] at start and then every `settings.interval` until the
/// task is dropped. A slow pass delays the next one rather than stacking.
pub async fn run(db: Database, settings: RetentionSettings) {
    let mut interval = tokio::time::interval(settings.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let forgotten = apply_all(&db).await;
        if forgotten > 0 {
            tracing::info!(forgotten, "applied the plans' retention policies");
        }
    }
}
