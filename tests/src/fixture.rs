//! Source trees for backups: every kind of file and metadata a restore must
//! bring back, with contents that do not compress away.
//!
//! [`build`] makes the full tree the round-trip test compares; [`many_files`]
//! makes plain trees of many small files for the incremental tests. All
//! contents come from BLAKE3's output stream (fast, incompressible,
//! deterministic per seed). Times are set last, deepest first, so creating a
//! child never moves its parent's mtime after the fact.

use std::ffi::OsStr;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};

/// Size of the big file: over 100 MiB, as the issue asks.
pub const BIG_FILE_SIZE: u64 = 101 * 1024 * 1024 + 12_345;

/// Options for [`build`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Include the file of [`BIG_FILE_SIZE`] bytes.
    pub big_file: bool,
}

/// What [`build`] made that tests refer to by path.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The tree's root directory.
    pub root: PathBuf,
    /// Whether the file system took `user.*` extended attributes.
    pub xattrs: bool,
    /// Whether files were given a foreign owner (only possible as root).
    pub owners: bool,
    /// The sparse file's path.
    pub sparse: PathBuf,
}

/// Writes `size` bytes of the stream for `seed` into `path` (mode 0644).
pub fn write_random(path: &Path, seed: &str, size: u64) {
    let mut file = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    write_stream(&mut file, seed, size);
}

/// Appends `size` bytes of the stream for `seed` to `file`.
fn write_stream(file: &mut File, seed: &str, size: u64) {
    let mut reader = blake3::Hasher::new().update(seed.as_bytes()).finalize_xof();
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(buffer.len() as u64)).expect("at most 1 MiB");
        reader.fill(&mut buffer[..n]);
        file.write_all(&buffer[..n])
            .expect("the fixture is written");
        left -= n as u64;
    }
}

