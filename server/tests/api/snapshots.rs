//! `GET /api/v1/snapshots` and `GET /api/v1/snapshots/{id}`: listing and
//! reading committed snapshots, confined to the caller's tenant.

use reqwest::{Method, StatusCode};
use stowage_protocol::api::{SnapshotList, SnapshotListItem, codes};
use stowage_protocol::snapshot::SnapshotRecord;

use crate::agent_api::{Enrolled, authed, enrolled, error_of, open_session};
use crate::commit::{post_commit, record};
use crate::helpers::{TestApp, spawn_app, spawn_app_on_postgres};
use crate::pack_upload::{build_pack, put_pack};

/// Enrolls an agent and commits one snapshot for it.
async fn committed(app: &TestApp) -> (Enrolled, SnapshotRecord) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let pack = build_pack();
    let uploaded = put_pack(
        app,
        &agent.credential,
        &session,
        &pack.id.to_hex(),
        pack.bytes,
    )
    .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
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

#[tokio::test]
async fn a_committed_snapshot_is_listed_and_read_by_its_tenant_only_on_sqlite() {
    a_committed_snapshot_is_listed_and_read_by_its_tenant_only(&spawn_app().await).await;
}

#[tokio::test]
async fn pages_are_chained_by_before_newest_first_on_sqlite() {
    pages_are_chained_by_before_newest_first(&spawn_app().await).await;
}

#[tokio::test]
async fn a_limit_over_the_maximum_or_a_bad_id_is_a_400_on_sqlite() {
    a_limit_over_the_maximum_or_a_bad_id_is_a_400(&spawn_app().await).await;
}

#[tokio::test]
async fn listing_snapshots_holds_on_postgres() {
    let Some(app) = spawn_app_on_postgres("listing_snapshots_holds_on_postgres").await else {
        return;
    };

    a_committed_snapshot_is_listed_and_read_by_its_tenant_only(&app).await;
    pages_are_chained_by_before_newest_first(&app).await;
    a_limit_over_the_maximum_or_a_bad_id_is_a_400(&app).await;
}
