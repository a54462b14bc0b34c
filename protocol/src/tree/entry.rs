//! The parts of a directory entry, as the serializer takes them and the decoder returns them.

use std::fmt;

use super::TreeError;
use crate::ids::BlobId;

/// Longest accepted entry name in bytes (Linux allows 255; other systems more).
pub const MAX_NAME_LEN: usize = 4096;

/// Longest quoted name in error messages.
const MAX_QUOTED_CHARS: usize = 80;

/// Lossy, truncated text of raw name bytes, for error messages.
pub(crate) fn quote(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(MAX_QUOTED_CHARS)
        .collect()
}

/// A file name inside one directory: raw bytes, as the file system gave them.
///
/// Never empty, ".", "..", longer than [`MAX_NAME_LEN`], and never contains
/// '/' or NUL, so a restore can never write outside the directory it is
/// restoring into. Orders by raw bytes, which is the order of entries in a tree.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName(Vec<u8>);

impl EntryName {
    /// Checks and wraps a name.
    ///
    /// # Errors
    ///
    /// [`TreeError::InvalidName`] when the name breaks a rule above.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, TreeError> {
        let bytes = bytes.into();
        let reason = if bytes.is_empty() {
            Some("a name may not be empty")
        } else if bytes == b"." || bytes == b".." {
            Some("\".\" and \"..\" are not names")
        } else if bytes.len() > MAX_NAME_LEN {
            Some("a name may be at most 4096 bytes long")
        } else if bytes.contains(&b'/') {
            Some("a name may not contain '/'")
        } else if bytes.contains(&0) {
            Some("a name may not contain NUL")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(TreeError::InvalidName {
                name: quote(&bytes),
                reason,
            }),
            None => Ok(Self(bytes)),
        }
    }

    /// The raw name bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw name bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Display for EntryName {
    /// Lossy UTF-8, for messages; use [`EntryName::as_bytes`] for anything else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryName({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl TryFrom<&str> for EntryName {
    type Error = TreeError;

    fn try_from(name: &str) -> Result<Self, TreeError> {
        Self::new(name.as_bytes())
    }
}

/// The kind of a directory entry; its byte is stored in every entry.
///
/// Never modify the numbers: they are part of the tree format (versions 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A regular file.
    File = 1,
    /// A directory.
    Dir = 2,
    /// A symbolic link.
    Symlink = 3,
    /// A block device node.
    BlockDevice = 4,
    /// A character device node.
    CharDevice = 5,
    /// A named pipe.
    Fifo = 6,
    /// A Unix domain socket.
    Socket = 7,
}

impl EntryKind {
    /// The kind with this format byte, if any.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::File),
            2 => Some(Self::Dir),
            3 => Some(Self::Symlink),
            4 => Some(Self::BlockDevice),
            5 => Some(Self::CharDevice),
            6 => Some(Self::Fifo),
            7 => Some(Self::Socket),
            _ => None,
        }
    }

    /// The format byte of this kind.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A modification time: seconds since the Unix epoch and nanoseconds (< 10⁹).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z; negative before it.
    pub seconds: i64,
    /// Nanoseconds past `seconds`, always below 1 000 000 000.
    pub nanos: u32,
}

/// One extended attribute; a tree stores them sorted by name, names unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Xattr {
    /// Attribute name, e.g. `user.comment` (1..=65535 bytes).
    pub name: Vec<u8>,
    /// Attribute value (any bytes, up to 4 GiB − 1).
    pub value: Vec<u8>,
}

/// Identifies the set of hard links a file belongs to, so a restore links
/// them again instead of writing the content twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HardlinkGroup {
    /// Device number of the file system the links live on.
    pub device: u64,
    /// Inode number shared by the links.
    pub inode: u64,
}

/// One piece of a file's content: the chunk's id and its plaintext length.
///
/// The lengths are stored so that a restore knows where every chunk starts in
/// its file (the sum of the lengths before it) before opening any chunk, and
/// can therefore write a large file in any order. A tree checks that every
/// length is at least 1 and that a file's lengths add up to its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileChunk {
    /// The data blob holding the chunk.
    pub id: BlobId,
    /// Plaintext bytes in the chunk (at least 1; the chunker's maximum is far below 4 GiB).
    pub len: u32,
}

impl FileChunk {
    /// Bytes one chunk takes in a tree: its id and its u32 length.
    pub const ENCODED_LEN: usize = BlobId::LEN + 4;
}

