//! Damage in the server's storage is found and named: one pack with a
//! flipped bit and one pack deleted outright are reported by
//! `verify --read-data` and by `restore` (non-zero exit, the pack named),
//! and the restore still writes every undamaged file — and no damaged file
//! as if it were good.

use std::path::{Path, PathBuf};

use stowage_e2e::agent::{Agent, Tenant};
use stowage_e2e::fixture;
use stowage_e2e::server::{Backend, StoredPack, TestServer};
use stowage_e2e::{on_both_backends, restored_root};
use stowage_protocol::ids::PackId;

fn a_flipped_bit_and_a_deleted_pack_are_reported_and_the_rest_restores(backend: Backend) {
    // Arrange: one small file backed up first, so its chunks sit in packs of
    // their own that the damage below never touches (the upload pipeline
    // mixes the chunks of files read at the same time into shared packs);
    // then five 12 MiB files of random data fill several data-only packs.
    let Some(server) = TestServer::start(backend, "corruption") else {
        return;
    };
    let tenant = Tenant::create(&server, "Corruption");
    let agent = tenant.enroll("corruption-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    std::fs::create_dir(&root).unwrap();
    let untouched = root.join("untouched.bin");
    fixture::write_random(&untouched, "corrupt-untouched", 2 * 1024 * 1024);
    agent.backup(&[&root]).expect_success();
    let earlier: Vec<PackId> = server
        .pack_tables()
        .into_iter()
        .map(|pack| pack.id)
        .collect();
    let mut files: Vec<PathBuf> = (0..5)
        .map(|i| {
            let path = root.join(format!("file-{i}.bin"));
            fixture::write_random(&path, &format!("corrupt-{i}"), 12 * 1024 * 1024);
            path
        })
        .collect();
    files.push(untouched);
    agent.backup(&[&root]).expect_success();
    agent
        .run(&["verify", "--read-data", "--host", &agent.name])
        .expect_success();
    let data_only: Vec<StoredPack> = server
        .pack_tables()
        .into_iter()
        .filter(|pack| pack.data_blobs().count() == pack.blobs.len())
        .filter(|pack| !earlier.contains(&pack.id))
        .collect();
    assert!(
        data_only.len() >= 2,
        "the backup made {} data-only packs; the test needs two",
        data_only.len()
    );
    let (flipped, deleted) = (&data_only[0], &data_only[1]);

    // Act and assert, twice: first with one bit flipped in one pack, then
    // (that pack repaired) with another pack deleted. Each round both
    // commands must fail and name the damaged pack; one damage per round,
    // since a restore that gave up on a file need not read its other packs.
    let original = server.read_object(&flipped.key).to_vec();
    let mut bytes = original.clone();
    let first = &flipped.blobs[0];
    bytes[first.offset as usize + first.length as usize / 2] ^= 0x10;
    server.write_object(&flipped.key, bytes);
    check_round(
        &agent,
        &work.path().join("target-1"),
        &root,
        &files,
        flipped,
        "flipped",
    );

    server.write_object(&flipped.key, original);
    server.delete_object(&deleted.key);
    check_round(
        &agent,
        &work.path().join("target-2"),
        &root,
        &files,
        deleted,
        "deleted",
    );
}

/// Runs `verify --read-data` and a restore into `target`: both must fail and
/// name `damaged`; every file restored must be intact, at least one must be,
/// and every file not restored must be named.
fn check_round(
    agent: &Agent,
    target: &Path,
    root: &Path,
    files: &[PathBuf],
    damaged: &StoredPack,
    damage: &str,
) {
    let hex = damaged.id.to_hex();
    let verify = agent.run(&["verify", "--read-data", "--host", &agent.name]);
    let restore = agent.restore("latest", target);
    for (what, run) in [("verify --read-data", &verify), ("restore", &restore)] {
        assert_ne!(run.code, Some(0), "{what} passed over a {damage} pack");
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(
            output.contains(hex.as_str()) || output.contains(&hex[..16]),
            "{what} does not name the {damage} pack {hex}:\n{output}"
        );
    }
    let copy = restored_root(target, root);
    let mut intact = 0;
    let mut missing = Vec::new();
    for path in files {
        let name = path.file_name().unwrap();
        let restored = copy.join(name);
        match std::fs::read(&restored) {
            Ok(bytes) if bytes == std::fs::read(path).unwrap() => intact += 1,
            Ok(_) => panic!(
                "{} was restored with wrong content instead of being reported ({damage} pack)",
                restored.display()
            ),
            Err(_) => missing.push(name.to_string_lossy().into_owned()),
        }
    }
    assert!(
        intact >= 1,
        "no undamaged file was restored ({damage} pack)"
    );
    assert!(
        !missing.is_empty(),
        "every file restored despite a {damage} pack"
    );
    for name in &missing {
        assert!(
            restore.stderr.contains(name.as_str()) || restore.stdout.contains(name.as_str()),
            "restore does not name the damaged file {name}:\n{}",
            restore.stderr
        );
    }
}

on_both_backends!(a_flipped_bit_and_a_deleted_pack_are_reported_and_the_rest_restores);
