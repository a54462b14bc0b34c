//! The operator API over HTTP, on SQLite and PostgreSQL: plans created,
//! read, replaced, run and deleted with an API key; restores started for a
//! chosen agent; jobs and agents listed; roles, tenants and credentials
//! kept apart.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stowage_protocol::api::{ApiError, ClaimJobRequest, ClaimedJob, JobWork};
use stowage_server::domain::Role;

use crate::agent_api::{authed, enrolled};
use crate::helpers::TestApp;
use crate::operator_client::{call, indexed_snapshot, key};

fn plan_body(name: &str, schedule: &str) -> Value {
    json!({
        "name": name,
        "agents": ["db1"],
        "paths": ["/etc", "/srv"],
        "excludes": ["*.tmp"],
        "schedule": schedule,
        "timezone": "Europe/Berlin",
        "retention": { "keep_daily": 7, "keep_weekly": 4 },
        "rpo": "24h",
        "rto": "2h",
        "restore_test_every": "7d",
    })
}

async fn a_plan_is_created_over_the_api_with_every_rule_checked(app: &TestApp) {
    // Arrange
    let agent = enrolled(app).await;
    let operator = key(app, agent.tenant, Role::Operator).await;
    let post = |body: Value| call(app, &operator, Method::POST, "/plans", Some(body));

    // Act
    let created = post(plan_body("nightly", "30 2 * * *")).await;
    let duplicate = post(plan_body("nightly", "30 2 * * *")).await;
    let bad_cron = post(plan_body("other", "every night")).await;
    let unknown_field = post(json!({
        "name": "x", "agents": ["db1"], "schedule": "0 2 * * *", "paths": ["/"], "keep_daily": 3,
    }))
    .await;

    // Assert
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    assert_eq!(
        (
            created.1["name"].as_str(),
            created.1["retention"]["keep_daily"].as_u64()
        ),
        (Some("nightly"), Some(7))
    );
    assert_eq!(duplicate.0, StatusCode::CONFLICT);
    let message = |reply: &(StatusCode, Value)| reply.1["message"].as_str().unwrap().to_owned();
    assert!(message(&duplicate).contains("already a plan named \"nightly\""));
    assert_eq!(bad_cron.0, StatusCode::BAD_REQUEST);
    assert!(message(&bad_cron).contains("\"every night\" is not a cron schedule"));
    assert_eq!(
        unknown_field.0,
        StatusCode::BAD_REQUEST,
        "{}",
        unknown_field.1
    );
    assert!(message(&unknown_field).contains("keep_daily"));
}

async fn a_plan_is_replaced_run_and_deleted_over_the_api(app: &TestApp) {
    // Arrange
    let agent = enrolled(app).await;
    let operator = key(app, agent.tenant, Role::Operator).await;
    let send = |method: Method, path: String, body: Option<Value>| {
        call(app, &operator, method, path, body)
    };
    send(
        Method::POST,
        "/plans".into(),
        Some(plan_body("nightly", "30 2 * * *")),
    )
    .await;

    // Act
    let replaced = send(
        Method::PUT,
        "/plans/nightly".into(),
        Some(plan_body("hourly", "0 * * * *")),
    )
    .await;
    let read = send(Method::GET, "/plans/hourly".into(), None).await;
    let run = send(Method::POST, "/plans/hourly/run".into(), None).await;
    let listed_jobs = send(Method::GET, "/jobs?limit=10".into(), None).await;
    let job_id = run.1["jobs"][0].as_str().unwrap().to_owned();
    let one_job = send(Method::GET, format!("/jobs/{job_id}"), None).await;
    let deleted = send(Method::DELETE, "/plans/hourly".into(), None).await;
    let gone = send(Method::GET, "/plans/hourly".into(), None).await;

    // Assert
    assert_eq!(replaced.0, StatusCode::OK, "{}", replaced.1);
    assert_eq!(
        (read.1["name"].as_str(), read.1["schedule"].as_str()),
        (Some("hourly"), Some("0 * * * *"))
    );
    assert_eq!(read.1["restore_tests"]["rto"], "untested");
    assert_eq!(run.0, StatusCode::ACCEPTED);
    assert_eq!(listed_jobs.1.as_array().unwrap().len(), 1);
    assert_eq!(
        (one_job.1["state"].as_str(), one_job.1["plan"].as_str()),
        (Some("queued"), Some("hourly"))
    );
    assert_eq!(deleted.0, StatusCode::NO_CONTENT, "{}", deleted.1);
    assert_eq!(gone.0, StatusCode::NOT_FOUND);
    assert!(
        gone.1["message"]
            .as_str()
            .unwrap()
            .contains("no plan named \"hourly\"")
    );
}

