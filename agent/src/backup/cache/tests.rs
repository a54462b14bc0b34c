//! Round trips, the known answer, damage and abandoned temporary files.

use std::path::Path;

use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::tree::Timestamp;

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
                chunks: vec![BlobId::from_bytes([1; 32]), BlobId::from_bytes([2; 32])],
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
    assert_eq!(got.file(b"caf\xe9").unwrap().chunks.len(), 2);
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
    assert_eq!(&bytes[..12], b"STWCACHE\x01\x00\x00\x00");
    // header 12, record 4 + payload (52 + 55 + 58 + 2 × 32) + 16, index 8 + 24, footer 64
    assert_eq!(bytes.len(), 357);
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), KNOWN_ANSWER);
}

/// BLAKE3 of the version-1 file above; a change here is a format change.
const KNOWN_ANSWER: &str = "223a18230ae08541fa3344735ca6101268d8f403753280135cc85490ba043597";

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
