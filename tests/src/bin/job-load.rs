//! Job dispatch under load, for `scripts/bench-jobs`: one real
//! `stowage-server` (SQLite and the local store, or PostgreSQL and S3),
//! 1,000 agents enrolled through the enrollment API and long-polling for
//! jobs as simulated agents ([`stowage_e2e::fleet`]), and rounds of
//! `stowage-server plan run` queueing a job for every agent.
//!
//! Reports the server's peak resident memory and CPU seconds (from
//! `/proc/PID`), both while every agent waits with nothing to do and over
//! the rounds; the time from each job's `created_at` to its `claimed_at`
//! (p50, p99, max); claims per job as the agents counted them; and this
//! process's own CPU seconds (the simulated agents share the machine with
//! the server). Prints a summary, then one JSON line.
//!
//! ```text
//! job-load --server-bin target/release/stowage-server [--agents 1000]
//!     [--rounds 5] [--every 10] [--wait 30] [--idle 30] [--postgres]
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use secrecy::ExposeSecret;
use stowage_e2e::fleet;
use stowage_e2e::server::{Backend, TestServer};
use stowage_protocol::ids::TenantId;
use stowage_server::db::{Database, enrollment_tokens, jobs};

#[derive(Debug, Parser)]
struct Args {
    /// The `stowage-server` binary to measure.
    #[arg(long)]
    server_bin: PathBuf,
    /// Simulated agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Rounds of `plan run` (one job per agent each).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds between rounds.
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// How long each claim waits (the agent daemon asks for 30 s).
    #[arg(long, default_value_t = 30)]
    wait: u32,
    /// Seconds of idle measurement (every agent waiting, no job) first.
    #[arg(long, default_value_t = 30)]
    idle: u64,
    /// PostgreSQL and S3 (`STOWAGE_TEST_POSTGRES_URL`, `STOWAGE_TEST_S3_*`)
    /// instead of SQLite and the local store.
    #[arg(long)]
    postgres: bool,
}

/// CPU seconds (user + system) and peak resident KiB of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu_seconds: f64,
    peak_rss_kib: u64,
}

