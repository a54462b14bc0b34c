//! The backup engine behind `stowage backup`, apart from the upload engine
//! ([`crate::upload`]) it feeds.
//!
//! # Layout
//! - [`source`]: PATH arguments → the snapshot layout (full absolute
//!   paths under the root, restic-style); [`exclude`]: `--exclude` globs.
//! - [`walk`]: the parallel walk that reads files and builds trees
//!   bottom-up; [`metadata`]: `lstat` → tree entries; [`sink`]: where
//!   contents and trees go (the uploader, or memory in tests).
//! - [`cache`]: the local cache that lets unchanged files skip reading;
//!   [`stats`]: counters and source errors; [`progress`]: warnings and the
//!   progress bar; [`priority`]: `--low-priority`; [`stream`]: `--stdin-name`.
//! - This file: [`run_job`], one backup from the upload session to the
//!   uploader's end, on a thread of its own.
//!
//! # Memory
//! Per file: nothing survives the file's directory — entries are held
//! until their directory's tree is built. So memory grows with the widest
//! directories and the depth of the tree (the walk stack), plus about 50
//! bytes per *directory* for each cache index (old and new). With
//! repository size it does not grow at all here: the agent keeps no index
//! of the repository (the server answers dedup queries), only the upload
//! engine's bounded queues.

pub mod cache;
pub mod exclude;
pub mod metadata;
pub mod priority;
pub mod progress;
pub mod sink;
pub mod source;
pub mod stats;
pub mod stream;
pub mod walk;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use stowage_protocol::api::UploadSession;
use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::WriteKeys;
use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::snapshot::{RawPath, encode_error_log};
use stowage_protocol::tree::EntryName;

use crate::api::ServerClient;
use crate::upload::{UploadOptions, UploadProgress, Uploader};

use self::cache::{CacheReader, CacheWriter};
use self::exclude::Excludes;
use self::progress::Reporter;
use self::source::Sources;
use self::stats::{Counts, Stats};

/// What a backup covers.
#[derive(Debug, Clone)]
pub enum Source {
    /// Files and directories.
    Paths {
        /// The arguments.
        sources: Sources,
        /// What to skip.
        excludes: Excludes,
        /// Stay on each directory's file system.
        one_file_system: bool,
    },
    /// One stream stored as a file of this name.
    Stream {
        /// The file's name in the snapshot.
        name: EntryName,
        /// The command whose output is the stream; standard input if `None`.
        command: Option<String>,
    },
}

impl Source {
    /// The paths the snapshot record lists: the absolute arguments, or the stream's name.
    pub fn record_paths(&self) -> Vec<RawPath> {
        match self {
            Self::Paths { sources, .. } => sources.record_paths(),
            Self::Stream { name, .. } => vec![RawPath(name.as_bytes().to_vec())],
        }
    }
}

/// Everything one backup run needs.
#[derive(Debug)]
pub struct Job {
    /// The server.
    pub client: ServerClient,
    /// The runtime the uploader does its network I/O on.
    pub runtime: tokio::runtime::Handle,
    /// The open upload session.
    pub session: UploadSession,
    /// The keys that name and seal.
    pub keys: WriteKeys,
    /// Chunker, pack and compression settings.
    pub repo: RepoConfig,
    /// Upload settings (rate limit, parallelism).
    pub upload: UploadOptions,
    /// What to back up.
    pub source: Source,
    /// This source's cache file.
    pub cache_path: PathBuf,
    /// The parent snapshot: the old cache is trusted only if it describes it.
    pub parent: Option<SnapshotId>,
    /// `--low-priority`.
    pub low_priority: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Reader threads of the walk.
    pub readers: usize,
    /// The run's counters, shared so a caller can watch them and ask the
    /// walk to stop ([`Stats::request_stop`]).
    pub stats: Arc<Stats>,
}

