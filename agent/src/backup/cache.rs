//! The local backup cache: what lets an unchanged file be skipped without
//! reading it, even on a write-only agent that cannot read the parent's trees.
//!
//! One cache file per (host, set of paths), written next to the snapshot it
//! describes and only trusted for that snapshot: the reader is opened with
//! the parent snapshot's id and refuses a file naming another. A missing,
//! damaged or stale cache therefore only costs re-reading; every damaged
//! record is a miss.
//!
//! The file holds one record per directory, appended as directories
//! complete (post-order), and an index from directory to record at the
//! end. The reader keeps only the index in memory — 24 bytes of key and
//! offset per *directory* (plus hash-map overhead, about 50 bytes in all),
//! nothing per file — and reads one directory's record when the walk
//! enters that directory. The writer likewise keeps only the index.
//!
//! Layout (version 2, little-endian):
//!
//! ```text
//! header  8 magic "STWCACHE", u32 version = 2
//! record  u32 payload length, payload, 16 bytes BLAKE3(payload)[..16]
//!   payload: 16 key = BLAKE3(absolute dir path)[..16], 32 tree id of the
//!            directory, u32 file count, files sorted by name:
//!            u16 name length, name, u64 size, i64 mtime s, u32 mtime ns,
//!            i64 ctime s, u32 ctime ns, u64 inode, u64 device,
//!            u32 chunk count, count × (32 chunk id, u32 plaintext length)
//! index   u64 count, count × (16 key, u64 record offset)
//! footer  32 snapshot id, u64 index offset,
//!         16 BLAKE3(index ‖ snapshot id)[..16], 8 magic "STWCAEND"
//! ```
//!
//! Version 2 added the chunk lengths, which a version-2 tree stores for
//! every file. A version-1 file (of an older build) lacks them, so the reader
//! refuses it like any other unusable cache: the next backup reads every
//! file once and writes a version-2 cache. A record holding a file with an
//! empty chunk, or chunk lengths that do not add up to its size, is a miss
//! too, so a cached file can never make the tree builder fail.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::tree::{FileChunk, Timestamp};

use super::metadata::FileStamp;

/// Magic at the start of a cache file. Never modify.
pub const CACHE_MAGIC: [u8; 8] = *b"STWCACHE";
/// Magic at the end of a complete cache file. Never modify.
pub const CACHE_END_MAGIC: [u8; 8] = *b"STWCAEND";
/// The cache layout version written here and the only one read (a file of
/// another version is a miss, never an error). Never modify the meaning of version 2.
pub const CACHE_VERSION: u32 = 2;
const HEADER_LEN: u64 = 12;
const FOOTER_LEN: u64 = 64;
const CHECK_LEN: usize = 16;

/// One file of a directory record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    /// Name in its directory (raw bytes).
    pub name: Vec<u8>,
    /// What it looked like when its chunks were stored.
    pub stamp: FileStamp,
    /// Its content, as its tree entry stores it (lengths add up to `stamp.size`).
    pub chunks: Vec<FileChunk>,
}

/// One directory: its tree and its regular files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRecord {
    /// The directory's tree id in the cached snapshot.
    pub tree: BlobId,
    /// Regular files, sorted by name.
    pub files: Vec<CachedFile>,
}

impl DirRecord {
    /// The cached file named `name`.
    pub fn file(&self, name: &[u8]) -> Option<&CachedFile> {
        self.files
            .binary_search_by(|file| file.name.as_slice().cmp(name))
            .ok()
            .map(|at| &self.files[at])
    }
}

type Key = [u8; 16];

fn key(dir: &Path) -> Key {
    let hash = blake3::hash(dir.as_os_str().as_bytes());
    hash.as_bytes()[..16].try_into().expect("16 bytes")
}