/// What the load phase measured, before counting.
struct Measured {
    idle_server: (Usage, Usage),
    idle_client: (Usage, Usage),
    load_server: Usage,
    load_client: Usage,
    load_seconds: f64,
    report: fleet::Report,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = if args.postgres {
        Backend::PostgresS3
    } else {
        Backend::SqliteLocal
    };
    let settings = [
        // Quiet request logs, but keep the "listening on" line the harness reads.
        ("STOWAGE_LOG", "warn,stowage_server::startup=info"),
        ("STOWAGE_ADDRESS_RATE_LIMIT", "100000"),
        ("STOWAGE_ADDRESS_RATE_BURST", "100000"),
    ];
    let Some(server) =
        TestServer::start_with(backend, "job-load", &settings, Some(&args.server_bin))
    else {
        bail!(
            "PostgreSQL and S3 are not configured (STOWAGE_TEST_POSTGRES_URL, STOWAGE_TEST_S3_*)"
        );
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("unable to start the runtime")?;
    let client = fleet::client()?;
    let db = runtime.block_on(Database::connect(&server.settings().database))?;
    let (tenant, agents) = setup(&server, &runtime, &client, &db, args.agents)?;
    let measured = measure(&server, &runtime, &client, &agents, &args)?;
    let listed = runtime.block_on(jobs::list_recent(&db, tenant, u32::MAX))?;
    let summary = summarize(&args, agents.len(), &measured, &listed);
    eprintln!("{}", serde_json::to_string_pretty(&summary)?);
    println!("{summary}");
    runtime.block_on(db.close());
    Ok(())
}

/// A tenant, one token per agent (made with the server's own code: a
/// thousand `token create` starts would dominate), enrollment through the
/// API, and one plan on every agent.
fn setup(
    server: &TestServer,
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    db: &Database,
    count: usize,
) -> anyhow::Result<(TenantId, Vec<fleet::FleetAgent>)> {
    let tenant: TenantId = server
        .admin(&[
            "tenant",
            "create",
            "Load",
            "--owner-email",
            "owner@load.test",
        ])
        .trim()
        .parse()
        .context("tenant create printed no tenant id")?;
    let tokens = runtime.block_on(async {
        let mut tokens = Vec::with_capacity(count);
        for _ in 0..count {
            let created = enrollment_tokens::create(db, tenant, Duration::from_hours(1)).await?;
            tokens.push(created.secret.expose_secret().to_owned());
        }
        anyhow::Ok(tokens)
    })?;
    let enrolling = Instant::now();
    let urls = [server.url.clone()];
    let agents = runtime.block_on(fleet::enroll(client, &urls, tokens, "load", 32))?;
    eprintln!(
        "enrolled {} agents in {:?}",
        agents.len(),
        enrolling.elapsed()
    );
    let mut create = vec![
        "plan",
        "create",
        "--tenant",
        "Load",
        "--name",
        "load",
        "--path",
        "/srv",
        "--schedule",
        "0 3 * * *",
    ];
    for agent in &agents {
        create.extend(["--agent", agent.name.as_str()]);
    }
    server.admin(&create);
    Ok((tenant, agents))
}

/// Idle (every agent waiting, nothing queued), then the rounds of
/// `plan run` and the drain.
fn measure(
    server: &TestServer,
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    agents: &[fleet::FleetAgent],
    args: &Args,
) -> anyhow::Result<Measured> {
    let urls = [server.url.clone()];
    let me = std::process::id();
    let running = runtime.block_on(async { fleet::start(client, &urls, agents, args.wait) });
    // Every agent has sent its first claim after one wait.
    std::thread::sleep(Duration::from_secs(u64::from(args.wait) + 1));
    let idle_start = (usage(server.pid())?, usage(me)?);
    std::thread::sleep(Duration::from_secs(args.idle));
    let idle_end = (usage(server.pid())?, usage(me)?);

    let load_start = Instant::now();
    for round in 0..args.rounds {
        if round > 0 {
            std::thread::sleep(Duration::from_secs(args.every));
        }
        server.admin(&["plan", "run", "--tenant", "Load", "load"]);
    }
    let open = "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')";
    let deadline = Instant::now() + Duration::from_mins(2);
    while server.query_number(open) > 0 {
        if Instant::now() > deadline {
            bail!("the fleet did not drain the queue within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let load_seconds = load_start.elapsed().as_secs_f64();
    let load_server = usage(server.pid())?;
    let load_client = usage(me)?;
    let report = runtime.block_on(running.stop());
    Ok(Measured {
        idle_server: (idle_start.0, idle_end.0),
        idle_client: (idle_start.1, idle_end.1),
        load_server,
        load_client,
        load_seconds,
        report,
    })
}

/// The numbers: latency from the server's record, claims from the agents'.
fn summarize(
    args: &Args,
    agents: usize,
    measured: &Measured,
    listed: &[jobs::JobSummary],
) -> serde_json::Value {
    let mut latencies: Vec<i64> = listed
        .iter()
        .filter_map(|job| {
            job.claimed_at
                .map(|at| (at - job.created_at).num_milliseconds())
        })
        .collect();
    latencies.sort_unstable();
    let succeeded = listed.iter().filter(|job| job.state == "succeeded").count();
    let mut per_job: HashMap<_, u32> = HashMap::new();
    for claim in &measured.report.claims {
        *per_job.entry(claim.job).or_default() += 1;
    }
    let claimed_once = listed
        .iter()
        .filter(|job| per_job.get(&job.id) == Some(&1))
        .count();
    let claimed_more = per_job.values().filter(|n| **n > 1).count();
    let (idle_server, idle_client) = (&measured.idle_server, &measured.idle_client);
    let idle_cpu = idle_server.1.cpu_seconds - idle_server.0.cpu_seconds;
    let idle_seconds = Duration::from_secs(args.idle).as_secs_f64();
    serde_json::json!({
        "backend": if args.postgres { "postgres" } else { "sqlite" },
        "server_bin": args.server_bin,
        "agents": agents,
        "claim_wait_seconds": args.wait,
        "idle": {
            "seconds": idle_seconds,
            "server_cpu_seconds": idle_cpu,
            "server_cpu_percent": 100.0 * idle_cpu / idle_seconds,
            "client_cpu_seconds": idle_client.1.cpu_seconds - idle_client.0.cpu_seconds,
        },
        "load": {
            "seconds": measured.load_seconds,
            "jobs": listed.len(),
            "server_cpu_seconds": measured.load_server.cpu_seconds - idle_server.1.cpu_seconds,
            "client_cpu_seconds": measured.load_client.cpu_seconds - idle_client.1.cpu_seconds,
        },
        "server_peak_rss_mib": measured.load_server.peak_rss_kib / 1024,
        "created_to_claimed_ms": {
            "p50": percentile(&latencies, 50),
            "p99": percentile(&latencies, 99),
            "max": latencies.last(),
        },
        "exactly_once": {
            "jobs": listed.len(),
            "succeeded": succeeded,
            "claimed_once_by_the_agents": claimed_once,
            "claimed_more_than_once": claimed_more,
            "claims_counted": measured.report.claims.len(),
            "failed_requests": measured.report.errors,
            "first_failures": measured.report.first_errors,
        },
    })
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// CPU seconds so far and peak resident memory of process `pid`.
fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("unable to read /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses: state is the
    // 3rd field overall, utime the 14th and stime the 15th.
    let after_name = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("/proc/{pid}/stat has no field {}", index + 3))
    };
    let cpu_ticks = ticks(11)? + ticks(12)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("unable to read /proc/{pid}/status"))?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("/proc/{pid}/status has no VmHWM"))?;
    #[allow(clippy::cast_precision_loss)]
    Ok(Usage {
        cpu_seconds: cpu_ticks as f64 / clock_ticks_per_second() as f64,
        peak_rss_kib,
    })
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}
