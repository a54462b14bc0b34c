//! A fleet of simulated agents: plain HTTP clients holding real agent
//! credentials, enrolled through the real enrollment API, that long-poll
//! `POST /api/v1/jobs/claim` and finish every job they get at once (as a
//! success). They spread their requests over several server instances in
//! turn, and record every claim, so a test can count claims per job.
//!
//! No agent binary runs: a thousand `stowage daemon` processes would
//! measure process start-up and backups, not job dispatch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use stowage_protocol::api::{
    ClaimJobRequest, ClaimedJob, EnrollRequest, EnrollResponse, JobFinish, JobProgress,
};
use stowage_protocol::ids::JobId;
use tokio::task::JoinSet;

/// One simulated agent.
#[derive(Debug, Clone)]
pub struct FleetAgent {
    /// The name it enrolled under.
    pub name: String,
    /// Its bearer credential.
    pub credential: String,
}

/// One successful claim, as the agent saw it.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// The job it got.
    pub job: JobId,
    /// Which agent (index into the fleet).
    pub agent: usize,
    /// Which instance answered (index into the URLs).
    pub instance: usize,
    /// When the answer arrived.
    pub at: SystemTime,
}

/// An HTTP client fit for a fleet: no proxy, a timeout past the longest wait.
///
/// # Errors
///
/// When the client cannot be built.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(90))
        .build()
        .context("unable to build the fleet's HTTP client")
}

/// Enrolls one agent per token through `POST /api/v1/agents/enroll`, at
/// most `parallel` at a time, spreading them over `urls`; agent `n` is
/// named `{prefix}-{n}`.
///
/// # Errors
///
/// The first enrollment the server refuses or that cannot be sent.
pub async fn enroll(
    client: &reqwest::Client,
    urls: &[String],
    tokens: Vec<String>,
    prefix: &str,
    parallel: usize,
) -> anyhow::Result<Vec<FleetAgent>> {
    let mut agents: Vec<Option<FleetAgent>> = vec![None; tokens.len()];
    let mut running = JoinSet::new();
    for (n, token) in tokens.into_iter().enumerate() {
        if running.len() >= parallel.max(1) {
            let (n, agent) = running.join_next().await.expect("a task runs")??;
            agents[n] = Some(agent);
        }
        let client = client.clone();
        let url = format!("{}/api/v1/agents/enroll", urls[n % urls.len()]);
        let name = format!("{prefix}-{n}");
        running.spawn(async move {
            let response = client
                .post(&url)
                .json(&EnrollRequest {
                    token,
                    agent_name: name.clone(),
                    hostname: format!("{name}.fleet.test"),
                })
                .send()
                .await
                .with_context(|| format!("unable to send the enrollment of {name} to {url}"))?;
            if !response.status().is_success() {
                bail!(
                    "enrolling {name} at {url} answered {}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            let body: EnrollResponse = response
                .json()
                .await
                .with_context(|| format!("the enrollment answer for {name} is not JSON"))?;
            Ok::<_, anyhow::Error>((
                n,
                FleetAgent {
                    name,
                    credential: body.credential,
                },
            ))
        });
    }
    while let Some(done) = running.join_next().await {
        let (n, agent) = done??;
        agents[n] = Some(agent);
    }
    Ok(agents
        .into_iter()
        .map(|agent| agent.expect("every agent enrolled"))
        .collect())
}

/// A running fleet; [`Running::stop`] ends it.
#[derive(Debug)]
pub struct Running {
    claims: Arc<Mutex<Vec<Claim>>>,
    errors: Arc<Errors>,
    tasks: JoinSet<()>,
}

/// What a fleet did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every claim, in the order the answers arrived.
    pub claims: Vec<Claim>,
    /// Requests that failed (connection errors, 5xx, a refused finish).
    pub errors: u64,
    /// What the first few failures were.
    pub first_errors: Vec<String>,
}

/// Starts one task per agent: claim (waiting up to `wait_seconds`) from the
/// instances of `urls` in turn, and finish each job at once. The agents'
/// first claims are spread evenly over one wait, as daemons started at
/// different times would be, not all sent at once. Must be called inside a
/// Tokio runtime.
pub fn start(
    client: &reqwest::Client,
    urls: &[String],
    agents: &[FleetAgent],
    wait_seconds: u32,
) -> Running {
    let claims = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Errors::default());
    let mut tasks = JoinSet::new();
    let spread = Duration::from_secs(u64::from(wait_seconds));
    for (index, agent) in agents.iter().enumerate() {
        let worker = Worker {
            first_claim_after: spread
                .checked_div(u32::try_from(agents.len()).unwrap_or(u32::MAX))
                .unwrap_or_default()
                .saturating_mul(u32::try_from(index).unwrap_or(u32::MAX)),
            client: client.clone(),
            urls: urls.to_vec(),
            agent: agent.clone(),
            index,
            wait_seconds,
            claims: Arc::clone(&claims),
            errors: Arc::clone(&errors),
        };
        tasks.spawn(worker.run());
    }
    Running {
        claims,
        errors,
        tasks,
    }
}

