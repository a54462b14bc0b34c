//! Pack ingest: turning one upload body into a stored, indexed pack.
//!
//! [`ingest_pack`] is what the pack upload endpoint calls. It knows nothing
//! of HTTP: it takes the tenant, the pack id the upload names and the body as
//! a stream of byte chunks, and answers an [`IngestOutcome`] or an
//! [`IngestError`] that says which kind of HTTP answer fits.
//!
//! The steps, in this order, so that the index only ever names packs that
//! are complete in the object store:
//!
//! 1. A pack this tenant already has is not read again: the body is left
//!    unread and the answer is [`IngestOutcome::AlreadyPresent`], so a
//!    retried upload is cheap and idempotent. Its blobs are still leased to
//!    the uploading session, which is relying on them.
//! 2. The body is streamed to a temporary file under `<data_dir>/tmp/`,
//!    hashed with BLAKE3 as it arrives, and refused as soon as it passes the
//!    size limit (`spool.rs`). Memory stays bounded by one chunk and one write
//!    buffer, whatever the pack size.
//! 3. The hash must equal the pack id the upload names.
//! 4. Header, trailer and table are read back from the file and checked with
//!    the protocol's decoders (`inspect.rs`).
//! 5. From here on the work runs on its own task, which a client that
//!    disconnects cannot cancel. The file is written to the object store under
//!    `tenants/<tenant>/packs/<first 2 hex>/<pack id>` ([`pack_key`]).
//! 6. Only then is the pack indexed, in one transaction that also leases
//!    every blob of the pack to the upload session
//!    ([`crate::db::packs::index_admitted`]), so no instant exists at
//!    which a blob this upload indexed is unprotected from garbage
//!    collection. A failed object write indexes nothing.
//!
//! Between 1 and 2 the upload is admitted against garbage collection's
//! deletion records ([`crate::db::gc_tombstones`]): a pack whose object GC
//! is deleting is refused as retryable ([`IngestError::BeingDeleted`]),
//! and step 6 refuses it too when GC recorded a deletion of it after the
//! admission — otherwise a retried upload could index an object that GC
//! deletes right after it was written.
//!
//! The temporary file is removed on every path, including a cancelled
//! request (it is deleted when dropped); files left by a crash are cleared by
//! [`IngestContext::remove_stale_temp_files`].
//!
//! # A crash between writing and indexing
//!
//! If the process dies (or the database fails) after step 5 and before step
//! 6 commits, the object exists but nothing references it: no pack row, no
//! blob rows, so no snapshot can use it and the agent, told the upload
//! failed, sends it again. The retry finds no index row, stores the same
//! bytes under the same key (an atomic replace) and indexes them. An upload
//! that is never retried leaves an orphan object; garbage collection lists
//! pack objects that have no `packs` row and deletes them once they are old
//! enough not to belong to an upload in flight (issue 6).
//!
//! [`FaultHook`] lets unit tests stop an ingest at the points in
//! [`FaultPoint`] to prove exactly that; [`pause`] lets the crash tests kill
//! the real process there.
//!
//! [`reachability`] is the commit's check that a snapshot reaches only
//! stored blobs.

mod error;
mod inspect;
pub mod pause;
pub mod reachability;
mod spool;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use stowage_protocol::ids::{BlobId, PackId, TenantId, UploadSessionId};
use stowage_protocol::pack::{MAX_PACK_SIZE, PACK_HEADER_LEN, PACK_TRAILER_LEN, PackTable};

pub use error::{ErrorClass, IngestError};

use crate::db::gc_tombstones::{self, Admission};
use crate::db::packs::{self, IndexOutcome, IndexedBlob};
use crate::db::{Database, DbError, upload_sessions};
use crate::storage::{ObjectKey, ObjectStore};

/// Name of the spool directory inside the data directory.
pub const TEMP_DIR_NAME: &str = "tmp";
/// Smallest possible pack: header, an empty table (its 4-byte count) and trailer.
pub const MIN_PACK_SIZE: u64 = (PACK_HEADER_LEN + 4 + PACK_TRAILER_LEN) as u64;

/// A place in [`ingest_pack`] where a [`FaultHook`] is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The body is spooled and checked; the object store was not touched.
    BeforeObjectWrite,
    /// The object is written; nothing is indexed yet.
    AfterObjectWrite,
}

/// Called at each [`FaultPoint`]; an `Err` aborts the ingest right there, as
/// a crash or a failing dependency would.
pub type FaultHook = Arc<dyn Fn(FaultPoint) -> Result<(), IngestError> + Send + Sync>;

