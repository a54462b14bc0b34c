//! The agent API under `/api/v1`: JSON in, JSON out, every failure an
//! [`ApiError`] body.
//!
//! Handlers return [`Failure`], which maps each kind of failure to a status
//! and an error code the agent can act on. Unexpected failures (the database
//! is down, a stored row does not decode) are logged with their cause and
//! answered with an opaque 500, so internals never reach the client.

pub mod blobs;
pub mod commit;
pub mod enroll;
pub mod jobs;
pub mod operator;
pub mod pack_reads;
pub mod packs;
pub mod snapshots;
pub mod tenant_keys;
pub mod trees;
pub mod uploads;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use stowage_protocol::api::{ApiError, MAX_IDS_PER_QUERY, codes};
use stowage_protocol::ids::BlobId;

/// Largest JSON body accepted: room for [`MAX_IDS_PER_QUERY`] hex ids
/// (66 bytes each with quotes, plus a comma) with generous slack.
pub const JSON_LIMIT_BYTES: usize = MAX_IDS_PER_QUERY * 100;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The body or a parameter breaks a rule (400).
    #[error("{0}")]
    Validation(String),
    /// The body is larger than [`JSON_LIMIT_BYTES`] (413).
    #[error("{0}")]
    TooLarge(String),
    /// No valid credential (401); the message never says which part was wrong.
    #[error("{message}")]
    Unauthorized {
        /// One of [`codes`].
        code: &'static str,
        /// The sentence for the client.
        message: String,
    },
    /// The credential may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such object for this tenant (404).
    #[error("{message}")]
    NotFound {
        /// One of [`codes`].
        code: &'static str,
        /// The sentence for the client.
        message: String,
    },
    /// The request clashes with the stored state (409).
    #[error("{message}")]
    Conflict {
        /// One of [`codes`].
        code: &'static str,
        /// The sentence for the client.
        message: String,
    },
    /// A commit names blobs the tenant does not hold (409, `missing_blobs`).
    #[error("{message}")]
    MissingBlobs {
        /// The sentence for the client, counting every missing blob.
        message: String,
        /// Up to [`stowage_protocol::api::MAX_REPORTED_MISSING`] of the missing ids.
        ids: Vec<BlobId>,
    },
    /// The caller spent its request budget (429, `rate_limited`, retryable,
    /// with `Retry-After`).
    #[error("{message}")]
    RateLimited {
        /// The sentence for the client, naming the limit.
        message: String,
        /// Whole seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// Anything else; logged, answered with an opaque 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) | Self::TooLarge(_) => codes::INVALID_REQUEST,
            Self::Forbidden(_) => codes::FORBIDDEN,
            Self::Unauthorized { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::MissingBlobs { .. } => codes::MISSING_BLOBS,
            Self::RateLimited { .. } => codes::RATE_LIMITED,
            Self::Unexpected(_) => codes::INTERNAL,
        }
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } | Self::MissingBlobs { .. } => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Unexpected(cause) => {
                tracing::error!("API request failed: {cause:#}");
                ApiError::new(
                    codes::INTERNAL,
                    "the server failed to handle the request; try again later",
                    true,
                )
            }
            Self::MissingBlobs { message, ids } => ApiError {
                missing_blobs: ids.clone(),
                ..ApiError::new(codes::MISSING_BLOBS, message.clone(), false)
            },
            Self::RateLimited {
                message,
                retry_after_secs,
            } => {
                return HttpResponse::build(self.status_code())
                    .insert_header((RETRY_AFTER, retry_after_secs.to_string()))
                    .json(ApiError::new(codes::RATE_LIMITED, message.clone(), true));
            }
            other => ApiError::new(other.code(), other.to_string(), false),
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}

