//! What the operator API tests share: a fresh API key of a role, a call
//! that returns status and JSON, and a snapshot written straight into the
//! index (the operator API only needs its row, not its data).

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use stowage_protocol::ids::{ApiKeyId, BlobId, PlanId, SnapshotId, TenantId};
use stowage_server::auth::{api_key, token};
use stowage_server::db::api_keys;
use stowage_server::db::snapshots::{self, NewSnapshot};
use stowage_server::domain::Role;

use crate::agent_api::{Enrolled, authed};
use crate::helpers::TestApp;

/// A new API key of `tenant` with `role`.
pub async fn key(app: &TestApp, tenant: TenantId, role: Role) -> String {
    let id = ApiKeyId::random();
    let secret = token::generate();
    let name = format!("key-{}", crate::helpers::random_hex());
    api_keys::insert(&app.database, tenant, id, &name, role, &secret.hash)
        .await
        .unwrap();
    api_key::key(tenant, id, secret.secret.expose_secret())
}

/// `method path` with `credential` and an optional JSON body; the status
/// and the JSON answer (`Null` for an empty body).
pub async fn call(
    app: &TestApp,
    credential: &str,
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = authed(app, method, &path.into(), credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, value)
}

/// A snapshot of `agent` (of `plan`, taken at `time`) in the index.
pub async fn indexed_snapshot(
    app: &TestApp,
    agent: &Enrolled,
    plan: Option<PlanId>,
    time: DateTime<Utc>,
) -> SnapshotId {
    let random = crate::helpers::random_hex();
    let id = SnapshotId::from_bytes(*blake3::hash(random.as_bytes()).as_bytes());
    let new = NewSnapshot {
        id,
        agent_id: agent.agent,
        record: "{}",
        root: BlobId::from_bytes([7; 32]),
        hostname: "host",
        plan_id: plan,
        started_at: time,
        finished_at: time,
    };
    snapshots::insert(&app.database, agent.tenant, new)
        .await
        .unwrap();
    id
}
