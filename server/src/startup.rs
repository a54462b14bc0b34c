//! Wiring: settings in, a running HTTP server out.
//!
//! [`Application::build`] opens the database (applying migrations) and the
//! object store, binds the listener and builds the server without running it,
//! so a test can bind port 0, read the chosen [`Application::port`] and then
//! drive [`Application::run_until_stopped`] on a task.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::configuration::{
    AgentSettings, DEFAULT_OFFLINE_AFTER, GcSettings, JobSettings, RetentionSettings,
    SchedulerSettings, Settings,
};
use crate::db::Database;
use crate::dispatcher::{self, Dispatcher};
use crate::ingest::IngestContext;
use crate::rate_limit::{RateLimitSettings, RateLimits};
use crate::routes::{api, health};
use crate::scheduler::{self, ScheduleClock, gc_pass, retention_pass};
use crate::storage::{self, ObjectStore};
use crate::telemetry;
use crate::tls::TlsSettings;

/// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE_SECS: u64 = 30;
/// Spool files older than this at start belong to no live upload.
const STALE_SPOOL_AGE: Duration = Duration::from_hours(1);

/// How the server faces the network: where it listens, whether it speaks
/// TLS itself, and the request budgets it applies.
#[derive(Debug, Clone)]
pub struct Frontend {
    /// Address to bind; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Certificate and key to serve HTTPS with; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Budgets per agent credential and per client address.
    pub rate_limits: RateLimitSettings,
    /// How agents' presence is judged.
    pub agents: AgentSettings,
}

impl Frontend {
    /// Plain HTTP on `listen` with the default rate limits.
    pub fn plain(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls: None,
            rate_limits: RateLimitSettings::default(),
            agents: AgentSettings {
                offline_after: DEFAULT_OFFLINE_AFTER,
            },
        }
    }
}

/// How the server runs jobs and its own passes: how long a claim keeps a
/// job, how the scheduler ticks and tells time, and how often retention
/// and garbage collection run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scheduling {
    /// The lease of a claimed job.
    pub jobs: JobSettings,
    /// The scheduler's tick and clock.
    pub scheduler: SchedulerSettings,
    /// The retention pass's interval.
    pub retention: RetentionSettings,
    /// The garbage collection pass's interval and orphan age.
    pub gc: GcSettings,
}

