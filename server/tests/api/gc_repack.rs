//! Repack (`stowage_server::gc`, step 5) on real pack objects: a partly
//! dead pack becomes a pack of exactly its live sealed blobs, byte for
//! byte; the threshold, the dry run and a backup that leases a blob while
//! the new pack is written are respected. Each scenario runs on SQLite and,
//! when configured, on PostgreSQL.

use std::time::Duration;

use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PackReader, verify_pack_id};
use stowage_server::db::{gc_leases, packs};
use stowage_server::gc::{self, GcOptions, GcReport};
use stowage_server::ingest::pack_key;
use stowage_server::storage::ObjectStore;

use crate::gc_fixture::Stack;
use crate::gc_real_packs::{Sealed, sealed_data, sealed_tree};

/// Bytes of a data blob's table entry: kind, id, offset, length.
const DATA_ENTRY_LEN: u64 = 1 + 32 + 4 + 4;

on_both_stacks!(
    gc_repack_on_postgres:
    a_partly_dead_pack_becomes_a_pack_of_exactly_its_live_sealed_blobs,
    a_pack_at_the_threshold_is_left_alone_and_one_below_it_is_repacked,
    a_dry_run_reports_the_repack_and_writes_nothing,
    a_dead_blob_leased_while_its_pack_is_repacked_keeps_the_pack,
    a_live_blob_leased_while_its_pack_is_repacked_moves_to_the_new_pack,
    a_snapshot_committed_while_a_pack_is_repacked_keeps_what_it_reaches,
    a_blob_stored_in_two_packs_is_kept_once,
);

/// A snapshot of `root` (a tree over `a`) in one pack with a dead chunk
/// three times the live bytes, and the pack.
struct PartlyDead {
    pack: PackId,
    root: Sealed,
    a: Sealed,
    dead: Sealed,
}

async fn partly_dead(stack: &Stack) -> PartlyDead {
    let a = sealed_data(500);
    let dead = sealed_data(3000);
    let root = sealed_tree(100, &[a.id]);
    let pack = stack.real_pack(&[&root, &dead, &a]).await;
    stack.snapshot(root.id).await;
    PartlyDead {
        pack,
        root,
        a,
        dead,
    }
}

async fn location(stack: &Stack, blob: BlobId) -> Option<PackId> {
    packs::locate(&stack.db, stack.tenant, &[blob])
        .await
        .unwrap()
        .pop()
        .map(|location| location.pack_id)
}

async fn collect(stack: &Stack, options: GcOptions) -> GcReport {
    gc::collect(&stack.db, stack.store.as_ref(), stack.tenant, options)
        .await
        .unwrap()
}

fn options(repack_below_percent: u8) -> GcOptions {
    GcOptions {
        orphan_min_age: Duration::ZERO,
        repack_below_percent,
        ..GcOptions::default()
    }
}

