//! Incremental backups through the real server: a second backup of an
//! unchanged tree uploads no data, and after changing about 1% of the files
//! only the changed chunks go up. Both are checked twice: by the agent's own
//! counters (the `--json` summary and the committed snapshot's summary) and
//! by the packs that actually appeared in the server's object store. And a
//! cache that names chunks the server no longer holds costs one refused
//! run and a re-read, never a snapshot that cannot be restored.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use stowage_e2e::agent::{Agent, Tenant};
use stowage_e2e::fixture::{self, Options};
use stowage_e2e::on_both_backends;
use stowage_e2e::server::{Backend, StoredPack, TestServer, new_packs};

/// The newest snapshot's summary, as `snapshots --json` shows it.
fn latest_summary(agent: &Agent) -> serde_json::Value {
    let snapshots = agent.snapshots();
    snapshots
        .first()
        .expect("a snapshot was committed")
        .pointer("/record/summary")
        .expect("the snapshot has a summary")
        .clone()
}

fn counter(summary: &serde_json::Value, name: &str) -> u64 {
    summary[name]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no counter {name}: {summary}"))
}

fn data_bytes(packs: &[StoredPack]) -> u64 {
    packs
        .iter()
        .flat_map(StoredPack::data_blobs)
        .map(|entry| u64::from(entry.length))
        .sum()
}

fn a_second_backup_without_changes_uploads_no_data_packs(backend: Backend) {
    // Arrange: the full fixture (without the big file), backed up once.
    let Some(server) = TestServer::start(backend, "no-change") else {
        return;
    };
    let tenant = Tenant::create(&server, "NoChange");
    let agent = tenant.enroll("no-change-host");
    let work = tempfile::tempdir().unwrap();
    let source = fixture::build(&work.path().join("source"), Options::default());
    agent.backup(&[&source.root]).expect_success();
    let before = server.pack_tables();

    // Act
    let second = agent.backup(&[&source.root]);

    // Assert
    second.expect_success();
    let added = new_packs(&before, &server.pack_tables());
    let data: Vec<_> = added.iter().flat_map(StoredPack::data_blobs).collect();
    assert!(
        data.is_empty(),
        "the unchanged backup uploaded {} data blobs in {} new packs",
        data.len(),
        added.len()
    );
    let summary = latest_summary(&agent);
    assert_eq!(agent.snapshots().len(), 2, "both backups committed");
    assert_eq!(counter(&summary, "bytes_added"), 0, "{summary}");
    assert_eq!(
        counter(&summary, "bytes_read"),
        0,
        "unchanged files were read again: {summary}"
    );
    assert!(counter(&summary, "files") > 100, "{summary}");
    let report = second.json();
    assert_eq!(
        counter(&report["upload"], "data_packs_uploaded"),
        0,
        "{report}"
    );
    assert_eq!(counter(&report["upload"], "chunks_new"), 0, "{report}");
}

