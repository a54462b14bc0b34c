//! Reading a whole pack held in memory.

use super::{
    PACK_TRAILER_LEN, PackEntry, PackError, PackHeader, PackTable, PackTrailer, check_blob_header,
};
use crate::crypto::SealedDataKey;
use crate::ids::BlobId;

/// A checked view of a complete pack: header, table, and the sealed blobs.
#[derive(Debug, Clone)]
pub struct PackReader<'a> {
    /// The whole pack.
    bytes: &'a [u8],
    /// From the header.
    sealed_key: SealedDataKey,
    /// From the tail.
    table: PackTable,
}

impl<'a> PackReader<'a> {
    /// Parses header, trailer and table, with every check of
    /// [`PackTable::decode`], and checks that each blob's own header is well
    /// formed and agrees with the table's kind.
    /// It does not hash the whole pack: use [`verify_pack_id`](super::verify_pack_id) for that.
    ///
    /// # Errors
    ///
    /// The [`PackError`] of the first failed check.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PackError> {
        let header = PackHeader::decode(bytes)?;
        let pack_len = bytes.len() as u64;
        let trailer_start = bytes
            .len()
            .checked_sub(PACK_TRAILER_LEN)
            .ok_or(PackError::TooShort(pack_len))?;
        let trailer = PackTrailer::decode(&bytes[trailer_start..])?;
        let range = trailer.table_range(pack_len)?;
        // The range was checked to lie inside `bytes`, so these casts are exact.
        let table_bytes = &bytes[usize::try_from(range.start).unwrap_or(usize::MAX)..trailer_start];
        let table = PackTable::decode(table_bytes, &trailer, pack_len)?;
        for entry in &table.entries {
            check_blob_header(entry.kind, &entry.id, &bytes[entry.range()])?;
        }
        Ok(Self {
            bytes,
            sealed_key: header.sealed_key,
            table,
        })
    }

    /// The pack's sealed data key.
    pub fn sealed_key(&self) -> &SealedDataKey {
        &self.sealed_key
    }

    /// The table entries, in pack order.
    pub fn entries(&self) -> &[PackEntry] {
        &self.table.entries
    }

    /// The parsed table.
    pub fn table(&self) -> &PackTable {
        &self.table
    }

    /// The entry with this id, if the pack holds it.
    pub fn find(&self, id: &BlobId) -> Option<&PackEntry> {
        self.table.entries.iter().find(|e| e.id == *id)
    }

    /// The sealed bytes of `entry`; `None` if the entry's range is not inside
    /// this pack (it can only come from another pack's table).
    pub fn blob_bytes(&self, entry: &PackEntry) -> Option<&'a [u8]> {
        self.bytes.get(entry.range())
    }

    /// Every entry with its sealed bytes, in pack order.
    pub fn blobs(&self) -> impl Iterator<Item = (&PackEntry, &'a [u8])> + '_ {
        let bytes = self.bytes;
        self.table
            .entries
            .iter()
            .map(move |e| (e, &bytes[e.range()]))
    }
}
