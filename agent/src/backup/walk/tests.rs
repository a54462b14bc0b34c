//! The walk on real temporary directories, through an in-memory sink.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::tree::{EntryContent, TreeEntry, TreeNode};

use super::{WalkContext, walk};
use crate::backup::cache::{CacheReader, CacheWriter};
use crate::backup::exclude::Excludes;
use crate::backup::progress::Reporter;
use crate::backup::sink::memory::MemorySink;
use crate::backup::source::Sources;
use crate::backup::stats::Stats;

/// One walk's result.
struct Run {
    root: BlobId,
    stats: Stats,
}

struct Setup<'a> {
    sink: &'a MemorySink,
    paths: Vec<PathBuf>,
    excludes: Excludes,
    old_cache: Option<&'a CacheReader>,
    new_cache: Option<CacheWriter>,
    readers: usize,
    one_file_system: bool,
}

impl<'a> Setup<'a> {
    fn new(sink: &'a MemorySink, paths: &[&Path]) -> Self {
        Self {
            sink,
            paths: paths.iter().map(|path| path.to_path_buf()).collect(),
            excludes: Excludes::none(),
            old_cache: None,
            new_cache: None,
            readers: 4,
            one_file_system: false,
        }
    }

    fn run(self) -> (Run, Option<CacheWriter>) {
        let sources = Sources::resolve(&self.paths, Path::new("/")).unwrap();
        let stats = Stats::default();
        let reporter = Reporter::new(false);
        let new_cache = Mutex::new(self.new_cache);
        let context = WalkContext {
            sink: self.sink,
            id_key: &self.sink.key,
            sources: &sources,
            excludes: &self.excludes,
            old_cache: self.old_cache,
            new_cache: &new_cache,
            stats: &stats,
            reporter: &reporter,
            readers: self.readers,
            one_file_system: self.one_file_system,
        };
        let root = walk(&context).unwrap();
        (Run { root, stats }, new_cache.into_inner().unwrap())
    }
}

fn entries(sink: &MemorySink, tree: BlobId) -> Vec<TreeEntry> {
    let trees = sink.trees.lock().unwrap();
    match TreeNode::decode(&trees[&tree]).unwrap() {
        TreeNode::Leaf(entries) => entries,
        TreeNode::Index(parts) => {
            drop(trees);
            parts
                .into_iter()
                .flat_map(|part| entries(sink, part))
                .collect()
        }
    }
}

/// The entries of the directory at absolute `path` in the snapshot.
fn dir_at(sink: &MemorySink, root: BlobId, path: &Path) -> Vec<TreeEntry> {
    let mut tree = root;
    for name in path.iter().skip(1) {
        let entry = entries(sink, tree)
            .into_iter()
            .find(|entry| entry.name.as_bytes() == name.as_bytes())
            .unwrap_or_else(|| panic!("{name:?} missing under {}", path.display()));
        let EntryContent::Dir { subtree } = entry.content else {
            panic!("{name:?} is not a directory");
        };
        tree = subtree;
    }
    entries(sink, tree)
}

fn find<'e>(entries: &'e [TreeEntry], name: &[u8]) -> &'e TreeEntry {
    entries
        .iter()
        .find(|entry| entry.name.as_bytes() == name)
        .unwrap_or_else(|| panic!("no entry {:?}", String::from_utf8_lossy(name)))
}

fn content(sink: &MemorySink, entry: &TreeEntry) -> Vec<u8> {
    let EntryContent::File { chunks, .. } = &entry.content else {
        panic!("{} is not a file", entry.name);
    };
    let stored = sink.chunks.lock().unwrap();
    chunks
        .iter()
        .flat_map(|chunk| stored[&chunk.id].clone())
        .collect()
}

fn sample_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("small"), b"hello").unwrap();
    std::fs::write(dir.join("big"), vec![7u8; 300 * 1024]).unwrap();
    std::fs::write(dir.join("sub/deeper/leaf"), b"leaf").unwrap();
    std::fs::write(dir.join(OsStr::from_bytes(b"caf\xe9")), b"latin-1").unwrap();
    std::fs::write(dir.join("zero"), b"").unwrap();
    std::os::unix::fs::symlink("small", dir.join("link")).unwrap();
    std::fs::hard_link(dir.join("small"), dir.join("sub/hard")).unwrap();
}

