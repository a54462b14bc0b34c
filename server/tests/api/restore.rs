//! The restore side of the agent API over HTTP: `POST /api/v1/blobs/locate`,
//! `GET /api/v1/trees/{blob_id}` and `GET /api/v1/packs/{pack_id}` (whole
//! or one `Range`), confined to the caller's tenant. Packs are real, sealed
//! to tenant keys the test keeps, so what comes back is opened as an agent
//! would. Each scenario runs on SQLite and, when configured, on PostgreSQL.

use reqwest::header::{ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};
use stowage_protocol::api::{
    ApiError, LocateBlobsRequest, LocateBlobsResponse, MAX_IDS_PER_QUERY, codes,
};
use stowage_protocol::blob::{BlobKind, Compression, open_blob, seal_blob_random};
use stowage_protocol::crypto::{DataKey, IdKey, TenantKeys, open_data_key, seal_data_key_random};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PACK_HEADER_LEN, PackHeader, PackWriter};
use stowage_server::db::{audit, packs};

use crate::agent_api::{Enrolled, authed, enrolled, error_of, open_session};
use crate::helpers::{TestApp, random_hex};
use crate::pack_upload::put_pack;

/// Largest plaintext the tests open.
const MAX_PLAIN: usize = 16 << 20;

/// One sealed blob of a test pack, with what it was sealed from.
struct TestBlob {
    id: BlobId,
    kind: BlobKind,
    plaintext: Vec<u8>,
    sealed: Vec<u8>,
}

/// A pack sealed to `keys`, uploaded for `agent`.
struct Stored {
    agent: Enrolled,
    keys: TenantKeys,
    id: PackId,
    bytes: Vec<u8>,
    /// The data blobs, then the tree referencing them all.
    blobs: Vec<TestBlob>,
}

impl Stored {
    fn tree(&self) -> &TestBlob {
        self.blobs.last().unwrap()
    }

    fn data(&self) -> &TestBlob {
        &self.blobs[0]
    }
}

/// Builds a pack of `data_blobs` data blobs of `blob_len` bytes each and a
/// tree over them, sealed to fresh tenant keys.
fn sealed_pack(data_blobs: u8, blob_len: usize) -> (TenantKeys, PackId, Vec<u8>, Vec<TestBlob>) {
    let keys = TenantKeys::generate();
    let data_key = DataKey::random();
    let sealed_key = seal_data_key_random(&data_key, &keys.public_key()).unwrap();
    let id_key = IdKey::random();
    let mut writer = PackWriter::new(&sealed_key);
    let mut blobs = Vec::new();
    for n in 0..data_blobs {
        let plaintext: Vec<u8> = (0..blob_len)
            .map(|i| u8::try_from(i % 251).unwrap() ^ n)
            .collect();
        let id = id_key.chunk_id(&plaintext);
        let sealed = seal_blob_random(
            &data_key,
            &id,
            BlobKind::Data,
            &plaintext,
            Compression::NONE,
        );
        writer.add(BlobKind::Data, id, &sealed, &[]).unwrap();
        blobs.push(TestBlob {
            id,
            kind: BlobKind::Data,
            plaintext,
            sealed,
        });
    }
    let mut refs: Vec<BlobId> = blobs.iter().map(|blob| blob.id).collect();
    refs.sort_unstable();
    let plaintext = format!("a tree listing {data_blobs} files").into_bytes();
    let tree = id_key.tree_id(&plaintext);
    let sealed = seal_blob_random(
        &data_key,
        &tree,
        BlobKind::Tree,
        &plaintext,
        Compression::NONE,
    );
    writer.add(BlobKind::Tree, tree, &sealed, &refs).unwrap();
    blobs.push(TestBlob {
        id: tree,
        kind: BlobKind::Tree,
        plaintext,
        sealed,
    });
    let (id, bytes) = writer.finish();
    (keys, id, bytes, blobs)
}

