//! The in-memory twin of the object stores, for tests: same contract, no I/O.
//!
//! It can also be told to fail ([`MemoryStore::set_unavailable`]) so tests can
//! check how the server reacts to a store that is down.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::{
    ObjectKey, ObjectMeta, ObjectStore, StorageError, StoreFuture, check_prefix, clip_range,
};

/// Objects in a sorted map behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Sorted so `list` comes out in key order for free.
    objects: Mutex<BTreeMap<ObjectKey, Bytes>>,
    /// When set, every operation fails as if the store were unreachable.
    unavailable: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later operation fail (or succeed again) until changed.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn available(&self, target: &str) -> Result<(), StorageError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StorageError::Remote {
                operation: "request",
                target: target.to_owned(),
                message: "the in-memory store was switched off by the test".to_owned(),
            });
        }
        Ok(())
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<ObjectKey, Bytes>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every update is a single insert or remove), so poisoning is moot.
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        self.available(key.as_str())?;
        self.objects()
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound { key: key.clone() })
    }
}

impl ObjectStore for MemoryStore {
    fn put_bytes<'a>(&'a self, key: &'a ObjectKey, data: Bytes) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.available(key.as_str())?;
            self.objects().insert(key.clone(), data);
            Ok(())
        })
    }

    fn put_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let data = tokio::fs::read(path)
                .await
                .map_err(|source| StorageError::Io {
                    action: "read source file",
                    path: path.to_owned(),
                    source,
                })?;
            self.put_bytes(key, Bytes::from(data)).await
        })
    }

    fn get<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Bytes> {
        Box::pin(async move { self.read(key) })
    }

    fn get_range<'a>(&'a self, key: &'a ObjectKey, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        Box::pin(async move {
            let data = self.read(key)?;
            let clipped = clip_range(key, &range, data.len() as u64)?;
            let to_usize = |n: u64| usize::try_from(n).expect("in-memory object sizes fit usize");
            Ok(data.slice(to_usize(clipped.start)..to_usize(clipped.end)))
        })
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            self.available(key.as_str())?;
            Ok(self.objects().get(key).map(|data| ObjectMeta {
                key: key.clone(),
                size: data.len() as u64,
            }))
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        Box::pin(async move {
            check_prefix(prefix)?;
            self.available(prefix)?;
            Ok(self
                .objects()
                .iter()
                .filter(|(key, _)| key.as_str().starts_with(prefix))
                .map(|(key, data)| ObjectMeta {
                    key: key.clone(),
                    size: data.len() as u64,
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.available(key.as_str())?;
            self.objects().remove(key);
            Ok(())
        })
    }

    fn check(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.available("the in-memory store") })
    }
}
