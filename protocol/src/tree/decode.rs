//! The tree decoder: strict, and never allocates from an unchecked count.

use super::encode::check_entry;
use super::entry::{
    EntryContent, EntryKind, EntryName, FileChunk, HardlinkGroup, Timestamp, TreeEntry, Xattr,
    quote,
};
use super::{MAX_LEAF_ENTRIES, NODE_INDEX, NODE_LEAF, TREE_MAGIC, TREE_VERSION, TreeError};
use crate::ids::BlobId;
use crate::wire::Cursor;

/// Smallest possible entry: 1-byte name, a fifo with no names and no xattrs.
pub(crate) const MIN_ENTRY_LEN: usize = 2 + 1 + 1 + 4 + 4 + 4 + 2 + 2 + 8 + 4 + 8 + 2;
/// Smallest possible xattr: 1-byte name, empty value.
const MIN_XATTR_LEN: usize = 2 + 1 + 4;

/// One decoded tree blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeNode {
    /// A run of entries, sorted by name. A directory that was not split is one leaf.
    Leaf(Vec<TreeEntry>),
    /// The ordered ids of the leaves of a split directory (at least two).
    Index(Vec<BlobId>),
}

/// Fails unless `count` items of at least `min_len` bytes can fit in `remaining` bytes.
fn check_count(
    what: &'static str,
    count: usize,
    min_len: usize,
    remaining: usize,
) -> Result<(), TreeError> {
    let max = remaining / min_len;
    if count > max {
        return Err(TreeError::CountTooLarge {
            what,
            count: count as u64,
            max: max as u64,
        });
    }
    Ok(())
}

fn read_blob_id(cursor: &mut Cursor<'_>, what: &'static str) -> Result<BlobId, TreeError> {
    Ok(BlobId::from_bytes(cursor.array(what)?))
}

impl TreeNode {
    /// Decodes and checks one tree plaintext (after the blob was opened).
    ///
    /// # Errors
    ///
    /// The [`TreeError`] of the first failed check: bad magic, version 1
    /// ([`TreeError::PreReleaseVersion1`]) or an unknown version, unknown
    /// node or kind, a length or count beyond the remaining bytes (or a leaf
    /// of more than 4096 entries, an index of fewer than two parts), an
    /// invalid name, unsorted or duplicate names, an entry that breaks a field
    /// rule (an empty chunk, chunk lengths that do not add up to the size…),
    /// or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeError> {
        let mut cursor = Cursor::new(bytes);
        let magic = cursor.array::<4>("tree magic")?;
        if magic != TREE_MAGIC {
            return Err(TreeError::BadMagic { found: magic });
        }
        match cursor.u8("tree version")? {
            TREE_VERSION => {}
            1 => return Err(TreeError::PreReleaseVersion1),
            other => return Err(TreeError::UnsupportedVersion(other)),
        }
        let node = cursor.u8("tree node type")?;
        let count = cursor.u32("tree count")? as usize;
        let decoded = match node {
            NODE_LEAF => Self::Leaf(decode_entries(&mut cursor, count)?),
            NODE_INDEX => Self::Index(decode_parts(&mut cursor, count)?),
            other => return Err(TreeError::UnknownNode(other)),
        };
        if cursor.remaining() != 0 {
            return Err(TreeError::TrailingBytes(cursor.remaining()));
        }
        Ok(decoded)
    }
}

fn decode_parts(cursor: &mut Cursor<'_>, count: usize) -> Result<Vec<BlobId>, TreeError> {
    if count < 2 {
        return Err(TreeError::IndexTooSmall(
            u32::try_from(count).unwrap_or(u32::MAX),
        ));
    }
    check_count("index parts", count, BlobId::LEN, cursor.remaining())?;
    (0..count)
        .map(|_| read_blob_id(cursor, "index part id"))
        .collect()
}

