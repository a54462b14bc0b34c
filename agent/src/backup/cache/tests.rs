//! Round trips, the known answer, damage and abandoned temporary files.

use std::path::Path;

use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::tree::{FileChunk, Timestamp};

use super::writer::temp_path;
use super::*;

fn stamp(size: u64) -> FileStamp {
    FileStamp {
        size,
        mtime: Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        },
        ctime: Timestamp {
            seconds: 1_700_000_001,
            nanos: 6,
        },
        inode: 42,
        device: 7,
    }
}

fn chunk(byte: u8, len: u32) -> FileChunk {
    FileChunk {
        id: BlobId::from_bytes([byte; 32]),
        len,
    }
}

fn record() -> DirRecord {
    DirRecord {
        tree: BlobId::from_bytes([9; 32]),
        files: vec![
            CachedFile {
                name: b"a".to_vec(),
                stamp: stamp(0),
                chunks: vec![],
            },
            CachedFile {
                name: b"caf\xe9".to_vec(),
                stamp: stamp(3),
                chunks: vec![chunk(1, 1), chunk(2, 2)],
            },
        ],
    }
}

#[test]
fn a_committed_cache_reads_back_by_directory_for_its_snapshot_only() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let snapshot = SnapshotId::from_bytes([3; 32]);
    let mut writer = CacheWriter::create(&path).unwrap();
    writer.append(Path::new("/etc"), &record()).unwrap();

    // Act
    writer.commit(&snapshot).unwrap();

    // Assert
    let reader = CacheReader::open(&path, &snapshot).unwrap();
    let got = reader.get(Path::new("/etc")).unwrap();
    assert_eq!(got, record());
    assert_eq!(
        got.file(b"caf\xe9").unwrap().chunks,
        [chunk(1, 1), chunk(2, 2)]
    );
    assert!(got.file(b"b").is_none());
    assert!(reader.get(Path::new("/usr")).is_none());
    let other = CacheReader::open(&path, &SnapshotId::from_bytes([4; 32])).unwrap_err();
    assert!(other.to_string().contains("another snapshot"), "{other}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );
}

#[test]
fn the_format_matches_its_known_answer() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let mut writer = CacheWriter::create(&path).unwrap();
    writer.append(Path::new("/etc"), &record()).unwrap();

    // Act
    writer.commit(&SnapshotId::from_bytes([3; 32])).unwrap();

    // Assert
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..12], b"STWCACHE\x02\x00\x00\x00");
    // header 12, record 4 + payload (52 + 55 + 58 + 2 × 36) + 16, index 8 + 24, footer 64
    assert_eq!(bytes.len(), 365);
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), KNOWN_ANSWER);
}

/// BLAKE3 of the version-2 file above; a change here is a format change.
const KNOWN_ANSWER: &str = "1fe5e5fa7eeed8373aa80adf81113ba86088747f686796a92dbdb1df2b61952c";

/// A complete version-1 cache file of `record()` without lengths for
/// snapshot `[3; 32]`, as builds before version 2 wrote it (its BLAKE3 is the
/// former known answer, 223a1823…).
const VERSION_1_FILE: &str = concat!(
    "535457434143484501000000e5000000b2e91722931a3c37954947fd6cd0492e",
    "0909090909090909090909090909090909090909090909090909090909090909",
    "02000000010061000000000000000000f15365000000000500000001f1536500",
    "000000060000002a000000000000000700000000000000000000000400636166",
    "e9030000000000000000f15365000000000500000001f1536500000000060000",
    "002a000000000000000700000000000000020000000101010101010101010101",
    "0101010101010101010101010101010101010101010202020202020202020202",
    "02020202020202020202020202020202020202020291b7ed5449b8ee857c3606",
    "17dc1d76e50100000000000000b2e91722931a3c37954947fd6cd0492e0c0000",
    "0000000000030303030303030303030303030303030303030303030303030303",
    "0303030303050100000000000034d3cd106fcb527da92f18eb59f9b811535457",
    "4341454e44",
);

#[test]
fn a_version_1_cache_file_is_refused_so_the_backup_reads_every_file_again() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let bytes = hex::decode(VERSION_1_FILE).unwrap();
    assert_eq!(
        blake3::hash(&bytes).to_hex().as_str(),
        "223a18230ae08541fa3344735ca6101268d8f403753280135cc85490ba043597"
    );
    std::fs::write(&path, &bytes).unwrap();

    // Act
    let err = CacheReader::open(&path, &SnapshotId::from_bytes([3; 32])).unwrap_err();

    // Assert: an error the backup turns into "no cache", naming the version.
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "the cache file is version 1; this build reads version 2"
    );
    let mut writer = CacheWriter::create(&path).unwrap();
    writer.append(Path::new("/etc"), &record()).unwrap();
    writer.commit(&SnapshotId::from_bytes([4; 32])).unwrap();
    let replaced = CacheReader::open(&path, &SnapshotId::from_bytes([4; 32])).unwrap();
    assert_eq!(replaced.get(Path::new("/etc")), Some(record()));
}

#[test]
fn a_record_with_an_empty_chunk_or_lengths_not_adding_up_to_the_size_is_a_miss() {
    // Arrange: written as is (the writer trusts the walk), checked on reading.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let snapshot = SnapshotId::from_bytes([3; 32]);
    for chunks in [vec![chunk(1, 2)], vec![chunk(1, 3), chunk(2, 0)]] {
        let mut bad = record();
        bad.files[1].chunks = chunks;
        let mut writer = CacheWriter::create(&path).unwrap();
        writer.append(Path::new("/etc"), &bad).unwrap();
        writer.commit(&snapshot).unwrap();

        // Act
        let reader = CacheReader::open(&path, &snapshot).unwrap();

        // Assert
        assert!(reader.get(Path::new("/etc")).is_none());
    }
}

#[test]
fn a_damaged_record_is_a_miss_and_a_damaged_index_refuses_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let snapshot = SnapshotId::from_bytes([3; 32]);
    let mut writer = CacheWriter::create(&path).unwrap();
    writer.append(Path::new("/etc"), &record()).unwrap();
    writer.commit(&snapshot).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();

    bytes[40] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let reader = CacheReader::open(&path, &snapshot).unwrap();
    assert!(reader.get(Path::new("/etc")).is_none());

    let at = bytes.len() - 70;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(CacheReader::open(&path, &snapshot).is_err());
}

#[test]
fn a_temporary_file_of_a_killed_backup_is_removed_and_a_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let dead = temp_path(&path, u32::MAX);
    let live = temp_path(&path, 1);
    std::fs::write(&dead, b"half").unwrap();
    std::fs::write(&live, b"running").unwrap();
    let writer = CacheWriter::create(&path).unwrap();
    assert!(!dead.exists());
    assert!(live.exists());
    writer.commit(&SnapshotId::from_bytes([1; 32])).unwrap();
}

#[test]
fn an_uncommitted_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = CacheWriter::create(&dir.path().join("c")).unwrap();
    writer.append(Path::new("/etc"), &record()).unwrap();
    drop(writer);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
