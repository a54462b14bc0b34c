//! Writing file contents: chunks read pack by pack, written wherever they
//! belong, files finished as their last chunk lands.
//!
//! A tree records each chunk's plaintext length, so every chunk's offset in
//! its file is known up front. The [`plan`] orders every chunk use by pack
//! (packs in the order the files first need them, each pack's chunks by
//! offset) and cuts that order into batches of about [`BATCH_BYTES`] of
//! sealed chunks, so a restore costs a few long range requests per pack
//! instead of one per file, and a chunk used in several places is fetched
//! and opened once. Batches download as spawned tasks, at most
//! [`BATCHES_ALIVE`] at once, and each is split between [`writers`] writer
//! threads (one per core) that open (decrypt, decompress, id-check, length-
//! check) each chunk and write it with positioned writes, so one large
//! file is written by all writers at once and out of order. The [`files`]
//! table creates each file on its first chunk, keeps a bounded number
//! open, and hands a file to be finished by whichever writer does its last
//! write.
//!
//! Memory: at most [`BATCHES_ALIVE`] batches of sealed bytes (downloading,
//! or waiting for and being written by the writers) and one reused chunk
//! buffer per writer, whatever the sizes; and growing with the snapshot,
//! per chunk of every file the file's own list (36 bytes), the plan's use
//! (24 bytes) and, per distinct chunk, its location (about 100 bytes with
//! the map's overhead): some 160 MB for a million chunks (a terabyte of
//! files at the default 1 MiB average), plus about 50 bytes of state per
//! file beside its entry.
//!
//! A file is written under a temporary name ([`super::safe::partial_name`]) and
//! renamed onto its real name only when every chunk was written and its
//! metadata applied. When a chunk is missing, damaged or of the wrong
//! length the temporary file is removed: the file is not created (and a
//! file already at that name is left as it was), and the failure names the
//! file, the blob and the pack.

mod files;
mod plan;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use stowage_protocol::api::BlobLocation;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::tree::{EntryContent, FileChunk, TreeEntry};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use self::files::FileTable;
use self::plan::{Plan, Use};
use self::writer::{Shared, Work, Writer};
use super::Problems;
use super::progress::Progress;
use super::safe::Target;
use crate::reader::{ReadError, RepoReader, SealedBlob};

