//! `GET /api/v1/jobs`, `GET /api/v1/jobs/{job_id}` (with live progress and
//! the log), and `POST /api/v1/jobs/restore` and `/jobs/verify` to start a
//! restore or a verification on a chosen agent.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use stowage_protocol::api::codes;
use stowage_protocol::ids::JobId;

use crate::auth::api_key::AuthenticatedOperator;
use crate::db::{Database, DbError, jobs};
use crate::domain::Role;
use crate::operations::{self, jobs::RestoreRequest};
use crate::routes::api::Failure;
use crate::views::job_json;

/// Most jobs one listing returns.
const MAX_LIMIT: u32 = 500;

/// `GET /jobs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many, newest first (default 50, at most 500).
    pub limit: Option<u32>,
}

/// The body of `POST /jobs/restore`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// The snapshot's full id.
    pub snapshot: String,
    /// The agent that restores.
    pub agent: String,
    /// An absolute directory on that agent.
    pub target: String,
    /// Paths inside the snapshot; all of it when empty.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// The body of `POST /jobs/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The snapshot's full id.
    pub snapshot: String,
    /// The agent that checks it.
    pub agent: String,
    /// Download and check every blob.
    #[serde(default)]
    pub read_data: bool,
}

/// The tenant's newest jobs.
///
/// # Errors
///
/// 400 for a limit above 500; 500 when the database fails.
pub async fn list(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Failure> {
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Failure::Validation(format!(
            "limit must be from 1 to {MAX_LIMIT}, not {limit}"
        )));
    }
    let listed = jobs::list_recent(&db, who.tenant, limit)
        .await
        .map_err(anyhow::Error::new)?;
    Ok(HttpResponse::Ok().json(listed.iter().map(job_json).collect::<Vec<_>>()))
}

/// One job, with its progress and log.
///
/// # Errors
///
/// 400 for a malformed id, 404 for a job the tenant does not have.
pub async fn get(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    path: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let id: JobId = path.parse().map_err(|_| {
        Failure::Validation(format!(
            "{:?} is not a job id (32 hex digits)",
            path.as_str()
        ))
    })?;
    match jobs::get(&db, who.tenant, id).await {
        Ok((job, log)) => {
            let mut value = job_json(&job);
            value["log"] = json!(log);
            Ok(HttpResponse::Ok().json(value))
        }
        Err(DbError::NotFound { .. }) => Err(Failure::NotFound {
            code: codes::NOT_FOUND,
            message: format!("there is no job {id}"),
        }),
        Err(other) => Err(anyhow::Error::new(other).into()),
    }
}

/// Starts a restore on the chosen agent (202 with the job id).
///
/// # Errors
///
/// 400 for a malformed snapshot id or a relative target, 404 for an
/// unknown snapshot or agent, 403 below the operator role.
pub async fn restore(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    body: web::Json<RestoreBody>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    let body = body.into_inner();
    let request = RestoreRequest {
        snapshot: body.snapshot,
        agent: body.agent,
        target: body.target,
        paths: body.paths,
    };
    let id = operations::jobs::restore(&db, who.tenant, &who.actor(), &request).await?;
    Ok(HttpResponse::Accepted().json(json!({ "job": id.to_hex() })))
}

/// Starts a verification on the chosen agent (202 with the job id).
///
/// # Errors
///
/// As [`restore`].
pub async fn verify(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    body: web::Json<VerifyBody>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    let id = operations::jobs::verify(
        &db,
        who.tenant,
        &who.actor(),
        &body.snapshot,
        &body.agent,
        body.read_data,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(json!({ "job": id.to_hex() })))
}
