//! Applying an entry's metadata: owner, mode, extended attributes, mtime.
//!
//! Order matters: the owner first (a `chown` clears setuid/setgid bits),
//! then the mode, then xattrs, then the times last (every change before it
//! would move the ctime only, but writing content or xattrs after it would
//! move the mtime).
//!
//! Owners are restored by number, as the backup recorded them (like restic
//! and `tar --numeric-owner`): a restore onto a rebuilt machine usually has
//! the same ids, names can map to different ids on another system, and a
//! name lookup would need the system's user database in the hot path. Owners
//! are only set when running as root; otherwise files belong to whoever
//! restores them, as with `cp`. Access times are set equal to the mtime
//! (the snapshot does not record them).

use std::io;
use std::os::fd::AsFd;

use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use stowage_protocol::tree::TreeEntry;

use super::safe::check_name;

/// Whether this process may give files away (`chown` to any owner).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn times(entry: &TreeEntry) -> Timestamps {
    let time = Timespec {
        tv_sec: entry.mtime.seconds,
        tv_nsec: entry.mtime.nanos.into(),
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

fn owner(entry: &TreeEntry) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(entry.uid)),
        Some(Gid::from_raw(entry.gid)),
    )
}

/// Applies owner (when `chown`), mode, xattrs and mtime to an open file or
/// directory. Xattrs the file system does not support, or refuses to this
/// user, are returned as warnings instead of failing.
///
/// # Errors
///
/// `fchown`, `fchmod` or `futimens` failed.
pub fn apply_fd(fd: impl AsFd, entry: &TreeEntry, chown: bool) -> io::Result<Vec<String>> {
    let fd = fd.as_fd();
    if chown {
        let (uid, gid) = owner(entry);
        rustix::fs::fchown(fd, uid, gid).map_err(|e| with_context(e, "setting the owner"))?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(entry.mode))
        .map_err(|e| with_context(e, "setting the mode"))?;
    let mut warnings = Vec::new();
    for xattr in &entry.xattrs {
        let name = String::from_utf8_lossy(&xattr.name);
        if xattr.name.contains(&0) {
            warnings.push(format!("extended attribute {name:?} has a NUL in its name"));
            continue;
        }
        match rustix::fs::fsetxattr(
            fd,
            std::ffi::OsStr::new(name.as_ref()),
            &xattr.value,
            XattrFlags::empty(),
        ) {
            Ok(()) => {}
            Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS | Errno::NOSPC | Errno::RANGE) => {
                warnings.push(format!("extended attribute {name:?} was not restored"));
            }
            Err(error) => {
                return Err(with_context(
                    error,
                    &format!("setting extended attribute {name:?}"),
                ));
            }
        }
    }
    rustix::fs::futimens(fd, &times(entry))
        .map_err(|e| with_context(e, "setting the modification time"))?;
    Ok(warnings)
}

/// Applies owner (when `chown`) and mtime to the symlink `name` in `dir`,
/// without following it (a symlink has no mode of its own on Linux).
///
/// # Errors
///
/// A bad name, `lchown` or `utimensat` failed.
pub fn apply_symlink(
    dir: impl AsFd,
    name: &[u8],
    entry: &TreeEntry,
    chown: bool,
) -> io::Result<()> {
    let dir = dir.as_fd();
    let name = check_name(name)?;
    if chown {
        let (uid, gid) = owner(entry);
        rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| with_context(e, "setting the owner"))?;
    }
    rustix::fs::utimensat(dir, name, &times(entry), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| with_context(e, "setting the modification time"))?;
    Ok(())
}

