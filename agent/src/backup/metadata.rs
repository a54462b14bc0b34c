//! From `lstat` to tree entries: modes, owners (ids and names), times with
//! nanoseconds, extended attributes, symlink targets, device numbers and
//! hard-link groups. Owner names are looked up once per id and cached.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use stowage_protocol::tree::{EntryContent, EntryName, HardlinkGroup, Timestamp, TreeEntry, Xattr};

/// What decides whether a file changed since the last backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Status-change time: catches edits that restore the mtime.
    pub ctime: Timestamp,
    /// Inode number: catches a file replaced by another of the same size and times.
    pub inode: u64,
    /// Device number of its file system.
    pub device: u64,
}

impl FileStamp {
    /// The stamp of `meta`.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime: timestamp(meta.mtime(), meta.mtime_nsec()),
            ctime: timestamp(meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

fn timestamp(seconds: i64, nanos: i64) -> Timestamp {
    Timestamp {
        seconds,
        nanos: u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0),
    }
}

/// Owner and group names by id, looked up once each.
#[derive(Debug, Default)]
pub struct Owners {
    /// uid → user name (empty when unknown).
    users: Mutex<HashMap<u32, Vec<u8>>>,
    /// gid → group name (empty when unknown).
    groups: Mutex<HashMap<u32, Vec<u8>>>,
}

impl Owners {
    /// The user name of `uid`, empty when there is none.
    pub fn user(&self, uid: u32) -> Vec<u8> {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|user| user.name.into_bytes())
                    .unwrap_or_default()
            })
            .clone()
    }

    /// The group name of `gid`, empty when there is none.
    pub fn group(&self, gid: u32) -> Vec<u8> {
        let mut groups = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|group| group.name.into_bytes())
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// The entry for `meta` under `name`, with `content` (whose kind must be
/// the file's). Directories record size 0, so an unchanged directory gives
/// the same tree on every file system.
pub fn entry(
    name: EntryName,
    meta: &Metadata,
    owners: &Owners,
    xattrs: Vec<Xattr>,
    content: EntryContent,
) -> TreeEntry {
    let size = match content {
        EntryContent::Dir { .. } => 0,
        _ => meta.size(),
    };
    TreeEntry {
        name,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        user: owners.user(meta.uid()),
        group: owners.group(meta.gid()),
        mtime: timestamp(meta.mtime(), meta.mtime_nsec()),
        size,
        xattrs,
        content,
    }
}

/// The hard-link group of a regular file with more than one link.
pub fn hardlink(meta: &Metadata) -> Option<HardlinkGroup> {
    (meta.nlink() > 1).then(|| HardlinkGroup {
        device: meta.dev(),
        inode: meta.ino(),
    })
}

/// The content of an entry that is neither a regular file nor a
/// directory: symlink target (raw bytes), device number, or nothing.
///
/// # Errors
///
/// The symlink cannot be read, or its target is empty.
pub fn special_content(path: &Path, meta: &Metadata) -> io::Result<EntryContent> {
    let file_type = meta.file_type();
    Ok(if file_type.is_symlink() {
        let target = std::fs::read_link(path)?.into_os_string().into_vec();
        if target.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "empty symlink target",
            ));
        }
        EntryContent::Symlink { target }
    } else if file_type.is_block_device() {
        EntryContent::BlockDevice { rdev: meta.rdev() }
    } else if file_type.is_char_device() {
        EntryContent::CharDevice { rdev: meta.rdev() }
    } else if file_type.is_fifo() {
        EntryContent::Fifo
    } else {
        EntryContent::Socket
    })
}

use std::os::unix::ffi::OsStringExt;

/// The extended attributes of `path` itself (a symlink's own, not its
/// target's). A file system without xattr support gives none.
///
/// # Errors
///
/// Listing or reading failed for another reason (e.g. permission).
pub fn xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(error) if unsupported(&error) => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut out = Vec::new();
    for name in names {
        match xattr::get(path, &name) {
            Ok(Some(value)) => out.push(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            }),
            Ok(None) => {}
            Err(error) if unsupported(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(out)
}

fn unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::NOTSUP.raw_os_error()
            || code == rustix::io::Errno::NODATA.raw_os_error()
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn an_entry_keeps_mode_owner_and_nanosecond_mtime() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4751)).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        file.set_modified(mtime).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();

        // Act
        let entry = entry(
            EntryName::try_from("f").unwrap(),
            &meta,
            &Owners::default(),
            Vec::new(),
            EntryContent::File {
                hardlink: None,
                chunks: Vec::new(),
            },
        );

        // Assert
        assert_eq!(entry.mode, 0o4751);
        assert_eq!(entry.uid, meta.uid());
        assert_eq!(
            entry.mtime,
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789
            }
        );
        assert_eq!(entry.size, 5);
        if meta.uid() == 0 {
            assert_eq!(entry.user, b"root");
        }
    }

    #[test]
    fn symlink_targets_are_raw_bytes_and_fifos_are_entries() {
        use std::ffi::OsStr;
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9/x"), &link).unwrap();
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert_eq!(
            special_content(&link, &meta).unwrap(),
            EntryContent::Symlink {
                target: b"caf\xe9/x".to_vec()
            }
        );
        let fifo = dir.path().join("p");
        nix_mkfifo(&fifo);
        let meta = std::fs::symlink_metadata(&fifo).unwrap();
        assert_eq!(special_content(&fifo, &meta).unwrap(), EntryContent::Fifo);
    }

    fn nix_mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn hard_linked_files_share_a_group_and_single_files_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(dir.path().join("single"), b"x").unwrap();
        std::fs::hard_link(&a, dir.path().join("b")).unwrap();
        let group_a = hardlink(&std::fs::symlink_metadata(&a).unwrap()).unwrap();
        let group_b = hardlink(&std::fs::symlink_metadata(dir.path().join("b")).unwrap());
        assert_eq!(Some(group_a), group_b);
        assert!(hardlink(&std::fs::symlink_metadata(dir.path().join("single")).unwrap()).is_none());
    }

    #[test]
    fn user_xattrs_are_read_where_the_file_system_supports_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        match xattr::set(&path, "user.note", b"v1") {
            Ok(()) => {
                let got = xattrs(&path).unwrap();
                assert!(got.contains(&Xattr {
                    name: b"user.note".to_vec(),
                    value: b"v1".to_vec()
                }));
            }
            Err(error) if unsupported(&error) => assert!(xattrs(&path).unwrap().is_empty()),
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn a_stamp_changes_with_the_content_size_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one").unwrap();
        let before = FileStamp::of(&std::fs::symlink_metadata(&path).unwrap());
        std::fs::write(&path, b"three").unwrap();
        let after = FileStamp::of(&std::fs::symlink_metadata(&path).unwrap());
        assert_ne!(before, after);
        assert_eq!(before.inode, after.inode);
    }
}
