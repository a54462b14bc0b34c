//! Recording a run's usage figures (`db::usage::record`) when two runs on
//! one tenant finish at once — a manual `gc` beside the scheduled one:
//! both succeed, and the figures computed later are the ones that stay,
//! whichever run writes last. On SQLite and, when configured, PostgreSQL.

use chrono::{DateTime, TimeDelta, Utc};
use stowage_server::db::usage::{self, GroupUsage, RecordedUsage, SnapshotGroup};

use crate::gc_fixture::Stack;

on_both_stacks!(
    usage_record_on_postgres:
    runs_recording_at_once_all_succeed_and_the_newest_figures_stay,
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
