//! The `plans` and `plan_agents` tables: what each tenant backs up, when,
//! for how long, and on which agents.
//!
//! A plan is written with its agents in one transaction, so no reader ever
//! sees a plan that runs nowhere. Sources and excludes are JSON text (see
//! the migration for why); the spec was validated by `domain::PlanSpec`
//! before it got here, and is decoded back without re-validating the cron
//! expression, which is stored as the user wrote it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use stowage_protocol::ids::{AgentId, PlanId, TenantId};

use super::{
    Database, DbError, from_millis, insert_error, now_millis, parse_id, query_error, to_i64,
};
use crate::domain::{ByteSize, PlanDuration, PlanSpec, RetentionPolicy, Sources};

/// Columns read by [`decode`].
const COLUMNS: &str = "id, name, sources, excludes, schedule, timezone, keep_last, keep_hourly, \
     keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within_seconds, rpo_seconds, \
     rto_seconds, restore_test_every_seconds, restore_test_max_bytes, created_at, updated_at";

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Random id.
    pub id: PlanId,
    /// Unique within the tenant.
    pub name: String,
    /// What to back up.
    pub sources: Sources,
    /// Glob patterns left out.
    pub excludes: Vec<String>,
    /// The 5-field cron expression.
    pub schedule: String,
    /// The IANA zone the schedule is read in.
    pub timezone: String,
    /// What to keep.
    pub retention: RetentionPolicy,
    /// Recovery point objective.
    pub rpo: Option<PlanDuration>,
    /// Recovery time objective.
    pub rto: Option<PlanDuration>,
    /// Restore-test cadence.
    pub restore_test_every: Option<PlanDuration>,
    /// Restore-test size cap.
    pub restore_test_max: Option<ByteSize>,
    /// Names of the agents that run it, sorted.
    pub agents: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Stores a plan of `tenant` that runs on `agents` (ids of that tenant's
/// agents), in one transaction.
///
/// # Errors
///
/// [`DbError::AlreadyExists`] when the name is taken in this tenant;
/// [`DbError::Query`] otherwise (including an agent of another tenant,
/// which the composite foreign key refuses). Nothing is stored then.
pub async fn insert(
    db: &Database,
    tenant: TenantId,
    spec: &PlanSpec,
    agents: &[AgentId],
) -> Result<PlanId, DbError> {
    let id = PlanId::random();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO plans (id, tenant_id, name, sources, excludes, schedule, timezone, \
         created_at, updated_at) VALUES ($1, $2, $3, '[]', '[]', '', '', $4, $4)",
    )
    .bind(id.to_hex())
    .bind(tenant.to_hex())
    .bind(spec.name.as_str())
    .bind(now_millis())
    .execute(&mut *tx)
    .await
    .map_err(insert_error("insert plan", "plan", spec.name.as_str()))?;
    write_definition(&mut tx, tenant, id, spec, agents).await?;
    tx.commit().await.map_err(query_error("commit plan"))?;
    Ok(id)
}

/// Replaces the whole definition of plan `id` of `tenant` (name, sources,
/// schedule, retention, objectives, agents) with `spec` and `agents`, in
/// one transaction. Jobs already queued keep their kind and slot; a queued
/// backup reads the new sources when it is claimed.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such plan;
/// [`DbError::AlreadyExists`] when the new name is another plan's.
pub async fn update(
    db: &Database,
    tenant: TenantId,
    id: PlanId,
    spec: &PlanSpec,
    agents: &[AgentId],
) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let renamed = sqlx::query("UPDATE plans SET name = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.to_hex())
        .bind(id.to_hex())
        .bind(spec.name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(insert_error("rename plan", "plan", spec.name.as_str()))?;
    if renamed.rows_affected() == 0 {
        return Err(DbError::NotFound {
            what: "plan",
            key: id.to_hex(),
        });
    }
    write_definition(&mut tx, tenant, id, spec, agents).await?;
    tx.commit()
        .await
        .map_err(query_error("commit plan update"))?;
    Ok(())
}

/// Why a plan cannot be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// A job of the plan is running on an agent.
    #[error("plan {name:?} has {running} running job(s); wait for them to end, then delete it")]
    Running {
        /// The plan.
        name: String,
        /// How many.
        running: i64,
    },
    /// The database failed (or there is no such plan).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Deletes plan `id` of `tenant`: its queued jobs are cancelled (deleted),
/// its finished jobs stay in the history without a plan, its restore-test
/// results and agent links go with it. Snapshots it made stay (they are
/// data, not configuration). Refused while one of its jobs runs.
///
/// # Errors
///
/// [`DeleteError::Running`] while a job of the plan runs;
/// [`DbError::NotFound`] when `tenant` has no such plan.
pub async fn delete(db: &Database, tenant: TenantId, plan: &Plan) -> Result<(), DeleteError> {
    let mut tx = db.begin().await?;
    let (t, p) = (tenant.to_hex(), plan.id.to_hex());
    let running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE tenant_id = $1 AND plan_id = $2 AND state = 'running'",
    )
    .bind(&t)
    .bind(&p)
    .fetch_one(&mut *tx)
    .await
    .map_err(query_error("count a plan's running jobs"))?;
    if running > 0 {
        return Err(DeleteError::Running {
            name: plan.name.clone(),
            running,
        });
    }
    for (sql, action) in [
        (
            "DELETE FROM jobs WHERE tenant_id = $1 AND plan_id = $2 AND state = 'queued'",
            "cancel a plan's queued jobs",
        ),
        (
            "UPDATE jobs SET plan_id = NULL WHERE tenant_id = $1 AND plan_id = $2",
            "detach a plan's job history",
        ),
        (
            "DELETE FROM plans WHERE tenant_id = $1 AND id = $2",
            "delete plan",
        ),
    ] {
        sqlx::query(sql)
            .bind(&t)
            .bind(&p)
            .execute(&mut *tx)
            .await
            .map_err(query_error(action))?;
    }
    tx.commit()
        .await
        .map_err(query_error("commit plan deletion"))?;
    Ok(())
}

