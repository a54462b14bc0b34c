//! `GET /api/v1/snapshots` and `GET /api/v1/snapshots/{id}`: listing (paged,
//! filtered by plan) and reading committed snapshots, confined to the
//! caller's tenant; malformed parameters are API errors naming them.

use reqwest::{Method, StatusCode};
use stowage_protocol::api::{SnapshotList, SnapshotListItem, codes};
use stowage_protocol::ids::PlanId;
use stowage_protocol::snapshot::SnapshotRecord;

use crate::agent_api::{Enrolled, authed, enrolled, error_of, open_session};
use crate::commit::{post_commit, record};
use crate::helpers::{TestApp, random_hex};
use crate::pack_upload::agent_with_uploaded_pack;

/// Enrolls an agent and commits one snapshot for it.
async fn committed(app: &TestApp) -> (Enrolled, SnapshotRecord) {
    let (agent, session, pack) = agent_with_uploaded_pack(app).await;
    let record = record(&agent, pack.tree);
    let response = post_commit(app, &agent.credential, &session, &record).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (agent, record)
}

async fn get(app: &TestApp, credential: &str, path: &str) -> reqwest::Response {
    authed(app, Method::GET, path, credential)
        .send()
        .await
        .unwrap()
}

async fn a_committed_snapshot_is_listed_and_read_by_its_tenant_only(app: &TestApp) {
    let (agent, record) = committed(app).await;
    let stranger = enrolled(app).await;
    let path = format!("/snapshots/{}", record.id().to_hex());

    let listed = get(app, &agent.credential, "/snapshots").await;

    assert_eq!(listed.status(), StatusCode::OK);
    let list: SnapshotList = listed.json().await.unwrap();
    assert_eq!(list.snapshots.len(), 1);
    assert_eq!(list.snapshots[0].id, record.id());
    assert_eq!(list.snapshots[0].record, record);
    assert_eq!(list.next_before, None);

    let one = get(app, &agent.credential, &path).await;

    assert_eq!(one.status(), StatusCode::OK);
    let item: SnapshotListItem = one.json().await.unwrap();
    assert_eq!(item, list.snapshots[0]);

    let denied = get(app, &stranger.credential, &path).await;

    assert_eq!(denied.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(denied).await.code, codes::NOT_FOUND);

    let empty = get(app, &stranger.credential, "/snapshots").await;

    assert_eq!(empty.status(), StatusCode::OK);
    let list: SnapshotList = empty.json().await.unwrap();
    assert!(list.snapshots.is_empty());
}

async fn pages_are_chained_by_before_newest_first(app: &TestApp) {
    let (agent, first) = committed(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let second = SnapshotRecord {
        hostname: "db2".to_owned(),
        ..first.clone()
    };
    let response = post_commit(app, &agent.credential, &session, &second).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let page: SnapshotList = get(app, &agent.credential, "/snapshots?limit=1")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(page.snapshots.len(), 1);
    let newest = page.snapshots[0].id;
    assert_eq!(page.next_before, Some(newest));

    let path = format!("/snapshots?limit=1&before={}", newest.to_hex());
    let rest: SnapshotList = get(app, &agent.credential, &path)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(rest.snapshots.len(), 1);
    assert_ne!(rest.snapshots[0].id, newest);
    assert!([first.id(), second.id()].contains(&rest.snapshots[0].id));
    assert_eq!(rest.next_before, None);
}

async fn a_limit_over_the_maximum_or_a_bad_id_is_a_400(app: &TestApp) {
    let agent = enrolled(app).await;

    let response = get(app, &agent.credential, "/snapshots?limit=501").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert!(error.message.contains("500"), "{}", error.message);

    let response = get(app, &agent.credential, "/snapshots/not-hex").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::INVALID_REQUEST);
}

async fn the_plan_filter_lists_only_that_plan_s_snapshots(app: &TestApp) {
    // Arrange
    let (agent, manual) = committed(app).await;
    let plan: PlanId = random_hex().parse().unwrap();
    let planned = SnapshotRecord {
        plan: Some(plan),
        ..manual.clone()
    };
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let response = post_commit(app, &agent.credential, &session, &planned).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let other_plan = random_hex();

    // Act
    let all: SnapshotList = get(app, &agent.credential, "/snapshots")
        .await
        .json()
        .await
        .unwrap();
    let of_plan: SnapshotList = get(app, &agent.credential, &format!("/snapshots?plan={plan}"))
        .await
        .json()
        .await
        .unwrap();
    let of_other: SnapshotList = get(
        app,
        &agent.credential,
        &format!("/snapshots?plan={other_plan}&limit=10"),
    )
    .await
    .json()
    .await
    .unwrap();

    // Assert
    assert_eq!(all.snapshots.len(), 2);
    let ids: Vec<_> = of_plan.snapshots.iter().map(|item| item.id).collect();
    assert_eq!(ids, vec![planned.id()]);
    assert_eq!(of_plan.snapshots[0].record.plan, Some(plan));
    assert!(of_other.snapshots.is_empty());
}

async fn a_malformed_query_parameter_is_an_api_error_naming_it(app: &TestApp) {
    let agent = enrolled(app).await;

    for (query, parameter) in [
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("plan=zz", "plan"),
        ("before=xyz", "before"),
    ] {
        let response = get(app, &agent.credential, &format!("/snapshots?{query}")).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let error = error_of(response).await;
        assert_eq!(error.code, codes::INVALID_REQUEST);
        assert!(
            error.message.contains(&format!("parameter {parameter}=")),
            "{query}: {}",
            error.message
        );
    }
}

on_sqlite_and_postgres!(
    listing_snapshots_holds_on_postgres:
    a_committed_snapshot_is_listed_and_read_by_its_tenant_only,
    pages_are_chained_by_before_newest_first,
    a_limit_over_the_maximum_or_a_bad_id_is_a_400,
    the_plan_filter_lists_only_that_plan_s_snapshots,
    a_malformed_query_parameter_is_an_api_error_naming_it,
);
