//! Reading blobs of one pack: coalesced range requests, then opening and
//! id-checking each blob on a blocking thread.

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
        if blobs.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.data_key(pack).await?;
        let spans = ranges::coalesce(blobs, MAX_GAP, MAX_SPAN);
        let mut by_span: Vec<(u64, Vec<BlobResult>)> = stream::iter(spans)
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

    /// Fetches one coalesced range and opens its blobs.
    async fn read_span(&self, pack: PackId, key: DataKey, span: Span) -> Vec<BlobResult> {
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
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || open_span(&inner, &pack, &key, &span, &bytes))
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
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

/// Opens every blob of a fetched span (blocking: decrypts, decompresses, hashes).
fn open_span(
    inner: &Inner,
    pack: &PackId,
    key: &DataKey,
    span: &Span,
    bytes: &Bytes,
) -> Vec<BlobResult> {
    let mut opener = BlobOpener::new();
    span.blobs
        .iter()
        .map(|blob| {
            let start = usize::try_from(u64::from(blob.offset) - span.range.start)
                .expect("a span is shorter than a pack");
            let end = start + blob.length as usize;
            let result = match bytes.get(start..end) {
                None => Err(ReadError::BadLocation {
                    pack: *pack,
                    blob: blob.id,
                    problem: format!("the range read back holds only {} bytes", bytes.len()),
                }),
                Some(sealed) => open_one(inner, &mut opener, pack, key, blob, sealed),
            };
            (blob.id, result)
        })
        .collect()
}

fn open_one(
    inner: &Inner,
    opener: &mut BlobOpener,
    pack: &PackId,
    key: &DataKey,
    blob: &BlobLocation,
    sealed: &[u8],
) -> Result<Vec<u8>, ReadError> {
    let cap = match blob.kind {
        BlobKind::Data => MAX_DATA_PLAINTEXT,
        BlobKind::Tree => MAX_TREE_PLAINTEXT,
    };
    let damaged = |source| ReadError::Blob {
        pack: *pack,
        blob: blob.id,
        source: Arc::new(source),
    };
    let plain = opener
        .open(key, &blob.id, blob.kind, sealed, cap)
        .map_err(damaged)?;
    verify_blob_id(&inner.keys.id_key, &blob.id, blob.kind, &plain).map_err(damaged)?;
    Ok(plain)
}
