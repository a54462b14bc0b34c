//! The check after a restore test's restore: every restored byte is read
//! back and compared with the snapshot.
//!
//! A file's size must be the one the snapshot records, and each of its
//! chunks — read back at its offset, of the length the tree records —
//! must hash, under the tenant's id key, to the chunk id the tree records.
//! That is the same keyed hash the backup named the chunk with, so a
//! match means the bytes on disk are the bytes that were backed up, not
//! merely bytes the restore believed it wrote. The first difference fails
//! the check, naming the file and the offset of the chunk that differs.
//!
//! Files are read back with the restored permissions, so a file whose
//! snapshot mode denies its owner reading can be checked only by root (as
//! the service runs); for anyone else it fails the check, named.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use stowage_protocol::crypto::IdKey;

use super::sample::Expected;
use crate::tally::Tally;

/// What the check read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Files that matched the snapshot.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Why a restored file does not match the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file is missing, or cannot be opened.
    #[error("the restored file {path:?} cannot be opened for the check - {source}")]
    Open {
        /// Path relative to the restore target.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Something other than a regular file is at the file's path.
    #[error("the restored file {path:?} is not a regular file")]
    NotAFile {
        /// Path relative to the restore target.
        path: String,
    },
    /// The size differs.
    #[error("the restored file {path:?} is {actual} bytes, but the snapshot records {expected}")]
    Size {
        /// Path relative to the restore target.
        path: String,
        /// The size on disk.
        actual: u64,
        /// The size in the snapshot.
        expected: u64,
    },
    /// A chunk cannot be read back.
    #[error("the restored file {path:?} cannot be read back at offset {offset} - {source}")]
    Read {
        /// Path relative to the restore target.
        path: String,
        /// Where the chunk starts.
        offset: u64,
        /// The cause.
        source: io::Error,
    },
    /// A chunk's bytes are not the snapshot's.
    #[error(
        "the restored file {path:?} differs from the snapshot in the {len} bytes at offset \
         {offset}: they do not hash to the chunk id the snapshot records"
    )]
    Mismatch {
        /// Path relative to the restore target.
        path: String,
        /// Where the chunk starts.
        offset: u64,
        /// The chunk's length.
        len: u32,
    },
}

/// Checks every file of `files` under `target` against the snapshot,
/// counting into `tally` as it goes.
///
/// # Errors
///
/// The first file that cannot be read or does not match; [`Checked`] up to
/// that point is returned with it.
pub fn check_all(
    target: &Path,
    files: &[Expected],
    id_key: &IdKey,
    tally: &Tally,
) -> Result<Checked, (Checked, CheckError)> {
    let mut checked = Checked::default();
    let mut buffer = Vec::new();
    for file in files {
        if let Err(error) = check_file(target, file, id_key, tally, &mut buffer) {
            return Err((checked, error));
        }
        checked.files += 1;
        checked.bytes += file.size;
        tally.add_file();
    }
    Ok(checked)
}

/// Checks one file: its size, then each chunk's keyed hash.
fn check_file(
    target: &Path,
    file: &Expected,
    id_key: &IdKey,
    tally: &Tally,
    buffer: &mut Vec<u8>,
) -> Result<(), CheckError> {
    let path = || String::from_utf8_lossy(&file.path).into_owned();
    let on_disk = full_path(target, &file.path);
    let meta = std::fs::symlink_metadata(&on_disk).map_err(|source| CheckError::Open {
        path: path(),
        source,
    })?;
    if !meta.is_file() {
        return Err(CheckError::NotAFile { path: path() });
    }
    if meta.len() != file.size {
        return Err(CheckError::Size {
            path: path(),
            actual: meta.len(),
            expected: file.size,
        });
    }
    let mut reader = File::open(&on_disk).map_err(|source| CheckError::Open {
        path: path(),
        source,
    })?;
    let mut offset = 0u64;
    for chunk in &file.chunks {
        buffer.resize(chunk.len as usize, 0);
        reader
            .read_exact(buffer)
            .map_err(|source| CheckError::Read {
                path: path(),
                offset,
                source,
            })?;
        if id_key.chunk_id(buffer) != chunk.id {
            return Err(CheckError::Mismatch {
                path: path(),
                offset,
                len: chunk.len,
            });
        }
        offset += u64::from(chunk.len);
        tally.add_bytes(u64::from(chunk.len));
    }
    Ok(())
}

