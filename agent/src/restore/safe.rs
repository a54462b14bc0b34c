//! The only way a restore touches the file system: every path is walked
//! from the target directory one component at a time with `openat(…,
//! O_NOFOLLOW | O_DIRECTORY)`, every name is checked again before use, and
//! every entry is created relative to a directory descriptor (`mkdirat`,
//! `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`, `symlinkat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`, `renameat`).
//!
//! So a hostile snapshot cannot write outside the target: names with `/`,
//! NUL, `.` or `..` are refused here even though the tree decoder already
//! refuses them; a symlink — already in the target, or restored a moment
//! ago by this same restore — is never followed, because no path is ever
//! resolved by the kernel across more than one component and none is
//! resolved with symlink following; and a hard link can only be made from a
//! file this restore wrote, found by the same walk.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Flags every directory walk uses: never follow a symlink, only open directories.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Why a name cannot be used as one path component, or `None` when it can.
pub fn name_problem(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name == b"." || name == b".." {
        Some("a \".\" or \"..\" name")
    } else if name.contains(&b'/') {
        Some("a name containing '/'")
    } else if name.contains(&0) {
        Some("a name containing NUL")
    } else {
        None
    }
}

/// Checks one path component.
///
/// # Errors
///
/// `InvalidData` naming the problem.
pub fn check_name(name: &[u8]) -> io::Result<&OsStr> {
    match name_problem(name) {
        None => Ok(OsStr::from_bytes(name)),
        Some(problem) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "refusing {problem} from the snapshot: {:?}",
                String::from_utf8_lossy(name)
            ),
        )),
    }
}

/// The directory a restore writes into, held open by descriptor.
#[derive(Debug)]
pub struct Target {
    root: OwnedFd,
    path: PathBuf,
}

impl Target {
    /// Creates `path` (and its parents) when missing, and opens it. The
    /// target itself is the operator's choice and may be reached through
    /// symlinks; nothing below it is.
    ///
    /// # Errors
    ///
    /// The directory cannot be created or opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            root,
            path: path.to_owned(),
        })
    }

    /// The target's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The target directory's descriptor.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens the directory at `relative` (components joined by `/`, empty
    /// for the target itself), never following a symlink.
    ///
    /// # Errors
    ///
    /// A bad component, or a component that is missing, not a directory, or
    /// a symlink (`ELOOP` / `ENOTDIR`).
    pub fn open_dir(&self, relative: &[u8]) -> io::Result<OwnedFd> {
        let mut dir = self.root.try_clone()?;
        if relative.is_empty() {
            return Ok(dir);
        }
        for name in relative.split(|b| *b == b'/') {
            dir = open_child_dir(&dir, name)?;
        }
        Ok(dir)
    }
}

/// Opens the directory `name` inside `parent`, never following a symlink.
///
/// # Errors
///
/// A bad name, or `name` is missing, not a directory, or a symlink.
pub fn open_child_dir(parent: impl AsFd, name: &[u8]) -> io::Result<OwnedFd> {
    let name = check_name(name)?;
    Ok(rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?)
}

/// What [`ensure_dir`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirOutcome {
    /// The directory was made.
    Created,
    /// A directory was already there and is used as it is.
    Existing,
    /// Something else was there and was removed first (only when allowed).
    Replaced,
}

/// Makes the directory `name` inside `parent` (mode 0700 until its own
/// mode is applied at the end), or uses the directory already there. A
/// non-directory in the way (a file, or a symlink — never followed) is
/// removed when `replace` allows it, and refused otherwise.
///
/// # Errors
///
/// A bad name, a refused or failed removal, or a failed `mkdirat`.
pub fn ensure_dir(parent: impl AsFd, name: &[u8], replace: bool) -> io::Result<DirOutcome> {
    let parent = parent.as_fd();
    let name = check_name(name)?;
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => return Ok(DirOutcome::Created),
        Err(Errno::EXIST) => {}
        Err(error) => return Err(error.into()),
    }
    let existing = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(existing.st_mode) == FileType::Directory {
        return Ok(DirOutcome::Existing);
    }
    if !replace {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it exists in the target and is not a directory (use --overwrite always to replace it)",
        ));
    }
    rustix::fs::unlinkat(parent, name, AtFlags::empty())?;
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))?;
    Ok(DirOutcome::Replaced)
}

