//! Object storage: one small trait, [`ObjectStore`], and its implementations.
//!
//! - [`LocalStore`]: a directory on the local filesystem (the embedded default).
//!   Writes are atomic: temp file, fsync, rename, fsync of the directory.
//! - [`S3Store`]: any S3-compatible service, configured explicitly (endpoint,
//!   region, static credentials), so the SDK never probes the network for
//!   them; multipart for large files, upload checksums, retries with backoff.
//! - [`MemoryStore`]: an in-memory twin for tests.
//!
//! Only this module imports `aws-sdk-s3`. The trait is object-safe (methods
//! return boxed futures) so the server holds an `Arc<dyn ObjectStore>` picked
//! from the settings at start, and tests can wrap a store to inject faults.
//!
//! Contract shared by every implementation (checked by the integration tests
//! in `tests/api/storage.rs` against all three):
//! - `put_*` and `adopt_file` replace an existing object atomically: readers
//!   see the old or the new bytes, never a mix. `adopt_file` also removes
//!   its source file.
//! - `get_range(start..end)` returns the bytes clipped to the object's end; a
//!   range that starts at or after the end, or is empty, is [`StorageError::InvalidRange`].
//! - `delete` of a missing object succeeds (as in S3), so deletes are retryable.
//! - `list(prefix)` is a plain string-prefix match over keys, sorted by key.

mod key;
mod local;
mod memory;
pub mod s3;

use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub use key::{InvalidKey, MAX_KEY_LEN, ObjectKey};
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use s3::S3Store;

use crate::configuration::ObjectStoreSettings;

/// The future every [`ObjectStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// What a listing or `head` tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
}

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key or prefix breaks the key rules.
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    /// There is no object under the key.
    #[error("object {key} does not exist")]
    NotFound {
        /// The missing key.
        key: ObjectKey,
    },
    /// The requested byte range is empty or starts past the object's end.
    #[error("object {key} has no bytes in range {start}..{end}")]
    InvalidRange {
        /// The object's key.
        key: ObjectKey,
        /// First byte requested.
        start: u64,
        /// One past the last byte requested.
        end: u64,
    },
    /// A local filesystem operation failed.
    #[error("unable to {action} {path:?} - {source}")]
    Io {
        /// What was being done, e.g. "write object file".
        action: &'static str,
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The remote store refused or failed a request.
    #[error("S3 {operation} of {target} failed - {message}")]
    Remote {
        /// The S3 operation, e.g. "PutObject".
        operation: &'static str,
        /// The key, prefix or bucket involved.
        target: String,
        /// The SDK's error with its cause chain.
        message: String,
    },
}

/// A key–value store of immutable-ish blobs: packs, indexes, snapshots.
///
/// Keys are [`ObjectKey`]s; see the module docs for the shared contract.
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Stores `data` under `key`, replacing any previous object.
    fn put_bytes<'a>(&'a self, key: &'a ObjectKey, data: Bytes) -> StoreFuture<'a, ()>;

    /// Stores the contents of the local file at `path` under `key`, streaming
    /// where the backend allows, replacing any previous object.
    fn put_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()>;

    /// Stores the local file at `path` under `key` and removes the file:
    /// moved in when the backend can (the local store renames it, saving a
    /// full copy), else uploaded and then deleted. Readers see the object
    /// appear atomically, as with `put_file`.
    ///
    /// On failure the object is unchanged and the file may still exist (the
    /// caller's clean-up of its temporary files covers it). A file that
    /// cannot be removed after a successful upload is only logged: the object
    /// is stored, and stale temporary files are swept at start.
    fn adopt_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.put_file(key, path).await?;
            if let Err(err) = tokio::fs::remove_file(path).await
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(
                    path = %path.display(),
                    key = %key,
                    error = %err,
                    "the object is stored but its source file could not be removed"
                );
            }
            Ok(())
        })
    }

    /// Reads a whole object.
    fn get<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Bytes>;

    /// Reads the bytes `range` of an object, clipped to its end.
    fn get_range<'a>(&'a self, key: &'a ObjectKey, range: Range<u64>) -> StoreFuture<'a, Bytes>;

    /// Size of an object, or `None` when it does not exist.
    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectMeta>>;

    /// Every object whose key starts with `prefix` (a plain string prefix,
    /// which may end inside a segment or be empty), sorted by key.
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>>;

    /// Removes an object; removing a missing object succeeds.
    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()>;

    /// Checks the store can serve requests now (for `/readyz`).
    fn check(&self) -> StoreFuture<'_, ()>;

    /// Whether an object exists under `key`.
    fn exists<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.head(key).await?.is_some()) })
    }
}

/// Opens the store the settings name, creating a local root or a missing
/// S3 bucket so a fresh installation works on its first start.
///
/// # Errors
///
/// Fails when the local root cannot be created or the bucket cannot be
/// reached or created.
pub async fn open(settings: &ObjectStoreSettings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match settings {
        ObjectStoreSettings::Local { root } => Ok(Arc::new(LocalStore::open(root).await?)),
        ObjectStoreSettings::S3(s3) => {
            let store = S3Store::new(s3);
            store.ensure_bucket().await?;
            Ok(Arc::new(store))
        }
    }
}

/// Checks a `get_range` request and clips it to an object of `len` bytes.
fn clip_range(key: &ObjectKey, range: &Range<u64>, len: u64) -> Result<Range<u64>, StorageError> {
    if range.start >= range.end || range.start >= len {
        return Err(StorageError::InvalidRange {
            key: key.clone(),
            start: range.start,
            end: range.end,
        });
    }
    Ok(range.start..range.end.min(len))
}

/// Checks a listing prefix: empty, or a key prefix made of allowed characters.
fn check_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    // A prefix may end in '/' or mid-segment; validate it as a key by
    // completing the last segment.
    ObjectKey::parse(&format!("{prefix}x"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::parse(s).unwrap()
    }

    #[test]
    fn a_range_past_the_end_is_clipped() {
        assert_eq!(clip_range(&key("a"), &(2..100), 10).unwrap(), 2..10);
    }

    #[test]
    fn an_empty_range_or_one_starting_past_the_end_is_invalid() {
        assert!(clip_range(&key("a"), &(3..3), 10).is_err());
        assert!(clip_range(&key("a"), &(10..12), 10).is_err());
    }

    #[test]
    fn prefixes_follow_the_key_rules_but_may_end_with_a_slash() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("tenants/").is_ok());
        assert!(check_prefix("tenants/ab").is_ok());
        assert!(check_prefix("../").is_err());
        assert!(check_prefix("/abs").is_err());
    }
}
