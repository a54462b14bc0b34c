//! `stowage backup`: finds the parent snapshot, runs the backup engine
//! ([`crate::backup`]) on its own thread, commits the snapshot, then saves
//! the local cache and prints the summary.
//!
//! The parent is the newest snapshot of the same host with the same set of
//! paths. Its id is what makes the local cache trustworthy: the cache is
//! used only if it describes exactly that snapshot, so a lost, damaged or
//! stale cache (its snapshot forgotten on the server) costs a re-read and
//! never correctness. The new cache replaces the old one only after the
//! server accepted the commit.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use chrono::Utc;
use serde::Serialize;
use stowage_protocol::ids::{PlanId, SnapshotId};
use stowage_protocol::snapshot::{RawPath, SnapshotRecord, SnapshotSummary};
use stowage_protocol::tree::EntryName;

use crate::backup::exclude::Excludes;
use crate::backup::source::Sources;
use crate::backup::stats::{Counts, Stats};
use crate::backup::{self, Job, JobOutput, Source};
use crate::cli::{BackupArgs, Global, Outcome};
use crate::context::AgentContext;
use crate::snapshot_select::{self, Hosts};
use crate::units::Bytes;
use crate::upload::{UploadOptions, UploadProgress};

/// Runs `stowage backup`.
///
/// # Errors
///
/// Not enrolled, a path argument that does not exist, an invalid exclude
/// pattern, a failing `--command`, or the server refusing (named).
pub async fn run(global: &Global, args: BackupArgs) -> anyhow::Result<Outcome> {
    run_for_plan(global, args, None, Arc::default())
        .await
        .map(|finished| finished.outcome)
}

/// What a backup run for a plan's job reports back.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status.
    pub outcome: Outcome,
    /// Regular files in the snapshot.
    pub files: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// The summary printed, for the job's log.
    pub summary: String,
}

/// `stowage backup` for plan `plan` (recorded in the session and the
/// snapshot), as the daemon runs it, counting into `stats` (which the
/// daemon reads for its progress reports, and may ask to stop).
///
/// # Errors
///
/// As [`run`].
pub async fn run_for_plan(
    global: &Global,
    args: BackupArgs,
    plan: Option<PlanId>,
    stats: Arc<Stats>,
) -> anyhow::Result<Finished> {
    let started_at = args.time.unwrap_or_else(Utc::now);
    let clock = Instant::now();
    let context = AgentContext::load(global)?;
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| context.profile.hostname.clone());
    let source = source(&args)?;
    let paths = source.record_paths();
    let parent = find_parent(&context, &host, &paths).await?;
    let session = context
        .client
        .open_session(plan)
        .await
        .context("unable to open an upload session")?;
    let cache_path = backup::cache_path(&context.cache_dir, &host, &paths);
    let job = Job {
        client: context.client.clone(),
        runtime: tokio::runtime::Handle::current(),
        session: session.clone(),
        keys: context.keys.write_keys(),
        repo: context.repo,
        upload: UploadOptions {
            limit_upload: args.limit_upload,
            ..UploadOptions::default()
        },
        source,
        cache_path: cache_path.clone(),
        parent,
        low_priority: args.low_priority,
        progress: !global.no_progress && !args.json,
        readers: backup::default_readers(),
        stats,
    };
    let output = backup::run_on_thread(job).await?;
    let record = SnapshotRecord {
        root: output.root,
        parent,
        hostname: host,
        agent: context.profile.agent_id,
        plan,
        paths,
        tags: args.tags.clone(),
        started_at,
        finished_at: started_at + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default(),
        summary: summary(&output),
        error_log: output.error_log,
    };
    let committed = context
        .client
        .commit(&session.session_id, &record)
        .await
        .map_err(|error| {
            let missing = error.missing_blobs();
            if missing.is_empty() {
                anyhow::Error::new(error).context("the server refused the snapshot")
            } else {
                anyhow::anyhow!(
                    "the server refused the snapshot: {} blobs it references are not stored \
                     (first: {}); {}",
                    missing.len(),
                    missing[0],
                    drop_stale_cache(&cache_path)
                )
            }
        })?;
    if let Some(cache) = output.new_cache
        && let Err(error) = cache.commit(&committed.snapshot_id)
    {
        eprintln!(
            "stowage: warning: unable to save the local cache ({error}); the next backup \
                 will read every file"
        );
    }
    let report = Report {
        snapshot_id: committed.snapshot_id,
        parent,
        counts: output.counts,
        upload: output.upload,
        errors: output.errors,
        duration_seconds: clock.elapsed().as_secs_f64(),
    };
    let summary = report.human();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{summary}");
    }
    Ok(Finished {
        outcome: if output.counts.unreadable > 0 {
            Outcome::Partial
        } else {
            Outcome::Success
        },
        files: output.counts.files,
        bytes_read: output.counts.bytes_read,
        summary,
    })
}

