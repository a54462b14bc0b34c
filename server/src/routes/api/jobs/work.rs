//! What a claimed job asks its agent to do.
//!
//! A plan's backup is built from the plan as it is when the job is
//! claimed, so an edit made while the job waited in the queue counts.
//! Every other kind carries its work in the job's row, fixed when it was
//! made (a restore names its snapshot and target then, not later).

use stowage_protocol::api::{JobBackup, JobWork};
use stowage_protocol::ids::TenantId;

use crate::db::job_claims::Claimed;
use crate::db::{Database, DbError, plans};
use crate::domain::Sources;

/// Why a claimed job cannot run; the job fails with this sentence.
#[derive(Debug)]
pub struct Unrunnable(pub String);

/// The work of `job`, a job of `tenant` just claimed.
///
/// # Errors
///
/// [`Unrunnable`] when the job's plan or stored work cannot be read.
pub async fn of(db: &Database, tenant: TenantId, job: &Claimed) -> Result<JobWork, Unrunnable> {
    match (job.kind.as_str(), job.plan) {
        ("backup", Some(plan)) => backup(db, tenant, plan).await,
        ("backup", None) => Err(Unrunnable(
            "a backup job without a plan has nothing to back up".to_owned(),
        )),
        (kind, _) => {
            let params = job.params.as_deref().ok_or_else(|| {
                Unrunnable(format!("the {kind} job {} has no stored work", job.id))
            })?;
            let work: JobWork = serde_json::from_str(params).map_err(|error| {
                Unrunnable(format!(
                    "the stored work of {kind} job {} does not read ({error})",
                    job.id
                ))
            })?;
            if work.kind() != kind {
                return Err(Unrunnable(format!(
                    "job {} is a {kind} job but its stored work is a {}",
                    job.id,
                    work.kind()
                )));
            }
            Ok(work)
        }
    }
}

async fn backup(
    db: &Database,
    tenant: TenantId,
    plan: stowage_protocol::ids::PlanId,
) -> Result<JobWork, Unrunnable> {
    let plan = plans::get(db, tenant, plan)
        .await
        .map_err(|error| match error {
            DbError::NotFound { .. } => Unrunnable(format!("plan {plan} no longer exists")),
            other => Unrunnable(format!("plan {plan} could not be read ({other})")),
        })?;
    let (paths, command, stdin_name) = match plan.sources {
        Sources::Paths(paths) => (paths, None, None),
        Sources::Command {
            command,
            stdin_name,
        } => (Vec::new(), Some(command), Some(stdin_name)),
    };
    Ok(JobWork::Backup(JobBackup {
        plan_name: plan.name,
        paths,
        command,
        stdin_name,
        excludes: plan.excludes,
    }))
}
