//! Building a pack in memory, blob by blob.

use std::collections::HashSet;

use super::table::entry_len;
use super::{
    MAX_PACK_SIZE, PACK_HEADER_LEN, PACK_TRAILER_LEN, PackEntry, PackError, PackHeader, PackTable,
    PackTrailer,
};
use crate::blob::{BlobKind, SEALED_BLOB_OVERHEAD};
use crate::crypto::SealedDataKey;
use crate::ids::{BlobId, PackId};

/// Appends sealed blobs after a pack header and, on [`finish`](Self::finish),
/// the table and trailer.
///
/// The agent adds blobs until [`len`](Self::len) reaches
/// [`TARGET_PACK_SIZE`](super::TARGET_PACK_SIZE), then finishes and uploads.
#[derive(Debug)]
pub struct PackWriter {
    /// Header and sealed blobs written so far.
    bytes: Vec<u8>,
    /// One entry per blob, in write order.
    table: PackTable,
    /// Ids already in this pack, to refuse a second copy.
    ids: HashSet<BlobId>,
    /// Encoded size the table has now.
    table_len: usize,
}

impl PackWriter {
    /// A pack whose blobs are sealed under the data key in `sealed_key`.
    pub fn new(sealed_key: &SealedDataKey) -> Self {
        Self::with_capacity(sealed_key, 0)
    }

