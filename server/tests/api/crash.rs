//! Crash safety of the real `stowage-server` process: killed with SIGKILL
//! between writing a pack object and indexing it, or in the middle of a
//! commit's transaction, it comes back consistent.
//!
//! The binary the tests start is built with the `fault-points` feature (the
//! crate's dev-dependency on itself), so `STOWAGE_FAULT_PAUSE` makes it stop
//! at a named point and announce it by creating the `STOWAGE_FAULT_MARKER`
//! file. The test waits for that file — not for a time — kills the process
//! right there, restarts it on the same data directory and database, and
//! checks what a client and the database see. A retried upload killed at
//! the same point, over the object the first attempt left, is covered too.
//! Each scenario runs on SQLite and, when configured, on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use stowage_protocol::api::{CommitSnapshotResponse, MissingBlobsResponse, PackUploadResponse};
use stowage_protocol::ids::BlobId;
use stowage_server::configuration::DatabaseSettings;
use stowage_server::db::{Database, DbError, complete_trees, packs, snapshots, upload_sessions};
use stowage_server::ingest::pack_key;
use stowage_server::ingest::pause::PausePoint;

use crate::agent_api::{Enrolled, ask_missing, enrolled, open_session};
use crate::commit::{post_commit, record};
use crate::helpers::{TestApp, fresh_postgres};
use crate::pack_upload::{TestPack, build_pack, put_pack};

const BINARY: &str = env!("CARGO_BIN_EXE_stowage-server");
/// Longest wait for the server to start or to reach a fault point.
const PATIENCE: Duration = Duration::from_secs(30);