/// Enrolls an agent of a new tenant and uploads a pack for it.
///
/// The pack is built first: sealing megabytes in a debug build takes
/// seconds, longer than the server keeps an idle connection open, and the
/// client would then send the upload on a connection the server has closed.
async fn stored(app: &TestApp, data_blobs: u8, blob_len: usize) -> Stored {
    let (keys, id, bytes, blobs) = sealed_pack(data_blobs, blob_len);
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential)
        .await
        .session_id
        .to_hex();
    let response = put_pack(
        app,
        &agent.credential,
        &session,
        &id.to_hex(),
        bytes.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    Stored {
        agent,
        keys,
        id,
        bytes,
        blobs,
    }
}

async fn locate(app: &TestApp, credential: &str, ids: Vec<BlobId>) -> reqwest::Response {
    authed(app, Method::POST, "/blobs/locate", credential)
        .json(&LocateBlobsRequest { ids })
        .send()
        .await
        .unwrap()
}

async fn get_tree(app: &TestApp, credential: &str, id: &str) -> reqwest::Response {
    authed(app, Method::GET, &format!("/trees/{id}"), credential)
        .send()
        .await
        .unwrap()
}

async fn read_pack(
    app: &TestApp,
    credential: &str,
    pack: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut request = authed(app, Method::GET, &format!("/packs/{pack}"), credential);
    if let Some(range) = range {
        request = request.header(RANGE, range);
    }
    request.send().await.unwrap()
}

fn unknown_blob() -> BlobId {
    format!("{}{}", random_hex(), random_hex()).parse().unwrap()
}

fn unknown_pack() -> PackId {
    format!("{}{}", random_hex(), random_hex()).parse().unwrap()
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// An error body with `id` replaced, to compare answers about different ids.
fn without_id(mut error: ApiError, id: &str) -> ApiError {
    error.message = error.message.replace(id, "<id>");
    error
}

async fn audit_actions(app: &TestApp, agent: &Enrolled) -> Vec<(String, String)> {
    audit::list_for_tenant(&app.database, agent.tenant, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.action, entry.object))
        .collect()
}

async fn a_restore_reads_the_header_trees_and_chunks_and_opens_them_with_the_tenant_keys(
    app: &TestApp,
) {
    // Arrange
    let pack = stored(app, 2, 1000).await;
    let credential = &pack.agent.credential;
    let tree = pack.tree();

    // Act
    let head = read_pack(app, credential, &pack.id.to_hex(), Some("bytes=0-87")).await;
    let fetched = get_tree(app, credential, &tree.id.to_hex()).await;
    let located = locate(app, credential, vec![pack.data().id]).await;

    // Assert
    assert_eq!(head.status(), StatusCode::PARTIAL_CONTENT);
    let head = head.bytes().await.unwrap();
    assert_eq!(head.len(), PACK_HEADER_LEN);
    let pack_header = PackHeader::decode(&head).unwrap();
    let data_key = open_data_key(&pack_header.sealed_key, &pack.keys.recovery_secret).unwrap();

    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(header(&fetched, CONTENT_TYPE), "application/octet-stream");
    let sealed_tree = fetched.bytes().await.unwrap();
    assert_eq!(sealed_tree.as_ref(), tree.sealed.as_slice());
    let opened = open_blob(&data_key, &tree.id, BlobKind::Tree, &sealed_tree, MAX_PLAIN).unwrap();
    assert_eq!(opened, tree.plaintext);

    let location = located.json::<LocateBlobsResponse>().await.unwrap().found[0];
    let start = u64::from(location.offset);
    let last = start + u64::from(location.length) - 1;
    let chunk = read_pack(
        app,
        credential,
        &location.pack_id.to_hex(),
        Some(&format!("bytes={start}-{last}")),
    )
    .await
    .bytes()
    .await
    .unwrap();
    let opened = open_blob(&data_key, &location.id, BlobKind::Data, &chunk, MAX_PLAIN).unwrap();
    assert_eq!(opened, pack.data().plaintext);
}

