//! Whole restore tests against real sealed chunks and trees, served by the
//! reader's stand-in server.

use std::sync::Arc;

use stowage_protocol::blob::BlobKind;
use stowage_protocol::crypto::TenantKeys;
use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::tree::{
    EntryContent, EntryName, FileChunk, Timestamp, TreeBuilder, TreeEntry,
};

use super::{RestoreTestOptions, run};
use crate::reader::tests::{Store, pack, reader, serve};
use crate::tally::Tally;

fn entry(name: &str, size: u64, content: EntryContent) -> TreeEntry {
    TreeEntry {
        name: EntryName::try_from(name).unwrap(),
        mode: 0o644,
        uid: 0,
        gid: 0,
        user: Vec::new(),
        group: Vec::new(),
        mtime: Timestamp::default(),
        size,
        xattrs: Vec::new(),
        content,
    }
}

/// A snapshot of `docs/` holding files of these sizes (in 4000-byte
/// chunks), stored in `store`; returns the root tree.
fn snapshot(store: &mut Store, keys: &TenantKeys, sizes: &[usize]) -> BlobId {
    let mut files = TreeBuilder::new();
    let mut data = Vec::new();
    for (n, size) in sizes.iter().enumerate() {
        let content: Vec<u8> = (0..*size)
            .map(|i| u8::try_from((i * 7 + n) % 256).unwrap())
            .collect();
        let chunks = content
            .chunks(4000)
            .map(|part| {
                data.push((BlobKind::Data, part.to_vec()));
                FileChunk {
                    id: keys.id_key.chunk_id(part),
                    len: u32::try_from(part.len()).unwrap(),
                }
            })
            .collect();
        let file = EntryContent::File {
            hardlink: None,
            chunks,
        };
        files.push(entry(&format!("file-{n}"), *size as u64, file));
    }
    pack(store, keys, &data);
    let docs = files.build_keyed(&keys.id_key).unwrap();
    let mut root = TreeBuilder::new();
    let subtree = docs.root;
    root.push(entry("docs", 0, EntryContent::Dir { subtree }));
    let root = root.build_keyed(&keys.id_key).unwrap();
    let trees: Vec<_> = docs
        .blobs
        .iter()
        .chain(&root.blobs)
        .map(|b| (BlobKind::Tree, b.plaintext.clone()))
        .collect();
    pack(store, keys, &trees);
    root.root
}

fn options(scratch: &std::path::Path, max_bytes: Option<u64>) -> RestoreTestOptions {
    RestoreTestOptions {
        scratch_root: scratch.to_path_buf(),
        name: "stowage-restore-test-job".to_owned(),
        max_bytes,
        seed: 42,
    }
}

#[tokio::test]
async fn a_whole_snapshot_is_restored_checked_reported_and_deleted() {
    // Arrange
    let keys = TenantKeys::generate();
    let mut store = Store::default();
    let root = snapshot(&mut store, &keys, &[10_000, 1, 0, 8000]);
    let (url, _) = serve(store).await;
    let scratch = tempfile::tempdir().unwrap();
    let tally = Arc::new(Tally::default());
    let id = SnapshotId::from_bytes([9; 32]);
    // Act
    let outcome = run(
        &reader(&url, &keys),
        id,
        root,
        &options(scratch.path(), None),
        Arc::clone(&tally),
    )
    .await;
    // Assert
    assert_eq!(outcome.error, None, "{}", outcome.log);
    let report = outcome.report;
    assert_eq!(
        (report.snapshot, report.files, report.bytes, report.sampled),
        (id, 4, 18_001, false)
    );
    assert_eq!(
        tally.bytes(),
        2 * 18_001,
        "each byte written, then read back"
    );
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "the copy is gone"
    );
}

#[tokio::test]
async fn a_capped_test_restores_and_checks_a_sample_under_the_cap() {
    // Arrange
    let keys = TenantKeys::generate();
    let mut store = Store::default();
    let root = snapshot(&mut store, &keys, &[5000, 5000, 5000, 5000, 5000, 5000]);
    let (url, _) = serve(store).await;
    let scratch = tempfile::tempdir().unwrap();
    let id = SnapshotId::from_bytes([9; 32]);
    // Act
    let capped = options(scratch.path(), Some(12_000));
    let outcome = run(&reader(&url, &keys), id, root, &capped, Arc::default()).await;
    // Assert
    assert_eq!(outcome.error, None, "{}", outcome.log);
    assert_eq!(
        (
            outcome.report.files,
            outcome.report.bytes,
            outcome.report.sampled
        ),
        (2, 10_000, true)
    );
}

#[tokio::test]
async fn a_restore_that_cannot_read_its_chunks_fails_still_reports_and_deletes_the_copy() {
    // Arrange: the trees are there, the data pack is not.
    let keys = TenantKeys::generate();
    let mut store = Store::default();
    let root = snapshot(&mut store, &keys, &[10_000]);
    let data_pack = store
        .index
        .values()
        .find(|location| location.kind == BlobKind::Data)
        .unwrap()
        .pack_id;
    store.packs.remove(&data_pack);
    let (url, _) = serve(store).await;
    let scratch = tempfile::tempdir().unwrap();
    let id = SnapshotId::from_bytes([9; 32]);
    // Act
    let outcome = run(
        &reader(&url, &keys),
        id,
        root,
        &options(scratch.path(), None),
        Arc::default(),
    )
    .await;
    // Assert
    let error = outcome.error.expect("the test fails");
    assert!(
        error.contains("left 1 entries not restored") && error.contains("docs/file-0"),
        "{error}"
    );
    assert_eq!((outcome.report.snapshot, outcome.report.files), (id, 0));
    assert!(
        outcome.log.contains("error: docs/file-0:"),
        "{}",
        outcome.log
    );
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "the copy is gone"
    );
}
