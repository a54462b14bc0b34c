//! Recording a run's usage figures (`db::usage::record`) when two runs on
//! one tenant finish at once — a manual `gc` beside the scheduled one:
//! both succeed, and the figures computed later are the ones that stay,
//! whichever run writes last. A tenant with one plan/agent group is not
//! walked a second time when the mark started from exactly its snapshots,
//! and gets the figures a walk gives. On SQLite and, when configured,
//! PostgreSQL.

use chrono::{DateTime, TimeDelta, Utc};
use stowage_server::db::gc_leases;
use stowage_server::db::usage::{self, GroupUsage, RecordedUsage, SnapshotGroup};

use crate::gc_fixture::{Stack, data, tree};

on_both_stacks!(
    usage_record_on_postgres:
    runs_recording_at_once_all_succeed_and_the_newest_figures_stay,
    a_tenant_s_only_group_takes_the_mark_s_figures_which_equal_its_walk,
);

fn figures(stack: &Stack, computed_at: DateTime<Utc>, live_bytes: u64) -> RecordedUsage {
    RecordedUsage {
        computed_at,
        live_blobs: 3,
        live_bytes,
        dead_packs: 1,
        dead_pack_bytes: 10,
        partly_dead_bytes: 5,
        reclaimed_bytes: 10,
        walk_millis: 1,
        groups: vec![GroupUsage {
            group: SnapshotGroup {
                plan: None,
                agent: stack.agent,
            },
            snapshots: 2,
            referenced_blobs: 3,
            referenced_bytes: live_bytes,
        }],
    }
}

async fn runs_recording_at_once_all_succeed_and_the_newest_figures_stay(stack: &Stack) {
    // Arrange: figures of eight runs, a millisecond apart.
    let start = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let runs: Vec<RecordedUsage> = (0..8)
        .map(|n| {
            figures(
                stack,
                start + TimeDelta::milliseconds(n),
                1000 + n.unsigned_abs(),
            )
        })
        .collect();

    // Act: all at once, then the oldest again, last.
    let mut tasks = tokio::task::JoinSet::new();
    for run in runs.clone() {
        let (db, tenant) = (stack.db.clone(), stack.tenant);
        tasks.spawn(async move { usage::record(&db, tenant, &run).await });
    }
    let outcomes = tasks.join_all().await;
    let late_old = usage::record(&stack.db, stack.tenant, &runs[0]).await;

    // Assert
    for outcome in outcomes {
        outcome.expect("a run's figures are recorded beside another's");
    }
    late_old.expect("older figures are turned away quietly");
    let recorded = usage::last(&stack.db, stack.tenant).await.unwrap().unwrap();
    assert_eq!(recorded, runs[7]);
}

async fn a_tenant_s_only_group_takes_the_mark_s_figures_which_equal_its_walk(stack: &Stack) {
    // Arrange: two snapshots of one group sharing a chunk; a dead chunk.
    let (a, b, shared, dead) = (data(), data(), data(), data());
    let first = tree(&[a.id, shared.id]);
    let second = tree(&[b.id, shared.id]);
    let (first_id, second_id) = (first.id, second.id);
    stack.pack(&[a, b, shared, dead, first, second]).await;
    stack.snapshot(first_id).await;
    stack.snapshot(second_id).await;

    // Act: a run; then one whose mark also starts from a lease, so the
    // group is walked on its own.
    let from_mark = stack.collect(false).await;
    let from_mark_usage = usage::last(&stack.db, stack.tenant).await.unwrap().unwrap();
    let session = stack.open_session().await;
    gc_leases::lease_present(&stack.db, stack.tenant, session.id, &[first_id])
        .await
        .unwrap();
    let walked = stack.collect(false).await;
    let walked_usage = usage::last(&stack.db, stack.tenant).await.unwrap().unwrap();

    // Assert: five blobs of ten bytes, whichever way.
    assert_eq!(
        (from_mark.usage_groups, from_mark.usage_groups_walked),
        (1, 0)
    );
    assert_eq!((walked.usage_groups, walked.usage_groups_walked), (1, 1));
    assert_eq!(from_mark_usage.groups.len(), 1);
    assert_eq!(from_mark_usage.groups[0].referenced_blobs, 5);
    assert_eq!(from_mark_usage.groups[0].referenced_bytes, 50);
    assert_eq!(from_mark_usage.groups, walked_usage.groups);
}