async fn locate_places_known_blobs_in_request_order_and_lists_the_rest_as_unknown(app: &TestApp) {
    // Arrange
    let pack = stored(app, 2, 1000).await;
    let stranger = unknown_blob();
    let asked = vec![
        pack.tree().id,
        stranger,
        pack.blobs[1].id,
        pack.blobs[0].id,
        pack.tree().id,
    ];

    // Act
    let response = locate(app, &pack.agent.credential, asked).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let body: LocateBlobsResponse = response.json().await.unwrap();
    assert_eq!(body.unknown, vec![stranger]);
    let expected = [pack.tree(), &pack.blobs[1], &pack.blobs[0]];
    assert_eq!(body.found.len(), expected.len());
    for (location, blob) in body.found.iter().zip(expected) {
        assert_eq!(location.id, blob.id);
        assert_eq!(location.pack_id, pack.id);
        assert_eq!(location.kind, blob.kind);
        let start = location.offset as usize;
        let end = start + location.length as usize;
        assert_eq!(&pack.bytes[start..end], blob.sealed.as_slice());
    }
    assert!(
        audit_actions(app, &pack.agent)
            .await
            .contains(&("blob.access_denied".to_owned(), stranger.to_hex()))
    );
}

async fn locate_with_too_many_ids_is_a_400_naming_the_limit(app: &TestApp) {
    let agent = enrolled(app).await;
    let ids = vec![unknown_blob(); MAX_IDS_PER_QUERY + 1];

    let response = locate(app, &agent.credential, ids).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::INVALID_REQUEST);
    assert!(
        error.message.contains(&MAX_IDS_PER_QUERY.to_string()),
        "{}",
        error.message
    );
}

async fn a_data_blob_or_an_unknown_id_is_not_a_tree_and_each_404_says_which(app: &TestApp) {
    let pack = stored(app, 1, 100).await;
    let data = pack.data().id.to_hex();
    let stranger = unknown_blob().to_hex();

    let as_tree = get_tree(app, &pack.agent.credential, &data).await;
    let unknown = get_tree(app, &pack.agent.credential, &stranger).await;

    assert_eq!(as_tree.status(), StatusCode::NOT_FOUND);
    let error = error_of(as_tree).await;
    assert_eq!(error.code, codes::NOT_FOUND);
    assert!(error.message.contains("not a tree"), "{}", error.message);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let error = error_of(unknown).await;
    assert!(
        error.message.contains("does not exist"),
        "{}",
        error.message
    );
    let log = audit_actions(app, &pack.agent).await;
    assert!(log.contains(&("tree.access_denied".to_owned(), data)));
    assert!(log.contains(&("tree.access_denied".to_owned(), stranger)));
}

async fn ranged_reads_return_exactly_the_slice_asked_for(app: &TestApp) {
    let pack = stored(app, 2, 1000).await;
    let size = pack.bytes.len();
    let cases = [
        ("bytes=100-199", 100..200),
        ("bytes=0-0", 0..1),
        (&*format!("bytes={}-", size - 30), size - 30..size),
        ("bytes=-25", size - 25..size),
        (&*format!("bytes=-{}", size + 500), 0..size),
        (&*format!("bytes=50-{}", size * 2), 50..size),
    ];
    for (range, expected) in cases {
        let response = read_pack(app, &pack.agent.credential, &pack.id.to_hex(), Some(range)).await;

        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, CONTENT_RANGE),
            format!("bytes {}-{}/{size}", expected.start, expected.end - 1),
            "{range}"
        );
        assert_eq!(header(&response, ACCEPT_RANGES), "bytes");
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            &pack.bytes[expected],
            "{range}"
        );
    }

    let whole = read_pack(app, &pack.agent.credential, &pack.id.to_hex(), None).await;

    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(header(&whole, CONTENT_RANGE), "");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), pack.bytes.as_slice());
}

async fn head_tells_the_size_and_the_range_without_a_body(app: &TestApp) {
    let pack = stored(app, 1, 100).await;
    let size = pack.bytes.len();
    let path = format!("/packs/{}", pack.id.to_hex());
    let head = |range: Option<&'static str>| {
        let mut request = authed(app, Method::HEAD, &path, &pack.agent.credential);
        if let Some(range) = range {
            request = request.header(RANGE, range);
        }
        request.send()
    };

    let whole = head(None).await.unwrap();
    let part = head(Some("bytes=-10")).await.unwrap();

    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        header(&whole, reqwest::header::CONTENT_LENGTH),
        size.to_string()
    );
    assert!(whole.bytes().await.unwrap().is_empty());
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, CONTENT_RANGE),
        format!("bytes {}-{}/{size}", size - 10, size - 1)
    );
    assert_eq!(header(&part, reqwest::header::CONTENT_LENGTH), "10");
}

