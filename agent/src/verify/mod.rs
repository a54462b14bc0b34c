//! `stowage verify`: is every snapshot of this host (or the one named)
//! restorable, and if not, which files would come back damaged?
//!
//! Without `--read-data` the check is structural and cheap: every tree of
//! every snapshot is fetched, opened (which checks its tag) and decoded;
//! every chunk a file needs is located in the server's index; every pack
//! holding one is fetched up to its header and its data key opened. With
//! `--read-data` every such pack is downloaded whole, its BLAKE3 compared
//! with its id (damage in storage), its table parsed, and every needed blob
//! opened and checked against its keyed id — everything a restore would do
//! short of writing files.
//!
//! Every problem names the pack and the blob, and a second walk (only when
//! something is wrong) names the files each damages, so an operator knows
//! what a restore would lose.
//!
//! Memory grows with the number of distinct chunks the snapshots reference:
//! about 100 bytes each (the id set and its locations), so 1 TB of data in
//! 1 MiB chunks needs about 100 MB. Trees are visited once each however many
//! snapshots share them.

mod packs;
mod problem;
mod walk;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use stowage_protocol::api::{BlobLocation, SnapshotListItem};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::tree::EntryContent;

use crate::context::AgentContext;
use crate::reader::RepoReader;
use crate::throttle::Throttle;
use crate::units::Rate;

pub use problem::{AffectedFile, Problem};

/// Most affected files listed in a report (the count is always complete).
pub const MAX_LISTED_AFFECTED: usize = 1000;

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Download, decrypt and check every blob.
    pub read_data: bool,
    /// `--limit-download`.
    pub limit_download: Option<Rate>,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct trees read.
    pub trees: u64,
    /// File entries seen.
    pub files: u64,
    /// Distinct data blobs the snapshots need.
    pub data_blobs: u64,
    /// Packs checked.
    pub packs: u64,
    /// Blobs downloaded and opened (`--read-data`).
    pub blobs_read: u64,
    /// Bytes downloaded (`--read-data`).
    pub bytes_read: u64,
    /// Whether `--read-data` was given.
    pub read_data: bool,
    /// Wall time.
    pub seconds: f64,
    /// Everything wrong, each naming its pack and blob.
    pub problems: Vec<Problem>,
    /// Files a restore would not bring back intact (at most
    /// [`MAX_LISTED_AFFECTED`] listed).
    pub affected_files: Vec<AffectedFile>,
    /// How many files are affected in all.
    pub affected_file_count: u64,
}

/// Checks `snapshots`; `on_phase` is told what is happening, for progress.
///
/// # Errors
///
/// A write-only agent, or the server failing in a way that is not about
/// one object (problems with objects are in the report, not errors).
pub async fn verify(
    context: &AgentContext,
    snapshots: &[SnapshotListItem],
    options: VerifyOptions,
    mut on_phase: impl FnMut(&str),
) -> anyhow::Result<VerifyReport> {
    let started = Instant::now();
    let keys = context.reading_keys("verify backups")?.clone();
    let throttle = Arc::new(Throttle::new(options.limit_download));
    let reader = RepoReader::new(context.client.clone(), keys.clone(), Arc::clone(&throttle));
    let roots: Vec<_> = snapshots
        .iter()
        .map(|item| (item.id, item.record.root))
        .collect();

    on_phase("reading every directory tree");
    let mut needed: HashSet<BlobId> = snapshots
        .iter()
        .filter_map(|item| item.record.error_log)
        .collect();
    let mut files = 0u64;
    let (trees, mut problems) = walk::walk(&reader, &roots, |_, _, entry| {
        if let EntryContent::File { chunks, .. } = &entry.content {
            files += 1;
            needed.extend(chunks.iter().map(|chunk| chunk.id));
        }
    })
    .await;

    on_phase("locating every chunk");
    let ids: Vec<BlobId> = needed.iter().copied().collect();
    let located = reader.locate(&ids).await?;
    problems.extend(
        located
            .unknown
            .iter()
            .map(|blob| Problem::BlobMissing { blob: *blob }),
    );
    let mut by_pack: HashMap<PackId, Vec<BlobLocation>> = HashMap::new();
    for location in located.found {
        by_pack.entry(location.pack_id).or_default().push(location);
    }
    on_phase(if options.read_data {
        "downloading and checking every pack"
    } else {
        "checking every pack's header"
    });
    let pack_blobs: HashMap<PackId, Vec<BlobId>> = by_pack
        .iter()
        .map(|(pack, blobs)| (*pack, blobs.iter().map(|blob| blob.id).collect()))
        .collect();
    let check = Arc::new(packs::PackCheck {
        reader: reader.clone(),
        client: context.client.clone(),
        keys,
        throttle,
        max_blob_len: context.repo.chunker.max_size as usize,
    });
    let (tally, pack_problems) =
        packs::check_packs(check, by_pack, options.read_data, |_| {}).await;
    problems.extend(pack_problems);

    let mut report = VerifyReport {
        snapshots: snapshots.len() as u64,
        trees,
        files,
        data_blobs: needed.len() as u64,
        packs: tally.packs,
        blobs_read: tally.blobs_read,
        bytes_read: tally.bytes_read,
        read_data: options.read_data,
        ..VerifyReport::default()
    };
    drop(needed);

    let damaged = damaged_blobs(&problems, &pack_blobs);
    if !damaged.is_empty() {
        on_phase("finding the files the problems affect");
        let mut affected = Vec::new();
        let mut count = 0u64;
        walk::walk(&reader, &roots, |snapshot, dir, entry| {
            if let EntryContent::File { chunks, .. } = &entry.content
                && let Some(chunk) = chunks.iter().find(|chunk| damaged.contains(&chunk.id))
            {
                count += 1;
                if affected.len() < MAX_LISTED_AFFECTED {
                    affected.push(AffectedFile {
                        snapshot: *snapshot,
                        path: walk::display_path(&crate::restore::join(dir, entry.name.as_bytes())),
                        blob: chunk.id,
                    });
                }
            }
        })
        .await;
        report.affected_files = affected;
        report.affected_file_count = count;
    }
    report.problems = problems;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Every blob a problem makes unusable: missing or damaged ones, and all
/// needed blobs of a pack that is damaged or gone.
fn damaged_blobs(
    problems: &[Problem],
    pack_blobs: &HashMap<PackId, Vec<BlobId>>,
) -> HashSet<BlobId> {
    let mut damaged = HashSet::new();
    for problem in problems {
        match problem {
            Problem::BlobMissing { blob } | Problem::BlobDamaged { blob, .. } => {
                damaged.insert(*blob);
            }
            Problem::PackDamaged { pack, .. } | Problem::PackUnreadable { pack, .. } => {
                damaged.extend(pack_blobs.get(pack).into_iter().flatten().copied());
            }
            Problem::TreeUnreadable { .. } => {}
        }
    }
    damaged
}
