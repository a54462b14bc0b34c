//! `backup --stdin-name NAME --command CMD` backs up a command's output as
//! one file (how databases are backed up consistently); a failing command
//! fails the backup and commits nothing.

use std::process::Command;

use stowage_e2e::agent::Tenant;
use stowage_e2e::on_both_backends;
use stowage_e2e::server::{Backend, TestServer};

/// A shell script printing about 2 MB of numbered lines.
const DUMP_SCRIPT: &str =
    "i=0; while [ $i -lt 120000 ]; do echo \"row $i of the dump\"; i=$((i+1)); done";

fn a_command_output_is_backed_up_and_a_failing_command_commits_nothing(backend: Backend) {
    // Arrange
    let Some(server) = TestServer::start(backend, "stdin") else {
        return;
    };
    let tenant = Tenant::create(&server, "Stdin");
    let agent = tenant.enroll("stdin-host");
    let expected = Command::new("sh")
        .args(["-c", DUMP_SCRIPT])
        .output()
        .unwrap()
        .stdout;
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("target");
    let command = format!("sh -c '{DUMP_SCRIPT}'");

    // Act
    let good = agent.run(&[
        "backup",
        "--stdin-name",
        "db.dump",
        "--command",
        &command,
        "--host",
        &agent.name,
        "--json",
    ]);
    let committed = agent.snapshots().len();
    let failing = agent.run(&[
        "backup",
        "--stdin-name",
        "db.dump",
        "--command",
        "sh -c 'echo partial output; exit 7'",
        "--host",
        &agent.name,
    ]);
    let restore = agent.restore("latest", &target);

    // Assert
    good.expect_success();
    assert_eq!(committed, 1);
    failing.expect_code(1);
    assert!(
        failing.stderr.contains('7'),
        "the failed backup does not report the command's exit status 7:\n{}",
        failing.stderr
    );
    assert_eq!(
        agent.snapshots().len(),
        1,
        "the failed command's backup was committed"
    );
    restore.expect_success();
    let restored = std::fs::read(target.join("db.dump")).expect("db.dump is restored");
    assert!(restored.len() > 2_000_000);
    assert!(
        restored == expected,
        "db.dump differs from the command's output"
    );
}

on_both_backends!(a_command_output_is_backed_up_and_a_failing_command_commits_nothing);
