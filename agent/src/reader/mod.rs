//! Reading a repository back: trees and blobs, fetched from the server,
//! opened with the tenant's keys and checked against their ids.
//!
//! Everything a restore, `ls` or `verify` reads goes through [`RepoReader`],
//! so the checks live in one place: every blob's tag is verified before it is
//! decompressed (with a size cap), every plaintext is re-hashed with the
//! tenant's id key and must equal the id it was asked for, and every tree is
//! decoded by the protocol's strict decoder. Errors name the pack and the
//! blob (see [`ReadError`]).
//!
//! Speed: blobs are read with ranged pack requests, neighbours coalesced
//! ([`ranges`]), several ranges and packs in flight at once; opening
//! (decrypting, decompressing, hashing) runs on blocking threads, never on
//! the runtime's workers. Each pack's data key is fetched (the first
//! [`PACK_HEADER_LEN`] bytes) and opened once, then cached for the life of
//! the reader; concurrent first uses share one fetch.

mod blobs;
mod error;
pub mod ranges;
mod trees;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stowage_protocol::api::{LocateBlobsResponse, MAX_IDS_PER_QUERY};
use stowage_protocol::crypto::{DataKey, TenantKeys, open_data_key};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PACK_HEADER_LEN, PackHeader};
use tokio::sync::OnceCell;

pub use blobs::{BlobResult, SealedBlob, SealedResult};
pub use error::ReadError;

use crate::api::ServerClient;
use crate::throttle::Throttle;

/// Range requests of one [`RepoReader::read_blobs`] call in flight at once.
const RANGES_IN_FLIGHT: usize = 4;

/// Packs read at once while fetching a batch of trees.
const PACKS_IN_FLIGHT: usize = 8;

/// Reads trees and blobs of one tenant. Cheap to clone; clones share the
/// connection, the throttle and the data-key cache.
#[derive(Clone)]
pub struct RepoReader {
    inner: Arc<Inner>,
}

/// One pack's data key, once fetched (or why it could not be).
type KeyCell = OnceCell<Result<DataKey, ReadError>>;

struct Inner {
    client: ServerClient,
    keys: TenantKeys,
    throttle: Arc<Throttle>,
    /// Opened data keys by pack, or why the key could not be had; a cell
    /// per pack so concurrent first uses wait for one fetch instead of each
    /// sending their own, and a pack that failed (after the client's
    /// retries) is not asked for again by every later batch.
    data_keys: Mutex<HashMap<PackId, Arc<KeyCell>>>,
}

impl std::fmt::Debug for RepoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoReader")
            .field("client", &self.inner.client)
            .finish_non_exhaustive()
    }
}

impl RepoReader {
    /// A reader through `client`, opening with `keys`, every download
    /// counted against `throttle`.
    pub fn new(client: ServerClient, keys: TenantKeys, throttle: Arc<Throttle>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                keys,
                throttle,
                data_keys: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The tenant keys this reader opens with.
    pub fn keys(&self) -> &TenantKeys {
        &self.inner.keys
    }

    /// Where `ids` are: found locations and unknown ids, asked in batches of
    /// [`MAX_IDS_PER_QUERY`].
    ///
    /// # Errors
    ///
    /// [`ReadError::Locate`] when the server cannot answer.
    pub async fn locate(&self, ids: &[BlobId]) -> Result<LocateBlobsResponse, ReadError> {
        let mut all = LocateBlobsResponse {
            found: Vec::with_capacity(ids.len()),
            unknown: Vec::new(),
        };
        for batch in ids.chunks(MAX_IDS_PER_QUERY) {
            let answer = self
                .inner
                .client
                .locate(batch.to_vec())
                .await
                .map_err(|error| ReadError::Locate {
                    count: batch.len(),
                    source: Arc::new(error),
                })?;
            all.found.extend(answer.found);
            all.unknown.extend(answer.unknown);
        }
        Ok(all)
    }

    /// The data key of `pack`: its header is fetched and the sealed key
    /// opened with the recovery secret once, then served from the cache
    /// (a failure is cached too, for the life of the reader).
    ///
    /// # Errors
    ///
    /// [`ReadError::PackMissing`] / [`ReadError::PackFetch`] when the header
    /// cannot be read, [`ReadError::PackHeader`] when it is damaged, and
    /// [`ReadError::DataKey`] when the key does not open.
    pub async fn data_key(&self, pack: &PackId) -> Result<DataKey, ReadError> {
        let cell = {
            let mut keys = self
                .inner
                .data_keys
                .lock()
                .expect("the data-key cache lock is never poisoned");
            Arc::clone(keys.entry(*pack).or_default())
        };
        cell.get_or_init(|| self.fetch_data_key(pack)).await.clone()
    }

    async fn fetch_data_key(&self, pack: &PackId) -> Result<DataKey, ReadError> {
        let range = 0..PACK_HEADER_LEN as u64;
        self.inner.throttle.take(range.end).await;
        let header = self
            .inner
            .client
            .pack_range(pack, range.clone())
            .await
            .map_err(|error| ReadError::from_fetch(*pack, range, error))?;
        let header = PackHeader::decode(&header).map_err(|source| ReadError::PackHeader {
            pack: *pack,
            source: Arc::new(source),
        })?;
        open_data_key(&header.sealed_key, &self.inner.keys.recovery_secret).map_err(|source| {
            ReadError::DataKey {
                pack: *pack,
                source: Arc::new(source),
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
