//! The command line: `stowage-server [--config FILE] [serve]`, and the
//! administration commands `tenant create`, `token create`, `plan
//! create|update|delete|list|run|test`, `jobs`, `restore`, `verify`,
//! `agents`, `api-key create|list|revoke`, `retention preview|apply`,
//! `snapshot pin|unpin|forget`, `gc` and `usage`.
//!
//! `serve` is the default so a bare `stowage-server` runs the platform;
//! administrative subcommands sit beside it and use the same settings, so
//! they act on the database the running servers use.

mod admin;
mod agents;
mod api_keys;
mod gc;
mod jobs;
mod owner_password;
mod plans;
mod retention;
mod table;
mod ttl;
mod usage;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::configuration::Settings;
use crate::startup::Application;
use crate::telemetry;

pub use owner_password::OWNER_PASSWORD_VAR;
pub use ttl::parse_ttl;

/// The Stowage server: API, dashboard, storage, scheduling and retention.
///
/// Settings come from built-in defaults, then the TOML file given with
/// --config, then STOWAGE_* environment variables (see the configuration
/// module docs). With no settings at all it runs on SQLite and the local
/// filesystem under ./stowage-data, listening on 127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "stowage-server", version)]
pub struct Cli {
    /// TOML configuration file; STOWAGE_* environment variables override it.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "STOWAGE_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server until SIGTERM or SIGINT (the default).
    Serve,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage agent enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage backup plans.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Manage operator API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Preview or apply the plans' retention policies.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Pin, unpin or forget one snapshot.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// List a tenant's recent jobs, newest first.
    Jobs {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// How many jobs to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print a JSON array instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot on a chosen agent (a job); prints the job id.
    Restore(jobs::RestoreArgs),
    /// Check a snapshot on a chosen agent (a job); prints the job id.
    Verify(jobs::VerifyArgs),
    /// Collect a tenant's garbage: delete the packs no snapshot and no
    /// running backup needs; prints what was (or would be) reclaimed.
    Gc(gc::GcArgs),
    /// Show a tenant's storage: bytes stored now, and the live, reclaimable
    /// and per plan/agent referenced bytes its last gc recorded.
    Usage {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// Print JSON instead of lines and columns.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's agents: online or offline, version, host, free space.
    Agents {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// Print a JSON array instead of columns.
        #[arg(long)]
        json: bool,
    },
}

/// `plan …`
#[derive(Debug, Clone, Subcommand)]
pub enum PlanCommand {
    /// Create a plan; prints its id.
    Create(Box<plans::PlanCreateArgs>),
    /// Replace a plan's definition (every option as for create; --rename
    /// renames it); prints its id.
    Update(Box<plans::PlanCreateArgs>),
    /// Delete a plan: its queued jobs are cancelled, its job history and
    /// snapshots stay.
    Delete {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The plan's name.
        name: String,
    },
    /// List a tenant's plans.
    List {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// Print a JSON array instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Run a plan now on each of its agents; prints the job ids.
    Run {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The plan's name.
        name: String,
    },
    /// Rehearse a restore of the plan's newest snapshot now, on each of its
    /// agents (a restore test); prints the job ids.
    Test {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The plan's name.
        name: String,
    },
}

/// `retention …`
#[derive(Debug, Clone, Subcommand)]
pub enum RetentionCommand {
    /// Show which snapshots each plan's policy keeps (and why) and which it
    /// would forget; changes nothing.
    Preview {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// Only this plan.
        #[arg(long, value_name = "PLAN")]
        plan: Option<String>,
        /// Print a JSON array instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Forget the snapshots the policies let go (pinned ones never);
    /// prints their ids.
    Apply {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// Only this plan.
        #[arg(long, value_name = "PLAN")]
        plan: Option<String>,
    },
}

/// `snapshot …`
#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotCommand {
    /// Pin a snapshot (legal hold): retention and forget leave it alone.
    Pin {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// Why it is held (recorded with the pin and in the audit log).
        #[arg(long)]
        reason: String,
        /// The snapshot's full id.
        id: String,
    },
    /// Release a snapshot's pin.
    Unpin {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The snapshot's full id.
        id: String,
    },
    /// Forget a snapshot now (audited); its data goes at the next gc.
    Forget {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The snapshot's full id.
        id: String,
    },
}

/// `api-key …`
#[derive(Debug, Clone, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for the operator API; prints only the key (shown once).
    Create {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The key's name, unique in the tenant, e.g. terraform.
        #[arg(long)]
        name: String,
        /// What it may do: viewer reads; operator, admin and owner also
        /// change plans and start jobs.
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// List the tenant's keys (never their secrets).
    List {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// Name of the tenant.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// The key's name.
        name: String,
    },
}

/// `tenant …`
#[derive(Debug, Clone, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its owner; prints the tenant id.
    ///
    /// The owner's password comes from STOWAGE_OWNER_PASSWORD, else a
    /// prompt on a terminal, else one line of standard input.
    Create {
        /// The tenant's unique name.
        name: String,
        /// The owner's email, their dashboard login.
        #[arg(long, value_name = "EMAIL")]
        owner_email: String,
    },
}

/// `token …`
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create a one-time agent enrollment token; prints only the token.
    Create {
        /// Name of the tenant the agent will join.
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// How long the token works: 90s, 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: Duration,
    },
}

/// Runs the parsed command line.
///
/// # Errors
///
/// Fails when the settings are invalid or the command fails.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Tenant(TenantCommand::Create { name, owner_email }) => {
            let new = admin::NewTenant::parse(&name, &owner_email)?;
            let password = owner_password::read()?;
            let id = admin::create_tenant(&settings, &new, password).await?;
            eprintln!(
                "created tenant {:?} owned by {}",
                new.name.as_str(),
                new.owner_email
            );
            println!("{id}");
            Ok(())
        }
        Command::Token(TokenCommand::Create { tenant, ttl }) => {
            let token = admin::create_token(&settings, &tenant, ttl).await?;
            eprintln!(
                "enrollment token for tenant {:?}, valid until {} (shown once)",
                tenant.trim(),
                token.expires_at.to_rfc3339()
            );
            println!("{}", token.secret.expose_secret());
            Ok(())
        }
        Command::Plan(command) => plan(&settings, command).await,
        Command::ApiKey(command) => api_key(&settings, command).await,
        Command::Retention(command) => retention_command(&settings, command).await,
        Command::Snapshot(command) => snapshot_command(&settings, command).await,
        Command::Jobs {
            tenant,
            limit,
            json,
        } => {
            print!(
                "{}",
                plans::list_jobs(&settings, &tenant, limit, json).await?
            );
            Ok(())
        }
        Command::Restore(args) => {
            let id = jobs::restore(&settings, &args).await?;
            eprintln!(
                "queued a restore of snapshot {} on agent {:?} into {}",
                args.snapshot.trim(),
                args.agent.trim(),
                args.target.trim()
            );
            println!("{id}");
            Ok(())
        }
        Command::Verify(args) => {
            let id = jobs::verify(&settings, &args).await?;
            eprintln!(
                "queued a verification of snapshot {} on agent {:?}",
                args.snapshot.trim(),
                args.agent.trim()
            );
            println!("{id}");
            Ok(())
        }
        Command::Agents { tenant, json } => {
            print!("{}", agents::list(&settings, &tenant, json).await?);
            Ok(())
        }
        Command::Gc(args) => {
            print!("{}", gc::run(&settings, &args).await?);
            Ok(())
        }
        Command::Usage { tenant, json } => {
            print!("{}", usage::show(&settings, &tenant, json).await?);
            Ok(())
        }
    }
}

