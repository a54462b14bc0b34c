//! The last passes: hard links, then directory metadata, deepest first.
//!
//! Hard links are made after every content is written, from the group's
//! first restored member (found by the same no-follow walk from the target,
//! so a link can only point at a file of this restore, inside the target).
//! Directory modes, owners, xattrs and mtimes go last, children before
//! parents, so neither writing into a directory nor a read-only mode gets
//! in the way, and no later change moves a directory's mtime.

use super::content::FileJob;
use super::prepare::{LinkJob, Primary};
use super::safe::{self, Target};
use super::{Counts, Problems, join, meta};
use stowage_protocol::tree::TreeEntry;

/// Makes the hard links; `written[i]` tells whether file job `i` succeeded.
pub fn link(
    target: &Target,
    files: &[FileJob],
    written: &[bool],
    links: &[LinkJob],
    counts: &mut Counts,
    problems: &mut Problems,
) {
    for (index, link) in links.iter().enumerate() {
        let path = join(&link.dir, &link.name);
        let (from_dir, from_name) = match &link.primary {
            Primary::Job(job) if !written[*job] => {
                let failed = String::from_utf8_lossy(&files[*job].path()).into_owned();
                problems.error(
                    &path,
                    format!("hard link not made: the file it links to ({failed:?}) failed"),
                );
                continue;
            }
            Primary::Job(job) => (files[*job].dir.as_slice(), files[*job].name.as_slice()),
            Primary::Kept(dir, name) => (dir.as_slice(), name.as_slice()),
        };
        let temp = safe::partial_name(usize::MAX - index);
        let made = target.open_dir(from_dir).and_then(|from| {
            let to = target.open_dir(&link.dir)?;
            safe::hard_link(&from, from_name, &to, &temp)?;
            safe::rename(&to, &temp, &link.name).inspect_err(|_| {
                let _ = safe::remove(&to, &temp);
            })
        });
        match made {
            Ok(()) => counts.hardlinks += 1,
            Err(error) => problems.error(&path, format!("hard link not made - {error}")),
        }
    }
}

/// Applies every directory's metadata, children before parents.
pub fn directories(
    target: &Target,
    dirs: &[(Vec<u8>, TreeEntry)],
    chown: bool,
    problems: &mut Problems,
) {
    for (path, entry) in dirs.iter().rev() {
        let applied = target
            .open_dir(path)
            .and_then(|fd| meta::apply_fd(&fd, entry, chown));
        match applied {
            Ok(warnings) => {
                for warning in warnings {
                    problems.warn(path, warning);
                }
            }
            Err(error) => problems.error(path, format!("directory metadata not applied - {error}")),
        }
    }
}
