//! Garbage collection clears out upload sessions that ended long ago: the
//! leases of a session that expired uncommitted go an hour after expiry,
//! and a session that committed or expired over a week ago goes entirely.
//! Live sessions and recent ones are left alone. On SQLite and PostgreSQL.

use chrono::Utc;
use sqlx::{AssertSqlSafe, Connection};
use stowage_protocol::ids::{BlobId, UploadSessionId};
use stowage_server::db::{DbError, upload_sessions};

use crate::gc_fixture::{Stack, data};

const HOUR_MILLIS: i64 = 3_600_000;

/// Opens a session of `stack`'s agent leasing `blobs`, and sets when its
/// lease ends (and, if `committed_ago` is given, when it committed),
/// counted back from now.
async fn session(
    stack: &Stack,
    blobs: &[BlobId],
    lease_ends_in: i64,
    committed_ago: Option<i64>,
) -> UploadSessionId {
    let session = stack.open_session().await;
    upload_sessions::lease_blobs(&stack.db, stack.tenant, session.id, blobs)
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    let mut conn = sqlx::AnyConnection::connect(&stack.url).await.unwrap();
    sqlx::query(AssertSqlSafe(
        "UPDATE upload_sessions SET lease_expires_at = $3, committed_at = $4 \
         WHERE tenant_id = $1 AND id = $2"
            .to_owned(),
    ))
    .bind(stack.tenant.to_hex())
    .bind(session.id.to_hex())
    .bind(now + lease_ends_in)
    .bind(committed_ago.map(|ago| now - ago))
    .execute(&mut conn)
    .await
    .unwrap();
    session.id
}

async fn leases(stack: &Stack, session: UploadSessionId) -> u64 {
    upload_sessions::leased_count(&stack.db, stack.tenant, session)
        .await
        .unwrap()
}

async fn exists(stack: &Stack, session: UploadSessionId) -> bool {
    match upload_sessions::get(&stack.db, stack.tenant, session).await {
        Ok(_) => true,
        Err(DbError::NotFound { .. }) => false,
        Err(other) => panic!("looking up session {session}: {other}"),
    }
}

async fn ended_sessions_are_cleared_out_and_live_ones_kept(stack: &Stack) {
    // Arrange: one blob in a pack, kept by a snapshot so nothing else
    // changes, leased by five sessions in different states.
    let blob = data();
    stack.pack(std::slice::from_ref(&blob)).await;
    stack.snapshot(blob.id).await;
    let ids = [blob.id];
    let live = session(stack, &ids, HOUR_MILLIS, None).await;
    let just_expired = session(stack, &ids, -10 * 60 * 1000, None).await;
    let expired_hours_ago = session(stack, &ids, -2 * HOUR_MILLIS, None).await;
    let expired_days_ago = session(stack, &ids, -8 * 24 * HOUR_MILLIS, None).await;
    let committed_days_ago = session(
        stack,
        &[],
        -8 * 24 * HOUR_MILLIS,
        Some(8 * 24 * HOUR_MILLIS),
    )
    .await;
    let committed_recently = session(stack, &[], -HOUR_MILLIS, Some(2 * HOUR_MILLIS)).await;

    // Act
    let first = stack.collect(false).await;
    let second = stack.collect(false).await;

    // Assert
    assert_eq!(
        leases(stack, live).await,
        1,
        "a live session keeps its lease"
    );
    assert_eq!(
        leases(stack, just_expired).await,
        1,
        "an hour's grace after expiry"
    );
    assert_eq!(leases(stack, expired_hours_ago).await, 0);
    assert!(
        exists(stack, expired_hours_ago).await,
        "the row stays a week"
    );
    assert!(!exists(stack, expired_days_ago).await);
    assert!(!exists(stack, committed_days_ago).await);
    assert!(exists(stack, committed_recently).await);
    assert!(exists(stack, live).await && exists(stack, just_expired).await);
    assert_eq!(
        (first.expired_leases_released, first.ended_sessions_removed),
        (2, 2),
        "the leases of both sessions expired over an hour ago, then the two week-old sessions: \
         {first:?}"
    );
    assert_eq!(
        (
            second.expired_leases_released,
            second.ended_sessions_removed
        ),
        (0, 0),
        "{second:?}"
    );
    assert!(stack.blob_exists(blob.id).await);
}

async fn a_dry_run_clears_out_nothing(stack: &Stack) {
    // Arrange
    let blob = data();
    stack.pack(std::slice::from_ref(&blob)).await;
    let old = session(stack, &[blob.id], -8 * 24 * HOUR_MILLIS, None).await;

    // Act
    let report = stack.collect(true).await;

    // Assert
    assert!(exists(stack, old).await);
    assert_eq!(leases(stack, old).await, 1);
    assert_eq!(report.ended_sessions_removed, 0, "{report:?}");
}

on_both_stacks!(
    gc_sessions_on_postgres:
    ended_sessions_are_cleared_out_and_live_ones_kept,
    a_dry_run_clears_out_nothing,
);
