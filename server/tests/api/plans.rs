//! Plans and jobs: `plan create|list|run` and `jobs` through the real
//! binary on SQLite, and the job table's one-job-per-slot guarantee on
//! SQLite and PostgreSQL.

use std::path::Path;

use serde_json::Value;
use stowage_protocol::ids::{AgentId, TenantId};
use stowage_server::db::agents::{self, NewAgent};
use stowage_server::db::{jobs, plans, tenants};
use stowage_server::domain::{PlanInput, PlanSpec, TenantName};

use crate::admin_cli::{create_tenant, database, run, text};
use crate::helpers::TestApp;

/// A tenant "Acme" with agents `names`, made through the binary and the db layer.
async fn tenant_with_agents(dir: &Path, names: &[&str]) -> TenantId {
    let output = create_tenant(dir, "Acme");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let tenant: TenantId = text(&output.stdout).trim().parse().unwrap();
    let db = database(dir).await;
    for name in names {
        add_agent(&db, tenant, name).await;
    }
    db.close().await;
    tenant
}

async fn add_agent(db: &stowage_server::db::Database, tenant: TenantId, name: &str) -> AgentId {
    let hash = format!("hash-of-{name}-{}", crate::helpers::random_hex());
    agents::insert(
        db,
        tenant,
        NewAgent {
            id: AgentId::random(),
            name,
            hostname: "host",
            credential_hash: &hash,
        },
    )
    .await
    .unwrap()
    .id
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    run(dir, args, &[], "")
}

fn json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

const CREATE: &[&str] = &[
    "plan",
    "create",
    "--tenant",
    "Acme",
    "--name",
    "nightly",
    "--agent",
    "web-1",
    "--agent",
    "web-2",
    "--path",
    "/etc",
    "--path",
    "/srv",
    "--exclude",
    "*.tmp",
    "--schedule",
    "30 2 * * *",
    "--timezone",
    "Europe/Berlin",
    "--keep-daily",
    "7",
    "--keep-weekly",
    "4",
    "--rpo",
    "24h",
    "--rto",
    "4h",
    "--restore-test-every",
    "7d",
];

#[tokio::test]
async fn a_created_plan_is_listed_with_its_agents_and_spec() {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_agents(dir.path(), &["web-1", "web-2"]).await;

    let created = cli(dir.path(), CREATE);
    let listed = json(&cli(
        dir.path(),
        &["plan", "list", "--tenant", "Acme", "--json"],
    ));
    let table = cli(dir.path(), &["plan", "list", "--tenant", "Acme"]);

    assert!(created.status.success(), "{}", text(&created.stderr));
    let id = text(&created.stdout).trim().to_owned();
    assert_eq!(id.len(), 32);
    let plan = &listed.as_array().unwrap()[0];
    assert_eq!(plan["id"], id.as_str());
    assert_eq!(plan["name"], "nightly");
    assert_eq!(plan["agents"], serde_json::json!(["web-1", "web-2"]));
    assert_eq!(
        plan["sources"],
        serde_json::json!({ "paths": ["/etc", "/srv"] })
    );
    assert_eq!(plan["excludes"], serde_json::json!(["*.tmp"]));
    assert_eq!(plan["schedule"], "30 2 * * *");
    assert_eq!(plan["timezone"], "Europe/Berlin");
    assert_eq!(plan["retention"]["keep_daily"], 7);
    assert_eq!(plan["retention"]["keep_last"], Value::Null);
    assert_eq!(plan["rpo_seconds"], 86_400);
    assert_eq!(plan["restore_test_every_seconds"], 7 * 86_400);
    let table = text(&table.stdout);
    assert!(table.starts_with("NAME     SCHEDULE"), "{table}");
    assert!(table.contains("web-1,web-2"), "{table}");
}