/// Registers every `/api/v1` route on `config`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::scope(stowage_protocol::api::API_PREFIX)
            .app_data(json_config())
            .app_data(query_config())
            .app_data(path_config())
            .route("/agents/enroll", web::post().to(enroll::enroll))
            .route("/tenant/keys", web::put().to(tenant_keys::put))
            .route("/tenant/keys", web::get().to(tenant_keys::get))
            .route("/jobs/claim", web::post().to(jobs::claim))
            .route("/jobs/{job_id}/progress", web::post().to(jobs::progress))
            .route("/jobs/{job_id}/finish", web::post().to(jobs::finish))
            .route("/uploads", web::post().to(uploads::open))
            .route(
                "/uploads/{session_id}/missing",
                web::post().to(uploads::missing),
            )
            .route(
                "/uploads/{session_id}/packs/{pack_id}",
                web::put().to(packs::upload),
            )
            .route(
                "/uploads/{session_id}/commit",
                web::post().to(commit::commit),
            )
            .route("/plans", web::get().to(operator::plans::list))
            .route("/plans", web::post().to(operator::plans::create))
            .route("/plans/{name}", web::get().to(operator::plans::get))
            .route("/plans/{name}", web::put().to(operator::plans::replace))
            .route("/plans/{name}", web::delete().to(operator::plans::delete))
            .route("/plans/{name}/run", web::post().to(operator::plans::run))
            .route(
                "/plans/{name}/restore-test",
                web::post().to(operator::plans::restore_test),
            )
            .route("/jobs", web::get().to(operator::jobs::list))
            .route("/jobs/restore", web::post().to(operator::jobs::restore))
            .route("/jobs/verify", web::post().to(operator::jobs::verify))
            .route("/jobs/{job_id}", web::get().to(operator::jobs::get))
            .route("/agents", web::get().to(operator::agents::list))
            .route("/usage", web::get().to(operator::usage::show))
            .route(
                "/retention/preview",
                web::get().to(operator::retention::preview),
            )
            .route(
                "/retention/apply",
                web::post().to(operator::retention::apply),
            )
            .route(
                "/snapshots/{snapshot_id}/pin",
                web::post().to(operator::retention::pin),
            )
            .route(
                "/snapshots/{snapshot_id}/pin",
                web::delete().to(operator::retention::unpin),
            )
            .route(
                "/snapshots/{snapshot_id}",
                web::delete().to(operator::retention::forget),
            )
            .route("/snapshots", web::get().to(snapshots::list))
            .route("/snapshots/{snapshot_id}", web::get().to(snapshots::get))
            .route("/blobs/locate", web::post().to(blobs::locate))
            .route("/trees/{blob_id}", web::get().to(trees::get))
            .route("/packs/{pack_id}", web::get().to(pack_reads::get))
            .route("/packs/{pack_id}", web::head().to(pack_reads::get)),
    );
}

/// JSON bodies: capped at [`JSON_LIMIT_BYTES`], refused with an [`ApiError`] body.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT_BYTES)
        .error_handler(json_error)
}

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let failure = match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            Failure::TooLarge(format!(
                "the request body is larger than the limit of {JSON_LIMIT_BYTES} bytes"
            ))
        }
        JsonPayloadError::ContentType => Failure::Validation(
            "the request body must be JSON with Content-Type: application/json".to_owned(),
        ),
        other => Failure::Validation(format!("the request body is invalid - {other}")),
    };
    failure.into()
}

/// Query strings: a parameter that does not parse is refused with an
/// [`ApiError`] body quoting the query and the parameter's complaint.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(query_error)
}

fn query_error(error: QueryPayloadError, request: &HttpRequest) -> actix_web::Error {
    let QueryPayloadError::Deserialize(cause) = error else {
        return Failure::Validation(format!("the query string is invalid - {error}")).into();
    };
    Failure::Validation(format!(
        "the query string {:?} is invalid - {cause}",
        request.query_string()
    ))
    .into()
}

/// Path segments: an id that does not parse is refused with an [`ApiError`]
/// body naming the segment and the id.
fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(path_error)
}

fn path_error(error: PathError, request: &HttpRequest) -> actix_web::Error {
    let PathError::Deserialize(cause) = error else {
        return Failure::Validation(format!("the path is invalid - {error}")).into();
    };
    let segments = request
        .match_info()
        .iter()
        .map(|(name, value)| format!("{name} {value:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    Failure::Validation(format!(
        "the path {} has a malformed id ({segments}) - {cause}",
        request.path()
    ))
    .into()
}

