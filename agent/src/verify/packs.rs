//! Checking the packs a set of snapshots needs: that each exists and its
//! key opens (always), and with `--read-data` that its bytes hash to its id
//! and every needed blob opens and matches its id.

use std::collections::HashMap;
use std::sync::Arc;

use stowage_protocol::api::BlobLocation;
use stowage_protocol::blob::{open_blob, verify_blob_id};
use stowage_protocol::crypto::{TenantKeys, open_data_key};
use stowage_protocol::ids::PackId;
use stowage_protocol::pack::{PackReader, verify_pack_id};
use tokio::task::JoinSet;

use super::problem::Problem;
use crate::api::ServerClient;
use crate::reader::RepoReader;
use crate::throttle::Throttle;

/// Packs checked at once.
const PACKS_IN_FLIGHT: usize = 4;

/// What the pack checks counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct PackTally {
    /// Packs checked.
    pub packs: u64,
    /// Blobs opened and checked (read-data only).
    pub blobs_read: u64,
    /// Bytes downloaded (read-data only).
    pub bytes_read: u64,
}

/// Shared by every pack task.
pub struct PackCheck {
    /// For the header-only check.
    pub reader: RepoReader,
    /// For whole-pack downloads.
    pub client: ServerClient,
    /// For opening data keys and naming blobs.
    pub keys: TenantKeys,
    /// `--limit-download`.
    pub throttle: Arc<Throttle>,
    /// Largest plaintext a blob may open to.
    pub max_blob_len: usize,
}

/// Checks every pack in `by_pack`, reporting progress through `on_pack`
/// (bytes of the pack). Without `read_data` only the header is fetched.
pub async fn check_packs(
    check: Arc<PackCheck>,
    by_pack: HashMap<PackId, Vec<BlobLocation>>,
    read_data: bool,
    mut on_pack: impl FnMut(u64),
) -> (PackTally, Vec<Problem>) {
    let mut tally = PackTally::default();
    let mut problems = Vec::new();
    let mut pending = by_pack.into_iter();
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.len() < PACKS_IN_FLIGHT {
            let Some((pack, blobs)) = pending.next() else {
                break;
            };
            let check = Arc::clone(&check);
            in_flight.spawn(async move {
                if read_data {
                    check_whole_pack(&check, pack, blobs).await
                } else {
                    check_pack_header(&check, pack).await
                }
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (one, found) = joined.expect("a pack check never panics");
        tally.packs += 1;
        tally.blobs_read += one.blobs_read;
        tally.bytes_read += one.bytes_read;
        on_pack(one.bytes_read);
        problems.extend(found);
    }
    (tally, problems)
}

async fn check_pack_header(check: &PackCheck, pack: PackId) -> (PackTally, Vec<Problem>) {
    let problems = match check.reader.data_key(&pack).await {
        Ok(_) => Vec::new(),
        Err(error) => vec![Problem::PackUnreadable {
            pack,
            error: error.to_string(),
        }],
    };
    (PackTally::default(), problems)
}

async fn check_whole_pack(
    check: &PackCheck,
    pack: PackId,
    blobs: Vec<BlobLocation>,
) -> (PackTally, Vec<Problem>) {
    let bytes = match check.client.pack(&pack).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return (
                PackTally::default(),
                vec![Problem::PackUnreadable {
                    pack,
                    error: error.to_string(),
                }],
            );
        }
    };
    check.throttle.take(bytes.len() as u64).await;
    let tally = PackTally {
        packs: 0,
        blobs_read: blobs.len() as u64,
        bytes_read: bytes.len() as u64,
    };
    let keys = check.keys.clone();
    let max_blob_len = check.max_blob_len;
    let problems =
        tokio::task::spawn_blocking(move || open_all(&keys, &pack, &bytes, &blobs, max_blob_len))
            .await
            .expect("opening blobs never panics");
    (tally, problems)
}

/// Hashes the pack, parses it and opens each needed blob (CPU work, on a
/// blocking thread).
fn open_all(
    keys: &TenantKeys,
    pack: &PackId,
    bytes: &[u8],
    blobs: &[BlobLocation],
    max_blob_len: usize,
) -> Vec<Problem> {
    if let Err(error) = verify_pack_id(bytes, pack) {
        return vec![Problem::PackDamaged {
            pack: *pack,
            error: error.to_string(),
        }];
    }
    let reader = match PackReader::parse(bytes) {
        Ok(reader) => reader,
        Err(error) => {
            return vec![Problem::PackDamaged {
                pack: *pack,
                error: error.to_string(),
            }];
        }
    };
    let data_key = match open_data_key(reader.sealed_key(), &keys.recovery_secret) {
        Ok(key) => key,
        Err(error) => {
            return vec![Problem::PackUnreadable {
                pack: *pack,
                error: format!("its data key does not open - {error}"),
            }];
        }
    };
    let mut problems = Vec::new();
    for location in blobs {
        let damaged = |error: String| Problem::BlobDamaged {
            pack: *pack,
            blob: location.id,
            error,
        };
        let Some(entry) = reader.find(&location.id) else {
            problems.push(damaged("the pack's table does not list it".into()));
            continue;
        };
        let sealed = reader.blob_bytes(entry).unwrap_or_default();
        match open_blob(&data_key, &entry.id, entry.kind, sealed, max_blob_len) {
            Ok(plaintext) => {
                if let Err(error) = verify_blob_id(&keys.id_key, &entry.id, entry.kind, &plaintext)
                {
                    problems.push(damaged(error.to_string()));
                }
            }
            Err(error) => problems.push(damaged(error.to_string())),
        }
    }
    problems
}
