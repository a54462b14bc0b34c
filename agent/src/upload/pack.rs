//! Pack assembly: sealed blobs of one kind under one fresh data key, closed
//! at the repository's target size.
//!
//! Each pack gets its own random [`DataKey`], sealed to the tenant's public
//! key in the pack header, so an agent holding only write keys can build
//! packs it can never read back. Data and tree blobs never share a pack:
//! restore and verify fetch every tree first, and tree packs keep that to a
//! few small downloads.

use stowage_protocol::blob::{BlobKind, BlobSealer, SEALED_BLOB_OVERHEAD};
use stowage_protocol::crypto::{DataKey, RecoveryPublicKey, seal_data_key_random};
use stowage_protocol::ids::{BlobId, PackId};

use super::budget::Lease;
use stowage_protocol::pack::{MAX_PACK_SIZE, PACK_HEADER_LEN, PackWriter};

use super::UploadError;

/// Table bytes one entry costs at most, beyond its refs (kind, id, offset,
/// length, ref count: well under this).
const ENTRY_OVERHEAD: usize = 64;
/// Room a pack reserves past its target: the blob that crosses the target
/// (a chunk is at most 8 MiB with the default chunker, sealed a little
/// larger when zstd cannot shrink it), the table and the trailer.
const PACK_SLACK: usize = 9 << 20;
/// Address space every pack buffer reserves. Past the target plus
/// [`PACK_SLACK`], so a pack is never copied to a bigger buffer as it
/// fills, and above glibc's highest mmap threshold (32 MiB on 64-bit), so
/// the buffer is always a mapping of its own, returned whole to the system
/// when the upload ends. A smaller buffer would, once the first pack was
/// freed and glibc raised its threshold to that size, come from a thread's
/// arena and stay resident after it is freed: on 1.5 GB of real files the
/// backup's peak RSS held a 34 MB arena heap this way.
const PACK_RESERVE: usize = 40 << 20;

/// A pack being filled.
#[derive(Debug)]
pub(super) struct OpenPack {
    kind: BlobKind,
    /// Seals this pack's blobs; never used for another pack.
    key: DataKey,
    writer: PackWriter,
    /// Close the pack once it is this large.
    target: usize,
    /// Reused buffer for one sealed blob.
    scratch: Vec<u8>,
    /// Data packs: this pack's place among the data packs the engine may
    /// hold at once, kept until its upload ends.
    place: Option<Lease>,
}

/// Compresses and seals one blob of `kind` under `key` onto the end of
/// `out`; returns the sealed length.
pub(super) fn seal_blob(
    sealer: &mut BlobSealer,
    key: &DataKey,
    kind: BlobKind,
    id: BlobId,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, UploadError> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(|error| UploadError::Engine {
        what: "random source",
        problem: error.to_string(),
    })?;
    Ok(sealer.seal_into(key, &id, kind, plaintext, nonce, out))
}

/// A closed pack, ready to upload.
#[derive(Debug)]
pub(super) struct FinishedPack {
    pub kind: BlobKind,
    pub id: PackId,
    pub bytes: Vec<u8>,
    pub blobs: usize,
    /// The open pack's place, given back when the upload ends.
    pub place: Option<Lease>,
}

impl OpenPack {
    /// An empty pack with a fresh data key sealed to `public_key`.
    ///
    /// Every pack reserves [`PACK_RESERVE`] of address space at once
    /// (pages are only touched as blobs arrive), so it is never reallocated.
    pub fn new(
        kind: BlobKind,
        public_key: &RecoveryPublicKey,
        target: usize,
    ) -> Result<Self, UploadError> {
        let key = DataKey::random();
        let sealed_key = seal_data_key_random(&key, public_key).map_err(UploadError::DataKey)?;
        let capacity = PACK_RESERVE.max(target + PACK_HEADER_LEN + PACK_SLACK);
        Ok(Self {
            kind,
            key,
            writer: PackWriter::with_capacity(&sealed_key, capacity),
            target,
            scratch: Vec::new(),
            place: None,
        })
    }

    /// This pack, holding `place` until its upload ends.
    pub fn holding(mut self, place: Lease) -> Self {
        self.place = Some(place);
        self
    }

    /// Whether a blob of `plaintext_len` bytes with `refs` references is
    /// sure to fit under the format's maximum pack size. An empty pack takes
    /// any blob (a single blob is far below the maximum).
    pub fn fits(&self, plaintext_len: usize, refs: usize) -> bool {
        // Sealing stores the plaintext as is when zstd does not shrink it,
        // so a sealed blob is never longer than this.
        let sealed = SEALED_BLOB_OVERHEAD + plaintext_len;
        self.writer.is_empty()
            || self.writer.len() + sealed + ENTRY_OVERHEAD + refs * BlobId::LEN <= MAX_PACK_SIZE
    }

