//! Issue 6's soak: eight agents back up changing data without pause while
//! the server applies retention every 3 s and collects garbage every 5 s,
//! for `STOWAGE_SOAK_SECONDS` (90 s by default, so CI stays fast; run it
//! with 600 for the ten minutes), and in any case until every agent
//! has committed [`MIN_BACKUPS`] backups, so that even a slow machine sees
//! retention forget and collection delete. Afterwards every snapshot that
//! remains restores byte-identical to the manifest of its source taken
//! before its backup, `stowage verify --read-data` passes for every agent,
//! and a final collection leaves no wholly dead pack, no orphan object and
//! no index row without its object.
//!
//! Each agent has its own plan (keep-last 3), so retention forgets
//! constantly; the agents share one tenant, so their common files dedup
//! and the collector must not delete a blob one agent dropped while another
//! still needs it ([`source`] says how the trees change). The agents run
//! `stowage backup` processes back to back rather than the daemon: the test
//! must know what the source held at each snapshot, and the daemon would
//! back up while the tree is being changed. Manual backups belong to no
//! plan, so after each one the test records it as its agent's plan's, as
//! the daemon's job would have (the retention pass only applies plans).
//!
//! A backup may be refused at commit because a blob its parent snapshot
//! gave it (unchanged files are not re-read) was collected after retention
//! forgot that parent. The agent's documented answer is to drop its cache
//! and ask to be run again, which then reads every file and uploads what is
//! missing; the test does exactly that once and counts such refusals. Any
//! other failure, or a second refusal, fails the test naming the agent and
//! round.

#[path = "gc_soak/source.rs"]
mod source;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use stowage_e2e::agent::{Agent, Tenant};
use stowage_e2e::server::{Backend, TestServer, pack_id_of};
use stowage_e2e::{on_both_backends, restored_root};
use stowage_protocol::ids::PackId;

use source::{Manifest, Source, differences, manifest_of};

const AGENTS: usize = 8;
/// The plans' policy: keep the newest this many snapshots per agent.
const KEEP_LAST: usize = 3;
const TENANT: &str = "Soak";
/// Backups each agent commits at least, whatever the duration: enough for
/// retention to forget two of them.
const MIN_BACKUPS: usize = KEEP_LAST + 2;

fn soak_duration() -> Duration {
    let seconds = std::env::var("STOWAGE_SOAK_SECONDS").map_or(90, |text| {
        text.parse()
            .unwrap_or_else(|_| panic!("STOWAGE_SOAK_SECONDS={text:?} is not a number of seconds"))
    });
    Duration::from_secs(seconds)
}

/// A backup the server accepted, and what its source held.
struct Committed {
    round: u32,
    snapshot: String,
    manifest: Manifest,
}

/// What one agent's loop did.
#[derive(Default)]
struct AgentLog {
    committed: Vec<Committed>,
    /// Commits refused for blobs collected meanwhile (then retried), by round.
    refused: Vec<String>,
    /// Backups that failed otherwise: each fails the test.
    failed: Vec<String>,
}

