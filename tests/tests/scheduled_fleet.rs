//! Scale-out scheduling and dispatch, end to end: two real `stowage-server`
//! processes on one PostgreSQL database (and one bucket), a `* * * * *`
//! plan on 50 agents enrolled through the real API, the schedule clock at
//! 20× (a slot every 3 wall seconds), and 50 simulated agents long-polling
//! both instances in turn and finishing each job at once. After at least
//! ten slots the schedule is stopped, the agents drain the queue, and the
//! jobs are counted: one per agent and slot, no slot missing for any agent
//! between the first and the last, each claimed exactly once (by the
//! server's record and by the agents' own count) and succeeded.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use stowage_e2e::fleet;
use stowage_e2e::server::{Backend, TestServer};

const AGENTS: usize = 50;
const SLOTS: i64 = 10;
/// A slot every 3 wall seconds. The scheduler collapses slots missed while
/// no tick ran (downtime) into one catch-up run, by design; at 30× a stall
/// of both debug instances for 2 s on a loaded 2-core machine was seen to
/// collapse one slot, so the clock leaves more room.
const CLOCK_SPEED: &str = "20";

/// The tenant's jobs, as `stowage-server jobs --json` lists them.
fn jobs(server: &TestServer, tenant: &str) -> Vec<serde_json::Value> {
    let out = server.admin(&["jobs", "--tenant", tenant, "--json", "--limit", "100000"]);
    match serde_json::from_str(&out).expect("jobs --json is JSON") {
        serde_json::Value::Array(items) => items,
        other => panic!("jobs --json is not an array: {other}"),
    }
}