    /// Compresses and seals one blob with this pack's key and appends it;
    /// returns the sealed length.
    pub fn add(
        &mut self,
        sealer: &mut BlobSealer,
        id: BlobId,
        plaintext: &[u8],
        refs: &[BlobId],
    ) -> Result<usize, UploadError> {
        self.scratch.clear();
        let length = seal_blob(
            sealer,
            &self.key,
            self.kind,
            id,
            plaintext,
            &mut self.scratch,
        )?;
        self.writer
            .add(self.kind, id, &self.scratch, refs)
            .map_err(UploadError::Pack)?;
        Ok(length)
    }

    /// The key this pack's blobs are sealed with, for sealing outside the
    /// lock that guards a shared pack ([`seal_blob`], then [`Self::add_sealed`]).
    pub const fn key(&self) -> &DataKey {
        &self.key
    }

    /// Appends a blob already sealed with [`Self::key`].
    pub fn add_sealed(
        &mut self,
        id: BlobId,
        sealed: &[u8],
        refs: &[BlobId],
    ) -> Result<(), UploadError> {
        self.writer
            .add(self.kind, id, sealed, refs)
            .map_err(UploadError::Pack)
    }

    /// Whether the pack reached its target size and should be closed.
    pub fn is_full(&self) -> bool {
        self.writer.len() >= self.target
    }

    pub fn is_empty(&self) -> bool {
        self.writer.is_empty()
    }

    /// Writes the table and trailer and names the pack.
    pub fn finish(mut self) -> FinishedPack {
        let blobs = self.writer.blob_count();
        let place = self.place.take();
        let (id, bytes) = self.writer.finish();
        FinishedPack {
            kind: self.kind,
            id,
            bytes,
            blobs,
            place,
        }
    }
}

#[cfg(test)]
mod tests {
    use stowage_protocol::blob::{Compression, open_blob};
    use stowage_protocol::crypto::{TenantKeys, open_data_key};
    use stowage_protocol::pack::{PackReader, verify_pack_id};

    use super::*;

    #[test]
    fn a_finished_pack_opens_with_the_tenant_secret_and_gives_back_each_blob() {
        // Arrange
        let keys = TenantKeys::generate();
        let mut sealer = BlobSealer::new(Compression::DEFAULT);
        let mut pack = OpenPack::new(BlobKind::Tree, &keys.public_key(), 1 << 20).unwrap();
        let first = b"first tree".repeat(100);
        let second = b"second tree".to_vec();
        let child = BlobId::from_bytes([7; 32]);

        // Act
        pack.add(&mut sealer, keys.id_key.tree_id(&first), &first, &[child])
            .unwrap();
        pack.add(&mut sealer, keys.id_key.tree_id(&second), &second, &[])
            .unwrap();
        let finished = pack.finish();

        // Assert
        assert_eq!((finished.kind, finished.blobs), (BlobKind::Tree, 2));
        verify_pack_id(&finished.bytes, &finished.id).unwrap();
        let reader = PackReader::parse(&finished.bytes).unwrap();
        let key = open_data_key(reader.sealed_key(), &keys.recovery_secret).unwrap();
        let entries = reader.entries();
        assert_eq!(entries[0].refs, vec![child]);
        for (entry, plaintext) in entries.iter().zip([&first, &second]) {
            let bytes = reader.blob_bytes(entry).unwrap();
            let opened = open_blob(&key, &entry.id, BlobKind::Tree, bytes, 1 << 20).unwrap();
            assert_eq!(&opened, plaintext);
        }
    }

    #[test]
    fn a_pack_is_full_once_it_reaches_its_target() {
        let keys = TenantKeys::generate();
        let mut sealer = BlobSealer::new(Compression::NONE);
        let mut pack = OpenPack::new(BlobKind::Data, &keys.public_key(), 10_000).unwrap();
        let mut n = 0u8;
        while !pack.is_full() {
            n += 1;
            let plaintext = vec![n; 3000];
            pack.add(
                &mut sealer,
                keys.id_key.chunk_id(&plaintext),
                &plaintext,
                &[],
            )
            .unwrap();
        }
        assert_eq!(
            n, 4,
            "3 blobs of 3000 bytes stay under 10,000, a 4th passes it"
        );
    }

    #[test]
    fn an_empty_pack_takes_any_blob_and_a_filled_one_refuses_what_would_pass_the_maximum() {
        let keys = TenantKeys::generate();
        let mut sealer = BlobSealer::new(Compression::NONE);
        let mut pack = OpenPack::new(BlobKind::Data, &keys.public_key(), MAX_PACK_SIZE).unwrap();
        assert!(pack.fits(MAX_PACK_SIZE, 0));
        let plaintext = vec![1; 1000];
        pack.add(
            &mut sealer,
            keys.id_key.chunk_id(&plaintext),
            &plaintext,
            &[],
        )
        .unwrap();
        assert!(pack.fits(8 << 20, 0));
        assert!(!pack.fits(MAX_PACK_SIZE - 1000, 0));
    }
}
