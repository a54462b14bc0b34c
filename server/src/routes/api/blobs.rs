//! `POST /api/v1/blobs/locate`: where a restore finds each blob it needs —
//! pack, offset, length and kind — so it can read exactly those bytes.
//!
//! Only the caller's tenant's index is searched, so another tenant's blob is
//! reported `unknown` exactly like an id nobody stored. A restore of a
//! committed snapshot only asks for blobs its tenant holds, so a request
//! naming unknown ids is written to the audit log (once per request, with
//! the count) for operators to see probing.

use std::collections::{HashMap, HashSet};

use actix_web::{HttpResponse, web};
use anyhow::Context;
use stowage_protocol::api::{
    BlobLocation, LocateBlobsRequest, LocateBlobsResponse, MAX_IDS_PER_QUERY,
};
use stowage_protocol::ids::BlobId;

use super::Failure;
use crate::auth::agent::AuthenticatedAgent;
use crate::db::{Database, audit, packs};

/// Locates each requested blob the tenant holds and lists the others as unknown.
///
/// # Errors
///
/// 400 for more than [`MAX_IDS_PER_QUERY`] ids; 500 when the database fails.
pub async fn locate(
    db: web::Data<Database>,
    who: AuthenticatedAgent,
    body: web::Json<LocateBlobsRequest>,
) -> Result<HttpResponse, Failure> {
    let ids = body.into_inner().ids;
    if ids.len() > MAX_IDS_PER_QUERY {
        return Err(Failure::Validation(format!(
            "the request asks about {} ids; the limit is {MAX_IDS_PER_QUERY} per request",
            ids.len()
        )));
    }
    let stored = packs::locate(&db, who.tenant, &ids)
        .await
        .context("unable to locate blobs")?;
    let response = in_request_order(&ids, stored);
    if let Some(first) = response.unknown.first() {
        audit_unknown(&db, who, *first, response.unknown.len()).await?;
    }
    Ok(HttpResponse::Ok().json(response))
}

/// Orders the stored locations as the ids were asked for, each id once.
fn in_request_order(ids: &[BlobId], stored: Vec<packs::BlobLocation>) -> LocateBlobsResponse {
    let mut by_id: HashMap<BlobId, packs::BlobLocation> = stored
        .into_iter()
        .map(|location| (location.id, location))
        .collect();
    let mut seen = HashSet::new();
    let mut response = LocateBlobsResponse {
        found: Vec::new(),
        unknown: Vec::new(),
    };
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        match by_id.remove(id) {
            Some(location) => response.found.push(BlobLocation {
                id: location.id,
                pack_id: location.pack_id,
                offset: location.offset,
                length: location.length,
                kind: location.kind,
            }),
            None => response.unknown.push(*id),
        }
    }
    response
}

/// One audit entry for a locate that named ids the tenant does not hold.
///
/// # Errors
///
/// 500 when the audit log cannot be written.
async fn audit_unknown(
    db: &Database,
    who: AuthenticatedAgent,
    first: BlobId,
    count: usize,
) -> Result<(), Failure> {
    audit::record(
        db,
        Some(who.tenant),
        audit::NewAuditEntry {
            actor: &who.agent.to_hex(),
            action: "blob.access_denied",
            object: &first.to_hex(),
            details: &format!(
                r#"{{"reason":"unknown blob or cross-tenant access attempt","unknown_ids":{count}}}"#
            ),
        },
    )
    .await
    .context("unable to audit a locate naming unknown blobs")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use stowage_protocol::blob::BlobKind;
    use stowage_protocol::ids::PackId;

    use super::*;

    fn stored(id: u8) -> packs::BlobLocation {
        packs::BlobLocation {
            id: BlobId::from_bytes([id; 32]),
            pack_id: PackId::from_bytes([9; 32]),
            kind: BlobKind::Data,
            offset: u32::from(id) * 10,
            length: 10,
        }
    }

    #[test]
    fn locations_follow_the_request_order_and_a_repeated_id_is_answered_once() {
        // Arrange
        let ids: Vec<BlobId> = [3, 7, 1, 3, 7]
            .into_iter()
            .map(|n| BlobId::from_bytes([n; 32]))
            .collect();

        // Act
        let response = in_request_order(&ids, vec![stored(1), stored(3)]);

        // Assert
        let found: Vec<BlobId> = response.found.iter().map(|l| l.id).collect();
        assert_eq!(found, vec![ids[0], ids[2]]);
        assert_eq!(response.found[0].offset, 30);
        assert_eq!(response.unknown, vec![ids[1]]);
    }
}