/// Writes every field of `spec` but the name, and replaces the agent set.
async fn write_definition(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant: TenantId,
    id: PlanId,
    spec: &PlanSpec,
    agents: &[AgentId],
) -> Result<(), DbError> {
    let json = |value: serde_json::Value| value.to_string();
    let count = |value: Option<u32>| value.map(i64::from);
    let secs = |value: Option<PlanDuration>| {
        value.map(|d| i64::try_from(d.as_secs()).expect("at most ten years"))
    };
    let retention = &spec.retention;
    sqlx::query(
        "UPDATE plans SET sources = $3, excludes = $4, schedule = $5, timezone = $6, \
         keep_last = $7, keep_hourly = $8, keep_daily = $9, keep_weekly = $10, \
         keep_monthly = $11, keep_yearly = $12, keep_within_seconds = $13, rpo_seconds = $14, \
         rto_seconds = $15, restore_test_every_seconds = $16, restore_test_max_bytes = $17, \
         updated_at = $18 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .bind(json(
        serde_json::to_value(&spec.sources).expect("sources serialise"),
    ))
    .bind(json(serde_json::Value::from(spec.excludes.clone())))
    .bind(spec.schedule.cron())
    .bind(spec.schedule.zone())
    .bind(count(retention.keep_last))
    .bind(count(retention.keep_hourly))
    .bind(count(retention.keep_daily))
    .bind(count(retention.keep_weekly))
    .bind(count(retention.keep_monthly))
    .bind(count(retention.keep_yearly))
    .bind(secs(retention.keep_within))
    .bind(secs(spec.rpo))
    .bind(secs(spec.rto))
    .bind(secs(spec.restore_test_every))
    .bind(spec.restore_test_max.map(|size| to_i64(size.bytes())))
    .bind(now_millis())
    .execute(&mut **tx)
    .await
    .map_err(query_error("write plan"))?;
    sqlx::query("DELETE FROM plan_agents WHERE tenant_id = $1 AND plan_id = $2")
        .bind(tenant.to_hex())
        .bind(id.to_hex())
        .execute(&mut **tx)
        .await
        .map_err(query_error("unlink plan agents"))?;
    for agent in agents {
        sqlx::query("INSERT INTO plan_agents (tenant_id, plan_id, agent_id) VALUES ($1, $2, $3)")
            .bind(tenant.to_hex())
            .bind(id.to_hex())
            .bind(agent.to_hex())
            .execute(&mut **tx)
            .await
            .map_err(query_error("link plan to agent"))?;
    }
    Ok(())
}

/// Every plan of `tenant`, by name, each with its agents' names.
///
/// # Errors
///
/// Fails when a query fails or a stored row does not decode.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<Plan>, DbError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans WHERE tenant_id = $1 ORDER BY name"
    )))
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list plans"))?;
    let mut agents = agent_names(db, tenant, None).await?;
    rows.iter()
        .map(|row| {
            let mut plan = decode(row)?;
            plan.agents = agents.remove(&plan.id.to_hex()).unwrap_or_default();
            Ok(plan)
        })
        .collect()
}

