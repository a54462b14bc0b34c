//! Entry rules and the byte writer; the decoder checks the same rules.

use super::entry::{EntryContent, FileChunk, TreeEntry, quote};
use super::{TREE_MAGIC, TREE_VERSION, TreeError};
use crate::ids::BlobId;

/// Bits of a mode that a tree stores: permissions plus setuid, setgid and sticky.
pub(crate) const MODE_BITS: u32 = 0o7777;
/// Nanoseconds in a second; a stored nanosecond field is always below this.
pub(crate) const NANOS_PER_SECOND: u32 = 1_000_000_000;

fn invalid(entry: &TreeEntry, problem: String) -> TreeError {
    TreeError::InvalidEntry {
        name: quote(entry.name.as_bytes()),
        problem,
    }
}

fn check_len(entry: &TreeEntry, field: &str, len: usize, max: usize) -> Result<(), TreeError> {
    if len > max {
        return Err(invalid(
            entry,
            format!("{field} is {len} long, more than the format's {max}"),
        ));
    }
    Ok(())
}

/// Checks a file's chunks: none is empty, and their lengths add up to the entry's size.
fn check_chunks(entry: &TreeEntry, chunks: &[FileChunk]) -> Result<(), TreeError> {
    let mut total = 0u64;
    for (position, chunk) in chunks.iter().enumerate() {
        if chunk.len == 0 {
            return Err(invalid(
                entry,
                format!(
                    "chunk {position} of {} has length 0; every chunk holds at least one byte",
                    chunks.len()
                ),
            ));
        }
        total = total.checked_add(u64::from(chunk.len)).ok_or_else(|| {
            invalid(
                entry,
                "chunk lengths add up to more than 2^64 - 1 bytes".to_owned(),
            )
        })?;
    }
    if total != entry.size {
        return Err(invalid(
            entry,
            format!(
                "chunk lengths add up to {total} bytes but the size is {}",
                entry.size
            ),
        ));
    }
    Ok(())
}

/// Checks every rule of the entry layout that the name type does not already guarantee.
pub(crate) fn check_entry(entry: &TreeEntry) -> Result<(), TreeError> {
    if entry.mode & !MODE_BITS != 0 {
        return Err(invalid(
            entry,
            format!(
                "mode {:o} has bits outside 0o7777 (file type bits must be stripped)",
                entry.mode
            ),
        ));
    }
    if entry.mtime.nanos >= NANOS_PER_SECOND {
        return Err(invalid(
            entry,
            format!("mtime nanoseconds {} are not below 1e9", entry.mtime.nanos),
        ));
    }
    check_len(entry, "user name", entry.user.len(), u16::MAX.into())?;
    check_len(entry, "group name", entry.group.len(), u16::MAX.into())?;
    check_len(entry, "xattr count", entry.xattrs.len(), u16::MAX.into())?;
    for (i, xattr) in entry.xattrs.iter().enumerate() {
        if xattr.name.is_empty() {
            return Err(invalid(entry, "an xattr name is empty".to_owned()));
        }
        check_len(entry, "xattr name", xattr.name.len(), u16::MAX.into())?;
        check_len(entry, "xattr value", xattr.value.len(), u32::MAX as usize)?;
        if i > 0 && entry.xattrs[i - 1].name >= xattr.name {
            return Err(invalid(
                entry,
                format!("xattr {:?} is out of order or repeated", quote(&xattr.name)),
            ));
        }
    }
    match &entry.content {
        EntryContent::File { chunks, .. } => {
            check_len(entry, "chunk list", chunks.len(), u32::MAX as usize)?;
            check_chunks(entry, chunks)?;
        }
        EntryContent::Symlink { target } => {
            if target.is_empty() {
                return Err(invalid(entry, "symlink target is empty".to_owned()));
            }
            check_len(entry, "symlink target", target.len(), u32::MAX as usize)?;
        }
        EntryContent::Dir { .. }
        | EntryContent::BlockDevice { .. }
        | EntryContent::CharDevice { .. }
        | EntryContent::Fifo
        | EntryContent::Socket => {}
    }
    Ok(())
}

/// Writes a node header.
pub(crate) fn write_header(out: &mut Vec<u8>, node: u8, count: u32) {
    out.extend_from_slice(&TREE_MAGIC);
    out.push(TREE_VERSION);
    out.push(node);
    out.extend_from_slice(&count.to_le_bytes());
}

// The casts below cannot truncate: `check_entry` bounded every length first.
#[allow(clippy::cast_possible_truncation)]
fn put_u16_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[allow(clippy::cast_possible_truncation)]
fn put_u32_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Checks `entry` and appends its bytes to `out`.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn encode_entry(entry: &TreeEntry, out: &mut Vec<u8>) -> Result<(), TreeError> {
    check_entry(entry)?;
    put_u16_bytes(out, entry.name.as_bytes());
    out.push(entry.kind().as_u8());
    out.extend_from_slice(&entry.mode.to_le_bytes());
    out.extend_from_slice(&entry.uid.to_le_bytes());
    out.extend_from_slice(&entry.gid.to_le_bytes());
    put_u16_bytes(out, &entry.user);
    put_u16_bytes(out, &entry.group);
    out.extend_from_slice(&entry.mtime.seconds.to_le_bytes());
    out.extend_from_slice(&entry.mtime.nanos.to_le_bytes());
    out.extend_from_slice(&entry.size.to_le_bytes());
    out.extend_from_slice(&(entry.xattrs.len() as u16).to_le_bytes());
    for xattr in &entry.xattrs {
        put_u16_bytes(out, &xattr.name);
        put_u32_bytes(out, &xattr.value);
    }
    match &entry.content {
        EntryContent::File { hardlink, chunks } => {
            match hardlink {
                None => out.push(0),
                Some(group) => {
                    out.push(1);
                    out.extend_from_slice(&group.device.to_le_bytes());
                    out.extend_from_slice(&group.inode.to_le_bytes());
                }
            }
            out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
            for chunk in chunks {
                out.extend_from_slice(chunk.id.as_bytes());
                out.extend_from_slice(&chunk.len.to_le_bytes());
            }
        }
        EntryContent::Dir { subtree } => out.extend_from_slice(subtree.as_bytes()),
        EntryContent::Symlink { target } => put_u32_bytes(out, target),
        EntryContent::BlockDevice { rdev } | EntryContent::CharDevice { rdev } => {
            out.extend_from_slice(&rdev.to_le_bytes());
        }
        EntryContent::Fifo | EntryContent::Socket => {}
    }
    Ok(())
}

/// The blob ids an entry points at: its chunks' ids, or its subtree
/// (borrowed from the entry, so collecting a leaf's refs allocates nothing per entry).
pub(crate) fn entry_refs(entry: &TreeEntry) -> impl Iterator<Item = BlobId> + '_ {
    let (chunks, subtree): (&[FileChunk], _) = match &entry.content {
        EntryContent::File { chunks, .. } => (chunks, None),
        EntryContent::Dir { subtree } => (&[], Some(*subtree)),
        _ => (&[], None),
    };
    chunks.iter().map(|chunk| chunk.id).chain(subtree)
}
