//! Jobs beyond the scheduled backup, on SQLite and PostgreSQL: restore
//! tests on a plan's cadence with their results kept per plan, restores
//! and verifications started for a chosen agent, live progress and agent
//! presence, and changing or deleting a plan with jobs behind it.

use chrono::{Duration as TimeDelta, Utc};
use reqwest::StatusCode;
use stowage_protocol::api::{
    AgentFacts, ClaimJobRequest, ClaimedJob, FilesystemSpace, JobFinish, JobProgress, JobWork,
    RestoreTestReport,
};
use stowage_protocol::ids::{PlanId, TenantId};
use stowage_server::db::agent_presence::{self, State};
use stowage_server::db::{jobs, plans, restore_tests};
use stowage_server::domain::PlanInput;
use stowage_server::operations::jobs::RestoreRequest;
use stowage_server::operations::{self, OpError};
use stowage_server::scheduler;

use crate::agent_api::{Enrolled, authed, enrolled, enrolled_in};
use crate::helpers::TestApp;
use crate::operator_client::indexed_snapshot;

const ACTOR: &str = "test";

/// A plan named `name` on the agents named `agents`, checked like the CLI's.
async fn plan(app: &TestApp, tenant: TenantId, name: &str, agents: &[&str]) -> PlanId {
    plan_rehearsed(app, tenant, name, agents, Some("7d")).await
}

/// As [`plan`], rehearsed every `cadence` (never on its own without one).
async fn plan_rehearsed(
    app: &TestApp,
    tenant: TenantId,
    name: &str,
    agents: &[&str],
    cadence: Option<&str>,
) -> PlanId {
    let input = PlanInput {
        name: name.to_owned(),
        paths: vec!["/etc".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        rto: Some("1h".to_owned()),
        restore_test_every: cadence.map(str::to_owned),
        restore_test_max: Some("1M".to_owned()),
        ..PlanInput::default()
    };
    let names: Vec<String> = agents.iter().map(|a| (*a).to_owned()).collect();
    operations::plans::create(&app.database, tenant, ACTOR, &input, &names)
        .await
        .unwrap()
        .id
}

async fn claim(app: &TestApp, agent: &Enrolled, facts: Option<AgentFacts>) -> Option<ClaimedJob> {
    let response = authed(app, reqwest::Method::POST, "/jobs/claim", &agent.credential)
        .json(&ClaimJobRequest {
            wait_seconds: 0,
            facts,
        })
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::NO_CONTENT => None,
        StatusCode::OK => Some(response.json().await.unwrap()),
        other => panic!("claim answered {other}: {}", response.text().await.unwrap()),
    }
}

