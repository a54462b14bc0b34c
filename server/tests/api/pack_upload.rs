//! `PUT /api/v1/uploads/{session_id}/packs/{pack_id}` over HTTP: real packs
//! built with the protocol's `PackWriter`, stored on the embedded stack.
//! Each scenario runs on SQLite and, when configured, on PostgreSQL.

use reqwest::StatusCode;
use stowage_protocol::api::{MissingBlobsResponse, PackUploadResponse, codes};
use stowage_protocol::blob::{BlobKind, Compression, seal_blob_random};
use stowage_protocol::crypto::{DataKey, IdKey, TenantKeys, seal_data_key_random};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::PackWriter;

use crate::agent_api::{Enrolled, ask_missing, authed, enrolled, error_of, open_session};
use stowage_server::db::upload_sessions;

use crate::helpers::{TestApp, spawn_app};

/// A sealed pack: its id, its bytes, its two data blobs and the tree
/// referencing both.
pub(crate) struct TestPack {
    pub(crate) id: PackId,
    pub(crate) bytes: Vec<u8>,
    pub(crate) data: Vec<BlobId>,
    pub(crate) tree: BlobId,
}

pub(crate) fn build_pack() -> TestPack {
    let keys = TenantKeys::generate();
    let data_key = DataKey::random();
    let sealed_key = seal_data_key_random(&data_key, &keys.public_key()).unwrap();
    let id_key = IdKey::random();
    let mut writer = PackWriter::new(&sealed_key);
    let mut data = Vec::new();
    for n in 0..2u8 {
        let plaintext = vec![n; 1000];
        let id = id_key.chunk_id(&plaintext);
        let sealed = seal_blob_random(
            &data_key,
            &id,
            BlobKind::Data,
            &plaintext,
            Compression::NONE,
        );
        writer.add(BlobKind::Data, id, &sealed, &[]).unwrap();
        data.push(id);
    }
    let mut refs = data.clone();
    refs.sort_unstable();
    let plaintext = b"a tree listing two files";
    let tree = id_key.tree_id(plaintext);
    let sealed = seal_blob_random(
        &data_key,
        &tree,
        BlobKind::Tree,
        plaintext,
        Compression::NONE,
    );
    writer.add(BlobKind::Tree, tree, &sealed, &refs).unwrap();
    let (id, bytes) = writer.finish();
    TestPack {
        id,
        bytes,
        data,
        tree,
    }
}

/// An agent of a fresh tenant, the hex id of a session it opened, and a
/// test pack uploaded in that session (asserted stored, 201).
pub(crate) async fn agent_with_uploaded_pack(app: &TestApp) -> (Enrolled, String, TestPack) {
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
        pack.bytes.clone(),
    )
    .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    (agent, session, pack)
}

pub(crate) async fn put_pack(
    app: &TestApp,
    credential: &str,
    session: &str,
    pack: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    authed(
        app,
        reqwest::Method::PUT,
        &format!("/uploads/{session}/packs/{pack}"),
        credential,
    )
    .header("content-type", "application/octet-stream")
    .body(body)
    .send()
    .await
    .unwrap()
}