/// The plan of `tenant` named `name`.
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such plan.
pub async fn get_by_name(db: &Database, tenant: TenantId, name: &str) -> Result<Plan, DbError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans WHERE tenant_id = $1 AND name = $2"
    )))
    .bind(tenant.to_hex())
    .bind(name)
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read plan"))?
    .ok_or_else(|| DbError::NotFound {
        what: "plan",
        key: format!("{name:?}"),
    })?;
    let mut plan = decode(&row)?;
    plan.agents = agent_names(db, tenant, Some(plan.id))
        .await?
        .remove(&plan.id.to_hex())
        .unwrap_or_default();
    Ok(plan)
}

/// Plan `id` of `tenant` (without its agent names).
///
/// # Errors
///
/// [`DbError::NotFound`] when `tenant` has no such plan.
pub async fn get(db: &Database, tenant: TenantId, id: PlanId) -> Result<Plan, DbError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant.to_hex())
    .bind(id.to_hex())
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("read plan"))?
    .ok_or_else(|| DbError::NotFound {
        what: "plan",
        key: id.to_hex(),
    })?;
    decode(&row)
}

/// Agent names by plan id (hex), sorted; of one plan or of all.
async fn agent_names(
    db: &Database,
    tenant: TenantId,
    plan: Option<PlanId>,
) -> Result<HashMap<String, Vec<String>>, DbError> {
    let one_plan = if plan.is_some() {
        "AND pa.plan_id = $2"
    } else {
        ""
    };
    let mut query = sqlx::query(AssertSqlSafe(format!(
        "SELECT pa.plan_id, a.name FROM plan_agents pa \
         JOIN agents a ON a.tenant_id = pa.tenant_id AND a.id = pa.agent_id \
         WHERE pa.tenant_id = $1 {one_plan} ORDER BY a.name"
    )))
    .bind(tenant.to_hex());
    if let Some(plan) = plan {
        query = query.bind(plan.to_hex());
    }
    let rows = query
        .fetch_all(db.pool())
        .await
        .map_err(query_error("list plan agents"))?;
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    for row in &rows {
        let read = query_error("decode plan agent row");
        names
            .entry(row.try_get("plan_id").map_err(read)?)
            .or_default()
            .push(row.try_get("name").map_err(read)?);
    }
    Ok(names)
}

fn decode(row: &AnyRow) -> Result<Plan, DbError> {
    let read = query_error("decode plan row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let number = |what: &str| {
        let column = what.trim_start_matches("plans.");
        row.try_get::<Option<i64>, _>(column).map_err(read)
    };
    let count = |column: &'static str| -> Result<Option<u32>, DbError> {
        number(column)?
            .map(|n| u32::try_from(n).map_err(|err| corrupt(column, &err)))
            .transpose()
    };
    let duration = |column: &'static str| -> Result<Option<PlanDuration>, DbError> {
        number(column)?
            .map(|n| {
                u64::try_from(n)
                    .map_err(|err| corrupt(column, &err))
                    .and_then(|n| PlanDuration::from_secs(n).map_err(|err| corrupt(column, &err)))
            })
            .transpose()
    };
    Ok(Plan {
        id: parse_id("plans.id", &text("id")?)?,
        name: text("name")?,
        sources: serde_json::from_str(&text("sources")?)
            .map_err(|err| corrupt("plans.sources", &err))?,
        excludes: serde_json::from_str(&text("excludes")?)
            .map_err(|err| corrupt("plans.excludes", &err))?,
        schedule: text("schedule")?,
        timezone: text("timezone")?,
        retention: RetentionPolicy {
            keep_last: count("plans.keep_last")?,
            keep_hourly: count("plans.keep_hourly")?,
            keep_daily: count("plans.keep_daily")?,
            keep_weekly: count("plans.keep_weekly")?,
            keep_monthly: count("plans.keep_monthly")?,
            keep_yearly: count("plans.keep_yearly")?,
            keep_within: duration("plans.keep_within_seconds")?,
        },
        rpo: duration("plans.rpo_seconds")?,
        rto: duration("plans.rto_seconds")?,
        restore_test_every: duration("plans.restore_test_every_seconds")?,
        restore_test_max: number("plans.restore_test_max_bytes")?
            .map(|n| u64::try_from(n).map_err(|err| corrupt("plans.restore_test_max_bytes", &err)))
            .transpose()?
            .map(ByteSize::from_bytes),
        agents: Vec::new(),
        created_at: from_millis("plans.created_at", row.try_get("created_at").map_err(read)?)?,
        updated_at: from_millis("plans.updated_at", row.try_get("updated_at").map_err(read)?)?,
    })
}

fn corrupt(what: &'static str, err: &dyn std::fmt::Display) -> DbError {
    DbError::Corrupt {
        what,
        problem: err.to_string(),
    }
}
