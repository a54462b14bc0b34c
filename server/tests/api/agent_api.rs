//! The agent API (`/api/v1`): enrollment, agent authentication, tenant keys,
//! upload sessions and the missing-blobs query, over HTTP against a server
//! on port 0 with a fresh database — SQLite always, PostgreSQL when
//! configured.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use stowage_protocol::api::{
    ApiError, EnrollRequest, EnrollResponse, MAX_IDS_PER_QUERY, MissingBlobsRequest,
    MissingBlobsResponse, OpenUploadSessionRequest, TenantKeyBundle, UploadSession, codes,
};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::{KdfParams, TenantKeys, WrappedTenantKeys};
use stowage_protocol::ids::{AgentId, BlobId, PackId, TenantId};
use stowage_server::db::packs::{self, IndexedBlob};
use stowage_server::db::{Database, agents, audit, enrollment_tokens, tenants, upload_sessions};
use stowage_server::domain::TenantName;

use crate::helpers::{TestApp, random_hex};

/// A tenant with an enrolled agent, as the tests see it.
pub(crate) struct Enrolled {
    pub(crate) tenant: TenantId,
    pub(crate) agent: AgentId,
    pub(crate) credential: String,
}

async fn new_tenant(db: &Database) -> TenantId {
    let name = TenantName::parse(&format!("T{}", &random_hex()[..12])).unwrap();
    tenants::insert(db, &name).await.unwrap().id
}

async fn new_token(db: &Database, tenant: TenantId, ttl: Duration) -> String {
    let created = enrollment_tokens::create(db, tenant, ttl).await.unwrap();
    created.secret.expose_secret().to_owned()
}

async fn post_enroll(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/agents/enroll", app.address))
        .json(&EnrollRequest {
            token: token.to_owned(),
            agent_name: name.to_owned(),
            hostname: "db1.example.com".to_owned(),
        })
        .send()
        .await
        .unwrap()
}

pub(crate) async fn enrolled(app: &TestApp) -> Enrolled {
    let tenant = new_tenant(&app.database).await;
    let token = new_token(&app.database, tenant, Duration::from_hours(1)).await;
    let response = post_enroll(app, &token, "db1").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: EnrollResponse = response.json().await.unwrap();
    Enrolled {
        tenant,
        agent: body.agent_id,
        credential: body.credential,
    }
}

/// Another agent, named `name`, enrolled into an existing tenant.
pub(crate) async fn enrolled_in(app: &TestApp, tenant: TenantId, name: &str) -> Enrolled {
    let token = new_token(&app.database, tenant, Duration::from_hours(1)).await;
    let response = post_enroll(app, &token, name).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: EnrollResponse = response.json().await.unwrap();
    Enrolled {
        tenant,
        agent: body.agent_id,
        credential: body.credential,
    }
}

pub(crate) fn authed(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    credential: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}/api/v1{path}", app.address))
        .bearer_auth(credential)
}

pub(crate) async fn error_of(response: reqwest::Response) -> ApiError {
    response
        .json()
        .await
        .expect("an error response has an ApiError body")
}

fn bundle() -> TenantKeyBundle {
    let fast = KdfParams {
        m_cost_kib: KdfParams::MIN_M_COST_KIB,
        t_cost: 1,
        parallelism: 1,
    };
    let wrapped = WrappedTenantKeys::wrap_random(&TenantKeys::generate(), b"pass", fast).unwrap();
    TenantKeyBundle::new(wrapped, &RepoConfig::default())
}

