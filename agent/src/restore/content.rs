//! Writing file contents: downloads grouped by pack and run ahead in
//! parallel, writes spread over several threads, every file written in
//! order through a bounded window.
//!
//! A tree records each file's chunk ids but not each chunk's plaintext
//! length (a location gives only the sealed, maybe compressed, length), so
//! a chunk's offset in its file is known only once the chunks before it are
//! open. Files are therefore written in order, but many at once and far
//! ahead of the writes: the files, in walk order (which is the order the
//! backup packed them), are cut into *batches* of about [`BATCH_BYTES`] of
//! sealed chunks (a large file spans several batches). Each batch's chunks
//! are grouped by pack and neighbouring ranges coalesced, so a batch costs a
//! few range requests (the backup's parallel readers spread neighbouring
//! files over a few packs): on 1.5 GB of real files, one request per
//! 0.5 MB of sealed chunks, about 180 requests per second at full speed,
//! inside the server's default per-agent budget. Batches download as spawned tasks, so they
//! keep going while the writers are busy, and are handed in order to
//! [`writers`] writer threads (one per core); a file always goes to the same writer, so
//! its chunks arrive in order. A writer opens (decrypts, decompresses,
//! id-checks) each chunk just before writing it: a batch waits in memory
//! as sealed, compressed bytes, a fraction of its plaintext.
//!
//! Writing truly out of order (many parts of one huge file at once) would
//! need each chunk's plaintext length in the tree format; with this layout
//! one big file is still downloaded [`BATCHES_ALIVE`] batches ahead, so
//! only its opening and its disk writes are serial.
//!
//! Memory: at most [`BATCHES_ALIVE`] batches of sealed bytes (downloading,
//! or waiting for and being written by the writers), plus one reused chunk
//! buffer per writer, whatever the file and snapshot sizes.
//!
//! A file is written under a temporary name ([`safe::partial_name`]) and
//! renamed onto its real name only when every chunk was written and its
//! metadata applied. When a chunk is missing or damaged the temporary file
//! is removed: the file is not created (and a file already at that name is
//! left as it was), and the failure names the file, the blob and the pack.

use std::collections::HashMap;
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use stowage_protocol::api::BlobLocation;
use stowage_protocol::blob::{BlobKind, BlobOpener};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::tree::{EntryContent, FileChunk, TreeEntry};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::progress::Progress;
use super::safe::{self, Target};
use super::{Problems, meta, sparse};
use crate::reader::{ReadError, RepoReader, SealedBlob};

/// Sealed bytes of chunks per batch. Measured on 1.5 GB of real files
/// (scripts/bench-agent): 4 MiB batches, 2 alive, restore as fast as 12 MiB
/// batches, 4 alive, in less than half the memory — a batch is held until
/// its last file is written, so small batches free memory sooner — for
/// about 40 % more range requests.
pub const BATCH_BYTES: u64 = 4 << 20;
/// Batches held at once: downloading, or waiting for and being written by
/// the writers.
pub const BATCHES_ALIVE: usize = 2;
/// Packs of one batch read at once.
const PACKS_PER_BATCH: usize = 4;
/// Threads writing files (each also opens its chunks, so one per core
/// keeps every core busy; each holds one chunk's plaintext buffer, up to the
/// largest chunk). Measured on 2 cores: 2 writers restore as fast as 4 and
/// peak 20 MB lower.
pub fn writers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .clamp(2, 8)
}

/// A file whose content this restore writes.
#[derive(Debug)]
pub struct FileJob {
    /// Its directory, relative to the target ("" for the target itself).
    pub dir: Vec<u8>,
    /// Its name in that directory.
    pub name: Vec<u8>,
    /// The entry (content, size, metadata).
    pub entry: TreeEntry,
}

impl FileJob {
    fn chunks(&self) -> &[FileChunk] {
        match &self.entry.content {
            EntryContent::File { chunks, .. } => chunks,
            _ => &[],
        }
    }

    /// Path relative to the target, for messages.
    pub fn path(&self) -> Vec<u8> {
        super::join(&self.dir, &self.name)
    }
}

/// A run of one file's chunks inside one batch.
#[derive(Debug, Clone)]
struct Segment {
    file: usize,
    chunks: Range<usize>,
    first: bool,
    last: bool,
}

/// A downloaded batch: each needed chunk's sealed bytes, or why not.
type Fetched = HashMap<BlobId, Result<SealedBlob, ReadError>>;

/// A downloaded batch and its place among the [`BATCHES_ALIVE`], given back
/// when the last writer done with it drops it.
struct Batch {
    blobs: Fetched,
    #[allow(dead_code, reason = "held for its Drop, which frees the batch's place")]
    permit: OwnedSemaphorePermit,
}