async fn report(
    app: &TestApp,
    agent: &Enrolled,
    job: &ClaimedJob,
    what: &str,
    body: &impl serde::Serialize,
) -> StatusCode {
    let path = format!("/jobs/{}/{what}", job.job_id);
    authed(app, reqwest::Method::POST, &path, &agent.credential)
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn a_plan_is_rehearsed_on_its_cadence_and_the_result_kept_against_its_rto(app: &TestApp) {
    // Arrange: a plan rehearsed weekly, RTO 1h, sample cap 1 MiB.
    let agent = enrolled(app).await;
    let plan_id = plan(app, agent.tenant, "weekly-drill", &["db1"]).await;
    let db = &app.database;
    let now = Utc::now() + TimeDelta::seconds(1);

    // Act
    let before_any_snapshot = scheduler::enqueue_due(db, now).await.unwrap().rehearsals;
    let snapshot = indexed_snapshot(app, &agent, Some(plan_id), Utc::now()).await;
    let first_tick = scheduler::enqueue_due(db, now).await.unwrap().rehearsals;
    let second_tick = scheduler::enqueue_due(db, now).await.unwrap().rehearsals;
    let job = claim(app, &agent, None)
        .await
        .expect("a restore test is queued");
    let measured = RestoreTestReport {
        snapshot,
        files: 12,
        bytes: 900_000,
        restore_ms: 1_500,
        check_ms: 400,
        sampled: true,
    };
    let finish = JobFinish {
        error: None,
        progress: JobProgress {
            bytes: 900_000,
            files: 12,
            bytes_per_second: 600_000,
        },
        log: "restored and checked 12 files".to_owned(),
        restore_test: Some(measured),
    };
    let finished = report(app, &agent, &job, "finish", &finish).await;
    let next_week = scheduler::enqueue_due(db, now + TimeDelta::days(7))
        .await
        .unwrap()
        .rehearsals;

    // Assert
    // The app's own scheduler may have queued the slot between the snapshot
    // and this test's tick; either way the slot has exactly one job.
    assert_eq!(before_any_snapshot, 0);
    assert!(
        first_tick + second_tick <= 1,
        "{first_tick} + {second_tick}"
    );
    let JobWork::RestoreTest(work) = &job.work else {
        panic!("expected a restore test, got {:?}", job.work);
    };
    assert_eq!((work.snapshot, work.max_bytes), (snapshot, Some(1 << 20)));
    assert_eq!(job.plan_id, Some(plan_id));
    assert_eq!(finished, StatusCode::NO_CONTENT);
    let kept = restore_tests::for_plan(db, agent.tenant, plan_id)
        .await
        .unwrap();
    let good = kept.last_good.expect("the rehearsal succeeded");
    assert_eq!(
        (good.snapshot, good.restore_ms, good.bytes, good.sampled),
        (snapshot, 1_500, 900_000, true)
    );
    assert_eq!(good.bytes_per_second(), 600_000);
    assert_eq!(kept.last, Some(good));
    assert_eq!(
        next_week, 1,
        "the next cadence slot brings the next rehearsal"
    );
}

async fn a_failed_rehearsal_is_kept_but_is_not_the_last_good_one(app: &TestApp) {
    // Arrange
    let agent = enrolled(app).await;
    // No cadence: the app's own scheduler must not queue a rehearsal too.
    let plan_id = plan_rehearsed(app, agent.tenant, "drill", &["db1"], None).await;
    let snapshot = indexed_snapshot(app, &agent, Some(plan_id), Utc::now()).await;

    // Act
    let queued = operations::plans::restore_test_now(&app.database, agent.tenant, ACTOR, "drill")
        .await
        .unwrap();
    let job = claim(app, &agent, None).await.unwrap();
    let finish = JobFinish {
        error: Some("etc/passwd differs from the snapshot at byte 4096".to_owned()),
        progress: JobProgress::default(),
        log: String::new(),
        restore_test: Some(RestoreTestReport {
            snapshot,
            files: 1,
            bytes: 8192,
            restore_ms: 20,
            check_ms: 5,
            sampled: false,
        }),
    };
    report(app, &agent, &job, "finish", &finish).await;

    // Assert
    assert_eq!(queued, [job.job_id]);
    let kept = restore_tests::for_plan(&app.database, agent.tenant, plan_id)
        .await
        .unwrap();
    let last = kept.last.expect("the failed rehearsal is recorded");
    assert!(!last.succeeded);
    assert!(last.error.unwrap().contains("etc/passwd"));
    assert_eq!(kept.last_good, None);
}

async fn a_restore_goes_to_the_chosen_agent_with_another_agents_snapshot(app: &TestApp) {
    // Arrange: the snapshot is db1's; the restore runs on db2.
    let lost = enrolled(app).await;
    let replacement = enrolled_in(app, lost.tenant, "db2").await;
    let snapshot = indexed_snapshot(app, &lost, None, Utc::now()).await;
    let db = &app.database;
    let request = |target: &str, snapshot: String| RestoreRequest {
        snapshot,
        agent: "db2".to_owned(),
        target: target.to_owned(),
        paths: vec!["/etc/hosts".to_owned()],
    };

    // Act
    let relative = operations::jobs::restore(
        db,
        lost.tenant,
        ACTOR,
        &request("restore", snapshot.to_hex()),
    )
    .await;
    let malformed =
        operations::jobs::restore(db, lost.tenant, ACTOR, &request("/srv", "abc".to_owned())).await;
    let unknown =
        operations::jobs::restore(db, lost.tenant, ACTOR, &request("/srv", "0".repeat(64))).await;
    let queued = operations::jobs::restore(
        db,
        lost.tenant,
        ACTOR,
        &request("/srv/restored", snapshot.to_hex()),
    )
    .await
    .unwrap();
    let verify = operations::jobs::verify(db, lost.tenant, ACTOR, &snapshot.to_hex(), "db1", true)
        .await
        .unwrap();
    let at_replacement = claim(app, &replacement, None).await;
    let at_lost = claim(app, &lost, None).await;

    // Assert
    assert!(
        matches!(relative, Err(OpError::Invalid(ref m)) if m.contains("\"restore\" is not an absolute")),
        "{relative:?}"
    );
    assert!(
        matches!(malformed, Err(OpError::Invalid(ref m)) if m.contains("\"abc\" is not a snapshot id")),
        "{malformed:?}"
    );
    assert!(
        matches!(unknown, Err(OpError::NotFound(ref m)) if m.contains("no snapshot 0000")),
        "{unknown:?}"
    );
    let job = at_replacement.expect("db2 has the restore");
    assert_eq!(job.job_id, queued);
    let JobWork::Restore(work) = &job.work else {
        panic!("expected a restore, got {:?}", job.work);
    };
    assert_eq!(
        (work.snapshot, work.target.as_str(), work.paths.as_slice()),
        (
            snapshot,
            "/srv/restored",
            ["/etc/hosts".to_owned()].as_slice()
        )
    );
    let job = at_lost.expect("db1 has the verification");
    assert_eq!(job.job_id, verify);
    assert!(matches!(job.work, JobWork::Verify(ref v) if v.read_data && v.snapshot == snapshot));
}

async fn progress_rates_and_agent_facts_are_recorded(app: &TestApp) {
    // Arrange
    let agent = enrolled(app).await;
    plan(app, agent.tenant, "nightly", &["db1"]).await;
    operations::plans::run_now(&app.database, agent.tenant, ACTOR, "nightly")
        .await
        .unwrap();
    let facts = AgentFacts {
        version: "9.8.7".to_owned(),
        os: "linux x86_64 (Debian GNU/Linux 12)".to_owned(),
        hostname: "db1.example".to_owned(),
        filesystems: vec![FilesystemSpace {
            path: "/".to_owned(),
            free_bytes: 5 << 30,
            total_bytes: 20 << 30,
        }],
    };

    // Act
    let job = claim(app, &agent, Some(facts.clone())).await.unwrap();
    let progress = JobProgress {
        bytes: 3 << 20,
        files: 40,
        bytes_per_second: 1 << 20,
    };
    let renewed = report(app, &agent, &job, "progress", &progress).await;

    // Assert
    assert_eq!(renewed, StatusCode::OK);
    let listed = jobs::list_recent(&app.database, agent.tenant, 5)
        .await
        .unwrap();
    assert_eq!(
        (
            listed[0].state.as_str(),
            listed[0].bytes,
            listed[0].bytes_per_second
        ),
        ("running", Some(3 << 20), Some(1 << 20))
    );
    assert!(listed[0].progress_at.is_some());
    let presence = agent_presence::list(&app.database, agent.tenant)
        .await
        .unwrap();
    let seen = &presence[0];
    assert_eq!(
        (
            seen.version.as_deref(),
            seen.hostname.as_str(),
            seen.filesystems.as_slice()
        ),
        (Some("9.8.7"), "db1.example", facts.filesystems.as_slice())
    );
    let silence = std::time::Duration::from_mins(3);
    assert_eq!(seen.state(Utc::now(), silence), State::Online);
    assert_eq!(
        seen.state(Utc::now() + TimeDelta::minutes(4), silence),
        State::Offline
    );
}

async fn a_plan_is_changed_and_deleted_without_losing_its_history(app: &TestApp) {
    // Arrange: one finished run and one queued run of "nightly".
    let agent = enrolled(app).await;
    enrolled_in(app, agent.tenant, "db2").await;
    plan(app, agent.tenant, "nightly", &["db1"]).await;
    let db = &app.database;
    operations::plans::run_now(db, agent.tenant, ACTOR, "nightly")
        .await
        .unwrap();
    let first = claim(app, &agent, None).await.unwrap();
    let changed = PlanInput {
        name: "hourly".to_owned(),
        paths: vec!["/srv".to_owned()],
        schedule: "0 * * * *".to_owned(),
        ..PlanInput::default()
    };
    let both = ["db1".to_owned(), "db2".to_owned()];

    // Act
    let while_running = operations::plans::delete(db, agent.tenant, ACTOR, "nightly").await;
    let updated = operations::plans::update(db, agent.tenant, ACTOR, "nightly", &changed, &both)
        .await
        .unwrap();
    let finish = JobFinish {
        error: None,
        progress: JobProgress::default(),
        log: String::new(),
        restore_test: None,
    };
    report(app, &agent, &first, "finish", &finish).await;
    operations::plans::run_now(db, agent.tenant, ACTOR, "hourly")
        .await
        .unwrap();
    let deleted = operations::plans::delete(db, agent.tenant, ACTOR, "hourly").await;
    let again = operations::plans::delete(db, agent.tenant, ACTOR, "hourly").await;

    // Assert
    assert!(
        matches!(while_running, Err(OpError::Conflict(ref m)) if m.contains("1 running job")),
        "{while_running:?}"
    );
    assert_eq!(
        (
            updated.name.as_str(),
            updated.schedule.as_str(),
            updated.agents.as_slice()
        ),
        ("hourly", "0 * * * *", both.as_slice())
    );
    assert!(deleted.is_ok(), "{deleted:?}");
    assert!(
        matches!(again, Err(OpError::NotFound(ref m)) if m.contains("no plan named \"hourly\""))
    );
    assert!(plans::list(db, agent.tenant).await.unwrap().is_empty());
    let history = jobs::list_recent(db, agent.tenant, 10).await.unwrap();
    assert_eq!(
        history.len(),
        1,
        "queued runs are cancelled, finished ones kept"
    );
    assert_eq!(
        (history[0].id, history[0].plan.as_deref()),
        (first.job_id, None)
    );
}

on_sqlite_and_postgres!(job_kinds_on_postgres:
    a_plan_is_rehearsed_on_its_cadence_and_the_result_kept_against_its_rto,
    a_failed_rehearsal_is_kept_but_is_not_the_last_good_one,
    a_restore_goes_to_the_chosen_agent_with_another_agents_snapshot,
    progress_rates_and_agent_facts_are_recorded,
    a_plan_is_changed_and_deleted_without_losing_its_history,
);
