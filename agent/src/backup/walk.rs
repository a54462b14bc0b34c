//! The parallel walk: lists directories, reads changed files through the
//! sink, and builds each directory's tree as soon as its last child is
//! done, bottom-up to the root.
//!
//! Several reader threads share one LIFO stack of tasks ("scan this
//! directory", "read this file"). Scanning a directory pushes its files and
//! then its subdirectories, so threads dive into subdirectories first and
//! scan ahead of the reads; no thread ever waits for a particular
//! directory: the thread that finishes a directory's last child builds and
//! stores its tree and hands the entry to the parent. Files the cache
//! vouches for are settled during the scan without a task.
//!
//! Memory: a directory's entries live until its tree is built, and the stack
//! holds the pending children of the directories on the current paths
//! (depth × width), so memory follows the widest directories, not the
//! number of files; the cache costs about 50 bytes per directory.
//! Trees are deterministic: [`TreeBuilder`] sorts entries, so the same
//! directory gives the same tree id on every run, whatever the thread timing.

use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use stowage_protocol::crypto::IdKey;
use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{EntryContent, EntryName, TreeBuilder, TreeEntry, Xattr};

use super::cache::{CacheReader, CacheWriter, CachedFile, DirRecord};
use super::exclude::Excludes;
use super::metadata::{self, Owners};
use super::progress::Reporter;
use super::sink::BlobSink;
use super::source::{self, Sources};
use super::stats::Stats;

/// Everything the walk reads from and writes to.
pub struct WalkContext<'a> {
    /// Where contents and trees go.
    pub sink: &'a dyn BlobSink,
    /// Names tree blobs.
    pub id_key: &'a IdKey,
    /// What to back up.
    pub sources: &'a Sources,
    /// What to skip.
    pub excludes: &'a Excludes,
    /// The parent snapshot's cache, if usable.
    pub old_cache: Option<&'a CacheReader>,
    /// The cache being written for this snapshot (dropped on a write error).
    pub new_cache: &'a Mutex<Option<CacheWriter>>,
    /// Counters and the error list.
    pub stats: &'a Stats,
    /// Warnings.
    pub reporter: &'a Reporter,
    /// Reader threads.
    pub readers: usize,
    /// Do not descend into directories on another device.
    pub one_file_system: bool,
}

impl std::fmt::Debug for WalkContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkContext")
            .field("sources", self.sources)
            .field("readers", &self.readers)
            .field("one_file_system", &self.one_file_system)
            .finish_non_exhaustive()
    }
}

/// Walks the sources and returns the root tree id.
///
/// # Errors
///
/// A failure of the sink other than a file's read error, or a tree that
/// cannot be built; unreadable files and directories are only recorded.
pub fn walk(cx: &WalkContext<'_>) -> anyhow::Result<BlobId> {
    let root_path = source::root().to_path_buf();
    let root_meta = std::fs::symlink_metadata(&root_path)
        .with_context(|| format!("unable to examine {}", root_path.display()))?;
    let engine = Engine {
        context: cx,
        owners: Owners::default(),
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
    };
    let root = DirNode::new(root_path, None, root_meta.dev(), cx.sources);
    engine.push(vec![Task::Scan(root)]);
    std::thread::scope(|scope| {
        for _ in 0..cx.readers.max(1) {
            scope.spawn(|| engine.work());
        }
    });
    let outcome = engine.lock_queue().outcome.take();
    outcome.unwrap_or_else(|| Err(anyhow::anyhow!("the walk ended without an outcome")))
}

/// A directory being backed up.
struct DirNode {
    /// Its absolute path.
    path: PathBuf,
    /// Its parent, its name there and its own metadata; `None` for the root.
    link: Option<Link>,
    /// Its device, for --one-file-system.
    device: u64,
    /// An ancestor of an argument: only the selected children are backed up.
    partial: bool,
    /// Entries collected so far.
    state: Mutex<DirState>,
}

struct Link {
    parent: Arc<DirNode>,
    name: EntryName,
    meta: Metadata,
    xattrs: Vec<Xattr>,
}

struct DirState {
    entries: Vec<TreeEntry>,
    cached: Vec<CachedFile>,
    /// Children not done yet, plus one for the scan itself.
    pending: usize,
    /// The tree id the cache remembers for this directory.
    old_tree: Option<BlobId>,
}