/// What an entry holds beyond its metadata; its variant is the entry's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryContent {
    /// A regular file: its content as an ordered list of chunks.
    File {
        /// Set when the file had more than one link at backup time.
        hardlink: Option<HardlinkGroup>,
        /// The file's chunks, in order; empty for an empty file. Their
        /// lengths add up to the entry's `size`.
        chunks: Vec<FileChunk>,
    },
    /// A directory: the id of its tree (a leaf or an index).
    Dir {
        /// Root blob of the subdirectory's tree.
        subtree: BlobId,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, raw bytes, never empty.
        target: Vec<u8>,
    },
    /// A block device node.
    BlockDevice {
        /// Device number the node points to.
        rdev: u64,
    },
    /// A character device node.
    CharDevice {
        /// Device number the node points to.
        rdev: u64,
    },
    /// A named pipe.
    Fifo,
    /// A Unix domain socket (restored as an empty placeholder, if at all).
    Socket,
}

impl EntryContent {
    /// The kind this content belongs to.
    pub const fn kind(&self) -> EntryKind {
        match self {
            Self::File { .. } => EntryKind::File,
            Self::Dir { .. } => EntryKind::Dir,
            Self::Symlink { .. } => EntryKind::Symlink,
            Self::BlockDevice { .. } => EntryKind::BlockDevice,
            Self::CharDevice { .. } => EntryKind::CharDevice,
            Self::Fifo => EntryKind::Fifo,
            Self::Socket => EntryKind::Socket,
        }
    }
}

/// One directory entry.
///
/// Serialized layout (version 2, little-endian):
///
/// ```text
/// u16 name length, name bytes
/// u8  kind: 1 file, 2 dir, 3 symlink, 4 block dev, 5 char dev, 6 fifo, 7 socket
/// u32 mode (permission + special bits only: mode & !0o7777 == 0)
/// u32 uid, u32 gid
/// u16 len + user name bytes, u16 len + group name bytes (may be empty)
/// i64 mtime seconds, u32 mtime nanoseconds (< 1e9)
/// u64 size
/// u16 xattr count; each: u16 name len + name (non-empty), u32 value len + value;
///     sorted by name, unique
/// kind-specific:
///   file:    u8 hardlink flag (0 or 1); if 1: u64 device, u64 inode;
///            u32 chunk count + count × (32-byte BlobId, u32 plaintext length);
///            every length ≥ 1, the lengths add up to `size`
///   dir:     32-byte BlobId of the subtree
///   symlink: u32 len + target bytes (non-empty)
///   block/char dev: u64 rdev
///   fifo/socket: nothing
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreeEntry {
    /// The entry's name within its directory.
    pub name: EntryName,
    /// Permission and special bits (setuid, setgid, sticky); the file type lives in `content`.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name at backup time, so a restore on another machine can map it; may be empty.
    pub user: Vec<u8>,
    /// Group name at backup time; may be empty.
    pub group: Vec<u8>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Size in bytes as reported by the file system; for a file, the content
    /// length, which its chunk lengths must add up to.
    pub size: u64,
    /// Extended attributes, sorted by name (the builder sorts them).
    pub xattrs: Vec<Xattr>,
    /// Kind-specific content.
    pub content: EntryContent,
}

impl TreeEntry {
    /// The entry's kind.
    pub const fn kind(&self) -> EntryKind {
        self.content.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_including_non_utf8_bytes_are_accepted() {
        for name in [
            &b"a"[..],
            b"...",
            b".hidden",
            b"caf\xe9",
            &[b'x'; MAX_NAME_LEN],
        ] {
            assert_eq!(EntryName::new(name).unwrap().as_bytes(), name);
        }
    }

    #[test]
    fn names_that_could_escape_or_confuse_a_restore_are_rejected() {
        let long = vec![b'x'; MAX_NAME_LEN + 1];
        for name in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", &long] {
            let err = EntryName::new(name).unwrap_err();
            assert!(matches!(err, TreeError::InvalidName { .. }), "{err}");
        }
    }

    #[test]
    fn names_order_by_raw_bytes() {
        let upper = EntryName::try_from("B").unwrap();
        let lower = EntryName::try_from("a").unwrap();
        assert!(upper < lower);
    }

    #[test]
    fn every_kind_byte_round_trips_and_others_are_unknown() {
        for byte in 0..=255u8 {
            match EntryKind::from_u8(byte) {
                Some(kind) => assert_eq!(kind.as_u8(), byte),
                None => assert!(byte == 0 || byte > 7),
            }
        }
    }
}