/// Applies owner (when `chown`), mode and mtime to a fifo or device node
/// `name` that this restore just made in `dir` (opening one could block, so
/// it is changed by name; the owner and times without following a symlink).
///
/// # Errors
///
/// A bad name, `chownat`, `chmodat` or `utimensat` failed.
pub fn apply_node(dir: impl AsFd, name: &[u8], entry: &TreeEntry, chown: bool) -> io::Result<()> {
    let dir = dir.as_fd();
    let name = check_name(name)?;
    if chown {
        let (uid, gid) = owner(entry);
        rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| with_context(e, "setting the owner"))?;
    }
    rustix::fs::chmodat(dir, name, Mode::from_raw_mode(entry.mode), AtFlags::empty())
        .map_err(|e| with_context(e, "setting the mode"))?;
    rustix::fs::utimensat(dir, name, &times(entry), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| with_context(e, "setting the modification time"))?;
    Ok(())
}

fn with_context(error: Errno, what: &str) -> io::Error {
    let error = io::Error::from(error);
    io::Error::new(error.kind(), format!("{what} - {error}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use stowage_protocol::tree::{EntryContent, EntryName, Timestamp};

    use super::super::safe;
    use super::*;

    fn entry(mode: u32, content: EntryContent) -> TreeEntry {
        TreeEntry {
            name: EntryName::try_from("x").unwrap(),
            mode,
            uid: 4242,
            gid: 4343,
            user: Vec::new(),
            group: Vec::new(),
            mtime: Timestamp {
                seconds: 1_234_567_890,
                nanos: 123_456_789,
            },
            size: 0,
            xattrs: Vec::new(),
            content,
        }
    }

    #[test]
    fn mode_and_nanosecond_mtime_are_applied_to_a_file() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let entry = entry(
            0o4751,
            EntryContent::File {
                hardlink: None,
                chunks: Vec::new(),
            },
        );

        // Act
        let warnings = apply_fd(&file, &entry, running_as_root()).unwrap();

        // Assert
        assert!(warnings.is_empty(), "{warnings:?}");
        let meta = std::fs::symlink_metadata(dir.path().join("f")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o4751);
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_234_567_890, 123_456_789)
        );
        if running_as_root() {
            assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
        }
    }

    #[test]
    fn extended_attributes_are_restored_on_a_file() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let mut entry = entry(
            0o644,
            EntryContent::File {
                hardlink: None,
                chunks: Vec::new(),
            },
        );
        entry.xattrs = vec![stowage_protocol::tree::Xattr {
            name: b"user.comment".to_vec(),
            value: b"kept \x00 binary".to_vec(),
        }];

        // Act
        let warnings = apply_fd(&file, &entry, false).unwrap();

        // Assert
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut value = vec![0u8; 64];
        let len = rustix::fs::fgetxattr(&file, "user.comment", &mut value).unwrap();
        assert_eq!(&value[..len], b"kept \x00 binary");
    }

    #[test]
    fn a_symlinks_own_mtime_is_set_and_its_target_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target_file = dir.path().join("target");
        std::fs::write(&target_file, b"t").unwrap();
        let before = std::fs::metadata(&target_file).unwrap().mtime();
        let root = safe::Target::open(dir.path()).unwrap();
        safe::symlink(root.root(), b"link", b"target").unwrap();
        let entry = entry(
            0o777,
            EntryContent::Symlink {
                target: b"target".to_vec(),
            },
        );

        apply_symlink(root.root(), b"link", &entry, running_as_root()).unwrap();

        let link = std::fs::symlink_metadata(dir.path().join("link")).unwrap();
        assert_eq!(
            (link.mtime(), link.mtime_nsec()),
            (1_234_567_890, 123_456_789)
        );
        assert_eq!(std::fs::metadata(&target_file).unwrap().mtime(), before);
    }

    #[test]
    fn a_fifo_gets_its_mode_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = safe::Target::open(dir.path()).unwrap();
        safe::make_node(root.root(), b"pipe", rustix::fs::FileType::Fifo, 0).unwrap();
        let entry = entry(0o640, EntryContent::Fifo);

        apply_node(root.root(), b"pipe", &entry, running_as_root()).unwrap();

        let meta = std::fs::symlink_metadata(dir.path().join("pipe")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(meta.mtime(), 1_234_567_890);
    }
}
