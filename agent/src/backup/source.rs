//! The paths a backup covers and how they map into the snapshot.
//!
//! Every PATH argument is made absolute (against the working directory)
//! and cleaned lexically (`.` and `..` removed, no symlink resolved), and
//! the snapshot's root tree is the file system root `/`: each argument
//! appears at its full absolute path, its ancestors as directories holding
//! only what leads to an argument (with the real directories' metadata).
//! So `stowage backup /etc /home/ann` gives a root with `etc` and `home`,
//! and `home` holds only `ann`. This is restic's layout: two arguments
//! with the same last component never collide, and a restore puts every
//! path back under its target as `TARGET/etc`, `TARGET/home/ann` (or
//! `SNAPSHOT:/home/ann` picks one). An argument inside another is covered
//! by the outer one and dropped.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use stowage_protocol::snapshot::RawPath;

/// The cleaned absolute arguments and the partial directories above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Absolute, cleaned, sorted, none inside another.
    paths: Vec<PathBuf>,
    /// Ancestors of the arguments: only these children of each are backed up.
    partial: HashMap<PathBuf, BTreeSet<OsString>>,
}

impl Sources {
    /// Resolves the PATH arguments against `cwd` and checks that each exists.
    ///
    /// # Errors
    ///
    /// No paths, or a path that does not exist or cannot be examined (named,
    /// with the OS error) — before anything is uploaded.
    pub fn resolve(args: &[PathBuf], cwd: &Path) -> anyhow::Result<Self> {
        if args.is_empty() {
            anyhow::bail!("no path to back up was given");
        }
        let mut paths = Vec::with_capacity(args.len());
        for arg in args {
            let path = clean(&cwd.join(arg));
            std::fs::symlink_metadata(&path)
                .map_err(|error| anyhow::anyhow!("cannot back up {} - {error}", arg.display()))?;
            paths.push(path);
        }
        paths.sort();
        paths.dedup();
        let outer: Vec<PathBuf> = paths
            .iter()
            .filter(|path| {
                !paths
                    .iter()
                    .any(|other| other != *path && path.starts_with(other))
            })
            .cloned()
            .collect();
        let mut partial: HashMap<PathBuf, BTreeSet<OsString>> = HashMap::new();
        for path in &outer {
            let mut child = path.as_path();
            while let (Some(parent), Some(name)) = (child.parent(), child.file_name()) {
                partial
                    .entry(parent.to_path_buf())
                    .or_default()
                    .insert(name.to_owned());
                child = parent;
            }
        }
        Ok(Self {
            paths: outer,
            partial,
        })
    }

    /// The arguments as the snapshot records them (absolute, cleaned, sorted).
    pub fn record_paths(&self) -> Vec<RawPath> {
        self.paths
            .iter()
            .map(|path| RawPath(path.as_os_str().as_bytes().to_vec()))
            .collect()
    }

    /// The absolute arguments.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// `Some(children)` when `dir` is an ancestor of an argument (only
    /// those children are backed up), `None` when it is inside one (all of it).
    pub fn selected_children(&self, dir: &Path) -> Option<&BTreeSet<OsString>> {
        self.partial.get(dir)
    }
}

/// The root every walk starts at.
pub fn root() -> &'static Path {
    Path::new("/")
}

/// `path` without `.`, `..` (lexically) and repeated separators.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_absolute_cleaned_paths_and_nested_ones_are_dropped() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir_all(dir.path().join("c")).unwrap();

        // Act
        let sources = Sources::resolve(
            &[
                PathBuf::from("c/../a"),
                PathBuf::from("./a/b"),
                dir.path().join("c"),
            ],
            dir.path(),
        )
        .unwrap();

        // Assert
        assert_eq!(
            sources.paths(),
            [dir.path().join("a"), dir.path().join("c")]
        );
        let top = dir.path().components().nth(1).unwrap().as_os_str();
        assert_eq!(
            sources.selected_children(Path::new("/")).unwrap(),
            &BTreeSet::from([top.to_owned()])
        );
        assert_eq!(
            sources.selected_children(dir.path()).unwrap(),
            &BTreeSet::from([OsString::from("a"), OsString::from("c")])
        );
        assert!(sources.selected_children(&dir.path().join("a")).is_none());
    }

    #[test]
    fn a_missing_argument_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = Sources::resolve(&[PathBuf::from("nope")], dir.path()).unwrap_err();
        assert!(err.to_string().contains("cannot back up nope - "), "{err}");
    }

    #[test]
    fn the_file_system_root_as_argument_selects_everything() {
        let sources = Sources::resolve(&[PathBuf::from("/")], Path::new("/tmp")).unwrap();
        assert_eq!(sources.paths(), [PathBuf::from("/")]);
        assert!(sources.selected_children(root()).is_none());
    }
}