/// One writer's share of a batch.
struct Work {
    batch: Arc<Batch>,
    segments: Vec<Segment>,
}

/// Writes the content of `files`; returns which files failed and why
/// (index into `files`, message) plus warnings, all through `problems`.
///
/// # Errors
///
/// Only when the server cannot say where the chunks are.
pub async fn restore(
    reader: &RepoReader,
    target: Arc<Target>,
    files: Arc<Vec<FileJob>>,
    chown: bool,
    progress: Arc<Progress>,
) -> Result<(Vec<bool>, Problems), ReadError> {
    let mut ids: Vec<BlobId> = files
        .iter()
        .flat_map(|f| f.chunks().iter().map(|chunk| chunk.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let located = reader.locate(&ids).await?;
    drop(ids);
    let locations: Arc<HashMap<BlobId, BlobLocation>> =
        Arc::new(located.found.into_iter().map(|l| (l.id, l)).collect());
    let batches = cut_batches(&files, &locations);

    let writer_count = writers();
    let mut senders = Vec::with_capacity(writer_count);
    let mut writers = Vec::with_capacity(writer_count);
    for _ in 0..writer_count {
        let (tx, rx) = mpsc::channel::<Work>(1);
        senders.push(tx);
        let (reader, target, files, progress) = (
            reader.clone(),
            Arc::clone(&target),
            Arc::clone(&files),
            Arc::clone(&progress),
        );
        writers.push(tokio::task::spawn_blocking(move || {
            Writer::new(&reader, &target, &files, chown, &progress).run(rx)
        }));
    }
    let (in_order, mut in_order_rx) = mpsc::channel(BATCHES_ALIVE);
    let downloader = {
        let (reader, files) = (reader.clone(), Arc::clone(&files));
        tokio::spawn(async move {
            let alive = Arc::new(Semaphore::new(BATCHES_ALIVE));
            for segments in batches {
                let permit = Arc::clone(&alive)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let ids = files_chunks(&files, &segments);
                let (reader, locations) = (reader.clone(), Arc::clone(&locations));
                // Spawned, so downloads go on while the writers are busy.
                let download = tokio::spawn(async move {
                    let blobs = fetch(&reader, &locations, &ids).await;
                    (segments, Arc::new(Batch { blobs, permit }))
                });
                if in_order.send(download).await.is_err() {
                    break;
                }
            }
        })
    };
    while let Some(download) = in_order_rx.recv().await {
        let (segments, batch) = download
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        let mut per_writer: Vec<Vec<Segment>> = vec![Vec::new(); writer_count];
        for segment in segments {
            per_writer[segment.file % writer_count].push(segment);
        }
        for (writer, segments) in per_writer.into_iter().enumerate() {
            if !segments.is_empty() {
                let work = Work {
                    batch: Arc::clone(&batch),
                    segments,
                };
                // A writer only stops early by panicking, which the join below reports.
                let _ = senders[writer].send(work).await;
            }
        }
    }
    downloader
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
    drop(senders);
    let mut ok = vec![true; files.len()];
    let mut problems = Problems::default();
    for writer in writers {
        let (failed, found) = writer
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        for index in failed {
            ok[index] = false;
        }
        problems.merge(found);
    }
    Ok((ok, problems))
}

/// Cuts the files, in order, into batches of about [`BATCH_BYTES`].
fn cut_batches(files: &[FileJob], locations: &HashMap<BlobId, BlobLocation>) -> Vec<Vec<Segment>> {
    let mut batches = Vec::new();
    let mut batch: Vec<Segment> = Vec::new();
    let mut bytes = 0u64;
    for (index, file) in files.iter().enumerate() {
        let chunks = file.chunks();
        let mut start = 0;
        loop {
            let mut end = start;
            while end < chunks.len() && (bytes < BATCH_BYTES || end == start) {
                bytes += locations
                    .get(&chunks[end].id)
                    .map_or(0, |l| u64::from(l.length));
                end += 1;
            }
            batch.push(Segment {
                file: index,
                chunks: start..end,
                first: start == 0,
                last: end == chunks.len(),
            });
            if bytes >= BATCH_BYTES {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            if end == chunks.len() {
                break;
            }
            start = end;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

fn files_chunks(files: &[FileJob], segments: &[Segment]) -> Vec<BlobId> {
    let mut ids: Vec<BlobId> = segments
        .iter()
        .flat_map(|s| {
            files[s.file].chunks()[s.chunks.clone()]
                .iter()
                .map(|chunk| chunk.id)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Downloads and opens `ids`, grouped by pack, several packs at once.
async fn fetch(
    reader: &RepoReader,
    locations: &HashMap<BlobId, BlobLocation>,
    ids: &[BlobId],
) -> Fetched {
    let mut out = Fetched::with_capacity(ids.len());
    let mut by_pack: HashMap<PackId, Vec<BlobLocation>> = HashMap::new();
    for id in ids {
        match locations.get(id) {
            None => {
                out.insert(
                    *id,
                    Err(ReadError::BlobUnknown {
                        blob: *id,
                        kind: BlobKind::Data,
                    }),
                );
            }
            Some(location) if location.kind != BlobKind::Data => {
                out.insert(
                    *id,
                    Err(ReadError::BadLocation {
                        pack: location.pack_id,
                        blob: *id,
                        problem: "a file names it as a chunk, but it is a tree".into(),
                    }),
                );
            }
            Some(location) => by_pack.entry(location.pack_id).or_default().push(*location),
        }
    }
    let results: Vec<_> = stream::iter(by_pack)
        .map(|(pack, blobs)| async move {
            match reader.fetch_sealed(&pack, &blobs).await {
                Ok(results) => results,
                Err(error) => blobs.iter().map(|b| (b.id, Err(error.clone()))).collect(),
            }
        })
        .buffer_unordered(PACKS_PER_BATCH)
        .collect()
        .await;
    out.extend(results.into_iter().flatten());
    out
}

/// A file being written.
struct OpenFile {
    dir: OwnedFd,
    temp: Vec<u8>,
    file: Option<std::fs::File>,
    offset: u64,
    /// Every distinct cause of failure so far (each damaged or missing
    /// blob is named, not only the first); nothing is written after the first.
    failures: Vec<String>,
}

/// One writer thread: creates, fills, finishes and renames its files.
struct Writer<'a> {
    reader: &'a RepoReader,
    opener: BlobOpener,
    /// One chunk's plaintext, reused for every chunk this writer writes.
    plain: Vec<u8>,
    target: &'a Target,
    files: &'a [FileJob],
    chown: bool,
    progress: &'a Progress,
    open: HashMap<usize, OpenFile>,
    dir_cache: Option<(Vec<u8>, OwnedFd)>,
    failed: Vec<usize>,
    problems: Problems,
}

impl<'a> Writer<'a> {
    fn new(
        reader: &'a RepoReader,
        target: &'a Target,
        files: &'a [FileJob],
        chown: bool,
        progress: &'a Progress,
    ) -> Self {
        Self {
            reader,
            opener: BlobOpener::new(),
            plain: Vec::new(),
            target,
            files,
            chown,
            progress,
            open: HashMap::new(),
            dir_cache: None,
            failed: Vec::new(),
            problems: Problems::default(),
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Work>) -> (Vec<usize>, Problems) {
        while let Some(work) = rx.blocking_recv() {
            for segment in &work.segments {
                self.segment(segment, &work.batch.blobs);
            }
        }
        (self.failed, self.problems)
    }

    fn dir(&mut self, relative: &[u8]) -> std::io::Result<OwnedFd> {
        if let Some((path, fd)) = &self.dir_cache
            && path == relative
        {
            return fd.try_clone();
        }
        let fd = self.target.open_dir(relative)?;
        let copy = fd.try_clone()?;
        self.dir_cache = Some((relative.to_vec(), fd));
        Ok(copy)
    }

    fn segment(&mut self, segment: &Segment, blobs: &Fetched) {
        let job = &self.files[segment.file];
        if segment.first {
            let temp = safe::partial_name(segment.file);
            let opened = self.dir(&job.dir).and_then(|dir| {
                let file = safe::create_file(&dir, &temp)?;
                Ok((dir, file))
            });
            let open = match opened {
                Ok((dir, file)) => OpenFile {
                    dir,
                    temp,
                    file: Some(file),
                    offset: 0,
                    failures: Vec::new(),
                },
                Err(error) => {
                    self.fail(segment.file, vec![format!("cannot be created - {error}")]);
                    return;
                }
            };
            self.open.insert(segment.file, open);
        }
        let Some(open) = self.open.get_mut(&segment.file) else {
            return; // creating it failed and was reported
        };
        for (position, chunk) in job.chunks()[segment.chunks.clone()].iter().enumerate() {
            let (number, id) = (segment.chunks.start + position, &chunk.id);
            let failure = match blobs.get(id) {
                Some(Ok(_)) if !open.failures.is_empty() => None,
                Some(Ok(sealed)) => {
                    let file = open.file.as_ref().expect("open until finished");
                    let written = self
                        .reader
                        .open_into(&mut self.opener, sealed, &mut self.plain)
                        .map_err(|error| error.to_string())
                        .and_then(|()| {
                            sparse::write_sparse(file, open.offset, &self.plain)
                                .map_err(|error| format!("writing failed - {error}"))
                        });
                    match written {
                        Ok(()) => {
                            open.offset += self.plain.len() as u64;
                            self.progress.add_bytes(self.plain.len() as u64);
                            None
                        }
                        Err(failure) => Some(failure),
                    }
                }
                Some(Err(error)) => Some(error.to_string()),
                None => Some(format!("chunk {number} ({id}) was not downloaded")),
            };
            if let Some(failure) = failure
                && !open.failures.contains(&failure)
            {
                open.failures.push(failure);
            }
        }
        if segment.last {
            let open = self.open.remove(&segment.file).expect("present above");
            self.finish(segment.file, open);
        }
    }

    fn finish(&mut self, index: usize, mut open: OpenFile) {
        let job = &self.files[index];
        let file = open.file.take().expect("open until finished");
        let result = if open.failures.is_empty() {
            file.set_len(open.offset)
                .map_err(|e| format!("setting its length failed - {e}"))
                .and_then(|()| {
                    meta::apply_fd(&file, &job.entry, self.chown).map_err(|e| e.to_string())
                })
                .and_then(|warnings| {
                    drop(file);
                    for warning in warnings {
                        self.problems.warn(&job.path(), warning);
                    }
                    safe::rename(&open.dir, &open.temp, &job.name)
                        .map_err(|e| format!("moving it into place failed - {e}"))
                })
                .map_err(|message| vec![message])
        } else {
            Err(std::mem::take(&mut open.failures))
        };
        match result {
            Ok(()) => self.progress.add_file(),
            Err(messages) => {
                let _ = safe::remove(&open.dir, &open.temp);
                self.fail(index, messages);
            }
        }
    }

    /// Records every cause of a file's failure (one error per cause, so a
    /// report grouped by cause lists the file under each).
    fn fail(&mut self, index: usize, messages: Vec<String>) {
        self.failed.push(index);
        let path = self.files[index].path();
        for message in messages {
            self.problems.error(&path, message);
        }
        self.progress.add_file();
    }
}

#[cfg(test)]
mod tests {
    use stowage_protocol::tree::{EntryName, Timestamp};

    use super::*;

    fn job(chunks: Vec<BlobId>) -> FileJob {
        FileJob {
            dir: Vec::new(),
            name: b"f".to_vec(),
            entry: TreeEntry {
                name: EntryName::try_from("f").unwrap(),
                mode: 0o644,
                uid: 0,
                gid: 0,
                user: Vec::new(),
                group: Vec::new(),
                mtime: Timestamp::default(),
                size: 0,
                xattrs: Vec::new(),
                content: EntryContent::File {
                    hardlink: None,
                    chunks: chunks
                        .into_iter()
                        .map(|id| FileChunk { id, len: 1 })
                        .collect(),
                },
            },
        }
    }

    fn located(ids: &[BlobId], length: u32) -> HashMap<BlobId, BlobLocation> {
        ids.iter()
            .map(|id| {
                let location = BlobLocation {
                    id: *id,
                    pack_id: PackId::from_bytes([1; 32]),
                    offset: 88,
                    length,
                    kind: BlobKind::Data,
                };
                (*id, location)
            })
            .collect()
    }

    #[test]
    fn a_big_file_spans_batches_in_order_and_small_files_share_one() {
        // Arrange: a file of 10 chunks of a quarter batch each, then two empty files and a 1-chunk file.
        let big: Vec<BlobId> = (0..10u8).map(|i| BlobId::from_bytes([i; 32])).collect();
        let small = BlobId::from_bytes([99; 32]);
        let files = vec![job(big.clone()), job(vec![]), job(vec![]), job(vec![small])];
        let mut all = big.clone();
        all.push(small);

        // Act
        let quarter = u32::try_from(BATCH_BYTES / 4).unwrap();
        let batches = cut_batches(&files, &located(&all, quarter));

        // Assert
        let big_segments: Vec<_> = batches
            .iter()
            .flatten()
            .filter(|s| s.file == 0)
            .map(|s| (s.chunks.clone(), s.first, s.last))
            .collect();
        assert_eq!(
            big_segments,
            [
                (0..4, true, false),
                (4..8, false, false),
                (8..10, false, true)
            ]
        );
        let last = batches.last().unwrap();
        let rest: Vec<usize> = last.iter().map(|s| s.file).collect();
        assert_eq!(rest, [0, 1, 2, 3]);
        assert!(last[1].first && last[1].last && last[1].chunks.is_empty());
    }
}
