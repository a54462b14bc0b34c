//! Agents taking jobs, on SQLite and PostgreSQL. At the database layer: a
//! job is claimed once, only its agent may renew or finish it, a job whose
//! agent stops reporting fails after its lease with the reason, and on
//! PostgreSQL twenty claims racing from two instances take twenty jobs once
//! each. Over the API: claim (at once, or waiting for a job queued later),
//! progress and finish, and another agent of the tenant is refused.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use stowage_protocol::ids::{AgentId, PlanId, TenantId};
use stowage_server::db::agents::{self, NewAgent};
use stowage_server::db::job_claims::{self, Ending, LEASE_EXPIRED, Outcome, Progress};
use stowage_server::db::{Database, DbError, jobs, plans, tenants};
use stowage_server::domain::{PlanInput, PlanSpec, TenantName};

use reqwest::StatusCode;
use stowage_protocol::api::{
    ClaimJobRequest, ClaimedJob, JobFinish, JobLease, JobProgress, JobWork,
};

use crate::agent_api::{authed, enrolled, enrolled_in, error_of};
use crate::helpers::TestApp;

const LEASE: Duration = Duration::from_mins(1);

/// A tenant with agents `names` and one plan on all of them.
async fn plan_on(db: &Database, names: &[&str]) -> (TenantId, PlanId, Vec<AgentId>) {
    let tenant_name = format!("claims-{}", crate::helpers::random_hex());
    let tenant = tenants::insert(db, &TenantName::parse(&tenant_name).unwrap())
        .await
        .unwrap()
        .id;
    let mut ids = Vec::new();
    for name in names {
        let hash = format!("hash-{name}-{}", crate::helpers::random_hex());
        let new = NewAgent {
            id: AgentId::random(),
            name,
            hostname: "host",
            credential_hash: &hash,
        };
        ids.push(agents::insert(db, tenant, new).await.unwrap().id);
    }
    let input = PlanInput {
        name: "nightly".to_owned(),
        paths: vec!["/etc".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        ..PlanInput::default()
    };
    let spec = PlanSpec::parse(&input, Utc::now()).unwrap();
    let plan = plans::insert(db, tenant, &spec, &ids).await.unwrap();
    (tenant, plan, ids)
}

async fn a_job_is_claimed_once_and_only_its_agent_renews_and_finishes_it(app: &TestApp) {
    // Arrange: one queued job for each of two agents.
    let db = &app.database;
    let (tenant, plan, agents) = plan_on(db, &["web-1", "web-2"]).await;
    let (web1, web2) = (agents[0], agents[1]);
    jobs::enqueue_run_now(db, tenant, plan).await.unwrap();

    // Act
    let claimed = job_claims::claim_next(db, tenant, web1, LEASE)
        .await
        .unwrap()
        .expect("web-1 has a queued job");
    let again = job_claims::claim_next(db, tenant, web1, LEASE)
        .await
        .unwrap();
    let progress = Progress {
        bytes: 4096,
        files: 3,
        bytes_per_second: 1024,
    };
    let renew_as = |agent| job_claims::renew(db, tenant, agent, claimed.id, LEASE, progress);
    let by_other = renew_as(web2).await;
    let renewed = renew_as(web1).await;
    let ending = Ending {
        outcome: Outcome::Succeeded,
        progress,
        log: "done",
        restore_test: None,
    };
    let finished = job_claims::finish(db, tenant, web1, claimed.id, &ending).await;
    let finished_twice = job_claims::finish(db, tenant, web1, claimed.id, &ending).await;

    // Assert
    assert_eq!(
        (claimed.kind.as_str(), claimed.plan),
        ("backup", Some(plan))
    );
    assert!(claimed.lease_expires_at > Utc::now());
    assert_eq!(again, None, "web-1's only job was claimed already");
    assert!(
        matches!(by_other, Err(DbError::NotFound { .. })),
        "{by_other:?}"
    );
    assert!(renewed.is_ok(), "{renewed:?}");
    assert!(finished.is_ok(), "{finished:?}");
    assert!(matches!(finished_twice, Err(DbError::NotFound { .. })));
    let listed = jobs::list_recent(db, tenant, 10).await.unwrap();
    let job = listed.iter().find(|job| job.id == claimed.id).unwrap();
    assert_eq!(
        (job.state.as_str(), job.bytes, job.files),
        ("succeeded", Some(4096), Some(3))
    );
    let other = listed.iter().find(|job| job.id != claimed.id).unwrap();
    assert_eq!(
        (other.agent.as_str(), other.state.as_str()),
        ("web-2", "queued")
    );
}

async fn a_job_whose_agent_stopped_reporting_fails_after_its_lease(app: &TestApp) {
    // Arrange: a claimed job whose agent then goes silent.
    let db = &app.database;
    let (tenant, plan, agents) = plan_on(db, &["silent"]).await;
    jobs::enqueue_run_now(db, tenant, plan).await.unwrap();
    let claimed = job_claims::claim_next(db, tenant, agents[0], LEASE)
        .await
        .unwrap()
        .unwrap();

    // Act: a tick before the lease ends, then one after it.
    let early = job_claims::expire_leases(db, Utc::now()).await.unwrap();
    let late =
        job_claims::expire_leases(db, claimed.lease_expires_at + chrono::Duration::seconds(1))
            .await
            .unwrap();
    let renewed_too_late = job_claims::renew(
        db,
        tenant,
        agents[0],
        claimed.id,
        LEASE,
        Progress::default(),
    )
    .await;
    jobs::enqueue_run_now(db, tenant, plan).await.unwrap();
    let next = job_claims::claim_next(db, tenant, agents[0], LEASE)
        .await
        .unwrap();

    // Assert: the job failed with the reason, the agent is told to stop,
    // and the next run is claimed normally.
    assert_eq!(early, 0);
    assert!(late >= 1);
    assert!(matches!(renewed_too_late, Err(DbError::NotFound { .. })));
    let listed = jobs::list_recent(db, tenant, 10).await.unwrap();
    let failed = listed.iter().find(|job| job.id == claimed.id).unwrap();
    assert_eq!(failed.state, "failed");
    assert_eq!(failed.error.as_deref(), Some(LEASE_EXPIRED));
    assert!(next.is_some_and(|job| job.id != claimed.id));
}

on_sqlite_and_postgres!(job_claims_on_postgres:
    a_job_is_claimed_once_and_only_its_agent_renews_and_finishes_it,
    a_job_whose_agent_stopped_reporting_fails_after_its_lease,
);

#[tokio::test]
async fn racing_claims_from_two_instances_take_each_job_once_on_postgres() {
    let Some(settings) = crate::helpers::fresh_postgres("racing_claims").await else {
        return;
    };
    // Arrange: 20 queued jobs for one agent; two instances (two pools).
    let first = Database::connect(&settings).await.unwrap();
    first.migrate().await.unwrap();
    let second = Database::connect(&settings).await.unwrap();
    let (tenant, plan, agents) = plan_on(&first, &["busy"]).await;
    for _ in 0..20 {
        jobs::enqueue_run_now(&first, tenant, plan).await.unwrap();
    }

    // Act: 10 claimers per instance, each claiming until nothing is left.
    let mut tasks = Vec::new();
    for n in 0..20 {
        let db = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let agent = agents[0];
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = job_claims::claim_next(&db, tenant, agent, LEASE)
                .await
                .unwrap()
            {
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }

    // Assert
    let distinct: HashSet<_> = claimed.iter().collect();
    assert_eq!((claimed.len(), distinct.len()), (20, 20));
}

/// The plan "nightly" on enrolled agent `agent` of `tenant`, with one queued run.
async fn queued_run(app: &TestApp, tenant: TenantId, agent: AgentId) -> PlanId {
    let input = PlanInput {
        name: format!("nightly-{}", crate::helpers::random_hex()),
        paths: vec!["/etc".to_owned(), "/srv".to_owned()],
        excludes: vec!["*.tmp".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        ..PlanInput::default()
    };
    let spec = PlanSpec::parse(&input, Utc::now()).unwrap();
    let plan = plans::insert(&app.database, tenant, &spec, &[agent])
        .await
        .unwrap();
    jobs::enqueue_run_now(&app.database, tenant, plan)
        .await
        .unwrap();
    plan
}

async fn post(
    app: &TestApp,
    credential: &str,
    path: &str,
    body: &impl serde::Serialize,
) -> reqwest::Response {
    authed(app, reqwest::Method::POST, path, credential)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn an_agent_claims_reports_and_finishes_its_job_over_the_api(app: &TestApp) {
    // Arrange: two agents of one tenant; a queued backup for the first.
    let owner = enrolled(app).await;
    let other = enrolled_in(app, owner.tenant, "db2").await;
    let plan = queued_run(app, owner.tenant, owner.agent).await;

    // Act
    let claim_now = || {
        post(
            app,
            &owner.credential,
            "/jobs/claim",
            &ClaimJobRequest {
                wait_seconds: 0,
                facts: None,
            },
        )
    };
    let claimed = claim_now().await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let job: ClaimedJob = claimed.json().await.unwrap();
    let empty = claim_now().await;
    let progress = JobProgress {
        bytes: 10,
        files: 1,
        bytes_per_second: 5,
    };
    let path = |what: &str| format!("/jobs/{}/{what}", job.job_id);
    let stolen = post(app, &other.credential, &path("progress"), &progress).await;
    let renewed = post(app, &owner.credential, &path("progress"), &progress).await;
    let finish = JobFinish {
        error: None,
        progress,
        log: "backed up".to_owned(),
        restore_test: None,
    };
    let finished = post(app, &owner.credential, &path("finish"), &finish).await;
    let again = post(app, &owner.credential, &path("finish"), &finish).await;

    // Assert
    assert_eq!(job.plan_id, Some(plan));
    let JobWork::Backup(backup) = job.work else {
        panic!("a plan's run-now job is a backup, not {:?}", job.work);
    };
    assert_eq!(backup.paths, ["/etc", "/srv"]);
    assert_eq!(backup.excludes, ["*.tmp"]);
    assert_eq!(empty.status(), StatusCode::NO_CONTENT);
    assert_eq!(stolen.status(), StatusCode::NOT_FOUND);
    assert!(
        error_of(stolen)
            .await
            .message
            .contains("stop working on it")
    );
    assert_eq!(renewed.status(), StatusCode::OK);
    let lease: JobLease = renewed.json().await.unwrap();
    assert!(lease.lease_expires_at > Utc::now());
    assert_eq!(finished.status(), StatusCode::NO_CONTENT);
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let listed = jobs::list_recent(&app.database, owner.tenant, 5)
        .await
        .unwrap();
    assert_eq!(listed[0].state, "succeeded");
}

async fn a_waiting_claim_gets_a_job_queued_while_it_waits(app: &TestApp) {
    // Arrange: an agent waiting for work, and a run queued a moment later.
    let agent = enrolled(app).await;
    let credential = agent.credential.clone();
    let waiting = {
        let client = app.client.clone();
        let url = format!("{}/api/v1/jobs/claim", app.address);
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(credential)
                .json(&ClaimJobRequest {
                    wait_seconds: 20,
                    facts: None,
                })
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act: queued straight into the database, as another instance or the
    // CLI would, not through this instance.
    let queued_at = std::time::Instant::now();
    queued_run(app, agent.tenant, agent.agent).await;
    let response = waiting.await.unwrap();
    let waited = queued_at.elapsed();

    // Assert: the dispatcher woke the claim; without a wake it would have
    // answered 204 after its 20 s wait (shorter than FALLBACK).
    assert_eq!(response.status(), StatusCode::OK);
    let job: ClaimedJob = response.json().await.unwrap();
    assert_eq!(job.work.kind(), "backup");
    assert!(
        waited < stowage_server::dispatcher::FALLBACK / 4,
        "the claim took {waited:?} to get a job queued while it waited"
    );
}

on_sqlite_and_postgres!(job_claims_api_on_postgres:
    an_agent_claims_reports_and_finishes_its_job_over_the_api,
    a_waiting_claim_gets_a_job_queued_while_it_waits,
);

#[tokio::test]
async fn a_claim_may_not_wait_longer_than_a_minute() {
    let app = crate::helpers::spawn_app().await;
    let agent = enrolled(&app).await;

    let response = post(
        &app,
        &agent.credential,
        "/jobs/claim",
        &ClaimJobRequest {
            wait_seconds: 61,
            facts: None,
        },
    )
    .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        error_of(response)
            .await
            .message
            .contains("at most 60 seconds")
    );
}
