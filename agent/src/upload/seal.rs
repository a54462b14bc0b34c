//! The seal pool: threads that compress and encrypt blobs into packs.
//!
//! Every thread seals data blobs into one shared open data pack, so a
//! backup holds one open data pack whatever its thread count (each is up
//! to the 16 MiB target) and a small incremental run makes one data pack,
//! not one per thread. The heavy work stays off the lock: a thread takes
//! the open pack's key under the lock, compresses and encrypts into its own
//! buffer, and locks again only to append the sealed bytes. If the pack was
//! closed meanwhile (another thread filled it), the blob is sealed again
//! under the next pack's key — a few blobs per pack at most, since a pack
//! holds about sixteen 1 MiB chunks and is closed by one thread at a time.
//! Tree blobs, few and small, go into one shared tree pack the same way but
//! sealed under its lock. A full pack is finished (table, trailer, BLAKE3
//! id) outside the lock by the thread that filled it, and handed to the
//! uploads.

use std::sync::{Arc, Mutex, PoisonError};

use stowage_protocol::blob::{BlobKind, BlobSealer, Compression};
use stowage_protocol::crypto::RecoveryPublicKey;

use super::budget::ByteBudget;
use super::pack::{OpenPack, seal_blob};
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
    /// The open data pack, shared by every thread.
    pub data: Mutex<DataSlot>,
    /// One unit per data pack held at once (open, waiting for an upload
    /// slot, or uploading): `uploads_in_flight + 1`, so a fast seal pool
    /// waits for the uploads instead of piling finished packs up in memory.
    pub data_packs: Arc<ByteBudget>,
    /// The open tree pack, shared by every thread.
    pub trees: Mutex<Option<OpenPack>>,
}

/// The shared open data pack, and how many data packs were opened so far
/// (a thread that sealed under one pack's key appends only if that pack
/// is still the open one).
#[derive(Debug, Default)]
pub(super) struct DataSlot {
    generation: u64,
    pack: Option<OpenPack>,
}

impl Sealing {
    /// One seal thread's loop: until every sender is gone, seal what
    /// arrives (the last pack is closed by [`Self::flush`]).
    pub fn run(&self, blobs: &flume::Receiver<Blob>) {
        let mut sealer = BlobSealer::new(self.compression);
        let mut scratch = Vec::new();
        for blob in blobs {
            if self.shared.is_stopped() {
                continue;
            }
            let closed = match blob.kind {
                BlobKind::Data => self.seal_data(&mut sealer, &mut scratch, blob),
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
    }

    /// Closes the open data and tree packs (after every seal thread has ended).
    pub fn flush(&self) {
        let data = self
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pack
            .take();
        let trees = self
            .trees
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for pack in data.into_iter().chain(trees) {
            self.close(pack);
        }
    }

    /// Seals a data blob outside the lock and appends it to the shared data
    /// pack; returns the pack it filled, to close. (A pack the blob does not
    /// fit in is closed at once, before waiting for the next pack's place.)
    fn seal_data(
        &self,
        sealer: &mut BlobSealer,
        scratch: &mut Vec<u8>,
        blob: Blob,
    ) -> Result<Vec<OpenPack>, UploadError> {
        let mut closed = Vec::new();
        loop {
            let (generation, key) = {
                let mut slot = self.data.lock().unwrap_or_else(PoisonError::into_inner);
                if slot.pack.is_none() {
                    // Wait for a place off the lock: the uploads that give
                    // places back never need it.
                    drop(slot);
                    let place = self.data_packs.acquire(1);
                    slot = self.data.lock().unwrap_or_else(PoisonError::into_inner);
                    if slot.pack.is_none() {
                        let pack = OpenPack::new(BlobKind::Data, &self.public_key, self.target)?;
                        slot.pack = Some(pack.holding(place));
                        slot.generation += 1;
                    }
                }
                let pack = slot.pack.as_ref().expect("opened above");
                (slot.generation, pack.key().clone())
            };
            scratch.clear();
            let length = seal_blob(
                sealer,
                &key,
                BlobKind::Data,
                blob.id,
                &blob.plaintext,
                scratch,
            )?;
            let mut slot = self.data.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.generation != generation {
                continue; // closed meanwhile: seal again under the open pack's key
            }
            let Some(pack) = slot.pack.as_mut() else {
                continue;
            };
            if !pack.fits(blob.plaintext.len(), 0) {
                // Submitted before waiting for the next pack's place, which
                // only an ending upload can give back.
                let full = slot.pack.take();
                drop(slot);
                if let Some(pack) = full {
                    self.close(pack);
                }
                continue;
            }
            pack.add_sealed(blob.id, scratch, &[])?;
            add(&self.shared.counters.bytes_sealed, length as u64);
            if pack.is_full() {
                closed.extend(slot.pack.take());
            }
            break;
        }
        // The plaintext and its budget lease go now, before any upload wait.
        drop(blob);
        Ok(closed)
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