pub(crate) async fn open_session(app: &TestApp, credential: &str) -> UploadSession {
    let response = authed(app, reqwest::Method::POST, "/uploads", credential)
        .json(&OpenUploadSessionRequest::default())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub(crate) async fn ask_missing(
    app: &TestApp,
    credential: &str,
    session: &str,
    ids: Vec<BlobId>,
) -> reqwest::Response {
    authed(
        app,
        reqwest::Method::POST,
        &format!("/uploads/{session}/missing"),
        credential,
    )
    .json(&MissingBlobsRequest { ids })
    .send()
    .await
    .unwrap()
}

async fn enrollment_gives_a_working_credential_and_a_token_works_once(app: &TestApp) {
    let tenant = new_tenant(&app.database).await;
    let token = new_token(&app.database, tenant, Duration::from_hours(1)).await;

    let first = post_enroll(app, &token, "db1").await;
    let second = post_enroll(app, &token, "db2").await;

    assert_eq!(first.status(), StatusCode::CREATED);
    let body: EnrollResponse = first.json().await.unwrap();
    assert_eq!(body.tenant_id, tenant);
    assert!(!body.tenant_keys_exist);
    let stored = agents::get(&app.database, tenant, body.agent_id)
        .await
        .unwrap();
    assert_eq!(stored.name, "db1");
    let hash = agents::credential_hash(&app.database, tenant, body.agent_id)
        .await
        .unwrap();
    assert!(!body.credential.contains(&hash));
    let log = audit::list_for_tenant(&app.database, tenant, 10)
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "agent.enroll" && e.object == body.agent_id.to_hex())
    );

    assert_eq!(second.status(), StatusCode::CONFLICT);
    let error = error_of(second).await;
    assert_eq!(error.code, codes::INVALID_TOKEN);
    assert!(error.message.contains("already used"), "{}", error.message);
    assert_eq!(agents::list(&app.database, tenant).await.unwrap().len(), 1);

    let keys = authed(app, reqwest::Method::GET, "/tenant/keys", &body.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(keys).await.code, codes::TENANT_KEYS_MISSING);
    let seen = agents::get(&app.database, tenant, body.agent_id)
        .await
        .unwrap();
    assert!(seen.last_seen_at.is_some());
}

