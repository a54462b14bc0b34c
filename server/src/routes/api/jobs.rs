//! `POST /api/v1/jobs/claim`, `/jobs/{job_id}/progress` and
//! `/jobs/{job_id}/finish`: agents taking their jobs, reporting on them
//! and ending them (see [`crate::db::job_claims`] for the guarantees).
//!
//! A claim long-polls: it looks for a queued job of the calling agent, and
//! while there is none it waits until the [`Dispatcher`] wakes it (a job
//! for this agent was queued, on any instance) or its own
//! [`FALLBACK`] look is due, until the wait the agent asked for is over,
//! then answers 204. The job itself is always taken from the database, so
//! any instance may answer any agent; the dispatcher's cost model is in
//! [`crate::dispatcher`].

use std::time::Duration;

use actix_web::{HttpResponse, web};
use anyhow::Context;
use stowage_protocol::api::{
    ClaimJobRequest, ClaimedJob, JobFinish, JobLease, JobProgress, MAX_CLAIM_WAIT_SECONDS, codes,
};
use stowage_protocol::ids::JobId;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::configuration::JobSettings;
use crate::db::job_claims::{self, Ending, Outcome, Progress};
use crate::db::{Database, DbError, agent_presence};
use crate::dispatcher::{Dispatcher, FALLBACK};

mod work;

/// Claims the calling agent's oldest queued job, waiting for one up to the
/// asked time (200 with the job, or 204).
///
/// # Errors
///
/// 400 for a wait above [`MAX_CLAIM_WAIT_SECONDS`]; 500 when the database fails.
pub async fn claim(
    db: web::Data<Database>,
    dispatcher: web::Data<Dispatcher>,
    settings: web::Data<JobSettings>,
    who: AuthenticatedAgent,
    body: web::Json<ClaimJobRequest>,
) -> Result<HttpResponse, Failure> {
    let wait = body.wait_seconds;
    if wait > MAX_CLAIM_WAIT_SECONDS {
        return Err(Failure::Validation(format!(
            "a claim may wait at most {MAX_CLAIM_WAIT_SECONDS} seconds, not {wait}"
        )));
    }
    if let Some(facts) = &body.facts {
        agent_presence::record_facts(&db, who.tenant, who.agent, facts)
            .await
            .context("unable to record the agent's facts")?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
    let waiting = dispatcher.into_inner().wait(who.tenant, who.agent);
    loop {
        // Listen before looking, so a wake that comes during the look counts.
        let woken = waiting.wake().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let claimed = job_claims::claim_next(&db, who.tenant, who.agent, settings.lease)
            .await
            .context("unable to claim a job")?;
        if let Some(job) = claimed {
            match work::of(&db, who.tenant, &job).await {
                Ok(work) => {
                    return Ok(HttpResponse::Ok().json(ClaimedJob {
                        job_id: job.id,
                        plan_id: job.plan,
                        work,
                        lease_expires_at: job.lease_expires_at,
                    }));
                }
                Err(work::Unrunnable(why)) => {
                    tracing::warn!(job.id = %job.id, %why, "a claimed job cannot run; it failed");
                    let ending = Ending {
                        outcome: Outcome::Failed(why),
                        progress: Progress::default(),
                        log: "",
                        restore_test: None,
                    };
                    job_claims::finish(&db, who.tenant, who.agent, job.id, &ending)
                        .await
                        .context("unable to fail a job that cannot run")?;
                    continue;
                }
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(HttpResponse::NoContent().finish());
        }
        let look_again = now + FALLBACK;
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep_until(deadline.min(look_again)) => {
                // Not woken by the end of the wait: answer without a last
                // look, the agent's next claim looks first anyway.
                if deadline <= look_again {
                    return Ok(HttpResponse::NoContent().finish());
                }
            }
        }
    }
}

/// Records progress on the caller's running job and renews its lease.
///
/// # Errors
///
/// 404 when the job is not the caller's running job (its lease ran out, it
/// ended, or it is another agent's); 500 when the database fails.
pub async fn progress(
    db: web::Data<Database>,
    settings: web::Data<JobSettings>,
    who: AuthenticatedAgent,
    path: web::Path<String>,
    body: web::Json<JobProgress>,
) -> Result<HttpResponse, Failure> {
    let job = job_id(&path)?;
    let progress = Progress {
        bytes: body.bytes,
        files: body.files,
        bytes_per_second: body.bytes_per_second,
    };
    match job_claims::renew(&db, who.tenant, who.agent, job, settings.lease, progress).await {
        Ok(lease_expires_at) => Ok(HttpResponse::Ok().json(JobLease { lease_expires_at })),
        Err(DbError::NotFound { .. }) => Err(not_running(job)),
        Err(other) => Err(anyhow::Error::new(other)
            .context("unable to renew a job's lease")
            .into()),
    }
}

/// Ends the caller's running job with its outcome, counts and log (204).
///
/// # Errors
///
/// 404 as for [`progress`]; 500 when the database fails.
pub async fn finish(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    path: web::Path<String>,
    body: web::Json<JobFinish>,
) -> Result<HttpResponse, Failure> {
    let job = job_id(&path)?;
    let body = body.into_inner();
    let ending = Ending {
        outcome: match body.error {
            None => Outcome::Succeeded,
            Some(why) => Outcome::Failed(why),
        },
        progress: Progress {
            bytes: body.progress.bytes,
            files: body.progress.files,
            bytes_per_second: body.progress.bytes_per_second,
        },
        log: &body.log,
        restore_test: body.restore_test,
    };
    match job_claims::finish(&db, who.tenant, who.agent, job, &ending).await {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(DbError::NotFound { .. }) => Err(not_running(job)),
        Err(other) => Err(anyhow::Error::new(other)
            .context("unable to finish a job")
            .into()),
    }
}

fn job_id(raw: &str) -> Result<JobId, Failure> {
    raw.parse()
        .map_err(|_| Failure::Validation(format!("{raw:?} is not a job id (32 hex digits)")))
}

fn not_running(job: JobId) -> Failure {
    Failure::NotFound {
        code: codes::NOT_FOUND,
        message: format!(
            "job {job} is not a running job of this agent: it ended, its lease ran out, or it is another agent's; stop working on it"
        ),
    }
}