/// What [`ingest_pack`] needs; build one at start and share it.
#[derive(Clone)]
pub struct IngestContext {
    /// Where the index lives.
    db: Database,
    /// Where pack objects go.
    store: Arc<dyn ObjectStore>,
    /// Where bodies are spooled before they are checked (`<data_dir>/tmp`).
    temp_dir: PathBuf,
    /// Largest body accepted; [`MAX_PACK_SIZE`] unless a test lowers it.
    max_pack_size: u64,
    /// Test-only interruption points; `None` in the server.
    fault_hook: Option<FaultHook>,
}

impl IngestContext {
    /// A context spooling under `<data_dir>/tmp` (created on first use) and
    /// accepting packs up to [`MAX_PACK_SIZE`].
    pub fn new(db: Database, store: Arc<dyn ObjectStore>, data_dir: &Path) -> Self {
        Self {
            db,
            store,
            temp_dir: data_dir.join(TEMP_DIR_NAME),
            max_pack_size: MAX_PACK_SIZE as u64,
            fault_hook: None,
        }
    }

    /// The largest body accepted, in bytes.
    pub fn max_pack_size(&self) -> u64 {
        self.max_pack_size
    }

    /// Lowers the largest accepted body (never above [`MAX_PACK_SIZE`]).
    #[must_use]
    pub fn with_max_pack_size(mut self, limit: u64) -> Self {
        self.max_pack_size = limit.min(MAX_PACK_SIZE as u64);
        self
    }

    /// Installs a hook called at every [`FaultPoint`].
    #[must_use]
    pub fn with_fault_hook(mut self, hook: FaultHook) -> Self {
        self.fault_hook = Some(hook);
        self
    }

    /// The spool directory.
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// Removes spool files older than `age` that a crashed process left in
    /// the spool directory; call at start. Returns how many were removed.
    ///
    /// # Errors
    ///
    /// Fails when the directory cannot be listed or a file cannot be removed.
    pub async fn remove_stale_temp_files(&self, age: Duration) -> std::io::Result<usize> {
        spool::remove_stale(&self.temp_dir, age).await
    }

    fn fault(&self, point: FaultPoint) -> Result<(), IngestError> {
        self.fault_hook.as_ref().map_or(Ok(()), |hook| hook(point))
    }
}

impl fmt::Debug for IngestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestContext")
            .field("db", &self.db)
            .field("store", &self.store)
            .field("temp_dir", &self.temp_dir)
            .field("max_pack_size", &self.max_pack_size)
            .field("fault_hook", &self.fault_hook.is_some())
            .finish()
    }
}

/// What an upload achieved, with the ids of the pack's blobs (already
/// leased to the upload session, when one was given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The pack was stored and indexed by this upload.
    Stored {
        /// Size of the pack in bytes.
        size: u64,
        /// Blobs it holds.
        blob_count: u64,
        /// The ids of its blobs.
        blob_ids: Vec<BlobId>,
    },
    /// The tenant already had this pack (a retried upload); nothing changed.
    AlreadyPresent {
        /// Size of the pack in bytes.
        size: u64,
        /// Blobs it holds.
        blob_count: u64,
        /// The ids of its blobs.
        blob_ids: Vec<BlobId>,
    },
}

/// The object key of `pack` of `tenant`:
/// `tenants/<tenant hex>/packs/<first 2 hex of pack>/<pack hex>`.
pub fn pack_key(tenant: TenantId, pack: PackId) -> ObjectKey {
    let hex = pack.to_hex();
    ObjectKey::parse(&format!("tenants/{tenant}/packs/{}/{hex}", &hex[..2]))
        .expect("hex ids always make a valid key")
}