/// `target` joined with a relative snapshot path (raw bytes, `/`-separated).
fn full_path(target: &Path, relative: &[u8]) -> PathBuf {
    target.join(std::ffi::OsStr::from_bytes(relative))
}

#[cfg(test)]
mod tests {
    use stowage_protocol::tree::FileChunk;

    use super::*;

    fn key() -> IdKey {
        IdKey::from_bytes([7; 32])
    }

    /// Writes `content` at `path` under `dir` and describes it as the
    /// snapshot would, in chunks of `chunk` bytes.
    fn restored(dir: &Path, path: &str, content: &[u8], chunk: usize) -> Expected {
        let on_disk = dir.join(path);
        std::fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        std::fs::write(&on_disk, content).unwrap();
        let chunks = content
            .chunks(chunk)
            .map(|part| FileChunk {
                id: key().chunk_id(part),
                len: u32::try_from(part.len()).unwrap(),
            })
            .collect();
        Expected {
            path: path.as_bytes().to_vec(),
            size: content.len() as u64,
            chunks,
        }
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect()
    }

    #[test]
    fn files_identical_to_the_snapshot_pass_and_are_counted() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            restored(dir.path(), "a/one", &content(10_000), 4096),
            restored(dir.path(), "a/b/two", &content(5), 4096),
            restored(dir.path(), "empty", &[], 4096),
        ];
        let tally = Tally::default();
        // Act
        let checked = check_all(dir.path(), &files, &key(), &tally).unwrap();
        // Assert
        assert_eq!(
            checked,
            Checked {
                files: 3,
                bytes: 10_005
            }
        );
        assert_eq!((tally.files(), tally.bytes()), (3, 10_005));
    }

    #[test]
    fn one_changed_byte_fails_naming_the_file_and_the_offset_of_its_chunk() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            restored(dir.path(), "fine", &content(100), 64),
            restored(dir.path(), "sub/damaged", &content(10_000), 4096),
        ];
        let mut bytes = content(10_000);
        bytes[9000] ^= 1;
        std::fs::write(dir.path().join("sub/damaged"), bytes).unwrap();
        // Act
        let (checked, error) =
            check_all(dir.path(), &files, &key(), &Tally::default()).unwrap_err();
        // Assert
        assert_eq!(
            checked,
            Checked {
                files: 1,
                bytes: 100
            }
        );
        assert!(matches!(
            error,
            CheckError::Mismatch {
                offset: 8192,
                len: 1808,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "the restored file \"sub/damaged\" differs from the snapshot in the 1808 bytes at \
             offset 8192: they do not hash to the chunk id the snapshot records"
        );
    }

    #[test]
    fn a_file_of_another_size_or_a_missing_one_fails_naming_it() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let mut short = restored(dir.path(), "short", &content(100), 64);
        short.size = 101;
        let missing = Expected {
            path: b"gone".to_vec(),
            size: 0,
            chunks: Vec::new(),
        };
        // Act
        let size = check_all(dir.path(), &[short], &key(), &Tally::default()).unwrap_err();
        let gone = check_all(dir.path(), &[missing], &key(), &Tally::default()).unwrap_err();
        // Assert
        assert_eq!(
            size.1.to_string(),
            "the restored file \"short\" is 100 bytes, but the snapshot records 101"
        );
        assert!(matches!(gone.1, CheckError::Open { ref path, .. } if path == "gone"));
    }
}
