//! Garbage collection (`stowage_server::gc`) on a repository built straight
//! into the index: it removes exactly the packs nothing needs, keeps what
//! snapshots and running backups need, and a dry run changes nothing.
//! Each scenario runs on SQLite and, when configured, on PostgreSQL.

use std::time::Duration;

use stowage_server::db::{complete_trees, gc_leases, gc_sweep, upload_sessions};
use stowage_server::gc::{self, GcOptions, GcReport};
use stowage_server::ingest::pack_key;
use stowage_server::storage::ObjectStore;

use crate::gc_fixture::{PACK_SIZE, Stack, data, tree};

on_both_stacks!(
    gc_on_postgres:
    a_forgotten_snapshot_loses_exactly_the_packs_only_it_used,
    a_blob_leased_to_a_live_session_is_kept_with_everything_below_it,
    a_blob_leased_to_an_expired_session_is_collected,
    a_dry_run_reports_what_it_would_reclaim_and_changes_nothing,
    a_snapshot_committed_between_mark_and_sweep_keeps_its_blobs,
    a_blob_reported_present_between_mark_and_sweep_keeps_its_pack,
    a_dead_tree_left_in_a_partly_dead_pack_is_no_longer_recorded_complete,
    an_orphan_object_is_deleted_only_once_it_is_older_than_the_orphan_age,
    a_second_run_finds_nothing_more_to_reclaim,
    a_run_that_marked_before_another_swept_finds_nothing_left_to_delete,
);

async fn a_forgotten_snapshot_loses_exactly_the_packs_only_it_used(stack: &Stack) {
    // Arrange: A and B share `shared`; `mixed` holds one blob of each.
    let (s1, s2) = (data(), data());
    let shared = stack.pack(&[s1.clone(), s2.clone()]).await;
    let (only_a, only_b, a_in_mixed, b_in_mixed) = (data(), data(), data(), data());
    let mixed = stack.pack(&[a_in_mixed.clone(), b_in_mixed.clone()]).await;
    let root_a = tree(&[s1.id, s2.id, only_a.id, a_in_mixed.id]);
    let root_b = tree(&[s1.id, only_b.id, b_in_mixed.id]);
    let pack_a = stack.pack(&[root_a.clone(), only_a.clone()]).await;
    let pack_b = stack.pack(&[root_b.clone(), only_b.clone()]).await;
    let snapshot_a = stack.snapshot(root_a.id).await;
    stack.snapshot(root_b.id).await;
    stack.forget(snapshot_a).await;

    // Act
    let report = stack.collect(false).await;

    // Assert
    assert_eq!(report.packs_deleted, 1, "{report:?}");
    assert_eq!(report.blobs_deleted, 2);
    assert_eq!(report.bytes_reclaimed, PACK_SIZE);
    assert!(!stack.pack_exists(pack_a).await);
    assert!(!stack.object_exists(pack_a).await);
    assert!(!stack.blob_exists(root_a.id).await);
    assert!(!stack.blob_exists(only_a.id).await);
    for pack in [shared, mixed, pack_b] {
        assert!(stack.pack_exists(pack).await);
    }
    for blob in [
        s1.id,
        s2.id,
        root_b.id,
        only_b.id,
        a_in_mixed.id,
        b_in_mixed.id,
    ] {
        assert!(
            stack.blob_exists(blob).await,
            "live blob {blob} was collected"
        );
    }
    assert_eq!(
        report.partly_dead_packs, 2,
        "shared holds s2, mixed holds a's blob"
    );
    assert_eq!(report.partly_dead_blobs, 2);
    assert_eq!(report.bytes_reclaimable_by_repack, 20);
}

async fn a_blob_leased_to_a_live_session_is_kept_with_everything_below_it(stack: &Stack) {
    // Arrange: no snapshot at all; a session leases a lone data blob and a
    // tree (not what is below it).
    let lone = data();
    let below = data();
    let leased_tree = tree(&[below.id]);
    let lone_pack = stack.pack(std::slice::from_ref(&lone)).await;
    let below_pack = stack.pack(std::slice::from_ref(&below)).await;
    let tree_pack = stack.pack(std::slice::from_ref(&leased_tree)).await;
    let unleased = stack.pack(&[data()]).await;
    let session = stack.open_session().await;
    upload_sessions::lease_blobs(
        &stack.db,
        stack.tenant,
        session.id,
        &[lone.id, leased_tree.id],
    )
    .await
    .unwrap();

    // Act
    let report = stack.collect(false).await;

    // Assert
    assert!(stack.pack_exists(lone_pack).await);
    assert!(stack.pack_exists(tree_pack).await);
    assert!(
        stack.pack_exists(below_pack).await,
        "a blob below a leased tree was collected"
    );
    assert!(!stack.pack_exists(unleased).await);
    assert_eq!(report.packs_deleted, 1, "{report:?}");
}

