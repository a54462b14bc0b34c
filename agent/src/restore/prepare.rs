//! The first pass over the walk: directories made (or reused), the
//! `--overwrite` policy decided for every entry, symlinks, fifos and device
//! nodes made, and the list of files to fill and hard links to make.
//!
//! The pass goes depth first and keeps the open descriptors of the
//! directories above the current entry, so every entry is created relative
//! to its parent's descriptor, which was itself opened without following
//! symlinks.
//!
//! `--overwrite if-changed` (the default) skips an existing entry of the
//! same type whose mtime (to the nanosecond) and size match the snapshot,
//! the check restic and rsync make; content is not compared, since that
//! would cost a full read of the target. `never` skips anything that
//! exists; `always` replaces everything (a directory in the way of a file
//! is not removed: that is reported).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{FileType, Mode};
use stowage_protocol::tree::{EntryContent, HardlinkGroup, TreeEntry};

use super::content::FileJob;
use super::safe::{self, DirOutcome, Target};
use super::walk::Node;
use super::{Counts, Problems, meta, split};
use crate::cli::Overwrite;

/// A hard link to make once its group's first member is written.
#[derive(Debug)]
pub struct LinkJob {
    /// Where the link goes: directory and name.
    pub dir: Vec<u8>,
    /// Its name.
    pub name: Vec<u8>,
    /// The member written with content: index into the file jobs, or the
    /// path of a file the policy left in place.
    pub primary: Primary,
}

/// The member of a hard-link group that the others link to.
#[derive(Debug, Clone)]
pub enum Primary {
    /// Written by this restore: index into the file jobs.
    Job(usize),
    /// Already in the target and kept by the overwrite policy (dir, name).
    Kept(Vec<u8>, Vec<u8>),
}

/// What the first pass leaves for the later ones.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Files whose content is to be written, in walk order.
    pub files: Vec<FileJob>,
    /// Hard links to make after the contents.
    pub links: Vec<LinkJob>,
    /// Directories made or reused (path, entry), parents first.
    pub dirs: Vec<(Vec<u8>, TreeEntry)>,
    /// What was done or skipped.
    pub counts: Counts,
    /// What went wrong.
    pub problems: Problems,
}

enum Decision {
    Write,
    Skip,
}

/// Runs the first pass over `nodes` (depth first, parents before children).
pub fn prepare(target: &Target, nodes: Vec<Node>, overwrite: Overwrite, chown: bool) -> Prepared {
    let mut out = Prepared::default();
    let mut blocked = vec![false; nodes.len()];
    let mut stack: Vec<(usize, OwnedFd)> = Vec::new();
    let mut groups: HashMap<HardlinkGroup, Primary> = HashMap::new();
    for (index, node) in nodes.into_iter().enumerate() {
        while stack
            .last()
            .is_some_and(|(top, _)| Some(*top) != node.parent)
        {
            stack.pop();
        }
        if let Some(parent) = node.parent
            && (blocked[parent] || stack.is_empty())
        {
            blocked[index] = true;
            continue;
        }
        let parent = stack.last().map_or(target.root(), |(_, fd)| fd.as_fd());
        let (dir, name) = split(&node.path);
        let (dir, name) = (dir.to_vec(), name.to_vec());
        let entry = node.entry;
        if let EntryContent::Dir { .. } = entry.content {
            match make_dir(parent, &name, overwrite) {
                Ok(fd) => {
                    stack.push((index, fd));
                    out.counts.dirs += 1;
                    out.dirs.push((node.path, entry));
                }
                Err(error) => {
                    blocked[index] = true;
                    out.problems
                        .error(&node.path, format!("directory not restored - {error}"));
                }
            }
            continue;
        }
        let decision = match safe::existing(parent, &name) {
            Ok(existing) => decide(existing.as_ref(), &entry, overwrite),
            Err(error) => {
                out.problems
                    .error(&node.path, format!("cannot be checked - {error}"));
                continue;
            }
        };
        if let EntryContent::File {
            hardlink: Some(group),
            ..
        } = &entry.content
        {
            if let Some(primary) = groups.get(group) {
                match decision {
                    Decision::Skip => out.counts.skipped += 1,
                    Decision::Write => out.links.push(LinkJob {
                        dir,
                        name,
                        primary: primary.clone(),
                    }),
                }
                continue;
            }
            let primary = match decision {
                Decision::Skip => Primary::Kept(dir.clone(), name.clone()),
                Decision::Write => Primary::Job(out.files.len()),
            };
            groups.insert(*group, primary);
        }
        if matches!(decision, Decision::Skip) {
            out.counts.skipped += 1;
            continue;
        }
        if let EntryContent::File { .. } = entry.content {
            out.files.push(FileJob { dir, name, entry });
            continue;
        }
        match make_special(parent, &name, &entry, chown, index) {
            Ok(Some(())) => out.counts.special += 1,
            Ok(None) => out.problems.warn(
                &node.path,
                format!("{:?} not restored (needs root, or a socket)", entry.kind()),
            ),
            Err(error) => out
                .problems
                .error(&node.path, format!("not restored - {error}")),
        }
    }
    out
}

