//! A backup killed with SIGKILL in the middle resumes: the rerun completes
//! and re-uploads nothing the server already holds. Proven from the server's
//! store itself: the plaintext tables of every stored pack list each blob id
//! at most once, so no chunk was uploaded twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use stowage_e2e::agent::Tenant;
use stowage_e2e::compare::{Checks, assert_identical};
use stowage_e2e::fixture;
use stowage_e2e::server::{Backend, StoredPack, TestServer, pack_id_of};
use stowage_e2e::{on_both_backends, restored_root};
use stowage_protocol::ids::PackId;

/// Size of the source: several packs' worth, slow to upload at the limit.
const FILES: u64 = 4;
const FILE_SIZE: u64 = 40 * 1024 * 1024;

fn a_backup_killed_midway_resumes_without_uploading_any_chunk_twice(backend: Backend) {
    // Arrange: 160 MiB of incompressible data, and a backup throttled to
    // 16 MB/s so it is still running when the first packs are stored.
    let Some(server) = TestServer::start(backend, "resume") else {
        return;
    };
    let tenant = Tenant::create(&server, "Resume");
    let agent = tenant.enroll("resume-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    std::fs::create_dir(&root).unwrap();
    for i in 0..FILES {
        fixture::write_random(
            &root.join(format!("part-{i}.bin")),
            &format!("resume-{i}"),
            FILE_SIZE,
        );
    }
    let mut first = agent.spawn(&[
        "backup".as_ref(),
        "--limit-upload".as_ref(),
        "16M".as_ref(),
        "--host".as_ref(),
        agent.name.as_ref(),
        root.as_os_str(),
    ]);

    // Act: SIGKILL once two packs are stored, then run the backup again.
    let deadline = Instant::now() + Duration::from_mins(5);
    while server.pack_keys().len() < 2 {
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the throttled backup ended ({status}) before two packs were stored");
        }
        assert!(
            Instant::now() < deadline,
            "no two packs stored within 300 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let stored_at_kill = settled_pack_count(&server);
    let rerun = agent.backup(&[&root]);

    // Assert
    rerun.expect_success();
    assert_eq!(agent.snapshots().len(), 1, "only the rerun committed");
    let packs = server.pack_tables();
    let mut seen = HashMap::new();
    for pack in &packs {
        for entry in &pack.blobs {
            if let Some(other) = seen.insert(entry.id, pack.id) {
                panic!(
                    "blob {} is stored twice, in pack {other} and in pack {}: the rerun \
                     uploaded again what the killed run had stored",
                    entry.id, pack.id
                );
            }
        }
    }
    let data: u64 = packs
        .iter()
        .flat_map(StoredPack::data_blobs)
        .map(|entry| u64::from(entry.length))
        .sum();
    assert!(
        data < FILES * FILE_SIZE + FILES * FILE_SIZE / 20,
        "{data} bytes of data stored for {} bytes of source",
        FILES * FILE_SIZE
    );
    assert!(stored_at_kill >= 2);
    let target = work.path().join("target");
    agent.restore("latest", &target).expect_success();
    assert_identical(
        &root,
        &restored_root(&target, &root),
        Checks {
            owners: false,
            xattrs: false,
        },
    );
}

/// The number of packs stored once every stored pack is indexed and none
/// has appeared for two seconds. A pack the killed agent had sent whole is
/// still stored and indexed after the kill (the server finishes what it
/// received); a rerun that asked about its chunks before then would rightly
/// upload them again, which is not what this test is about.
fn settled_pack_count(server: &TestServer) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    // The stored count last seen, and since when it has not changed.
    let (mut count, mut since) = (usize::MAX, Instant::now());
    loop {
        let stored: HashSet<PackId> = server.pack_keys().iter().map(pack_id_of).collect();
        let indexed: HashSet<PackId> = server.indexed_pack_ids().into_iter().collect();
        if stored.len() != count {
            (count, since) = (stored.len(), Instant::now());
        } else if stored.is_subset(&indexed) && since.elapsed() >= Duration::from_secs(2) {
            return stored.len();
        }
        assert!(
            Instant::now() < deadline,
            "the server's stored packs did not settle within 30 s of the kill: {} stored, {} indexed",
            stored.len(),
            indexed.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

on_both_backends!(a_backup_killed_midway_resumes_without_uploading_any_chunk_twice);
