//! The server's own garbage collection pass (`scheduler::gc_pass`): a due
//! tenant is collected and its totals recorded; an instance skips a tenant
//! another instance collected within the interval or holds under a lease;
//! a `gc` command (`gc::claim::claim_when_free`) waits for the running
//! collection, however recent, and the pass skips a tenant while one runs;
//! only a claim's holder renews it; and a running server starts the pass
//! by itself.

use std::time::{Duration, Instant};

use stowage_server::configuration::GcSettings;
use stowage_server::db::gc_runs::{self, Claim};
use stowage_server::db::{now_millis, tenants};
use stowage_server::domain::TenantName;
use stowage_server::gc::claim;
use stowage_server::scheduler::gc_pass::{self, PassReport};
use stowage_server::storage::ObjectStore;

use crate::gc_fixture::{PACK_SIZE, Stack, data};
use crate::helpers::{env, random_hex, spawn_with};

on_both_stacks!(
    gc_pass_on_postgres:
    a_due_tenant_is_collected_and_its_totals_recorded,
    a_tenant_collected_within_the_interval_is_skipped_by_every_instance,
    a_tenant_another_instance_holds_is_skipped_until_its_lease_runs_out,
    a_gc_command_waits_for_the_running_collection_and_the_pass_skips_while_it_runs,
    only_the_holder_renews_a_claim,
);

fn hourly() -> GcSettings {
    GcSettings {
        interval: Duration::from_hours(1),
        orphan_min_age: Duration::from_hours(1),
    }
}

async fn pass(stack: &Stack, settings: GcSettings, holder: &str) -> PassReport {
    let store: std::sync::Arc<dyn ObjectStore> = stack.store.clone();
    gc_pass::collect_due(&stack.db, &store, settings, holder).await
}

async fn a_due_tenant_is_collected_and_its_totals_recorded(stack: &Stack) {
    // Arrange: a pack no snapshot reaches.
    stack.pack(&[data()]).await;

    // Act
    let report = pass(stack, hourly(), "instance-a").await;

    // Assert
    assert_eq!(
        report,
        PassReport {
            collected: 1,
            skipped: 0,
            failed: 0,
            packs_deleted: 1,
            bytes_reclaimed: PACK_SIZE,
        }
    );
    let totals = gc_runs::totals(&stack.db, stack.tenant)
        .await
        .unwrap()
        .expect("the run is recorded");
    assert_eq!(
        (
            totals.runs,
            totals.failures,
            totals.packs_deleted,
            totals.bytes_reclaimed
        ),
        (1, 0, 1, PACK_SIZE)
    );
    assert!(totals.last_finished_at.is_some());
    assert_eq!(totals.last_error, None);
}