/// What a finished run hands to the commit.
#[derive(Debug)]
pub struct JobOutput {
    /// The root tree.
    pub root: BlobId,
    /// The sealed error log, when files failed.
    pub error_log: Option<BlobId>,
    /// Every error, past the log's cap too.
    pub errors: u64,
    /// The walk's counts.
    pub counts: Counts,
    /// The uploader's final counts.
    pub upload: UploadProgress,
    /// The new cache, to commit once the snapshot is.
    pub new_cache: Option<CacheWriter>,
}

/// The cache file of the backups of `paths` on `host`.
pub fn cache_path(cache_dir: &Path, host: &str, paths: &[RawPath]) -> PathBuf {
    let mut hasher = blake3::Hasher::new();
    hasher.update(host.as_bytes());
    for path in paths {
        hasher.update(b"\0");
        hasher.update(&path.0);
    }
    let name = hasher.finalize().to_hex();
    cache_dir
        .join("backup")
        .join(format!("{}.cache", &name[..32]))
}

/// Runs `job` on a thread of its own (so `--low-priority` touches only the
/// backup's threads) and waits for it.
///
/// # Errors
///
/// As [`run_job`], or the thread cannot be started.
pub async fn run_on_thread(job: Job) -> anyhow::Result<JobOutput> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("stowage-backup".to_owned())
        .spawn(move || {
            let _ = done.send(run_job(job));
        })
        .context("unable to start the backup thread")?;
    result
        .await
        .context("the backup thread stopped without an answer")?
}

/// One backup from the open session to the uploader's end: every blob of
/// the snapshot is on the server when this returns.
///
/// # Errors
///
/// The uploader fails, a tree cannot be built, the stream's command fails.
pub fn run_job(job: Job) -> anyhow::Result<JobOutput> {
    let reporter = Reporter::new(job.progress);
    if job.low_priority {
        priority::lower_this_thread(&reporter);
    }
    let uploader = Uploader::start(
        job.client,
        job.runtime,
        job.session.session_id,
        job.keys.clone(),
        &job.repo,
        job.upload,
    )
    .context("unable to start the upload engine")?;
    let stats = &*job.stats;
    let (root, new_cache) = match &job.source {
        Source::Paths {
            sources,
            excludes,
            one_file_system,
        } => {
            let old_cache = job
                .parent
                .and_then(|parent| CacheReader::open(&job.cache_path, &parent).ok());
            let new_cache = Mutex::new(match CacheWriter::create(&job.cache_path) {
                Ok(writer) => Some(writer),
                Err(error) => {
                    reporter.warn(&format!(
                        "unable to write the local cache {} ({error}); the next backup will read every file",
                        job.cache_path.display()
                    ));
                    None
                }
            });
            let context = walk::WalkContext {
                sink: &uploader,
                id_key: &job.keys.id_key,
                sources,
                excludes,
                old_cache: old_cache.as_ref(),
                new_cache: &new_cache,
                stats,
                reporter: &reporter,
                readers: job.readers,
                one_file_system: *one_file_system,
            };
            let root = reporter.track(stats, sources, excludes, *one_file_system, || {
                walk::walk(&context)
            })?;
            (
                root,
                new_cache
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        }
        Source::Stream { name, command } => {
            let root = stream::back_up_stream(
                &uploader,
                &job.keys.id_key,
                name,
                command.as_deref(),
                stats,
            )?;
            (root, None)
        }
    };
    let errors = stats.error_count();
    let error_log = if errors > 0 {
        let log = encode_error_log(&stats.errors());
        Some(
            uploader
                .store_data(log)
                .context("storing the error log failed")?,
        )
    } else {
        None
    };
    let upload = uploader.finish().context("finishing the upload failed")?;
    Ok(JobOutput {
        root,
        error_log,
        errors,
        counts: stats.counts(),
        upload,
        new_cache,
    })
}

/// Reader threads for this machine: one per core (at least 2, so one
/// file's I/O wait overlaps another's hashing), while the seal pool does the
/// heavy CPU. Each reader holds a chunking window of twice the largest
/// chunk; on 1.5 GB of real files two readers per core were no faster and
/// cost 30 MB more.
pub fn default_readers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .clamp(2, 8)
}