async fn an_uploaded_pack_is_indexed_and_a_repeat_is_already_present(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let pack = build_pack();
    let all: Vec<BlobId> = pack.data.iter().copied().chain([pack.tree]).collect();

    let response = put_pack(
        app,
        &agent.credential,
        &session,
        &pack.id.to_hex(),
        pack.bytes.clone(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: PackUploadResponse = response.json().await.unwrap();
    assert_eq!(
        body,
        PackUploadResponse {
            pack_id: pack.id,
            blobs_indexed: 3,
            already_present: false,
        }
    );
    let missing: MissingBlobsResponse = ask_missing(app, &agent.credential, &session, all)
        .await
        .json()
        .await
        .unwrap();
    assert!(missing.missing.is_empty(), "{:?}", missing.missing);

    let again = put_pack(
        app,
        &agent.credential,
        &session,
        &pack.id.to_hex(),
        pack.bytes,
    )
    .await;

    assert_eq!(again.status(), StatusCode::OK);
    let body: PackUploadResponse = again.json().await.unwrap();
    assert!(body.already_present);
    assert_eq!(body.blobs_indexed, 3);
}

async fn a_body_that_is_not_the_named_pack_is_rejected_and_not_indexed(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let pack = build_pack();
    let other = build_pack();

    let wrong = put_pack(
        app,
        &agent.credential,
        &session,
        &other.id.to_hex(),
        pack.bytes.clone(),
    )
    .await;

    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = error_of(wrong).await;
    assert_eq!(error.code, codes::PACK_REJECTED);
    assert!(
        error.message.contains("wrong pack hash"),
        "{}",
        error.message
    );
    assert!(!error.retryable);

    let cut = pack.bytes[..pack.bytes.len() / 2].to_vec();
    let truncated = put_pack(app, &agent.credential, &session, &pack.id.to_hex(), cut).await;

    assert!(
        [StatusCode::UNPROCESSABLE_ENTITY, StatusCode::BAD_REQUEST].contains(&truncated.status()),
        "{}",
        truncated.status()
    );
    let missing: MissingBlobsResponse =
        ask_missing(app, &agent.credential, &session, pack.data.clone())
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(missing.missing.len(), 2);
}

async fn a_pack_id_that_is_not_hex_is_a_400(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();

    let response = put_pack(
        app,
        &agent.credential,
        &session,
        "not-a-pack-id",
        vec![1, 2, 3],
    )
    .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert!(error.message.contains("not-a-pack-id"), "{}", error.message);
}

async fn a_pack_for_another_tenants_session_is_not_found_and_not_stored(app: &TestApp) {
    let owner = enrolled(app).await;
    let intruder = enrolled(app).await;
    let session = open_session(app, &owner.credential)
        .await
        .session_id
        .to_hex();
    let pack = build_pack();

    let response = put_pack(
        app,
        &intruder.credential,
        &session,
        &pack.id.to_hex(),
        pack.bytes,
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(response).await.code, codes::NOT_FOUND);
    let own_session = open_session(app, &intruder.credential)
        .await
        .session_id
        .to_hex();
    let missing: MissingBlobsResponse =
        ask_missing(app, &intruder.credential, &own_session, vec![pack.tree])
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(missing.missing, vec![pack.tree]);
}

async fn an_uploaded_pack_is_leased_to_each_session_that_uploads_it(app: &TestApp) {
    let agent = enrolled(app).await;
    let first = open_session(app, &agent.credential).await.session_id;
    let second = open_session(app, &agent.credential).await.session_id;
    let pack = build_pack();

    let stored = put_pack(
        app,
        &agent.credential,
        &first.to_hex(),
        &pack.id.to_hex(),
        pack.bytes.clone(),
    )
    .await;
    let repeated = put_pack(
        app,
        &agent.credential,
        &second.to_hex(),
        &pack.id.to_hex(),
        pack.bytes,
    )
    .await;

    assert_eq!(stored.status(), StatusCode::CREATED);
    assert_eq!(repeated.status(), StatusCode::OK);
    for session in [first, second] {
        let leased = upload_sessions::leased_count(&app.database, agent.tenant, session)
            .await
            .unwrap();
        assert_eq!(leased, 3, "session {session}");
    }
}

async fn an_expired_session_refuses_missing_pack_and_commit(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential).await.session_id;
    let pack = build_pack();
    upload_sessions::expire(&app.database, agent.tenant, session)
        .await
        .unwrap();

    let missing = ask_missing(app, &agent.credential, &session.to_hex(), vec![pack.tree]).await;
    let upload = put_pack(
        app,
        &agent.credential,
        &session.to_hex(),
        &pack.id.to_hex(),
        pack.bytes,
    )
    .await;
    let commit = crate::commit::post_commit(
        app,
        &agent.credential,
        &session.to_hex(),
        &crate::commit::record(&agent, pack.tree),
    )
    .await;

    for response in [missing, upload, commit] {
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let error = error_of(response).await;
        assert_eq!(error.code, codes::SESSION_EXPIRED);
        assert!(
            error.message.contains("lease ran out") && error.message.contains(&session.to_hex()),
            "{}",
            error.message
        );
    }
    let after: MissingBlobsResponse = {
        let fresh = open_session(app, &agent.credential)
            .await
            .session_id
            .to_hex();
        ask_missing(app, &agent.credential, &fresh, vec![pack.tree])
            .await
            .json()
            .await
            .unwrap()
    };
    assert_eq!(
        after.missing,
        vec![pack.tree],
        "the refused upload stored the pack"
    );
    assert_eq!(
        upload_sessions::leased_count(&app.database, agent.tenant, session)
            .await
            .unwrap(),
        0
    );
}

/// A body declared larger than a pack may be is refused from its headers
/// alone: the client gets 413 without sending a byte of it, and nothing is
/// spooled or indexed.
#[tokio::test]
async fn a_body_declared_over_the_pack_limit_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let agent = enrolled(&app).await;
    let session = open_session(&app, &agent.credential).await.session_id;
    let pack = build_pack();
    let declared = stowage_protocol::pack::MAX_PACK_SIZE + 1;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();

    let head = format!(
        "PUT /api/v1/uploads/{session}/packs/{} HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {declared}\r\n\r\n",
        pack.id, agent.credential
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("the server answers without waiting for the body")
                .unwrap();
        assert_ne!(
            read, 0,
            "the server closed the connection without answering"
        );
        answer.extend_from_slice(&buffer[..read]);
    }
    let answer = String::from_utf8_lossy(&answer);

    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let missing: MissingBlobsResponse = ask_missing(
        &app,
        &agent.credential,
        &session.to_hex(),
        pack.data.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(missing.missing, pack.data, "nothing was indexed");
    let spool = app.data_dir.path().join("tmp");
    let spooled = std::fs::read_dir(&spool).map_or(0, Iterator::count);
    assert_eq!(spooled, 0, "nothing was spooled in {}", spool.display());
}

on_sqlite_and_postgres!(
    pack_upload_holds_on_postgres:
    an_uploaded_pack_is_indexed_and_a_repeat_is_already_present,
    a_body_that_is_not_the_named_pack_is_rejected_and_not_indexed,
    a_pack_id_that_is_not_hex_is_a_400,
    a_pack_for_another_tenants_session_is_not_found_and_not_stored,
    an_uploaded_pack_is_leased_to_each_session_that_uploads_it,
    an_expired_session_refuses_missing_pack_and_commit,
);