    /// Like [`new`](Self::new), reserving `capacity` bytes up front (e.g. the target size plus one chunk).
    pub fn with_capacity(sealed_key: &SealedDataKey, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity.max(PACK_HEADER_LEN));
        bytes.extend_from_slice(
            &PackHeader {
                sealed_key: *sealed_key,
            }
            .encode(),
        );
        let table = PackTable::default();
        let table_len = table.encoded_len();
        Self {
            bytes,
            table,
            ids: HashSet::new(),
            table_len,
        }
    }

    /// Adds one sealed blob. `refs` (trees only) are the ids the tree
    /// references; they are sorted and deduplicated here.
    ///
    /// # Errors
    ///
    /// `DuplicateBlob` if the id is already in this pack, `DataBlobWithRefs`,
    /// `BlobTooSmall` for fewer than 45 bytes, `BadBlobHeader` if the sealed
    /// blob's header is malformed or of another kind, `PackFull` if the finished pack
    /// would exceed [`MAX_PACK_SIZE`]. A failed add leaves the writer unchanged.
    pub fn add(
        &mut self,
        kind: BlobKind,
        id: BlobId,
        sealed: &[u8],
        refs: &[BlobId],
    ) -> Result<(), PackError> {
        if self.ids.contains(&id) {
            return Err(PackError::DuplicateBlob(id));
        }
        if kind == BlobKind::Data && !refs.is_empty() {
            return Err(PackError::DataBlobWithRefs(id));
        }
        if sealed.len() < SEALED_BLOB_OVERHEAD {
            return Err(PackError::BlobTooSmall {
                id,
                length: u32::try_from(sealed.len()).unwrap_or(u32::MAX),
            });
        }
        super::check_blob_header(kind, &id, sealed)?;
        let mut refs = refs.to_vec();
        refs.sort_unstable();
        refs.dedup();
        let entry = PackEntry {
            kind,
            id,
            offset: u32::try_from(self.bytes.len()).expect("a pack stays below 128 MiB"),
            length: 0,
            refs,
        };
        let entry_len = entry_len(&entry);
        let size = self.len() as u64 + sealed.len() as u64 + entry_len as u64;
        if size > MAX_PACK_SIZE as u64 {
            return Err(PackError::PackFull { id, size });
        }
        let length = u32::try_from(sealed.len()).expect("checked against the pack maximum");
        self.bytes.extend_from_slice(sealed);
        self.table.entries.push(PackEntry { length, ..entry });
        self.table_len += entry_len;
        self.ids.insert(id);
        Ok(())
    }

    /// Whether a blob with this id was added.
    pub fn contains(&self, id: &BlobId) -> bool {
        self.ids.contains(id)
    }

    /// Number of blobs added.
    pub fn blob_count(&self) -> usize {
        self.table.entries.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.table.entries.is_empty()
    }

    /// Size the pack would have if finished now (header, blobs, table, trailer).
    pub fn len(&self) -> usize {
        self.bytes.len() + self.table_len + PACK_TRAILER_LEN
    }

    /// The table so far (entries in write order).
    pub fn table(&self) -> &PackTable {
        &self.table
    }

    /// Appends table and trailer; returns the pack id and the complete pack bytes.
    pub fn finish(self) -> (PackId, Vec<u8>) {
        let Self {
            mut bytes, table, ..
        } = self;
        let table_bytes = table.encode();
        let trailer = PackTrailer::for_table(&table_bytes, bytes.len() as u64);
        bytes.reserve_exact(table_bytes.len() + PACK_TRAILER_LEN);
        bytes.extend_from_slice(&table_bytes);
        bytes.extend_from_slice(&trailer.encode());
        (PackId::digest(&bytes), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PACK_HEADER_LEN, PackReader, verify_pack_id};
    use super::*;
    use crate::crypto::SEALED_DATA_KEY_LEN;

    fn key() -> SealedDataKey {
        SealedDataKey::from_bytes([0x5a; SEALED_DATA_KEY_LEN])
    }

    fn id(n: u8) -> BlobId {
        BlobId::from_bytes([n; 32])
    }

    /// Stand-in sealed bytes: a valid blob header of `kind`, then filler.
    fn sealed(kind: BlobKind, len: usize) -> Vec<u8> {
        let mut bytes = vec![b'S', b'B', 1, kind.as_u8(), 0];
        bytes.resize(len, 0x77);
        bytes
    }

    #[test]
    fn a_written_pack_parses_back_to_the_same_blobs_and_refs() {
        // Arrange
        let mut writer = PackWriter::with_capacity(&key(), 1024);
        let data = sealed(BlobKind::Data, 60);
        let tree = sealed(BlobKind::Tree, 45);

        // Act
        writer.add(BlobKind::Data, id(1), &data, &[]).unwrap();
        writer
            .add(BlobKind::Tree, id(2), &tree, &[id(9), id(1), id(9)])
            .unwrap();
        let predicted = writer.len();
        let (pack_id, bytes) = writer.finish();

        // Assert
        assert_eq!(bytes.len(), predicted);
        verify_pack_id(&bytes, &pack_id).unwrap();
        let reader = PackReader::parse(&bytes).unwrap();
        assert_eq!(reader.sealed_key(), &key());
        let entries = reader.entries();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].offset as usize, entries[0].length),
            (PACK_HEADER_LEN, 60)
        );
        assert_eq!(reader.blob_bytes(&entries[0]).unwrap(), &data[..]);
        assert_eq!(reader.blob_bytes(&entries[1]).unwrap(), &tree[..]);
        assert_eq!(entries[1].refs, vec![id(1), id(9)]);
        assert_eq!(reader.find(&id(2)).unwrap().kind, BlobKind::Tree);
        assert_eq!(reader.blobs().count(), 2);
    }

    #[test]
    fn an_empty_pack_is_header_table_and_trailer() {
        let (_, bytes) = PackWriter::new(&key()).finish();
        assert_eq!(bytes.len(), PACK_HEADER_LEN + 4 + 24);
        assert!(PackReader::parse(&bytes).unwrap().entries().is_empty());
    }

    #[test]
    fn duplicates_data_refs_and_runt_blobs_are_refused_without_changing_the_pack() {
        let mut writer = PackWriter::new(&key());
        writer
            .add(BlobKind::Data, id(1), &sealed(BlobKind::Data, 45), &[])
            .unwrap();
        let before = writer.len();
        assert_eq!(
            writer.add(BlobKind::Data, id(1), &sealed(BlobKind::Data, 50), &[]),
            Err(PackError::DuplicateBlob(id(1)))
        );
        assert_eq!(
            writer.add(BlobKind::Data, id(2), &sealed(BlobKind::Data, 50), &[id(3)]),
            Err(PackError::DataBlobWithRefs(id(2)))
        );
        assert!(matches!(
            writer.add(BlobKind::Tree, id(4), &[0; 44], &[]),
            Err(PackError::BlobTooSmall { .. })
        ));
        assert_eq!(writer.len(), before);
        assert_eq!(writer.blob_count(), 1);
        assert!(writer.contains(&id(1)) && !writer.contains(&id(2)));
    }

    #[test]
    fn a_blob_that_would_pass_the_maximum_size_is_refused() {
        let mut writer = PackWriter::new(&key());
        let big = sealed(BlobKind::Data, 8 * 1024 * 1024);
        let mut n = 0u8;
        let err = loop {
            n += 1;
            if let Err(err) = writer.add(BlobKind::Data, id(n), &big, &[]) {
                break err;
            }
        };
        assert!(matches!(err, PackError::PackFull { .. }), "{err}");
        assert!(writer.len() <= MAX_PACK_SIZE);
        assert_eq!(writer.blob_count(), 15);
    }

    #[test]
    fn a_blob_whose_header_disagrees_with_its_kind_is_refused() {
        let mut writer = PackWriter::new(&key());
        let err = writer
            .add(BlobKind::Tree, id(1), &sealed(BlobKind::Data, 45), &[])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the table says tree but the blob header says data"),
            "{err}"
        );
        let mut bad_magic = sealed(BlobKind::Data, 45);
        bad_magic[0] = b'X';
        assert!(matches!(
            writer.add(BlobKind::Data, id(2), &bad_magic, &[]),
            Err(PackError::BadBlobHeader { .. })
        ));
        assert!(writer.is_empty());
    }
}
