//! The scheduler against real databases, with the clock in the test's hands:
//! each due slot becomes exactly one job per agent, a missed stretch one
//! catch-up job, and two server instances ticking at once on one PostgreSQL
//! still enqueue every slot exactly once. A fast schedule clock moves slots,
//! never leases.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use stowage_protocol::ids::TenantId;
use stowage_server::configuration::DatabaseSettings;
use stowage_server::db::agents::{self, NewAgent};
use stowage_server::db::job_claims;
use stowage_server::db::{Database, jobs, plans, tenants};
use stowage_server::domain::{PlanInput, PlanSpec, TenantName};
use stowage_server::scheduler::{ScheduleClock, TickReport, enqueue_due, tick};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A tenant with `agents` agents and one minutely plan on all of them.
async fn minutely_plan(db: &Database, agents: usize) -> TenantId {
    let name = format!("sched-{}", crate::helpers::random_hex());
    let tenant = tenants::insert(db, &TenantName::parse(&name).unwrap())
        .await
        .unwrap()
        .id;
    let mut ids = Vec::with_capacity(agents);
    for n in 0..agents {
        let agent_name = format!("agent-{n}");
        let hash = format!("hash-{n}-{}", crate::helpers::random_hex());
        let agent = agents::insert(
            db,
            tenant,
            NewAgent {
                id: stowage_protocol::ids::AgentId::random(),
                name: &agent_name,
                hostname: "host",
                credential_hash: &hash,
            },
        )
        .await
        .unwrap();
        ids.push(agent.id);
    }
    let input = PlanInput {
        name: "minutely".to_owned(),
        paths: vec!["/srv".to_owned()],
        schedule: "* * * * *".to_owned(),
        ..PlanInput::default()
    };
    let spec = PlanSpec::parse(&input, Utc::now()).unwrap();
    plans::insert(db, tenant, &spec, &ids).await.unwrap();
    tenant
}

async fn slots_per_agent(db: &Database, tenant: TenantId) -> Vec<(String, DateTime<Utc>)> {
    let mut slots: Vec<_> = jobs::list_recent(db, tenant, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|job| (job.agent, job.slot_at.expect("a scheduled job has a slot")))
        .collect();
    slots.sort();
    slots
}

async fn due_slots_become_one_job_each_and_downtime_one_catch_up(db: &Database) {
    // Arrange: two agents; the plan was created now, years before these ticks.
    let tenant = minutely_plan(db, 2).await;

    // Act
    let first = enqueue_due(db, at("2030-01-01T00:00:30Z")).await.unwrap();
    let same_minute = enqueue_due(db, at("2030-01-01T00:00:50Z")).await.unwrap();
    let next_minute = enqueue_due(db, at("2030-01-01T00:01:30Z")).await.unwrap();
    let after_downtime = enqueue_due(db, at("2030-01-01T00:05:30Z")).await.unwrap();

    // Assert: the years since the plan's creation give one catch-up job per
    // agent, not one per missed minute; so do the three minutes missed later.
    assert_eq!(first.enqueued, 2, "{first:?}");
    assert!(first.skipped >= 2 * 59, "{first:?}");
    assert_eq!(same_minute, TickReport::default());
    assert_eq!(next_minute.enqueued, 2, "{next_minute:?}");
    assert_eq!(
        (after_downtime.enqueued, after_downtime.skipped),
        (2, 2 * 3),
        "{after_downtime:?}"
    );
    let slots = slots_per_agent(db, tenant).await;
    let expected: Vec<_> = ["agent-0", "agent-1"]
        .into_iter()
        .flat_map(|agent| {
            [
                "2030-01-01T00:00:00Z",
                "2030-01-01T00:01:00Z",
                "2030-01-01T00:05:00Z",
            ]
            .map(|slot| (agent.to_owned(), at(slot)))
        })
        .collect();
    assert_eq!(slots, expected);
}

#[tokio::test]
async fn due_slots_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DatabaseSettings::sqlite_in(dir.path()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    due_slots_become_one_job_each_and_downtime_one_catch_up(&db).await;
}

#[tokio::test]
async fn due_slots_and_two_instances_on_postgres() {
    let Some(settings) = crate::helpers::fresh_postgres("scheduler_on_postgres").await else {
        return;
    };
    let db = Database::connect(&settings).await.unwrap();
    db.migrate().await.unwrap();
    due_slots_become_one_job_each_and_downtime_one_catch_up(&db).await;

    // A database of its own, so every job counted is this scenario's.
    let settings = crate::helpers::fresh_postgres("scheduler_on_postgres")
        .await
        .unwrap();
    let first = Database::connect(&settings).await.unwrap();
    first.migrate().await.unwrap();
    let second = Database::connect(&settings).await.unwrap();
    two_instances_enqueue_every_slot_exactly_once(&first, &second).await;
}

