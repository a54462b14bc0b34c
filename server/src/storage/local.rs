//! The local filesystem object store: one file per object under a root
//! directory, at the path its key spells.
//!
//! Every write is atomic and durable: the bytes go to a hidden temporary file
//! (`.tmp-<random>`) in the target's directory, which is fsynced, renamed over
//! the target and followed by an fsync of the directory, so after a crash an
//! object is either wholly old, wholly new or (if it never existed) absent.
//! Directories created on the way are fsynced into their parents as well.
//! Keys cannot start a segment with a dot, so temporary files never collide
//! with objects, and listings skip them. Blocking file calls run on tokio's
//! blocking pool.
//!
//! `adopt_file` skips the copy: the source file (a spooled pack under
//! `<data_dir>/tmp`, on the same filesystem) is fsynced and renamed into
//! place, then both directories are fsynced. Only across filesystems does it
//! fall back to the copy above.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{
    ObjectKey, ObjectMeta, ObjectStore, StorageError, StoreFuture, check_prefix, clip_range,
};

/// Prefix of temporary files; keys never start a segment with a dot.
const TEMP_PREFIX: &str = ".tmp-";

/// An object store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    /// Absolute or working-directory-relative root; every object lives below it.
    root: PathBuf,
}

/// What a blocking write takes its bytes from.
enum Source {
    Bytes(Bytes),
    File(PathBuf),
}

impl LocalStore {
    /// Opens the store at `root`, creating the directory if needed.
    ///
    /// # Errors
    ///
    /// Fails when the directory cannot be created.
    pub async fn open(root: &Path) -> Result<Self, StorageError> {
        let root = root.to_owned();
        blocking(move || {
            fs::create_dir_all(&root).map_err(io_error("create store directory", &root))?;
            Ok(Self { root })
        })
        .await
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.segments());
        path
    }

    fn write(&self, key: &ObjectKey, source: Source) -> StoreFuture<'_, ()> {
        let root = self.root.clone();
        let target = self.path_of(key);
        Box::pin(blocking(move || write_atomically(&root, &target, source)))
    }
}

impl ObjectStore for LocalStore {
    fn put_bytes<'a>(&'a self, key: &'a ObjectKey, data: Bytes) -> StoreFuture<'a, ()> {
        self.write(key, Source::Bytes(data))
    }

    fn put_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()> {
        self.write(key, Source::File(path.to_owned()))
    }

    fn adopt_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()> {
        let root = self.root.clone();
        let target = self.path_of(key);
        let source = path.to_owned();
        Box::pin(blocking(move || adopt(&root, &target, &source)))
    }

    fn get<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Bytes> {
        let path = self.path_of(key);
        Box::pin(async move {
            match tokio::fs::read(&path).await {
                Ok(data) => Ok(Bytes::from(data)),
                Err(err) if is_missing(&err) => Err(StorageError::NotFound { key: key.clone() }),
                Err(source) => Err(StorageError::Io {
                    action: "read object file",
                    path,
                    source,
                }),
            }
        })
    }

    fn get_range<'a>(&'a self, key: &'a ObjectKey, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        let path = self.path_of(key);
        let key = key.clone();
        Box::pin(blocking(move || {
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(err) if is_missing(&err) => return Err(StorageError::NotFound { key }),
                Err(source) => {
                    return Err(StorageError::Io {
                        action: "open object file",
                        path,
                        source,
                    });
                }
            };
            let len = file
                .metadata()
                .map_err(io_error("stat object file", &path))?
                .len();
            let clipped = clip_range(&key, &range, len)?;
            let wanted = usize::try_from(clipped.end - clipped.start)
                .expect("a range clipped to a file's length fits in memory");
            let mut buffer = vec![0; wanted];
            file.seek(SeekFrom::Start(clipped.start))
                .and_then(|_| file.read_exact(&mut buffer))
                .map_err(io_error("read object file", &path))?;
            Ok(Bytes::from(buffer))
        }))
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectMeta>> {
        let path = self.path_of(key);
        Box::pin(async move {
            match tokio::fs::metadata(&path).await {
                Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
                    key: key.clone(),
                    size: meta.len(),
                })),
                Ok(_) => Ok(None),
                Err(err) if is_missing(&err) => Ok(None),
                Err(source) => Err(StorageError::Io {
                    action: "stat object file",
                    path,
                    source,
                }),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        Box::pin(blocking(move || {
            check_prefix(&prefix)?;
            // Only the directory that the prefix's complete segments name can
            // hold matches; start the walk there.
            let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            let mut start = root.clone();
            start.extend(dir_part.split('/').filter(|s| !s.is_empty()));
            let mut found = Vec::new();
            walk(&start, dir_part, &prefix, &mut found)?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        }))
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()> {
        let path = self.path_of(key);
        Box::pin(blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if is_missing(&err) => return Ok(()),
                Err(source) => {
                    return Err(StorageError::Io {
                        action: "remove object file",
                        path,
                        source,
                    });
                }
            }
            let dir = path
                .parent()
                .expect("an object file has a parent directory");
            sync_dir(dir)
        }))
    }

    fn check(&self) -> StoreFuture<'_, ()> {
        let root = self.root.clone();
        Box::pin(blocking(move || {
            // A probe write catches a missing, read-only or full store.
            let probe = root.join(format!("{TEMP_PREFIX}probe-{}", random_suffix()));
            fs::write(&probe, b"probe").map_err(io_error("write probe file in", &root))?;
            fs::remove_file(&probe).map_err(io_error("remove probe file", &probe))
        }))
    }
}

