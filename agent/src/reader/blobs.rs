//! Reading blobs of one pack: coalesced range requests, then opening and
//! id-checking each blob on a blocking thread — at once ([`RepoReader::read_blobs`])
//! or later, blob by blob ([`RepoReader::fetch_sealed`], [`RepoReader::open`]).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use stowage_protocol::api::BlobLocation;
use stowage_protocol::blob::{BlobKind, BlobOpener, verify_blob_id};
use stowage_protocol::crypto::DataKey;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{MAX_PACK_SIZE, PACK_HEADER_LEN};

use super::ranges::{self, MAX_GAP, MAX_SPAN, Span};
use super::{Inner, RANGES_IN_FLIGHT, ReadError, RepoReader};

/// One blob's outcome: its plaintext, or why it could not be read.
pub type BlobResult = (BlobId, Result<Vec<u8>, ReadError>);

/// Largest plaintext a data blob may open to: well above the largest chunk
/// any repository config allows (16 MiB), and a bound on what a
/// decompression bomb can make the agent allocate.
const MAX_DATA_PLAINTEXT: usize = 64 << 20;

/// Largest plaintext a tree blob may open to (a leaf holding one file of
/// millions of chunks may pass the usual 4 MiB leaf limit).
const MAX_TREE_PLAINTEXT: usize = MAX_PACK_SIZE;

/// One blob fetched but not yet opened: its sealed bytes (a zero-copy
/// slice of the range they came in), where it was, and its pack's key.
///
/// Holding sealed bytes rather than plaintext keeps a restore's read-ahead
/// small: compressed chunks take a fraction of their plaintext's memory,
/// and each is opened only when its file is ready to take it.
#[derive(Clone)]
pub struct SealedBlob {
    location: BlobLocation,
    key: DataKey,
    bytes: Bytes,
}

impl std::fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedBlob")
            .field("location", &self.location)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl SealedBlob {
    /// Where the blob was read from.
    pub const fn location(&self) -> &BlobLocation {
        &self.location
    }
}

/// One blob's sealed bytes, or why they could not be fetched.
pub type SealedResult = (BlobId, Result<SealedBlob, ReadError>);

impl RepoReader {
    /// Fetches and opens `blobs` of `pack` with as few range requests as
    /// possible (neighbours coalesced, several requests in flight). Each
    /// blob's result stands alone: a range that fails or a blob that is
    /// damaged fails only its own blobs. One result per distinct blob, in
    /// pack-offset order; every plaintext was checked against its id.
    ///
    /// # Errors
    ///
    /// Only failures that affect the whole pack: its data key cannot be read
    /// or opened ([`RepoReader::data_key`]).
    pub async fn read_blobs(
        &self,
        pack: &PackId,
        blobs: &[BlobLocation],
    ) -> Result<Vec<BlobResult>, ReadError> {
        let sealed = self.fetch_sealed(pack, blobs).await?;
        let reader = self.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let mut opener = BlobOpener::new();
            sealed
                .into_iter()
                .map(|(id, blob)| (id, blob.and_then(|blob| reader.open(&mut opener, &blob))))
                .collect()
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic())))
    }

    /// Fetches the sealed bytes of `blobs` of `pack` without opening them,
    /// with as few range requests as possible (neighbours coalesced, several
    /// requests in flight); [`RepoReader::open`] opens each later. One
    /// result per distinct blob, in pack-offset order; a range that fails
    /// fails only its own blobs.
    ///
    /// # Errors
    ///
    /// Only failures that affect the whole pack: its data key cannot be read
    /// or opened ([`RepoReader::data_key`]).
    pub async fn fetch_sealed(
        &self,
        pack: &PackId,
        blobs: &[BlobLocation],
    ) -> Result<Vec<SealedResult>, ReadError> {
        if blobs.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.data_key(pack).await?;
        let spans = ranges::coalesce(blobs, MAX_GAP, MAX_SPAN);
        let mut by_span: Vec<(u64, Vec<SealedResult>)> = stream::iter(spans)
            .map(|span| {
                let key = key.clone();
                async move { (span.range.start, self.read_span(*pack, key, span).await) }
            })
            .buffer_unordered(RANGES_IN_FLIGHT)
            .collect()
            .await;
        by_span.sort_unstable_by_key(|(start, _)| *start);
        Ok(by_span.into_iter().flat_map(|(_, r)| r).collect())
    }

    /// Opens a fetched blob (blocking: decrypts, decompresses with a size
    /// cap, and checks the plaintext against its id) with `opener`, which a
    /// thread opening many blobs keeps and reuses.
    ///
    /// # Errors
    ///
    /// [`ReadError::Blob`] when the blob is damaged or is not what its id says.
    pub fn open(&self, opener: &mut BlobOpener, blob: &SealedBlob) -> Result<Vec<u8>, ReadError> {
        let mut plain = Vec::new();
        self.open_into(opener, blob, &mut plain)?;
        Ok(plain)
    }

    /// [`Self::open`] into `plain` (cleared first), for a thread opening
    /// many blobs through one buffer.
    ///
    /// # Errors
    ///
    /// As [`Self::open`].
    pub fn open_into(
        &self,
        opener: &mut BlobOpener,
        blob: &SealedBlob,
        plain: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        open_one(
            &self.inner,
            opener,
            &blob.location,
            &blob.key,
            &blob.bytes,
            plain,
        )
    }

    /// Fetches one coalesced range and slices out its blobs.
    async fn read_span(&self, pack: PackId, key: DataKey, span: Span) -> Vec<SealedResult> {
        if let Some(bad) = span.blobs.iter().find_map(|b| misplaced(&pack, b)) {
            // Refuse the whole span: its range came from the same bad answer.
            return span
                .blobs
                .iter()
                .map(|b| {
                    (
                        b.id,
                        Err(misplaced(&pack, b).unwrap_or_else(|| bad.clone())),
                    )
                })
                .collect();
        }
        self.inner
            .throttle
            .take(span.range.end - span.range.start)
            .await;
        let bytes = match self
            .inner
            .client
            .pack_range(&pack, span.range.clone())
            .await
        {
            Ok(bytes) => bytes,
            Err(error) => {
                let error = ReadError::from_fetch(pack, span.range.clone(), error);
                return span
                    .blobs
                    .iter()
                    .map(|b| (b.id, Err(error.clone())))
                    .collect();
            }
        };
        slice_span(&pack, &key, &span, &bytes)
    }
}