fn decode_entries(cursor: &mut Cursor<'_>, count: usize) -> Result<Vec<TreeEntry>, TreeError> {
    if count > MAX_LEAF_ENTRIES {
        return Err(TreeError::CountTooLarge {
            what: "leaf entries",
            count: count as u64,
            max: MAX_LEAF_ENTRIES as u64,
        });
    }
    check_count("leaf entries", count, MIN_ENTRY_LEN, cursor.remaining())?;
    let mut entries: Vec<TreeEntry> = Vec::with_capacity(count);
    for _ in 0..count {
        let entry = decode_entry(cursor)?;
        if let Some(previous) = entries.last() {
            if previous.name == entry.name {
                return Err(TreeError::DuplicateName(quote(entry.name.as_bytes())));
            }
            if previous.name > entry.name {
                return Err(TreeError::NotSorted {
                    previous: quote(previous.name.as_bytes()),
                    name: quote(entry.name.as_bytes()),
                });
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn decode_entry(cursor: &mut Cursor<'_>) -> Result<TreeEntry, TreeError> {
    let name = EntryName::new(cursor.bytes_u16("entry name")?)?;
    let kind_byte = cursor.u8("entry kind")?;
    let Some(kind) = EntryKind::from_u8(kind_byte) else {
        return Err(TreeError::UnknownKind {
            name: quote(name.as_bytes()),
            kind: kind_byte,
        });
    };
    let mode = cursor.u32("entry mode")?;
    let uid = cursor.u32("entry uid")?;
    let gid = cursor.u32("entry gid")?;
    let user = cursor.bytes_u16("entry user name")?.to_vec();
    let group = cursor.bytes_u16("entry group name")?.to_vec();
    let seconds = cursor.i64("entry mtime seconds")?;
    let nanos = cursor.u32("entry mtime nanoseconds")?;
    let size = cursor.u64("entry size")?;
    let xattr_count = usize::from(cursor.u16("xattr count")?);
    check_count("xattrs", xattr_count, MIN_XATTR_LEN, cursor.remaining())?;
    let mut xattrs = Vec::with_capacity(xattr_count);
    for _ in 0..xattr_count {
        let name = cursor.bytes_u16("xattr name")?.to_vec();
        let value = cursor.bytes_u32("xattr value")?.to_vec();
        xattrs.push(Xattr { name, value });
    }
    let content = decode_content(cursor, kind, &name)?;
    let entry = TreeEntry {
        name,
        mode,
        uid,
        gid,
        user,
        group,
        mtime: Timestamp { seconds, nanos },
        size,
        xattrs,
        content,
    };
    check_entry(&entry)?;
    Ok(entry)
}

fn decode_content(
    cursor: &mut Cursor<'_>,
    kind: EntryKind,
    name: &EntryName,
) -> Result<EntryContent, TreeError> {
    Ok(match kind {
        EntryKind::File => {
            let hardlink = match cursor.u8("hardlink flag")? {
                0 => None,
                1 => Some(HardlinkGroup {
                    device: cursor.u64("hardlink device")?,
                    inode: cursor.u64("hardlink inode")?,
                }),
                flag => {
                    return Err(TreeError::InvalidEntry {
                        name: quote(name.as_bytes()),
                        problem: format!("hardlink flag is {flag}, expected 0 or 1"),
                    });
                }
            };
            let count = cursor.u32("chunk count")? as usize;
            check_count(
                "file chunks",
                count,
                FileChunk::ENCODED_LEN,
                cursor.remaining(),
            )?;
            let chunks = (0..count)
                .map(|_| {
                    Ok(FileChunk {
                        id: read_blob_id(cursor, "chunk id")?,
                        len: cursor.u32("chunk length")?,
                    })
                })
                .collect::<Result<_, TreeError>>()?;
            EntryContent::File { hardlink, chunks }
        }
        EntryKind::Dir => EntryContent::Dir {
            subtree: read_blob_id(cursor, "subtree id")?,
        },
        EntryKind::Symlink => EntryContent::Symlink {
            target: cursor.bytes_u32("symlink target")?.to_vec(),
        },
        EntryKind::BlockDevice => EntryContent::BlockDevice {
            rdev: cursor.u64("device number")?,
        },
        EntryKind::CharDevice => EntryContent::CharDevice {
            rdev: cursor.u64("device number")?,
        },
        EntryKind::Fifo => EntryContent::Fifo,
        EntryKind::Socket => EntryContent::Socket,
    })
}

#[cfg(test)]
mod tests {
    use super::super::encode::{encode_entry, write_header};
    use super::*;

    fn fifo(name: &str) -> TreeEntry {
        TreeEntry {
            name: EntryName::try_from(name).unwrap(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            user: Vec::new(),
            group: Vec::new(),
            mtime: Timestamp::default(),
            size: 0,
            xattrs: Vec::new(),
            content: EntryContent::Fifo,
        }
    }

    /// A leaf written field by field, bypassing the builder's sorting.
    fn raw_leaf(entries: &[TreeEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, NODE_LEAF, u32::try_from(entries.len()).unwrap());
        for entry in entries {
            encode_entry(entry, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn every_truncation_of_a_valid_leaf_is_rejected() {
        let mut file = fifo("f");
        file.content = EntryContent::File {
            hardlink: Some(HardlinkGroup {
                device: 1,
                inode: 2,
            }),
            chunks: vec![FileChunk {
                id: BlobId::from_bytes([3; 32]),
                len: 5,
            }],
        };
        file.size = 5;
        file.xattrs = vec![Xattr {
            name: b"user.x".to_vec(),
            value: b"1".to_vec(),
        }];
        let leaf = raw_leaf(&[fifo("a"), file]);
        assert!(TreeNode::decode(&leaf).is_ok());
        for len in 0..leaf.len() {
            assert!(
                TreeNode::decode(&leaf[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
    }

    #[test]
    fn a_wrong_header_is_rejected_with_its_cause() {
        let leaf = raw_leaf(&[]);
        let mut bad_magic = leaf.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            TreeNode::decode(&bad_magic),
            Err(TreeError::BadMagic { .. })
        ));
        let mut bad_version = leaf.clone();
        bad_version[4] = 3;
        assert_eq!(
            TreeNode::decode(&bad_version),
            Err(TreeError::UnsupportedVersion(3))
        );
        let mut version_1 = leaf.clone();
        version_1[4] = 1;
        assert_eq!(
            TreeNode::decode(&version_1),
            Err(TreeError::PreReleaseVersion1)
        );
        let mut bad_node = leaf.clone();
        bad_node[5] = 3;
        assert_eq!(TreeNode::decode(&bad_node), Err(TreeError::UnknownNode(3)));
        let mut trailing = leaf;
        trailing.push(0);
        assert_eq!(
            TreeNode::decode(&trailing),
            Err(TreeError::TrailingBytes(1))
        );
    }

    #[test]
    fn unsorted_and_duplicate_names_are_rejected() {
        let unsorted = raw_leaf(&[fifo("b"), fifo("a")]);
        assert!(matches!(
            TreeNode::decode(&unsorted),
            Err(TreeError::NotSorted { .. })
        ));
        let duplicate = raw_leaf(&[fifo("a"), fifo("a")]);
        assert_eq!(
            TreeNode::decode(&duplicate),
            Err(TreeError::DuplicateName("a".to_owned()))
        );
    }

    #[test]
    fn a_huge_claimed_count_fails_before_allocating() {
        let mut leaf = raw_leaf(&[fifo("a")]);
        leaf[6..10].copy_from_slice(&4096u32.to_le_bytes());
        assert!(matches!(
            TreeNode::decode(&leaf),
            Err(TreeError::CountTooLarge { count: 4096, .. })
        ));
        leaf[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            TreeNode::decode(&leaf),
            Err(TreeError::CountTooLarge { .. })
        ));
        let mut index = Vec::new();
        write_header(&mut index, NODE_INDEX, u32::MAX);
        assert!(matches!(
            TreeNode::decode(&index),
            Err(TreeError::CountTooLarge { .. })
        ));
    }

    #[test]
    fn an_index_of_fewer_than_two_parts_is_rejected() {
        let mut index = Vec::new();
        write_header(&mut index, NODE_INDEX, 1);
        index.extend_from_slice(&[7; 32]);
        assert_eq!(TreeNode::decode(&index), Err(TreeError::IndexTooSmall(1)));
        index[6] = 2;
        index.extend_from_slice(&[8; 32]);
        let parts = vec![BlobId::from_bytes([7; 32]), BlobId::from_bytes([8; 32])];
        assert_eq!(TreeNode::decode(&index), Ok(TreeNode::Index(parts)));
    }

    #[test]
    fn field_rule_violations_in_stored_bytes_are_rejected() {
        // Byte offsets within a one-entry leaf named "a": header 10, name 3, kind 1.
        let leaf = raw_leaf(&[fifo("a")]);
        let kind_at = 13;
        let mode_at = 14;
        let nanos_at = 14 + 4 + 8 + 4 + 8;
        let mut kind = leaf.clone();
        kind[kind_at] = 8;
        assert!(matches!(
            TreeNode::decode(&kind),
            Err(TreeError::UnknownKind { kind: 8, .. })
        ));
        let mut mode = leaf.clone();
        mode[mode_at + 1] = 0x80;
        assert!(matches!(
            TreeNode::decode(&mode),
            Err(TreeError::InvalidEntry { .. })
        ));
        let mut nanos = leaf.clone();
        nanos[nanos_at..nanos_at + 4].copy_from_slice(&1_000_000_000u32.to_le_bytes());
        assert!(matches!(
            TreeNode::decode(&nanos),
            Err(TreeError::InvalidEntry { .. })
        ));
        let mut slash = leaf;
        slash[12] = b'/';
        assert!(matches!(
            TreeNode::decode(&slash),
            Err(TreeError::InvalidName { .. })
        ));
    }

    #[test]
    fn a_hardlink_flag_other_than_zero_or_one_is_rejected() {
        let mut entry = fifo("a");
        entry.content = EntryContent::File {
            hardlink: None,
            chunks: Vec::new(),
        };
        let mut leaf = raw_leaf(&[entry]);
        let flag_at = leaf.len() - 5;
        leaf[flag_at] = 2;
        assert!(matches!(
            TreeNode::decode(&leaf),
            Err(TreeError::InvalidEntry { .. })
        ));
    }

    /// A leaf of one file entry "f" of `lens.len()` chunks whose lengths are `lens`.
    fn file_leaf(lens: &[u32]) -> Vec<u8> {
        let mut entry = fifo("f");
        let chunks: Vec<FileChunk> = (0u8..)
            .zip(lens)
            .map(|(n, &len)| FileChunk {
                id: BlobId::from_bytes([n; 32]),
                len,
            })
            .collect();
        entry.size = lens.iter().copied().map(u64::from).sum();
        entry.content = EntryContent::File {
            hardlink: None,
            chunks,
        };
        raw_leaf(&[entry])
    }

    /// Overwrites the length of the last chunk of a `file_leaf`.
    fn set_last_len(leaf: &mut [u8], len: u32) {
        let at = leaf.len() - 4;
        leaf[at..].copy_from_slice(&len.to_le_bytes());
    }

    #[test]
    fn chunk_lengths_decode_in_order_next_to_their_ids() {
        let leaf = file_leaf(&[1, 70_000, u32::MAX]);
        let Ok(TreeNode::Leaf(entries)) = TreeNode::decode(&leaf) else {
            panic!("the leaf does not decode");
        };
        let EntryContent::File { chunks, .. } = &entries[0].content else {
            panic!("not a file");
        };
        let lens: Vec<u32> = chunks.iter().map(|chunk| chunk.len).collect();
        assert_eq!(lens, [1, 70_000, u32::MAX]);
        assert_eq!(chunks[2].id, BlobId::from_bytes([2; 32]));
        assert_eq!(entries[0].size, 1 + 70_000 + u64::from(u32::MAX));
    }

    #[test]
    fn a_stored_chunk_of_length_0_is_rejected() {
        // Arrange
        let mut leaf = file_leaf(&[4, 1]);
        set_last_len(&mut leaf, 0);

        // Act
        let err = TreeNode::decode(&leaf).unwrap_err();

        // Assert
        assert_eq!(
            err.to_string(),
            "entry \"f\": chunk 1 of 2 has length 0; every chunk holds at least one byte"
        );
    }

    #[test]
    fn stored_chunk_lengths_that_do_not_add_up_to_the_size_are_rejected() {
        let mut leaf = file_leaf(&[1_048_576, 951_424]);
        assert!(TreeNode::decode(&leaf).is_ok());
        set_last_len(&mut leaf, 951_423);
        let err = TreeNode::decode(&leaf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry \"f\": chunk lengths add up to 1999999 bytes but the size is 2000000"
        );
    }

    /// The count check runs before any chunk is read, so a chunk list cut
    /// short, even inside the last length, fails before allocating.
    #[test]
    fn a_leaf_cut_inside_a_chunk_length_is_rejected() {
        let leaf = file_leaf(&[10, 20]);
        for cut in 1..=4 {
            let err = TreeNode::decode(&leaf[..leaf.len() - cut]).unwrap_err();
            assert_eq!(
                err,
                TreeError::CountTooLarge {
                    what: "file chunks",
                    count: 2,
                    max: 1,
                },
                "cut {cut}"
            );
        }
    }

    #[test]
    fn unsorted_xattrs_in_stored_bytes_are_rejected() {
        let mut entry = fifo("a");
        entry.xattrs = vec![
            Xattr {
                name: b"user.a".to_vec(),
                value: Vec::new(),
            },
            Xattr {
                name: b"user.b".to_vec(),
                value: Vec::new(),
            },
        ];
        let mut leaf = raw_leaf(&[entry]);
        let first = leaf.windows(6).position(|w| w == b"user.a").unwrap();
        leaf[first + 5] = b'c';
        assert!(matches!(
            TreeNode::decode(&leaf),
            Err(TreeError::InvalidEntry { .. })
        ));
    }
}