async fn a_tenant_collected_within_the_interval_is_skipped_by_every_instance(stack: &Stack) {
    // Arrange: instance A collected; then garbage appears.
    pass(stack, hourly(), "instance-a").await;
    stack.pack(&[data()]).await;

    // Act: A and B both come back within the hour.
    let again = pass(stack, hourly(), "instance-a").await;
    let other = pass(stack, hourly(), "instance-b").await;

    // Assert
    for report in [again, other] {
        assert_eq!((report.collected, report.skipped), (0, 1), "{report:?}");
    }
    let totals = gc_runs::totals(&stack.db, stack.tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(totals.runs, 1);
}

async fn a_tenant_another_instance_holds_is_skipped_until_its_lease_runs_out(stack: &Stack) {
    // Arrange: an instance that died mid-run holds the tenant for a minute;
    // the interval is so short that only the lease stands in the way.
    stack.pack(&[data()]).await;
    let now = now_millis();
    let claimed = gc_runs::claim(
        &stack.db,
        stack.tenant,
        Claim {
            holder: "dead-instance",
            now: now - 1,
            lease_until: now + 60_000,
            started_before: now - 1,
        },
    )
    .await
    .unwrap();
    let eager = GcSettings {
        interval: Duration::from_millis(1),
        ..hourly()
    };

    // Act
    let while_held = pass(stack, eager, "instance-b").await;
    let expired = gc_runs::claim(
        &stack.db,
        stack.tenant,
        Claim {
            holder: "instance-c",
            now: now + 60_000,
            lease_until: now + 120_000,
            started_before: now + 60_000,
        },
    )
    .await
    .unwrap();

    // Assert
    assert!(claimed);
    assert_eq!((while_held.collected, while_held.skipped), (0, 1));
    assert!(expired, "the dead instance's lease did not run out");
}

async fn a_gc_command_waits_for_the_running_collection_and_the_pass_skips_while_it_runs(
    stack: &Stack,
) {
    // Arrange: a collection (the scheduled one) holds the tenant.
    let running = claim::try_claim(&stack.db, stack.tenant, "scheduled", now_millis())
        .await
        .unwrap()
        .expect("a free tenant is claimed");
    let (told, waited) = tokio::sync::oneshot::channel();
    let command = {
        let (db, tenant) = (stack.db.clone(), stack.tenant);
        tokio::spawn(async move {
            claim::claim_when_free(&db, tenant, "gc-command", move || {
                told.send(()).unwrap();
            })
            .await
        })
    };

    // Act: the command finds it held; then the running one finishes.
    waited.await.expect("the command said it waits");
    let waiting_still = !command.is_finished();
    drop(running);
    gc_runs::finished(&stack.db, stack.tenant, "scheduled", 0, 0)
        .await
        .unwrap();
    let held = command.await.unwrap().unwrap();
    let eager = GcSettings {
        interval: Duration::from_millis(1),
        ..hourly()
    };
    let while_command_runs = pass(stack, eager, "instance-b").await;
    drop(held);
    gc_runs::finished(&stack.db, stack.tenant, "gc-command", 0, 0)
        .await
        .unwrap();
    let after = pass(stack, eager, "instance-b").await;

    // Assert
    assert!(
        waiting_still,
        "the command did not wait for the running collection"
    );
    assert_eq!(
        (while_command_runs.collected, while_command_runs.skipped),
        (0, 1)
    );
    assert_eq!((after.collected, after.skipped), (1, 0));
}

async fn only_the_holder_renews_a_claim(stack: &Stack) {
    // Arrange
    let held = claim::try_claim(&stack.db, stack.tenant, "instance-a", now_millis())
        .await
        .unwrap()
        .expect("a free tenant is claimed");

    // Act
    let later = now_millis() + 120_000;
    let by_holder = gc_runs::renew(&stack.db, stack.tenant, "instance-a", later)
        .await
        .unwrap();
    let by_other = gc_runs::renew(&stack.db, stack.tenant, "instance-b", later)
        .await
        .unwrap();
    drop(held);

    // Assert
    assert!(by_holder);
    assert!(!by_other);
}

#[tokio::test]
async fn a_running_server_collects_every_tenant_on_its_interval() {
    // Arrange: a server whose pass runs every second.
    let data_dir = tempfile::tempdir().unwrap();
    let settings = stowage_server::configuration::Settings::from_sources(
        None,
        &env(&[
            ("STOWAGE_LISTEN", "127.0.0.1:0"),
            ("STOWAGE_DATA_DIR", data_dir.path().to_str().unwrap()),
            ("STOWAGE_GC_INTERVAL", "1s"),
        ]),
    )
    .unwrap();
    let app = spawn_with(settings, data_dir).await;
    let name = TenantName::parse(&format!("pass-{}", &random_hex()[..8])).unwrap();
    let tenant = tenants::insert(&app.database, &name).await.unwrap().id;

    // Act: wait for two runs (the first pass comes a second after start).
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let runs = gc_runs::totals(&app.database, tenant)
            .await
            .unwrap()
            .map_or(0, |totals| totals.runs);
        if runs >= 2 || Instant::now() > deadline {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert
    assert!(runs >= 2, "the server ran gc {runs} times in 20 s");
}