async fn a_blob_leased_to_an_expired_session_is_collected(stack: &Stack) {
    // Arrange
    let blob = data();
    let pack = stack.pack(std::slice::from_ref(&blob)).await;
    let session = stack.open_session().await;
    upload_sessions::lease_blobs(&stack.db, stack.tenant, session.id, &[blob.id])
        .await
        .unwrap();
    upload_sessions::expire(&stack.db, stack.tenant, session.id)
        .await
        .unwrap();

    // Act
    let report = stack.collect(false).await;

    // Assert
    assert_eq!(report.packs_deleted, 1, "{report:?}");
    assert!(!stack.pack_exists(pack).await);
    assert!(!stack.blob_exists(blob.id).await);
}

async fn a_dry_run_reports_what_it_would_reclaim_and_changes_nothing(stack: &Stack) {
    // Arrange: one dead pack, one partly dead, one orphan object.
    let dead = stack.pack(&[data(), data()]).await;
    let (kept, lost) = (data(), data());
    let partly = stack.pack(&[kept.clone(), lost.clone()]).await;
    let root = tree(&[kept.id]);
    stack.pack(std::slice::from_ref(&root)).await;
    stack.snapshot(root.id).await;
    let orphan = pack_key(
        stack.tenant,
        stowage_protocol::ids::PackId::from_bytes([9; 32]),
    );
    stack
        .store
        .put_bytes(&orphan, vec![1u8; 5].into())
        .await
        .unwrap();
    let epoch = gc_sweep::epoch(&stack.db, stack.tenant).await.unwrap();

    // Act
    let report = stack.collect(true).await;

    // Assert
    assert!(report.dry_run);
    assert_eq!(report.packs_deleted, 1, "{report:?}");
    assert_eq!(report.blobs_deleted, 2);
    assert_eq!(report.bytes_reclaimed, PACK_SIZE);
    assert_eq!(report.partly_dead_packs, 1);
    assert_eq!(report.bytes_reclaimable_by_repack, 10);
    assert_eq!(report.orphans_waiting, 1);
    assert!(
        report
            .to_string()
            .starts_with("would reclaim 2 blobs in 1 packs")
    );
    assert!(stack.pack_exists(dead).await);
    assert!(stack.pack_exists(partly).await);
    assert!(stack.blob_exists(lost.id).await);
    assert!(stack.store.exists(&orphan).await.unwrap());
    assert_eq!(
        gc_sweep::epoch(&stack.db, stack.tenant).await.unwrap(),
        epoch
    );
}

async fn a_snapshot_committed_between_mark_and_sweep_keeps_its_blobs(stack: &Stack) {
    // Arrange: a tree and its chunk that nothing references at mark time.
    let chunk = data();
    let root = tree(&[chunk.id]);
    let chunk_pack = stack.pack(std::slice::from_ref(&chunk)).await;
    let root_pack = stack.pack(std::slice::from_ref(&root)).await;
    let other = stack.pack(&[data()]).await;
    let mut report = GcReport::default();
    let marker = gc::mark(&stack.db, stack.tenant, &mut report)
        .await
        .unwrap();

    // Act: a backup commits a snapshot of that tree, then the sweep runs.
    stack.snapshot(root.id).await;
    gc::sweep(
        &stack.db,
        stack.store.as_ref(),
        stack.tenant,
        marker,
        GcOptions::default(),
        &mut report,
    )
    .await
    .unwrap();

    // Assert
    assert!(stack.pack_exists(root_pack).await);
    assert!(stack.pack_exists(chunk_pack).await, "below the new root");
    assert!(!stack.pack_exists(other).await);
    assert!(report.catch_ups >= 1, "{report:?}");
}

async fn a_blob_reported_present_between_mark_and_sweep_keeps_its_pack(stack: &Stack) {
    // Arrange: a session open before the mark asks about a dead blob after it.
    let blob = data();
    let pack = stack.pack(std::slice::from_ref(&blob)).await;
    let session = stack.open_session().await;
    let mut report = GcReport::default();
    let marker = gc::mark(&stack.db, stack.tenant, &mut report)
        .await
        .unwrap();

    // Act
    let missing = gc_leases::lease_present(&stack.db, stack.tenant, session.id, &[blob.id])
        .await
        .unwrap();
    gc::sweep(
        &stack.db,
        stack.store.as_ref(),
        stack.tenant,
        marker,
        GcOptions::default(),
        &mut report,
    )
    .await
    .unwrap();

    // Assert
    assert!(missing.is_empty(), "the blob was reported missing");
    assert!(
        stack.pack_exists(pack).await,
        "a blob reported present was collected"
    );
    assert_eq!(report.packs_deleted, 0, "{report:?}");
}

