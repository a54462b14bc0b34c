//! Packs: `PackReader::parse` on arbitrary bytes, and the server's streaming
//! path (`PackTrailer::decode` + `PackTable::decode` on the tail) beside it.
//!
//! Each input is checked twice: as given, and with the trailer's table hash
//! recomputed for the table it points at. The hash is a BLAKE3 prefix the
//! fuzzer cannot solve, so without the second pass every table mutation would
//! stop at `TableHashMismatch` and the entry checks would never be reached.
//!
//! Beyond "no panic", a pack that parses must be what the writer would have
//! produced: blobs tile the space between header and table, every blob header
//! agrees with its entry, and the table re-encodes to its own bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage_protocol::blob::{BlobHeader, BlobKind};
use stowage_protocol::pack::{
    PACK_HEADER_LEN, PACK_TRAILER_LEN, PackError, PackHeader, PackReader, PackTable, PackTrailer,
};

/// The streaming path: trailer from the last 24 bytes, then the table it names.
fn decode_tail(pack: &[u8]) -> Result<(PackTrailer, PackTable), PackError> {
    let pack_len = pack.len() as u64;
    let start = pack
        .len()
        .checked_sub(PACK_TRAILER_LEN)
        .ok_or(PackError::TooShort(pack_len))?;
    let trailer = PackTrailer::decode(&pack[start..])?;
    assert_eq!(
        trailer.encode(),
        pack[start..],
        "a decoded trailer re-encodes to other bytes"
    );
    let range = trailer.table_range(pack_len)?;
    let table_start = usize::try_from(range.start).expect("the range lies inside the pack");
    let table_end = usize::try_from(range.end).expect("the range lies inside the pack");
    assert_eq!(
        table_end, start,
        "the table must end where the trailer starts"
    );
    let table = PackTable::decode(&pack[table_start..table_end], &trailer, pack_len)?;
    Ok((trailer, table))
}

fn check(pack: &[u8]) {
    let header = PackHeader::decode(pack);
    let tail = decode_tail(pack);
    let Ok(reader) = PackReader::parse(pack) else {
        return;
    };

    let header = header.expect("a pack that parses has a valid header");
    assert_eq!(reader.sealed_key(), &header.sealed_key);
    let (trailer, table) = tail.expect("a pack that parses has a valid tail");
    assert_eq!(
        &table,
        reader.table(),
        "the streaming path read another table"
    );

    let mut end = PACK_HEADER_LEN;
    for (entry, sealed) in reader.blobs() {
        assert_eq!(
            entry.offset as usize, end,
            "blob {} is not contiguous",
            entry.id
        );
        assert_eq!(sealed.len(), entry.length as usize);
        assert_eq!(reader.blob_bytes(entry), Some(sealed));
        assert_eq!(reader.find(&entry.id), Some(entry));
        let blob = BlobHeader::parse(&entry.id, sealed).expect("blob headers were checked");
        assert_eq!(blob.kind, entry.kind);
        if entry.kind == BlobKind::Data {
            assert!(entry.refs.is_empty(), "data blob {} has refs", entry.id);
        }
        assert!(
            entry.refs.windows(2).all(|w| w[0] < w[1]),
            "refs not sorted and unique"
        );
        end += sealed.len();
    }
    assert_eq!(
        end as u64, trailer.table_offset,
        "blobs do not end at the table"
    );
    let table_bytes = reader.table().encode();
    assert_eq!(
        table_bytes.as_slice(),
        &pack[end..pack.len() - PACK_TRAILER_LEN],
        "the table re-encodes to other bytes"
    );
    assert_eq!(
        PackTrailer::for_table(&table_bytes, trailer.table_offset),
        trailer
    );
}

/// The input with its trailer's table length and hash made to match the bytes
/// between the claimed table offset and the trailer; `None` when the offset
/// is out of range or nothing would change.
fn with_matching_trailer(pack: &[u8]) -> Option<Vec<u8>> {
    let start = pack.len().checked_sub(PACK_TRAILER_LEN)?;
    let trailer = PackTrailer::decode(&pack[start..]).ok()?;
    let offset = usize::try_from(trailer.table_offset).ok()?;
    if !(PACK_HEADER_LEN..=start).contains(&offset) {
        return None;
    }
    let fixed = PackTrailer::for_table(&pack[offset..start], trailer.table_offset);
    if fixed == trailer {
        return None;
    }
    let mut out = pack.to_vec();
    out[start..].copy_from_slice(&fixed.encode());
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_matching_trailer(data) {
        check(&fixed);
    }
});