async fn expired_and_unknown_tokens_are_refused(app: &TestApp) {
    let tenant = new_tenant(&app.database).await;
    let token = new_token(&app.database, tenant, Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let expired = post_enroll(app, &token, "late").await;
    let unknown = post_enroll(app, &random_hex(), "stranger").await;

    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let error = error_of(expired).await;
    assert_eq!(error.code, codes::INVALID_TOKEN);
    assert!(error.message.contains("expired"), "{}", error.message);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(unknown).await.code, codes::INVALID_TOKEN);
    assert!(
        agents::list(&app.database, tenant)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bad_missing_and_revoked_credentials_get_the_same_401(app: &TestApp) {
    let agent = enrolled(app).await;
    let (prefix, secret) = agent.credential.rsplit_once('.').unwrap();
    let wrong_secret = format!("{prefix}.{}", "0".repeat(secret.len()));
    let other_tenant = format!(
        "{}.{}",
        new_tenant(&app.database).await.to_hex(),
        agent.credential.split_once('.').unwrap().1
    );

    let mut messages = Vec::new();
    for credential in [wrong_secret.as_str(), other_tenant.as_str(), "garbage", ""] {
        let response = authed(app, reqwest::Method::GET, "/tenant/keys", credential)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{credential}");
        messages.push(error_of(response).await);
    }
    let no_header = app
        .client
        .get(format!("{}/api/v1/tenant/keys", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(no_header.status(), StatusCode::UNAUTHORIZED);
    messages.push(error_of(no_header).await);
    let agent_id = agent.credential.split('.').nth(1).unwrap().parse().unwrap();
    agents::revoke(&app.database, agent.tenant, agent_id)
        .await
        .unwrap();
    let revoked = authed(app, reqwest::Method::GET, "/tenant/keys", &agent.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    messages.push(error_of(revoked).await);

    assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");
    assert_eq!(messages[0].code, codes::UNAUTHORIZED);
}

async fn tenant_keys_are_stored_once_and_returned(app: &TestApp) {
    let agent = enrolled(app).await;
    let bundle = bundle();
    let put = |body: serde_json::Value| {
        authed(app, reqwest::Method::PUT, "/tenant/keys", &agent.credential)
            .json(&body)
            .send()
    };
    let json = serde_json::to_value(&bundle).unwrap();

    let first = put(json.clone()).await.unwrap();
    let retry = put(json.clone()).await.unwrap();
    let other = put(serde_json::to_value(self::bundle()).unwrap())
        .await
        .unwrap();
    let fetched = authed(app, reqwest::Method::GET, "/tenant/keys", &agent.credential)
        .send()
        .await
        .unwrap();

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let error = error_of(other).await;
    assert_eq!(error.code, codes::TENANT_KEYS_EXIST);
    assert!(
        error.message.contains("tenant keys already exist"),
        "{}",
        error.message
    );
    assert_eq!(fetched.status(), StatusCode::OK);
    let back: TenantKeyBundle = fetched.json().await.unwrap();
    assert_eq!(back.wrapped_keys.as_bytes(), bundle.wrapped_keys.as_bytes());
    assert_eq!(back.repo_config, bundle.repo_config);
    let log = audit::list_for_tenant(&app.database, agent.tenant, 20)
        .await
        .unwrap();
    assert!(log.iter().any(|e| e.action == "tenant_keys.create"));
    assert!(
        log.iter()
            .any(|e| e.action == "tenant_keys.replace_refused")
    );

    let token = new_token(&app.database, agent.tenant, Duration::from_hours(1)).await;
    let second: EnrollResponse = post_enroll(app, &token, "db2").await.json().await.unwrap();
    assert!(second.tenant_keys_exist);
}

async fn an_invalid_key_bundle_is_refused_naming_the_problem(app: &TestApp) {
    let agent = enrolled(app).await;
    let good = serde_json::to_value(bundle()).unwrap();
    let mut bad_keys = good.clone();
    bad_keys["wrapped_keys"] = serde_json::Value::String("00".repeat(170));
    let mut bad_config = good.clone();
    bad_config["repo_config"] = serde_json::Value::String(r#"{"format":"other"}"#.to_owned());

    for (body, needle) in [(bad_keys, "wrapped"), (bad_config, "repository config")] {
        let response = authed(app, reqwest::Method::PUT, "/tenant/keys", &agent.credential)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error = error_of(response).await;
        assert_eq!(error.code, codes::INVALID_REQUEST);
        assert!(
            error.message.to_lowercase().contains(needle),
            "{}",
            error.message
        );
    }
    let fetched = authed(app, reqwest::Method::GET, "/tenant/keys", &agent.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), StatusCode::NOT_FOUND);
}

async fn the_missing_query_returns_exactly_the_absent_ids_and_leases_the_rest(app: &TestApp) {
    let agent = enrolled(app).await;
    let present: Vec<BlobId> = (0..3).map(|_| BlobId::from_bytes(random_bytes())).collect();
    let absent: Vec<BlobId> = (0..2).map(|_| BlobId::from_bytes(random_bytes())).collect();
    let blobs: Vec<IndexedBlob> = present
        .iter()
        .zip(0u32..)
        .map(|(id, i)| IndexedBlob {
            id: *id,
            kind: BlobKind::Data,
            offset: 100 * i,
            length: 100,
            refs: Vec::new(),
        })
        .collect();
    packs::index(
        &app.database,
        agent.tenant,
        PackId::from_bytes(random_bytes()),
        400,
        &blobs,
    )
    .await
    .unwrap();
    let session = open_session(app, &agent.credential).await;
    let asked = vec![absent[0], present[0], present[1], absent[1], present[2]];

    let response = ask_missing(app, &agent.credential, &session.session_id.to_hex(), asked).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: MissingBlobsResponse = response.json().await.unwrap();
    assert_eq!(body.missing, absent);
    let leased = upload_sessions::leased_count(&app.database, agent.tenant, session.session_id)
        .await
        .unwrap();
    assert_eq!(leased, 3);

    upload_sessions::mark_committed(&app.database, agent.tenant, session.session_id)
        .await
        .unwrap();
    let late = ask_missing(
        app,
        &agent.credential,
        &session.session_id.to_hex(),
        present.clone(),
    )
    .await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    let error = error_of(late).await;
    assert_eq!(error.code, codes::SESSION_EXPIRED);
    assert!(error.message.contains("has expired"), "{}", error.message);
}

async fn too_many_ids_are_refused_naming_the_limit(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential).await;
    let ids = vec![BlobId::from_bytes([7; 32]); MAX_IDS_PER_QUERY + 1];

    let response = ask_missing(app, &agent.credential, &session.session_id.to_hex(), ids).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::INVALID_REQUEST);
    assert!(
        error.message.contains(&MAX_IDS_PER_QUERY.to_string()),
        "{}",
        error.message
    );
}

async fn an_oversized_body_gets_413_with_an_error_body(app: &TestApp) {
    let agent = enrolled(app).await;
    let session = open_session(app, &agent.credential).await;
    let ids = vec![BlobId::from_bytes([7; 32]); MAX_IDS_PER_QUERY * 2];

    let response = ask_missing(app, &agent.credential, &session.session_id.to_hex(), ids).await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error = error_of(response).await;
    assert_eq!(error.code, codes::INVALID_REQUEST);
    assert!(error.message.contains("limit"), "{}", error.message);
}

async fn another_tenants_session_is_not_found_audited_and_untouched(app: &TestApp) {
    let owner = enrolled(app).await;
    let intruder = enrolled(app).await;
    let present = BlobId::from_bytes(random_bytes());
    let blob = IndexedBlob {
        id: present,
        kind: BlobKind::Data,
        offset: 0,
        length: 10,
        refs: Vec::new(),
    };
    packs::index(
        &app.database,
        intruder.tenant,
        PackId::from_bytes(random_bytes()),
        10,
        std::slice::from_ref(&blob),
    )
    .await
    .unwrap();
    packs::index(
        &app.database,
        owner.tenant,
        PackId::from_bytes(random_bytes()),
        10,
        &[blob],
    )
    .await
    .unwrap();
    let session = open_session(app, &owner.credential).await;
    let before = upload_sessions::get(&app.database, owner.tenant, session.session_id)
        .await
        .unwrap();

    let response = ask_missing(
        app,
        &intruder.credential,
        &session.session_id.to_hex(),
        vec![present],
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(response).await.code, codes::NOT_FOUND);
    let log = audit::list_for_tenant(&app.database, intruder.tenant, 20)
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "upload_session.access_denied"
                && e.object == session.session_id.to_hex())
    );
    assert_eq!(
        upload_sessions::leased_count(&app.database, owner.tenant, session.session_id)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        upload_sessions::leased_count(&app.database, intruder.tenant, session.session_id)
            .await
            .unwrap(),
        0
    );
    let after = upload_sessions::get(&app.database, owner.tenant, session.session_id)
        .await
        .unwrap();
    assert_eq!(after, before);
}

fn random_bytes() -> [u8; 32] {
    let hex = format!("{}{}", random_hex(), random_hex());
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    bytes
}

on_sqlite_and_postgres!(
    the_agent_api_holds_on_postgres:
    enrollment_gives_a_working_credential_and_a_token_works_once,
    expired_and_unknown_tokens_are_refused,
    bad_missing_and_revoked_credentials_get_the_same_401,
    tenant_keys_are_stored_once_and_returned,
    an_invalid_key_bundle_is_refused_naming_the_problem,
    the_missing_query_returns_exactly_the_absent_ids_and_leases_the_rest,
    too_many_ids_are_refused_naming_the_limit,
    an_oversized_body_gets_413_with_an_error_body,
    another_tenants_session_is_not_found_audited_and_untouched,
);
