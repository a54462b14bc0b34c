//! `restore` and `verify`: start a restore or a verification of a snapshot
//! on a chosen agent, from the command line (the same operation as the
//! operator API's `POST /api/v1/jobs`).

use clap::Args;
use stowage_protocol::ids::JobId;

use super::admin::{CLI_ACTOR, open, tenant_id};
use super::plans::in_tenant;
use crate::configuration::Settings;
use crate::operations::{self, jobs::RestoreRequest};

/// `restore` options.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Name of the tenant.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The snapshot's full id (any agent's of the tenant).
    #[arg(long, value_name = "ID")]
    pub snapshot: String,
    /// The agent that restores (its `stowage enroll --name`).
    #[arg(long, value_name = "AGENT")]
    pub agent: String,
    /// The absolute directory on that agent to restore into.
    #[arg(long, value_name = "DIR")]
    pub target: String,
    /// Restore only this path inside the snapshot; repeatable.
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `verify` options.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Name of the tenant.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The snapshot's full id.
    #[arg(long, value_name = "ID")]
    pub snapshot: String,
    /// The agent that checks it.
    #[arg(long, value_name = "AGENT")]
    pub agent: String,
    /// Download, decrypt and check every blob, not only the structure.
    #[arg(long)]
    pub read_data: bool,
}

/// Enqueues a restore job; returns its id.
///
/// # Errors
///
/// An unknown tenant, snapshot or agent, a relative target, or a database failure.
pub async fn restore(settings: &Settings, args: &RestoreArgs) -> anyhow::Result<JobId> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, &args.tenant).await?;
    let request = RestoreRequest {
        snapshot: args.snapshot.clone(),
        agent: args.agent.clone(),
        target: args.target.clone(),
        paths: args.paths.clone(),
    };
    let id = operations::jobs::restore(&db, tenant, CLI_ACTOR, &request).await;
    db.close().await;
    id.map_err(in_tenant(&args.tenant))
}

/// Enqueues a verify job; returns its id.
///
/// # Errors
///
/// An unknown tenant, snapshot or agent, or a database failure.
pub async fn verify(settings: &Settings, args: &VerifyArgs) -> anyhow::Result<JobId> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, &args.tenant).await?;
    let id = operations::jobs::verify(
        &db,
        tenant,
        CLI_ACTOR,
        &args.snapshot,
        &args.agent,
        args.read_data,
    )
    .await;
    db.close().await;
    id.map_err(in_tenant(&args.tenant))
}