/// The answer to a failed read of an indexed pack's object: when the object
/// is gone from storage, a 404 `object_missing` naming the pack (not
/// retryable — trying again cannot bring it back) and an error in the log,
/// since the server has lost data its index promises; any other store
/// failure is a retryable 500.
pub(super) fn object_read_failure(
    who: crate::auth::agent::AuthenticatedAgent,
    pack: &stowage_protocol::ids::PackId,
    error: crate::storage::StorageError,
) -> Failure {
    if let crate::storage::StorageError::NotFound { key } = &error {
        tracing::error!(
            tenant = %who.tenant,
            pack = %pack,
            key = %key,
            "an indexed pack's object is missing from storage; restore it from a replica"
        );
        return Failure::NotFound {
            code: codes::OBJECT_MISSING,
            message: format!(
                "pack {pack} is in the index but its object is missing from storage; the \
                 server's operator must restore it from a replica"
            ),
        };
    }
    anyhow::Error::new(error)
        .context(format!("unable to read pack {pack}"))
        .into()
}

/// Records a request for an object the caller's tenant does not have — a
/// stale id or an attempt to reach another tenant's data — so attempts show
/// in the audit log while the caller only ever sees a 404.
pub(super) async fn audit_access_denied(
    db: &crate::db::Database,
    who: crate::auth::agent::AuthenticatedAgent,
    action: &str,
    object: &str,
    what: &str,
) -> Result<(), Failure> {
    use anyhow::Context as _;
    crate::db::audit::record(
        db,
        Some(who.tenant),
        crate::db::audit::NewAuditEntry {
            actor: &who.agent.to_hex(),
            action,
            object,
            details: &format!(r#"{{"reason":"unknown {what} or cross-tenant access attempt"}}"#),
        },
    )
    .await
    .with_context(|| format!("unable to audit a request for an unknown {what}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    async fn body_of(failure: &Failure) -> ApiError {
        let bytes = to_bytes(failure.error_response().into_body())
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[actix_web::test]
    async fn each_failure_has_its_status_and_code_and_an_unexpected_one_hides_its_cause() {
        let cases = [
            (
                Failure::Validation("bad".into()),
                400,
                codes::INVALID_REQUEST,
            ),
            (Failure::TooLarge("big".into()), 413, codes::INVALID_REQUEST),
            (
                Failure::Conflict {
                    code: codes::TENANT_KEYS_EXIST,
                    message: "exists".into(),
                },
                409,
                codes::TENANT_KEYS_EXIST,
            ),
            (
                Failure::MissingBlobs {
                    message: "missing".into(),
                    ids: Vec::new(),
                },
                409,
                codes::MISSING_BLOBS,
            ),
            (
                Failure::RateLimited {
                    message: "slow down".into(),
                    retry_after_secs: 2,
                },
                429,
                codes::RATE_LIMITED,
            ),
            (
                Failure::Unexpected(anyhow::anyhow!("password=hunter2 in the pool URL")),
                500,
                codes::INTERNAL,
            ),
        ];
        for (failure, status, code) in cases {
            let body = body_of(&failure).await;

            assert_eq!(failure.status_code().as_u16(), status);
            assert_eq!(body.code, code);
            assert!(!body.message.contains("hunter2"), "{}", body.message);
            assert_eq!(body.retryable, status == 500 || status == 429);
        }
    }

    #[actix_web::test]
    async fn an_oversized_json_body_becomes_a_413_naming_the_limit() {
        let request = actix_web::test::TestRequest::default().to_http_request();
        let error = json_error(
            JsonPayloadError::OverflowKnownLength {
                length: JSON_LIMIT_BYTES + 1,
                limit: JSON_LIMIT_BYTES,
            },
            &request,
        );

        let response = error.error_response();

        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let bytes = to_bytes(response.into_body()).await.unwrap();
        let body: ApiError = serde_json::from_slice(&bytes).unwrap();
        assert!(
            body.message.contains(&JSON_LIMIT_BYTES.to_string()),
            "{}",
            body.message
        );
    }
}
