//! `GET /api/v1/snapshots` and `GET /api/v1/snapshots/{id}`: the tenant's
//! committed backups, newest first, each with its record parsed back.
//!
//! A snapshot id the caller's tenant does not hold answers 404 exactly like
//! an unknown one and leaves an audit entry, so probing another tenant's ids
//! reveals nothing and is visible to operators. Pages are chained by
//! `before`, the id of the last snapshot of the previous page; `plan`
//! narrows the list to one plan's snapshots (the plan column copied from the
//! record at commit). A query parameter or path id that does not parse is a
//! 400 naming it (see `query_config` and `path_config` in the parent module).

use actix_web::{HttpResponse, web};
use anyhow::Context;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use stowage_protocol::api::{SnapshotList, SnapshotListItem, codes};
use stowage_protocol::ids::{PlanId, SnapshotId};
use stowage_protocol::snapshot::SnapshotRecord;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::snapshots::{self, ListFilter, StoredSnapshot};
use crate::db::{Database, DbError};

/// Page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 50;

/// Largest page a request may ask for.
pub const MAX_LIMIT: u32 = 500;

/// The query of `GET /api/v1/snapshots`.
///
/// Each field parses through its own function so a bad value is refused
/// with a message naming the parameter, which serde's own errors do not.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// How many snapshots to return; [`DEFAULT_LIMIT`] when absent.
    #[serde(default, deserialize_with = "limit_param")]
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    #[serde(default, deserialize_with = "before_param")]
    pub before: Option<SnapshotId>,
    /// Only this plan's snapshots; every snapshot when absent.
    #[serde(default, deserialize_with = "plan_param")]
    pub plan: Option<PlanId>,
}

fn limit_param<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    named_param(deserializer, "limit", "a whole number")
}

fn before_param<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SnapshotId>, D::Error> {
    named_param(deserializer, "before", "a snapshot id (64 hex digits)")
}

fn plan_param<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PlanId>, D::Error> {
    named_param(deserializer, "plan", "a plan id (32 hex digits)")
}

/// Parses a present query parameter `name` with `FromStr`, naming it and
/// what it should be when it does not parse.
fn named_param<'de, D, T>(
    deserializer: D,
    name: &str,
    expected: &str,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    let Some(raw) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|_| {
        D::Error::custom(format!(
            "the parameter {name}={raw:?} is malformed; it must be {expected}"
        ))
    })
}

/// The newest snapshots of the caller's tenant.
///
/// # Errors
///
/// 400 for a parameter that does not parse, a limit above [`MAX_LIMIT`] or
/// of zero, or a `before` that is not a snapshot of the tenant; 500 when the
/// database fails or a stored record does not parse.
pub async fn list(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Failure> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Failure::Validation(format!(
            "the limit {limit} is out of range; it must be between 1 and {MAX_LIMIT}"
        )));
    }
    let cursor = match query.before {
        Some(id) => Some(cursor_of(&db, who, id).await?),
        None => None,
    };
    let filter = ListFilter {
        plan: query.plan,
        before: cursor.as_ref(),
    };
    let mut stored = snapshots::list_page(&db, who.tenant, filter, limit + 1)
        .await
        .context("unable to list snapshots")?;
    let more = stored.len() > limit as usize;
    stored.truncate(limit as usize);
    let next_before = if more {
        stored.last().map(|last| last.id)
    } else {
        None
    };
    let snapshots = stored.iter().map(item_of).collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(SnapshotList {
        snapshots,
        next_before,
    }))
}

/// One snapshot of the caller's tenant.
///
/// # Errors
///
/// 400 for an id that is not hex (refused by the path config); 404
/// (audited) for one the tenant does not hold; 500 when the database fails.
pub async fn get(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    path: web::Path<SnapshotId>,
) -> Result<HttpResponse, Failure> {
    let id = path.into_inner();
    match snapshots::get(&db, who.tenant, id).await {
        Ok(stored) => Ok(HttpResponse::Ok().json(item_of(&stored)?)),
        Err(DbError::NotFound { .. }) => {
            super::audit_access_denied(
                &db,
                who,
                "snapshot.access_denied",
                &id.to_hex(),
                "snapshot",
            )
            .await?;
            Err(Failure::NotFound {
                code: codes::NOT_FOUND,
                message: format!("snapshot {} does not exist", id.to_hex()),
            })
        }
        Err(other) => Err(anyhow::Error::new(other).into()),
    }
}

/// The snapshot a `before` cursor names.
///
/// # Errors
///
/// 400 for an id that is not a snapshot of the tenant; 500 when the
/// database fails.
async fn cursor_of(
    db: &Database,
    who: AuthenticatedAgent,
    id: SnapshotId,
) -> Result<StoredSnapshot, Failure> {
    let invalid = || {
        Failure::Validation(format!(
            "before {} is not a snapshot id of this tenant",
            id.to_hex()
        ))
    };
    match snapshots::get(db, who.tenant, id).await {
        Ok(stored) => Ok(stored),
        Err(DbError::NotFound { .. }) => Err(invalid()),
        Err(other) => Err(anyhow::Error::new(other).into()),
    }
}

fn item_of(stored: &StoredSnapshot) -> Result<SnapshotListItem, Failure> {
    let record = SnapshotRecord::from_json(stored.record.as_bytes()).with_context(|| {
        format!(
            "stored record of snapshot {} does not parse",
            stored.id.to_hex()
        )
    })?;
    Ok(SnapshotListItem {
        id: stored.id,
        committed_at: stored.committed_at,
        record,
    })
}