async fn a_pack_larger_than_a_store_read_streams_whole_and_across_chunk_edges(app: &TestApp) {
    // 9 blobs of 1 MiB: more than two 4 MiB store reads.
    let pack = stored(app, 9, 1 << 20).await;
    let edge = 4 << 20;

    let whole = read_pack(app, &pack.agent.credential, &pack.id.to_hex(), None).await;
    let across = read_pack(
        app,
        &pack.agent.credential,
        &pack.id.to_hex(),
        Some(&format!("bytes={}-{}", edge - 10, 2 * edge + 10)),
    )
    .await;

    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        header(&whole, reqwest::header::CONTENT_LENGTH),
        pack.bytes.len().to_string()
    );
    assert!(whole.bytes().await.unwrap().as_ref() == pack.bytes.as_slice());
    assert_eq!(across.status(), StatusCode::PARTIAL_CONTENT);
    assert!(across.bytes().await.unwrap().as_ref() == &pack.bytes[edge - 10..=2 * edge + 10]);
}

async fn a_range_past_the_end_is_416_and_a_bad_range_is_400(app: &TestApp) {
    let pack = stored(app, 1, 100).await;
    let size = pack.bytes.len();
    let id = pack.id.to_hex();

    let past = read_pack(
        app,
        &pack.agent.credential,
        &id,
        Some(&format!("bytes={size}-")),
    )
    .await;

    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&past, CONTENT_RANGE), format!("bytes */{size}"));
    let error = error_of(past).await;
    assert_eq!(error.code, codes::RANGE_NOT_SATISFIABLE);
    assert!(error.message.contains(&id), "{}", error.message);
    assert!(
        error.message.contains(&size.to_string()),
        "{}",
        error.message
    );

    for (range, problem) in [
        ("bytes=abc", "malformed"),
        ("bytes=9-3", "malformed"),
        ("lines=1-2", "malformed"),
        ("bytes=0-1,5-6", "only one range"),
    ] {
        let response = read_pack(app, &pack.agent.credential, &id, Some(range)).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{range}");
        let error = error_of(response).await;
        assert_eq!(error.code, codes::INVALID_REQUEST);
        assert!(
            error.message.contains(problem),
            "{range}: {}",
            error.message
        );
    }
}

