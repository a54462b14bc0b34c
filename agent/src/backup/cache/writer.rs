//! Writing a cache file: records appended as directories complete, the
//! index and footer at the end, then an atomic rename over the old file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use stowage_protocol::ids::SnapshotId;

use super::{
    CACHE_END_MAGIC, CACHE_MAGIC, CACHE_VERSION, CHECK_LEN, DirRecord, HEADER_LEN, Key, check,
    encode_record, invalid, key,
};

/// A cache file being written during a backup; it replaces the old one only
/// when [`commit`](Self::commit)ted after the snapshot was.
#[derive(Debug)]
pub struct CacheWriter {
    /// Where the finished file goes.
    path: PathBuf,
    /// The temporary file being written.
    temp: PathBuf,
    /// Buffered writes to `temp`.
    out: Option<BufWriter<File>>,
    /// Bytes written so far (the next record's offset).
    offset: u64,
    /// Directory key → record offset.
    index: Vec<(Key, u64)>,
    /// Scratch buffer for one record.
    buffer: Vec<u8>,
}

impl CacheWriter {
    /// Starts a new cache file that will replace `path`.
    ///
    /// # Errors
    ///
    /// The directory or the temporary file cannot be created.
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        remove_abandoned_temps(path);
        let temp = temp_path(path, std::process::id());
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&temp)?);
        out.write_all(&CACHE_MAGIC)?;
        out.write_all(&CACHE_VERSION.to_le_bytes())?;
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            out: Some(out),
            offset: HEADER_LEN,
            index: Vec::new(),
            buffer: Vec::new(),
        })
    }

    /// Appends the record of directory `dir` (files must be sorted by name).
    ///
    /// # Errors
    ///
    /// Writing the temporary file failed.
    pub fn append(&mut self, dir: &Path, record: &DirRecord) -> io::Result<()> {
        let key = key(dir);
        self.buffer.clear();
        encode_record(&key, record, &mut self.buffer);
        let len = u32::try_from(self.buffer.len())
            .map_err(|_| invalid("a directory record is over 4 GiB"))?;
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| invalid("the cache writer is closed"))?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&self.buffer)?;
        out.write_all(&check(&[&self.buffer]))?;
        self.index.push((key, self.offset));
        self.offset += 4 + self.buffer.len() as u64 + CHECK_LEN as u64;
        Ok(())
    }

    /// Finishes the file as the cache of `snapshot` and moves it into place.
    ///
    /// # Errors
    ///
    /// Writing, syncing or renaming failed (the old cache stays).
    pub fn commit(mut self, snapshot: &SnapshotId) -> io::Result<()> {
        let mut index = Vec::with_capacity(8 + self.index.len() * 24);
        index.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        for (key, offset) in &self.index {
            index.extend_from_slice(key);
            index.extend_from_slice(&offset.to_le_bytes());
        }
        let mut out = self
            .out
            .take()
            .ok_or_else(|| invalid("the cache writer is closed"))?;
        out.write_all(&index)?;
        out.write_all(snapshot.as_bytes())?;
        out.write_all(&self.offset.to_le_bytes())?;
        out.write_all(&check(&[&index, snapshot.as_bytes()]))?;
        out.write_all(&CACHE_END_MAGIC)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The temporary file process `pid` writes before renaming it to `path`.
pub(super) fn temp_path(path: &Path, pid: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp-{pid}"));
    path.with_file_name(name)
}

/// Removes temporary files of `path` left by backups that were killed
/// (their process is gone); a running backup's file is left alone.
fn remove_abandoned_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.extend_from_slice(b".tmp-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.as_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let alive = std::str::from_utf8(pid)
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            self.out = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
