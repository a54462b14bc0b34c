//! `GET /api/v1/retention/preview`, `POST /api/v1/retention/apply`,
//! `POST|DELETE /api/v1/snapshots/{id}/pin` and `DELETE
//! /api/v1/snapshots/{id}`: retention and legal holds for API keys.
//!
//! Reading the preview needs any key; forgetting, pinning and unpinning
//! need the admin role (an agent credential can never forget anything).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::auth::api_key::AuthenticatedOperator;
use crate::db::Database;
use crate::domain::Role;
use crate::operations::retention;
use crate::routes::api::Failure;
use crate::views::decisions_json;

/// `?plan=` of the preview, body of apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFilter {
    /// Only this plan.
    pub plan: Option<String>,
}

/// Body of `POST /snapshots/{id}/pin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// Why it is held.
    pub reason: String,
}

/// What each plan's policy keeps, forgets, and why (changes nothing).
///
/// # Errors
///
/// 404 for an unknown plan.
pub async fn preview(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    query: web::Query<PlanFilter>,
) -> Result<HttpResponse, Failure> {
    let decided = retention::preview(&db, who.tenant, query.plan.as_deref()).await?;
    Ok(HttpResponse::Ok().json(decisions_json(&decided)))
}

/// Forgets what the policies let go (200 with the forgotten ids).
///
/// # Errors
///
/// 403 below admin; 404 for an unknown plan.
pub async fn apply(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    body: Option<web::Json<PlanFilter>>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Admin)?;
    let plan = body.and_then(|body| body.into_inner().plan);
    let applied = retention::apply(&db, who.tenant, &who.actor(), plan.as_deref()).await?;
    let forgotten: Vec<String> = applied.forgotten.iter().map(ToString::to_string).collect();
    Ok(HttpResponse::Ok().json(json!({ "forgotten": forgotten, "kept": applied.kept })))
}

/// Pins a snapshot (201 when pinned now, 200 when it was already).
///
/// # Errors
///
/// 403 below admin; 400 for a malformed id or empty reason; 404 for an
/// unknown snapshot.
pub async fn pin(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    id: web::Path<String>,
    body: web::Json<PinBody>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Admin)?;
    let new = retention::pin(&db, who.tenant, &who.actor(), &id, &body.reason).await?;
    Ok(if new {
        HttpResponse::Created().finish()
    } else {
        HttpResponse::Ok().finish()
    })
}

/// Removes a snapshot's pin (204).
///
/// # Errors
///
/// As [`pin`].
pub async fn unpin(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    id: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Admin)?;
    retention::unpin(&db, who.tenant, &who.actor(), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Forgets a snapshot now (204); its data goes at the next collection.
///
/// # Errors
///
/// 403 below admin; 404 for an unknown snapshot; 409 for a pinned one.
pub async fn forget(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    id: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Admin)?;
    retention::forget_one(&db, who.tenant, &who.actor(), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