/// The running binary; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// Starts the binary on `data_dir` (and `database_url`, else SQLite in
    /// `data_dir`), pausing at `pause` if given, and waits until it listens.
    fn start(
        data_dir: &Path,
        database_url: Option<&str>,
        pause: Option<(PausePoint, &Path)>,
    ) -> Self {
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .env("STOWAGE_LISTEN", "127.0.0.1:0")
            .env("STOWAGE_DATA_DIR", data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.env("STOWAGE_DATABASE_URL", url);
        }
        if let Some((point, marker)) = pause {
            command
                .env("STOWAGE_FAULT_PAUSE", point.name())
                .env("STOWAGE_FAULT_MARKER", marker);
        }
        let mut child = command.spawn().expect("the server binary starts");
        let stdout = child.stdout.take().unwrap();
        let (lines, receiver) = mpsc::channel();
        // Drains stdout for the whole life of the process, so logging never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let address = loop {
            let line = receiver
                .recv_timeout(PATIENCE)
                .expect("the server logs that it listens within 30 s");
            if let Some(address) = line
                .rsplit("listening on ")
                .next()
                .filter(|_| line.contains("listening on http://"))
            {
                break address.trim().to_owned();
            }
        };
        Self { child, address }
    }

    /// Kills the process with SIGKILL and reaps it.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL reaches the server");
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "the server exited cleanly: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server created `marker`, i.e. reached its fault point,
/// letting the runtime drive the request that gets it there.
async fn wait_for_marker(marker: &Path, point: PausePoint) {
    let deadline = Instant::now() + PATIENCE;
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the server did not reach fault point {} within 30 s \
             (is the binary built with the fault-points feature?)",
            point.name()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A fresh data directory and database: SQLite inside the directory, or a
/// fresh PostgreSQL database. `None` when PostgreSQL is asked for but not
/// configured.
async fn fresh_stack(
    postgres: Option<&str>,
) -> Option<(tempfile::TempDir, Option<String>, Database)> {
    let dir = tempfile::tempdir().unwrap();
    let settings = match postgres {
        Some(test) => fresh_postgres(test).await?,
        None => DatabaseSettings::sqlite_in(dir.path()),
    };
    let database = Database::connect(&settings).await.unwrap();
    database.migrate().await.unwrap();
    let url = postgres.map(|_| settings.url.expose_secret().to_owned());
    Some((dir, url, database))
}

/// The real server on a fresh stack, set to pause at `point` and announce
/// it in the returned marker file, and a [`TestApp`] talking to it; `None`
/// when PostgreSQL is asked for but not configured.
async fn start_paused(
    postgres: Option<&str>,
    point: PausePoint,
) -> Option<(Server, TestApp, Option<String>, std::path::PathBuf)> {
    let (dir, url, database) = fresh_stack(postgres).await?;
    let marker = dir.path().join(format!("paused-at-{point:?}"));
    let server = Server::start(dir.path(), url.as_deref(), Some((point, &marker)));
    let app = TestApp {
        address: server.address.clone(),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        database,
        data_dir: dir,
    };
    Some((server, app, url, marker))
}

/// Starts the server again on `app`'s data directory and points `app` at it.
fn restart(app: &mut TestApp, url: Option<&str>, pause: Option<(PausePoint, &Path)>) -> Server {
    let server = Server::start(app.data_dir.path(), url, pause);
    app.address.clone_from(&server.address);
    server
}

/// The blobs of `pack` the server reports missing to `session`.
async fn missing_of(
    app: &TestApp,
    agent: &Enrolled,
    session: &str,
    pack: &TestPack,
) -> Vec<BlobId> {
    let response: MissingBlobsResponse =
        ask_missing(app, &agent.credential, session, blobs_of(pack))
            .await
            .json()
            .await
            .unwrap();
    response.missing
}

fn blobs_of(pack: &TestPack) -> Vec<BlobId> {
    pack.data.iter().copied().chain([pack.tree]).collect()
}

/// `PUT`s `pack` in the background; the answer never comes if the server
/// pauses and dies.
fn put_pack_in_background(
    app: &TestApp,
    agent: &Enrolled,
    session: &str,
    pack: &TestPack,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let request = app
        .client
        .put(format!(
            "{}/api/v1/uploads/{session}/packs/{}",
            app.address,
            pack.id.to_hex()
        ))
        .bearer_auth(&agent.credential)
        .header("content-type", "application/octet-stream")
        .body(pack.bytes.clone());
    tokio::spawn(request.send())
}

async fn a_server_killed_between_object_write_and_index_comes_back_without_the_pack(
    postgres: Option<&str>,
) {
    // Arrange: a server that stops after writing the first pack object.
    let point = PausePoint::AfterObjectWrite;
    let Some((server, mut app, url, marker)) = start_paused(postgres, point).await else {
        return;
    };
    let agent = enrolled(&app).await;
    let session = open_session(&app, &agent.credential).await.session_id;
    let pack = build_pack();
    let upload = put_pack_in_background(&app, &agent, &session.to_hex(), &pack);

    // Act: SIGKILL at the fault point; the retry, over the object the first
    // attempt left, is killed at the same point; then start without it.
    wait_for_marker(&marker, point).await;
    server.kill();
    let answered = upload.await.unwrap();
    let marker_again = app.data_dir.path().join("paused-again-after-object-write");
    let server = restart(&mut app, url.as_deref(), Some((point, &marker_again)));
    let retry = put_pack_in_background(&app, &agent, &session.to_hex(), &pack);
    wait_for_marker(&marker_again, point).await;
    server.kill();
    let answered_again = retry.await.unwrap();
    let server = restart(&mut app, url.as_deref(), None);

    // Assert: the object was written, but nothing of the pack is indexed.
    assert!(answered.is_err(), "the killed upload was answered");
    assert!(answered_again.is_err(), "the killed retry was answered");
    let key = pack_key(agent.tenant, pack.id);
    let object: PathBuf = key
        .segments()
        .fold(app.data_dir.path().join("objects"), |path, segment| {
            path.join(segment)
        });
    assert!(
        object.is_file(),
        "the fault point came before the object write"
    );
    assert!(matches!(
        packs::get(&app.database, agent.tenant, pack.id).await,
        Err(DbError::NotFound { .. })
    ));
    assert_eq!(
        missing_of(&app, &agent, &session.to_hex(), &pack).await,
        blobs_of(&pack),
        "a blob of the killed upload is visible"
    );

    // The retry stores and indexes the pack once; a second retry is a no-op.
    let retried = put_pack(
        &app,
        &agent.credential,
        &session.to_hex(),
        &pack.id.to_hex(),
        pack.bytes.clone(),
    )
    .await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    let body: PackUploadResponse = retried.json().await.unwrap();
    assert!(!body.already_present);
    assert_eq!(body.blobs_indexed, 3);
    let again = put_pack(
        &app,
        &agent.credential,
        &session.to_hex(),
        &pack.id.to_hex(),
        pack.bytes.clone(),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        packs::blob_ids(&app.database, agent.tenant, pack.id)
            .await
            .unwrap()
            .len(),
        3
    );
    let missing = missing_of(&app, &agent, &session.to_hex(), &pack).await;
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(
        upload_sessions::leased_count(&app.database, agent.tenant, session)
            .await
            .unwrap(),
        3
    );
    drop(server);
}

async fn a_server_killed_inside_a_commit_comes_back_with_no_snapshot_and_the_session_open(
    postgres: Option<&str>,
) {
    // Arrange: a stored pack, and a server that stops inside the commit's
    // transaction after storing the snapshot.
    let point = PausePoint::CommitBeforeTransactionEnd;
    let Some((server, mut app, url, marker)) = start_paused(postgres, point).await else {
        return;
    };
    let agent = enrolled(&app).await;
    let session = open_session(&app, &agent.credential).await.session_id;
    let pack = build_pack();
    let uploaded = put_pack(
        &app,
        &agent.credential,
        &session.to_hex(),
        &pack.id.to_hex(),
        pack.bytes.clone(),
    )
    .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let record = record(&agent, pack.tree);
    let commit = {
        let request = app
            .client
            .post(format!(
                "{}/api/v1/uploads/{}/commit",
                app.address,
                session.to_hex()
            ))
            .bearer_auth(&agent.credential)
            .json(&stowage_protocol::api::CommitSnapshotRequest {
                record: record.clone(),
            });
        tokio::spawn(request.send())
    };

    // Act
    wait_for_marker(&marker, point).await;
    server.kill();
    let answered = commit.await.unwrap();
    let server = restart(&mut app, url.as_deref(), None);

    // Assert: no snapshot, the session open with its leases, no tree
    // recorded complete.
    assert!(answered.is_err(), "the killed commit was answered");
    assert!(matches!(
        snapshots::get(&app.database, agent.tenant, record.id()).await,
        Err(DbError::NotFound { .. })
    ));
    let listed =
        crate::agent_api::authed(&app, reqwest::Method::GET, "/snapshots", &agent.credential)
            .send()
            .await
            .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert!(
        !listed.to_string().contains(&record.id().to_hex()),
        "the killed commit's snapshot is listed: {listed}"
    );
    let stored = upload_sessions::get(&app.database, agent.tenant, session)
        .await
        .unwrap();
    assert!(stored.committed_at.is_none());
    assert_eq!(
        upload_sessions::leased_count(&app.database, agent.tenant, session)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        complete_trees::count(&app.database, agent.tenant)
            .await
            .unwrap(),
        0
    );

    // The retried commit succeeds and the snapshot becomes visible.
    let retried = post_commit(&app, &agent.credential, &session.to_hex(), &record).await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    let body: CommitSnapshotResponse = retried.json().await.unwrap();
    assert!(!body.already_committed);
    assert!(
        snapshots::get(&app.database, agent.tenant, record.id())
            .await
            .is_ok()
    );
    drop(server);
}

#[tokio::test]
async fn a_server_killed_between_object_write_and_index_comes_back_without_the_pack_on_sqlite() {
    a_server_killed_between_object_write_and_index_comes_back_without_the_pack(None).await;
}

#[tokio::test]
async fn a_server_killed_inside_a_commit_comes_back_with_no_snapshot_and_the_session_open_on_sqlite()
 {
    a_server_killed_inside_a_commit_comes_back_with_no_snapshot_and_the_session_open(None).await;
}

#[tokio::test]
async fn a_killed_server_comes_back_consistent_on_postgres() {
    a_server_killed_between_object_write_and_index_comes_back_without_the_pack(Some(
        "a_killed_server_comes_back_consistent_on_postgres",
    ))
    .await;
    a_server_killed_inside_a_commit_comes_back_with_no_snapshot_and_the_session_open(Some(
        "a_killed_server_comes_back_consistent_on_postgres",
    ))
    .await;
}

#[test]
fn the_binary_under_test_has_the_fault_points_compiled_in() {
    let bytes = std::fs::read(BINARY).unwrap();
    let needle = b"STOWAGE_FAULT_PAUSE";

    let found = bytes.windows(needle.len()).any(|window| window == needle);

    assert!(found, "{BINARY} was built without the fault-points feature");
}
