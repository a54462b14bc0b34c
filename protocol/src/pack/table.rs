//! The pack table and trailer: what the server reads to index a pack without keys.

use std::ops::Range;

use super::{MAX_PACK_SIZE, PACK_HEADER_LEN, PACK_TRAILER_LEN, PACK_TRAILER_MAGIC, PackError};
use crate::blob::{BlobKind, SEALED_BLOB_OVERHEAD};
use crate::ids::BlobId;
use crate::wire::Cursor;

/// Bytes of the table's entry count.
const TABLE_COUNT_LEN: usize = 4;
/// Smallest table entry: kind, id, offset, length (a data blob).
const MIN_TABLE_ENTRY_LEN: usize = 1 + BlobId::LEN + 4 + 4;
/// Bytes of the table hash kept in the trailer.
const TABLE_HASH_PREFIX_LEN: usize = 8;

/// One blob in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    /// Data chunk or tree.
    pub kind: BlobKind,
    /// The blob's id.
    pub id: BlobId,
    /// Where the sealed blob starts, from the start of the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// For trees: the ids the tree references, sorted and unique (empty for data).
    pub refs: Vec<BlobId>,
}

impl PackEntry {
    /// The byte range of the sealed blob within the pack.
    pub fn range(&self) -> Range<usize> {
        let start = self.offset as usize;
        start..start + self.length as usize
    }
}

/// The plaintext table of a pack's blobs, in pack order.
///
/// ```text
/// u32 entry count
/// each entry: u8 kind, 32-byte BlobId, u32 offset (from pack start), u32 length,
///             if kind == tree: u32 ref count + ref count × 32-byte BlobId
///             (sorted, unique)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackTable {
    /// The blobs, ordered by offset.
    pub entries: Vec<PackEntry>,
}

/// The last 24 bytes of a pack: where the table is and how to check it.
///
/// ```text
/// 0   8  table offset (u64)
/// 8   4  table length (u32)
/// 12  8  first 8 bytes of BLAKE3(table bytes)
/// 20  4  magic "STWT"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackTrailer {
    /// Offset of the table from the start of the pack.
    pub table_offset: u64,
    /// Length of the table.
    pub table_len: u32,
    /// Prefix of the table's BLAKE3 hash.
    pub table_hash: [u8; TABLE_HASH_PREFIX_LEN],
}

impl PackTrailer {
    /// The trailer describing `table` placed at `table_offset`.
    pub fn for_table(table: &[u8], table_offset: u64) -> Self {
        let mut table_hash = [0u8; TABLE_HASH_PREFIX_LEN];
        table_hash.copy_from_slice(&blake3::hash(table).as_bytes()[..TABLE_HASH_PREFIX_LEN]);
        Self {
            table_offset,
            table_len: u32::try_from(table.len()).expect("a pack table is far below 4 GiB"),
            table_hash,
        }
    }

    /// The trailer's bytes.
    pub fn encode(&self) -> [u8; PACK_TRAILER_LEN] {
        let mut out = [0u8; PACK_TRAILER_LEN];
        out[..8].copy_from_slice(&self.table_offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.table_len.to_le_bytes());
        out[12..20].copy_from_slice(&self.table_hash);
        out[20..].copy_from_slice(&PACK_TRAILER_MAGIC);
        out
    }

    /// Parses the last [`PACK_TRAILER_LEN`] bytes of a pack.
    ///
    /// # Errors
    ///
    /// `Truncated` when `bytes` is not 24 bytes long, `BadMagic` for a wrong magic.
    pub fn decode(bytes: &[u8]) -> Result<Self, PackError> {
        if bytes.len() != PACK_TRAILER_LEN {
            return Err(PackError::Truncated {
                what: "pack trailer",
                needed: PACK_TRAILER_LEN,
                remaining: bytes.len(),
            });
        }
        let mut cursor = Cursor::new(bytes);
        let table_offset = cursor.u64("table offset")?;
        let table_len = cursor.u32("table length")?;
        let table_hash = cursor.array("table hash")?;
        let magic = cursor.array::<4>("trailer magic")?;
        if magic != PACK_TRAILER_MAGIC {
            return Err(PackError::BadMagic {
                part: "trailer",
                found: magic,
                expected: "STWT",
            });
        }
        Ok(Self {
            table_offset,
            table_len,
            table_hash,
        })
    }

