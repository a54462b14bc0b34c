//! `POST /api/v1/uploads/{session_id}/commit` over HTTP: a snapshot is
//! stored only when every blob its root reaches is, and a retry is
//! idempotent. Each scenario runs on SQLite and, when configured, on
//! PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use stowage_protocol::api::{
    CommitSnapshotRequest, CommitSnapshotResponse, EnrollRequest, EnrollResponse, codes,
};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::snapshot::{RawPath, SnapshotRecord, SnapshotSummary};
use stowage_server::db::packs::{self, IndexedBlob};
use stowage_server::db::{audit, complete_trees, enrollment_tokens, snapshots, upload_sessions};
use stowage_server::ingest::reachability;

use crate::agent_api::{Enrolled, authed, enrolled, error_of, open_session};
use crate::helpers::TestApp;
use crate::pack_upload::{agent_with_uploaded_pack, build_pack, put_pack};

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
    let (agent, session, pack) = agent_with_uploaded_pack(app).await;
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

/// A second agent enrolled into `of`'s tenant.
async fn sibling(app: &TestApp, of: &Enrolled) -> Enrolled {
    let token = enrollment_tokens::create(&app.database, of.tenant, Duration::from_hours(1))
        .await
        .unwrap();
    let response = app
        .client
        .post(format!("{}/api/v1/agents/enroll", app.address))
        .json(&EnrollRequest {
            token: token.secret.expose_secret().to_owned(),
            agent_name: format!("sibling-{}", &crate::helpers::random_hex()[..8]),
            hostname: "db2.example.com".to_owned(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: EnrollResponse = response.json().await.unwrap();
    Enrolled {
        tenant: of.tenant,
        agent: body.agent_id,
        credential: body.credential,
    }
}

fn random_blob() -> BlobId {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    BlobId::from_bytes(bytes)
}

pub(crate) fn tree(refs: &[BlobId]) -> IndexedBlob {
    let mut refs = refs.to_vec();
    refs.sort_unstable();
    IndexedBlob {
        id: random_blob(),
        kind: BlobKind::Tree,
        offset: 0,
        length: 10,
        refs,
    }
}

pub(crate) fn data() -> IndexedBlob {
    IndexedBlob {
        id: random_blob(),
        kind: BlobKind::Data,
        offset: 0,
        length: 10,
        refs: Vec::new(),
    }
}

pub(crate) async fn index_blobs(app: &TestApp, agent: &Enrolled, blobs: &[IndexedBlob]) {
    let mut pack = [0u8; 32];
    getrandom::fill(&mut pack).unwrap();
    packs::index(
        &app.database,
        agent.tenant,
        PackId::from_bytes(pack),
        100,
        blobs,
    )
    .await
    .unwrap();
}

pub(crate) async fn commit_in_new_session(
    app: &TestApp,
    agent: &Enrolled,
    root: BlobId,
) -> StatusCode {
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let mut record = record(agent, root);
    record.hostname = format!("host-{}", root.to_hex());
    post_commit(app, &agent.credential, &session, &record)
        .await
        .status()
}

async fn a_second_commit_walks_only_the_trees_that_are_new(app: &TestApp) {
    // Arrange: root1 → {shared → {d1, d2 → …}, old → {d3}}; root2 reuses
    // `shared` and adds `new` → {d4}.
    let agent = enrolled(app).await;
    let (d1, d2, d3, d4) = (data(), data(), data(), data());
    let deep = tree(&[d2.id]);
    let shared = tree(&[d1.id, deep.id]);
    let old = tree(&[d3.id]);
    let root1 = tree(&[shared.id, old.id]);
    let new = tree(&[d4.id]);
    let root2 = tree(&[shared.id, new.id]);
    index_blobs(
        app,
        &agent,
        &[
            d1,
            d2,
            d3,
            d4,
            deep.clone(),
            shared.clone(),
            old.clone(),
            root1.clone(),
            new.clone(),
            root2.clone(),
        ],
    )
    .await;
    let first = reachability::walk(&app.database, agent.tenant, &[root1.id])
        .await
        .unwrap();
    assert_eq!(first.walked_trees.len(), 4, "nothing is known complete yet");
    assert_eq!(
        commit_in_new_session(app, &agent, root1.id).await,
        StatusCode::CREATED
    );
    assert_eq!(
        complete_trees::count(&app.database, agent.tenant)
            .await
            .unwrap(),
        4
    );

    // Act
    let second = reachability::walk(&app.database, agent.tenant, &[root2.id])
        .await
        .unwrap();

    // Assert: `shared` (and `deep` below it) are not walked again.
    let walked: HashSet<BlobId> = second.walked_trees.iter().copied().collect();
    assert_eq!(walked, HashSet::from([root2.id, new.id]));
    assert_eq!(second.missing_total, 0);
    assert_eq!(
        commit_in_new_session(app, &agent, root2.id).await,
        StatusCode::CREATED
    );
    assert_eq!(
        complete_trees::count(&app.database, agent.tenant)
            .await
            .unwrap(),
        6
    );

    // Forgotten trees (what garbage collection does) are walked again; the
    // ones still recorded below them are not.
    let mut tx = app.database.begin().await.unwrap();
    complete_trees::forget(&mut tx, agent.tenant, &[root2.id, shared.id])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let third = reachability::walk(&app.database, agent.tenant, &[root2.id])
        .await
        .unwrap();
    let walked: HashSet<BlobId> = third.walked_trees.iter().copied().collect();
    assert_eq!(walked, HashSet::from([root2.id, shared.id]));
}

async fn a_failed_commit_records_no_tree_as_complete(app: &TestApp) {
    let agent = enrolled(app).await;
    let absent = random_blob();
    let below = tree(&[absent]);
    let root = tree(&[below.id]);
    index_blobs(app, &agent, &[below.clone(), root.clone()]).await;

    let status = commit_in_new_session(app, &agent, root.id).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        complete_trees::count(&app.database, agent.tenant)
            .await
            .unwrap(),
        0
    );
}

async fn a_session_of_another_agent_of_the_tenant_is_not_found_and_audited(app: &TestApp) {
    let owner = enrolled(app).await;
    let other = sibling(app, &owner).await;
    let session = open_session(app, &owner.credential).await.session_id;
    let pack = build_pack();
    let uploaded = put_pack(
        app,
        &owner.credential,
        &session.to_hex(),
        &pack.id.to_hex(),
        pack.bytes,
    )
    .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let record = record(&other, pack.tree);

    let response = post_commit(app, &other.credential, &session.to_hex(), &record).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::NOT_FOUND);
    assert!(
        error.message.contains(&session.to_hex()),
        "{}",
        error.message
    );
    assert!(
        snapshots::get(&app.database, owner.tenant, record.id())
            .await
            .is_err()
    );
    let stored = upload_sessions::get(&app.database, owner.tenant, session)
        .await
        .unwrap();
    assert!(stored.committed_at.is_none());
    let log = audit::list_for_tenant(&app.database, owner.tenant, 20)
        .await
        .unwrap();
    assert!(log.iter().any(|entry| {
        entry.action == "upload_session.access_denied"
            && entry.object == session.to_hex()
            && entry.actor == other.agent.to_hex()
    }));
}

async fn a_data_blob_as_root_is_refused_naming_it(app: &TestApp) {
    let (agent, session, pack) = agent_with_uploaded_pack(app).await;
    let record = record(&agent, pack.data[0]);

    let response = post_commit(app, &agent.credential, &session, &record).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::INVALID_REQUEST);
    assert!(
        error.message.contains(&pack.data[0].to_hex()) && error.message.contains("data blob"),
        "{}",
        error.message
    );
    assert!(
        snapshots::get(&app.database, agent.tenant, record.id())
            .await
            .is_err()
    );
}

on_sqlite_and_postgres!(
    committing_holds_on_postgres:
    a_complete_snapshot_is_committed_once_and_a_retry_is_already_committed,
    a_snapshot_reaching_unstored_blobs_is_refused_listing_them,
    a_record_naming_another_agent_is_a_400,
    a_blob_below_a_stored_tree_that_is_not_stored_is_listed,
    a_second_commit_walks_only_the_trees_that_are_new,
    a_failed_commit_records_no_tree_as_complete,
    a_session_of_another_agent_of_the_tenant_is_not_found_and_audited,
    a_data_blob_as_root_is_refused_naming_it,
);
