//! Jobs beyond the backup, with the real daemon and server: a restore
//! started through the operator API runs on the agent it names (not the
//! one that made the snapshot) and restores byte for byte; a restore test
//! of a plan restores into a scratch directory, checks every byte, removes
//! the copy and records its time against the plan's RTO.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use stowage_e2e::agent::{Agent, Tenant};
use stowage_e2e::compare::{Checks, assert_identical};
use stowage_e2e::runtime::block_on;
use stowage_e2e::server::{Backend, TestServer};
use stowage_e2e::{fixture, on_both_backends, restored_root};

/// Polls `jobs --json` until job `id` has ended; returns it.
fn ended_job(server: &TestServer, tenant: &str, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        let listed: serde_json::Value =
            serde_json::from_str(&server.admin(&["jobs", "--tenant", tenant, "--json"]))
                .expect("jobs --json is JSON");
        let job = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|job| job["id"] == id)
            .unwrap_or_else(|| panic!("job {id} is listed: {listed}"))
            .clone();
        if job["state"] == "succeeded" || job["state"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not end: {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(mut daemon: Child) {
    kill_process(Pid::from_child(&daemon), Signal::TERM).unwrap();
    let status = daemon.wait().unwrap();
    assert!(
        status.success(),
        "the daemon did not stop cleanly: {status}"
    );
}

fn newest_snapshot(agent: &Agent) -> serde_json::Value {
    let listed = agent.run(&["snapshots", "--all-hosts", "--json"]);
    listed.expect_success();
    listed.json().as_array().unwrap()[0].clone()
}

fn a_restore_started_through_the_api_runs_on_the_chosen_agent(backend: Backend) {
    // Arrange: "origin" backs up; "replacement" runs the daemon; an API key.
    let Some(server) = TestServer::start(backend, "api_restore") else {
        return;
    };
    let tenant = Tenant::create(&server, "Recovery");
    let origin = tenant.enroll("origin");
    let replacement = tenant.enroll("replacement");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    fixture::many_files(&root, "lost", 25, 3);
    origin.backup(&[&root]).expect_success();
    let snapshot = newest_snapshot(&origin)["id"].as_str().unwrap().to_owned();
    let key = server.admin(&["api-key", "create", "--tenant", "Recovery", "--name", "ops"]);
    let daemon = replacement.spawn(&["daemon"]);
    let target = work.path().join("restored");

    // Act
    let started: serde_json::Value = block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/jobs/restore", server.url))
            .bearer_auth(key.trim())
            .json(&serde_json::json!({
                "snapshot": snapshot,
                "agent": "replacement",
                "target": target.to_str().unwrap(),
            }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let job = ended_job(&server, "Recovery", started["job"].as_str().unwrap());
    stop(daemon);

    // Assert
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        (&job["kind"], &job["agent"]),
        (&"restore".into(), &"replacement".into())
    );
    assert_identical(
        Path::new(&root),
        &restored_root(&target, &root),
        Checks {
            owners: false,
            xattrs: false,
        },
    );
}

fn a_restore_test_checks_every_byte_and_records_its_time_against_the_rto(backend: Backend) {
    // Arrange: a plan with an RTO, backed up once by the daemon.
    let Some(server) = TestServer::start(backend, "restore_test") else {
        return;
    };
    let tenant = Tenant::create(&server, "Drill");
    let agent = tenant.enroll("drill-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    fixture::many_files(&root, "drill", 20, 2);
    server.admin(&[
        "plan",
        "create",
        "--tenant",
        "Drill",
        "--name",
        "docs",
        "--agent",
        "drill-host",
        "--path",
        root.to_str().unwrap(),
        "--schedule",
        "0 3 * * *",
        "--rto",
        "1h",
    ]);
    let scratch = work.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let daemon = agent.spawn(&["daemon", "--scratch-dir", scratch.to_str().unwrap()]);
    let backup = server.admin(&["plan", "run", "--tenant", "Drill", "docs"]);
    let backed_up = ended_job(&server, "Drill", backup.trim());

    // Act
    let rehearsal = server.admin(&["plan", "test", "--tenant", "Drill", "docs"]);
    let rehearsed = ended_job(&server, "Drill", rehearsal.trim());
    stop(daemon);

    // Assert
    assert_eq!(backed_up["state"], "succeeded", "{backed_up}");
    assert_eq!(rehearsed["state"], "succeeded", "{rehearsed}");
    assert_eq!(rehearsed["kind"], "restore_test");
    let plans: serde_json::Value =
        serde_json::from_str(&server.admin(&["plan", "list", "--tenant", "Drill", "--json"]))
            .unwrap();
    let tests = &plans[0]["restore_tests"];
    let good = &tests["last_good"];
    assert_eq!(good["files"], 20, "{tests}");
    assert_eq!(good["bytes"], backed_up["bytes"], "{tests}");
    assert!(
        good["restore_ms"].is_u64() && good["check_ms"].is_u64(),
        "{tests}"
    );
    assert_eq!(good["sampled"], false);
    assert_eq!(tests["rto"], "met", "{tests}");
    let table = server.admin(&["plan", "list", "--tenant", "Drill"]);
    assert!(table.contains("ok ") && table.contains("met"), "{table}");
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "the scratch copy is removed"
    );
}

on_both_backends!(
    a_restore_started_through_the_api_runs_on_the_chosen_agent,
    a_restore_test_checks_every_byte_and_records_its_time_against_the_rto,
);