/// Sealed bytes of chunks per batch. Measured on 1.5 GB of real files
/// (scripts/bench-agent): 4 MiB batches, 2 alive, restore as fast as 12 MiB
/// batches, 4 alive, in less than half the memory — a batch is held until
/// its last chunk is written, so small batches free memory sooner.
pub const BATCH_BYTES: u64 = 4 << 20;
/// Batches held at once: downloading, or waiting for and being written by
/// the writers.
pub const BATCHES_ALIVE: usize = 2;
/// Packs of one batch read at once (a batch spans packs only at a pack's end).
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
    /// The file's chunks, in order (none for an empty file).
    pub fn chunks(&self) -> &[FileChunk] {
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

/// A downloaded batch: each needed chunk's sealed bytes, or why not.
type Fetched = HashMap<BlobId, Result<SealedBlob, ReadError>>;

/// A downloaded batch and its place among the [`BATCHES_ALIVE`], given back
/// when the last writer done with it drops it.
#[derive(Debug)]
pub struct Batch {
    blobs: Fetched,
    #[allow(dead_code, reason = "held for its Drop, which frees the batch's place")]
    permit: OwnedSemaphorePermit,
}

/// Writes the content of `files`; returns which files were written (by
/// index into `files`) plus the failures and warnings, through `Problems`.
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
        .flat_map(|f| f.chunks().iter().map(|c| c.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let located = reader.locate(&ids).await?;
    drop(ids);
    let locations: HashMap<BlobId, BlobLocation> =
        located.found.into_iter().map(|l| (l.id, l)).collect();
    let lists: Vec<&[FileChunk]> = files.iter().map(FileJob::chunks).collect();
    let Plan {
        uses,
        batches,
        left,
    } = Plan::new(&lists, &locations, BATCH_BYTES);
    drop(lists);
    let shared = Arc::new(Shared {
        reader: reader.clone(),
        table: FileTable::new(Arc::clone(&files), Arc::clone(&target), &left),
        target,
        files: Arc::clone(&files),
        chown,
        progress,
    });
    let (senders, threads) = start_writers(&shared).await;
    let uses = Arc::new(uses);
    let (in_order, mut in_order_rx) = mpsc::channel(BATCHES_ALIVE);
    let downloader = tokio::spawn(download(
        reader.clone(),
        Arc::clone(&files),
        Arc::clone(&uses),
        Arc::new(locations),
        batches,
        in_order,
    ));
    while let Some(download) = in_order_rx.recv().await {
        let (range, batch) = download
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        let parts = split(&uses[range], senders.len(), |u: &Use| u.chunk_in(&files).id);
        for (sender, uses) in senders.iter().zip(parts) {
            if !uses.is_empty() {
                let work = Work::Batch {
                    batch: Arc::clone(&batch),
                    uses,
                };
                // A writer only stops early by panicking, which the join below reports.
                let _ = sender.send(work).await;
            }
        }
    }
    downloader
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
    drop(senders);
    let mut ok = vec![true; files.len()];
    let mut problems = Problems::default();
    for thread in threads {
        let (failed, found) = thread
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        for index in failed {
            ok[index] = false;
        }
        problems.merge(found);
    }
    Ok((ok, problems))
}

type WriterThread = tokio::task::JoinHandle<(Vec<usize>, Problems)>;

/// Starts the [`writers`] and gives each its share of the files without
/// content, which need no download.
async fn start_writers(shared: &Arc<Shared>) -> (Vec<mpsc::Sender<Work>>, Vec<WriterThread>) {
    let count = writers();
    let mut senders = Vec::with_capacity(count);
    let mut threads = Vec::with_capacity(count);
    for _ in 0..count {
        let (tx, rx) = mpsc::channel::<Work>(1);
        senders.push(tx);
        let shared = Arc::clone(shared);
        threads.push(tokio::task::spawn_blocking(move || {
            Writer::new(&shared).run(rx)
        }));
    }
    let empty = shared.table.without_writes();
    for (writer, sender) in senders.iter().enumerate() {
        let share: Vec<usize> = empty.iter().copied().skip(writer).step_by(count).collect();
        if !share.is_empty() {
            // A writer only stops early by panicking, which the caller's join reports.
            let _ = sender.send(Work::Empty(share)).await;
        }
    }
    (senders, threads)
}

/// Downloads the batches, at most [`BATCHES_ALIVE`] held at once, each as
/// its own task (so downloads go on while the writers are busy), and sends
/// them in order to `in_order`.
async fn download(
    reader: RepoReader,
    files: Arc<Vec<FileJob>>,
    uses: Arc<Vec<Use>>,
    locations: Arc<HashMap<BlobId, BlobLocation>>,
    batches: Vec<std::ops::Range<usize>>,
    in_order: mpsc::Sender<tokio::task::JoinHandle<(std::ops::Range<usize>, Arc<Batch>)>>,
) {
    let alive = Arc::new(Semaphore::new(BATCHES_ALIVE));
    for range in batches {
        let permit = Arc::clone(&alive)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut ids: Vec<BlobId> = uses[range.clone()]
            .iter()
            .map(|u| u.chunk_in(&files).id)
            .collect();
        ids.dedup();
        let (reader, locations) = (reader.clone(), Arc::clone(&locations));
        let download = tokio::spawn(async move {
            let blobs = fetch(&reader, &locations, &ids).await;
            (range, Arc::new(Batch { blobs, permit }))
        });
        if in_order.send(download).await.is_err() {
            break;
        }
    }
}

/// Deals the blobs of `uses` out to `writers` shares in turn, each blob
/// with all its uses (adjacent in `uses`), so every writer opens its own
/// blobs and the batch's work is spread evenly.
fn split(uses: &[Use], writers: usize, id: impl Fn(&Use) -> BlobId) -> Vec<Vec<Use>> {
    let mut shares: Vec<Vec<Use>> = vec![Vec::new(); writers];
    for (n, group) in uses.chunk_by(|a, b| id(a) == id(b)).enumerate() {
        shares[n % writers].extend_from_slice(group);
    }
    shares
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_dealt_out_blob_by_blob_keeping_each_blobs_uses_together() {
        // Arrange: blob 1 used twice, then blobs 2, 3 and 4 once.
        let ids = [1u8, 1, 2, 3, 4];
        let uses: Vec<Use> = (0..ids.len())
            .map(|file| Use {
                file,
                offset: 0,
                chunk: 0,
            })
            .collect();

        // Act
        let shares = split(&uses, 2, |u| BlobId::from_bytes([ids[u.file]; 32]));

        // Assert
        let files: Vec<Vec<usize>> = shares
            .iter()
            .map(|share| share.iter().map(|u| u.file).collect())
            .collect();
        assert_eq!(files, [vec![0, 1, 3], vec![2, 4]]);
    }
}