#[tokio::test]
async fn a_command_source_plan_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_agents(dir.path(), &["db-1"]).await;

    let created = cli(
        dir.path(),
        &[
            "plan",
            "create",
            "--tenant",
            "Acme",
            "--name",
            "pg",
            "--agent",
            "db-1",
            "--command",
            "pg_dumpall",
            "--stdin-name",
            "all.sql",
            "--schedule",
            "0 * * * *",
        ],
    );
    let listed = json(&cli(
        dir.path(),
        &["plan", "list", "--tenant", "Acme", "--json"],
    ));

    assert!(created.status.success(), "{}", text(&created.stderr));
    assert_eq!(
        listed[0]["sources"],
        serde_json::json!({ "command": { "command": "pg_dumpall", "stdin_name": "all.sql" } })
    );
}

/// `CREATE` changed by `change` — an option and value replace the first
/// value of that option (or are appended), a lone option is removed with
/// every value — run after `setup`, expecting exit code 1, `message` on stderr and no plan.
async fn refused(setup: &[&str], change: &[&str], message: &str) {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_agents(dir.path(), &["web-1", "web-2"]).await;
    if !setup.is_empty() {
        assert!(cli(dir.path(), setup).status.success());
    }
    let mut args: Vec<&str> = CREATE.to_vec();
    for pair in change.chunks(2) {
        match args.iter().position(|a| *a == pair[0]) {
            Some(at) if pair.len() == 2 => args[at + 1] = pair[1],
            Some(_) => {
                while let Some(at) = args.iter().position(|a| *a == pair[0]) {
                    args.drain(at..at + 2);
                }
            }
            None => args.extend_from_slice(pair),
        }
    }

    let output = cli(dir.path(), &args);

    assert_eq!(output.status.code(), Some(1), "{change:?}");
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert!(stderr.contains(message), "{change:?}: {stderr}");
    let listed = json(&cli(
        dir.path(),
        &["plan", "list", "--tenant", "Acme", "--json"],
    ));
    let expected = usize::from(!setup.is_empty());
    assert_eq!(listed.as_array().unwrap().len(), expected, "{change:?}");
}

#[tokio::test]
async fn each_invalid_input_is_refused_with_its_message_and_creates_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--schedule", "every night"],
            "\"every night\" is not a cron schedule",
        ),
        (
            &["--timezone", "Mars/Base"],
            "\"Mars/Base\" is not a time zone",
        ),
        (&["--schedule", "0 9 * * 1-5"], "leaves 72h between backups"),
        (&["--schedule", "0 9 * * 1-5"], "longer than the RPO of 24h"),
        (
            &["--agent", "db-9"],
            "tenant \"Acme\": there is no agent named \"db-9\"",
        ),
        (&["--path"], "give --path"),
        (
            &["--command", "pg_dumpall", "--stdin-name", "a.sql"],
            "not both",
        ),
        (
            &["--keep-daily", "0"],
            "--keep-daily must be a count from 1",
        ),
        (
            &["--keep-weekly", "-2"],
            "--keep-weekly must be a count from 1",
        ),
        (&["--rpo", "soon"], "--rpo: \"soon\" is not a duration"),
        (
            &["--path", "relative/dir"],
            "\"relative/dir\" is not an absolute path",
        ),
        (
            &["--tenant", "Initech"],
            "there is no tenant named \"Initech\"",
        ),
    ];
    for (change, message) in cases {
        refused(&[], change, message).await;
    }
}

#[tokio::test]
async fn a_duplicate_plan_name_in_the_tenant_is_refused() {
    refused(
        CREATE,
        &[],
        "tenant \"Acme\": there is already a plan named \"nightly\"",
    )
    .await;
}