#[test]
fn a_walk_keeps_contents_dirs_symlinks_hard_links_and_non_utf8_names() {
    // Arrange
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    sample_tree(&dir);
    let sink = MemorySink::new();

    // Act
    let (run, _) = Setup::new(&sink, &[&dir]).run();

    // Assert
    let top = dir_at(&sink, run.root, &dir);
    let names: Vec<&[u8]> = top.iter().map(|entry| entry.name.as_bytes()).collect();
    assert_eq!(
        names,
        [
            &b"big"[..],
            b"caf\xe9",
            b"empty",
            b"link",
            b"small",
            b"sub",
            b"zero"
        ]
    );
    assert_eq!(content(&sink, find(&top, b"big")), vec![7u8; 300 * 1024]);
    assert_eq!(content(&sink, find(&top, b"caf\xe9")), b"latin-1");
    assert_eq!(content(&sink, find(&top, b"zero")), b"");
    assert_eq!(
        find(&top, b"link").content,
        EntryContent::Symlink {
            target: b"small".to_vec()
        }
    );
    assert!(dir_at(&sink, run.root, &dir.join("empty")).is_empty());
    let sub = dir_at(&sink, run.root, &dir.join("sub"));
    let (EntryContent::File { hardlink: a, .. }, EntryContent::File { hardlink: b, .. }) =
        (&find(&top, b"small").content, &find(&sub, b"hard").content)
    else {
        panic!("files");
    };
    assert!(a.is_some() && a == b, "{a:?} {b:?}");
    assert_eq!(
        content(
            &sink,
            find(&dir_at(&sink, run.root, &dir.join("sub/deeper")), b"leaf")
        ),
        b"leaf"
    );
    let counts = run.stats.counts();
    assert_eq!(
        (counts.files, counts.files_new, counts.unreadable),
        (6, 6, 0)
    );
    assert_eq!(counts.total_bytes, 5 + 300 * 1024 + 4 + 7 + 5);
}

#[test]
fn the_same_directory_gives_the_same_root_whatever_the_thread_count() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    sample_tree(&dir);
    for i in 0..40 {
        std::fs::write(dir.join(format!("sub/f{i}")), format!("file {i}")).unwrap();
    }
    // The directory's own entries (their subtree ids included), not the
    // snapshot root: the root also carries the metadata of /tmp, whose mtime
    // moves whenever a test running in parallel creates a temporary entry.
    let listings: Vec<Vec<TreeEntry>> = [1, 3, 8]
        .into_iter()
        .map(|readers| {
            let sink = MemorySink::new();
            let mut setup = Setup::new(&sink, &[&dir]);
            setup.readers = readers;
            let root = setup.run().0.root;
            dir_at(&sink, root, &dir)
        })
        .collect();
    assert_eq!(listings[0], listings[1]);
    assert_eq!(listings[0], listings[2]);
}

#[test]
fn with_the_cache_only_changed_files_are_read_and_unchanged_dirs_keep_their_trees() {
    // Arrange: a first walk writes the cache of snapshot S.
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    sample_tree(&dir);
    let cache_path = temp.path().join("cache");
    let snapshot = SnapshotId::from_bytes([5; 32]);
    let sink = MemorySink::new();
    let mut first = Setup::new(&sink, &[&dir]);
    first.new_cache = Some(CacheWriter::create(&cache_path).unwrap());
    let (first, writer) = first.run();
    writer.unwrap().commit(&snapshot).unwrap();
    std::fs::write(dir.join("sub/deeper/leaf"), b"changed leaf").unwrap();
    let reader = CacheReader::open(&cache_path, &snapshot).unwrap();
    let streams_before = sink.streams.load(Ordering::Relaxed);

    // Act
    let mut second = Setup::new(&sink, &[&dir]);
    second.old_cache = Some(&reader);
    let (second, _) = second.run();

    // Assert
    assert_eq!(
        sink.streams.load(Ordering::Relaxed) - streams_before,
        1,
        "only the leaf is read"
    );
    let counts = second.stats.counts();
    assert_eq!(
        (
            counts.files_unchanged,
            counts.files_changed,
            counts.files_new
        ),
        (5, 1, 0)
    );
    assert_eq!(counts.bytes_read, 12);
    assert!(
        counts.dirs_unchanged >= 1 && counts.dirs_changed >= 3,
        "{counts:?}"
    );
    assert_ne!(first.root, second.root);
    let top = dir_at(&sink, second.root, &dir);
    assert_eq!(content(&sink, find(&top, b"big")), vec![7u8; 300 * 1024]);
    let leaf = dir_at(&sink, second.root, &dir.join("sub/deeper"));
    assert_eq!(content(&sink, find(&leaf, b"leaf")), b"changed leaf");
}

