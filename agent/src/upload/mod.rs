//! The upload engine: turns byte streams and tree blobs into sealed blobs in
//! packs on the server, as fast as the cores allow, in bounded memory.
//!
//! # Pipeline
//!
//! ```text
//! caller threads          dedup thread          seal threads (N)        runtime
//! read, FastCDC, keyed ─▶ batch ids, one ─────▶ zstd + XChaCha20 into ─▶ PUT pack,
//! BLAKE3 id, seen set     `missing` query       per-pack data key,      ≤ K at once,
//!                         per batch             pack at target size     one throttle
//! ```
//!
//! - Chunking and naming run in the caller's thread, so the backup's own
//!   worker threads spread reading and hashing over the cores.
//! - A set of ids seen this run drops a blob repeated within the run before
//!   it costs anything but its hash; the dedup thread asks the server about
//!   the rest in batches ([`batch`]), and blobs the server holds are dropped
//!   too — the server has leased them to this session, which is why a backup
//!   rerun after `kill -9` uploads nothing it already sent.
//! - The seal pool ([`seal`]) compresses (the repository's zstd level) and
//!   encrypts under each pack's own data key ([`pack`]); data and trees go
//!   into separate packs. Uploads ([`send`]) run on the tokio runtime, at
//!   most `uploads_in_flight` at once, sharing the `--limit-upload` throttle.
//! - The first fatal error (a failed `missing` query, a pack the server
//!   refused after retries) stops the engine ([`state`]): every later call and
//!   [`Uploader::finish`] report it, naming the pack and the server's answer.
//!   A failing *reader* is not fatal: [`UploadError::Read`] goes back to the
//!   caller, which records the file and goes on.
//!
//! # Memory
//!
//! Bounded whatever the amount of data, by:
//! - plaintext in flight (queued, waiting for the `missing` answer, or
//!   waiting for a seal thread): at most [`PLAINTEXT_BUDGET`] (24 MiB)
//!   ([`budget`]); callers wait when it is spent;
//! - each caller thread's chunking window: up to 1.5 times the maximum
//!   chunk size (12 MiB with the default 8 MiB maximum), reused across streams;
//! - packs: `uploads_in_flight + 1` data packs at most (one open, shared by
//!   the seal threads; the others waiting for an upload slot or being
//!   sent), plus one tree pack, each up to the target size plus one blob
//!   (~16–24 MiB): with 2 uploads, at most 3 data packs;
//! - the seen set, the only part growing with the data: 32 bytes of id plus
//!   hash-table overhead, 37–75 bytes per distinct blob depending on the
//!   table's fill — about 50 MB per million chunks (~1 TB of unique data at
//!   the 1 MiB average chunk).

mod batch;
mod budget;
mod dedup;
mod error;
mod pack;
mod plaintext;
mod progress;
mod seal;
mod send;
mod state;

pub use error::UploadError;
pub use progress::UploadProgress;

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use stowage_protocol::blob::BlobKind;
use stowage_protocol::chunker::{Chunker, ChunkerError};
use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::{IdKey, WriteKeys};
use stowage_protocol::ids::{BlobId, UploadSessionId};
use stowage_protocol::tree::{FileChunk, TreeBlob};

use self::batch::BatchLimits;
use self::budget::{ByteBudget, Lease};
use self::dedup::Dedup;
use self::plaintext::Plaintext;
use self::progress::add;
use self::seal::Sealing;
use self::send::Uploads;
use self::state::Shared;
use crate::api::ServerClient;
use crate::throttle::Throttle;
use crate::units::Rate;

/// Plaintext bytes queued in the engine at most (see "Memory" above).
pub const PLAINTEXT_BUDGET: u64 = 24 * 1024 * 1024;

/// How the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// `--limit-upload`: one limit for the sum of all uploads in flight.
    pub limit_upload: Option<Rate>,
    /// Pack uploads running at once: enough to hide one request's latency
    /// behind the others, few enough that packs do not pile up in memory.
    pub uploads_in_flight: usize,
    /// Threads compressing and encrypting: one per core keeps every core busy.
    pub seal_threads: usize,
}

impl Default for UploadOptions {
    /// 2 uploads in flight (on loopback a third bought no speed, only a
    /// pack's worth of memory), a seal thread per available core.
    fn default() -> Self {
        Self {
            limit_upload: None,
            uploads_in_flight: 2,
            seal_threads: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        }
    }
}

/// A blob on its way through the engine.
#[derive(Debug)]
struct Blob {
    kind: BlobKind,
    id: BlobId,
    plaintext: Plaintext,
    /// Tree blobs only: the ids the tree references.
    refs: Vec<BlobId>,
    /// The plaintext's share of [`PLAINTEXT_BUDGET`], returned on drop.
    #[allow(dead_code, reason = "held for its Drop, which returns the budget")]
    lease: Lease,
}