async fn another_tenants_blobs_trees_and_packs_look_unknown_are_audited_and_untouched(
    app: &TestApp,
) {
    // Arrange
    let owner = stored(app, 2, 1000).await;
    let intruder = enrolled(app).await;
    let tree = owner.tree().id.to_hex();
    let pack = owner.id.to_hex();
    let unknown_tree = unknown_blob().to_hex();
    let unknown = unknown_pack().to_hex();
    let owner_log = audit_actions(app, &owner.agent).await;
    let pack_before = packs::get(&app.database, owner.agent.tenant, owner.id)
        .await
        .unwrap();

    // Act
    let located = locate(
        app,
        &intruder.credential,
        vec![owner.data().id, owner.tree().id],
    )
    .await;
    let theirs_tree = get_tree(app, &intruder.credential, &tree).await;
    let unknown_tree_answer = get_tree(app, &intruder.credential, &unknown_tree).await;
    let theirs_range = read_pack(app, &intruder.credential, &pack, Some("bytes=0-87")).await;
    let theirs_whole = read_pack(app, &intruder.credential, &pack, None).await;
    let unknown_whole = read_pack(app, &intruder.credential, &unknown, None).await;

    // Assert
    assert_eq!(located.status(), StatusCode::OK);
    let located: LocateBlobsResponse = located.json().await.unwrap();
    assert!(located.found.is_empty());
    assert_eq!(located.unknown, vec![owner.data().id, owner.tree().id]);

    for (theirs, id) in [
        (theirs_tree, &tree),
        (theirs_range, &pack),
        (theirs_whole, &pack),
    ] {
        assert_eq!(theirs.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(error_of(theirs).await.code, codes::NOT_FOUND);
    }
    let tree_error = error_of(get_tree(app, &intruder.credential, &tree).await).await;
    assert_eq!(
        without_id(tree_error, &tree),
        without_id(error_of(unknown_tree_answer).await, &unknown_tree)
    );
    let pack_error = error_of(read_pack(app, &intruder.credential, &pack, None).await).await;
    assert_eq!(
        without_id(pack_error, &pack),
        without_id(error_of(unknown_whole).await, &unknown)
    );

    let log = audit_actions(app, &intruder).await;
    assert!(log.contains(&("blob.access_denied".to_owned(), owner.data().id.to_hex())));
    assert!(log.contains(&("tree.access_denied".to_owned(), tree.clone())));
    assert!(log.contains(&("pack.access_denied".to_owned(), pack.clone())));
    assert_eq!(audit_actions(app, &owner.agent).await, owner_log);
    assert_eq!(
        packs::get(&app.database, owner.agent.tenant, owner.id)
            .await
            .unwrap(),
        pack_before
    );
    let still = read_pack(app, &owner.agent.credential, &pack, None).await;
    assert_eq!(still.status(), StatusCode::OK);
    assert_eq!(
        still.bytes().await.unwrap().as_ref(),
        owner.bytes.as_slice()
    );
}

async fn malformed_ids_in_restore_paths_are_a_400_naming_the_id(app: &TestApp) {
    let agent = enrolled(app).await;

    for path in ["/trees/zz", "/packs/zz", "/snapshots/zz"] {
        let response = authed(app, Method::GET, path, &agent.credential)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let error = error_of(response).await;
        assert_eq!(error.code, codes::INVALID_REQUEST);
        assert!(
            error.message.contains("\"zz\""),
            "{path}: {}",
            error.message
        );
        assert!(
            error.message.contains("malformed"),
            "{path}: {}",
            error.message
        );
    }
}

/// The file under `dir` whose name is `name`, searched recursively.
fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|file| file == name) {
            return Some(path);
        }
    }
    None
}

async fn an_indexed_pack_whose_object_is_gone_is_a_404_object_missing_not_a_retry(app: &TestApp) {
    let pack = stored(app, 1, 100).await;
    let object = find_file(app.data_dir.path(), &pack.id.to_hex())
        .expect("the local store holds the pack under its id");
    std::fs::remove_file(&object).unwrap();

    for range in [None, Some("bytes=0-10")] {
        let response = read_pack(app, &pack.agent.credential, &pack.id.to_hex(), range).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{range:?}");
        let error = error_of(response).await;
        assert_eq!(error.code, codes::OBJECT_MISSING);
        assert!(!error.retryable);
        assert!(
            error.message.contains(&pack.id.to_hex()),
            "{}",
            error.message
        );
    }
}

on_sqlite_and_postgres!(
    restoring_holds_on_postgres:
    a_restore_reads_the_header_trees_and_chunks_and_opens_them_with_the_tenant_keys,
    locate_places_known_blobs_in_request_order_and_lists_the_rest_as_unknown,
    locate_with_too_many_ids_is_a_400_naming_the_limit,
    a_data_blob_or_an_unknown_id_is_not_a_tree_and_each_404_says_which,
    ranged_reads_return_exactly_the_slice_asked_for,
    head_tells_the_size_and_the_range_without_a_body,
    a_pack_larger_than_a_store_read_streams_whole_and_across_chunk_edges,
    a_range_past_the_end_is_416_and_a_bad_range_is_400,
    another_tenants_blobs_trees_and_packs_look_unknown_are_audited_and_untouched,
    malformed_ids_in_restore_paths_are_a_400_naming_the_id,
);

/// On the local store only: the PostgreSQL runs here use an in-memory store
/// the test cannot reach. The S3 store's missing object is covered end to
/// end by `tests/tests/agent_corruption.rs` on PostgreSQL + S3.
#[tokio::test]
async fn a_missing_pack_object_on_the_local_store_is_object_missing() {
    an_indexed_pack_whose_object_is_gone_is_a_404_object_missing_not_a_retry(
        &crate::helpers::spawn_app().await,
    )
    .await;
}
