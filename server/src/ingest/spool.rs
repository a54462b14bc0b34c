//! Spooling an upload body to a temporary file while hashing it.
//!
//! A pack may be 128 MiB and many uploads run at once, so the body never
//! sits in memory whole: each chunk is hashed and written as it arrives,
//! through one small write buffer. The file is removed when its
//! [`SpooledPack`] is dropped, on every path — success, error, or a request
//! future cancelled mid-upload. Only a crash of the process leaves one
//! behind; [`remove_stale`] clears those at start.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use stowage_protocol::ids::PackId;
use tokio::io::AsyncWriteExt;

use super::IngestError;

/// Write buffer between the body and the temporary file.
const WRITE_BUFFER: usize = 256 * 1024;
/// Extension of spool files; [`remove_stale`] touches nothing else.
const SPOOL_EXTENSION: &str = "part";

/// A complete body on local disk.
#[derive(Debug)]
pub(super) struct SpooledPack {
    /// Removes the file on drop.
    file: TempFile,
    /// Bytes received.
    pub size: u64,
    /// BLAKE3 of the bytes received.
    pub hash: PackId,
}

impl SpooledPack {
    /// The temporary file holding the body.
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// A file that is deleted when this value is dropped.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Unlinking is one quick syscall, fine even on an async thread; a
        // file that is already gone is what we want anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Streams `body` into a new file in `dir`, hashing as it goes, and refuses
/// it as soon as it passes `limit` bytes.
pub(super) async fn spool<S, E>(
    dir: &Path,
    pack: PackId,
    body: S,
    limit: u64,
) -> Result<SpooledPack, IngestError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Display,
{
    let io_error = |action, path: &Path| {
        let path = path.to_owned();
        move |source| IngestError::TempFile {
            pack,
            action,
            path,
            source,
        }
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_error("create temporary directory", dir))?;
    let path = dir.join(format!(
        "pack-{pack}-{}.{SPOOL_EXTENSION}",
        crate::db::new_row_id()
    ));
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .await
        .map_err(io_error("create temporary file", &path))?;
    // From here on the guard removes the file, whatever happens.
    let guard = TempFile { path };
    let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = blake3::Hasher::new();
    let mut size: u64 = 0;
    let mut body = pin!(body);
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        let chunk = chunk.map_err(|err| IngestError::Body {
            pack,
            message: err.to_string(),
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(IngestError::TooLarge { pack, limit });
        }
        hasher.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(io_error("write temporary file", &guard.path))?;
    }
    writer
        .shutdown()
        .await
        .map_err(io_error("finish temporary file", &guard.path))?;
    Ok(SpooledPack {
        file: guard,
        size,
        hash: PackId::from_bytes(*hasher.finalize().as_bytes()),
    })
}

/// Removes spool files in `dir` last modified more than `age` ago (left by a
/// crash; live uploads keep writing theirs) and returns how many went.
/// A missing directory has none.
pub(super) async fn remove_stale(dir: &Path, age: Duration) -> std::io::Result<usize> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != SPOOL_EXTENSION) {
            continue;
        }
        let modified = entry.metadata().await?.modified()?;
        if modified < cutoff {
            tokio::fs::remove_file(&path).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
