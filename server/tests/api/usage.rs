//! Storage accounting (`stowage-server usage`, `GET /api/v1/usage`) on a
//! repository built straight into the index: bytes stored come from the
//! tenant's packs only; each plan/agent group's referenced bytes are the
//! distinct blobs its snapshots reach, a shared blob counting in each; the
//! reclaimable bytes are what the sweep then deletes; a dry run records
//! nothing; the command line and the API print the same JSON.
//! Each scenario runs on SQLite and, when configured, on PostgreSQL.

use std::sync::Arc;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stowage_protocol::ids::{AgentId, PackId, PlanId, TenantId};
use stowage_server::db::agents::{self, NewAgent};
use stowage_server::db::packs::{self, IndexedBlob};
use stowage_server::db::{plans, tenants};
use stowage_server::domain::{PlanInput, PlanSpec, Role, TenantName};
use stowage_server::storage::ObjectStore;

use crate::admin_cli::{run, text};
use crate::gc_fixture::{PACK_SIZE, Stack, data, random_bytes, tree};
use crate::helpers::{TestApp, random_hex, spawn_on};
use crate::operator_client::{call, key};

#[tokio::test]
async fn usage_on_sqlite() {
    scenarios(&Stack::sqlite().await).await;
}

#[tokio::test]
async fn usage_on_postgres() {
    let Some(stack) = Stack::postgres("usage_on_postgres").await else {
        return;
    };
    scenarios(&stack).await;
}

/// The scenarios share one repository, in order: before any gc, after one,
/// after a dry run, after a forget and another gc.
async fn scenarios(stack: &Stack) {
    let repo = Repository::build(stack).await;
    let store: Arc<dyn ObjectStore> = stack.store.clone();
    let app = spawn_on(stack.db.clone(), store).await;
    let viewer = key(&app, stack.tenant, Role::Viewer).await;

    before_any_gc_usage_is_stored_bytes_only(stack, &app, &viewer).await;
    a_gc_records_each_groups_distinct_blobs_and_what_it_found_dead(stack, &app, &viewer, &repo)
        .await;
    a_dry_run_records_nothing(stack, &app, &viewer).await;
    after_a_forget_the_reclaimable_bytes_are_what_the_gc_reclaims(stack, &app, &viewer, &repo)
        .await;
    another_tenant_sees_only_its_own_packs(&app, &repo).await;
}

/// Two plans on two agents and a manual snapshot, sharing `s1`; a dead
/// pack; a dead blob in the shared pack; and another tenant that indexes
/// blobs with the same ids at other lengths.
struct Repository {
    /// The plans' ids: nightly on db1, hourly on db2.
    nightly: PlanId,
    hourly: PlanId,
    db2: AgentId,
    /// The hourly plan's snapshot, forgotten in the last scenario.
    hourly_snapshot: stowage_protocol::ids::SnapshotId,
    other: TenantId,
}

fn sized(blob: IndexedBlob, length: u32) -> IndexedBlob {
    IndexedBlob { length, ..blob }
}

impl Repository {
    async fn build(stack: &Stack) -> Self {
        let db2 = agents::insert(
            &stack.db,
            stack.tenant,
            NewAgent {
                id: AgentId::random(),
                name: "db2",
                hostname: "db2.example.com",
                credential_hash: &random_hex(),
            },
        )
        .await
        .unwrap()
        .id;
        let nightly = plan(stack, "nightly", stack.agent).await;
        let hourly = plan(stack, "hourly", db2).await;
        // shared: s1 (100, every group), s2 (7, nightly only), junk (13, dead).
        let (s1, s2, junk) = (sized(data(), 100), sized(data(), 7), sized(data(), 13));
        stack.pack(&[s1.clone(), s2.clone(), junk]).await;
        let a1 = sized(data(), 200);
        let root_a = sized(tree(&[s1.id, s2.id, a1.id]), 30);
        stack.pack(&[root_a.clone(), a1.clone()]).await;
        let b1 = sized(data(), 300);
        let root_b = sized(tree(&[s1.id, b1.id]), 40);
        stack.pack(&[root_b.clone(), b1]).await;
        let n1 = sized(data(), 11);
        let root_n = sized(tree(&[s1.id, n1.id]), 5);
        stack.pack(&[root_n.clone(), n1]).await;
        stack.pack(&[data(), data()]).await; // wholly dead
        stack
            .snapshot_of(root_a.id, Some(nightly), stack.agent)
            .await;
        let hourly_snapshot = stack.snapshot_of(root_b.id, Some(hourly), db2).await;
        stack.snapshot(root_n.id).await;
        // Another tenant holding blobs with the same ids, much longer.
        let name = format!("usage-{}", &random_hex()[..8]);
        let other = tenants::insert(&stack.db, &TenantName::parse(&name).unwrap())
            .await
            .unwrap()
            .id;
        let lookalikes = [sized(s1, 5_000), sized(a1, 5_000), sized(root_a, 5_000)];
        packs::index(
            &stack.db,
            other,
            PackId::from_bytes(random_bytes()),
            999,
            &lookalikes,
        )
        .await
        .unwrap();
        Self {
            nightly,
            hourly,
            db2,
            hourly_snapshot,
            other,
        }
    }
}