impl DirNode {
    fn new(path: PathBuf, link: Option<Link>, device: u64, sources: &Sources) -> Arc<Self> {
        Arc::new(Self {
            partial: sources.selected_children(&path).is_some(),
            path,
            link,
            device,
            state: Mutex::new(DirState {
                entries: Vec::new(),
                cached: Vec::new(),
                pending: 1,
                old_tree: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, DirState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A directory child: name, path and `lstat` result.
type Child = (OsString, PathBuf, std::io::Result<Metadata>);

enum Task {
    Scan(Arc<DirNode>),
    Read(Box<ReadTask>),
}

struct ReadTask {
    dir: Arc<DirNode>,
    name: EntryName,
    path: PathBuf,
    meta: Metadata,
    /// The cache knew the file (it changed, rather than being new).
    known: bool,
}

#[derive(Default)]
struct Queue {
    tasks: Vec<Task>,
    active: usize,
    outcome: Option<anyhow::Result<BlobId>>,
}

struct Engine<'a> {
    context: &'a WalkContext<'a>,
    owners: Owners,
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Engine<'_> {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        self.lock_queue().tasks.extend(tasks);
        self.ready.notify_all();
    }

    fn finish(&self, outcome: anyhow::Result<BlobId>) {
        let mut queue = self.lock_queue();
        if queue.outcome.is_none() {
            queue.outcome = Some(outcome);
        }
        drop(queue);
        self.ready.notify_all();
    }

    fn work(&self) {
        loop {
            let task = {
                let mut queue = self.lock_queue();
                loop {
                    if queue.outcome.is_some() {
                        return;
                    }
                    if self.context.stats.stop_requested() {
                        queue.outcome = Some(Err(anyhow::anyhow!(super::stats::STOPPED)));
                        self.ready.notify_all();
                        return;
                    }
                    if let Some(task) = queue.tasks.pop() {
                        queue.active += 1;
                        break task;
                    }
                    if queue.active == 0 {
                        queue.outcome = Some(Err(anyhow::anyhow!(
                            "the walk ran out of work before the root directory was complete"
                        )));
                        self.ready.notify_all();
                        return;
                    }
                    queue = self
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let result = match task {
                Task::Scan(dir) => self.scan(dir),
                Task::Read(read) => self.read(*read),
            };
            if let Err(error) = result {
                self.finish(Err(error));
            }
            let mut queue = self.lock_queue();
            queue.active -= 1;
            let idle = queue.tasks.is_empty();
            drop(queue);
            if idle {
                self.ready.notify_all();
            }
        }
    }

    /// The children to look at: the selection above an argument, else the listing.
    /// Builds and stores a directory's tree, counts it, and records it in the new cache.
    fn store_tree(
        &self,
        path: &std::path::Path,
        entries: Vec<TreeEntry>,
        cached: Option<(Vec<CachedFile>, Option<BlobId>)>,
    ) -> anyhow::Result<BlobId> {
        let cx = self.context;
        let stats = cx.stats;
        let built = entries
            .into_iter()
            .collect::<TreeBuilder>()
            .build_keyed(cx.id_key)
            .with_context(|| format!("unable to build the tree of {}", path.display()))?;
        let root = built.root;
        for blob in built.blobs {
            Stats::bump(&stats.tree_blobs);
            cx.sink
                .store_tree(blob)
                .with_context(|| format!("storing the tree of {} failed", path.display()))?;
        }
        Stats::bump(&stats.dirs);
        let (mut files, old_tree) = cached.unwrap_or_default();
        Stats::bump(match old_tree {
            None => &stats.dirs_new,
            Some(old) if old == root => &stats.dirs_unchanged,
            Some(_) => &stats.dirs_changed,
        });
        let mut new_cache = cx.new_cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(writer) = new_cache.as_mut() {
            files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            if let Err(error) = writer.append(path, &DirRecord { tree: root, files }) {
                cx.reporter.warn(&format!(
                    "unable to write the local cache ({error}); the next backup will read every file"
                ));
                *new_cache = None;
            }
        }
        Ok(root)
    }

    /// Adds a finished child's entry (if any) to `dir`; when it was the last
    /// one, stores `dir`'s tree and carries on with its parent.
    fn complete(
        &self,
        mut dir: Arc<DirNode>,
        mut entry: Option<TreeEntry>,
        mut cached: Option<CachedFile>,
    ) -> anyhow::Result<()> {
        loop {
            let (entries, files, old_tree) = {
                let mut state = dir.lock();
                state.entries.extend(entry.take());
                state.cached.extend(cached.take());
                state.pending -= 1;
                if state.pending > 0 {
                    return Ok(());
                }
                (
                    std::mem::take(&mut state.entries),
                    std::mem::take(&mut state.cached),
                    state.old_tree,
                )
            };
            let subtree = self.store_tree(&dir.path, entries, Some((files, old_tree)))?;
            let Some(link) = &dir.link else {
                self.finish(Ok(subtree));
                return Ok(());
            };
            entry = Some(metadata::entry(
                link.name.clone(),
                &link.meta,
                &self.owners,
                link.xattrs.clone(),
                EntryContent::Dir { subtree },
            ));
            let parent = Arc::clone(&link.parent);
            dir = parent;
        }
    }
}

mod visit;

#[cfg(test)]
mod tests;
