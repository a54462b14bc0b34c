//! `POST /api/v1/uploads/{session_id}/commit` over HTTP: a snapshot is
//! stored only when every blob its root reaches is, and a retry is
//! idempotent. Each scenario runs on SQLite and, when configured, on
//! PostgreSQL.

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use stowage_protocol::api::{CommitSnapshotRequest, CommitSnapshotResponse, codes};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::snapshot::{RawPath, SnapshotRecord, SnapshotSummary};
use stowage_server::db::packs::{self, IndexedBlob};
use stowage_server::db::snapshots;

use crate::agent_api::{Enrolled, authed, enrolled, error_of, open_session};
use crate::helpers::{TestApp, spawn_app, spawn_app_on_postgres};
use crate::pack_upload::{build_pack, put_pack};

pub(crate) fn record(agent: &Enrolled, root: BlobId) -> SnapshotRecord {
    SnapshotRecord {
        root,
        parent: None,
        hostname: "db1".to_owned(),
        agent: agent.agent,
        plan: None,
        paths: vec![RawPath(b"/srv".to_vec())],
        tags: Vec::new(),
        started_at: Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap(),
        finished_at: Utc.with_ymd_and_hms(2026, 11, 26, 3, 5, 0).unwrap(),
        summary: SnapshotSummary::default(),
        error_log: None,
    }
}

pub(crate) async fn post_commit(
    app: &TestApp,
    credential: &str,
    session: &str,
    record: &SnapshotRecord,
) -> reqwest::Response {
    authed(
        app,
        reqwest::Method::POST,
        &format!("/uploads/{session}/commit"),
        credential,
    )
    .json(&CommitSnapshotRequest {
        record: record.clone(),
    })
    .send()
    .await
    .unwrap()
}

async fn a_complete_snapshot_is_committed_once_and_a_retry_is_already_committed(app: &TestApp) {
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
    let body: CommitSnapshotResponse = response.json().await.unwrap();
    assert_eq!(body.snapshot_id, record.id());
    assert!(!body.already_committed);
    let stored = snapshots::get(&app.database, agent.tenant, record.id())
        .await
        .unwrap();
    assert_eq!(stored.record.as_bytes(), record.canonical_bytes());

    let again = post_commit(app, &agent.credential, &session, &record).await;

    assert_eq!(again.status(), StatusCode::OK);
    let body: CommitSnapshotResponse = again.json().await.unwrap();
    assert_eq!(body.snapshot_id, record.id());
    assert!(body.already_committed);
}

async fn a_snapshot_reaching_unstored_blobs_is_refused_listing_them(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let pack = build_pack();
    let record = record(&agent, pack.tree);

    let response = post_commit(app, &agent.credential, &session, &record).await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::MISSING_BLOBS);
    assert_eq!(error.missing_blobs, vec![pack.tree]);
    assert!(error.message.contains("1 blob"), "{}", error.message);
    assert!(
        snapshots::get(&app.database, agent.tenant, record.id())
            .await
            .is_err()
    );
}

async fn a_record_naming_another_agent_is_a_400(app: &TestApp) {
    let agent = enrolled(app).await;
    let other = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let record = record(&other, build_pack().tree);

    let response = post_commit(app, &agent.credential, &session, &record).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert!(
        error.message.contains(&other.agent.to_hex()),
        "{}",
        error.message
    );
}

async fn a_blob_below_a_stored_tree_that_is_not_stored_is_listed(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let stored = build_pack();
    let absent = build_pack().data[0];
    let tree = build_pack().tree;
    let mut refs = vec![stored.data[0], absent];
    refs.sort_unstable();
    let uploaded = put_pack(
        app,
        &agent.credential,
        &session,
        &stored.id.to_hex(),
        stored.bytes,
    )
    .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    packs::index(
        &app.database,
        agent.tenant,
        PackId::from_bytes([7; 32]),
        100,
        &[IndexedBlob {
            id: tree,
            kind: BlobKind::Tree,
            offset: 0,
            length: 10,
            refs,
        }],
    )
    .await
    .unwrap();

    let response = post_commit(app, &agent.credential, &session, &record(&agent, tree)).await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_of(response).await.missing_blobs, vec![absent]);
}

#[tokio::test]
async fn a_complete_snapshot_is_committed_once_and_a_retry_is_already_committed_on_sqlite() {
    a_complete_snapshot_is_committed_once_and_a_retry_is_already_committed(&spawn_app().await)
        .await;
}

#[tokio::test]
async fn a_snapshot_reaching_unstored_blobs_is_refused_listing_them_on_sqlite() {
    a_snapshot_reaching_unstored_blobs_is_refused_listing_them(&spawn_app().await).await;
}

#[tokio::test]
async fn a_record_naming_another_agent_is_a_400_on_sqlite() {
    a_record_naming_another_agent_is_a_400(&spawn_app().await).await;
}

#[tokio::test]
async fn a_blob_below_a_stored_tree_that_is_not_stored_is_listed_on_sqlite() {
    a_blob_below_a_stored_tree_that_is_not_stored_is_listed(&spawn_app().await).await;
}

#[tokio::test]
async fn committing_holds_on_postgres() {
    let Some(app) = spawn_app_on_postgres("committing_holds_on_postgres").await else {
        return;
    };

    a_complete_snapshot_is_committed_once_and_a_retry_is_already_committed(&app).await;
    a_snapshot_reaching_unstored_blobs_is_refused_listing_them(&app).await;
    a_record_naming_another_agent_is_a_400(&app).await;
    a_blob_below_a_stored_tree_that_is_not_stored_is_listed(&app).await;
}