#[test]
fn a_cache_of_another_snapshot_is_not_used() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    sample_tree(&dir);
    let cache_path = temp.path().join("cache");
    let sink = MemorySink::new();
    let mut first = Setup::new(&sink, &[&dir]);
    first.new_cache = Some(CacheWriter::create(&cache_path).unwrap());
    first
        .run()
        .1
        .unwrap()
        .commit(&SnapshotId::from_bytes([5; 32]))
        .unwrap();
    assert!(CacheReader::open(&cache_path, &SnapshotId::from_bytes([6; 32])).is_err());
}

#[test]
fn a_walk_asked_to_stop_takes_no_task_and_fails_saying_it_was_stopped() {
    // Arrange
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    sample_tree(&dir);
    let sink = MemorySink::new();
    let sources = Sources::resolve(&[dir], Path::new("/")).unwrap();
    let stats = Stats::default();
    stats.request_stop();
    let reporter = Reporter::new(false);
    let new_cache = Mutex::new(None);
    let context = WalkContext {
        sink: &sink,
        id_key: &sink.key,
        sources: &sources,
        excludes: &Excludes::none(),
        old_cache: None,
        new_cache: &new_cache,
        stats: &stats,
        reporter: &reporter,
        readers: 2,
        one_file_system: false,
    };
    // Act
    let error = walk(&context).unwrap_err();
    // Assert
    assert_eq!(error.to_string(), crate::backup::stats::STOPPED);
    assert_eq!(stats.counts().files, 0, "no file was read after the stop");
}

#[test]
fn excluded_paths_are_left_out() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    sample_tree(&dir);
    let sink = MemorySink::new();
    let mut setup = Setup::new(&sink, &[&dir]);
    setup.excludes = Excludes::new(&["sub".to_owned(), "*ig".to_owned()], &[]).unwrap();
    let (run, _) = setup.run();
    let top = dir_at(&sink, run.root, &dir);
    assert!(
        top.iter()
            .all(|entry| entry.name.as_bytes() != b"sub" && entry.name.as_bytes() != b"big")
    );
    assert_eq!(top.len(), 5);
}

#[test]
fn several_arguments_appear_at_their_absolute_paths() {
    let temp = tempfile::tempdir().unwrap();
    let (a, b) = (temp.path().join("a/x"), temp.path().join("b/x"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("one"), b"1").unwrap();
    std::fs::write(b.join("two"), b"2").unwrap();
    std::fs::write(temp.path().join("a/not-selected"), b"").unwrap();
    let sink = MemorySink::new();
    let (run, _) = Setup::new(&sink, &[&a, &b]).run();
    assert_eq!(dir_at(&sink, run.root, &a)[0].name.as_bytes(), b"one");
    assert_eq!(dir_at(&sink, run.root, &b)[0].name.as_bytes(), b"two");
    assert_eq!(dir_at(&sink, run.root, &temp.path().join("a")).len(), 1);
}

#[test]
fn an_unreadable_file_is_skipped_and_recorded_and_the_rest_is_kept() {
    // /proc/<pid>/mem opens but fails on the first read (EIO).
    let proc_dir = PathBuf::from(format!("/proc/{}", std::process::id()));
    let sink = MemorySink::new();
    let mem = proc_dir.join("mem");
    let status = proc_dir.join("comm");
    let (run, _) = Setup::new(&sink, &[&mem, &status]).run();
    let counts = run.stats.counts();
    assert_eq!(counts.unreadable, 1, "{counts:?}");
    // Readers run in parallel, and a /proc file such as `comm` may also be
    // recorded (as changed while read), so the log's order is not fixed.
    let errors = run.stats.errors();
    assert!(
        errors
            .iter()
            .any(|error| error.path.0 == mem.as_os_str().as_bytes()),
        "{errors:?}"
    );
    let entries = dir_at(&sink, run.root, &proc_dir);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name.as_bytes(), b"comm");
}

