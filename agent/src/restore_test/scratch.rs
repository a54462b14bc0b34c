//! The scratch directory a restore test restores into, and its removal.
//!
//! The copy holds the backup's plaintext, so it must not outlive the test:
//! [`Scratch::remove`] deletes it and says if it could not, and dropping a
//! [`Scratch`] that was not removed (the test's future dropped when the job
//! is aborted) deletes it too, as a last resort. Restored directories get
//! their snapshot modes at the end, possibly without write permission, so
//! the removal makes directories writable when a first attempt is refused.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A fresh directory that is deleted when the test is done with it.
#[derive(Debug)]
pub struct Scratch {
    /// The directory.
    path: PathBuf,
    /// Set once [`Scratch::remove`] ran, so Drop does not try again.
    removed: bool,
}

impl Scratch {
    /// Makes `root/name` (and `root` if missing), empty and private (0700);
    /// a leftover of an earlier run of the same name is deleted first.
    ///
    /// # Errors
    ///
    /// The leftover cannot be deleted, or the directory cannot be made.
    pub fn create(root: &Path, name: &str) -> io::Result<Self> {
        let path = root.join(name);
        std::fs::create_dir_all(root)?;
        remove_tree(&path)?;
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self {
            path,
            removed: false,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the directory and everything in it.
    ///
    /// # Errors
    ///
    /// Something in it cannot be deleted; the message names the directory.
    pub fn remove(mut self) -> Result<(), String> {
        self.removed = true;
        remove_tree(&self.path).map_err(|error| {
            format!(
                "the restore test's scratch copy at {} could not be deleted - {error}; delete it \
                 by hand, it holds restored data",
                self.path.display()
            )
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_tree(&self.path);
        }
    }
}

/// Deletes `path` and everything below it; a missing `path` is fine.
fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path)?;
            std::fs::remove_dir_all(path)
        }
        Err(error) => Err(error),
    }
}

/// Gives the owner full access to `dir` and every directory below it
/// (never following symlinks).
fn make_writable(dir: &Path) -> io::Result<()> {
    let mode = std::fs::symlink_metadata(dir)?.permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leftover_of_the_same_name_is_replaced_by_an_empty_private_directory() {
        // Arrange
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("job/old")).unwrap();
        // Act
        let scratch = Scratch::create(root.path(), "job").unwrap();
        // Assert
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
        let mode = std::fs::metadata(scratch.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn removal_deletes_read_only_directories_and_dropping_deletes_too() {
        // Arrange
        let root = tempfile::tempdir().unwrap();
        let first = Scratch::create(root.path(), "one").unwrap();
        let locked = first.path().join("a/b");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::write(locked.join("f"), b"x").unwrap();
        for dir in [locked.as_path(), locked.parent().unwrap()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        }
        let second = Scratch::create(root.path(), "two").unwrap();
        let second_path = second.path().to_path_buf();
        // Act
        let first_path = first.path().to_path_buf();
        first.remove().unwrap();
        drop(second);
        // Assert
        assert!(!first_path.exists());
        assert!(!second_path.exists());
    }
}