/// After the server refused a snapshot for blobs it does not hold: those
/// are chunks of unchanged files, taken from the local cache without
/// reading them, which the server no longer has (collected, or its index
/// repaired). Removing the cache makes the next run read every file and
/// upload what is missing, instead of failing the same way every time.
/// Returns what to tell the operator.
fn drop_stale_cache(cache_path: &Path) -> String {
    match std::fs::remove_file(cache_path) {
        Ok(()) => format!(
            "the local cache named chunks the server no longer holds, so it was removed ({}): \
             run the backup again and it will read every file",
            cache_path.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            "run the backup again".to_owned()
        }
        Err(error) => format!(
            "the local cache may name chunks the server no longer holds, and removing it \
             failed ({}: {error}): delete it, then run the backup again",
            cache_path.display()
        ),
    }
}

fn source(args: &BackupArgs) -> anyhow::Result<Source> {
    if let Some(name) = &args.stdin_name {
        let name = EntryName::new(name.as_bytes()).map_err(|error| {
            anyhow::anyhow!("--stdin-name {name:?} is not a file name: {error}")
        })?;
        return Ok(Source::Stream {
            name,
            command: args.command.clone(),
        });
    }
    let cwd = std::env::current_dir().context("unable to find the working directory")?;
    Ok(Source::Paths {
        sources: Sources::resolve(&args.paths, &cwd)?,
        excludes: Excludes::new(&args.exclude, &args.exclude_file)?,
        one_file_system: args.one_file_system,
    })
}

/// The newest snapshot of `host` with exactly these paths.
async fn find_parent(
    context: &AgentContext,
    host: &str,
    paths: &[RawPath],
) -> anyhow::Result<Option<SnapshotId>> {
    let snapshots = snapshot_select::list(&context.client, &Hosts::One(host.to_owned()))
        .await
        .context("unable to list this host's snapshots to find the parent")?;
    Ok(snapshots
        .into_iter()
        .find(|item| {
            let mut theirs = item.record.paths.clone();
            theirs.sort();
            theirs == paths
        })
        .map(|item| item.id))
}

fn summary(output: &JobOutput) -> SnapshotSummary {
    let counts = &output.counts;
    let upload = &output.upload;
    let offered = upload.chunks + counts.tree_blobs + u64::from(output.error_log.is_some());
    SnapshotSummary {
        files: counts.files,
        dirs: counts.dirs,
        total_bytes: counts.total_bytes,
        bytes_read: counts.bytes_read,
        bytes_added: upload.bytes_new,
        blobs_added: offered.saturating_sub(upload.blobs_deduplicated),
        errors: output.errors,
    }
}

/// The summary printed at the end (`--json` prints it as JSON).
#[derive(Debug, Serialize)]
struct Report {
    snapshot_id: SnapshotId,
    parent: Option<SnapshotId>,
    #[serde(flatten)]
    counts: Counts,
    upload: UploadProgress,
    errors: u64,
    duration_seconds: f64,
}

impl Report {
    fn human(&self) -> String {
        let c = &self.counts;
        let u = &self.upload;
        let parent = self
            .parent
            .map_or_else(|| "none".to_owned(), |id| id.to_hex()[..16].to_owned());
        let mut out = format!(
            "snapshot {} saved (parent {parent})\n\
             files: {} new, {} changed, {} unchanged ({} in all, {})\n\
             dirs:  {} new, {} changed, {} unchanged\n\
             read {}, added {} in {} new chunks; uploaded {} packs ({} data, {} tree), {}\n",
            &self.snapshot_id.to_hex()[..16],
            c.files_new,
            c.files_changed,
            c.files_unchanged,
            c.files,
            Bytes(c.total_bytes),
            c.dirs_new,
            c.dirs_changed,
            c.dirs_unchanged,
            Bytes(c.bytes_read),
            Bytes(u.bytes_new),
            u.chunks_new,
            u.packs_uploaded,
            u.data_packs_uploaded,
            u.tree_packs_uploaded,
            Bytes(u.bytes_uploaded),
        );
        if self.errors > 0 {
            let _ = writeln!(
                out,
                "{} errors: {} unreadable (skipped), {} changed while read; see the warnings above",
                self.errors, c.unreadable, c.changed_while_read
            );
        }
        let _ = writeln!(out, "took {:.1} s", self.duration_seconds);
        out
    }
}