    /// Where the table lies in a pack of `pack_len` bytes: after the header and
    /// ending exactly where the trailer starts.
    ///
    /// # Errors
    ///
    /// `TooShort` / `TooLarge` for an impossible pack size, `TableOutOfRange` otherwise.
    pub fn table_range(&self, pack_len: u64) -> Result<Range<u64>, PackError> {
        check_pack_len(pack_len)?;
        let out_of_range = PackError::TableOutOfRange {
            offset: self.table_offset,
            len: self.table_len,
            pack_len,
        };
        let table_end = pack_len - PACK_TRAILER_LEN as u64;
        let fits = self.table_offset >= PACK_HEADER_LEN as u64
            && self.table_len as usize >= TABLE_COUNT_LEN
            && self.table_offset.checked_add(u64::from(self.table_len)) == Some(table_end);
        if !fits {
            return Err(out_of_range);
        }
        Ok(self.table_offset..table_end)
    }
}

fn check_pack_len(pack_len: u64) -> Result<(), PackError> {
    if pack_len < (PACK_HEADER_LEN + TABLE_COUNT_LEN + PACK_TRAILER_LEN) as u64 {
        return Err(PackError::TooShort(pack_len));
    }
    if pack_len > MAX_PACK_SIZE as u64 {
        return Err(PackError::TooLarge(pack_len));
    }
    Ok(())
}

fn read_id(cursor: &mut Cursor<'_>, what: &'static str) -> Result<BlobId, PackError> {
    Ok(BlobId::from_bytes(cursor.array(what)?))
}

impl PackTable {
    /// Bytes this table takes when encoded.
    pub fn encoded_len(&self) -> usize {
        TABLE_COUNT_LEN + self.entries.iter().map(entry_len).sum::<usize>()
    }

    /// The table's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let count =
            u32::try_from(self.entries.len()).expect("a pack holds far fewer than 2^32 blobs");
        out.extend_from_slice(&count.to_le_bytes());
        for entry in &self.entries {
            out.push(entry.kind.as_u8());
            out.extend_from_slice(entry.id.as_bytes());
            out.extend_from_slice(&entry.offset.to_le_bytes());
            out.extend_from_slice(&entry.length.to_le_bytes());
            if entry.kind == BlobKind::Tree {
                let refs = u32::try_from(entry.refs.len())
                    .expect("a tree references far fewer than 2^32 blobs");
                out.extend_from_slice(&refs.to_le_bytes());
                for id in &entry.refs {
                    out.extend_from_slice(id.as_bytes());
                }
            }
        }
        out
    }

    /// Parses and checks a table read from a pack of `pack_len` bytes whose trailer is `trailer`.
    ///
    /// Checks, before allocating anything proportional to a count: pack size,
    /// table placement and hash, entry count against the table length; then per
    /// entry: known kind, blobs contiguous from the header to the table, each at
    /// least 45 bytes, ref counts within the remaining bytes, refs sorted and
    /// unique; finally ids unique and no trailing bytes.
    ///
    /// # Errors
    ///
    /// The [`PackError`] of the first failed check.
    pub fn decode(table: &[u8], trailer: &PackTrailer, pack_len: u64) -> Result<Self, PackError> {
        let range = trailer.table_range(pack_len)?;
        if table.len() as u64 != range.end - range.start {
            return Err(PackError::Truncated {
                what: "pack table",
                needed: trailer.table_len as usize,
                remaining: table.len(),
            });
        }
        if PackTrailer::for_table(table, range.start).table_hash != trailer.table_hash {
            return Err(PackError::TableHashMismatch);
        }
        let mut cursor = Cursor::new(table);
        let count = cursor.u32("table entry count")? as usize;
        let max = cursor.remaining() / MIN_TABLE_ENTRY_LEN;
        if count > max {
            return Err(PackError::CountTooLarge {
                what: "table entries",
                count: count as u64,
                max: max as u64,
            });
        }
        let mut entries = Vec::with_capacity(count);
        let mut expected = PACK_HEADER_LEN as u64;
        for index in 0..count {
            let entry = decode_entry(&mut cursor, index)?;
            if u64::from(entry.offset) != expected {
                return Err(PackError::BlobMisplaced {
                    id: entry.id,
                    offset: entry.offset,
                    expected,
                });
            }
            if (entry.length as usize) < SEALED_BLOB_OVERHEAD {
                return Err(PackError::BlobTooSmall {
                    id: entry.id,
                    length: entry.length,
                });
            }
            expected += u64::from(entry.length);
            if expected > range.start {
                break;
            }
            entries.push(entry);
        }
        if expected != range.start {
            return Err(PackError::BlobsDoNotFillPack {
                end: expected,
                table_offset: range.start,
            });
        }
        if cursor.remaining() != 0 {
            return Err(PackError::TrailingTableBytes(cursor.remaining()));
        }
        let mut ids: Vec<BlobId> = entries.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(PackError::DuplicateBlob(pair[0]));
        }
        Ok(Self { entries })
    }
}

