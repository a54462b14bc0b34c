//! Backup → restore through the real server gives back a byte-identical
//! tree: contents, types, modes, owners, mtimes to the nanosecond, symlinks,
//! hard links, empty directories and files, unicode and non-UTF-8 names,
//! extended attributes, a file over 100 MiB, and a sparse file that stays
//! sparse. The one test per backend that carries the big file.

use std::os::unix::fs::MetadataExt;

use stowage_e2e::agent::Tenant;
use stowage_e2e::compare::{Checks, assert_identical};
use stowage_e2e::fixture::{self, Options};
use stowage_e2e::server::{Backend, TestServer};
use stowage_e2e::{on_both_backends, restored_root};

fn a_backup_restores_byte_identical_with_every_kind_of_file_and_metadata(backend: Backend) {
    // Arrange
    let Some(server) = TestServer::start(backend, "roundtrip") else {
        return;
    };
    let tenant = Tenant::create(&server, "Roundtrip");
    let agent = tenant.enroll("roundtrip-host");
    let work = tempfile::tempdir().unwrap();
    let source = fixture::build(&work.path().join("source"), Options { big_file: true });
    let target = work.path().join("target");

    // Act
    let backup = agent.backup(&[&source.root]);
    let restore = agent.restore("latest", &target);

    // Assert
    backup.expect_success();
    restore.expect_success();
    let copy = restored_root(&target, &source.root);
    assert_identical(
        &source.root,
        &copy,
        Checks {
            owners: source.owners,
            xattrs: source.xattrs,
        },
    );
    let sparse = std::fs::metadata(copy.join("sparse.img")).unwrap();
    assert!(
        sparse.blocks() * 512 < sparse.len() / 4,
        "the sparse file of {} bytes was restored with {} bytes allocated",
        sparse.len(),
        sparse.blocks() * 512
    );
}

on_both_backends!(a_backup_restores_byte_identical_with_every_kind_of_file_and_metadata);