#[tokio::test]
async fn plan_run_queues_one_job_per_agent_and_jobs_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_agents(dir.path(), &["web-1", "web-2"]).await;
    assert!(cli(dir.path(), CREATE).status.success());

    let ran = cli(dir.path(), &["plan", "run", "--tenant", "Acme", "nightly"]);
    let listed = json(&cli(dir.path(), &["jobs", "--tenant", "Acme", "--json"]));
    let table = text(&cli(dir.path(), &["jobs", "--tenant", "Acme"]).stdout);

    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let mut printed: Vec<String> = text(&ran.stdout).lines().map(str::to_owned).collect();
    assert_eq!(printed.len(), 2);
    let jobs = listed.as_array().unwrap();
    let mut listed_ids: Vec<String> = jobs
        .iter()
        .map(|job| {
            assert_eq!(job["plan"], "nightly");
            assert_eq!(job["kind"], "backup");
            assert_eq!(job["trigger"], "run_now");
            assert_eq!(job["state"], "queued");
            assert_eq!(job["slot_at"], Value::Null);
            job["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut agents: Vec<&str> = jobs.iter().map(|j| j["agent"].as_str().unwrap()).collect();
    agents.sort_unstable();
    assert_eq!(agents, ["web-1", "web-2"]);
    printed.sort();
    listed_ids.sort();
    assert_eq!(printed, listed_ids);
    assert!(table.contains("queued"), "{table}");
}

#[test]
fn running_an_unknown_plan_names_it() {
    let dir = tempfile::tempdir().unwrap();
    assert!(create_tenant(dir.path(), "Acme").status.success());

    let output = cli(dir.path(), &["plan", "run", "--tenant", "Acme", "weekly"]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("tenant \"Acme\": there is no plan named \"weekly\""),
        "{}",
        text(&output.stderr)
    );
}

async fn a_schedule_slot_yields_one_job_however_often_it_is_inserted(app: &TestApp) {
    // Arrange
    let db = &app.database;
    let name = format!("slots-{}", crate::helpers::random_hex());
    let tenant = tenants::insert(db, &TenantName::parse(&name).unwrap())
        .await
        .unwrap()
        .id;
    let agent = add_agent(db, tenant, "web-1").await;
    let input = PlanInput {
        name: "nightly".to_owned(),
        paths: vec!["/etc".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        ..PlanInput::default()
    };
    let spec = PlanSpec::parse(&input, chrono::Utc::now()).unwrap();
    let plan = plans::insert(db, tenant, &spec, &[agent]).await.unwrap();
    let slot = "2027-01-02T02:00:00Z".parse().unwrap();
    let next = "2027-01-03T02:00:00Z".parse().unwrap();

    // Act
    let first = jobs::insert_scheduled(db, tenant, plan, agent, slot)
        .await
        .unwrap();
    let again = jobs::insert_scheduled(db, tenant, plan, agent, slot)
        .await
        .unwrap();
    let other = jobs::insert_scheduled(db, tenant, plan, agent, next)
        .await
        .unwrap();

    // Assert
    assert!(first);
    assert!(!again);
    assert!(other);
    let listed = jobs::list_recent(db, tenant, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    let mut slots: Vec<_> = listed.iter().map(|job| job.slot_at.unwrap()).collect();
    slots.sort();
    assert_eq!(slots, [slot, next]);
    assert!(listed.iter().all(|job| job.trigger == "schedule"));
}

async fn run_now_jobs_never_conflict_and_list_with_names(app: &TestApp) {
    let db = &app.database;
    let name = format!("runnow-{}", crate::helpers::random_hex());
    let tenant = tenants::insert(db, &TenantName::parse(&name).unwrap())
        .await
        .unwrap()
        .id;
    let a = add_agent(db, tenant, "a").await;
    let b = add_agent(db, tenant, "b").await;
    let input = PlanInput {
        name: "hourly".to_owned(),
        paths: vec!["/srv".to_owned()],
        schedule: "0 * * * *".to_owned(),
        ..PlanInput::default()
    };
    let spec = PlanSpec::parse(&input, chrono::Utc::now()).unwrap();
    let plan = plans::insert(db, tenant, &spec, &[a, b]).await.unwrap();

    let first = jobs::enqueue_run_now(db, tenant, plan).await.unwrap();
    let second = jobs::enqueue_run_now(db, tenant, plan).await.unwrap();

    assert_eq!((first.len(), second.len()), (2, 2));
    let listed = jobs::list_recent(db, tenant, 3).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|job| job.plan.as_deref() == Some("hourly"))
    );
    let stored = plans::get_by_name(db, tenant, "hourly").await.unwrap();
    assert_eq!(stored.agents, ["a", "b"]);
    assert_eq!(stored.schedule, "0 * * * *");
}

on_sqlite_and_postgres!(plans_and_jobs_on_postgres:
    a_schedule_slot_yields_one_job_however_often_it_is_inserted,
    run_now_jobs_never_conflict_and_list_with_names,
);

#[tokio::test]
async fn a_plan_is_updated_renamed_and_deleted_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_agents(dir.path(), &["web-1", "web-2"]).await;
    assert!(cli(dir.path(), CREATE).status.success());
    let update = [
        "plan",
        "update",
        "--tenant",
        "Acme",
        "--name",
        "nightly",
        "--rename",
        "hourly",
        "--agent",
        "web-1",
        "--path",
        "/srv",
        "--schedule",
        "0 * * * *",
    ];
    let updated = cli(dir.path(), &update);
    let listed = json(&cli(
        dir.path(),
        &["plan", "list", "--tenant", "Acme", "--json"],
    ));
    let deleted = cli(
        dir.path(),
        &["plan", "delete", "--tenant", "Acme", "hourly"],
    );
    let again = cli(
        dir.path(),
        &["plan", "delete", "--tenant", "Acme", "hourly"],
    );
    let after = json(&cli(
        dir.path(),
        &["plan", "list", "--tenant", "Acme", "--json"],
    ));

    assert!(updated.status.success(), "{}", text(&updated.stderr));
    let plan = &listed.as_array().unwrap()[0];
    assert_eq!(
        (&plan["name"], &plan["schedule"], &plan["agents"]),
        (
            &Value::from("hourly"),
            &Value::from("0 * * * *"),
            &serde_json::json!(["web-1"])
        )
    );
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("there is no plan named \"hourly\""));
    assert_eq!(after, serde_json::json!([]));
}

