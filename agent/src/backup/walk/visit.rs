//! Visiting the tree: listing a directory (settling cached files and
//! special entries on the spot, queueing reads and subdirectories) and
//! reading one file through the sink, with change detection.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use stowage_protocol::tree::{EntryContent, EntryName, Xattr};

use super::{Child, DirNode, Engine, Link, ReadTask, Task};
use crate::backup::cache::CachedFile;
use crate::backup::metadata::{self, FileStamp};
use crate::backup::stats::Stats;

/// Opens a file the scan saw as regular, without following a symlink or
/// blocking on a FIFO that replaced it since; anything but a regular file
/// now is refused.
fn open_regular(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("it is no longer a regular file"))
    }
}

impl Engine<'_> {
    /// Each child comes with its `lstat`, taken through the directory handle
    /// (`fstatat`) for listed children, which spares a path lookup per file.
    fn children(&self, dir: &DirNode) -> Option<Vec<Child>> {
        let cx = self.context;
        if let Some(names) = cx.sources.selected_children(&dir.path) {
            return Some(
                names
                    .iter()
                    .map(|name| {
                        let path = dir.path.join(name);
                        let meta = std::fs::symlink_metadata(&path);
                        (name.clone(), path, meta)
                    })
                    .collect(),
            );
        }
        let listing = match std::fs::read_dir(&dir.path) {
            Ok(listing) => listing,
            Err(error) => {
                cx.stats
                    .unreadable(cx.reporter, &dir.path, &error.to_string());
                return None;
            }
        };
        let mut children = Vec::new();
        for entry in listing {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    if !cx.excludes.is_excluded(&path) {
                        children.push((entry.file_name(), path, entry.metadata()));
                    }
                }
                Err(error) => {
                    cx.stats
                        .unreadable(cx.reporter, &dir.path, &error.to_string());
                }
            }
        }
        Some(children)
    }

    fn xattrs(&self, path: &std::path::Path) -> Vec<Xattr> {
        metadata::xattrs(path).unwrap_or_else(|error| {
            self.context.reporter.warn(&format!(
                "unable to read the extended attributes of {} - {error}",
                path.display()
            ));
            Vec::new()
        })
    }

    pub(super) fn scan(&self, dir: Arc<DirNode>) -> anyhow::Result<()> {
        let cx = self.context;
        let stats = cx.stats;
        let Some(children) = self.children(&dir) else {
            return match &dir.link {
                Some(link) => self.complete(Arc::clone(&link.parent), None, None),
                None => self.complete(dir, None, None),
            };
        };
        let old = cx.old_cache.and_then(|cache| cache.get(&dir.path));
        let mut entries = Vec::new();
        let mut cached = Vec::new();
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for (name, path, meta) in children {
            let meta = match meta {
                Ok(meta) => meta,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && !dir.partial => {
                    continue;
                }
                Err(error) => {
                    stats.unreadable(cx.reporter, &path, &error.to_string());
                    continue;
                }
            };
            let name = match EntryName::new(name.as_bytes()) {
                Ok(name) => name,
                Err(error) => {
                    stats.unreadable(cx.reporter, &path, &error.to_string());
                    continue;
                }
            };
            if meta.is_dir() {
                let xattrs = self.xattrs(&path);
                if cx.one_file_system && !dir.partial && meta.dev() != dir.device {
                    let subtree = self.store_tree(&path, Vec::new(), None)?;
                    let content = EntryContent::Dir { subtree };
                    entries.push(metadata::entry(name, &meta, &self.owners, xattrs, content));
                    continue;
                }
                let device = meta.dev();
                let link = Link {
                    parent: Arc::clone(&dir),
                    name,
                    meta,
                    xattrs,
                };
                let node = DirNode::new(path, Some(link), device, cx.sources);
                subdirs.push(Task::Scan(node));
            } else if meta.is_file() {
                let stamp = FileStamp::of(&meta);
                let known = old.as_ref().and_then(|record| record.file(name.as_bytes()));
                match known {
                    Some(file) if file.stamp == stamp => {
                        let xattrs = self.xattrs(&path);
                        let content = EntryContent::File {
                            hardlink: metadata::hardlink(&meta),
                            chunks: file.chunks.clone(),
                        };
                        entries.push(metadata::entry(name, &meta, &self.owners, xattrs, content));
                        cached.push(file.clone());
                        Stats::bump(&stats.files);
                        Stats::bump(&stats.files_unchanged);
                        Stats::bump(&stats.files_done);
                        Stats::add(&stats.total_bytes, stamp.size);
                        Stats::add(&stats.bytes_done, stamp.size);
                    }
                    known => files.push(Task::Read(Box::new(ReadTask {
                        dir: Arc::clone(&dir),
                        name,
                        path,
                        meta,
                        known: known.is_some(),
                    }))),
                }
            } else {
                match metadata::special_content(&path, &meta) {
                    Ok(content) => {
                        let xattrs = self.xattrs(&path);
                        entries.push(metadata::entry(name, &meta, &self.owners, xattrs, content));
                    }
                    Err(error) => stats.unreadable(cx.reporter, &path, &error.to_string()),
                }
            }
        }
        {
            let mut shared = dir.lock();
            shared.entries.append(&mut entries);
            shared.cached.append(&mut cached);
            shared.pending += files.len() + subdirs.len();
            shared.old_tree = old.map(|record| record.tree);
        }
        files.append(&mut subdirs);
        self.push(files);
        self.complete(dir, None, None)
    }

    pub(super) fn read(&self, task: ReadTask) -> anyhow::Result<()> {
        let cx = self.context;
        let stats = cx.stats;
        let ReadTask {
            dir,
            name,
            path,
            meta,
            known,
        } = task;
        let opened = open_regular(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(error) => {
                Stats::bump(&stats.files_done);
                stats.unreadable(cx.reporter, &path, &error.to_string());
                return self.complete(dir, None, None);
            }
        };
        let mut read = 0u64;
        let stored = cx.sink.store_stream(&mut file, &mut |bytes| {
            read += bytes;
            Stats::add(&stats.bytes_read, bytes);
            Stats::add(&stats.bytes_done, bytes);
        });
        Stats::bump(&stats.files_done);
        let chunks = match stored {
            Ok(chunks) => chunks,
            Err(error) if error.is_read() => {
                stats.unreadable(cx.reporter, &path, &error.to_string());
                return self.complete(dir, None, None);
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("backing up {} failed", path.display())));
            }
        };
        let before = FileStamp::of(&meta);
        let after = file.metadata().ok();
        let unchanged = after.as_ref().is_some_and(|after| {
            let after = FileStamp::of(after);
            after.size == before.size && after.mtime == before.mtime && after.ctime == before.ctime
        }) && read == before.size;
        if !unchanged {
            stats.changed_while_read(cx.reporter, &path);
        }
        Stats::bump(&stats.files);
        Stats::bump(if known {
            &stats.files_changed
        } else {
            &stats.files_new
        });
        Stats::add(&stats.total_bytes, read);
        let xattrs = self.xattrs(&path);
        let shown = if unchanged {
            &meta
        } else {
            after.as_ref().unwrap_or(&meta)
        };
        let content = EntryContent::File {
            hardlink: metadata::hardlink(shown),
            chunks: chunks.clone(),
        };
        let mut entry = metadata::entry(name.clone(), shown, &self.owners, xattrs, content);
        entry.size = read;
        let cached = unchanged.then(|| CachedFile {
            name: name.into_bytes(),
            stamp: before,
            chunks,
        });
        self.complete(dir, Some(entry), cached)
    }
}
