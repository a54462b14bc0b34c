//! A write-only agent (`enroll --write-only`) backs up, but cannot restore
//! or list file names: both fail with exit 1 and say why. A full agent of
//! the same tenant restores what it wrote, so the backup is real.

use stowage_e2e::agent::Tenant;
use stowage_e2e::compare::{Checks, assert_identical};
use stowage_e2e::fixture;
use stowage_e2e::server::{Backend, TestServer};
use stowage_e2e::{on_both_backends, restored_root};

fn a_write_only_agent_backs_up_but_cannot_restore_or_list(backend: Backend) {
    // Arrange: the first agent creates the tenant keys; the second joins write-only.
    let Some(server) = TestServer::start(backend, "write-only") else {
        return;
    };
    let tenant = Tenant::create(&server, "WriteOnly");
    let full = tenant.enroll("full-host");
    let writer = tenant.enroll_write_only("writer-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    fixture::many_files(&root, "write-only", 20, 0);
    let target = work.path().join("target");

    // Act
    let backup = writer.backup(&[&root]);
    let restore = writer.restore("latest", &target);
    let ls = writer.run(&["ls", "latest", "--host", &writer.name]);
    let full_restore = full.run(&[
        "restore".as_ref(),
        "latest".as_ref(),
        "--host".as_ref(),
        writer.name.as_ref(),
        "--target".as_ref(),
        target.as_os_str(),
    ]);

    // Assert
    backup.expect_success();
    for (what, run) in [("restore", &restore), ("ls", &ls)] {
        run.expect_code(1);
        assert!(
            run.stderr.contains("write-only"),
            "{what} by a write-only agent does not say why it fails:\n{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("file-0000"),
            "{what} by a write-only agent printed a file name:\n{}",
            run.stdout
        );
    }
    full_restore.expect_success();
    assert_identical(
        &root,
        &restored_root(&target, &root),
        Checks {
            owners: false,
            xattrs: false,
        },
    );
}

on_both_backends!(a_write_only_agent_backs_up_but_cannot_restore_or_list);
