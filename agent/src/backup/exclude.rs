//! `--exclude` and `--exclude-file`: which paths the walk skips.
//!
//! A pattern without `/` matches a file or directory *name* anywhere
//! (`*.tmp`, `node_modules`). A pattern with `/` matches the whole
//! absolute path when it starts with `/` (`/home/*/.cache`), and any
//! trailing part of the path otherwise (`build/*.o`). `*` and `?` never
//! cross a `/`, `**` does; a trailing `/` is ignored. Excluding a
//! directory skips everything below it. The paths given as arguments are
//! never excluded.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The compiled exclude patterns.
#[derive(Debug, Clone)]
pub struct Excludes {
    /// Patterns matched against the last path component.
    names: GlobSet,
    /// Patterns matched against the full path.
    paths: GlobSet,
}

impl Excludes {
    /// Compiles `patterns` (command line first, then each file's lines;
    /// blank lines and `#` comments in files are skipped).
    ///
    /// # Errors
    ///
    /// An unreadable exclude file or an invalid pattern (named).
    pub fn new(patterns: &[String], files: &[PathBuf]) -> anyhow::Result<Self> {
        let mut all: Vec<String> = patterns.to_vec();
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|error| {
                anyhow::anyhow!("unable to read exclude file {} - {error}", file.display())
            })?;
            all.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for pattern in &all {
            let trimmed = pattern.trim_end_matches('/');
            let (set, glob) = if !trimmed.contains('/') {
                (&mut names, trimmed.to_owned())
            } else if trimmed.starts_with('/') {
                (&mut paths, trimmed.to_owned())
            } else {
                (&mut paths, format!("**/{trimmed}"))
            };
            let glob = GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|error| {
                    anyhow::anyhow!("invalid exclude pattern {pattern:?} - {error}")
                })?;
            set.add(glob);
        }
        Ok(Self {
            names: names
                .build()
                .map_err(|error| anyhow::anyhow!("invalid exclude patterns - {error}"))?,
            paths: paths
                .build()
                .map_err(|error| anyhow::anyhow!("invalid exclude patterns - {error}"))?,
        })
    }

    /// No exclusions.
    pub fn none() -> Self {
        Self {
            names: GlobSet::empty(),
            paths: GlobSet::empty(),
        }
    }

    /// Whether the walk skips `path` (absolute).
    pub fn is_excluded(&self, path: &Path) -> bool {
        if self.names.is_empty() && self.paths.is_empty() {
            return false;
        }
        path.file_name()
            .is_some_and(|name| self.names.is_match(Path::new(name)))
            || self.paths.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excludes(patterns: &[&str]) -> Excludes {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        Excludes::new(&patterns, &[]).unwrap()
    }

    #[test]
    fn a_pattern_without_a_slash_matches_names_anywhere() {
        let ex = excludes(&["*.tmp", "node_modules"]);
        assert!(ex.is_excluded(Path::new("/a/b/x.tmp")));
        assert!(ex.is_excluded(Path::new("/srv/app/node_modules")));
        assert!(!ex.is_excluded(Path::new("/a/b/x.tmpl")));
        assert!(!ex.is_excluded(Path::new("/srv/node_modules_old")));
    }

    #[test]
    fn an_absolute_pattern_matches_the_whole_path_and_star_stays_in_one_component() {
        let ex = excludes(&["/home/*/.cache/"]);
        assert!(ex.is_excluded(Path::new("/home/ann/.cache")));
        assert!(!ex.is_excluded(Path::new("/home/ann/sub/.cache")));
        assert!(!ex.is_excluded(Path::new("/srv/home/ann/.cache")));
    }

    #[test]
    fn a_relative_pattern_with_a_slash_matches_a_trailing_part() {
        let ex = excludes(&["build/*.o"]);
        assert!(ex.is_excluded(Path::new("/src/proj/build/main.o")));
        assert!(!ex.is_excluded(Path::new("/src/proj/build/sub/main.o")));
    }

    #[test]
    fn an_exclude_file_skips_comments_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("excludes");
        std::fs::write(&file, "# caches\n\n*.cache\n  /var/tmp  \n").unwrap();
        let ex = Excludes::new(&[], &[file]).unwrap();
        assert!(ex.is_excluded(Path::new("/a/x.cache")));
        assert!(ex.is_excluded(Path::new("/var/tmp")));
        assert!(!ex.is_excluded(Path::new("/a/# caches")));
    }

    #[test]
    fn an_invalid_pattern_is_named() {
        let err = Excludes::new(&["a[".to_owned()], &[]).unwrap_err();
        assert!(err.to_string().contains("\"a[\""), "{err}");
    }

    #[test]
    fn non_utf8_names_can_be_excluded() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let ex = excludes(&["caf*"]);
        let path = Path::new("/d").join(OsStr::from_bytes(b"caf\xe9"));
        assert!(ex.is_excluded(&path));
    }
}