async fn api_key(settings: &Settings, command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { tenant, name, role } => {
            let key = api_keys::create(settings, &tenant, &name, &role).await?;
            eprintln!(
                "API key {:?} for tenant {:?} (shown once)",
                name.trim(),
                tenant.trim()
            );
            println!("{key}");
            Ok(())
        }
        ApiKeyCommand::List { tenant } => {
            print!("{}", api_keys::list(settings, &tenant).await?);
            Ok(())
        }
        ApiKeyCommand::Revoke { tenant, name } => {
            api_keys::revoke(settings, &tenant, &name).await?;
            eprintln!(
                "revoked API key {:?} of tenant {:?}",
                name.trim(),
                tenant.trim()
            );
            Ok(())
        }
    }
}

async fn retention_command(settings: &Settings, command: RetentionCommand) -> anyhow::Result<()> {
    match command {
        RetentionCommand::Preview { tenant, plan, json } => {
            print!(
                "{}",
                retention::preview(settings, &tenant, plan.as_deref(), json).await?
            );
            Ok(())
        }
        RetentionCommand::Apply { tenant, plan } => {
            print!(
                "{}",
                retention::apply(settings, &tenant, plan.as_deref()).await?
            );
            Ok(())
        }
    }
}

async fn snapshot_command(settings: &Settings, command: SnapshotCommand) -> anyhow::Result<()> {
    let (tenant, id, action) = match &command {
        SnapshotCommand::Pin { tenant, reason, id } => {
            (tenant, id, retention::SnapshotAction::Pin(reason))
        }
        SnapshotCommand::Unpin { tenant, id } => (tenant, id, retention::SnapshotAction::Unpin),
        SnapshotCommand::Forget { tenant, id } => (tenant, id, retention::SnapshotAction::Forget),
    };
    eprintln!(
        "{}",
        retention::snapshot(settings, tenant, id, action).await?
    );
    Ok(())
}

async fn plan(settings: &Settings, command: PlanCommand) -> anyhow::Result<()> {
    match command {
        PlanCommand::Create(args) => {
            let id = plans::create(settings, &args).await?;
            eprintln!(
                "created plan {:?} in tenant {:?}",
                args.name.trim(),
                args.tenant.trim()
            );
            println!("{id}");
        }
        PlanCommand::Update(args) => {
            let id = plans::update(settings, &args).await?;
            eprintln!(
                "updated plan {:?} in tenant {:?}",
                args.rename.as_deref().unwrap_or(&args.name).trim(),
                args.tenant.trim()
            );
            println!("{id}");
        }
        PlanCommand::Delete { tenant, name } => {
            plans::delete(settings, &tenant, &name).await?;
            eprintln!(
                "deleted plan {:?} of tenant {:?}",
                name.trim(),
                tenant.trim()
            );
        }
        PlanCommand::Test { tenant, name } => {
            let ids = plans::test(settings, &tenant, &name).await?;
            eprintln!(
                "queued {} restore test(s) for plan {:?}",
                ids.len(),
                name.trim()
            );
            for id in ids {
                println!("{id}");
            }
        }
        PlanCommand::List { tenant, json } => {
            print!("{}", plans::list(settings, &tenant, json).await?);
        }
        PlanCommand::Run { tenant, name } => {
            let ids = plans::run(settings, &tenant, &name).await?;
            eprintln!("queued {} job(s) for plan {:?}", ids.len(), name.trim());
            for id in ids {
                println!("{id}");
            }
        }
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init_subscriber(telemetry::get_subscriber(&settings.log, std::io::stdout))?;
    tracing::info!("stowage-server {} starting", env!("CARGO_PKG_VERSION"));
    let application = Application::build(settings).await?;
    application.run_until_stopped().await
}