/// The upload engine of one backup: one upload session, shared by every
/// worker thread of the backup (it is `Send + Sync`).
///
/// Every method blocks; call them from std threads, never from a runtime
/// worker (the engine drives its requests through the runtime `Handle`,
/// which must belong to a multi-thread runtime).
#[derive(Debug)]
pub struct Uploader {
    shared: Arc<Shared>,
    id_key: IdKey,
    chunker: Chunker,
    budget: Arc<ByteBudget>,
    /// Ids queued this run: a repeat is dropped at once.
    seen: Mutex<HashSet<BlobId>>,
    /// Chunking windows returned by finished streams, for the next ones.
    windows: Mutex<Vec<Vec<u8>>>,
    /// To the dedup thread; `None` once finishing.
    input: Option<flume::Sender<Blob>>,
    sealing: Arc<Sealing>,
    uploads: Arc<Uploads>,
    dedup_thread: Option<JoinHandle<()>>,
    seal_threads: Vec<JoinHandle<()>>,
}

impl Uploader {
    /// Starts the engine's threads for uploads into `session`.
    ///
    /// # Errors
    ///
    /// [`UploadError::Chunker`] for unusable chunker parameters in `repo`,
    /// [`UploadError::Engine`] if a thread cannot be started.
    pub fn start(
        client: ServerClient,
        runtime: tokio::runtime::Handle,
        session: UploadSessionId,
        keys: WriteKeys,
        repo: &RepoConfig,
        options: UploadOptions,
    ) -> Result<Self, UploadError> {
        let chunker =
            Chunker::for_tenant(repo.chunker, &keys.id_key).map_err(UploadError::Chunker)?;
        let shared = Arc::new(Shared::default());
        let uploads = Arc::new(Uploads::new(
            client.clone(),
            runtime.clone(),
            session,
            Throttle::new(options.limit_upload),
            options.uploads_in_flight,
            Arc::clone(&shared),
        ));
        let sealing = Arc::new(Sealing {
            shared: Arc::clone(&shared),
            uploads: Arc::clone(&uploads),
            public_key: keys.public_key,
            compression: repo.compression(),
            target: usize::try_from(repo.pack_target_size).unwrap_or(usize::MAX),
            data: Mutex::default(),
            data_packs: ByteBudget::new(options.uploads_in_flight.max(1) as u64 + 1),
            trees: Mutex::new(None),
        });
        let threads = options.seal_threads.max(1);
        let (to_dedup, dedup_input) = flume::bounded::<Blob>(4096);
        let (to_seal, seal_input) = flume::bounded::<Blob>(threads);
        let mut uploader = Self {
            shared: Arc::clone(&shared),
            id_key: keys.id_key,
            chunker,
            budget: ByteBudget::new(PLAINTEXT_BUDGET),
            seen: Mutex::new(HashSet::new()),
            windows: Mutex::new(Vec::new()),
            input: Some(to_dedup),
            sealing: Arc::clone(&sealing),
            uploads,
            dedup_thread: None,
            seal_threads: Vec::with_capacity(threads),
        };
        for n in 0..threads {
            let sealing = Arc::clone(&sealing);
            let input = seal_input.clone();
            uploader
                .seal_threads
                .push(spawn(format!("stowage-seal-{n}"), move || {
                    sealing.run(&input);
                })?);
        }
        let dedup = Dedup {
            client,
            runtime,
            session,
            shared,
            limits: BatchLimits::for_budget(PLAINTEXT_BUDGET),
            output: to_seal,
        };
        uploader.dedup_thread = Some(spawn("stowage-dedup".into(), move || {
            dedup.run(&dedup_input);
        })?);
        Ok(uploader)
    }

    /// Reads `reader` to its end, chunks it, queues the chunks the server
    /// lacks for upload and returns the ordered chunks (ids and plaintext
    /// lengths, as a tree stores them). `on_bytes` hears each read's byte count.
    ///
    /// # Errors
    ///
    /// [`UploadError::Read`] when `reader` fails: the engine stays usable.
    /// Any other error is the engine's fatal error.
    pub fn store_stream(
        &self,
        reader: &mut dyn Read,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<FileChunk>, UploadError> {
        self.shared.check()?;
        let window = self
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let counting = CountingReader {
            inner: reader,
            on_bytes,
            shared: &self.shared,
        };
        let mut stream = self.chunker.stream_with_buffer(counting, window);
        let mut ids = Vec::new();
        let outcome = loop {
            match stream.next_chunk() {
                Ok(Some(chunk)) => {
                    let id = self.id_key.chunk_id(chunk.data);
                    let Ok(len) = u32::try_from(chunk.data.len()) else {
                        break Err(UploadError::Engine {
                            what: "chunker",
                            problem: format!(
                                "it cut a chunk of {} bytes, more than a tree can record",
                                chunk.data.len()
                            ),
                        });
                    };
                    ids.push(FileChunk { id, len });
                    add(&self.shared.counters.chunks, 1);
                    if let Err(error) = self.queue(
                        BlobKind::Data,
                        id,
                        chunk.data.len(),
                        || Plaintext::copy_of(chunk.data),
                        Vec::new(),
                    ) {
                        break Err(error);
                    }
                }
                Ok(None) => break Ok(ids),
                Err(ChunkerError::Read { offset, source }) => {
                    break Err(UploadError::Read { offset, source });
                }
                Err(other) => break Err(UploadError::Chunker(other)),
            }
        };
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stream.into_buffer());
        outcome
    }