/// Why `blob` cannot be where the server says it is, if it cannot.
fn misplaced(pack: &PackId, blob: &BlobLocation) -> Option<ReadError> {
    let problem = if blob.pack_id != *pack {
        format!("the server placed it in pack {} instead", blob.pack_id)
    } else if (blob.offset as usize) < PACK_HEADER_LEN {
        format!("its offset {} lies inside the pack header", blob.offset)
    } else if u64::from(blob.offset) + u64::from(blob.length) > MAX_PACK_SIZE as u64 {
        format!(
            "its range {}+{} lies past the largest possible pack",
            blob.offset, blob.length
        )
    } else {
        return None;
    };
    Some(ReadError::BadLocation {
        pack: *pack,
        blob: blob.id,
        problem,
    })
}

/// Cuts a fetched span into its blobs' sealed bytes (zero-copy).
fn slice_span(pack: &PackId, key: &DataKey, span: &Span, bytes: &Bytes) -> Vec<SealedResult> {
    span.blobs
        .iter()
        .map(|blob| {
            let start = usize::try_from(u64::from(blob.offset) - span.range.start)
                .expect("a span is shorter than a pack");
            let end = start + blob.length as usize;
            let result = if end <= bytes.len() {
                Ok(SealedBlob {
                    location: *blob,
                    key: key.clone(),
                    bytes: bytes.slice(start..end),
                })
            } else {
                Err(ReadError::BadLocation {
                    pack: *pack,
                    blob: blob.id,
                    problem: format!("the range read back holds only {} bytes", bytes.len()),
                })
            };
            (blob.id, result)
        })
        .collect()
}

fn open_one(
    inner: &Inner,
    opener: &mut BlobOpener,
    blob: &BlobLocation,
    key: &DataKey,
    sealed: &[u8],
    plain: &mut Vec<u8>,
) -> Result<(), ReadError> {
    let pack = &blob.pack_id;
    let cap = match blob.kind {
        BlobKind::Data => MAX_DATA_PLAINTEXT,
        BlobKind::Tree => MAX_TREE_PLAINTEXT,
    };
    let damaged = |source| ReadError::Blob {
        pack: *pack,
        blob: blob.id,
        source: Arc::new(source),
    };
    opener
        .open_into(key, &blob.id, blob.kind, sealed, cap, plain)
        .map_err(damaged)?;
    verify_blob_id(&inner.keys.id_key, &blob.id, blob.kind, plain).map_err(damaged)
}