impl Running {
    /// How many claims so far.
    pub fn claim_count(&self) -> usize {
        self.claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Stops every agent (dropping waiting claims) and reports.
    pub async fn stop(mut self) -> Report {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let claims =
            std::mem::take(&mut *self.claims.lock().unwrap_or_else(PoisonError::into_inner));
        Report {
            claims,
            errors: self.errors.count.load(Ordering::Relaxed),
            first_errors: self
                .errors
                .first
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

struct Worker {
    first_claim_after: Duration,
    client: reqwest::Client,
    urls: Vec<String>,
    agent: FleetAgent,
    index: usize,
    wait_seconds: u32,
    claims: Arc<Mutex<Vec<Claim>>>,
    errors: Arc<Errors>,
}

/// Failed requests: how many, and the first few.
#[derive(Debug, Default)]
struct Errors {
    count: AtomicU64,
    first: Mutex<Vec<String>>,
}

impl Errors {
    fn record(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.len() < 10 {
            first.push(what);
        }
    }
}

impl Worker {
    async fn run(self) {
        tokio::time::sleep(self.first_claim_after).await;
        // Agents start on different instances and move on after every request.
        let mut turn = self.index;
        loop {
            let instance = turn % self.urls.len();
            turn += 1;
            match self.claim(instance).await {
                Ok(Some(job)) => {
                    self.record(job.job_id, instance);
                    self.finish(job.job_id, &mut turn).await;
                }
                Ok(None) => {}
                Err(error) => {
                    self.failed(format!("claim at instance {instance}: {error:#}"))
                        .await;
                }
            }
        }
    }

    async fn claim(&self, instance: usize) -> anyhow::Result<Option<ClaimedJob>> {
        let response = self
            .client
            .post(format!("{}/api/v1/jobs/claim", self.urls[instance]))
            .bearer_auth(&self.agent.credential)
            .json(&ClaimJobRequest {
                wait_seconds: self.wait_seconds,
                facts: None,
            })
            .send()
            .await?;
        match response.status().as_u16() {
            200 => Ok(Some(response.json().await?)),
            204 => Ok(None),
            status => bail!(
                "answered {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }

    /// Finishes `job` as a success, retrying on the next instance when one
    /// cannot be reached; a 404 (not this agent's running job) is an error.
    async fn finish(&self, job: JobId, turn: &mut usize) {
        let body = JobFinish {
            error: None,
            progress: JobProgress {
                bytes: 0,
                files: 0,
                bytes_per_second: 0,
            },
            log: String::new(),
            restore_test: None,
        };
        loop {
            let url = format!(
                "{}/api/v1/jobs/{job}/finish",
                self.urls[*turn % self.urls.len()]
            );
            *turn += 1;
            let sent = self
                .client
                .post(url)
                .bearer_auth(&self.agent.credential)
                .json(&body)
                .send()
                .await;
            match sent.map(|response| response.status().as_u16()) {
                Ok(204) => return,
                Ok(404) => {
                    self.errors.record(format!(
                        "finish of job {job}: 404, not this agent's running job"
                    ));
                    return;
                }
                Ok(status) => self.failed(format!("finish of job {job}: {status}")).await,
                Err(error) => self.failed(format!("finish of job {job}: {error:#}")).await,
            }
        }
    }

    fn record(&self, job: JobId, instance: usize) {
        self.claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Claim {
                job,
                agent: self.index,
                instance,
                at: SystemTime::now(),
            });
    }

    async fn failed(&self, what: String) {
        self.errors.record(what);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
