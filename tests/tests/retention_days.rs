//! Sixty simulated days of daily backups (the agent's `--time` sets each
//! snapshot's day) under a keep-daily 7 / weekly 4 / monthly 6 policy,
//! with the real agent and server: the snapshots that remain are exactly
//! the ones the policy table names, garbage collection then deletes the
//! forgotten days' packs (objects included), stored bytes come back to
//! within 10% of the bytes the remaining snapshots reference, and every
//! remaining snapshot still verifies with its data read.

use chrono::{Duration as TimeDelta, TimeZone, Utc};
use stowage_e2e::agent::Tenant;
use stowage_e2e::server::{Backend, TestServer};

/// The first simulated day, a Monday; the sixtieth is 2027-03-04.
fn day(n: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 4, 2, 0, 0).unwrap() + TimeDelta::days(n)
}

fn sixty_days_of_daily_backups_leave_exactly_the_policy_table(backend: Backend) {
    // Arrange: a daily plan; each day's backup has one file of its own.
    let Some(server) = TestServer::start(backend, "sixty_days") else {
        return;
    };
    let tenant = Tenant::create(&server, "Sixty");
    let agent = tenant.enroll("sixty-host");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("source");
    std::fs::create_dir(&root).unwrap();
    let root_arg = root.to_str().unwrap().to_owned();
    server.admin(&[
        "plan",
        "create",
        "--tenant",
        "Sixty",
        "--name",
        "daily",
        "--agent",
        "sixty-host",
        "--path",
        &root_arg,
        "--schedule",
        "0 2 * * *",
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "6",
    ]);
    for n in 0..60i64 {
        let mut content = vec![0u8; 256 * 1024];
        blake3::Hasher::new()
            .update(&n.to_le_bytes())
            .finalize_xof()
            .fill(&mut content);
        std::fs::write(root.join("today.bin"), content).unwrap();
        let time = day(n).to_rfc3339();
        agent
            .run(&["backup", "--host", "sixty-host", "--time", &time, &root_arg])
            .expect_success();
    }
    let plans: serde_json::Value =
        serde_json::from_str(&server.admin(&["plan", "list", "--tenant", "Sixty", "--json"]))
            .unwrap();
    let plan = plans[0]["id"].as_str().unwrap();
    // The backups ran by hand, as a plan's would: record them as the plan's.
    server.execute_sql(&format!("UPDATE snapshots SET plan_id = '{plan}'"));

    let stored_before = server.query_number("SELECT CAST(SUM(size) AS BIGINT) FROM packs");
    let objects_before = server.pack_keys().len();

    // Act
    server.admin(&["retention", "apply", "--tenant", "Sixty"]);
    let report: serde_json::Value =
        serde_json::from_str(&server.admin(&["gc", "--tenant", "Sixty", "--json"])).unwrap();

    // Assert: 7 days; ISO weeks 2027-W07 and W06 (W09 and W08 are
    // already kept); months March, February, January; and, as restic
    // does, the oldest snapshot because monthly still had 3 of 6 left.
    let mut left: Vec<String> = agent
        .snapshots()
        .iter()
        .map(|s| s["record"]["started_at"].as_str().unwrap()[..10].to_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "2027-01-04",
            "2027-01-31",
            "2027-02-14",
            "2027-02-21",
            "2027-02-26",
            "2027-02-27",
            "2027-02-28",
            "2027-03-01",
            "2027-03-02",
            "2027-03-03",
            "2027-03-04",
        ]
    );
    let stored = server.query_number("SELECT CAST(SUM(size) AS BIGINT) FROM packs");
    let live = server.query_number("SELECT CAST(SUM(length) AS BIGINT) FROM blobs");
    let deleted = report["packs_deleted"].as_u64().unwrap();
    eprintln!("stored bytes: {stored_before} before, {stored} after gc, for {live} live bytes");
    assert!(deleted >= 49, "{report}");
    assert_eq!(report["partly_dead_packs"], 0, "{report}");
    assert!(
        stored * 10 <= live * 11,
        "after gc {stored} bytes are stored for {live} live bytes (before: {stored_before}): {report}"
    );
    assert_eq!(
        server.pack_keys().len() as u64,
        objects_before as u64 - deleted,
        "each deleted pack's object is gone"
    );
    agent
        .run(&["verify", "--read-data", "--host", "sixty-host"])
        .expect_success();
}

stowage_e2e::on_both_backends!(sixty_days_of_daily_backups_leave_exactly_the_policy_table);
