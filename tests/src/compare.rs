//! Checks that a restored tree is the source tree, byte for byte and bit for
//! bit of metadata: every path's type, mode (with setuid/setgid/sticky),
//! owner (when asked), mtime to the nanosecond, size, contents, symlink
//! target and extended attributes, and the hard-link structure (paths that
//! share an inode in the source share one in the copy, and no others).
//!
//! Differences are collected, not stopped at, and each names the path and
//! what differs, so one failing run shows everything a restore got wrong.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What to compare beyond contents, types, modes, sizes and mtimes.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Compare numeric owners (uid, gid); only meaningful when the restore
    /// runs as root.
    pub owners: bool,
    /// Compare extended attributes.
    pub xattrs: bool,
}

/// Every difference between `source` and `copy` (empty when identical).
pub fn differences(source: &Path, copy: &Path, checks: Checks) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut links = HashMap::new();
    compare_entry(source, copy, Path::new("."), checks, &mut diffs, &mut links);
    diffs
}

/// Panics listing every difference between `source` and `copy`.
#[track_caller]
pub fn assert_identical(source: &Path, copy: &Path, checks: Checks) {
    let diffs = differences(source, copy, checks);
    assert!(
        diffs.is_empty(),
        "{} differences between {} and its restored copy {}:\n{}",
        diffs.len(),
        source.display(),
        copy.display(),
        diffs
            .iter()
            .take(60)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Source inode → (copy inode, first path seen), to check hard links.
type LinkMap = HashMap<(u64, u64), ((u64, u64), PathBuf)>;

fn compare_entry(
    source: &Path,
    copy: &Path,
    rel: &Path,
    checks: Checks,
    diffs: &mut Vec<String>,
    links: &mut LinkMap,
) {
    let show = rel.display();
    let (src, dst) = match (fs::symlink_metadata(source), fs::symlink_metadata(copy)) {
        (Ok(src), Ok(dst)) => (src, dst),
        (Ok(_), Err(e)) => {
            diffs.push(format!("{show}: missing in the copy ({e})"));
            return;
        }
        (Err(e), _) => {
            diffs.push(format!("{show}: unreadable in the source ({e})"));
            return;
        }
    };
    let (src_kind, dst_kind) = (kind(&src), kind(&dst));
    if src_kind != dst_kind {
        diffs.push(format!(
            "{show}: a {src_kind} in the source, a {dst_kind} in the copy"
        ));
        return;
    }
    if src.mode() & 0o7777 != dst.mode() & 0o7777 {
        diffs.push(format!(
            "{show}: mode {:04o} in the source, {:04o} in the copy",
            src.mode() & 0o7777,
            dst.mode() & 0o7777
        ));
    }
    if checks.owners && (src.uid(), src.gid()) != (dst.uid(), dst.gid()) {
        diffs.push(format!(
            "{show}: owner {}:{} in the source, {}:{} in the copy",
            src.uid(),
            src.gid(),
            dst.uid(),
            dst.gid()
        ));
    }
    if (src.mtime(), src.mtime_nsec()) != (dst.mtime(), dst.mtime_nsec()) {
        diffs.push(format!(
            "{show}: mtime {}.{:09} in the source, {}.{:09} in the copy",
            src.mtime(),
            src.mtime_nsec(),
            dst.mtime(),
            dst.mtime_nsec()
        ));
    }
    if checks.xattrs {
        let (a, b) = (xattrs(source), xattrs(copy));
        if a != b {
            diffs.push(format!(
                "{show}: extended attributes {a:?} in the source, {b:?} in the copy"
            ));
        }
    }
    match src_kind {
        "file" => {
            compare_file(source, copy, &src, &dst, rel, diffs, links);
        }
        "symlink" => {
            let (a, b) = (fs::read_link(source), fs::read_link(copy));
            if a.as_ref().ok() != b.as_ref().ok() {
                diffs.push(format!(
                    "{show}: symlink to {a:?} in the source, to {b:?} in the copy"
                ));
            }
        }
        "directory" => compare_dirs(source, copy, rel, checks, diffs, links),
        _ => {
            if src.rdev() != dst.rdev() {
                diffs.push(format!("{show}: device {} vs {}", src.rdev(), dst.rdev()));
            }
        }
    }
}

fn compare_dirs(
    source: &Path,
    copy: &Path,
    rel: &Path,
    checks: Checks,
    diffs: &mut Vec<String>,
    links: &mut LinkMap,
) {
    let (Some(a), Some(b)) = (names(source, diffs, rel), names(copy, diffs, rel)) else {
        return;
    };
    for name in b
        .iter()
        .filter(|(key, _)| !a.contains_key(*key))
        .map(|(_, name)| name)
    {
        diffs.push(format!(
            "{}: present only in the copy",
            rel.join(name).display()
        ));
    }
    for (key, name) in &a {
        let child = rel.join(name);
        if b.contains_key(key) {
            compare_entry(
                &source.join(name),
                &copy.join(name),
                &child,
                checks,
                diffs,
                links,
            );
        } else {
            diffs.push(format!("{}: missing in the copy", child.display()));
        }
    }
}

/// A directory's entry names, sorted by raw bytes.
fn names(dir: &Path, diffs: &mut Vec<String>, rel: &Path) -> Option<BTreeMap<Vec<u8>, OsString>> {
    match fs::read_dir(dir) {
        Ok(entries) => Some(
            entries
                .filter_map(Result::ok)
                .map(|entry| (entry.file_name().as_bytes().to_vec(), entry.file_name()))
                .collect::<BTreeMap<_, _>>(),
        ),
        Err(e) => {
            diffs.push(format!(
                "{}: cannot list {} ({e})",
                rel.display(),
                dir.display()
            ));
            None
        }
    }
}

fn compare_file(
    source: &Path,
    copy: &Path,
    src: &Metadata,
    dst: &Metadata,
    rel: &Path,
    diffs: &mut Vec<String>,
    links: &mut LinkMap,
) {
    let show = rel.display();
    if src.len() != dst.len() {
        diffs.push(format!(
            "{show}: {} bytes in the source, {} in the copy",
            src.len(),
            dst.len()
        ));
    } else if let Some(offset) = first_difference(source, copy) {
        diffs.push(format!("{show}: contents differ from byte {offset} on"));
    }
    // Hard links: the copy's inodes must pair with the source's one to one.
    let src_id = (src.dev(), src.ino());
    let dst_id = (dst.dev(), dst.ino());
    if src.nlink() > 1 || dst.nlink() > 1 {
        if let Some((seen_dst, first)) = links.get(&src_id) {
            if *seen_dst != dst_id {
                diffs.push(format!(
                    "{show}: a hard link of {} in the source, a separate file in the copy",
                    first.display()
                ));
            }
        } else if let Some((_, (_, first))) = links.iter().find(|(_, (d, _))| *d == dst_id) {
            diffs.push(format!(
                "{show}: a separate file in the source, a hard link of {} in the copy",
                first.display()
            ));
        } else {
            links.insert(src_id, (dst_id, rel.to_path_buf()));
        }
    }
}

/// The offset of the first differing byte, or `None` when the files match.
fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let (Ok(mut a), Ok(mut b)) = (File::open(a), File::open(b)) else {
        return Some(0);
    };
    let mut buf_a = vec![0u8; 1 << 20];
    let mut buf_b = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut buf_a);
        let m = read_full(&mut b, &mut buf_b);
        if let Some(i) = buf_a[..n.min(m)]
            .iter()
            .zip(&buf_b[..n.min(m)])
            .position(|(x, y)| x != y)
        {
            return Some(offset + i as u64);
        }
        if n != m {
            return Some(offset + n.min(m) as u64);
        }
        if n == 0 {
            return None;
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    filled
}

fn kind(meta: &Metadata) -> &'static str {
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "file"
    } else {
        "special file"
    }
}

