//! The server applying every plan's retention policy on its own, hourly
//! ([`RETENTION_EVERY`]), on every instance.
//!
//! Forgetting is idempotent (a snapshot row is deleted once; a second
//! instance finds it gone), so instances need no coordination: the worst
//! two concurrent passes do is compute the same decision twice. Each pass
//! is in the audit log under the actor `scheduler`, one entry per
//! forgotten snapshot.

use std::time::Duration;

use crate::db::{Database, tenants};
use crate::operations::{OpError, retention};

/// How often each instance applies the policies.
pub const RETENTION_EVERY: Duration = Duration::from_hours(1);

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
