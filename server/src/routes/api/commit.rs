//! `POST /api/v1/uploads/{session_id}/commit`: making a snapshot visible.
//!
//! A snapshot is only stored when every blob it reaches is indexed for the
//! tenant, so a committed snapshot can always be restored. The check
//! ([`reachability::walk`]) walks only what is new: it stops at trees an
//! earlier commit recorded as complete, and this commit records the trees it
//! walked in turn. A snapshot's root must be a tree blob.
//!
//! Storing the snapshot, closing the session (dropping its leases, which the
//! snapshot now replaces) and recording the complete trees happen in one
//! database transaction, after the walk: a crash or failure at any point
//! leaves either all of it or none — the session still open, no snapshot
//! visible, and a retried commit succeeds. The session is claimed first in
//! that transaction, only while it is open, so of two racing commits of one
//! session exactly one writes anything.
//!
//! The walk runs before the transaction so that it never holds the write
//! lock (SQLite has one for the whole database). The blobs it finds stay
//! put until the transaction commits because the session leases the ones
//! it uploaded or was told about, and committed snapshots protect the rest.
//! Garbage collection's sweep may still remove a blob the walk saw (one
//! that only a snapshot forgotten meanwhile protected): every sweep bumps
//! the tenant's epoch, which the commit reads before the walk and again,
//! locked, inside its transaction. A commit that sees it change walks again
//! inside the transaction, where no sweep can run until it ends (it holds
//! SQLite's write lock, or on PostgreSQL the epoch row that each sweep
//! transaction updates first), instead of trusting the first walk (`crate::gc`
//! explains why). Walking again outside would let a long sweep, whose
//! transactions come every few dozen milliseconds, overtake every walk and
//! hold the backup back until it ended.

use actix_web::{HttpResponse, web};
use anyhow::Context;
use sqlx::AnyConnection;
use stowage_protocol::api::{CommitSnapshotRequest, CommitSnapshotResponse};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, SnapshotId, TenantId, UploadSessionId};
use stowage_protocol::snapshot::SnapshotRecord;

use super::Failure;
use super::uploads::{expired, renew, session_of};
use crate::auth::agent::AuthenticatedAgent;
use crate::db::snapshots::{self, InsertOutcome, NewSnapshot};
use crate::db::{Database, DbError, complete_trees, gc_sweep, upload_sessions};
use crate::ingest::pause::{PausePoint, pause_at};
use crate::ingest::reachability;

/// Commits the record in the body: 201 when stored now, 200 with
/// `already_committed` for a retry of a stored snapshot.
///
/// # Errors
///
/// 400 for a record naming another agent (or failing its rules) or whose
/// root is a data blob; 404 for a session the agent does not have (another
/// tenant's or another agent's: audited); 409 `session_expired` for an
/// expired session or a committed one whose snapshot is a different record;
/// 409 `missing_blobs` when blobs the record reaches are not stored.
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
        return answer_committed(&db, who.tenant, session.id, id).await;
    }
    renew(&db, who, &session).await?;

    let starts: Vec<BlobId> = std::iter::once(record.root)
        .chain(record.error_log)
        .collect();
    let canonical = String::from_utf8(record.canonical_bytes())
        .context("a snapshot record's canonical JSON is not UTF-8")?;
    // The walk trusts what it found until the transaction commits; a sweep
    // that ran in between may have removed some of it, and bumps the epoch.
    let epoch = gc_sweep::epoch(&db, who.tenant)
        .await
        .context("unable to read the garbage collection epoch")?;
    let mut walk = checked_walk(
        &mut *db
            .acquire()
            .await
            .context("unable to take a database connection to walk a snapshot")?,
        who.tenant,
        &record,
        &starts,
    )
    .await?;

    let mut tx = db
        .begin()
        .await
        .context("unable to begin committing a snapshot")?;
    let open = upload_sessions::mark_committed_in(&mut tx, who.tenant, session.id)
        .await
        .context("unable to mark an upload session committed")?;
    if !open {
        // Another commit of this session won, or the lease ran out during
        // the walk: nothing of this one is written.
        drop(tx);
        return answer_committed(&db, who.tenant, session.id, id).await;
    }
    let epoch_now = gc_sweep::epoch_in(&mut tx, db.backend(), who.tenant)
        .await
        .context("unable to lock the garbage collection epoch")?;
    let walked_under_lock = epoch_now != epoch;
    if walked_under_lock {
        // A sweep ran during the walk: walk again where none can (see the
        // module docs). Refused, the transaction rolls back.
        walk = checked_walk(&mut tx, who.tenant, &record, &starts).await?;
    }
    let outcome = snapshots::insert_in(
        &mut tx,
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
    complete_trees::record(&mut tx, who.tenant, &walk.walked_trees)
        .await
        .context("unable to record the trees of a snapshot as complete")?;
    pause_at(PausePoint::CommitBeforeTransactionEnd).await;
    tx.commit()
        .await
        .context("unable to commit a snapshot's transaction")?;
    tracing::info!(
        snapshot.id = %id.to_hex(),
        trees_walked = walk.walked_trees.len(),
        walked_under_lock,
        ?outcome,
        "snapshot committed"
    );
    Ok(answer(id, outcome == InsertOutcome::AlreadyCommitted))
}

/// The reachability walk of `record` from `starts`, refused when the root
/// is a data blob or a reachable blob is not stored.
///
/// # Errors
///
/// 400 for a data-blob root; 409 `missing_blobs` naming what is missing;
/// 500 when the database fails.
async fn checked_walk(
    conn: &mut AnyConnection,
    tenant: TenantId,
    record: &SnapshotRecord,
    starts: &[BlobId],
) -> Result<reachability::Walk, Failure> {
    let id = record.id();
    let walk = reachability::walk_in(conn, tenant, starts)
        .await
        .context("unable to check which blobs a snapshot reaches")?;
    if walk.start_kinds.get(&record.root) == Some(&BlobKind::Data) {
        return Err(Failure::Validation(format!(
            "the root {} of snapshot {} is a data blob; a snapshot's root must be a tree blob",
            record.root.to_hex(),
            id.to_hex()
        )));
    }
    if walk.missing_total > 0 {
        let total = walk.missing_total;
        return Err(Failure::MissingBlobs {
            message: format!(
                "snapshot {} reaches {total} blob(s) that are not stored{}; upload them and commit again",
                id.to_hex(),
                if total > walk.missing.len() {
                    format!(" (the first {} are listed)", walk.missing.len())
                } else {
                    String::new()
                }
            ),
            ids: walk.missing,
        });
    }
    Ok(walk)
}

/// The answer for a session that is no longer open: a retry of the commit
/// that closed it (200, `already_committed`), or 409 `session_expired`.
async fn answer_committed(
    db: &Database,
    tenant: TenantId,
    session: UploadSessionId,
    id: SnapshotId,
) -> Result<HttpResponse, Failure> {
    let current = upload_sessions::get(db, tenant, session)
        .await
        .context("unable to read an upload session")?;
    if current.committed_at.is_none() {
        return Err(expired(session, "has expired: its lease ran out"));
    }
    if is_stored(db, tenant, id).await? {
        Ok(answer(id, true))
    } else {
        Err(expired(session, "has expired: its snapshot was committed"))
    }
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
