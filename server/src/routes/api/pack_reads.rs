//! `GET /api/v1/packs/{pack_id}`: reading a stored pack, whole or one byte
//! range of it, for restore.
//!
//! With `Range: bytes=a-b` (or `bytes=a-`, `bytes=-n`) the answer is 206
//! with `Content-Range`; without it, 200 and the whole pack. Either way the
//! bytes are streamed from the store chunk by chunk ([`stream`]), never
//! buffered whole. The size comes from the index, so an unsatisfiable
//! range is refused (416, naming the pack and its size) without touching
//! the store; a malformed or multi-part `Range` is 400 ([`range`]).
//!
//! `HEAD` answers the same status and headers (the size in
//! `Content-Length`, and `Content-Range`) without reading the store.
//!
//! A pack the caller's tenant does not hold — another tenant's included —
//! answers the same 404 as an id nobody stored, and is written to the audit
//! log; the lookup comes before the `Range` header is read, so every such
//! request is audited whatever its header.

pub mod range;
pub mod stream;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, ContentType};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use futures_core::Stream;
use stowage_protocol::api::{ApiError, codes};
use stowage_protocol::ids::PackId;

use self::range::ByteRange;
use self::stream::{ObjectRangeStream, READ_CHUNK_BYTES};
use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::{Database, DbError, packs};
use crate::ingest::pack_key;
use crate::storage::ObjectStore;

/// Why a pack read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// Unknown pack, bad `Range`, or a server failure.
    #[error(transparent)]
    Request(#[from] Failure),
    /// The range selects no byte of the pack (416).
    #[error("the range {header:?} selects no byte of pack {pack}, which is {size} bytes long")]
    Unsatisfiable {
        /// The `Range` header as received.
        header: String,
        /// The pack.
        pack: PackId,
        /// Its size in bytes.
        size: u64,
    },
}

impl ResponseError for ReadFailure {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Request(failure) => failure.status_code(),
            Self::Unsatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Request(failure) => failure.error_response(),
            Self::Unsatisfiable { size, .. } => HttpResponse::build(self.status_code())
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .json(ApiError::new(
                    codes::RANGE_NOT_SATISFIABLE,
                    self.to_string(),
                    false,
                )),
        }
    }
}

/// Streams pack `pack_id`, or the one byte range its `Range` header names;
/// for `HEAD`, the same status and headers without reading the store.
///
/// # Errors
///
/// 400 for an id that is not hex (refused by the path config) or a
/// malformed or multi-part `Range`; 404 (audited) for a pack the tenant does
/// not hold; 416 for a range past its end; 500 when the database or the
/// store fails.
pub async fn get(
    db: web::Data<Database>,
    store: web::Data<dyn ObjectStore>,
    who: AuthenticatedAgent,
    path: web::Path<PackId>,
    request: HttpRequest,
) -> Result<HttpResponse, ReadFailure> {
    let id = path.into_inner();
    let size = pack_size(&db, who, id).await?;
    let asked = requested_range(&request)?;
    let range = match &asked {
        None => 0..size,
        Some((header, range)) => range
            .resolve(size)
            .ok_or_else(|| ReadFailure::Unsatisfiable {
                header: header.clone(),
                pack: id,
                size,
            })?,
    };
    let body = if request.method() == Method::HEAD {
        Body::Headers
    } else {
        let key = pack_key(who.tenant, id);
        let stream =
            ObjectRangeStream::open(store.into_inner(), key, range.clone(), READ_CHUNK_BYTES)
                .await
                .map_err(|error| super::object_read_failure(who, &id, error))?;
        Body::Bytes(stream)
    };
    let mut response = if asked.is_some() {
        let mut partial = HttpResponse::PartialContent();
        partial.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", range.start, range.end - 1),
        ));
        partial
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .content_type(ContentType::octet_stream())
        .body(SizedStream::new(range.end - range.start, body)))
}

/// A response body: the bytes, or none for `HEAD` (whose `Content-Length`
/// still tells the size, as the same `GET` would).
enum Body {
    Bytes(ObjectRangeStream),
    Headers,
}

impl Stream for Body {
    type Item = Result<Bytes, anyhow::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut() {
            Self::Bytes(stream) => std::pin::Pin::new(stream).poll_next(cx),
            Self::Headers => std::task::Poll::Ready(None),
        }
    }
}

/// The size of pack `id` of the caller's tenant.
///
/// # Errors
///
/// 404 (audited) when the tenant has no such pack; 500 when the database fails.
async fn pack_size(db: &Database, who: AuthenticatedAgent, id: PackId) -> Result<u64, Failure> {
    match packs::get(db, who.tenant, id).await {
        Ok(pack) => Ok(pack.size),
        Err(DbError::NotFound { .. }) => {
            super::audit_access_denied(db, who, "pack.access_denied", &id.to_hex(), "pack").await?;
            Err(Failure::NotFound {
                code: codes::NOT_FOUND,
                message: format!("pack {id} does not exist"),
            })
        }
        Err(other) => Err(anyhow::Error::new(other).into()),
    }
}

/// The request's single `Range` header, parsed, with its text; `None` when
/// there is none.
///
/// # Errors
///
/// 400 for several `Range` headers, one that is not ASCII, or one
/// [`ByteRange::parse`] refuses.
fn requested_range(request: &HttpRequest) -> Result<Option<(String, ByteRange)>, Failure> {
    let mut headers = request.headers().get_all(header::RANGE);
    let Some(value) = headers.next() else {
        return Ok(None);
    };
    if headers.next().is_some() {
        return Err(Failure::Validation(
            "the request has several Range headers; only one range per request is supported"
                .to_owned(),
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| Failure::Validation("the Range header is not ASCII text".to_owned()))?;
    let range = ByteRange::parse(text).map_err(|error| Failure::Validation(error.to_string()))?;
    Ok(Some((text.to_owned(), range)))
}
