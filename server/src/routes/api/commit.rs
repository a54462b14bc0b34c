//! `POST /api/v1/uploads/{session_id}/commit`: making a snapshot visible.
//!
//! A snapshot is only stored when every blob it reaches is indexed for the
//! tenant, so a committed snapshot can always be restored. Reachability is
//! a full walk from the root (and the error log) through the tree
//! references recorded at pack ingest, with a visited set; it does not yet
//! stop at trees an earlier snapshot already proved complete, which would
//! make incremental commits cheaper.
//!
//! The database layer has no shared transaction for the two writes, so the
//! snapshot is inserted first and the session marked committed second. A
//! failure between them leaves an uncommitted session whose retry finds the
//! snapshot stored and answers `already_committed`; the reverse order could
//! leave a committed session with no snapshot.

use std::collections::{HashMap, HashSet};

use actix_web::{HttpResponse, web};
use anyhow::Context;
use stowage_protocol::api::{CommitSnapshotRequest, CommitSnapshotResponse, MAX_REPORTED_MISSING};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, SnapshotId, TenantId};

use super::Failure;
use super::uploads::{expired, renew, session_of};
use crate::auth::agent::AuthenticatedAgent;
use crate::db::snapshots::{self, InsertOutcome, NewSnapshot};
use crate::db::{Database, DbError, packs, upload_sessions};

/// Commits the record in the body: 201 when stored now, 200 with
/// `already_committed` for a retry of a stored snapshot.
///
/// # Errors
///
/// 400 for a record naming another agent (or failing its rules); 404 for a
/// session the tenant does not have; 409 `session_expired` for an expired
/// session or a committed one whose snapshot is a different record; 409
/// `missing_blobs` when blobs the record reaches are not stored.
pub async fn commit(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    path: web::Path<String>,
    body: web::Json<CommitSnapshotRequest>,
) -> Result<HttpResponse, Failure> {
    let raw_session = path.into_inner();
    let record = body.into_inner().record;
    let session = session_of(&db, who, &raw_session).await?;
    if record.agent != who.agent {
        return Err(Failure::Validation(format!(
            "the snapshot record names agent {}, but agent {} is committing it",
            record.agent.to_hex(),
            who.agent.to_hex()
        )));
    }
    let id = record.id();
    if session.committed_at.is_some() {
        return if is_stored(&db, who.tenant, id).await? {
            Ok(answer(id, true))
        } else {
            Err(expired(
                session.id,
                "has expired: its snapshot was committed",
            ))
        };
    }
    renew(&db, who, &session).await?;

    let starts: Vec<BlobId> = std::iter::once(record.root)
        .chain(record.error_log)
        .collect();
    let (missing, total) = missing_reachable(&db, who.tenant, starts)
        .await
        .context("unable to check which blobs a snapshot reaches")?;
    if total > 0 {
        return Err(Failure::MissingBlobs {
            message: format!(
                "snapshot {} reaches {total} blob(s) that are not stored{}; upload them and commit again",
                id.to_hex(),
                if total > missing.len() {
                    format!(" (the first {} are listed)", missing.len())
                } else {
                    String::new()
                }
            ),
            ids: missing,
        });
    }

    let canonical = String::from_utf8(record.canonical_bytes())
        .context("a snapshot record's canonical JSON is not UTF-8")?;
    let outcome = snapshots::insert(
        &db,
        who.tenant,
        NewSnapshot {
            id,
            agent_id: who.agent,
            record: &canonical,
            root: record.root,
            hostname: &record.hostname,
            plan_id: record.plan,
            started_at: record.started_at,
            finished_at: record.finished_at,
        },
    )
    .await
    .context("unable to store a snapshot")?;
    upload_sessions::mark_committed(&db, who.tenant, session.id)
        .await
        .context("unable to mark an upload session committed")?;
    tracing::info!(snapshot.id = %id.to_hex(), ?outcome, "snapshot committed");
    Ok(answer(id, outcome == InsertOutcome::AlreadyCommitted))
}

fn answer(id: SnapshotId, already_committed: bool) -> HttpResponse {
    let body = CommitSnapshotResponse {
        snapshot_id: id,
        already_committed,
    };
    if already_committed {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Created().json(body)
    }
}

async fn is_stored(db: &Database, tenant: TenantId, id: SnapshotId) -> Result<bool, Failure> {
    match snapshots::get(db, tenant, id).await {
        Ok(_) => Ok(true),
        Err(DbError::NotFound { .. }) => Ok(false),
        Err(other) => Err(anyhow::Error::new(other)
            .context("unable to look up a snapshot")
            .into()),
    }
}

/// Walks from `starts` through tree references, level by level, and returns
/// up to [`MAX_REPORTED_MISSING`] reachable ids `tenant` does not hold, with
/// the count of all of them. A missing tree's references are unknown, so the
/// walk cannot see below it; the agent learns of those on its next commit.
async fn missing_reachable(
    db: &Database,
    tenant: TenantId,
    starts: Vec<BlobId>,
) -> Result<(Vec<BlobId>, usize), DbError> {
    let mut visited: HashSet<BlobId> = HashSet::new();
    let mut frontier: Vec<BlobId> = starts
        .into_iter()
        .filter(|id| visited.insert(*id))
        .collect();
    let mut missing = Vec::new();
    let mut total = 0;
    while !frontier.is_empty() {
        let kinds: HashMap<BlobId, BlobKind> = packs::locate(db, tenant, &frontier)
            .await?
            .into_iter()
            .map(|location| (location.id, location.kind))
            .collect();
        let mut next = Vec::new();
        for id in &frontier {
            match kinds.get(id) {
                None => {
                    total += 1;
                    if missing.len() < MAX_REPORTED_MISSING {
                        missing.push(*id);
                    }
                }
                Some(BlobKind::Tree) => {
                    for child in packs::tree_refs(db, tenant, *id).await? {
                        if visited.insert(child) {
                            next.push(child);
                        }
                    }
                }
                Some(BlobKind::Data) => {}
            }
        }
        frontier = next;
    }
    Ok((missing, total))
}