/// Makes or reuses a directory and opens it (writable for the owner until
/// its own mode is applied at the end).
fn make_dir(parent: impl AsFd, name: &[u8], overwrite: Overwrite) -> io::Result<OwnedFd> {
    let parent = parent.as_fd();
    let outcome = safe::ensure_dir(parent, name, overwrite == Overwrite::Always)?;
    let fd = safe::open_child_dir(parent, name)?;
    if outcome == DirOutcome::Existing {
        let mode = rustix::fs::fstat(&fd)?.st_mode & 0o7777;
        if mode & 0o700 != 0o700 {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode | 0o700))?;
        }
    }
    Ok(fd)
}

fn decide(
    existing: Option<&rustix::fs::Stat>,
    entry: &TreeEntry,
    overwrite: Overwrite,
) -> Decision {
    let Some(stat) = existing else {
        return Decision::Write;
    };
    match overwrite {
        Overwrite::Never => Decision::Skip,
        Overwrite::IfChanged if unchanged(stat, entry) => Decision::Skip,
        Overwrite::Always | Overwrite::IfChanged => Decision::Write,
    }
}

/// Same type, same mtime to the nanosecond, and for files and symlinks the same size.
fn unchanged(stat: &rustix::fs::Stat, entry: &TreeEntry) -> bool {
    let kind = FileType::from_raw_mode(stat.st_mode);
    let same_kind = matches!(
        (&entry.content, kind),
        (EntryContent::File { .. }, FileType::RegularFile)
            | (EntryContent::Symlink { .. }, FileType::Symlink)
            | (EntryContent::Fifo, FileType::Fifo)
            | (EntryContent::BlockDevice { .. }, FileType::BlockDevice)
            | (EntryContent::CharDevice { .. }, FileType::CharacterDevice)
    );
    let same_size = match &entry.content {
        EntryContent::File { .. } => u64::try_from(stat.st_size).ok() == Some(entry.size),
        EntryContent::Symlink { target } => {
            u64::try_from(stat.st_size).ok() == Some(target.len() as u64)
        }
        _ => true,
    };
    same_kind
        && same_size
        && stat.st_mtime == entry.mtime.seconds
        && stat.st_mtime_nsec == u64::from(entry.mtime.nanos)
}

/// Makes a symlink, fifo or device node under a temporary name, applies its
/// metadata, and renames it into place (replacing what the policy allows).
/// `Ok(None)` when the entry is not restored here (a device without root, a socket).
fn make_special(
    parent: impl AsFd,
    name: &[u8],
    entry: &TreeEntry,
    chown: bool,
    index: usize,
) -> io::Result<Option<()>> {
    let parent = parent.as_fd();
    let temp = safe::partial_name(index);
    let made = match &entry.content {
        EntryContent::Symlink { target } => safe::symlink(parent, &temp, target)
            .and_then(|()| meta::apply_symlink(parent, &temp, entry, chown)),
        EntryContent::Fifo => safe::make_node(parent, &temp, FileType::Fifo, 0)
            .and_then(|()| meta::apply_node(parent, &temp, entry, chown)),
        EntryContent::BlockDevice { rdev } | EntryContent::CharDevice { rdev } if chown => {
            let kind = if matches!(entry.content, EntryContent::BlockDevice { .. }) {
                FileType::BlockDevice
            } else {
                FileType::CharacterDevice
            };
            safe::make_node(parent, &temp, kind, *rdev)
                .and_then(|()| meta::apply_node(parent, &temp, entry, chown))
        }
        _ => return Ok(None),
    };
    match made.and_then(|()| safe::rename(parent, &temp, name)) {
        Ok(()) => Ok(Some(())),
        Err(error) => {
            let _ = safe::remove(parent, &temp);
            Err(error)
        }
    }
}