/// Stores and indexes the pack `expected` of `tenant` from `body`, leasing
/// its blobs to the upload session `lease_to` (`None` leases nothing: tools
/// and tests without a session); see the module docs for the steps.
///
/// # Errors
///
/// Any [`IngestError`]; after an error nothing of the pack is indexed (an
/// object may exist, see the module docs) and the temporary file is gone.
#[tracing::instrument(skip_all, fields(tenant.id = %tenant, pack.id = %expected))]
pub async fn ingest_pack<S, E>(
    ctx: &IngestContext,
    tenant: TenantId,
    lease_to: Option<UploadSessionId>,
    expected: PackId,
    body: S,
) -> Result<IngestOutcome, IngestError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: fmt::Display,
{
    let database = |action| {
        move |source| IngestError::Database {
            pack: expected,
            action,
            source,
        }
    };
    match packs::get(&ctx.db, tenant, expected).await {
        Ok(pack) => {
            tracing::debug!("pack already indexed; body left unread");
            if let Some(session) = lease_to {
                upload_sessions::lease_pack(&ctx.db, tenant, session, expected)
                    .await
                    .map_err(database("lease the blobs of"))?;
            }
            let blob_ids = packs::blob_ids(&ctx.db, tenant, expected)
                .await
                .map_err(database("list the blobs of"))?;
            return Ok(IngestOutcome::AlreadyPresent {
                size: pack.size,
                blob_count: pack.blob_count,
                blob_ids,
            });
        }
        Err(DbError::NotFound { .. }) => {}
        Err(source) => return Err(database("look up")(source)),
    }
    let mark = match gc_tombstones::admit(&ctx.db, tenant, expected)
        .await
        .map_err(database("check for a deletion of"))?
    {
        Admission::Open { mark } => mark,
        Admission::BeingDeleted => return Err(IngestError::BeingDeleted { pack: expected }),
    };

    let spooled = spool::spool(&ctx.temp_dir, expected, body, ctx.max_pack_size).await?;
    if spooled.size < MIN_PACK_SIZE {
        return Err(IngestError::Truncated {
            pack: expected,
            size: spooled.size,
            min: MIN_PACK_SIZE,
        });
    }
    if spooled.hash != expected {
        return Err(IngestError::WrongPackHash {
            expected,
            actual: spooled.hash,
        });
    }
    let table = inspect::read_table(spooled.path(), spooled.size, expected).await?;
    let table = inspect::check_blob_headers(spooled.path(), table, expected).await?;

    // The whole pack is here and checked. Storing and indexing it runs on
    // its own task, so a client that goes away now (killed, timed out)
    // cannot cancel it between the object write and the index: what was
    // received whole is stored whole, and a rerun finds it present.
    let ctx = ctx.clone();
    tokio::spawn(async move {
        store_and_index(&ctx, tenant, lease_to, expected, mark, spooled, table).await
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
}

/// Steps 5 and 6 of [`ingest_pack`]: writes the checked pack to the object
/// store, then indexes it and leases its blobs to `lease_to` unless garbage
/// collection recorded a deletion of it since `mark` was read.
async fn store_and_index(
    ctx: &IngestContext,
    tenant: TenantId,
    lease_to: Option<UploadSessionId>,
    expected: PackId,
    mark: i64,
    spooled: spool::SpooledPack,
    table: PackTable,
) -> Result<IngestOutcome, IngestError> {
    let database = |action| {
        move |source| IngestError::Database {
            pack: expected,
            action,
            source,
        }
    };
    let size = spooled.size;
    ctx.fault(FaultPoint::BeforeObjectWrite)?;
    let key = pack_key(tenant, expected);
    ctx.store
        .adopt_file(&key, spooled.path())
        .await
        .map_err(|source| IngestError::Storage {
            pack: expected,
            source,
        })?;
    drop(spooled);
    ctx.fault(FaultPoint::AfterObjectWrite)?;
    pause::pause_at(pause::PausePoint::AfterObjectWrite).await;

    let blobs: Vec<IndexedBlob> = table
        .entries
        .into_iter()
        .map(|entry| IndexedBlob {
            id: entry.id,
            kind: entry.kind,
            offset: entry.offset,
            length: entry.length,
            refs: entry.refs,
        })
        .collect();
    let blob_count = blobs.len() as u64;
    let blob_ids: Vec<BlobId> = blobs.iter().map(|blob| blob.id).collect();
    let outcome = packs::index_admitted(&ctx.db, tenant, lease_to, expected, size, &blobs, mark)
        .await
        .map_err(database("index"))?;
    tracing::info!(size, blob_count, ?outcome, "pack ingested");
    Ok(match outcome {
        IndexOutcome::Indexed => IngestOutcome::Stored {
            size,
            blob_count,
            blob_ids,
        },
        IndexOutcome::AlreadyIndexed => IngestOutcome::AlreadyPresent {
            size,
            blob_count,
            blob_ids,
        },
        // The object just written may be the one garbage collection deletes;
        // it is not indexed, so nothing names it.
        IndexOutcome::BeingDeleted => return Err(IngestError::BeingDeleted { pack: expected }),
    })
}
