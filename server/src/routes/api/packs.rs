//! `PUT /api/v1/uploads/{session_id}/packs/{pack_id}`: one pack upload.
//!
//! The body is handed to [`ingest_pack`] as the stream actix gives, chunk by
//! chunk, so a pack of any allowed size never sits in memory; the ingest
//! service enforces the size limit itself, which is why this route reads
//! `web::Payload` (no actix body limit) and not `web::Bytes`. The session is
//! checked (and its lease extended) before a byte of the body is read.
//! Every blob of the pack — stored now or already present — is leased to
//! the session by the ingest service, in the transaction that indexes it, so
//! garbage collection keeps it until the commit.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use stowage_protocol::api::{ApiError, PackUploadResponse};
use stowage_protocol::ids::PackId;

use super::Failure;
use super::uploads::live_session;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::Database;
use crate::ingest::{ErrorClass, IngestContext, IngestError, IngestOutcome, ingest_pack};

/// Why a pack upload failed: the session or URL was wrong, or ingest refused.
#[derive(Debug, thiserror::Error)]
pub enum PackFailure {
    /// The session or the pack id in the URL was refused.
    #[error(transparent)]
    Request(#[from] Failure),
    /// The ingest service refused or failed to store the pack.
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl ResponseError for PackFailure {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Request(failure) => failure.status_code(),
            Self::Ingest(error) => match error.class() {
                ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
                ErrorClass::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorClass::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Request(failure) => failure.error_response(),
            Self::Ingest(error) => {
                let message = match error.class() {
                    // Expected during garbage collection, and the agent's own
                    // pack id is all it says: the agent may read it.
                    _ if matches!(error, IngestError::BeingDeleted { .. }) => {
                        tracing::warn!("pack upload refused: {error}");
                        error.to_string()
                    }
                    ErrorClass::Internal | ErrorClass::Unavailable => {
                        tracing::error!("pack upload failed: {error}");
                        format!(
                            "the server could not store the pack now; try again later ({})",
                            error.code()
                        )
                    }
                    _ => error.to_string(),
                };
                HttpResponse::build(self.status_code()).json(ApiError::new(
                    error.code(),
                    message,
                    error.is_retryable(),
                ))
            }
        }
    }
}

/// Stores one pack for the session's tenant: 201 when this upload stored
/// it, 200 with `already_present` when the tenant had it.
///
/// # Errors
///
/// 404 for a session the agent does not have; 409 for a committed or
/// expired one; 400 for a pack id that is not 64 hex digits or a broken
/// body; 413 for a body past the pack size limit; 422 (`pack_rejected`) for
/// a body that is not the named pack; 503/500 when storage fails.
pub async fn upload(
    db: web::Data<Database>,
    ingest: web::Data<IngestContext>,
    who: AuthenticatedAgent,
    path: web::Path<(String, String)>,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, PackFailure> {
    let (raw_session, raw_pack) = path.into_inner();
    let session = live_session(&db, who, &raw_session).await?;
    let pack_id: PackId = raw_pack.parse().map_err(|_| {
        Failure::Validation(format!(
            "pack id {raw_pack:?} is not 64 lowercase hex digits"
        ))
    })?;
    // A declared length past the limit is refused before a byte is read,
    // so a client need not send 1 GB to learn it was too much.
    let limit = ingest.max_pack_size();
    if declared_length(&request).is_some_and(|length| length > limit) {
        return Err(IngestError::TooLarge {
            pack: pack_id,
            limit,
        }
        .into());
    }
    let outcome = ingest_pack(&ingest, who.tenant, Some(session), pack_id, body).await?;
    let (status, blob_count, already_present) = match outcome {
        IngestOutcome::Stored { blob_count, .. } => (StatusCode::CREATED, blob_count, false),
        IngestOutcome::AlreadyPresent { blob_count, .. } => (StatusCode::OK, blob_count, true),
    };
    Ok(HttpResponse::build(status).json(PackUploadResponse {
        pack_id,
        blobs_indexed: u32::try_from(blob_count).unwrap_or(u32::MAX),
        already_present,
    }))
}

/// The body length the client declared in `Content-Length`, if any.
fn declared_length(request: &HttpRequest) -> Option<u64> {
    request
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use stowage_protocol::api::codes;

    use super::*;

    #[actix_web::test]
    async fn each_ingest_class_has_its_status_code_and_retry_hint() {
        let pack = PackId::from_bytes([1; 32]);
        let cases = [
            (
                IngestError::WrongPackHash {
                    expected: pack,
                    actual: PackId::from_bytes([2; 32]),
                },
                422,
                codes::PACK_REJECTED,
                false,
            ),
            (
                IngestError::TooLarge { pack, limit: 10 },
                413,
                codes::INVALID_REQUEST,
                false,
            ),
            (
                IngestError::Body {
                    pack,
                    message: "connection reset".into(),
                },
                400,
                codes::INVALID_REQUEST,
                true,
            ),
        ];
        for (error, status, code, retryable) in cases {
            let failure = PackFailure::Ingest(error);

            let response = failure.error_response();

            assert_eq!(response.status().as_u16(), status);
            let bytes = to_bytes(response.into_body()).await.unwrap();
            let body: ApiError = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body.code, code);
            assert_eq!(body.retryable, retryable);
        }
    }
}