#[test]
fn with_one_file_system_a_mount_point_is_kept_as_an_empty_directory() {
    let dev = Path::new("/dev");
    let shm = dev.join("shm");
    let meta = |path: &Path| std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(path).unwrap());
    if !shm.is_dir() || meta(dev) == meta(&shm) {
        return;
    }
    std::fs::write(
        shm.join(format!("stowage-test-{}", std::process::id())),
        b"x",
    )
    .unwrap();
    let sink = MemorySink::new();
    let mut setup = Setup::new(&sink, &[dev]);
    setup.one_file_system = true;
    let (run, _) = setup.run();
    let _ = std::fs::remove_file(shm.join(format!("stowage-test-{}", std::process::id())));
    assert!(dir_at(&sink, run.root, &shm).is_empty());
    let top = dir_at(&sink, run.root, dev);
    assert!(matches!(
        find(&top, b"null").content,
        EntryContent::CharDevice { .. }
    ));
}

/// A sink that appends to a file while "reading" it, as a log being written would.
struct GrowingSink<'a> {
    inner: &'a MemorySink,
    grows: PathBuf,
}

impl crate::backup::sink::BlobSink for GrowingSink<'_> {
    fn store_stream(
        &self,
        reader: &mut dyn std::io::Read,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<stowage_protocol::tree::FileChunk>, crate::upload::UploadError> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.grows)
            .unwrap();
        file.write_all(b" more").unwrap();
        self.inner.store_stream(reader, on_bytes)
    }

    fn store_tree(
        &self,
        tree: stowage_protocol::tree::TreeBlob,
    ) -> Result<(), crate::upload::UploadError> {
        self.inner.store_tree(tree)
    }
}

#[test]
fn a_file_that_changes_while_read_is_reported_kept_and_not_cached() {
    // Arrange
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let log = dir.join("app.log");
    std::fs::write(&log, b"start").unwrap();
    let memory = MemorySink::new();
    let sink = GrowingSink {
        inner: &memory,
        grows: log.clone(),
    };
    let sources = Sources::resolve(std::slice::from_ref(&dir), Path::new("/")).unwrap();
    let stats = Stats::default();
    let cache_path = temp.path().join("cache");
    let new_cache = Mutex::new(Some(CacheWriter::create(&cache_path).unwrap()));
    let reporter = Reporter::new(false);
    let context = WalkContext {
        sink: &sink,
        id_key: &memory.key,
        sources: &sources,
        excludes: &Excludes::none(),
        old_cache: None,
        new_cache: &new_cache,
        stats: &stats,
        reporter: &reporter,
        readers: 2,
        one_file_system: false,
    };

    // Act
    let root = walk(&context).unwrap();

    // Assert
    assert_eq!(stats.counts().changed_while_read, 1);
    assert_eq!(stats.errors()[0].path.0, log.as_os_str().as_bytes());
    assert!(
        stats.errors()[0].message.contains("changed while"),
        "{:?}",
        stats.errors()
    );
    let entries = dir_at(&memory, root, &dir);
    assert_eq!(content(&memory, &entries[0]), b"start more");
    assert_eq!(entries[0].size, 10);
    let snapshot = SnapshotId::from_bytes([1; 32]);
    new_cache
        .into_inner()
        .unwrap()
        .unwrap()
        .commit(&snapshot)
        .unwrap();
    let reader = CacheReader::open(&cache_path, &snapshot).unwrap();
    assert!(
        reader.get(&dir).unwrap().files.is_empty(),
        "a changed file is not cached"
    );
}
