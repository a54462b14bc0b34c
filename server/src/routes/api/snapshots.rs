//! `GET /api/v1/snapshots` and `GET /api/v1/snapshots/{id}`: the tenant's
//! committed backups, newest first, each with its record parsed back.
//!
//! A snapshot id the caller's tenant does not hold answers 404 exactly like
//! an unknown one and leaves an audit entry, so probing another tenant's ids
//! reveals nothing and is visible to operators. Pages are chained by
//! `before`, the id of the last snapshot of the previous page. The `plan`
//! filter is not served yet.

use actix_web::{HttpResponse, web};
use anyhow::Context;
use serde::Deserialize;
use stowage_protocol::api::{SnapshotList, SnapshotListItem, codes};
use stowage_protocol::ids::SnapshotId;
use stowage_protocol::snapshot::SnapshotRecord;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::snapshots::{self, StoredSnapshot};
use crate::db::{Database, DbError};

/// Page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 50;

/// Largest page a request may ask for.
pub const MAX_LIMIT: u32 = 500;

/// The query of `GET /api/v1/snapshots`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// How many snapshots to return; [`DEFAULT_LIMIT`] when absent.
    pub limit: Option<u32>,
    /// The `next_before` of the previous page, as hex.
    pub before: Option<String>,
}

/// The newest snapshots of the caller's tenant.
///
/// # Errors
///
/// 400 for a limit above [`MAX_LIMIT`] or of zero, or a `before` that is not
/// a snapshot of the tenant; 500 when the database
/// fails or a stored record does not parse.
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
    let page = limit + 1;
    let mut stored = match &query.before {
        None => snapshots::list(&db, who.tenant, page).await,
        Some(raw) => {
            let cursor = cursor_of(&db, who, raw).await?;
            snapshots::list_before(&db, who.tenant, &cursor, page).await
        }
    }
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
/// 400 for an id that is not hex; 404 (audited) for one the tenant does not
/// hold; 500 when the database fails.
pub async fn get(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, Failure> {
    let raw_id = path.into_inner();
    let id: SnapshotId = raw_id
        .parse()
        .map_err(|_| Failure::Validation(format!("snapshot id {raw_id} is not a valid hex id")))?;
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
/// 400 for an id that is not hex or not a snapshot of the tenant; 500 when
/// the database fails.
async fn cursor_of(
    db: &Database,
    who: AuthenticatedAgent,
    raw: &str,
) -> Result<StoredSnapshot, Failure> {
    let invalid =
        || Failure::Validation(format!("before {raw} is not a snapshot id of this tenant"));
    let id: SnapshotId = raw.parse().map_err(|_| invalid())?;
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