async fn a_partly_dead_pack_becomes_a_pack_of_exactly_its_live_sealed_blobs(stack: &Stack) {
    // Arrange
    let repo = partly_dead(stack).await;
    let stored_before = stack.stored_bytes().await;

    // Act
    let report = stack.collect(false).await;

    // Assert: the new pack holds the live blobs, verbatim, and nothing else.
    assert_eq!(report.packs_repacked, 1, "{report:?}");
    assert_eq!(report.repack_packs_written, 1, "{report:?}");
    assert_eq!(
        report.repack_bytes_copied,
        (repo.root.bytes.len() + repo.a.bytes.len()) as u64
    );
    assert_eq!(report.repack_blobs_dropped, 1, "{report:?}");
    let new = location(stack, repo.a.id).await.unwrap();
    assert_ne!(new, repo.pack);
    assert_eq!(location(stack, repo.root.id).await, Some(new));
    assert_eq!(location(stack, repo.dead.id).await, None);
    assert!(!stack.pack_exists(repo.pack).await);
    assert!(!stack.object_exists(repo.pack).await);
    let bytes = stack.store.get(&pack_key(stack.tenant, new)).await.unwrap();
    verify_pack_id(&bytes, &new).unwrap();
    let reader = PackReader::parse(&bytes).unwrap();
    let mut listed: Vec<BlobId> = reader.entries().iter().map(|entry| entry.id).collect();
    listed.sort_unstable();
    let mut live = vec![repo.root.id, repo.a.id];
    live.sort_unstable();
    assert_eq!(listed, live);
    assert_eq!(reader.find(&repo.root.id).unwrap().refs, vec![repo.a.id]);
    assert_eq!(stack.read_blob(repo.a.id).await, repo.a.bytes);
    assert_eq!(stack.read_blob(repo.root.id).await, repo.root.bytes);
    assert_eq!(
        packs::tree_refs(&stack.db, stack.tenant, repo.root.id)
            .await
            .unwrap(),
        vec![repo.a.id]
    );
    let dropped = repo.dead.bytes.len() as u64 + DATA_ENTRY_LEN;
    assert_eq!(stack.stored_bytes().await, stored_before - dropped);
    assert_eq!(report.repack_bytes_reclaimed, dropped);
    assert!(stack.unindexed_objects().await.is_empty());
    let again = stack.collect(false).await;
    assert_eq!(again.packs_repacked, 0, "{again:?}");
}

async fn a_pack_at_the_threshold_is_left_alone_and_one_below_it_is_repacked(stack: &Stack) {
    // Arrange: the live blobs fill `percent` % of the pack, and a bit more.
    let repo = partly_dead(stack).await;
    let size = packs::get(&stack.db, stack.tenant, repo.pack)
        .await
        .unwrap()
        .size;
    let live = (repo.root.bytes.len() + repo.a.bytes.len()) as u64;
    let percent = u8::try_from(live * 100 / size).unwrap();

    // Act
    let off = collect(stack, options(0)).await;
    let at = collect(stack, options(percent)).await;
    let kept = stack.pack_exists(repo.pack).await;
    let below = collect(stack, options(percent + 1)).await;

    // Assert
    assert_eq!(off.packs_repacked, 0, "{off:?}");
    assert_eq!(at.packs_repacked, 0, "{at:?}");
    assert!(kept, "a pack above the threshold was repacked");
    assert_eq!(below.packs_repacked, 1, "{below:?}");
    assert!(!stack.pack_exists(repo.pack).await);
}

async fn a_dry_run_reports_the_repack_and_writes_nothing(stack: &Stack) {
    // Arrange
    let repo = partly_dead(stack).await;
    let objects = stack.objects().await;

    // Act
    let report = stack.collect(true).await;

    // Assert
    assert_eq!(report.packs_repacked, 1, "{report:?}");
    assert_eq!(
        report.repack_bytes_copied,
        (repo.root.bytes.len() + repo.a.bytes.len()) as u64
    );
    assert_eq!(stack.objects().await, objects);
    assert_eq!(location(stack, repo.a.id).await, Some(repo.pack));
    assert_eq!(location(stack, repo.dead.id).await, Some(repo.pack));
}

/// Runs the mark, lets `between` act as a backup would, then the rest.
async fn collect_with(stack: &Stack, between: impl AsyncFnOnce()) -> GcReport {
    let mut report = GcReport::default();
    let marker = gc::mark(&stack.db, stack.tenant, &mut report)
        .await
        .unwrap();
    between().await;
    gc::sweep(
        &stack.db,
        stack.store.as_ref(),
        stack.tenant,
        marker,
        options(80),
        &mut report,
    )
    .await
    .unwrap();
    report
}