/// A built server, bound to its port but not yet serving.
pub struct Application {
    /// The address actually bound (the real port when 0 was asked for).
    address: SocketAddr,
    /// The actix server future; resolves after a graceful shutdown.
    server: Server,
    /// Kept to close the pool once the server has stopped.
    database: Database,
    /// The scheduler's settings and the passes' intervals, for
    /// [`Application::run_until_stopped`].
    scheduling: Scheduling,
    /// The object store, for the garbage collection pass.
    store: Arc<dyn ObjectStore>,
    /// When the server was built: the default origin of the schedule clock.
    started: chrono::DateTime<chrono::Utc>,
    /// The waiting claims, shared with the claim handler and woken by the
    /// dispatcher task.
    dispatcher: Arc<Dispatcher>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the database (creating and migrating it as needed) and the
    /// object store the settings name, and binds the listener.
    ///
    /// # Errors
    ///
    /// Fails, naming the step, when the data directory, database, migrations,
    /// object store or listener cannot be set up.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "unable to create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        tracing::info!(
            "data directory {}",
            std::path::absolute(&settings.data_dir)
                .unwrap_or_else(|_| settings.data_dir.clone())
                .display()
        );
        let database = Database::connect(&settings.database).await?;
        database.migrate().await?;
        tracing::info!(
            "database {} ({:?}), migrations applied",
            settings.database.redacted_url(),
            database.backend()
        );
        let store = storage::open(&settings.object_store)
            .await
            .context("unable to open the object store")?;
        tracing::info!("object store: {}", settings.object_store.describe());
        let frontend = Frontend {
            listen: settings.listen,
            tls: settings.tls,
            rate_limits: settings.rate_limits,
            agents: settings.agents,
        };
        let scheduling = Scheduling {
            jobs: settings.jobs,
            scheduler: settings.scheduler,
            retention: settings.retention,
            gc: settings.gc,
        };
        Self::build_on(&frontend, scheduling, database, store, &settings.data_dir).await
    }

    /// Binds `listen` and builds a plain-HTTP server with the default rate
    /// limits and scheduling around an opened database and store; tests use
    /// it to run the app on an in-memory store.
    ///
    /// # Errors
    ///
    /// As [`Application::build_on`].
    pub async fn build_with(
        listen: SocketAddr,
        database: Database,
        store: Arc<dyn ObjectStore>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        Self::build_on(
            &Frontend::plain(listen),
            Scheduling::default(),
            database,
            store,
            data_dir,
        )
        .await
    }

    /// Binds the frontend's address and builds the server around an opened
    /// database and store.
    ///
    /// Pack uploads are spooled under `data_dir`; spool files a crashed
    /// process left there more than [`STALE_SPOOL_AGE`] ago are removed first.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be bound or the spool directory cannot
    /// be cleared.
    pub async fn build_on(
        frontend: &Frontend,
        scheduling: Scheduling,
        database: Database,
        store: Arc<dyn ObjectStore>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let listen = frontend.listen;
        let ingest = IngestContext::new(database.clone(), store.clone(), data_dir);
        let removed = ingest
            .remove_stale_temp_files(STALE_SPOOL_AGE)
            .await
            .with_context(|| {
                format!(
                    "unable to clear stale spool files in {}",
                    ingest.temp_dir().display()
                )
            })?;
        tracing::info!(
            "removed {removed} stale spool file(s) from {}",
            ingest.temp_dir().display()
        );
        let ingest_data = web::Data::new(ingest);
        let limits_data = web::Data::new(RateLimits::new(frontend.rate_limits));
        let agent_settings = web::Data::new(frontend.agents);
        let listener =
            TcpListener::bind(listen).with_context(|| format!("unable to listen on {listen}"))?;
        let address = listener
            .local_addr()
            .context("unable to read the bound address")?;
        let db_data = web::Data::new(database.clone());
        let dispatcher = Dispatcher::new();
        let dispatcher_data = web::Data::from(dispatcher.clone());
        let jobs_data = web::Data::new(scheduling.jobs);
        let store_data: web::Data<dyn ObjectStore> = web::Data::from(store.clone());
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(telemetry::log_request))
                .app_data(db_data.clone())
                .app_data(store_data.clone())
                .app_data(ingest_data.clone())
                .app_data(limits_data.clone())
                .app_data(agent_settings.clone())
                .app_data(dispatcher_data.clone())
                .app_data(jobs_data.clone())
                .route("/healthz", web::get().to(health::healthz))
                .route("/readyz", web::get().to(health::readyz))
                .configure(api::configure)
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECS);
        let (server, scheme) = match &frontend.tls {
            Some(tls) => {
                tracing::info!("TLS certificate chain {}", tls.cert_path().display());
                let server = server.listen_rustls_0_23(listener, tls.server_config());
                (server, "https")
            }
            None => (server.listen(listener), "http"),
        };
        let server = server
            .with_context(|| format!("unable to serve on {address}"))?
            .run();
        tracing::info!("stowage-server listening on {scheme}://{address}");
        Ok(Self {
            address,
            server,
            database,
            scheduling,
            store,
            started: chrono::Utc::now(),
            dispatcher,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The database handle, shared with the running server.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Serves (and runs the [`scheduler`](crate::scheduler), its retention
    /// and garbage collection passes, and the claim
    /// [`dispatcher`](crate::dispatcher)) until SIGTERM or SIGINT, lets
    /// in-flight requests finish, then stops those tasks and closes the
    /// database pool.
    ///
    /// # Errors
    ///
    /// Fails when the server stops with an I/O error.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let settings = self.scheduling.scheduler;
        let clock = ScheduleClock::from_settings(&settings, self.started);
        let scheduler = tokio::spawn(scheduler::run(
            self.database.clone(),
            settings,
            clock,
            self.dispatcher.clone(),
        ));
        let retention = tokio::spawn(retention_pass::run(
            self.database.clone(),
            self.scheduling.retention,
        ));
        let gc = tokio::spawn(gc_pass::run(
            self.database.clone(),
            self.store.clone(),
            self.scheduling.gc,
        ));
        let dispatcher = tokio::spawn(dispatcher::run(
            self.dispatcher.clone(),
            self.database.clone(),
        ));
        let served = self.server.await.context("the HTTP server failed");
        scheduler.abort();
        retention.abort();
        gc.abort();
        dispatcher.abort();
        self.database.close().await;
        tracing::info!("stowage-server stopped; database connections closed");
        served
    }
}
