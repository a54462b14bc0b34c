//! The seal pool: threads that compress and encrypt blobs into packs.
//!
//! Each thread keeps its own open data pack (no lock on the hot path, one
//! zstd context per thread); tree blobs, few and small, go into one tree
//! pack shared under a lock so a backup makes as few tree packs as possible.
//! A full pack is finished (table, trailer, BLAKE3 id) on the thread that
//! filled it and handed to the uploads.

use std::sync::{Arc, Mutex, PoisonError};

use stowage_protocol::blob::{BlobKind, BlobSealer, Compression};
use stowage_protocol::crypto::RecoveryPublicKey;

use super::pack::OpenPack;
use super::progress::add;
use super::send::Uploads;
use super::state::Shared;
use super::{Blob, UploadError};

#[derive(Debug)]
pub(super) struct Sealing {
    pub shared: Arc<Shared>,
    pub uploads: Arc<Uploads>,
    /// Each pack's data key is sealed to it.
    pub public_key: RecoveryPublicKey,
    pub compression: Compression,
    /// The repository's pack target size.
    pub target: usize,
    /// The open tree pack, shared by every thread.
    pub trees: Mutex<Option<OpenPack>>,
}

impl Sealing {
    /// One seal thread's loop: until every sender is gone, seal what
    /// arrives; then close this thread's data pack.
    pub fn run(&self, blobs: &flume::Receiver<Blob>) {
        let mut sealer = BlobSealer::new(self.compression);
        let mut data: Option<OpenPack> = None;
        for blob in blobs {
            if self.shared.is_stopped() {
                continue;
            }
            let closed = match blob.kind {
                BlobKind::Data => self.seal(&mut sealer, &mut data, blob),
                BlobKind::Tree => {
                    let mut trees = self.trees.lock().unwrap_or_else(PoisonError::into_inner);
                    self.seal(&mut sealer, &mut trees, blob)
                }
            };
            match closed {
                Ok(closed) => closed.into_iter().for_each(|pack| self.close(pack)),
                Err(error) => self.shared.fail(error),
            }
        }
        if let Some(pack) = data.take() {
            self.close(pack);
        }
    }

    /// Closes the shared tree pack (after every seal thread has ended).
    pub fn flush_trees(&self) {
        let pack = self
            .trees
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(pack) = pack {
            self.close(pack);
        }
    }

    /// Seals `blob` into the pack in `slot` (opening one if needed) and
    /// returns the packs to close: at most the one it did not fit in and
    /// the one it filled. Closing happens outside the tree lock.
    fn seal(
        &self,
        sealer: &mut BlobSealer,
        slot: &mut Option<OpenPack>,
        blob: Blob,
    ) -> Result<Vec<OpenPack>, UploadError> {
        let mut closed = Vec::new();
        if slot
            .as_ref()
            .is_some_and(|pack| !pack.fits(blob.plaintext.len(), blob.refs.len()))
        {
            closed.extend(slot.take());
        }
        let pack = match slot {
            Some(pack) => pack,
            None => slot.insert(OpenPack::new(blob.kind, &self.public_key, self.target)?),
        };
        let length = pack.add(sealer, blob.id, &blob.plaintext, &blob.refs)?;
        add(&self.shared.counters.bytes_sealed, length as u64);
        // The plaintext and its budget lease go now, before any upload wait.
        drop(blob);
        if pack.is_full() {
            closed.extend(slot.take());
        }
        Ok(closed)
    }

    fn close(&self, pack: OpenPack) {
        if !pack.is_empty() {
            self.uploads.submit(pack.finish());
        }
    }
}