/// Writes `source` to a temp file beside `target`, fsyncs it, renames it over
/// `target` and fsyncs the directory.
fn write_atomically(root: &Path, target: &Path, source: Source) -> Result<(), StorageError> {
    let dir = target
        .parent()
        .expect("an object path has a parent directory");
    create_dirs_durably(root, dir)?;
    let temp = dir.join(format!("{TEMP_PREFIX}{}", random_suffix()));
    let result = write_temp(&temp, source).and_then(|()| {
        fs::rename(&temp, target).map_err(io_error("rename temporary file to", target))
    });
    if result.is_err() {
        // Best effort: the temp file is invisible to readers either way.
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir)
}

/// Moves the file at `source` to `target`: fsync of the file, rename, fsync
/// of both directories (the new entry and the removed one). Across
/// filesystems, where rename fails with `EXDEV`, copies atomically instead
/// and removes the source.
fn adopt(root: &Path, target: &Path, source: &Path) -> Result<(), StorageError> {
    let dir = target
        .parent()
        .expect("an object path has a parent directory");
    create_dirs_durably(root, dir)?;
    File::open(source)
        .and_then(|file| file.sync_all())
        .map_err(io_error("fsync source file", source))?;
    match fs::rename(source, target) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
            write_atomically(root, target, Source::File(source.to_owned()))?;
            fs::remove_file(source).map_err(io_error("remove adopted source file", source))?;
        }
        Err(source_err) => {
            return Err(StorageError::Io {
                action: "move source file into the store as",
                path: target.to_owned(),
                source: source_err,
            });
        }
    }
    sync_dir(dir)?;
    sync_dir(
        source
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

fn write_temp(temp: &Path, source: Source) -> Result<(), StorageError> {
    let mut file = File::create_new(temp).map_err(io_error("create temporary file", temp))?;
    match source {
        Source::Bytes(data) => file
            .write_all(&data)
            .map_err(io_error("write temporary file", temp))?,
        Source::File(path) => {
            let mut input = File::open(&path).map_err(io_error("open source file", &path))?;
            io::copy(&mut input, &mut file).map_err(io_error("copy source file into", temp))?;
        }
    }
    file.sync_all()
        .map_err(io_error("fsync temporary file", temp))
}

/// Creates `dir` and its missing ancestors below `root`, fsyncing each new
/// directory's parent so the new entries survive a crash.
fn create_dirs_durably(root: &Path, dir: &Path) -> Result<(), StorageError> {
    let mut missing = Vec::new();
    let mut current = dir;
    while current != root && !current.is_dir() {
        missing.push(current);
        current = match current.parent() {
            Some(parent) => parent,
            None => break,
        };
    }
    for new_dir in missing.into_iter().rev() {
        match fs::create_dir(new_dir) {
            Ok(()) => {}
            // Another writer made it first; it fsyncs the parent itself.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(StorageError::Io {
                    action: "create directory",
                    path: new_dir.to_owned(),
                    source,
                });
            }
        }
        sync_dir(new_dir.parent().unwrap_or(root))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Collects objects under `dir` (whose key prefix is `dir_key`) matching `prefix`.
