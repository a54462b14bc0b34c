//! `GET /api/v1/trees/{blob_id}`: one sealed tree blob, as uploaded.
//!
//! A restore walks a snapshot tree by tree, so each tree is one request
//! that reads only its bytes from the pack (a ranged read, never the whole
//! pack). The server cannot open the blob; it checks that the stored bytes
//! have the length the index names and a tree blob's header, so a damaged
//! object is a server error rather than bytes the agent fails to open.
//!
//! A blob the caller's tenant does not hold — another tenant's included —
//! answers the same 404 as an id nobody stored, and a blob that is a data
//! chunk answers 404 saying so; both are written to the audit log.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use anyhow::{Context, anyhow};
use stowage_protocol::api::codes;
use stowage_protocol::blob::{BlobHeader, BlobKind};
use stowage_protocol::ids::BlobId;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::packs::BlobLocation;
use crate::db::{Database, packs};
use crate::ingest::pack_key;
use crate::storage::ObjectStore;

/// The sealed bytes of tree blob `blob_id` (200, `application/octet-stream`).
///
/// # Errors
///
/// 400 for an id that is not hex (refused by the path config); 404
/// (audited) for a blob the tenant does not hold or one that is not a tree;
/// 500 when the database or the store fails or the stored bytes do not
/// match the index.
pub async fn get(
    db: web::Data<Database>,
    store: web::Data<dyn ObjectStore>,
    who: AuthenticatedAgent,
    path: web::Path<BlobId>,
) -> Result<HttpResponse, Failure> {
    let id = path.into_inner();
    let location = tree_location(&db, who, id).await?;
    let sealed = read_sealed(store.get_ref(), who, &location).await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::octet_stream())
        .body(sealed))
}

/// Where tree `id` of the caller's tenant lies.
///
/// # Errors
///
/// 404 (audited) when the tenant has no blob `id` or it is a data chunk;
/// 500 when the database fails.
async fn tree_location(
    db: &Database,
    who: AuthenticatedAgent,
    id: BlobId,
) -> Result<BlobLocation, Failure> {
    let found = packs::locate(db, who.tenant, &[id])
        .await
        .context("unable to locate a tree blob")?;
    let message = match found.first() {
        Some(location) if location.kind == BlobKind::Tree => return Ok(*location),
        Some(_) => format!(
            "blob {} is a data chunk, not a tree; fetch it from its pack",
            id.to_hex()
        ),
        None => format!("tree blob {} does not exist", id.to_hex()),
    };
    super::audit_access_denied(db, who, "tree.access_denied", &id.to_hex(), "tree blob").await?;
    Err(Failure::NotFound {
        code: codes::NOT_FOUND,
        message,
    })
}

/// Reads the sealed tree at `location` and checks its length and header.
///
/// # Errors
///
/// 500 when the store fails or the bytes are not the indexed tree.
async fn read_sealed(
    store: &dyn ObjectStore,
    who: AuthenticatedAgent,
    location: &BlobLocation,
) -> Result<bytes::Bytes, Failure> {
    let key = pack_key(who.tenant, location.pack_id);
    let start = u64::from(location.offset);
    let range = start..start + u64::from(location.length);
    let sealed = store
        .get_range(&key, range.clone())
        .await
        .map_err(|error| super::object_read_failure(who, &location.pack_id, error))?;
    if sealed.len() != location.length as usize {
        return Err(anyhow!(
            "pack {} holds {} bytes at {range:?}, not the {} of tree blob {}",
            location.pack_id.to_hex(),
            sealed.len(),
            location.length,
            location.id.to_hex()
        )
        .into());
    }
    let header = BlobHeader::parse(&location.id, &sealed)
        .with_context(|| format!("pack {} is damaged", location.pack_id.to_hex()))?;
    if header.kind != BlobKind::Tree {
        return Err(anyhow!(
            "pack {} holds a data chunk where the index puts tree blob {}",
            location.pack_id.to_hex(),
            location.id.to_hex()
        )
        .into());
    }
    Ok(sealed)
}
