//! The object half of a repack: read a partly dead pack, copy the sealed
//! bytes of its live blobs verbatim into a new pack under the same sealed
//! data key, and store it — no key needed.
//!
//! # Why one new pack per old pack
//!
//! A version-1 pack has one data key, sealed in its header, and every blob
//! in it is sealed under that key. Blobs of two packs are under two keys,
//! and a new pack can carry only one, so the server, which holds no key,
//! cannot merge them. Each repacked pack therefore becomes one smaller pack
//! with the same header. Merging small packs needs a format that carries a
//! key per blob group (a version-2 pack); see `super` docs.
//!
//! The old object is read whole (at most `MAX_PACK_SIZE`) and its hash
//! checked against its id before anything is copied, so a damaged pack is
//! never copied into a pack whose id would then vouch for the damage.

use stowage_protocol::ids::{PackId, TenantId};
use stowage_protocol::pack::{PackReader, PackWriter, verify_pack_id};

use super::live_set::LiveSet;
use crate::db::Database;
use crate::db::gc_repack::{self, MovedBlob};
use crate::db::gc_tombstones;
use crate::ingest::pack_key;
use crate::storage::{ObjectStore, StorageError};

/// A new pack written for an old one, not yet indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The partly dead pack.
    pub old: PackId,
    /// Its object's size.
    pub old_size: u64,
    /// The new pack (BLAKE3 of its bytes).
    pub new: PackId,
    /// Its object's size.
    pub new_size: u64,
    /// The blobs copied, with their new offsets.
    pub moved: Vec<MovedBlob>,
    /// Sealed bytes copied.
    pub sealed_bytes: u64,
}

/// Why a pack was not repacked although the store could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pack {pack} cannot be repacked - {problem}")]
pub struct Damaged {
    /// The pack.
    pub pack: PackId,
    /// What is wrong with it.
    pub problem: String,
}

/// What [`copy_live`] did with a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Its new pack is written.
    Written(Copied),
    /// Every blob of its table is live now (roots appeared since it was
    /// chosen): there is nothing to drop, and nothing was written.
    AllLive,
    /// Another run repacked or swept it since it was chosen, or is
    /// deleting the very pack its copy would be.
    ChangedMeanwhile,
    /// Its object or index disagrees with itself: it is left alone.
    Damaged(Damaged),
}

/// Copies the blobs of `old` (of `old_size` bytes) that are indexed in it
/// and marked in `live` into a new pack and stores it.
///
/// # Errors
///
/// Fails when a query, the read or the write fails.
pub async fn copy_live(
    db: &Database,
    store: &dyn ObjectStore,
    tenant: TenantId,
    live: &LiveSet,
    old: PackId,
    old_size: u64,
) -> anyhow::Result<CopyOutcome> {
    let damaged = |problem: String| Ok(CopyOutcome::Damaged(Damaged { pack: old, problem }));
    let rows = gc_repack::pack_blobs(db, tenant, old).await?;
    if rows.is_empty() {
        // Another run (another instance's pass) repacked or swept it since
        // it was chosen: nothing is indexed in it any more.
        return Ok(CopyOutcome::ChangedMeanwhile);
    }
    let keep: Vec<_> = rows.iter().filter(|row| live.is_marked(&row.id)).collect();
    if keep.is_empty() {
        return damaged("no live blob is indexed in it".to_owned());
    }
    let bytes = match store.get(&pack_key(tenant, old)).await {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound { .. }) => {
            // Gone since its rows were read: another run took it, unless
            // its rows are still there — then the index names a lost object.
            return if gc_repack::pack_blobs(db, tenant, old).await?.is_empty() {
                Ok(CopyOutcome::ChangedMeanwhile)
            } else {
                damaged("its object is missing from the store".to_owned())
            };
        }
        Err(error) => anyhow::bail!("unable to read pack {old} to repack it - {error}"),
    };
    if let Err(error) = verify_pack_id(&bytes, &old) {
        return damaged(error.to_string());
    }
    let reader = match PackReader::parse(&bytes) {
        Ok(reader) => reader,
        Err(error) => return damaged(error.to_string()),
    };
    if reader.entries().len() == keep.len() {
        return Ok(CopyOutcome::AllLive);
    }
    let capacity = usize::try_from(old_size).unwrap_or(bytes.len());
    let mut writer = PackWriter::with_capacity(reader.sealed_key(), capacity);
    let mut moved = Vec::with_capacity(keep.len());
    let mut sealed_bytes = 0;
    for row in keep {
        let Some(entry) = reader.find(&row.id) else {
            return damaged(format!("its table lacks indexed blob {}", row.id));
        };
        if (entry.offset, entry.length, entry.kind) != (row.offset, row.length, row.kind) {
            return damaged(format!(
                "its table and the index disagree on blob {}",
                row.id
            ));
        }
        let Some(sealed) = reader.blob_bytes(entry) else {
            return damaged(format!("blob {} lies outside it", row.id));
        };
        if let Err(error) = writer.add(entry.kind, entry.id, sealed, &entry.refs) {
            return damaged(error.to_string());
        }
        let placed = writer
            .table()
            .entries
            .last()
            .expect("a blob was just added");
        moved.push(MovedBlob {
            id: row.id,
            from: old,
            offset: placed.offset,
        });
        sealed_bytes += u64::from(entry.length);
    }
    let (new, new_bytes) = writer.finish();
    let new_size = new_bytes.len() as u64;
    // Admitted like an upload (`db::gc_tombstones`): another run that gave
    // up on the same copy may be deleting this very object; writing it now
    // and indexing it after that deletion finished would name a lost object.
    if gc_tombstones::deletion_unfinished(db, tenant, new).await? {
        return Ok(CopyOutcome::ChangedMeanwhile);
    }
    store
        .put_bytes(&pack_key(tenant, new), new_bytes.into())
        .await
        .map_err(|error| {
            anyhow::anyhow!("unable to store pack {new}, repacked from {old} - {error}")
        })?;
    Ok(CopyOutcome::Written(Copied {
        old,
        old_size,
        new,
        new_size,
        moved,
        sealed_bytes,
    }))
}
