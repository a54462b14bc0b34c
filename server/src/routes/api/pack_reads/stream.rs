//! A byte range of a stored object as a response body, read from the store
//! one chunk at a time as the client takes it.
//!
//! The store answers ranged reads, not streams, so a 128 MiB pack is served
//! as a run of chunk-sized `get_range` calls: at most one chunk per download
//! is in memory, a slow client slows the reads instead of filling memory,
//! and a client that hangs up stops them. The first chunk is read before
//! the response starts, so a missing or unreadable object is still a clean
//! error response instead of a cut-off body.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::anyhow;
use bytes::Bytes;
use futures_core::Stream;

use crate::storage::{ObjectKey, ObjectStore, StorageError};

/// Bytes read per `get_range` call: large enough that S3 request overhead
/// is small, small enough that many concurrent downloads fit in memory.
pub const READ_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

type Read = Pin<Box<dyn Future<Output = Result<Bytes, StorageError>> + Send>>;

/// The bytes `range` of one object; yields an error (and then ends) when the
/// store fails or returns fewer bytes than asked for.
pub struct ObjectRangeStream {
    /// Where the bytes come from.
    store: Arc<dyn ObjectStore>,
    /// The object.
    key: ObjectKey,
    /// First byte not yet requested from the store.
    next: u64,
    /// One past the last byte to serve.
    end: u64,
    /// Bytes per store read.
    chunk: u64,
    /// The first chunk, read before the response started.
    first: Option<Bytes>,
    /// The read in flight and how many bytes it must return.
    pending: Option<(Read, u64)>,
}

impl ObjectRangeStream {
    /// Reads the first chunk of `range` and returns the stream of all of it.
    ///
    /// # Errors
    ///
    /// The store's error when the first read fails (no such object, store
    /// down), or [`StorageError::InvalidRange`] for an empty range.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        key: ObjectKey,
        range: Range<u64>,
        chunk: u64,
    ) -> Result<Self, StorageError> {
        let first_end = range.end.min(range.start.saturating_add(chunk.max(1)));
        let first = store.get_range(&key, range.start..first_end).await?;
        Ok(Self {
            next: range.start + first.len() as u64,
            end: range.end,
            chunk: chunk.max(1),
            first: Some(first),
            pending: None,
            store,
            key,
        })
    }

    fn start_read(&mut self) -> Option<(Read, u64)> {
        if self.next >= self.end {
            return None;
        }
        let range = self.next..self.end.min(self.next.saturating_add(self.chunk));
        let wanted = range.end - range.start;
        let store = self.store.clone();
        let key = self.key.clone();
        Some((
            Box::pin(async move { store.get_range(&key, range).await }),
            wanted,
        ))
    }
}

impl std::fmt::Debug for ObjectRangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRangeStream")
            .field("key", &self.key)
            .field("next", &self.next)
            .field("end", &self.end)
            .field("reading", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream for ObjectRangeStream {
    type Item = Result<Bytes, anyhow::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if this.pending.is_none() {
            this.pending = this.start_read();
        }
        let Some((read, wanted)) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let wanted = *wanted;
        let Poll::Ready(result) = read.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        this.pending = None;
        let item = match result {
            Ok(bytes) if bytes.len() as u64 == wanted => {
                this.next += wanted;
                Ok(bytes)
            }
            Ok(bytes) => Err(anyhow!(
                "object {} ended early: {} bytes at offset {} instead of {wanted}",
                this.key,
                bytes.len(),
                this.next
            )),
            Err(error) => Err(anyhow::Error::new(error).context(format!(
                "unable to read object {} at offset {}",
                this.key, this.next
            ))),
        };
        if item.is_err() {
            this.next = this.end;
        }
        Poll::Ready(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStore;

    async fn stored(bytes: &[u8]) -> (Arc<dyn ObjectStore>, ObjectKey) {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let key = ObjectKey::parse("tenants/t/packs/ab/ab").unwrap();
        store
            .put_bytes(&key, Bytes::copy_from_slice(bytes))
            .await
            .unwrap();
        (store, key)
    }

    async fn drain(mut stream: ObjectRangeStream) -> (Vec<Bytes>, Option<anyhow::Error>) {
        let mut chunks = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
        {
            match item {
                Ok(chunk) => chunks.push(chunk),
                Err(error) => return (chunks, Some(error)),
            }
        }
        (chunks, None)
    }

    #[tokio::test]
    async fn a_range_is_served_in_chunks_that_join_to_exactly_its_bytes() {
        // Arrange
        let object: Vec<u8> = (0..=255).collect();
        let (store, key) = stored(&object).await;

        // Act
        let stream = ObjectRangeStream::open(store, key, 10..27, 5)
            .await
            .unwrap();
        let (chunks, error) = drain(stream).await;

        // Assert
        assert!(error.is_none(), "{error:?}");
        let lengths: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(lengths, vec![5, 5, 5, 2]);
        assert_eq!(chunks.concat(), object[10..27]);
    }

    #[tokio::test]
    async fn an_object_shorter_than_the_range_ends_the_stream_with_an_error() {
        // Arrange
        let (store, key) = stored(&[7; 12]).await;

        // Act
        let stream = ObjectRangeStream::open(store, key, 0..20, 8).await.unwrap();
        let (chunks, error) = drain(stream).await;

        // Assert
        assert_eq!(chunks.concat(), vec![7; 8]);
        let error = error.expect("the short read is reported");
        assert!(error.to_string().contains("ended early"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_object_fails_before_the_response_starts() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let key = ObjectKey::parse("tenants/t/packs/ab/cd").unwrap();

        let opened = ObjectRangeStream::open(store, key, 0..10, 4).await;

        assert!(matches!(opened, Err(StorageError::NotFound { .. })));
    }
}
