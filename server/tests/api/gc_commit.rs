//! A commit racing a garbage collection sweep over HTTP: a sweep that
//! removes blobs the commit's walk already saw, and commits while the
//! commit is under way, makes the commit walk again and name what went —
//! never store a snapshot over blobs that are gone. On PostgreSQL the
//! commit's walk runs beside the open sweep and then waits on the epoch
//! row the sweep holds; on SQLite the sweep's write lock orders the whole
//! commit after it. Each scenario runs on SQLite and, when configured, on
//! PostgreSQL.

use std::time::Duration;

use reqwest::StatusCode;
use stowage_protocol::api::codes;
use stowage_server::db::{DbError, gc_sweep, snapshots};

use crate::agent_api::error_of;
use crate::commit::{post_commit, record};
use crate::helpers::TestApp;
use crate::pack_upload::agent_with_uploaded_pack;

async fn a_commit_overtaken_by_a_sweep_walks_again_and_names_what_went(app: &TestApp) {
    // Arrange: an uploaded pack, and an open sweep transaction removing it.
    let (agent, session, pack) = agent_with_uploaded_pack(app).await;
    let record = record(&agent, pack.tree);
    gc_sweep::ensure_epoch(&app.database, agent.tenant)
        .await
        .unwrap();
    let mut sweep = gc_sweep::begin(&app.database, agent.tenant).await.unwrap();
    sweep
        .delete_packs(&[(pack.id, pack.bytes.len() as u64)])
        .await
        .unwrap();

    // Act: the commit starts; the sweep commits while it is under way.
    let (response, ()) = tokio::join!(
        post_commit(app, &agent.credential, &session, &record),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            sweep.commit().await.unwrap();
        }
    );

    // Assert
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::MISSING_BLOBS, "{}", error.message);
    assert_eq!(error.missing_blobs, vec![pack.tree]);
    assert!(matches!(
        snapshots::get(&app.database, agent.tenant, record.id()).await,
        Err(DbError::NotFound { .. })
    ));
}

on_sqlite_and_postgres!(
    gc_commit_on_postgres: a_commit_overtaken_by_a_sweep_walks_again_and_names_what_went
);