async fn plan(stack: &Stack, name: &str, agent: AgentId) -> PlanId {
    let input = PlanInput {
        name: name.to_owned(),
        paths: vec!["/srv".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        ..PlanInput::default()
    };
    let spec = PlanSpec::parse(&input, Utc::now()).unwrap();
    plans::insert(&stack.db, stack.tenant, &spec, &[agent])
        .await
        .unwrap()
}

/// `usage --json` from the binary, and `GET /usage`; asserts they agree.
async fn usage(stack: &Stack, app: &TestApp, viewer: &str) -> Value {
    let cli = cli(stack, &["--json"]);
    let (status, api) = call(app, viewer, Method::GET, "/usage", None).await;
    assert_eq!(status, StatusCode::OK, "{api}");
    let cli: Value = serde_json::from_str(&cli).unwrap();
    assert_eq!(cli, api, "the command line and the API disagree");
    api
}

/// `usage --tenant T` with `extra` arguments; its standard output.
fn cli(stack: &Stack, extra: &[&str]) -> String {
    let mut args = vec!["usage", "--tenant", &stack.tenant_name];
    args.extend_from_slice(extra);
    let output = run(
        stack.dir.path(),
        &args,
        &[("STOWAGE_DATABASE_URL", stack.url.as_str())],
        "",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

async fn before_any_gc_usage_is_stored_bytes_only(stack: &Stack, app: &TestApp, viewer: &str) {
    // Act
    let usage = usage(stack, app, viewer).await;
    let human = cli(stack, &[]);

    // Assert: five packs of this tenant (the other's 999 bytes are not here).
    assert_eq!(
        usage["stored"],
        json!({ "bytes": 5 * PACK_SIZE, "packs": 5, "blobs": 11 })
    );
    assert_eq!(usage["last_gc"], Value::Null);
    assert!(
        human.contains("stored now: 500 bytes in 5 packs (11 blobs)"),
        "{human}"
    );
    assert!(human.contains("never computed — run gc"), "{human}");
}

async fn a_gc_records_each_groups_distinct_blobs_and_what_it_found_dead(
    stack: &Stack,
    app: &TestApp,
    viewer: &str,
    repo: &Repository,
) {
    // Act
    let report = stack.collect(false).await;
    let usage = usage(stack, app, viewer).await;
    let human = cli(stack, &[]);

    // Assert
    assert_eq!(report.bytes_reclaimed, PACK_SIZE, "{report:?}");
    assert_eq!(report.usage_groups, 3);
    assert_eq!(
        usage["stored"],
        json!({ "bytes": 4 * PACK_SIZE, "packs": 4, "blobs": 9 })
    );
    let last = &usage["last_gc"];
    // Distinct: roots 30 + 40 + 5, s1 100, s2 7, a1 200, b1 300, n1 11.
    assert_eq!(last["live_bytes"], 693, "{last}");
    assert_eq!(last["live_blobs"], 8);
    assert_eq!(
        last["reclaimable"],
        json!({
            "bytes": PACK_SIZE + 13,
            "dead_pack_bytes": PACK_SIZE,
            "dead_packs": 1,
            "partly_dead_bytes": 13,
            "reclaimed_bytes": PACK_SIZE,
            "remaining_bytes": 13,
        })
    );
    let groups = group_figures(last);
    let expected = [
        // s1 counts in all three.
        (Some("nightly"), "db1", 30 + 100 + 7 + 200, 4),
        (Some("hourly"), "db2", 40 + 100 + 300, 3),
        (None, "db1", 5 + 100 + 11, 3),
    ];
    for (plan, agent, bytes, blobs) in expected {
        assert!(
            groups.contains(&(plan.map(str::to_owned), agent.to_owned(), bytes, blobs)),
            "no group {plan:?}/{agent} with {bytes} bytes in {blobs} blobs: {groups:?}"
        );
    }
    assert_eq!(groups.len(), 3);
    let ids: Vec<&Value> = last["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| &group["plan_id"])
        .collect();
    assert!(ids.contains(&&json!(repo.nightly.to_hex())));
    assert!(ids.contains(&&json!(repo.hourly.to_hex())));
    assert!(ids.contains(&&Value::Null));
    assert!(
        last["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|group| group["agent_id"] == json!(repo.db2.to_hex()))
    );
    assert!(
        human.contains("live (deduplicated): 693 bytes in 8 blobs"),
        "{human}"
    );
    assert!(human.contains("no plan"), "{human}");
}

async fn a_dry_run_records_nothing(stack: &Stack, app: &TestApp, viewer: &str) {
    // Arrange
    let before = usage(stack, app, viewer).await;

    // Act
    let report = stack.collect(true).await;

    // Assert
    assert_eq!(report.usage_groups, 0);
    let after = usage(stack, app, viewer).await;
    assert_eq!(after, before, "a dry run changed the recorded usage");
}

async fn after_a_forget_the_reclaimable_bytes_are_what_the_gc_reclaims(
    stack: &Stack,
    app: &TestApp,
    viewer: &str,
    repo: &Repository,
) {
    // Arrange: root_b and b1 live only in their pack; s1 stays reachable.
    let before = usage(stack, app, viewer).await;
    stack.forget(repo.hourly_snapshot).await;
    let dry = stack.collect(true).await;

    // Act
    let report = stack.collect(false).await;
    let usage = usage(stack, app, viewer).await;

    // Assert
    let last = &usage["last_gc"];
    assert_ne!(last["computed_at"], before["last_gc"]["computed_at"]);
    assert_eq!(dry.bytes_reclaimed, PACK_SIZE, "{dry:?}");
    assert_eq!(report.bytes_reclaimed, PACK_SIZE, "{report:?}");
    assert_eq!(
        last["reclaimable"]["dead_pack_bytes"],
        report.bytes_reclaimed
    );
    assert_eq!(last["reclaimable"]["dead_packs"], report.packs_deleted);
    assert_eq!(
        last["reclaimable"]["reclaimed_bytes"],
        report.bytes_reclaimed
    );
    assert_eq!(last["reclaimable"]["partly_dead_bytes"], 13);
    assert_eq!(last["live_bytes"], 693 - 40 - 300);
    assert_eq!(
        usage["stored"],
        json!({ "bytes": 3 * PACK_SIZE, "packs": 3, "blobs": 7 })
    );
    let groups = group_figures(last);
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(!groups.iter().any(|group| group.1 == "db2"));
}

async fn another_tenant_sees_only_its_own_packs(app: &TestApp, repo: &Repository) {
    // Arrange
    let other = key(app, repo.other, Role::Viewer).await;

    // Act
    let (status, usage) = call(app, &other, Method::GET, "/usage", None).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(
        usage,
        json!({ "stored": { "bytes": 999, "packs": 1, "blobs": 3 }, "last_gc": null })
    );
}

/// (plan name, agent name, referenced bytes, referenced blobs) per group.
fn group_figures(last: &Value) -> Vec<(Option<String>, String, u64, u64)> {
    last["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            (
                group["plan"].as_str().map(str::to_owned),
                group["agent"].as_str().unwrap().to_owned(),
                group["referenced_bytes"].as_u64().unwrap(),
                group["referenced_blobs"].as_u64().unwrap(),
            )
        })
        .collect()
}
