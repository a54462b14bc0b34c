//! Retention over the operator API and the server's own pass, on SQLite
//! and PostgreSQL: the preview says what stays and why, pins hold
//! snapshots against policies and hands, only admin keys forget, and every
//! forgotten snapshot is audited.

use chrono::{Duration as TimeDelta, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;
use stowage_protocol::ids::{PlanId, SnapshotId};
use stowage_server::db::{audit, snapshots};
use stowage_server::domain::{KeepCounts, PlanInput, Role};
use stowage_server::operations;
use stowage_server::scheduler::retention_pass;

use crate::agent_api::{Enrolled, enrolled};
use crate::helpers::TestApp;
use crate::operator_client::{call, indexed_snapshot, key};

/// A plan "daily" keeping the newest 2 of `agent`, with 4 snapshots a day
/// apart, oldest first.
async fn plan_with_four_snapshots(app: &TestApp, agent: &Enrolled) -> (PlanId, Vec<SnapshotId>) {
    let input = PlanInput {
        name: "daily".to_owned(),
        paths: vec!["/etc".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        keep: KeepCounts {
            last: Some(2),
            ..KeepCounts::default()
        },
        ..PlanInput::default()
    };
    let plan = operations::plans::create(
        &app.database,
        agent.tenant,
        "test",
        &input,
        &["db1".to_owned()],
    )
    .await
    .unwrap()
    .id;
    let first = Utc.with_ymd_and_hms(2027, 1, 1, 2, 0, 0).unwrap();
    let mut ids = Vec::new();
    for day in 0..4 {
        let time = first + TimeDelta::days(day);
        ids.push(indexed_snapshot(app, agent, Some(plan), time).await);
    }
    (plan, ids)
}

async fn the_preview_explains_and_a_pin_holds_against_the_policy(app: &TestApp) {
    // Arrange: keep-last 2 over four daily snapshots; the oldest pinned.
    let agent = enrolled(app).await;
    let (_, ids) = plan_with_four_snapshots(app, &agent).await;
    let admin = key(app, agent.tenant, Role::Admin).await;
    let operator = key(app, agent.tenant, Role::Operator).await;
    let oldest = ids[0].to_hex();

    // Act
    let pin = json!({ "reason": "case 2027-14" });
    let pinned = call(
        app,
        &admin,
        Method::POST,
        format!("/snapshots/{oldest}/pin"),
        Some(pin),
    )
    .await;
    let preview = call(app, &operator, Method::GET, "/retention/preview", None).await;
    let by_operator = call(
        app,
        &operator,
        Method::POST,
        "/retention/apply",
        Some(json!({})),
    )
    .await;
    let plan = json!({ "plan": "daily" });
    let applied = call(app, &admin, Method::POST, "/retention/apply", Some(plan)).await;

    // Assert
    assert_eq!(pinned.0, StatusCode::CREATED);
    let decisions = preview.1.as_array().unwrap();
    let keep: Vec<bool> = decisions
        .iter()
        .map(|d| d["keep"].as_bool().unwrap())
        .collect();
    assert_eq!(
        keep,
        [true, true, false, true],
        "newest first: {}",
        preview.1
    );
    let why = decisions[3]["reasons"][0].as_str().unwrap();
    assert!(why.contains("case 2027-14"), "{}", preview.1);
    assert_eq!(by_operator.0, StatusCode::FORBIDDEN);
    assert_eq!(applied.0, StatusCode::OK, "{}", applied.1);
    assert_eq!(applied.1["forgotten"], json!([ids[1].to_hex()]));
    assert_eq!(applied.1["kept"], 3);
}

async fn only_an_admin_forgets_by_hand_never_a_pinned_snapshot_and_it_is_audited(app: &TestApp) {
    // Arrange
    let agent = enrolled(app).await;
    let (_, ids) = plan_with_four_snapshots(app, &agent).await;
    let admin = key(app, agent.tenant, Role::Admin).await;
    let oldest = ids[0].to_hex();
    let pin = json!({ "reason": "case 2027-14" });
    call(
        app,
        &admin,
        Method::POST,
        format!("/snapshots/{oldest}/pin"),
        Some(pin),
    )
    .await;
    let path = format!("/snapshots/{oldest}");

    // Act
    let forget_pinned = call(app, &admin, Method::DELETE, path.clone(), None).await;
    let by_agent = call(app, &agent.credential, Method::DELETE, path.clone(), None).await;
    let unpinned = call(
        app,
        &admin,
        Method::DELETE,
        format!("/snapshots/{oldest}/pin"),
        None,
    )
    .await;
    let forgotten = call(app, &admin, Method::DELETE, path, None).await;

    // Assert
    assert_eq!(forget_pinned.0, StatusCode::CONFLICT);
    let message = forget_pinned.1["message"].as_str().unwrap();
    assert!(message.contains("is pinned (case 2027-14"), "{message}");
    assert_eq!(by_agent.0, StatusCode::UNAUTHORIZED);
    assert_eq!(unpinned.0, StatusCode::NO_CONTENT);
    assert_eq!(forgotten.0, StatusCode::NO_CONTENT);
    let filter = snapshots::ListFilter::default();
    // Listed in commit order, and all four were committed within the same
    // instant: compare as sets.
    let mut left: Vec<SnapshotId> = snapshots::list_page(&app.database, agent.tenant, filter, 10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    left.sort();
    let mut expected = vec![ids[3], ids[2], ids[1]];
    expected.sort();
    assert_eq!(left, expected, "the oldest is forgotten, the others stay");
    let log = audit::list_for_tenant(&app.database, agent.tenant, 50)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|entry| entry.action.as_str()).collect();
    for action in ["snapshot.pin", "snapshot.unpin", "snapshot.forget"] {
        assert!(
            actions.contains(&action),
            "{action} is audited: {actions:?}"
        );
    }
}

async fn the_servers_own_pass_applies_every_plans_policy(app: &TestApp) {
    // Arrange
    let agent = enrolled(app).await;
    let (_, ids) = plan_with_four_snapshots(app, &agent).await;

    // Act
    let forgotten = retention_pass::apply_all(&app.database).await;

    // Assert
    assert!(
        forgotten >= 2,
        "other tests' tenants may add theirs: {forgotten}"
    );
    let left = operations::retention::preview(&app.database, agent.tenant, None)
        .await
        .unwrap();
    let ids_left: Vec<SnapshotId> = left[0].decisions.iter().map(|d| d.id).collect();
    assert_eq!(ids_left, [ids[3], ids[2]]);
    let log = audit::list_for_tenant(&app.database, agent.tenant, 50)
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "snapshot.forget" && e.actor == "scheduler")
    );
}

on_sqlite_and_postgres!(retention_on_postgres:
    the_preview_explains_and_a_pin_holds_against_the_policy,
    only_an_admin_forgets_by_hand_never_a_pinned_snapshot_and_it_is_audited,
    the_servers_own_pass_applies_every_plans_policy,
);