fn check(parts: &[&[u8]]) -> [u8; CHECK_LEN] {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().as_bytes()[..CHECK_LEN]
        .try_into()
        .expect("16 bytes")
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// An open cache file of one snapshot.
#[derive(Debug)]
pub struct CacheReader {
    /// The file, read by offset.
    file: File,
    /// Directory key → record offset.
    index: HashMap<Key, u64>,
}

impl CacheReader {
    /// Opens `path` if it is a complete cache of `snapshot`.
    ///
    /// # Errors
    ///
    /// The file is missing, unreadable, damaged, of another version, or
    /// describes another snapshot.
    pub fn open(path: &Path, snapshot: &SnapshotId) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < HEADER_LEN + FOOTER_LEN + 8 {
            return Err(invalid("the cache file is truncated"));
        }
        let mut header = [0u8; 12];
        file.read_exact_at(&mut header, 0)?;
        if header[..8] != CACHE_MAGIC {
            return Err(invalid("not a cache file"));
        }
        let version = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
        if version != CACHE_VERSION {
            return Err(invalid(format!(
                "the cache file is version {version}; this build reads version {CACHE_VERSION}"
            )));
        }
        let mut footer = [0u8; 64];
        file.read_exact_at(&mut footer, len - FOOTER_LEN)?;
        if footer[56..] != CACHE_END_MAGIC {
            return Err(invalid("the cache file was not completed"));
        }
        if footer[..32] != *snapshot.as_bytes() {
            return Err(invalid("the cache describes another snapshot"));
        }
        let index_offset = u64::from_le_bytes(footer[32..40].try_into().expect("8 bytes"));
        if index_offset < HEADER_LEN || index_offset > len - FOOTER_LEN {
            return Err(invalid("the cache index offset is out of range"));
        }
        let index_len = usize::try_from(len - FOOTER_LEN - index_offset)
            .map_err(|_| invalid("the cache index is too large"))?;
        let mut bytes = vec![0u8; index_len];
        file.read_exact_at(&mut bytes, index_offset)?;
        if check(&[&bytes, &footer[..32]]) != footer[40..56] {
            return Err(invalid("the cache index checksum does not match"));
        }
        let count = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if count.checked_mul(24).and_then(|n| n.checked_add(8)) != Some(index_len as u64) {
            return Err(invalid("the cache index length does not match its count"));
        }
        let index = bytes[8..]
            .chunks_exact(24)
            .map(|row| {
                let key: Key = row[..16].try_into().expect("16 bytes");
                (
                    key,
                    u64::from_le_bytes(row[16..].try_into().expect("8 bytes")),
                )
            })
            .collect();
        Ok(Self { file, index })
    }

    /// The record of directory `dir`, if cached and intact.
    pub fn get(&self, dir: &Path) -> Option<DirRecord> {
        let key = key(dir);
        let offset = *self.index.get(&key)?;
        self.read_record(offset, &key).ok()
    }

    fn read_record(&self, offset: u64, key: &Key) -> io::Result<DirRecord> {
        let mut len = [0u8; 4];
        self.file.read_exact_at(&mut len, offset)?;
        let len = u32::from_le_bytes(len) as usize;
        let file_len = self.file.metadata()?.len();
        if offset + 4 + (len + CHECK_LEN) as u64 > file_len {
            return Err(invalid("a cache record runs past the end of the file"));
        }
        let mut bytes = vec![0u8; len + CHECK_LEN];
        self.file.read_exact_at(&mut bytes, offset + 4)?;
        let (payload, sum) = bytes.split_at(len);
        if check(&[payload]) != sum {
            return Err(invalid("a cache record checksum does not match"));
        }
        decode_record(payload, key)
    }
}

/// Reads little-endian fields from a record payload.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("a cache record is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn u16(&mut self) -> io::Result<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> io::Result<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> io::Result<u64> {
        self.array().map(u64::from_le_bytes)
    }
    fn time(&mut self) -> io::Result<Timestamp> {
        Ok(Timestamp {
            seconds: self.array().map(i64::from_le_bytes)?,
            nanos: self.u32()?,
        })
    }
}

fn decode_record(payload: &[u8], key: &Key) -> io::Result<DirRecord> {
    let mut fields = Fields(payload);
    if fields.array::<16>()? != *key {
        return Err(invalid("a cache record belongs to another directory"));
    }
    let tree = BlobId::from_bytes(fields.array()?);
    let count = fields.u32()?;
    let mut files = Vec::new();
    for _ in 0..count {
        let name_len = usize::from(fields.u16()?);
        let name = fields.take(name_len)?.to_vec();
        let stamp = FileStamp {
            size: fields.u64()?,
            mtime: fields.time()?,
            ctime: fields.time()?,
            inode: fields.u64()?,
            device: fields.u64()?,
        };
        let chunk_count = fields.u32()? as usize;
        let bytes = fields.take(
            chunk_count
                .checked_mul(FileChunk::ENCODED_LEN)
                .ok_or_else(|| invalid("a cache record's chunk count overflows"))?,
        )?;
        let chunks: Vec<FileChunk> = bytes
            .chunks_exact(FileChunk::ENCODED_LEN)
            .map(|row| FileChunk {
                id: BlobId::from_bytes(row[..32].try_into().expect("32 bytes")),
                len: u32::from_le_bytes(row[32..].try_into().expect("4 bytes")),
            })
            .collect();
        let total: u64 = chunks.iter().map(|chunk| u64::from(chunk.len)).sum();
        if total != stamp.size || chunks.iter().any(|chunk| chunk.len == 0) {
            return Err(invalid(
                "a cached file has an empty chunk or chunk lengths that do not add up to its size",
            ));
        }
        files.push(CachedFile {
            name,
            stamp,
            chunks,
        });
    }
    if !fields.0.is_empty() {
        return Err(invalid("a cache record has trailing bytes"));
    }
    Ok(DirRecord { tree, files })
}

fn encode_record(key: &Key, record: &DirRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(key);
    out.extend_from_slice(record.tree.as_bytes());
    out.extend_from_slice(
        &u32::try_from(record.files.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for file in &record.files {
        out.extend_from_slice(
            &u16::try_from(file.name.len())
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&file.name);
        let stamp = &file.stamp;
        out.extend_from_slice(&stamp.size.to_le_bytes());
        out.extend_from_slice(&stamp.mtime.seconds.to_le_bytes());
        out.extend_from_slice(&stamp.mtime.nanos.to_le_bytes());
        out.extend_from_slice(&stamp.ctime.seconds.to_le_bytes());
        out.extend_from_slice(&stamp.ctime.nanos.to_le_bytes());
        out.extend_from_slice(&stamp.inode.to_le_bytes());
        out.extend_from_slice(&stamp.device.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(file.chunks.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for chunk in &file.chunks {
            out.extend_from_slice(chunk.id.as_bytes());
            out.extend_from_slice(&chunk.len.to_le_bytes());
        }
    }
}

mod writer;

pub use writer::CacheWriter;

#[cfg(test)]
mod tests;