fn eight_agents_back_up_while_retention_and_gc_run(backend: Backend) {
    // Arrange: fast passes; an orphan age far above an upload's object-to-index moment.
    let Some(server) = TestServer::start_with(
        backend,
        "gc_soak",
        &[
            ("STOWAGE_RETENTION_INTERVAL", "3s"),
            ("STOWAGE_GC_INTERVAL", "5s"),
            ("STOWAGE_GC_ORPHAN_MIN_AGE", "20s"),
            // Each pack deletion and repack is logged, so a pack the index
            // names but the store lacks can be traced to what removed it.
            ("STOWAGE_LOG", "info,stowage_server::gc=debug"),
        ],
        None,
    ) else {
        return;
    };
    let tenant = Tenant::create(&server, TENANT);
    let work = tempfile::tempdir().unwrap();
    let mut agents: Vec<(Agent, Source, String)> = (0..AGENTS)
        .map(|n| enroll_with_plan(&server, &tenant, work.path(), n))
        .collect();
    let started = Instant::now();
    let deadline = started + soak_duration();

    // Act
    let logs: Vec<AgentLog> = std::thread::scope(|scope| {
        let loops: Vec<_> = agents
            .iter_mut()
            .map(|(agent, source, plan)| {
                let server = &server;
                scope.spawn(move || back_up_until(server, agent, source, plan, deadline))
            })
            .collect();
        loops.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    server.admin(&["retention", "apply", "--tenant", TENANT]);
    // The final run repacks every pack holding anything dead, so what is
    // stored can be held against what is live.
    let (last_gc, last_gc_log) = gc_json_with_log(
        &server,
        &["--orphan-min-age", "0s", "--repack-below", "100"],
    );
    check_indexed_packs_are_stored(&server, &last_gc_log);

    // Assert: the loops ran, retention forgot, the server's own GC deleted.
    let committed: usize = logs.iter().map(|log| log.committed.len()).sum();
    let refused: Vec<&String> = logs.iter().flat_map(|log| &log.refused).collect();
    let failed: Vec<&String> = logs.iter().flat_map(|log| &log.failed).collect();
    let forgotten = server.query_number(
        "SELECT COUNT(*) FROM audit_log WHERE actor = 'scheduler' AND action = 'snapshot.forget'",
    );
    let gc_runs = server.query_number("SELECT CAST(SUM(runs) AS BIGINT) FROM gc_runs");
    let gc_failures = server.query_number("SELECT CAST(SUM(failures) AS BIGINT) FROM gc_runs");
    let packs_deleted =
        server.query_number("SELECT CAST(SUM(packs_deleted) AS BIGINT) FROM gc_runs");
    let bytes_reclaimed =
        server.query_number("SELECT CAST(SUM(bytes_reclaimed) AS BIGINT) FROM gc_runs");
    eprintln!(
        "gc soak on {backend:?}: {:.0} s, {committed} backups committed, {} refused for \
         collected blobs and retried, {} failed; retention pass forgot {forgotten} snapshots; \
         {gc_runs} server gc runs ({gc_failures} failed) deleted {packs_deleted} packs, \
         {bytes_reclaimed} bytes",
        wall.as_secs_f64(),
        refused.len(),
        failed.len(),
    );
    for refusal in &refused {
        eprintln!("  refused and retried: {refusal}");
    }
    assert!(failed.is_empty(), "backups failed:\n{failed:#?}");
    assert!(forgotten > 0, "the retention pass forgot nothing");
    assert!(gc_runs >= 2, "the server ran gc {gc_runs} times");
    // A failed run is logged, recorded and retried at the next interval;
    // none should fail, whatever the agents are doing.
    assert_eq!(
        gc_failures,
        0,
        "{gc_failures} of {gc_runs} server gc runs failed:\n{}",
        server.log()
    );
    assert!(
        packs_deleted + last_gc["packs_deleted"].as_i64().unwrap() > 0,
        "no gc run deleted a pack"
    );

    // Assert: every remaining snapshot restores as its source was.
    let mut problems = Vec::new();
    for ((agent, source, _), log) in agents.iter().zip(&logs) {
        problems.extend(check_restores(agent, source, log, work.path()));
        let verify = agent.run(&["verify", "--read-data", "--host", &agent.name]);
        if verify.code != Some(0) {
            problems.push(format!(
                "{}: verify --read-data exited {:?}:\n{}{}",
                agent.name, verify.code, verify.stdout, verify.stderr
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Assert: the final collection left the store as the index says.
    check_store(&server, &last_gc);
}

/// After the final collection: no wholly dead pack and no orphan is left,
/// the store holds exactly the indexed packs, and what is stored beyond
/// the live blobs is counted by kind.
fn check_store(server: &TestServer, last_gc: &serde_json::Value) {
    let dry = gc_json(server, &["--dry-run", "--orphan-min-age", "0s"]);
    assert_eq!(dry["packs_deleted"], 0, "wholly dead packs remain: {dry}");
    assert_eq!(dry["orphans_waiting"], 0, "orphan objects remain: {dry}");
    let indexed_packs = server.query_number("SELECT COUNT(*) FROM packs");
    assert_eq!(
        i64::try_from(server.pack_keys().len()).unwrap(),
        indexed_packs,
        "the store's pack objects and the index's packs differ"
    );
    let stored = server.query_number("SELECT CAST(SUM(size) AS BIGINT) FROM packs");
    let indexed = server.query_number("SELECT CAST(SUM(length) AS BIGINT) FROM blobs");
    let tabled: i64 = server
        .pack_tables()
        .iter()
        .flat_map(|pack| &pack.blobs)
        .map(|entry| i64::from(entry.length))
        .sum();
    eprintln!(
        "after the final gc: {stored} bytes stored in {indexed_packs} packs for {indexed} \
         live bytes of blobs ({} in unindexed copies, {} in pack headers and tables); final \
         run: {last_gc}",
        tabled - indexed,
        stored - tabled,
    );
    assert!(
        stored * 10 <= indexed * 11,
        "{stored} bytes stored for {indexed} live bytes: not within 10% after the final gc"
    );
}

/// Enrolls agent `n` with its own source tree and keep-last plan; returns
/// the agent, its source and the plan's id.
fn enroll_with_plan(
    server: &TestServer,
    tenant: &Tenant<'_>,
    work: &Path,
    n: usize,
) -> (Agent, Source, String) {
    let name = format!("soak-{n}");
    let agent = tenant.enroll(&name);
    let source = Source::new(work.join(&name), n);
    let keep = KEEP_LAST.to_string();
    server.admin(&[
        "plan",
        "create",
        "--tenant",
        TENANT,
        "--name",
        &name,
        "--agent",
        &name,
        "--path",
        source.root.to_str().unwrap(),
        "--schedule",
        "0 3 * * *",
        "--keep-last",
        &keep,
    ]);
    let plans: serde_json::Value =
        serde_json::from_str(&server.admin(&["plan", "list", "--tenant", TENANT, "--json"]))
            .unwrap();
    let plan = plans
        .as_array()
        .unwrap()
        .iter()
        .find(|plan| plan["name"] == name.as_str())
        .and_then(|plan| plan["id"].as_str())
        .unwrap_or_else(|| panic!("plan {name} is not listed: {plans}"))
        .to_owned();
    (agent, source, plan)
}

/// Changes the source and backs it up, round after round, until `deadline`.
fn back_up_until(
    server: &TestServer,
    agent: &Agent,
    source: &mut Source,
    plan: &str,
    deadline: Instant,
) -> AgentLog {
    let mut log = AgentLog::default();
    let root = source.root.to_str().unwrap().to_owned();
    let mut round = 0u32;
    let short = |log: &AgentLog| log.committed.len() < MIN_BACKUPS && log.failed.is_empty();
    while Instant::now() < deadline || short(&log) {
        round += 1;
        source.change(round);
        let manifest = source.manifest();
        let mut run = agent.backup(&[&root]);
        if run.code != Some(0) && run.stderr.contains("are not stored") {
            log.refused.push(format!(
                "{} round {round}: {}",
                agent.name,
                run.stderr.trim()
            ));
            run = agent.backup(&[&root]);
        }
        if run.code != Some(0) {
            log.failed.push(format!(
                "{} round {round}: exit {:?}: {}",
                agent.name,
                run.code,
                run.stderr.trim()
            ));
            continue;
        }
        let snapshot = run.json()["snapshot_id"].as_str().unwrap().to_owned();
        // As the daemon's job would have recorded it.
        server.execute_sql(&format!(
            "UPDATE snapshots SET plan_id = '{plan}' \
             WHERE plan_id IS NULL AND hostname = '{}'",
            agent.name
        ));
        log.committed.push(Committed {
            round,
            snapshot,
            manifest,
        });
    }
    log
}

/// Restores each of `agent`'s remaining snapshots and compares it with the
/// manifest of its round; answers what is wrong, naming agent, round,
/// snapshot and file.
fn check_restores(agent: &Agent, source: &Source, log: &AgentLog, work: &Path) -> Vec<String> {
    let by_id: HashMap<&str, &Committed> = log
        .committed
        .iter()
        .map(|c| (c.snapshot.as_str(), c))
        .collect();
    let remaining: Vec<String> = agent
        .snapshots()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let mut problems = Vec::new();
    if remaining.len() > KEEP_LAST || remaining.is_empty() {
        problems.push(format!(
            "{}: {} snapshots remain under keep-last {KEEP_LAST}: {remaining:?}",
            agent.name,
            remaining.len()
        ));
    }
    if let Some(newest) = log.committed.last()
        && !remaining.contains(&newest.snapshot)
    {
        problems.push(format!(
            "{}: the newest snapshot {} (round {}) is gone",
            agent.name, newest.snapshot, newest.round
        ));
    }
    for id in &remaining {
        let Some(committed) = by_id.get(id.as_str()) else {
            problems.push(format!(
                "{}: snapshot {id} was never committed by the test",
                agent.name
            ));
            continue;
        };
        let target = work.join(format!("restore-{}-{id}", agent.name));
        let run = agent.restore(id, &target);
        if run.code != Some(0) {
            problems.push(format!(
                "{} round {} snapshot {id}: restore exited {:?}: {}",
                agent.name,
                committed.round,
                run.code,
                run.stderr.trim()
            ));
            continue;
        }
        let restored = manifest_of(&restored_root(&target, &source.root));
        for difference in differences(&committed.manifest, &restored) {
            problems.push(format!(
                "{} round {} snapshot {id}: {difference}",
                agent.name, committed.round
            ));
        }
        std::fs::remove_dir_all(&target).unwrap();
    }
    problems
}

/// `stowage-server gc --tenant Soak --json ARGS…`, parsed.
fn gc_json(server: &TestServer, args: &[&str]) -> serde_json::Value {
    gc_json_with_log(server, args).0
}

/// [`gc_json`], with what the run logged.
fn gc_json_with_log(server: &TestServer, args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["gc", "--tenant", TENANT, "--json"];
    all.extend_from_slice(args);
    let (stdout, log) = server.admin_with_log(&all);
    (
        serde_json::from_str(&stdout).expect("gc --json prints JSON"),
        log,
    )
}

/// Every pack the index names has its object in the store; otherwise the
/// failure shows, for each missing pack, every line of the server's and
/// the final collection's logs that names it: who wrote, repacked and
/// deleted it, in order.
fn check_indexed_packs_are_stored(server: &TestServer, last_gc_log: &str) {
    let stored: std::collections::HashSet<PackId> =
        server.pack_keys().iter().map(pack_id_of).collect();
    let missing: Vec<String> = server
        .indexed_pack_ids()
        .into_iter()
        .filter(|id| !stored.contains(id))
        .map(|id| id.to_hex())
        .collect();
    if missing.is_empty() {
        return;
    }
    let server_log = server.log();
    let mut story = String::new();
    for pack in &missing {
        writeln!(story, "pack {pack} is indexed but its object is gone:").unwrap();
        for line in server_log.lines().chain(last_gc_log.lines()) {
            if line.contains(pack.as_str()) {
                writeln!(story, "    {line}").unwrap();
            }
        }
    }
    panic!("{} indexed packs have no object:\n{story}", missing.len());
}

on_both_backends!(eight_agents_back_up_while_retention_and_gc_run);