async fn a_dead_tree_left_in_a_partly_dead_pack_is_no_longer_recorded_complete(stack: &Stack) {
    // Arrange: a dead tree shares a pack with a live chunk; its own chunk is
    // alone in a pack; a forgotten snapshot had recorded the tree complete.
    let (live_chunk, dead_chunk) = (data(), data());
    let dead_tree = tree(&[dead_chunk.id]);
    let mixed = stack.pack(&[dead_tree.clone(), live_chunk.clone()]).await;
    let dead_chunk_pack = stack.pack(std::slice::from_ref(&dead_chunk)).await;
    let live_root = tree(&[live_chunk.id]);
    stack.pack(std::slice::from_ref(&live_root)).await;
    stack.snapshot(live_root.id).await;
    let forgotten = stack.snapshot(dead_tree.id).await;
    let mut tx = stack.db.begin().await.unwrap();
    complete_trees::record(&mut tx, stack.tenant, &[dead_tree.id, live_root.id])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    stack.forget(forgotten).await;

    // Act
    stack.collect(false).await;

    // Assert: the tree survives, its chunk does not, so neither may its record.
    assert!(stack.pack_exists(mixed).await);
    assert!(!stack.pack_exists(dead_chunk_pack).await);
    let known = complete_trees::known(&stack.db, stack.tenant, &[dead_tree.id, live_root.id])
        .await
        .unwrap();
    assert_eq!(known, vec![live_root.id]);
}

async fn an_orphan_object_is_deleted_only_once_it_is_older_than_the_orphan_age(stack: &Stack) {
    // Arrange: an object no pack row names, as an upload that died leaves.
    let key = pack_key(
        stack.tenant,
        stowage_protocol::ids::PackId::from_bytes([5; 32]),
    );
    stack
        .store
        .put_bytes(&key, vec![1u8; 7].into())
        .await
        .unwrap();
    let patient = GcOptions {
        dry_run: false,
        orphan_min_age: Duration::from_hours(1),
        ..GcOptions::default()
    };

    // Act
    let first = gc::collect(&stack.db, stack.store.as_ref(), stack.tenant, patient)
        .await
        .unwrap();
    let after_first = stack.store.exists(&key).await.unwrap();
    let second = stack.collect(false).await;

    // Assert
    assert_eq!(first.orphans_waiting, 1, "{first:?}");
    assert!(after_first, "a young orphan was deleted");
    assert_eq!(second.orphans_deleted, 1, "{second:?}");
    assert_eq!(second.orphan_bytes_deleted, 7);
    assert!(!stack.store.exists(&key).await.unwrap());
}

async fn a_second_run_finds_nothing_more_to_reclaim(stack: &Stack) {
    // Arrange
    let live = data();
    let root = tree(&[live.id]);
    stack.pack(&[root.clone(), live.clone()]).await;
    stack.snapshot(root.id).await;
    stack.pack(&[data()]).await;
    stack.pack(&[data(), tree(&[])]).await;
    let first = stack.collect(false).await;
    let epoch = gc_sweep::epoch(&stack.db, stack.tenant).await.unwrap();

    // Act
    let second = stack.collect(false).await;

    // Assert
    assert_eq!(first.packs_deleted, 2, "{first:?}");
    assert!(epoch >= 1, "a sweep that deleted did not bump the epoch");
    assert_eq!(second.packs_deleted, 0, "{second:?}");
    assert_eq!(second.bytes_reclaimed, 0);
    assert_eq!(second.live_blobs, 2);
    assert!(stack.blob_exists(live.id).await);
}

async fn a_run_that_marked_before_another_swept_finds_nothing_left_to_delete(stack: &Stack) {
    // Arrange: one dead pack; two runs both mark before either sweeps (the
    // second sorts packs only when it sweeps, after the first is done).
    let dead = stack.pack(&[data(), data()]).await;
    let (mut first, mut second) = (GcReport::default(), GcReport::default());
    let marked_first = gc::mark(&stack.db, stack.tenant, &mut first).await.unwrap();
    let marked_second = gc::mark(&stack.db, stack.tenant, &mut second)
        .await
        .unwrap();

    // Act
    for (marker, report) in [(marked_first, &mut first), (marked_second, &mut second)] {
        gc::sweep(
            &stack.db,
            stack.store.as_ref(),
            stack.tenant,
            marker,
            GcOptions::default(),
            report,
        )
        .await
        .unwrap();
    }

    // Assert
    assert!(!stack.pack_exists(dead).await);
    assert_eq!(
        (first.packs_deleted, first.blobs_deleted),
        (1, 2),
        "{first:?}"
    );
    assert_eq!(
        (second.packs_deleted, second.bytes_reclaimed),
        (0, 0),
        "{second:?}"
    );
    assert_eq!(second.packs_kept_by_backups, 0, "{second:?}");
}