/// Waits up to `limit` for `done`, checking every half second.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Enrolls [`AGENTS`] agents in tenant "Fleet" (tokens from the CLI, the
/// enrollment API of both instances) and puts them on a `* * * * *` plan.
fn enroll_on_a_minutely_plan(
    server: &TestServer,
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    urls: &[String],
) -> Vec<fleet::FleetAgent> {
    server.create_tenant("Fleet");
    let tokens = std::thread::scope(|scope| {
        let makers: Vec<_> = (0..5)
            .map(|_| {
                scope.spawn(|| {
                    (0..AGENTS / 5)
                        .map(|_| server.token("Fleet"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        makers
            .into_iter()
            .flat_map(|maker| maker.join().expect("token creation runs"))
            .collect::<Vec<_>>()
    });
    let agents = runtime
        .block_on(fleet::enroll(client, urls, tokens, "fleet", 8))
        .unwrap();
    let mut create = vec![
        "plan",
        "create",
        "--tenant",
        "Fleet",
        "--name",
        "every-minute",
        "--path",
        "/srv",
        "--schedule",
        "* * * * *",
    ];
    for agent in &agents {
        create.extend(["--agent", agent.name.as_str()]);
    }
    server.admin(&create);
    agents
}

#[test]
fn two_instances_give_fifty_agents_every_scheduled_slot_exactly_once() {
    // Arrange: two instances sharing one database, one bucket and one
    // schedule clock (same origin and speed), ticking every 250 ms.
    let started = Instant::now();
    let origin = chrono::Utc::now().to_rfc3339();
    let settings = [
        ("STOWAGE_SCHEDULER_CLOCK_SPEED", CLOCK_SPEED),
        ("STOWAGE_SCHEDULER_CLOCK_ORIGIN", origin.as_str()),
        ("STOWAGE_SCHEDULER_TICK", "250ms"),
        // 50 enrollments from one address in a few seconds.
        ("STOWAGE_ADDRESS_RATE_LIMIT", "1000"),
        ("STOWAGE_ADDRESS_RATE_BURST", "1000"),
    ];
    let Some(first) = TestServer::start_with(Backend::PostgresS3, "two_instances", &settings, None)
    else {
        return;
    };
    let second = first.start_peer();
    let urls = vec![first.url.clone(), second.url.clone()];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = fleet::client().unwrap();
    let agents = enroll_on_a_minutely_plan(&first, &runtime, &client, &urls);
    let setup = started.elapsed();

    // Act: the fleet works both instances until ten slots have come and
    // gone; then the schedule stops (the plan loses its agents, as an edit
    // would) and the fleet drains what is queued.
    let running = runtime.block_on(async { fleet::start(&client, &urls, &agents, 5) });
    let slots = "SELECT COUNT(DISTINCT slot_at) FROM jobs";
    wait_until(Duration::from_secs(50), "ten slots were enqueued", || {
        first.query_number(slots) > SLOTS
    });
    first.execute_sql("DELETE FROM plan_agents");
    // A tick that read the plan before the delete may still be inserting.
    std::thread::sleep(Duration::from_secs(1));
    let open = "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')";
    wait_until(
        Duration::from_secs(20),
        "the fleet drained the queue",
        || first.query_number(open) == 0,
    );
    let report = runtime.block_on(running.stop());
    let listed = jobs(&second, "Fleet");
    eprintln!(
        "setup {setup:?}, {} jobs in {:?} total",
        listed.len(),
        started.elapsed()
    );

    for (n, server) in [&first, &second].into_iter().enumerate() {
        for line in server
            .log()
            .lines()
            .filter(|line| !line.contains(" INFO ") || line.contains("scheduled due slots"))
        {
            eprintln!("instance {n}: {line}");
        }
    }

    // Assert
    every_agent_has_every_slot_once(&listed);
    every_job_was_claimed_once(&listed, &report);
}

/// One succeeded, claimed job per agent and slot, and for every agent
/// every minute from the first slot to the last: more than [`SLOTS`].
fn every_agent_has_every_slot_once(listed: &[serde_json::Value]) {
    let mut per_agent: HashMap<String, Vec<String>> = HashMap::new();
    for job in listed {
        assert_eq!(job["state"], "succeeded", "{job}");
        assert!(!job["claimed_at"].is_null(), "{job}");
        let slot = job["slot_at"].as_str().expect("a scheduled job has a slot");
        per_agent
            .entry(job["agent"].as_str().unwrap().to_owned())
            .or_default()
            .push(slot.to_owned());
    }
    assert_eq!(per_agent.len(), AGENTS, "every agent got jobs");
    let all_slots: BTreeSet<chrono::DateTime<chrono::Utc>> = listed
        .iter()
        .map(|job| job["slot_at"].as_str().unwrap().parse().unwrap())
        .collect();
    let (first_slot, last_slot) = (*all_slots.first().unwrap(), *all_slots.last().unwrap());
    let minutes = (last_slot - first_slot).num_minutes() + 1;
    assert!(minutes > SLOTS, "only {minutes} slots ran");
    for (agent, slots) in &per_agent {
        let distinct: BTreeSet<&String> = slots.iter().collect();
        assert_eq!(distinct.len(), slots.len(), "{agent} has a slot twice");
        assert_eq!(
            i64::try_from(slots.len()).unwrap(),
            minutes,
            "{agent} lacks a slot between {first_slot} and {last_slot}: {distinct:?}"
        );
    }
}

/// The agents' own record: each listed job claimed exactly once, no claim
/// of a job not listed, claims answered by both instances, no failed request.
fn every_job_was_claimed_once(listed: &[serde_json::Value], report: &fleet::Report) {
    let mut claims_per_job: HashMap<String, u32> = HashMap::new();
    for claim in &report.claims {
        *claims_per_job.entry(claim.job.to_hex()).or_default() += 1;
    }
    let twice: Vec<_> = claims_per_job.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs claimed more than once: {twice:?}");
    assert_eq!(claims_per_job.len(), listed.len());
    for job in listed {
        assert!(
            claims_per_job.contains_key(job["id"].as_str().unwrap()),
            "{job}"
        );
    }
    let by_first = report
        .claims
        .iter()
        .filter(|claim| claim.instance == 0)
        .count();
    assert!(
        by_first > 0 && by_first < report.claims.len(),
        "both instances answered claims ({by_first} of {} by the first)",
        report.claims.len()
    );
    assert_eq!(
        report.errors, 0,
        "requests failed, first: {:?}",
        report.first_errors
    );
}
