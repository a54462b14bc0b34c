//! Files that cannot be read are skipped with a warning and recorded, the
//! snapshot is still committed, and the backup exits 3.
//!
//! Permission bits do not stop root (CI runs as root), so when the tests
//! run as root the agent runs under `setpriv` without `CAP_DAC_OVERRIDE` and
//! `CAP_DAC_READ_SEARCH`: then a root-owned file of mode 0o000 is unreadable
//! to it exactly as to its owner, while its own 0600 files stay readable.

use std::os::unix::fs::PermissionsExt;

use stowage_e2e::agent::Tenant;
use stowage_e2e::fixture;
use stowage_e2e::server::{Backend, TestServer};
use stowage_e2e::{on_both_backends, restored_root};

fn unreadable_files_are_skipped_recorded_and_exit_3(backend: Backend) {
    // Arrange
    let Some(server) = TestServer::start(backend, "unreadable") else {
        return;
    };
    let tenant = Tenant::create(&server, "Unreadable");
    let agent = tenant.enroll("unreadable-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    std::fs::create_dir(&root).unwrap();
    fixture::write_random(&root.join("readable.bin"), "readable", 100_000);
    fixture::write_random(&root.join("secret-file"), "secret", 1000);
    std::fs::create_dir(root.join("secret-dir")).unwrap();
    fixture::write_random(&root.join("secret-dir/inside"), "inside", 10);
    for path in ["secret-file", "secret-dir"] {
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let wrapper: &[&str] = if rustix::process::geteuid().is_root() {
        &[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &["env"]
    };
    let args = [
        "backup".as_ref(),
        "--json".as_ref(),
        "--host".as_ref(),
        agent.name.as_ref(),
        root.as_os_str(),
    ];

    // Act
    let backup = agent.run_wrapped(wrapper, &args);
    let target = work.path().join("target");
    let restore = agent.restore("latest", &target);

    // Assert
    backup.expect_code(3);
    let output = format!("{}{}", backup.stdout, backup.stderr);
    for name in ["secret-file", "secret-dir"] {
        assert!(
            output.contains(name),
            "the backup does not name {name}:\n{output}"
        );
    }
    let snapshots = agent.snapshots();
    assert_eq!(snapshots.len(), 1, "the partial snapshot was not committed");
    let record = &snapshots[0]["record"];
    assert_eq!(record["summary"]["errors"], 2, "{record}");
    assert!(record["error_log"].is_string(), "no error log: {record}");
    restore.expect_success();
    let copy = restored_root(&target, &root);
    assert_eq!(
        std::fs::read(copy.join("readable.bin")).unwrap(),
        std::fs::read(root.join("readable.bin")).unwrap()
    );
    assert!(
        !copy.join("secret-file").exists(),
        "an unreadable file was restored"
    );
}

on_both_backends!(unreadable_files_are_skipped_recorded_and_exit_3);
