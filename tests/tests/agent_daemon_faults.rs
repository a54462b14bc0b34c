//! The daemon and the scheduler through time and failures, with the real
//! binaries: a minutely plan makes a snapshot every minute (on a schedule
//! clock running 15× so a minute passes in 4 s); a server restarted in the
//! middle of a job loses and duplicates nothing; a daemon killed in the
//! middle of a job leaves it failed after its lease, with the reason, and
//! the next run succeeds.

use std::process::Child;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use stowage_e2e::agent::Tenant;
use stowage_e2e::fixture;
use stowage_e2e::server::{Backend, TestServer};

/// The lease the daemon-kill test runs with: longer than the daemon's
/// 10-second progress reports, short enough to wait for.
const SHORT_LEASE: &str = "15s";

fn jobs(server: &TestServer, tenant: &str) -> Vec<serde_json::Value> {
    let out = server.admin(&["jobs", "--tenant", tenant, "--limit", "500", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .expect("jobs --json is JSON")
        .as_array()
        .unwrap()
        .clone()
}

/// Polls until `done` holds for the tenant's jobs; returns them.
fn wait_for(
    server: &TestServer,
    tenant: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let listed = jobs(server, tenant);
        if done(&listed) {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}: {listed:#?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(jobs: &[serde_json::Value], state: &str) -> usize {
    jobs.iter().filter(|job| job["state"] == state).count()
}

fn stop(mut daemon: Child) {
    kill_process(Pid::from_child(&daemon), Signal::TERM).unwrap();
    daemon.wait().unwrap();
}

/// A plan `docs` of tenant `tenant` on agent `agent` backing up the output
/// of `command`.
fn command_plan(server: &TestServer, tenant: &str, agent: &str, command: &str, schedule: &str) {
    server.admin(&[
        "plan",
        "create",
        "--tenant",
        tenant,
        "--name",
        "docs",
        "--agent",
        agent,
        "--command",
        command,
        "--stdin-name",
        "dump.bin",
        "--schedule",
        schedule,
    ]);
}

fn snapshot_count(agent: &stowage_e2e::agent::Agent) -> usize {
    let listed = agent.run(&["snapshots", "--all-hosts", "--json"]);
    listed.expect_success();
    listed.json().as_array().unwrap().len()
}

fn a_minutely_plan_makes_a_snapshot_each_minute() {
    // Arrange: the schedule clock at 15x (a minute in 4 s), ticking every 250 ms.
    let Some(server) = TestServer::start_with(
        Backend::SqliteLocal,
        "minutely",
        &[
            ("STOWAGE_SCHEDULER_CLOCK_SPEED", "15"),
            ("STOWAGE_SCHEDULER_TICK", "250ms"),
        ],
        None,
    ) else {
        return;
    };
    let tenant = Tenant::create(&server, "Minutely");
    let agent = tenant.enroll("minutely-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    fixture::many_files(&root, "minutely", 10, 0);
    server.admin(&[
        "plan",
        "create",
        "--tenant",
        "Minutely",
        "--name",
        "docs",
        "--agent",
        "minutely-host",
        "--path",
        root.to_str().unwrap(),
        "--schedule",
        "* * * * *",
        "--rpo",
        "5m",
    ]);
    let daemon = agent.spawn(&["daemon", "--normal-priority"]);

    // Act: five schedule minutes' backups.
    let listed = wait_for(
        &server,
        "Minutely",
        Duration::from_mins(1),
        "5 minutely backups",
        |jobs| count(jobs, "succeeded") >= 5,
    );
    stop(daemon);

    // Assert: the succeeded jobs are consecutive minutes, one each.
    let mut slots: Vec<chrono::DateTime<chrono::Utc>> = listed
        .iter()
        .filter(|job| job["state"] == "succeeded")
        .map(|job| job["slot_at"].as_str().unwrap().parse().unwrap())
        .collect();
    slots.sort();
    for pair in slots.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            chrono::Duration::minutes(1),
            "a minute without its backup: {slots:?}"
        );
    }
    assert!(listed.iter().all(|job| job["trigger"] == "schedule"));
    assert_eq!(
        snapshot_count(&agent),
        count(&listed, "succeeded"),
        "every succeeded job committed a snapshot"
    );
}

fn a_server_restarted_mid_job_loses_and_duplicates_no_job(backend: Backend) {
    // Arrange: two queued runs of a plan whose backup takes a few seconds.
    let Some(mut server) = TestServer::start(backend, "restart_mid_job") else {
        return;
    };
    let tenant = Tenant::create(&server, "Restart");
    let agent = tenant.enroll("restart-host");
    command_plan(
        &server,
        "Restart",
        "restart-host",
        "sleep 4; head -c 3000000 /dev/urandom",
        "0 3 * * *",
    );
    let daemon = agent.spawn(&["daemon", "--normal-priority"]);
    server.admin(&["plan", "run", "--tenant", "Restart", "docs"]);
    server.admin(&["plan", "run", "--tenant", "Restart", "docs"]);
    wait_for(
        &server,
        "Restart",
        Duration::from_secs(30),
        "a running job",
        |jobs| count(jobs, "running") == 1,
    );

    // Act
    server.restart();
    let listed = wait_for(
        &server,
        "Restart",
        Duration::from_mins(2),
        "both runs",
        |jobs| count(jobs, "succeeded") + count(jobs, "failed") == 2,
    );
    stop(daemon);

    // Assert
    assert_eq!(
        (listed.len(), count(&listed, "succeeded")),
        (2, 2),
        "{listed:#?}"
    );
    assert_eq!(snapshot_count(&agent), 2);
    assert!(
        server.log().contains("listening on"),
        "the restarted server logs: {}",
        server.log()
    );
}

fn a_killed_daemons_job_fails_after_its_lease_and_the_next_run_succeeds(backend: Backend) {
    // Arrange: a short lease; a backup that stalls while a marker file exists.
    let Some(server) = TestServer::start_with(
        backend,
        "killed_daemon",
        &[
            ("STOWAGE_JOB_LEASE", SHORT_LEASE),
            ("STOWAGE_SCHEDULER_TICK", "250ms"),
        ],
        None,
    ) else {
        return;
    };
    let tenant = Tenant::create(&server, "Killed");
    let agent = tenant.enroll("killed-host");
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("stall");
    std::fs::write(&marker, b"").unwrap();
    let command = format!(
        "while [ -e {} ]; do sleep 0.2; done; head -c 100000 /dev/urandom",
        marker.display()
    );
    command_plan(&server, "Killed", "killed-host", &command, "0 3 * * *");
    let mut daemon = agent.spawn(&["daemon", "--normal-priority"]);
    server.admin(&["plan", "run", "--tenant", "Killed", "docs"]);
    wait_for(
        &server,
        "Killed",
        Duration::from_secs(30),
        "a running job",
        |jobs| count(jobs, "running") == 1,
    );

    // Act: kill -9 the daemon; wait for the lease; start a new daemon and run again.
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let failed = wait_for(
        &server,
        "Killed",
        Duration::from_mins(1),
        "the lease to run out",
        |jobs| count(jobs, "failed") == 1,
    );
    std::fs::remove_file(&marker).unwrap();
    let daemon = agent.spawn(&["daemon", "--normal-priority"]);
    server.admin(&["plan", "run", "--tenant", "Killed", "docs"]);
    let listed = wait_for(
        &server,
        "Killed",
        Duration::from_mins(1),
        "the next run",
        |jobs| count(jobs, "succeeded") == 1,
    );
    stop(daemon);

    // Assert
    let dead = &failed[0];
    assert!(
        dead["error"]
            .as_str()
            .unwrap()
            .contains("the agent stopped reporting"),
        "{dead}"
    );
    assert_eq!(
        (listed.len(), count(&listed, "failed")),
        (2, 1),
        "{listed:#?}"
    );
    assert_eq!(snapshot_count(&agent), 1);
}

#[test]
fn a_minutely_plan_makes_a_snapshot_each_minute_on_sqlite() {
    a_minutely_plan_makes_a_snapshot_each_minute();
}

stowage_e2e::on_both_backends!(
    a_server_restarted_mid_job_loses_and_duplicates_no_job,
    a_killed_daemons_job_fails_after_its_lease_and_the_next_run_succeeds,
);