/// Every extended attribute of `path` (not following symlinks), by name.
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(size) = rustix::fs::llistxattr_query(path) else {
        return out;
    };
    let mut list = vec![0u8; size];
    let Ok(len) = rustix::fs::llistxattr(path, &mut list[..]) else {
        return out;
    };
    for name in list[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name_os = std::ffi::OsStr::from_bytes(name);
        let Ok(size) = rustix::fs::lgetxattr_query(path, name_os) else {
            continue;
        };
        let mut value = vec![0u8; size];
        if let Ok(len) = rustix::fs::lgetxattr(path, name_os, &mut value[..]) {
            value.truncate(len);
            out.insert(name.to_vec(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::fixture::{self, Options};

    const CHECKS: Checks = Checks {
        owners: true,
        xattrs: true,
    };

    /// Copies `source` to `copy` with `cp -a` (which keeps everything).
    fn copy_tree(source: &Path, copy: &Path) {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(source)
            .arg(copy)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn an_exact_copy_has_no_differences_and_every_kind_of_change_is_named() {
        // Arrange: the fixture and a faithful copy of it.
        let work = tempfile::tempdir().unwrap();
        let source = fixture::build(&work.path().join("source"), Options::default());
        let copy = work.path().join("copy");
        copy_tree(&source.root, &copy);
        let checks = Checks {
            owners: source.owners,
            xattrs: source.xattrs,
        };
        let identical = differences(&source.root, &copy, checks);

        // Act: one change of each kind.
        fixture::write_random(&copy.join("a/b/middle.bin"), "other", 70_000);
        fixture::set_mtime(&copy.join("a/b/middle.bin"), 1_600_000_000, 5);
        std::fs::set_permissions(
            copy.join("modes/script"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        fixture::set_mtime(&copy.join("empty-file"), 1_600_000_000, 999);
        std::fs::remove_file(copy.join("hard-2")).unwrap();
        std::fs::copy(copy.join("a/hard-1"), copy.join("hard-2")).unwrap();
        std::fs::remove_file(copy.join("links/dangling")).unwrap();
        std::os::unix::fs::symlink("elsewhere", copy.join("links/dangling")).unwrap();
        std::fs::remove_dir(copy.join("empty-dir")).unwrap();
        std::fs::write(copy.join("extra"), b"x").unwrap();
        let diffs = differences(&source.root, &copy, CHECKS).join("\n");

        // Assert
        assert!(identical.is_empty(), "{identical:?}");
        for needle in [
            "a/b/middle.bin: contents differ",
            "modes/script: mode 0755 in the source, 0700 in the copy",
            "empty-file: mtime",
            "hard-2: a hard link of ./a/hard-1 in the source, a separate file in the copy",
            "links/dangling: symlink to",
            "empty-dir: missing in the copy",
            "extra: present only in the copy",
        ] {
            assert!(
                diffs.contains(needle),
                "{needle:?} not reported in:\n{diffs}"
            );
        }
    }
}