fn after_changing_one_percent_of_the_files_only_the_changed_chunks_go_up(backend: Backend) {
    // Arrange: 300 small files and one 48 MiB file, backed up once.
    let Some(server) = TestServer::start(backend, "one-percent") else {
        return;
    };
    let tenant = Tenant::create(&server, "OnePercent");
    let agent = tenant.enroll("one-percent-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    let small = fixture::many_files(&root.join("small"), "small", 300, 0);
    let big = root.join("big.bin");
    fixture::write_random(&big, "big", 48 * 1024 * 1024);
    let total: u64 = small
        .iter()
        .chain([&big])
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum();
    agent.backup(&[&root]).expect_success();
    let before = server.pack_tables();

    // Act: rewrite 2 small files, and 4 KiB in the middle of the big one
    // (3 files of 301: 1%).
    let mut changed = 0;
    for path in [&small[17], &small[211]] {
        fixture::rewrite_in_place(path, "changed");
        changed += std::fs::metadata(path).unwrap().len();
    }
    {
        let mut file = OpenOptions::new().write(true).open(&big).unwrap();
        file.seek(SeekFrom::Start(20 * 1024 * 1024 + 333)).unwrap();
        file.write_all(&[0x5a; 4096]).unwrap();
    }
    let second = agent.backup(&[&root]);

    // Assert
    second.expect_success();
    let added = new_packs(&before, &server.pack_tables());
    let uploaded = data_bytes(&added);
    let data_blobs = added.iter().flat_map(StoredPack::data_blobs).count();
    // The two small files are one chunk each; the 4 KiB edit touches the
    // chunk it falls in and at most its neighbours (content-defined
    // boundaries resynchronise right after the edit).
    assert!(
        (3..=5).contains(&data_blobs),
        "{data_blobs} data blobs went up for 2 rewritten small files and one 4 KiB edit"
    );
    let max_chunk = 8 * 1024 * 1024;
    assert!(
        uploaded >= changed && uploaded <= changed + 2 * max_chunk,
        "{uploaded} bytes of data went up for {changed} bytes of rewritten files and a 4 KiB \
         edit in a {total}-byte tree"
    );
    assert!(
        uploaded < total / 3,
        "{uploaded} of {total} bytes went up again"
    );
    let summary = latest_summary(&agent);
    assert!(counter(&summary, "blobs_added") >= 3, "{summary}");
    assert!(
        counter(&summary, "bytes_read") <= changed + 48 * 1024 * 1024,
        "unchanged files were read again: {summary}"
    );
    assert!(
        counter(&summary, "bytes_added") <= changed + 2 * max_chunk,
        "{summary}"
    );
    let report = second.json();
    let upload = &report["upload"];
    assert_eq!(
        counter(upload, "chunks_new"),
        data_blobs as u64,
        "the agent's count of new chunks differs from the store's: {report}"
    );
    assert_eq!(
        counter(upload, "bytes_new"),
        counter(&summary, "bytes_added"),
        "{report}"
    );
}

on_both_backends!(
    a_second_backup_without_changes_uploads_no_data_packs,
    after_changing_one_percent_of_the_files_only_the_changed_chunks_go_up,
    a_cache_naming_chunks_the_server_lost_is_dropped_and_the_next_run_reads_again,
);

fn a_cache_naming_chunks_the_server_lost_is_dropped_and_the_next_run_reads_again(backend: Backend) {
    // Arrange: two files backed up once; then the server loses the chunk of
    // the one that will stay unchanged (as a collection would), and the other
    // one changes, so the next backup takes the lost chunk from its cache.
    let Some(server) = TestServer::start(backend, "stale-cache") else {
        return;
    };
    let tenant = Tenant::create(&server, "StaleCache");
    let agent = tenant.enroll("stale-cache-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    std::fs::create_dir_all(&root).unwrap();
    fixture::write_random(&root.join("changes.bin"), "changes", 40_000);
    fixture::write_random(&root.join("stays.bin"), "stays", 50_000);
    agent.backup(&[&root]).expect_success();
    let stays = std::fs::read(root.join("stays.bin")).unwrap();
    server.forget_blob(&agent.context().keys.id_key().chunk_id(&stays));
    fixture::rewrite_in_place(&root.join("changes.bin"), "changed");

    // Act
    let refused = agent.backup(&[&root]);
    let retried = agent.backup(&[&root]);

    // Assert: the first run names the problem and drops the cache; the
    // second reads both files, uploads the lost chunk again and restores.
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("not stored")
            && refused
                .stderr
                .contains("the local cache named chunks the server no longer holds"),
        "{}",
        refused.stderr
    );
    retried.expect_success();
    let report = retried.json();
    assert_eq!(counter(&report, "files"), 2, "{report}");
    assert_eq!(counter(&report, "files_unchanged"), 0, "{report}");
    assert_eq!(
        agent.snapshots().len(),
        2,
        "the refused snapshot was not committed"
    );
    let target = work.path().join("restored");
    agent.restore("latest", &target).expect_success();
    let restored = target.join(root.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored.join("stays.bin")).unwrap(), stays);
}