#[tokio::test]
async fn restores_and_verifications_are_queued_for_a_chosen_agent_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = tenant_with_agents(dir.path(), &["web-1", "web-2"]).await;
    assert!(cli(dir.path(), CREATE).status.success());
    let db = database(dir.path()).await;
    let web1 = agents::list(&db, tenant).await.unwrap()[0].id;
    let snapshot = stowage_protocol::ids::SnapshotId::from_bytes([9; 32]);
    let new = stowage_server::db::snapshots::NewSnapshot {
        id: snapshot,
        agent_id: web1,
        record: "{}",
        root: stowage_protocol::ids::BlobId::from_bytes([7; 32]),
        hostname: "web-1",
        plan_id: None,
        started_at: chrono::Utc::now(),
        finished_at: chrono::Utc::now(),
    };
    stowage_server::db::snapshots::insert(&db, tenant, new)
        .await
        .unwrap();
    db.close().await;
    let id = snapshot.to_hex();
    let restore = |target: &str| {
        cli(
            dir.path(),
            &[
                "restore",
                "--tenant",
                "Acme",
                "--snapshot",
                &id,
                "--agent",
                "web-2",
                "--target",
                target,
                "--path",
                "/etc",
            ],
        )
    };

    let restored = restore("/srv/restore");
    let relative = restore("restore");
    let verified = cli(
        dir.path(),
        &[
            "verify",
            "--tenant",
            "Acme",
            "--snapshot",
            &id,
            "--agent",
            "web-1",
            "--read-data",
        ],
    );
    let untested = cli(dir.path(), &["plan", "test", "--tenant", "Acme", "nightly"]);
    let listed = json(&cli(dir.path(), &["jobs", "--tenant", "Acme", "--json"]));

    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert_eq!(relative.status.code(), Some(1));
    assert!(text(&relative.stderr).contains("\"restore\" is not an absolute directory"));
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert_eq!(untested.status.code(), Some(1));
    assert!(
        text(&untested.stderr).contains("plan \"nightly\" has no snapshot to rehearse yet"),
        "{}",
        text(&untested.stderr)
    );
    let kinds: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["kind"].as_str().unwrap(),
                job["agent"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("verify", "web-1"), ("restore", "web-2")]);
}

