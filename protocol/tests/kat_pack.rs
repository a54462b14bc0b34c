//! Known-answer vector for the version-1 pack layout (FORMAT.md § Pack): a
//! small pack with a fixed sealed data key and fixed sealed-blob bytes (the
//! pack layer never looks inside blobs, so they need not open).

mod json_vectors;

use serde_json::json;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::crypto::SealedDataKey;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PackReader, PackTable, PackTrailer, PackWriter, verify_pack_id};

const FILE: &str = "pack_v1.json";

fn sealed_key() -> SealedDataKey {
    let mut bytes = [0u8; 80];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap();
    }
    SealedDataKey::from_bytes(bytes)
}

/// A sealed blob stand-in: a blob header for `kind`, then `len - 5` bytes of `fill`.
fn blob(kind: BlobKind, len: usize, fill: u8) -> Vec<u8> {
    let mut bytes = vec![b'S', b'B', 1, kind.as_u8(), 0];
    bytes.resize(len, fill);
    bytes
}

fn id(byte: u8) -> BlobId {
    BlobId::from_bytes([byte; 32])
}

/// (kind, id, sealed bytes, refs as given to the writer)
fn blobs() -> Vec<(BlobKind, BlobId, Vec<u8>, Vec<BlobId>)> {
    vec![
        (
            BlobKind::Data,
            id(0xa1),
            blob(BlobKind::Data, 50, 0xd1),
            Vec::new(),
        ),
        (
            BlobKind::Tree,
            id(0xb2),
            blob(BlobKind::Tree, 46, 0xe2),
            vec![id(0xa1), id(0x03), id(0xa1)],
        ),
        (
            BlobKind::Data,
            id(0x0c),
            blob(BlobKind::Data, 45, 0xd3),
            Vec::new(),
        ),
    ]
}

fn write() -> (PackId, Vec<u8>) {
    let mut writer = PackWriter::new(&sealed_key());
    for (kind, id, sealed, refs) in blobs() {
        writer.add(kind, id, &sealed, &refs).unwrap();
    }
    writer.finish()
}

#[test]
fn a_written_pack_matches_the_version_1_vector() {
    // Act
    let (pack_id, bytes) = write();

    // Assert
    let actual = json!({ "pack": hex::encode(&bytes), "pack_id": pack_id.to_hex() });
    json_vectors::check(FILE, &actual);
}

#[test]
fn the_vector_pack_parses_to_its_blobs_through_both_read_paths() {
    // Arrange
    let vectors = json_vectors::load(FILE);
    let bytes = json_vectors::hex_field(&vectors, "pack");
    let pack_id: PackId = vectors["pack_id"].as_str().unwrap().parse().unwrap();

    // Act
    let reader = PackReader::parse(&bytes).unwrap();
    let trailer = PackTrailer::decode(&bytes[bytes.len() - 24..]).unwrap();
    let range = trailer.table_range(bytes.len() as u64).unwrap();
    let table = PackTable::decode(
        &bytes[usize::try_from(range.start).unwrap()..usize::try_from(range.end).unwrap()],
        &trailer,
        bytes.len() as u64,
    )
    .unwrap();

    // Assert
    verify_pack_id(&bytes, &pack_id).unwrap();
    assert_eq!(reader.sealed_key(), &sealed_key());
    assert_eq!(reader.table(), &table);
    let expected = blobs();
    assert_eq!(reader.entries().len(), expected.len());
    for ((entry, sealed), (kind, id, want, _)) in reader.blobs().zip(&expected) {
        assert_eq!((entry.kind, entry.id, sealed), (*kind, *id, &want[..]));
    }
    assert_eq!(reader.entries()[1].refs, vec![id(0x03), id(0xa1)]);
}