/// Bytes one entry takes in the encoded table.
pub(super) fn entry_len(entry: &PackEntry) -> usize {
    let refs = if entry.kind == BlobKind::Tree {
        4 + entry.refs.len() * BlobId::LEN
    } else {
        0
    };
    MIN_TABLE_ENTRY_LEN + refs
}

fn decode_entry(cursor: &mut Cursor<'_>, index: usize) -> Result<PackEntry, PackError> {
    let kind_byte = cursor.u8("blob kind")?;
    let kind = BlobKind::from_u8(kind_byte).ok_or(PackError::UnknownKind {
        index,
        kind: kind_byte,
    })?;
    let id = read_id(cursor, "blob id")?;
    let offset = cursor.u32("blob offset")?;
    let length = cursor.u32("blob length")?;
    let mut refs = Vec::new();
    if kind == BlobKind::Tree {
        let count = cursor.u32("tree reference count")? as usize;
        let max = cursor.remaining() / BlobId::LEN;
        if count > max {
            return Err(PackError::CountTooLarge {
                what: "tree references",
                count: count as u64,
                max: max as u64,
            });
        }
        refs.reserve_exact(count);
        for _ in 0..count {
            let next = read_id(cursor, "tree reference")?;
            if refs.last().is_some_and(|last| *last >= next) {
                return Err(PackError::RefsNotSorted(id));
            }
            refs.push(next);
        }
    }
    Ok(PackEntry {
        kind,
        id,
        offset,
        length,
        refs,
    })
}

#[cfg(test)]
mod tests {
    use super::super::PackReader;
    use super::*;

    /// A pack with `blob_area` bytes of blobs and the given raw table, with a correct trailer.
    fn pack_with_table(blob_area: usize, table: &[u8]) -> Vec<u8> {
        let mut bytes = b"STWP\x01\0\0\0".to_vec();
        bytes.extend_from_slice(&[0; 80]);
        bytes.extend(std::iter::repeat_n(0xaa, blob_area));
        let trailer = PackTrailer::for_table(table, bytes.len() as u64);
        bytes.extend_from_slice(table);
        bytes.extend_from_slice(&trailer.encode());
        bytes
    }