/// Sets an exact mtime (and atime) with nanoseconds, not following symlinks.
pub fn set_mtime(path: &Path, seconds: i64, nanos: u32) {
    let time = Timespec {
        tv_sec: seconds,
        tv_nsec: nanos.into(),
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: time,
            last_modification: time,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn dir(path: &Path) -> PathBuf {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    path.to_path_buf()
}

/// Builds the full fixture under `root` (created).
pub fn build(root: &Path, options: Options) -> Fixture {
    dir(root);
    // Nested directories with files at every level.
    let deep = dir(&root.join("a/b/c/d"));
    write_random(&root.join("a/top.txt"), "top", 1000);
    write_random(&root.join("a/b/middle.bin"), "middle", 70_000);
    write_random(&deep.join("deep.bin"), "deep", 3 * 1024 * 1024 + 7);
    // Empty directories, one nested in another, and empty files.
    dir(&root.join("empty-dir"));
    dir(&root.join("a/b/empty-inner/also-empty"));
    File::create(root.join("empty-file")).unwrap();
    File::create(root.join("a/b/c/empty-too")).unwrap();
    // Unicode and non-UTF-8 names.
    let unicode = dir(&root.join("ünïcødé 目录 🎉"));
    write_random(&unicode.join("ファイル ✓.txt"), "unicode", 4321);
    let latin1 = root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9-\xff.bin"));
    write_random(&latin1, "latin1", 2048);
    let latin1_dir = dir(&root.join(OsStr::from_bytes(b"dir-\xfe\xfd")));
    write_random(&latin1_dir.join("inside"), "latin1-inside", 10);
    // Names that look odd but are legal.
    write_random(&root.join(" leading space"), "space", 11);
    write_random(&root.join("-dash"), "dash", 12);
    write_random(&root.join("new\nline"), "newline", 13);
    // Modes.
    let modes = dir(&root.join("modes"));
    for (name, mode) in [
        ("private", 0o600),
        ("script", 0o755),
        ("read-only", 0o444),
        ("setuid", 0o4755),
        ("no-permissions", 0o000),
    ] {
        // Only root reads a 0o000 file; anyone else would get a partial backup.
        if mode == 0o000 && !rustix::process::geteuid().is_root() {
            continue;
        }
        write_random(&modes.join(name), name, 100);
        chmod(&modes.join(name), mode);
    }
    let setgid = dir(&modes.join("setgid-dir"));
    write_random(&setgid.join("in-setgid"), "in-setgid", 10);
    chmod(&setgid, 0o2775);
    let sticky = dir(&modes.join("sticky-dir"));
    chmod(&sticky, 0o1777);
    let closed = dir(&modes.join("closed-dir"));
    write_random(&closed.join("in-closed"), "in-closed", 10);
    // Symlinks: relative, absolute, dangling, to a directory, a chain.
    let links = dir(&root.join("links"));
    symlink("../a/top.txt", links.join("relative")).unwrap();
    symlink("/etc/hostname", links.join("absolute")).unwrap();
    symlink("does/not/exist", links.join("dangling")).unwrap();
    symlink("../a/b", links.join("to-dir")).unwrap();
    symlink("relative", links.join("chain")).unwrap();
    symlink(
        OsStr::from_bytes(b"target-\xff"),
        links.join("non-utf8-target"),
    )
    .unwrap();
    // Hard links: a pair across directories and a triple.
    write_random(&root.join("a/hard-1"), "hard-pair", 5000);
    fs::hard_link(root.join("a/hard-1"), root.join("hard-2")).unwrap();
    write_random(&links.join("triple-1"), "hard-triple", 300_000);
    fs::hard_link(links.join("triple-1"), links.join("triple-2")).unwrap();
    fs::hard_link(links.join("triple-1"), root.join("a/b/triple-3")).unwrap();
    // A sparse file: 64 MiB with two written regions.
    let sparse = root.join("sparse.img");
    {
        let mut file = File::create(&sparse).unwrap();
        file.set_len(64 * 1024 * 1024).unwrap();
        file.seek(SeekFrom::Start(8 * 1024 * 1024)).unwrap();
        write_stream(&mut file, "sparse-1", 1024 * 1024);
        file.seek(SeekFrom::Start(40 * 1024 * 1024 + 4096)).unwrap();
        write_stream(&mut file, "sparse-2", 123_456);
    }
    // Files just under, at and over common chunk sizes, and many small ones.
    for (i, size) in [1, 511, 4096, 524_287, 524_288, 1_048_577, 9_000_000]
        .into_iter()
        .enumerate()
    {
        write_random(
            &root.join(format!("a/b/sized-{i}")),
            &format!("sized-{i}"),
            size,
        );
    }
    many_files(&root.join("many"), "many", 120, 0);
    if options.big_file {
        write_random(&root.join("big.bin"), "big", BIG_FILE_SIZE);
    }
    let xattrs = set_xattrs(root);
    let owners = rustix::process::geteuid().is_root();
    if owners {
        std::os::unix::fs::lchown(root.join("a/top.txt"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(links.join("relative"), Some(4321), Some(8765)).unwrap();
        std::os::unix::fs::lchown(&unicode, Some(1000), Some(1000)).unwrap();
    }
    set_times(root);
    if owners {
        chmod(&closed, 0o000);
    }
    Fixture {
        root: root.to_path_buf(),
        xattrs,
        owners,
        sparse,
    }
}

/// Sets `user.*` attributes on a file, a directory and a hard link; returns
/// false when the file system does not support them.
fn set_xattrs(root: &Path) -> bool {
    let probe = rustix::fs::lsetxattr(
        root.join("a/top.txt"),
        "user.stowage.comment",
        b"a comment",
        rustix::fs::XattrFlags::empty(),
    );
    if probe.is_err() {
        return false;
    }
    for (path, name, value) in [
        ("a", "user.dir-attr", &b"on a directory"[..]),
        ("a/top.txt", "user.binary", &[0u8, 1, 2, 255][..]),
        ("a/top.txt", "user.empty", &b""[..]),
        ("a/hard-1", "user.on-hard-link", &b"shared"[..]),
    ] {
        rustix::fs::lsetxattr(
            root.join(path),
            name,
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("setxattr {path} {name}: {e}"));
    }
    true
}

/// Gives every entry under `root` (and `root`) a distinct mtime with
/// nanoseconds, children before their directories.
pub fn set_times(root: &Path) {
    let mut entries = Vec::new();
    collect(root, &mut entries);
    // Deepest first: a directory's time is set after everything inside it.
    entries.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    for (i, path) in entries.iter().enumerate() {
        let i = i64::try_from(i).expect("few entries");
        set_mtime(
            path,
            1_600_000_000 + i * 3_601,
            u32::try_from(i * 7_919 % 1_000_000_000).unwrap() + 1,
        );
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    out.push(path.to_path_buf());
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        let mode = meta.permissions().mode();
        // A closed directory (0o000) can still be read by root only; open
        // it briefly so the walk works for anyone.
        if mode & 0o500 != 0o500 {
            chmod(path, mode | 0o700);
        }
        for entry in fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), out);
        }
        if mode & 0o500 != 0o500 {
            chmod(path, mode);
        }
    }
}

/// Makes `count` files of 1..=64 KiB (seeded by `seed` and their index)
/// under `dir`, spread over subdirectories of 50; `generation` changes the
/// content of every file it is bumped for.
pub fn many_files(dir: &Path, seed: &str, count: usize, generation: u32) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let sub = self::dir(&dir.join(format!("group-{:03}", i / 50)));
            let path = sub.join(format!("file-{i:05}.dat"));
            write_random(
                &path,
                &format!("{seed}-{i}-{generation}"),
                1 + (u64::try_from(i).unwrap() * 7_919) % 65_536,
            );
            path
        })
        .collect()
}

/// Rewrites `path` in place with new content of the same size (the mtime
/// moves on, the inode stays).
pub fn rewrite_in_place(path: &Path, seed: &str) {
    let size = fs::metadata(path).unwrap().len();
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    write_stream(&mut file, seed, size);
    // A time certainly unlike the old one, even on a coarse clock.
    file.set_times(FileTimes::new().set_modified(SystemTime::now() + Duration::from_secs(5)))
        .unwrap();
}