async fn a_dead_blob_leased_while_its_pack_is_repacked_keeps_the_pack(stack: &Stack) {
    // Arrange: a session open before the mark asks about the dead blob
    // after it, so the copy leaves that blob out.
    let repo = partly_dead(stack).await;
    let session = stack.open_session().await;

    // Act
    let report = collect_with(stack, async || {
        let missing =
            gc_leases::lease_present(&stack.db, stack.tenant, session.id, &[repo.dead.id])
                .await
                .unwrap();
        assert!(missing.is_empty());
    })
    .await;

    // Assert
    assert_eq!(report.packs_repacked, 0, "{report:?}");
    assert_eq!(report.repack_packs_kept, 1, "{report:?}");
    assert!(stack.pack_exists(repo.pack).await);
    for blob in [&repo.dead, &repo.a, &repo.root] {
        assert_eq!(location(stack, blob.id).await, Some(repo.pack));
        assert_eq!(stack.read_blob(blob.id).await, blob.bytes);
    }
    assert!(
        stack.unindexed_objects().await.is_empty(),
        "the abandoned new pack was left behind"
    );
}

async fn a_live_blob_leased_while_its_pack_is_repacked_moves_to_the_new_pack(stack: &Stack) {
    // Arrange
    let repo = partly_dead(stack).await;
    let session = stack.open_session().await;

    // Act
    let report = collect_with(stack, async || {
        gc_leases::lease_present(&stack.db, stack.tenant, session.id, &[repo.a.id])
            .await
            .unwrap();
    })
    .await;

    // Assert
    assert_eq!(report.packs_repacked, 1, "{report:?}");
    let new = location(stack, repo.a.id).await.unwrap();
    assert_ne!(new, repo.pack);
    assert_eq!(stack.read_blob(repo.a.id).await, repo.a.bytes);
    let missing = gc_leases::lease_present(&stack.db, stack.tenant, session.id, &[repo.a.id])
        .await
        .unwrap();
    assert!(missing.is_empty(), "the leased blob is no longer present");
}

async fn a_snapshot_committed_while_a_pack_is_repacked_keeps_what_it_reaches(stack: &Stack) {
    // Arrange: after the mark, a backup commits a snapshot reaching the
    // blob the mark found dead (as its root: no other pack is involved, so
    // the first catch-up is the repack's own, after the copy left it out).
    let repo = partly_dead(stack).await;

    // Act
    let report = collect_with(stack, async || {
        stack.snapshot(repo.dead.id).await;
    })
    .await;

    // Assert
    assert_eq!(report.packs_repacked, 0, "{report:?}");
    assert_eq!(report.repack_packs_kept, 1, "{report:?}");
    assert!(report.catch_ups >= 1, "{report:?}");
    assert_eq!(location(stack, repo.dead.id).await, Some(repo.pack));
    assert_eq!(stack.read_blob(repo.dead.id).await, repo.dead.bytes);
    assert!(stack.unindexed_objects().await.is_empty());
}

async fn a_blob_stored_in_two_packs_is_kept_once(stack: &Stack) {
    // Arrange: `a` was uploaded twice; its index row names the first pack,
    // so the copy in the second is dead weight there.
    let a = sealed_data(3000);
    let b = sealed_data(200);
    let root = sealed_tree(100, &[a.id, b.id]);
    let first = stack.real_pack(&[&root, &a]).await;
    let second = stack.real_pack(&[&a, &b]).await;
    stack.snapshot(root.id).await;

    // Act
    let report = stack.collect(false).await;

    // Assert
    assert_eq!(report.packs_repacked, 1, "{report:?}");
    assert!(stack.pack_exists(first).await);
    assert!(!stack.pack_exists(second).await);
    assert_eq!(location(stack, a.id).await, Some(first));
    let new = location(stack, b.id).await.unwrap();
    let bytes = stack.store.get(&pack_key(stack.tenant, new)).await.unwrap();
    let listed: Vec<BlobId> = PackReader::parse(&bytes)
        .unwrap()
        .entries()
        .iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(listed, vec![b.id]);
    assert_eq!(stack.read_blob(a.id).await, a.bytes);
    assert_eq!(stack.read_blob(b.id).await, b.bytes);
}