async fn two_instances_enqueue_every_slot_exactly_once(a: &Database, b: &Database) {
    // Arrange: 50 agents on one minutely plan; two instances (two pools on
    // one PostgreSQL) tick at the same moments, 10 slots in a row.
    let tenant = minutely_plan(a, 50).await;
    let mut enqueued = 0;

    // Act
    for minute in 0..10 {
        let now = at(&format!("2031-06-01T00:{minute:02}:20Z"));
        let (left, right) = tokio::join!(enqueue_due(a, now), enqueue_due(b, now));
        let (left, right) = (left.unwrap(), right.unwrap());
        assert_eq!(
            left.enqueued + right.enqueued,
            50,
            "minute {minute}: {left:?} {right:?}"
        );
        enqueued += left.enqueued + right.enqueued;
    }

    // Assert: 500 jobs, one per agent and slot, every slot for every agent.
    let slots = slots_per_agent(a, tenant).await;
    let distinct: HashSet<_> = slots.iter().cloned().collect();
    assert_eq!((enqueued, slots.len(), distinct.len()), (500, 500, 500));
    for minute in 0..10 {
        let slot = at(&format!("2031-06-01T00:{minute:02}:00Z"));
        let agents = slots.iter().filter(|(_, s)| *s == slot).count();
        assert_eq!(agents, 50, "slot {slot}");
    }
}

async fn a_fast_schedule_clock_enqueues_early_but_leases_keep_wall_time(db: &Database) {
    // Arrange: one agent with a claimed job whose one-minute lease is live,
    // and a schedule clock running an hour per second for the last minute.
    let tenant = minutely_plan(db, 1).await;
    let plan = plans::list(db, tenant).await.unwrap()[0].id;
    let agent = agents::list(db, tenant).await.unwrap()[0].id;
    jobs::enqueue_run_now(db, tenant, plan).await.unwrap();
    let running = job_claims::claim_next(db, tenant, agent, std::time::Duration::from_mins(1))
        .await
        .unwrap()
        .unwrap();
    let clock = ScheduleClock::fast(Utc::now() - chrono::Duration::minutes(1), 3600);

    // Act
    let report = tick(db, &clock).await.unwrap();

    // Assert: a slot about 60 hours ahead was enqueued; the job still runs.
    assert_eq!((report.enqueued, report.expired), (1, 0), "{report:?}");
    let slots = slots_per_agent_scheduled(db, tenant).await;
    assert!(
        slots[0] > Utc::now() + chrono::Duration::hours(59),
        "{slots:?}"
    );
    let listed = jobs::list_recent(db, tenant, 10).await.unwrap();
    let job = listed.iter().find(|job| job.id == running.id).unwrap();
    assert_eq!(job.state, "running");
}

/// The slots of the scheduled jobs of `tenant` (run-now jobs have none).
async fn slots_per_agent_scheduled(db: &Database, tenant: TenantId) -> Vec<DateTime<Utc>> {
    jobs::list_recent(db, tenant, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|job| job.slot_at)
        .collect()
}

async fn a_tick_fails_a_job_whose_lease_ran_out_on_the_wall_clock(db: &Database) {
    // Arrange: a job claimed with a lease that ends almost at once.
    let tenant = minutely_plan(db, 1).await;
    let plan = plans::list(db, tenant).await.unwrap()[0].id;
    let agent = agents::list(db, tenant).await.unwrap()[0].id;
    jobs::enqueue_run_now(db, tenant, plan).await.unwrap();
    let short = job_claims::claim_next(db, tenant, agent, std::time::Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // Act: the schedule clock is the wall clock.
    let report = tick(db, &ScheduleClock::wall()).await.unwrap();

    // Assert
    assert!(report.expired >= 1, "{report:?}");
    let listed = jobs::list_recent(db, tenant, 10).await.unwrap();
    let job = listed.iter().find(|job| job.id == short.id).unwrap();
    assert_eq!(job.state, "failed");
}

#[tokio::test]
async fn schedule_clock_and_leases_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DatabaseSettings::sqlite_in(dir.path()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    a_fast_schedule_clock_enqueues_early_but_leases_keep_wall_time(&db).await;
    a_tick_fails_a_job_whose_lease_ran_out_on_the_wall_clock(&db).await;
}

#[tokio::test]
async fn schedule_clock_and_leases_on_postgres() {
    let Some(settings) = crate::helpers::fresh_postgres("schedule_clock_on_postgres").await else {
        return;
    };
    let db = Database::connect(&settings).await.unwrap();
    db.migrate().await.unwrap();
    a_fast_schedule_clock_enqueues_early_but_leases_keep_wall_time(&db).await;
    a_tick_fails_a_job_whose_lease_ran_out_on_the_wall_clock(&db).await;
}