    fn raw_entry(kind: u8, id: u8, offset: u32, length: u32) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&[id; 32]);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes());
        out
    }

    fn table_of(count: u32, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = count.to_le_bytes().to_vec();
        for entry in entries {
            out.extend_from_slice(entry);
        }
        out
    }

    fn parse(bytes: &[u8]) -> Result<PackReader<'_>, PackError> {
        PackReader::parse(bytes)
    }

    #[test]
    fn a_well_formed_hand_built_table_parses_and_its_blob_headers_are_checked() {
        // Arrange
        let table = table_of(2, &[raw_entry(1, 1, 88, 50), raw_entry(1, 2, 138, 45)]);
        let mut pack = pack_with_table(95, &table);

        // Act
        let garbage_blobs = parse(&pack).map(|r| r.entries().len());
        pack[88..93].copy_from_slice(b"SB\x01\x01\x00");
        pack[138..143].copy_from_slice(b"SB\x01\x01\x01");

        // Assert
        assert!(matches!(
            garbage_blobs,
            Err(PackError::BadBlobHeader { .. })
        ));
        assert_eq!(parse(&pack).unwrap().entries().len(), 2);
    }

    #[test]
    fn a_table_claiming_four_billion_entries_fails_before_allocating() {
        let pack = pack_with_table(0, &table_of(u32::MAX, &[]));
        assert!(matches!(
            parse(&pack),
            Err(PackError::CountTooLarge {
                count: 4_294_967_295,
                max: 0,
                ..
            })
        ));
    }

    #[test]
    fn a_tree_claiming_four_billion_refs_fails_before_allocating() {
        let mut entry = raw_entry(2, 1, 88, 45);
        entry.extend_from_slice(&u32::MAX.to_le_bytes());
        let pack = pack_with_table(45, &table_of(1, &[entry]));
        assert!(matches!(
            parse(&pack),
            Err(PackError::CountTooLarge {
                what: "tree references",
                ..
            })
        ));
    }

    #[test]
    fn gaps_overlaps_and_blobs_past_the_table_are_rejected() {
        let gap = table_of(2, &[raw_entry(1, 1, 88, 50), raw_entry(1, 2, 139, 45)]);
        assert!(matches!(
            parse(&pack_with_table(96, &gap)),
            Err(PackError::BlobMisplaced { .. })
        ));
        let overlap = table_of(2, &[raw_entry(1, 1, 88, 50), raw_entry(1, 2, 137, 45)]);
        assert!(matches!(
            parse(&pack_with_table(94, &overlap)),
            Err(PackError::BlobMisplaced { .. })
        ));
        let late_start = table_of(1, &[raw_entry(1, 1, 89, 50)]);
        assert!(matches!(
            parse(&pack_with_table(51, &late_start)),
            Err(PackError::BlobMisplaced { .. })
        ));
        let past_table = table_of(1, &[raw_entry(1, 1, 88, 60)]);
        assert!(matches!(
            parse(&pack_with_table(50, &past_table)),
            Err(PackError::BlobsDoNotFillPack { .. })
        ));
        let short_of_table = table_of(1, &[raw_entry(1, 1, 88, 50)]);
        assert!(matches!(
            parse(&pack_with_table(60, &short_of_table)),
            Err(PackError::BlobsDoNotFillPack { .. })
        ));
    }

    #[test]
    fn runt_blobs_duplicate_ids_and_unknown_kinds_are_rejected() {
        let runt = table_of(1, &[raw_entry(1, 1, 88, 44)]);
        assert!(matches!(
            parse(&pack_with_table(44, &runt)),
            Err(PackError::BlobTooSmall { length: 44, .. })
        ));
        let twice = table_of(2, &[raw_entry(1, 1, 88, 45), raw_entry(1, 1, 133, 45)]);
        assert_eq!(
            parse(&pack_with_table(90, &twice)).unwrap_err(),
            PackError::DuplicateBlob(BlobId::from_bytes([1; 32]))
        );
        let unknown = table_of(1, &[raw_entry(3, 1, 88, 45)]);
        assert_eq!(
            parse(&pack_with_table(45, &unknown)).unwrap_err(),
            PackError::UnknownKind { index: 0, kind: 3 }
        );
    }

    #[test]
    fn unsorted_refs_and_trailing_table_bytes_are_rejected() {
        let mut tree = raw_entry(2, 1, 88, 45);
        tree.extend_from_slice(&2u32.to_le_bytes());
        tree.extend_from_slice(&[5; 32]);
        tree.extend_from_slice(&[4; 32]);
        let pack = pack_with_table(45, &table_of(1, &[tree]));
        assert!(matches!(parse(&pack), Err(PackError::RefsNotSorted(_))));
        let mut trailing = table_of(1, &[raw_entry(1, 1, 88, 45)]);
        trailing.push(0);
        assert_eq!(
            parse(&pack_with_table(45, &trailing)).unwrap_err(),
            PackError::TrailingTableBytes(1)
        );
    }

    #[test]
    fn a_damaged_table_or_misplaced_trailer_is_rejected() {
        let table = table_of(1, &[raw_entry(1, 1, 88, 45)]);
        let pack = pack_with_table(45, &table);
        let table_at = 88 + 45;
        let mut damaged = pack.clone();
        damaged[table_at + 10] ^= 1;
        assert_eq!(parse(&damaged).unwrap_err(), PackError::TableHashMismatch);
        let trailer_at = pack.len() - 24;
        for bad_offset in [0u64, 87, table_at as u64 + 1, u64::MAX] {
            let mut moved = pack.clone();
            moved[trailer_at..trailer_at + 8].copy_from_slice(&bad_offset.to_le_bytes());
            assert!(
                matches!(parse(&moved), Err(PackError::TableOutOfRange { .. })),
                "offset {bad_offset}"
            );
        }
        let mut magic = pack;
        *magic.last_mut().unwrap() = b'X';
        assert!(matches!(
            parse(&magic),
            Err(PackError::BadMagic {
                part: "trailer",
                ..
            })
        ));
    }

    #[test]
    fn impossible_pack_sizes_are_rejected_by_the_trailer_range() {
        let trailer = PackTrailer {
            table_offset: 88,
            table_len: 4,
            table_hash: [0; 8],
        };
        assert_eq!(trailer.table_range(115), Err(PackError::TooShort(115)));
        assert_eq!(trailer.table_range(116), Ok(88..92));
        let huge = MAX_PACK_SIZE as u64 + 1;
        assert_eq!(trailer.table_range(huge), Err(PackError::TooLarge(huge)));
        assert!(matches!(
            PackTrailer::decode(&[0; 23]),
            Err(PackError::Truncated { .. })
        ));
        assert!(matches!(
            parse(b"STWP\x01\0\0\0\0\0"),
            Err(PackError::Truncated { .. })
        ));
    }

    #[test]
    fn a_table_read_separately_from_the_tail_decodes_like_the_whole_pack() {
        // Arrange: the server's streaming path sees only the length and the tail.
        let table = table_of(1, &[raw_entry(1, 7, 88, 45)]);
        let pack = pack_with_table(45, &table);
        let len = pack.len() as u64;

        // Act
        let trailer = PackTrailer::decode(&pack[pack.len() - 24..]).unwrap();
        let range = trailer.table_range(len).unwrap();
        let decoded = PackTable::decode(
            &pack[usize::try_from(range.start).unwrap()..usize::try_from(range.end).unwrap()],
            &trailer,
            len,
        )
        .unwrap();

        // Assert
        assert_eq!(decoded.entries[0].id, BlobId::from_bytes([7; 32]));
        assert_eq!(decoded.encode(), table);
        assert!(matches!(
            PackTable::decode(&table[..5], &trailer, len),
            Err(PackError::Truncated { .. })
        ));
    }
}