fn walk(
    dir: &Path,
    dir_key: &str,
    prefix: &str,
    found: &mut Vec<ObjectMeta>,
) -> Result<(), StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if is_missing(&err) || err.kind() == io::ErrorKind::NotADirectory => return Ok(()),
        Err(source) => {
            return Err(StorageError::Io {
                action: "list directory",
                path: dir.to_owned(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(io_error("list directory", dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue; // not UTF-8, so not an object this store wrote
        };
        let key = if dir_key.is_empty() {
            name
        } else {
            format!("{dir_key}/{name}")
        };
        // Skip temp files and anything whose key cannot match the prefix.
        if key.rsplit('/').next().is_some_and(|n| n.starts_with('.'))
            || !(key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")))
        {
            continue;
        }
        let path = entry.path();
        let meta = entry.metadata().map_err(io_error("stat", &path))?;
        if meta.is_dir() {
            walk(&path, &key, prefix, found)?;
        } else if meta.is_file()
            && key.starts_with(prefix)
            && let Ok(key) = ObjectKey::parse(&key)
        {
            found.push(ObjectMeta {
                key,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

fn is_missing(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_owned();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .expect("a blocking storage task panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::parse(s).unwrap()
    }

    #[tokio::test]
    async fn an_object_is_a_file_at_the_path_its_key_spells() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();

        // Act
        store
            .put_bytes(&key("t/ab/pack"), Bytes::from_static(b"hi"))
            .await
            .unwrap();

        // Assert
        assert_eq!(fs::read(dir.path().join("t/ab/pack")).unwrap(), b"hi");
    }

    #[tokio::test]
    async fn writes_leave_no_temporary_files_behind() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();

        // Act
        for round in 0..3u8 {
            store
                .put_bytes(&key("a/b"), Bytes::from(vec![round; 10]))
                .await
                .unwrap();
        }
        store.check().await.unwrap();

        // Assert
        let names: Vec<_> = fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["b"]);
        assert!(
            fs::read_dir(dir.path())
                .unwrap()
                .all(|e| e.unwrap().file_name() == "a")
        );
    }

    #[tokio::test]
    async fn a_failed_write_keeps_the_old_object_and_no_temp_file() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        store
            .put_bytes(&key("obj"), Bytes::from_static(b"old"))
            .await
            .unwrap();

        // Act
        let missing_source = dir.path().join("no-such-file");
        let result = store.put_file(&key("obj"), &missing_source).await;

        // Assert
        assert!(matches!(
            result,
            Err(StorageError::Io {
                action: "open source file",
                ..
            })
        ));
        assert_eq!(
            store.get(&key("obj")).await.unwrap(),
            Bytes::from_static(b"old")
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn adopting_a_file_from_another_filesystem_copies_it_and_removes_the_source() {
        // Arrange: /dev/shm is a tmpfs, so rename from there fails with EXDEV.
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("note: no /dev/shm here, cross-filesystem adoption not tested");
            return;
        };
        let device = |path: &Path| fs::metadata(path).unwrap().dev();
        if device(dir.path()) == device(other.path()) {
            eprintln!(
                "note: /dev/shm is on the same filesystem, cross-filesystem adoption not tested"
            );
            return;
        }
        let store = LocalStore::open(dir.path()).await.unwrap();
        let source = other.path().join("pack");
        fs::write(&source, b"from afar").unwrap();

        // Act
        store.adopt_file(&key("t/ab/pack"), &source).await.unwrap();

        // Assert
        assert!(!source.exists());
        assert_eq!(
            fs::read(dir.path().join("t/ab/pack")).unwrap(),
            b"from afar"
        );
        let names: Vec<_> = fs::read_dir(dir.path().join("t/ab"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pack"]);
    }

    #[tokio::test]
    async fn listing_skips_temporary_files_and_stray_names() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        store
            .put_bytes(&key("p/one"), Bytes::from_static(b"1"))
            .await
            .unwrap();
        fs::write(dir.path().join("p/.tmp-leftover"), b"x").unwrap();
        fs::write(dir.path().join("p/has space"), b"x").unwrap();

        // Act
        let listed = store.list("p/").await.unwrap();

        // Assert
        assert_eq!(
            listed,
            [ObjectMeta {
                key: key("p/one"),
                size: 1
            }]
        );
    }
}
