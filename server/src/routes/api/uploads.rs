//! `POST /api/v1/uploads` and `POST /api/v1/uploads/{session_id}/missing`:
//! opening an upload session and asking which blobs to send.
//!
//! Every request on a session extends its lease, and the blobs reported
//! present are leased to the session so garbage collection keeps them until
//! the commit. A session belongs to the agent that opened it: a session id
//! of another tenant, or of another agent of the same tenant, answers 404
//! exactly like an unknown one, changes nothing, and leaves an audit entry.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use anyhow::Context;
use stowage_protocol::api::{
    MAX_IDS_PER_QUERY, MissingBlobsRequest, MissingBlobsResponse, OpenUploadSessionRequest,
    UploadSession, codes,
};
use stowage_protocol::ids::UploadSessionId;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::upload_sessions::UploadSession as StoredSession;
use crate::db::{Database, DbError, gc_leases, upload_sessions};

/// How long a session lives without a request on it.
pub const SESSION_LEASE: Duration = Duration::from_hours(1);

/// Opens an upload session for the calling agent (201).
///
/// # Errors
///
/// 500 when the database fails.
pub async fn open(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    _body: web::Json<OpenUploadSessionRequest>,
) -> Result<HttpResponse, Failure> {
    let session = upload_sessions::open(&db, who.tenant, who.agent, SESSION_LEASE)
        .await
        .context("unable to open an upload session")?;
    Ok(HttpResponse::Created().json(UploadSession {
        session_id: session.id,
        lease_expires_at: session.lease_expires_at,
    }))
}

/// Answers which of the ids the tenant lacks, leasing the present ones to the session.
///
/// # Errors
///
/// 400 for more than [`MAX_IDS_PER_QUERY`] ids; 404 for a session the
/// tenant does not have; 409 for a committed or expired session.
pub async fn missing(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    path: web::Path<String>,
    body: web::Json<MissingBlobsRequest>,
) -> Result<HttpResponse, Failure> {
    let raw_id = path.into_inner();
    let ids = body.into_inner().ids;
    if ids.len() > MAX_IDS_PER_QUERY {
        return Err(Failure::Validation(format!(
            "the request asks about {} ids; the limit is {MAX_IDS_PER_QUERY} per request",
            ids.len()
        )));
    }
    let session_id = live_session(&db, who, &raw_id).await?;
    // One transaction ordered against garbage collection's sweep, so a blob
    // reported present cannot be collected before it is leased.
    let missing = gc_leases::lease_present(&db, who.tenant, session_id, &ids)
        .await
        .context("unable to look up missing blobs and lease the present ones")?;
    Ok(HttpResponse::Ok().json(MissingBlobsResponse { missing }))
}

/// Resolves `raw_id` to a session of the caller's tenant that is still open
/// and extends its lease; every request on a session goes through here.
///
/// # Errors
///
/// 404 (audited) for an id the agent does not have; 409 for a committed or
/// expired session; 500 when the database fails.
pub(super) async fn live_session(
    db: &Database,
    who: AuthenticatedAgent,
    raw_id: &str,
) -> Result<UploadSessionId, Failure> {
    let session = session_of(db, who, raw_id).await?;
    renew(db, who, &session).await?;
    Ok(session.id)
}

/// The session of the calling agent named `raw_id`, committed or not.
///
/// # Errors
///
/// 404 (audited) for an id the agent does not have, including a session of
/// another agent of its tenant; 500 when the database fails.
pub(super) async fn session_of(
    db: &Database,
    who: AuthenticatedAgent,
    raw_id: &str,
) -> Result<StoredSession, Failure> {
    let Ok(session_id) = raw_id.parse::<UploadSessionId>() else {
        return Err(unknown_session(raw_id));
    };
    match upload_sessions::get(db, who.tenant, session_id).await {
        Ok(session) if session.agent_id == who.agent => Ok(session),
        Ok(_) | Err(DbError::NotFound { .. }) => {
            super::audit_access_denied(
                db,
                who,
                "upload_session.access_denied",
                &session_id.to_hex(),
                "session",
            )
            .await?;
            Err(unknown_session(raw_id))
        }
        Err(other) => Err(anyhow::Error::new(other).into()),
    }
}

/// Extends the lease of an uncommitted, unexpired session.
///
/// # Errors
///
/// 409 for a committed or expired session; 500 when the database fails.
pub(super) async fn renew(
    db: &Database,
    who: AuthenticatedAgent,
    session: &StoredSession,
) -> Result<(), Failure> {
    if session.committed_at.is_some() {
        return Err(expired(
            session.id,
            "has expired: its snapshot was committed",
        ));
    }
    match upload_sessions::extend_lease(db, who.tenant, session.id, SESSION_LEASE).await {
        Ok(_) => Ok(()),
        Err(DbError::NotFound { .. }) => Err(expired(session.id, "has expired: its lease ran out")),
        Err(other) => Err(anyhow::Error::new(other).into()),
    }
}

fn unknown_session(raw_id: &str) -> Failure {
    Failure::NotFound {
        code: codes::NOT_FOUND,
        message: format!("upload session {raw_id} does not exist"),
    }
}

pub(super) fn expired(id: UploadSessionId, how: &str) -> Failure {
    Failure::Conflict {
        code: codes::SESSION_EXPIRED,
        message: format!("upload session {} {how}; open a new one", id.to_hex()),
    }
}
