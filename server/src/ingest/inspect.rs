//! Reading a spooled pack's header, trailer and table — and nothing else.
//!
//! The blobs are ciphertext the server cannot check, so the index is built
//! from the plaintext table alone: read the header (magic, version), the
//! trailer at the end, then the table the trailer points at, and let the
//! protocol's decoders check every rule of the format. Only the table is
//! allocated, and the protocol bounds it by the pack's size before anything
//! is read. Then each sealed blob's plaintext header (magic, version, kind,
//! flags: its first bytes, never its ciphertext) is checked against its
//! table entry, so a pack whose table calls a data chunk a tree is refused
//! at upload rather than discovered at restore. Only the agent can
//! authenticate a blob; this catches a confused or buggy writer early.

use std::io::SeekFrom;
use std::path::Path;

use stowage_protocol::blob::SEALED_BLOB_OVERHEAD;
use stowage_protocol::ids::PackId;
use stowage_protocol::pack::{
    PACK_HEADER_LEN, PACK_TRAILER_LEN, PackError, PackHeader, PackTable, PackTrailer,
    check_blob_header,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::IngestError;

/// The table of the `size`-byte pack spooled at `path`.
pub(super) async fn read_table(
    path: &Path,
    size: u64,
    pack: PackId,
) -> Result<PackTable, IngestError> {
    let io_error = |action| {
        let path = path.to_owned();
        move |source| IngestError::TempFile {
            pack,
            action,
            path,
            source,
        }
    };
    let inconsistent = |source: PackError| IngestError::InconsistentTable { pack, source };
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(io_error("open temporary file"))?;

    let mut header = [0u8; PACK_HEADER_LEN];
    file.read_exact(&mut header)
        .await
        .map_err(io_error("read pack header from"))?;
    PackHeader::decode(&header).map_err(inconsistent)?;

    let trailer_start = size
        .checked_sub(PACK_TRAILER_LEN as u64)
        .ok_or(PackError::TooShort(size))
        .map_err(inconsistent)?;
    let mut trailer = [0u8; PACK_TRAILER_LEN];
    file.seek(SeekFrom::Start(trailer_start))
        .await
        .map_err(io_error("seek to pack trailer in"))?;
    file.read_exact(&mut trailer)
        .await
        .map_err(io_error("read pack trailer from"))?;
    let trailer = PackTrailer::decode(&trailer).map_err(inconsistent)?;

    // `table_range` checked the table lies between header and trailer of a
    // pack no larger than the maximum, so its length fits in memory.
    let range = trailer.table_range(size).map_err(inconsistent)?;
    let table_len = usize::try_from(range.end - range.start)
        .expect("a table inside a pack of at most 128 MiB fits usize");
    let mut table = vec![0u8; table_len];
    file.seek(SeekFrom::Start(range.start))
        .await
        .map_err(io_error("seek to pack table in"))?;
    file.read_exact(&mut table)
        .await
        .map_err(io_error("read pack table from"))?;
    PackTable::decode(&table, &trailer, size).map_err(inconsistent)
}

/// Checks the plaintext header of every blob of the pack spooled at `path`
/// against its entry in `table` (already checked to lie inside the pack).
///
/// Reads [`SEALED_BLOB_OVERHEAD`] bytes per blob (one `pread` each, from
/// the page cache: the file was just written) on a blocking thread — one
/// task for the whole pack rather than one per read.
pub(super) async fn check_blob_headers(
    path: &Path,
    table: PackTable,
    pack: PackId,
) -> Result<PackTable, IngestError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt as _;

        let io_error = |action| {
            let path = path.clone();
            move |source| IngestError::TempFile {
                pack,
                action,
                path,
                source,
            }
        };
        let file = std::fs::File::open(&path).map_err(io_error("open temporary file"))?;
        let mut head = [0u8; SEALED_BLOB_OVERHEAD];
        for entry in &table.entries {
            let len = SEALED_BLOB_OVERHEAD.min(entry.length as usize);
            file.read_exact_at(&mut head[..len], u64::from(entry.offset))
                .map_err(io_error("read a blob header from"))?;
            check_blob_header(entry.kind, &entry.id, &head[..len])
                .map_err(|source| IngestError::InconsistentTable { pack, source })?;
        }
        Ok(table)
    })
    .await
    .expect("the blob header check does not panic")
}