/// What is at `name` in `parent` now, without following a symlink; `None` when nothing is.
///
/// # Errors
///
/// A bad name, or `statat` fails for another reason than "not found".
pub fn existing(parent: impl AsFd, name: &[u8]) -> io::Result<Option<rustix::fs::Stat>> {
    let name = check_name(name)?;
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The name a file is written under until it is complete; a leftover one
/// (after a crash) says what it is.
pub fn partial_name(index: usize) -> Vec<u8> {
    format!(".stowage-restore-{}-{index}.partial", std::process::id()).into_bytes()
}

/// Creates a new empty file `name` in `dir` for writing (mode 0600 until
/// its own mode is applied); fails if anything is already there.
///
/// # Errors
///
/// A bad name, `EEXIST`, or another `openat` failure.
pub fn create_file(dir: impl AsFd, name: &[u8]) -> io::Result<std::fs::File> {
    let name = check_name(name)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Opens again, for writing, a partial file this restore created in `dir`
/// and closed to stay under its open-file limit. Never follows a symlink
/// and never blocks on a FIFO put in its place; anything but a regular
/// file there is refused.
///
/// # Errors
///
/// A bad name, the `openat` failure, or `EINVAL` for a non-regular file.
pub fn reopen_file(dir: impl AsFd, name: &[u8]) -> io::Result<std::fs::File> {
    let name = check_name(name)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if !FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is no longer a regular file",
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// Moves `from` to `to` inside `dir`, replacing whatever entry `to` is
/// (a symlink there is replaced, never followed).
///
/// # Errors
///
/// A bad name, or `renameat` fails (e.g. `to` is a non-empty directory).
pub fn rename(dir: impl AsFd, from: &[u8], to: &[u8]) -> io::Result<()> {
    let dir = dir.as_fd();
    let (from, to) = (check_name(from)?, check_name(to)?);
    Ok(rustix::fs::renameat(dir, from, dir, to)?)
}

/// Removes the non-directory `name` from `dir`, if it is there.
///
/// # Errors
///
/// A bad name, or `unlinkat` fails for another reason than "not found".
pub fn remove(dir: impl AsFd, name: &[u8]) -> io::Result<()> {
    let name = check_name(name)?;
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Makes the symlink `name` → `target` in `dir`. The target is stored as
/// is: it is never resolved by the restore.
///
/// # Errors
///
/// A bad name, or `symlinkat` fails (`EEXIST` when something is there).
pub fn symlink(dir: impl AsFd, name: &[u8], target: &[u8]) -> io::Result<()> {
    let name = check_name(name)?;
    if target.is_empty() || target.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "refusing an empty symlink target or one containing NUL",
        ));
    }
    Ok(rustix::fs::symlinkat(OsStr::from_bytes(target), dir, name)?)
}

/// Hard-links `from_name` in `from_dir` as `to_name` in `to_dir`, without
/// following a symlink at `from_name`.
///
/// # Errors
///
/// A bad name, or `linkat` fails.
pub fn hard_link(
    from_dir: impl AsFd,
    from_name: &[u8],
    to_dir: impl AsFd,
    to_name: &[u8],
) -> io::Result<()> {
    let (from, to) = (check_name(from_name)?, check_name(to_name)?);
    Ok(rustix::fs::linkat(
        from_dir,
        from,
        to_dir,
        to,
        AtFlags::empty(),
    )?)
}

/// Makes a fifo or a device node `name` in `dir`.
///
/// # Errors
///
/// A bad name, or `mknodat` fails (devices need root).
pub fn make_node(dir: impl AsFd, name: &[u8], kind: FileType, rdev: u64) -> io::Result<()> {
    let name = check_name(name)?;
    Ok(rustix::fs::mknodat(
        dir,
        name,
        kind,
        Mode::from_raw_mode(0o600),
        rdev,
    )?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink as make_symlink;

    use super::*;

    #[test]
    fn every_hostile_name_is_refused() {
        for name in [&b""[..], b".", b"..", b"a/b", b"/etc", b"a\0b", b"../x"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        for name in [&b"..."[..], b".hidden", b"caf\xe9", b"a b"] {
            assert!(check_name(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn a_symlink_in_the_target_is_never_followed_into_an_outside_directory() {
        // Arrange: target/a -> outside, and a snapshot directory a/x.
        let scratch = tempfile::tempdir().unwrap();
        let outside = scratch.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let target_path = scratch.path().join("target");
        std::fs::create_dir(&target_path).unwrap();
        make_symlink(&outside, target_path.join("a")).unwrap();
        let target = Target::open(&target_path).unwrap();

        // Act
        let kept = ensure_dir(target.root(), b"a", false);
        let opened = target.open_dir(b"a");
        let file = opened
            .as_ref()
            .ok()
            .map(|dir| create_file(dir, b"x").is_ok());

        // Assert
        assert!(
            kept.is_err(),
            "an existing symlink is not used as a directory"
        );
        assert!(opened.is_err(), "the walk does not follow the symlink");
        assert_eq!(file, None);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn replacing_a_symlink_with_a_directory_removes_the_link_not_its_target() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = scratch.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"k").unwrap();
        let target = Target::open(&scratch.path().join("t")).unwrap();
        make_symlink(&outside, target.path().join("a")).unwrap();

        let outcome = ensure_dir(target.root(), b"a", true).unwrap();
        let dir = target.open_dir(b"a").unwrap();
        create_file(&dir, b"x").unwrap();

        assert_eq!(outcome, DirOutcome::Replaced);
        assert!(target.path().join("a/x").is_file());
        assert!(outside.join("keep").is_file());
        assert!(!outside.join("x").exists());
    }

    #[test]
    fn a_file_is_never_created_through_a_symlink_to_a_file() {
        let scratch = tempfile::tempdir().unwrap();
        let victim = scratch.path().join("victim");
        std::fs::write(&victim, b"original").unwrap();
        let target = Target::open(&scratch.path().join("t")).unwrap();
        make_symlink(&victim, target.path().join("f")).unwrap();

        assert!(create_file(target.root(), b"f").is_err());
        let mut file = create_file(target.root(), b"tmp").unwrap();
        io::Write::write_all(&mut file, b"new").unwrap();
        rename(target.root(), b"tmp", b"f").unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"original");
        assert_eq!(std::fs::read(target.path().join("f")).unwrap(), b"new");
    }

    #[test]
    fn a_walk_refuses_dot_dot_and_symlinked_components() {
        let scratch = tempfile::tempdir().unwrap();
        let target = Target::open(&scratch.path().join("t")).unwrap();
        std::fs::create_dir(target.path().join("d")).unwrap();
        make_symlink("/", target.path().join("d/up")).unwrap();
        assert!(target.open_dir(b"d").is_ok());
        for path in [&b"d/.."[..], b"d/up", b"d/up/etc", b"/etc", b"d//x"] {
            assert!(target.open_dir(path).is_err(), "{path:?}");
        }
    }
}
