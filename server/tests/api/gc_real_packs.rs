//! Real pack objects for the repack and deletion-race tests: packs built
//! with the protocol's `PackWriter` from stand-in sealed blobs (a valid
//! blob header, then random bytes — the server never opens them), stored,
//! and indexed from their own table, so a repack can parse and copy them
//! and an upload can check them.

use std::collections::HashSet;

use stowage_protocol::blob::BlobKind;
use stowage_protocol::crypto::{SEALED_DATA_KEY_LEN, SealedDataKey};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::PackWriter;
use stowage_server::db::gc_objects;
use stowage_server::db::packs::{self, IndexedBlob};
use stowage_server::ingest::pack_key;
use stowage_server::storage::ObjectStore;

use crate::gc_fixture::{Stack, random_bytes};

/// A sealed blob as an agent would upload it.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub id: BlobId,
    pub kind: BlobKind,
    pub bytes: Vec<u8>,
    pub refs: Vec<BlobId>,
}

/// A data blob of `len` sealed bytes.
pub fn sealed_data(len: usize) -> Sealed {
    sealed(BlobKind::Data, len, &[])
}

/// A tree blob of `len` sealed bytes referencing `refs`.
pub fn sealed_tree(len: usize, refs: &[BlobId]) -> Sealed {
    sealed(BlobKind::Tree, len, refs)
}

fn sealed(kind: BlobKind, len: usize, refs: &[BlobId]) -> Sealed {
    let mut bytes = vec![b'S', b'B', 1, kind.as_u8(), 0];
    while bytes.len() < len {
        bytes.extend_from_slice(&random_bytes());
    }
    bytes.truncate(len.max(45));
    let mut refs = refs.to_vec();
    refs.sort_unstable();
    Sealed {
        id: BlobId::from_bytes(random_bytes()),
        kind,
        bytes,
        refs,
    }
}

/// A pack of `blobs` under a fresh sealed data key, and its bytes.
pub fn build(blobs: &[&Sealed]) -> (PackId, Vec<u8>) {
    let mut key = [0u8; SEALED_DATA_KEY_LEN];
    for chunk in key.chunks_mut(32) {
        chunk.copy_from_slice(&random_bytes()[..chunk.len()]);
    }
    let mut writer = PackWriter::new(&SealedDataKey::from_bytes(key));
    for blob in blobs {
        writer
            .add(blob.kind, blob.id, &blob.bytes, &blob.refs)
            .unwrap();
    }
    writer.finish()
}

/// The index entries of the pack `bytes`, from its own table.
pub fn table_of(bytes: &[u8]) -> Vec<IndexedBlob> {
    stowage_protocol::pack::PackReader::parse(bytes)
        .unwrap()
        .entries()
        .iter()
        .map(|entry| IndexedBlob {
            id: entry.id,
            kind: entry.kind,
            offset: entry.offset,
            length: entry.length,
            refs: entry.refs.clone(),
        })
        .collect()
}

impl Stack {
    /// Builds, stores and indexes a real pack of `blobs`.
    pub async fn real_pack(&self, blobs: &[&Sealed]) -> PackId {
        let (id, bytes) = build(blobs);
        self.store_and_index(id, &bytes).await;
        id
    }

    /// Stores the pack `bytes` as `id` and indexes it from its table, as an
    /// upload does.
    pub async fn store_and_index(&self, id: PackId, bytes: &[u8]) {
        self.store
            .put_bytes(&pack_key(self.tenant, id), bytes.to_vec().into())
            .await
            .unwrap();
        packs::index(
            &self.db,
            self.tenant,
            id,
            bytes.len() as u64,
            &table_of(bytes),
        )
        .await
        .unwrap();
    }

    /// The sealed bytes of `blob` read from the store where the index says
    /// it lies.
    pub async fn read_blob(&self, blob: BlobId) -> Vec<u8> {
        let location = packs::locate(&self.db, self.tenant, &[blob])
            .await
            .unwrap()
            .pop()
            .unwrap_or_else(|| panic!("blob {blob} is not indexed"));
        let start = u64::from(location.offset);
        self.store
            .get_range(
                &pack_key(self.tenant, location.pack_id),
                start..start + u64::from(location.length),
            )
            .await
            .unwrap_or_else(|error| panic!("blob {blob} cannot be read - {error}"))
            .to_vec()
    }

    /// The tenant's pack objects, with their sizes.
    pub async fn objects(&self) -> Vec<(PackId, u64)> {
        self.store
            .list(&format!("tenants/{}/packs/", self.tenant))
            .await
            .unwrap()
            .iter()
            .map(|meta| {
                let name = meta.key.segments().last().unwrap();
                (name.parse().unwrap(), meta.size)
            })
            .collect()
    }

    /// Bytes of all the tenant's pack objects.
    pub async fn stored_bytes(&self) -> u64 {
        self.objects().await.iter().map(|(_, size)| size).sum()
    }

    /// The tenant's pack objects that no `packs` row names.
    pub async fn unindexed_objects(&self) -> Vec<PackId> {
        let ids: Vec<PackId> = self.objects().await.into_iter().map(|(id, _)| id).collect();
        let indexed: HashSet<PackId> = gc_objects::indexed_packs(&self.db, self.tenant, &ids)
            .await
            .unwrap()
            .into_iter()
            .collect();
        ids.into_iter().filter(|id| !indexed.contains(id)).collect()
    }
}
