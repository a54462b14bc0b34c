//! The agent as a service, against the real server: a plan run queued with
//! `stowage-server plan run` is taken by a running `stowage daemon`, backed
//! up as the plan says, reported back (the job succeeds with its counts),
//! and restores byte for byte; SIGTERM stops the daemon cleanly.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use stowage_e2e::agent::Tenant;
use stowage_e2e::compare::{Checks, assert_identical};
use stowage_e2e::server::{Backend, TestServer};
use stowage_e2e::{fixture, on_both_backends, restored_root};

/// The tenant's jobs, as `stowage-server jobs --json` lists them.
fn jobs(server: &TestServer, tenant: &str) -> Vec<serde_json::Value> {
    let out = server.admin(&["jobs", "--tenant", tenant, "--json"]);
    match serde_json::from_str(&out).expect("jobs --json is JSON") {
        serde_json::Value::Array(items) => items,
        other => panic!("jobs --json is not an array: {other}"),
    }
}

fn a_plan_run_is_taken_by_the_daemon_backed_up_and_reported(backend: Backend) {
    // Arrange: an agent running as a daemon, and a plan for it.
    let Some(server) = TestServer::start(backend, "daemon") else {
        return;
    };
    let tenant = Tenant::create(&server, "Daemon");
    let agent = tenant.enroll("daemon-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    fixture::many_files(&root, "daemon", 30, 0);
    let root_arg = root.to_str().unwrap();
    server.admin(&[
        "plan",
        "create",
        "--tenant",
        "Daemon",
        "--name",
        "docs",
        "--agent",
        "daemon-host",
        "--path",
        root_arg,
        "--schedule",
        "0 3 * * *",
    ]);
    let mut daemon = agent.spawn(&["daemon"]);

    // Act
    server.admin(&["plan", "run", "--tenant", "Daemon", "docs"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let listed = jobs(&server, "Daemon");
        let job = listed.first().expect("plan run queued a job").clone();
        if job["state"] == "succeeded" || job["state"] == "failed" {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not finish the job: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let pid = Pid::from_child(&daemon);
    kill_process(pid, Signal::TERM).unwrap();
    let status = daemon.wait().unwrap();

    // Assert
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["files"], 30, "{job}");
    assert!(job["bytes"].as_u64().unwrap() > 0, "{job}");
    assert!(
        status.success(),
        "the daemon did not stop cleanly on SIGTERM: {status}"
    );
    let listed = agent.run(&["snapshots", "--all-hosts", "--json"]);
    listed.expect_success();
    let snapshots = listed.json();
    let snapshot = &snapshots.as_array().unwrap()[0];
    assert!(!snapshot["record"]["plan"].is_null(), "{snapshot}");
    let id = snapshot["id"].as_str().unwrap();
    let target = work.path().join("restored");
    agent
        .run(&[
            "restore",
            id,
            "--target",
            target.to_str().unwrap(),
            "--host",
            snapshot["record"]["hostname"].as_str().unwrap(),
        ])
        .expect_success();
    assert_identical(
        Path::new(&root),
        &restored_root(&target, &root),
        Checks {
            owners: false,
            xattrs: false,
        },
    );
}

on_both_backends!(a_plan_run_is_taken_by_the_daemon_backed_up_and_reported);