#[tokio::test]
async fn api_keys_are_created_shown_once_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_agents(dir.path(), &["web-1"]).await;
    let create = |name: &str, role: &str| {
        cli(
            dir.path(),
            &[
                "api-key", "create", "--tenant", "Acme", "--name", name, "--role", role,
            ],
        )
    };

    let created = create("terraform", "operator");
    let bad_role = create("boss", "boss");
    let revoked = cli(
        dir.path(),
        &["api-key", "revoke", "--tenant", "Acme", "terraform"],
    );
    let listed = cli(dir.path(), &["api-key", "list", "--tenant", "Acme"]);
    let agents = json(&cli(dir.path(), &["agents", "--tenant", "Acme", "--json"]));

    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).starts_with("sk_"));
    assert_eq!(bad_role.status.code(), Some(1));
    assert!(text(&bad_role.stderr).contains("\"boss\" is not a role"));
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let table = text(&listed.stdout);
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with("terraform") && row.contains("operator"),
        "{table}"
    );
    assert_eq!(
        row.split_whitespace().count(),
        7,
        "created and revoked times: {table}"
    );
    assert!(
        !table.contains(text(&created.stdout).trim()),
        "the key is never shown again"
    );
    assert_eq!(
        (&agents[0]["name"], &agents[0]["state"]),
        (&Value::from("web-1"), &Value::from("offline"))
    );
}

#[tokio::test]
async fn retention_is_previewed_applied_and_held_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = tenant_with_agents(dir.path(), &["web-1"]).await;
    let create = [
        "plan",
        "create",
        "--tenant",
        "Acme",
        "--name",
        "nightly",
        "--agent",
        "web-1",
        "--path",
        "/etc",
        "--schedule",
        "30 2 * * *",
        "--keep-last",
        "1",
    ];
    assert!(cli(dir.path(), &create).status.success());
    let db = database(dir.path()).await;
    let web1 = agents::list(&db, tenant).await.unwrap()[0].id;
    let plan = plans::list(&db, tenant).await.unwrap()[0].id;
    let mut ids = Vec::new();
    for day in 1..=3u8 {
        let id = stowage_protocol::ids::SnapshotId::from_bytes([day; 32]);
        let time =
            chrono::DateTime::from_timestamp(1_800_000_000 + i64::from(day) * 86_400, 0).unwrap();
        let new = stowage_server::db::snapshots::NewSnapshot {
            id,
            agent_id: web1,
            record: "{}",
            root: stowage_protocol::ids::BlobId::from_bytes([7; 32]),
            hostname: "web-1",
            plan_id: Some(plan),
            started_at: time,
            finished_at: time,
        };
        stowage_server::db::snapshots::insert(&db, tenant, new)
            .await
            .unwrap();
        ids.push(id.to_hex());
    }
    db.close().await;

    let pinned = cli(
        dir.path(),
        &[
            "snapshot", "pin", "--tenant", "Acme", "--reason", "audit", &ids[0],
        ],
    );
    let preview = json(&cli(
        dir.path(),
        &["retention", "preview", "--tenant", "Acme", "--json"],
    ));
    let table = text(&cli(dir.path(), &["retention", "preview", "--tenant", "Acme"]).stdout);
    let applied = cli(dir.path(), &["retention", "apply", "--tenant", "Acme"]);
    let forget_pinned = cli(
        dir.path(),
        &["snapshot", "forget", "--tenant", "Acme", &ids[0]],
    );

    assert!(pinned.status.success(), "{}", text(&pinned.stderr));
    let keep: Vec<bool> = preview
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["keep"].as_bool().unwrap())
        .collect();
    assert_eq!(keep, [true, false, true], "{preview}");
    assert!(
        table.contains("forget") && table.contains("pinned"),
        "{table}"
    );
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert_eq!(text(&applied.stdout).trim(), ids[1]);
    assert!(text(&applied.stderr).contains("forgot 1 snapshot(s), kept 2"));
    assert_eq!(forget_pinned.status.code(), Some(1));
    assert!(text(&forget_pinned.stderr).contains("is pinned (audit"));
}
