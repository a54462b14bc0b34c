//! A commit racing a garbage collection sweep over HTTP: a sweep that
//! removes blobs the commit's walk already saw, and commits while the
//! commit is under way, makes the commit walk again and name what went —
//! never store a snapshot over blobs that are gone; and sweeps that keep
//! coming during the walk do not hold the commit back. On PostgreSQL the
//! commit's walk runs beside the open sweep and then waits on the epoch
//! row the sweep holds; on SQLite the sweep's write lock orders the whole
//! commit after it. Each scenario runs on SQLite and, when configured, on
//! PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use stowage_protocol::api::codes;
use stowage_server::db::{DbError, gc_sweep, snapshots};

use crate::agent_api::{enrolled, error_of};
use crate::commit::{commit_in_new_session, data, index_blobs, post_commit, record, tree};
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

/// How deep the second scenario's trees nest: a walk reads level by level,
/// so this many rounds of queries give sweeps time to overtake it.
const DEPTH: usize = 200;

async fn a_commit_that_sweeps_keep_overtaking_walks_under_the_lock_and_commits(app: &TestApp) {
    // Arrange: a snapshot whose trees nest DEPTH deep, and "sweeps" bumping
    // the tenant's epoch every millisecond for as long as the commit runs,
    // as a long sweep does. A commit that only walked outside its
    // transaction was overtaken on every walk and failed with 500.
    let agent = enrolled(app).await;
    let mut blobs = vec![data()];
    for _ in 0..DEPTH {
        let below = blobs.last().unwrap().id;
        blobs.push(tree(&[below]));
    }
    index_blobs(app, &agent, &blobs).await;
    let root = blobs.last().unwrap().id;
    gc_sweep::ensure_epoch(&app.database, agent.tenant)
        .await
        .unwrap();
    let epoch_before = gc_sweep::epoch(&app.database, agent.tenant).await.unwrap();
    let committing = Arc::new(AtomicBool::new(true));
    let sweeps = tokio::spawn({
        let database = app.database.clone();
        let committing = Arc::clone(&committing);
        let tenant = agent.tenant;
        async move {
            while committing.load(Ordering::Relaxed) {
                let sweep = gc_sweep::begin(&database, tenant).await.unwrap();
                sweep.commit().await.unwrap();
                // Free the lock between sweeps, as the sweep's rests do.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });

    // Act
    let status = commit_in_new_session(app, &agent, root).await;
    committing.store(false, Ordering::Relaxed);
    sweeps.await.unwrap();

    // Assert: stored, with sweeps running all along.
    assert_eq!(status, StatusCode::CREATED);
    let sweeps_run = gc_sweep::epoch(&app.database, agent.tenant).await.unwrap() - epoch_before;
    assert!(sweeps_run > 10, "only {sweeps_run} sweeps ran");
}

on_sqlite_and_postgres!(
    gc_commit_on_postgres: a_commit_overtaken_by_a_sweep_walks_again_and_names_what_went,
    a_commit_that_sweeps_keep_overtaking_walks_under_the_lock_and_commits
);