    /// Queues one tree blob (into tree packs, apart from data).
    ///
    /// # Errors
    ///
    /// The engine's fatal error, if it has one.
    pub fn store_tree(&self, tree: TreeBlob) -> Result<(), UploadError> {
        self.shared.check()?;
        let TreeBlob {
            id,
            plaintext,
            refs,
        } = tree;
        self.queue(
            BlobKind::Tree,
            id,
            plaintext.len(),
            || plaintext.into(),
            refs,
        )
    }

    /// Queues one data blob (the snapshot's error log) and returns its id.
    ///
    /// # Errors
    ///
    /// The engine's fatal error, if it has one.
    pub fn store_data(&self, plaintext: Vec<u8>) -> Result<BlobId, UploadError> {
        self.shared.check()?;
        let id = self.id_key.chunk_id(&plaintext);
        self.queue(
            BlobKind::Data,
            id,
            plaintext.len(),
            || plaintext.into(),
            Vec::new(),
        )?;
        Ok(id)
    }

    /// The counters now.
    pub fn progress(&self) -> UploadProgress {
        self.shared.counters.snapshot()
    }

    /// Seals and uploads everything queued, closes the open packs and waits
    /// for every upload: afterwards every blob stored through this engine is
    /// on the server (or held by it already), so the snapshot may be committed.
    ///
    /// # Errors
    ///
    /// The engine's first fatal error (a refused or unreachable upload,
    /// naming the pack), or a thread that died.
    pub fn finish(mut self) -> Result<UploadProgress, UploadError> {
        // No more blobs: the dedup thread sends its last batch and ends,
        // which ends the seal threads once they have drained.
        drop(self.input.take());
        let mut died = None;
        let threads = self
            .dedup_thread
            .take()
            .into_iter()
            .chain(self.seal_threads.drain(..));
        for thread in threads {
            let name = thread.thread().name().unwrap_or("engine thread").to_owned();
            if thread.join().is_err() {
                died.get_or_insert(name);
            }
        }
        if let Some(name) = died {
            self.shared.fail(UploadError::Engine {
                what: "thread",
                problem: format!("{name} panicked"),
            });
        }
        self.sealing.flush();
        self.uploads.wait_all();
        match self.shared.failure() {
            None => Ok(self.progress()),
            Some(error) => Err(Arc::try_unwrap(error).unwrap_or_else(UploadError::Stopped)),
        }
    }

    /// Hands one blob to the pipeline unless this run already did: takes
    /// its share of the budget (waiting if spent), then makes its plaintext
    /// with `plaintext` — so a repeat costs no copy.
    fn queue(
        &self,
        kind: BlobKind,
        id: BlobId,
        len: usize,
        plaintext: impl FnOnce() -> Plaintext,
        refs: Vec<BlobId>,
    ) -> Result<(), UploadError> {
        let first = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        if !first {
            add(&self.shared.counters.blobs_deduplicated, 1);
            return Ok(());
        }
        let lease = self.budget.acquire(len as u64);
        self.shared.check()?;
        let blob = Blob {
            kind,
            id,
            plaintext: plaintext(),
            refs,
            lease,
        };
        let sent = self.input.as_ref().map(|input| input.send(blob));
        if let Some(Ok(())) = sent {
            return Ok(());
        }
        self.shared.check()?;
        Err(UploadError::Engine {
            what: "dedup thread",
            problem: "it has ended".into(),
        })
    }
}

impl Drop for Uploader {
    /// Dropped without [`Uploader::finish`] (the backup failed): stop every
    /// stage so nothing more is uploaded; the threads end on their own.
    fn drop(&mut self) {
        if self.input.is_some() {
            self.shared.abandon();
        }
    }
}

/// Starts a named engine thread.
fn spawn(name: String, run: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, UploadError> {
    let what = name.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(run)
        .map_err(|error| UploadError::Engine {
            what: "thread start",
            problem: format!("{what} could not start - {error}"),
        })
}

/// Counts bytes as the chunker reads them: progress for the caller and the engine.
struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    on_bytes: &'a mut dyn FnMut(u64),
    shared: &'a Shared,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.on_bytes)(n as u64);
            add(&self.shared.counters.bytes_read, n as u64);
        }
        Ok(n)
    }
}