async fn a_restore_started_over_the_api_reaches_the_chosen_agent(app: &TestApp) {
    // Arrange: a snapshot of db1 in the index.
    let agent = enrolled(app).await;
    let operator = key(app, agent.tenant, Role::Operator).await;
    let snapshot = indexed_snapshot(app, &agent, None, chrono::Utc::now()).await;

    // Act
    let started = call(
        app,
        &operator,
        Method::POST,
        "/jobs/restore",
        Some(json!({
            "snapshot": snapshot.to_hex(), "agent": "db1", "target": "/srv/restore",
        })),
    )
    .await;
    let relative = call(
        app,
        &operator,
        Method::POST,
        "/jobs/restore",
        Some(json!({
            "snapshot": snapshot.to_hex(), "agent": "db1", "target": "srv",
        })),
    )
    .await;
    let claimed = authed(app, Method::POST, "/jobs/claim", &agent.credential)
        .json(&ClaimJobRequest {
            wait_seconds: 0,
            facts: None,
        })
        .send()
        .await
        .unwrap();
    let agents = call(app, &operator, Method::GET, "/agents", None).await;

    // Assert
    assert_eq!(started.0, StatusCode::ACCEPTED, "{}", started.1);
    assert_eq!(relative.0, StatusCode::BAD_REQUEST);
    let job: ClaimedJob = claimed.json().await.unwrap();
    assert_eq!(job.job_id.to_hex(), started.1["job"].as_str().unwrap());
    assert!(
        matches!(job.work, JobWork::Restore(ref r) if r.target == "/srv/restore" && r.snapshot == snapshot)
    );
    assert_eq!(
        (agents.1[0]["name"].as_str(), agents.1[0]["state"].as_str()),
        (Some("db1"), Some("online"))
    );
}

async fn keys_are_held_to_their_role_and_tenant(app: &TestApp) {
    // Arrange: a viewer of one tenant, an operator of another.
    let ours = enrolled(app).await;
    let theirs = enrolled(app).await;
    let viewer = key(app, ours.tenant, Role::Viewer).await;
    let stranger = key(app, theirs.tenant, Role::Operator).await;
    let owner = key(app, ours.tenant, Role::Owner).await;
    call(
        app,
        &owner,
        Method::POST,
        "/plans",
        Some(plan_body("nightly", "0 2 * * *")),
    )
    .await;

    // Act
    let viewer_reads = call(app, &viewer, Method::GET, "/plans", None).await;
    let viewer_writes = call(app, &viewer, Method::POST, "/plans/nightly/run", None).await;
    let stranger_reads = call(app, &stranger, Method::GET, "/plans/nightly", None).await;
    let agent_tries = call(app, &ours.credential, Method::GET, "/plans", None).await;
    // The key with its last secret digit changed (never to itself).
    let last = if viewer.ends_with('0') { '1' } else { '0' };
    let forged = call(
        app,
        &format!("{}{last}", &viewer[..viewer.len() - 1]),
        Method::GET,
        "/plans",
        None,
    )
    .await;
    let no_key = app
        .client
        .get(format!("{}/api/v1/plans", app.address))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(viewer_reads.0, StatusCode::OK);
    assert_eq!(viewer_reads.1.as_array().unwrap().len(), 1);
    assert_eq!(viewer_writes.0, StatusCode::FORBIDDEN);
    let refusal: ApiError = serde_json::from_value(viewer_writes.1).unwrap();
    assert!(
        refusal.message.contains("viewer role"),
        "{}",
        refusal.message
    );
    assert_eq!(stranger_reads.0, StatusCode::NOT_FOUND);
    assert_eq!(agent_tries.0, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.0, StatusCode::UNAUTHORIZED);
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
}

on_sqlite_and_postgres!(operator_api_on_postgres:
    a_plan_is_created_over_the_api_with_every_rule_checked,
    a_plan_is_replaced_run_and_deleted_over_the_api,
    a_restore_started_over_the_api_reaches_the_chosen_agent,
    keys_are_held_to_their_role_and_tenant,
);
