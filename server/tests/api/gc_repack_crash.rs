//! Crash safety of repacking: the real `stowage-server gc`, aborted after
//! writing new packs and before indexing them (`after_repack_write`), or
//! after its transaction and before deleting the old objects
//! (`after_repack_rows`), leaves every live blob readable where the index
//! says, byte for byte; the next run converges — old packs gone, the new
//! pack the killed run wrote either indexed by the rerun or deleted as an
//! orphan, nothing pending — and a third run finds nothing to do.

use std::collections::HashMap;

use stowage_protocol::ids::{BlobId, PackId, SnapshotId};
use stowage_server::db::gc_objects;
use stowage_server::gc::FaultPoint;

use crate::admin_cli::text;
use crate::gc_fixture::Stack;
use crate::gc_real_packs::{sealed_data, sealed_tree};

/// Snapshot `kept` reaches `root` and `a` in `mixed`; snapshot `other`
/// reaches `x` in `mixed` through a tree in a pack of its own; `mixed` also
/// holds a large dead chunk, so it is repacked.
struct Repository {
    mixed: PackId,
    other: SnapshotId,
    /// Sealed bytes of every blob that stays live, before any run.
    live: HashMap<BlobId, Vec<u8>>,
}

async fn repository(stack: &Stack) -> Repository {
    let a = sealed_data(500);
    let x = sealed_data(400);
    let dead = sealed_data(4000);
    let root = sealed_tree(100, &[a.id]);
    let other_root = sealed_tree(100, &[x.id]);
    let mixed = stack.real_pack(&[&root, &dead, &a, &x]).await;
    stack.real_pack(&[&other_root]).await;
    stack.snapshot(root.id).await;
    let other = stack.snapshot(other_root.id).await;
    Repository {
        mixed,
        other,
        live: HashMap::from([(root.id, root.bytes), (a.id, a.bytes)]),
    }
}

async fn assert_live_readable(stack: &Stack, repo: &Repository, when: &str) {
    for (blob, bytes) in &repo.live {
        assert_eq!(
            &stack.read_blob(*blob).await,
            bytes,
            "{when}: blob {blob} reads back different bytes"
        );
    }
}

async fn a_repack_killed_at_a_fault_point_converges(
    stack: &Stack,
    point: FaultPoint,
    forget_between: bool,
) {
    // Arrange
    let repo = repository(stack).await;
    let case = format!("{point:?}, forgetting a snapshot between runs: {forget_between}");

    // Act
    let killed = stack.gc_command(Some(point));
    let claim_was_held = stack.let_killed_run_s_claim_run_out().await;
    assert_live_readable(stack, &repo, &case).await;
    let left_by_killed = stack.unindexed_objects().await;
    if forget_between {
        // The rerun then copies other blobs, so its new pack differs from
        // the one the killed run wrote.
        stack.forget(repo.other).await;
    }
    let again = stack.gc_command(None);
    let third = stack.gc_command(None);

    // Assert
    assert!(claim_was_held, "the killed run held no claim on the tenant");
    assert!(!killed.status.success(), "{case}: {}", text(&killed.stdout));
    assert!(
        text(&killed.stderr).contains(point.name()),
        "{case}: {}",
        text(&killed.stderr)
    );
    if point == FaultPoint::AfterRepackWrite {
        assert_eq!(left_by_killed.len(), 1, "{case}: {left_by_killed:?}");
    }
    assert!(again.status.success(), "{case}: {}", text(&again.stderr));
    assert_live_readable(stack, &repo, &case).await;
    assert!(!stack.pack_exists(repo.mixed).await, "{case}");
    assert!(!stack.object_exists(repo.mixed).await, "{case}");
    assert!(
        stack.unindexed_objects().await.is_empty(),
        "{case}: an object nothing names was left"
    );
    assert!(
        gc_objects::pending_deletes(&stack.db, stack.tenant, 10)
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    let report: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(report["packs_repacked"], 0, "{case}: {report}");
    assert_eq!(report["packs_deleted"], 0, "{case}: {report}");
    assert_eq!(report["orphans_deleted"], 0, "{case}: {report}");
}

async fn every_repack_fault_point(stack: impl AsyncFn() -> Option<Stack>) {
    for (point, forget_between) in [
        (FaultPoint::AfterRepackWrite, true),
        (FaultPoint::AfterRepackWrite, false),
        (FaultPoint::AfterRepackRows, true),
        (FaultPoint::AfterRepackRows, false),
    ] {
        let Some(stack) = stack().await else { return };
        a_repack_killed_at_a_fault_point_converges(&stack, point, forget_between).await;
    }
}

#[tokio::test]
async fn a_repack_killed_at_any_fault_point_converges_on_the_next_run_on_sqlite() {
    every_repack_fault_point(async || Some(Stack::sqlite().await)).await;
}

#[tokio::test]
async fn a_repack_killed_at_any_fault_point_converges_on_the_next_run_on_postgres() {
    every_repack_fault_point(async || Stack::postgres("gc_repack_crash").await).await;
}
