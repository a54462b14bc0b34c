//! Where the walk sends file contents and trees. The real sink is the
//! upload engine; the trait exists so the walk, the metadata and the tree
//! assembly can be tested on real directories without a server.

use std::io::Read;

use stowage_protocol::tree::{FileChunk, TreeBlob};

use crate::upload::{UploadError, Uploader};

/// Stores file contents (cut into chunks) and tree blobs; shared by the
/// walk's reader threads.
pub trait BlobSink: Sync {
    /// Chunks and stores everything `reader` yields; returns the chunks (ids
    /// and lengths) in order. `on_bytes` hears of every block read.
    ///
    /// # Errors
    ///
    /// [`UploadError::Read`] when the reader failed (the file is skipped),
    /// anything else stops the backup.
    fn store_stream(
        &self,
        reader: &mut dyn Read,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<FileChunk>, UploadError>;

    /// Stores one tree blob.
    ///
    /// # Errors
    ///
    /// Any error stops the backup.
    fn store_tree(&self, tree: TreeBlob) -> Result<(), UploadError>;
}

impl BlobSink for Uploader {
    fn store_stream(
        &self,
        reader: &mut dyn Read,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<FileChunk>, UploadError> {
        Uploader::store_stream(self, reader, on_bytes)
    }

    fn store_tree(&self, tree: TreeBlob) -> Result<(), UploadError> {
        Uploader::store_tree(self, tree)
    }
}

#[cfg(test)]
pub mod memory {
    //! A sink that keeps everything in memory, for tests.

    use std::collections::HashMap;
    use std::io::Read;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use stowage_protocol::crypto::IdKey;
    use stowage_protocol::ids::BlobId;
    use stowage_protocol::tree::{FileChunk, TreeBlob};

    use super::BlobSink;
    use crate::upload::UploadError;

    /// Chunks are fixed 64 KiB blocks named by the test id key.
    #[derive(Debug)]
    pub struct MemorySink {
        pub key: IdKey,
        pub chunks: Mutex<HashMap<BlobId, Vec<u8>>>,
        pub trees: Mutex<HashMap<BlobId, Vec<u8>>>,
        /// Streams read so far (one per file read).
        pub streams: AtomicU64,
    }

    impl Default for MemorySink {
        fn default() -> Self {
            Self::new()
        }
    }

    impl MemorySink {
        pub fn new() -> Self {
            Self {
                key: IdKey::from_bytes([7; 32]),
                chunks: Mutex::default(),
                trees: Mutex::default(),
                streams: AtomicU64::new(0),
            }
        }
    }

    impl BlobSink for MemorySink {
        fn store_stream(
            &self,
            reader: &mut dyn Read,
            on_bytes: &mut dyn FnMut(u64),
        ) -> Result<Vec<FileChunk>, UploadError> {
            self.streams.fetch_add(1, Ordering::Relaxed);
            let mut ids = Vec::new();
            let mut offset = 0u64;
            loop {
                let mut block = Vec::new();
                let read = reader
                    .take(64 * 1024)
                    .read_to_end(&mut block)
                    .map_err(|source| UploadError::Read { offset, source })?;
                if read == 0 {
                    return Ok(ids);
                }
                offset += read as u64;
                on_bytes(read as u64);
                let id = self.key.chunk_id(&block);
                self.chunks.lock().unwrap().insert(id, block);
                let len = u32::try_from(read).expect("a block is 64 KiB at most");
                ids.push(FileChunk { id, len });
            }
        }

        fn store_tree(&self, tree: TreeBlob) -> Result<(), UploadError> {
            self.trees.lock().unwrap().insert(tree.id, tree.plaintext);
            Ok(())
        }
    }
}
