//! Restores of hand-made listings into real temporary directories. Every
//! file here is empty, so no chunk is fetched and no server is needed; the
//! download path is covered by the end-to-end tests.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use stowage_protocol::crypto::TenantKeys;
use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{EntryContent, EntryName, HardlinkGroup, Timestamp, TreeEntry};

use super::walk::{Filter, Listing, Node};
use super::{RestoreOptions, Summary, restore_listing};
use crate::api::ServerClient;
use crate::cli::Overwrite;
use crate::reader::RepoReader;
use crate::throttle::Throttle;

fn offline_reader() -> RepoReader {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = reqwest::Client::builder().build().unwrap();
    let client = ServerClient::new(http, &"http://127.0.0.1:9/".parse().unwrap());
    RepoReader::new(
        client,
        TenantKeys::generate(),
        std::sync::Arc::new(Throttle::new(None)),
    )
}

fn entry(name: &str, mode: u32, seconds: i64, content: EntryContent) -> TreeEntry {
    TreeEntry {
        name: EntryName::try_from(name).unwrap(),
        mode,
        uid: 0,
        gid: 0,
        user: Vec::new(),
        group: Vec::new(),
        mtime: Timestamp {
            seconds,
            nanos: 987_654_321,
        },
        size: 0,
        xattrs: Vec::new(),
        content,
    }
}

fn dir(name: &str, mode: u32, seconds: i64) -> TreeEntry {
    let subtree = BlobId::from_bytes([0; 32]);
    entry(name, mode, seconds, EntryContent::Dir { subtree })
}

/// A file entry without content, for tests of anything but its chunks.
pub(crate) fn file(
    name: &str,
    mode: u32,
    seconds: i64,
    hardlink: Option<HardlinkGroup>,
) -> TreeEntry {
    let content = EntryContent::File {
        hardlink,
        chunks: Vec::new(),
    };
    entry(name, mode, seconds, content)
}

fn node(path: &str, parent: Option<usize>, entry: TreeEntry) -> Node {
    Node {
        path: path.as_bytes().to_vec(),
        parent,
        entry,
    }
}

async fn run(nodes: Vec<Node>, target: &Path, overwrite: Overwrite) -> Summary {
    let listing = Listing {
        nodes,
        errors: Vec::new(),
    };
    let options = RestoreOptions {
        overwrite,
        filter: Filter::default(),
        show_progress: false,
        tally: std::sync::Arc::default(),
    };
    restore_listing(&offline_reader(), listing, target, &options, Instant::now())
        .await
        .unwrap()
}

#[tokio::test]
async fn every_kind_of_entry_is_restored_with_its_metadata() {
    // Arrange
    let group = Some(HardlinkGroup {
        device: 1,
        inode: 2,
    });
    let nodes = vec![
        node("d", None, dir("d", 0o750, 1_000_000_001)),
        node(
            "d/empty",
            Some(0),
            file("empty", 0o640, 1_000_000_002, None),
        ),
        node("d/h1", Some(0), file("h1", 0o600, 1_000_000_003, group)),
        node("d/h2", Some(0), file("h2", 0o600, 1_000_000_003, group)),
        node(
            "d/link",
            Some(0),
            entry(
                "link",
                0o777,
                1_000_000_004,
                EntryContent::Symlink {
                    target: b"/etc/passwd".to_vec(),
                },
            ),
        ),
        node(
            "d/pipe",
            Some(0),
            entry("pipe", 0o620, 1_000_000_005, EntryContent::Fifo),
        ),
        node("d/ro", Some(0), dir("ro", 0o555, 1_000_000_006)),
        node("d/ro/f", Some(6), file("f", 0o444, 1_000_000_007, None)),
    ];
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("target");

    // Act
    let summary = run(nodes, &target, Overwrite::IfChanged).await;

    // Assert
    assert!(
        summary.problems.errors.is_empty(),
        "{:?}",
        summary.problems.errors
    );
    assert_eq!(summary.counts.files, 3);
    assert_eq!(summary.counts.hardlinks, 1);
    assert_eq!(summary.counts.dirs, 2);
    let meta = |p: &str| std::fs::symlink_metadata(target.join(p)).unwrap();
    let check = |p: &str, mode: u32, seconds: i64| {
        let m = meta(p);
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{p}");
        assert_eq!((m.mtime(), m.mtime_nsec()), (seconds, 987_654_321), "{p}");
    };
    check("d", 0o750, 1_000_000_001);
    check("d/empty", 0o640, 1_000_000_002);
    check("d/pipe", 0o620, 1_000_000_005);
    check("d/ro", 0o555, 1_000_000_006);
    check("d/ro/f", 0o444, 1_000_000_007);
    assert_eq!(meta("d/h1").ino(), meta("d/h2").ino());
    assert_eq!(meta("d/h1").nlink(), 2);
    assert!(meta("d/pipe").file_type().is_fifo());
    assert_eq!(
        std::fs::read_link(target.join("d/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(meta("d/link").mtime(), 1_000_000_004);
    let leftovers: Vec<_> = std::fs::read_dir(target.join("d"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("stowage")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn a_symlink_in_the_target_never_leads_a_restore_outside_it() {
    // Arrange: target/a -> outside, and a snapshot directory a holding x.
    let scratch = tempfile::tempdir().unwrap();
    let outside = scratch.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = scratch.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("a")).unwrap();
    let nodes = || {
        vec![
            node("a", None, dir("a", 0o755, 1_000_000_000)),
            node("a/x", Some(0), file("x", 0o644, 1_000_000_000, None)),
        ]
    };

    // Act
    let kept = run(nodes(), &target, Overwrite::IfChanged).await;
    let replaced = run(nodes(), &target, Overwrite::Always).await;

    // Assert
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(kept.problems.errors.len(), 1, "{:?}", kept.problems.errors);
    assert!(
        replaced.problems.errors.is_empty(),
        "{:?}",
        replaced.problems.errors
    );
    assert!(target.join("a").symlink_metadata().unwrap().is_dir());
    assert!(target.join("a/x").is_file());
}

#[tokio::test]
async fn overwrite_never_keeps_an_existing_file_and_always_replaces_it() {
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("f"), b"old").unwrap();
    let nodes = || vec![node("f", None, file("f", 0o644, 1_000_000_000, None))];

    let never = run(nodes(), &target, Overwrite::Never).await;
    assert_eq!(never.counts.skipped, 1);
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"old");

    let changed = run(nodes(), &target, Overwrite::IfChanged).await;
    assert_eq!(changed.counts.files, 1);
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"");

    let unchanged = run(nodes(), &target, Overwrite::IfChanged).await;
    assert_eq!(
        unchanged.counts.skipped, 1,
        "same size and mtime: left alone"
    );

    std::fs::write(target.join("f"), b"new").unwrap();
    let always = run(nodes(), &target, Overwrite::Always).await;
    assert_eq!(always.counts.files, 1);
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"");
}
