//! Crash safety of `stowage-server gc`: the real binary, aborted at each of
//! its fault points (`STOWAGE_GC_FAULT`, compiled in by the `fault-points`
//! feature the tests build with), leaves every live blob with its row and
//! its object, and the next run converges: every dead pack's row and
//! object gone, nothing pending, and a third run finds nothing to do.

use stowage_protocol::ids::{BlobId, PackId};
use stowage_server::db::gc_objects;
use stowage_server::gc::FaultPoint;

use crate::admin_cli::text;
use crate::gc_fixture::{Stack, data, tree};

/// A repository with one snapshot (root tree and two chunks in two packs)
/// and three dead packs.
struct Repository {
    live_blobs: Vec<BlobId>,
    live_packs: Vec<PackId>,
    dead_packs: Vec<PackId>,
}

async fn repository(stack: &Stack) -> Repository {
    let (a, b) = (data(), data());
    let root = tree(&[a.id, b.id]);
    let live_packs = vec![
        stack.pack(&[root.clone(), a.clone()]).await,
        stack.pack(std::slice::from_ref(&b)).await,
    ];
    stack.snapshot(root.id).await;
    let mut dead_packs = Vec::new();
    for _ in 0..3 {
        dead_packs.push(stack.pack(&[data(), tree(&[])]).await);
    }
    Repository {
        live_blobs: vec![root.id, a.id, b.id],
        live_packs,
        dead_packs,
    }
}

async fn assert_live(stack: &Stack, repo: &Repository) {
    for blob in &repo.live_blobs {
        assert!(
            stack.blob_exists(*blob).await,
            "live blob {blob} lost its row"
        );
    }
    for pack in &repo.live_packs {
        assert!(
            stack.pack_exists(*pack).await,
            "live pack {pack} lost its row"
        );
        assert!(
            stack.object_exists(*pack).await,
            "live pack {pack} lost its object"
        );
    }
}

async fn a_gc_killed_at_a_fault_point_converges_on_the_next_run(stack: &Stack, point: FaultPoint) {
    // Arrange
    let repo = repository(stack).await;

    // Act
    let killed = stack.gc_command(Some(point));
    let claim_was_held = stack.let_killed_run_s_claim_run_out().await;
    assert_live(stack, &repo).await;
    let again = stack.gc_command(None);
    let third = stack.gc_command(None);

    // Assert
    assert!(claim_was_held, "the killed run held no claim on the tenant");
    assert!(
        !killed.status.success(),
        "{point:?}: {}",
        text(&killed.stdout)
    );
    assert!(
        text(&killed.stderr).contains(point.name()),
        "{point:?}: {}",
        text(&killed.stderr)
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_live(stack, &repo).await;
    for pack in &repo.dead_packs {
        assert!(
            !stack.pack_exists(*pack).await,
            "{point:?}: dead pack {pack} kept its row"
        );
        assert!(
            !stack.object_exists(*pack).await,
            "{point:?}: dead pack {pack} kept its object"
        );
    }
    assert!(
        gc_objects::pending_deletes(&stack.db, stack.tenant, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let report: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(report["packs_deleted"], 0, "{report}");
    assert_eq!(report["bytes_reclaimed"], 0, "{report}");
    assert_eq!(report["orphans_deleted"], 0, "{report}");
    assert_eq!(report["live_blobs"], 3, "{report}");
}

async fn every_fault_point(stack: impl AsyncFn() -> Option<Stack>) {
    for point in [
        FaultPoint::AfterMark,
        FaultPoint::AfterRows,
        FaultPoint::AfterObject,
    ] {
        let Some(stack) = stack().await else { return };
        a_gc_killed_at_a_fault_point_converges_on_the_next_run(&stack, point).await;
    }
}

#[tokio::test]
async fn a_gc_killed_at_any_fault_point_converges_on_the_next_run_on_sqlite() {
    every_fault_point(async || Some(Stack::sqlite().await)).await;
}

#[tokio::test]
async fn a_gc_killed_at_any_fault_point_converges_on_the_next_run_on_postgres() {
    every_fault_point(async || Stack::postgres("gc_crash").await).await;
}
