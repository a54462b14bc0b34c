//! `GET|POST /api/v1/plans`, `GET|PUT|DELETE /api/v1/plans/{name}`,
//! `POST /api/v1/plans/{name}/run` and `/restore-test`.
//!
//! A plan is written whole: `PUT` replaces every field (the body is the
//! same as for `POST`), so what a script sends is exactly what the plan
//! becomes, and a field it forgot is visibly reset rather than silently kept.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use stowage_protocol::ids::JobId;

use crate::auth::api_key::AuthenticatedOperator;
use crate::db::{Database, plans, restore_tests};
use crate::domain::{KeepCounts, PlanInput, Role};
use crate::operations;
use crate::routes::api::Failure;
use crate::views::{plan_json, rehearsals_json};

/// The body of `POST /plans` and `PUT /plans/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// Unique within the tenant.
    pub name: String,
    /// Names of the agents that run it.
    pub agents: Vec<String>,
    /// Absolute paths (or use `command`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// A command whose output is backed up as one file.
    pub command: Option<String>,
    /// The file name of the command's output.
    pub stdin_name: Option<String>,
    /// Globs left out.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// 5-field cron.
    pub schedule: String,
    /// IANA zone; UTC when absent.
    pub timezone: Option<String>,
    /// Retention rules.
    #[serde(default)]
    pub retention: RetentionBody,
    /// e.g. `24h`.
    pub rpo: Option<String>,
    /// e.g. `4h`.
    pub rto: Option<String>,
    /// e.g. `7d`.
    pub restore_test_every: Option<String>,
    /// e.g. `10G`.
    pub restore_test_max: Option<String>,
}

/// The retention rules of a [`PlanBody`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    /// Newest N.
    pub keep_last: Option<i64>,
    /// One per hour for N hours.
    pub keep_hourly: Option<i64>,
    /// One per day for N days.
    pub keep_daily: Option<i64>,
    /// One per week for N weeks.
    pub keep_weekly: Option<i64>,
    /// One per month for N months.
    pub keep_monthly: Option<i64>,
    /// One per year for N years.
    pub keep_yearly: Option<i64>,
    /// Everything younger than this, e.g. `30d`.
    pub keep_within: Option<String>,
}

impl PlanBody {
    fn input(&self) -> PlanInput {
        let r = &self.retention;
        PlanInput {
            name: self.name.clone(),
            paths: self.paths.clone(),
            command: self.command.clone(),
            stdin_name: self.stdin_name.clone(),
            excludes: self.excludes.clone(),
            schedule: self.schedule.clone(),
            timezone: self.timezone.clone(),
            keep: KeepCounts {
                last: r.keep_last,
                hourly: r.keep_hourly,
                daily: r.keep_daily,
                weekly: r.keep_weekly,
                monthly: r.keep_monthly,
                yearly: r.keep_yearly,
            },
            keep_within: r.keep_within.clone(),
            rpo: self.rpo.clone(),
            rto: self.rto.clone(),
            restore_test_every: self.restore_test_every.clone(),
            restore_test_max: self.restore_test_max.clone(),
        }
    }
}

/// Every plan of the key's tenant, with its restore-test results.
///
/// # Errors
///
/// 500 when the database fails.
pub async fn list(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
) -> Result<HttpResponse, Failure> {
    let mut array = Vec::new();
    for plan in plans::list(&db, who.tenant)
        .await
        .map_err(anyhow::Error::new)?
    {
        let tests = restore_tests::for_plan(&db, who.tenant, plan.id)
            .await
            .map_err(anyhow::Error::new)?;
        let mut value = plan_json(&plan);
        value["restore_tests"] = rehearsals_json(&plan, &tests);
        array.push(value);
    }
    Ok(HttpResponse::Ok().json(array))
}

/// One plan by name.
///
/// # Errors
///
/// 404 for an unknown plan.
pub async fn get(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    name: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let plan = operations::plans::by_name(&db, who.tenant, &name).await?;
    let tests = restore_tests::for_plan(&db, who.tenant, plan.id)
        .await
        .map_err(anyhow::Error::new)?;
    let mut value = plan_json(&plan);
    value["restore_tests"] = rehearsals_json(&plan, &tests);
    Ok(HttpResponse::Ok().json(value))
}

/// Creates a plan (201 with the plan).
///
/// # Errors
///
/// 400 for a broken rule or an unknown agent, 409 for a taken name, 403
/// below the operator role.
pub async fn create(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    body: web::Json<PlanBody>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    let plan =
        operations::plans::create(&db, who.tenant, &who.actor(), &body.input(), &body.agents)
            .await?;
    Ok(HttpResponse::Created().json(plan_json(&plan)))
}

/// Replaces a plan's whole definition (200 with the plan).
///
/// # Errors
///
/// As [`create`], and 404 for an unknown plan.
pub async fn replace(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    name: web::Path<String>,
    body: web::Json<PlanBody>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    let plan = operations::plans::update(
        &db,
        who.tenant,
        &who.actor(),
        &name,
        &body.input(),
        &body.agents,
    )
    .await?;
    Ok(HttpResponse::Ok().json(plan_json(&plan)))
}

/// Deletes a plan (204).
///
/// # Errors
///
/// 404 for an unknown plan, 409 while one of its jobs runs.
pub async fn delete(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    name: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    operations::plans::delete(&db, who.tenant, &who.actor(), &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Runs a plan now on each of its agents (202 with the job ids).
///
/// # Errors
///
/// 404 for an unknown plan.
pub async fn run(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    name: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    let ids = operations::plans::run_now(&db, who.tenant, &who.actor(), &name).await?;
    Ok(accepted(&ids))
}

/// Rehearses a restore of the plan's newest snapshots now (202 with the job ids).
///
/// # Errors
///
/// 404 for an unknown plan, 409 when it has no snapshot yet.
pub async fn restore_test(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
    name: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    who.require(Role::Operator)?;
    let ids = operations::plans::restore_test_now(&db, who.tenant, &who.actor(), &name).await?;
    Ok(accepted(&ids))
}

fn accepted(ids: &[JobId]) -> HttpResponse {
    let ids: Vec<String> = ids.iter().map(JobId::to_hex).collect();
    HttpResponse::Accepted().json(json!({ "jobs": ids }))
}
