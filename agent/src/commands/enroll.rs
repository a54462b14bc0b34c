//! `stowage enroll`: joins a tenant with a one-time token.
//!
//! 1. Trades the token for this agent's credential.
//! 2. Fetches the tenant's wrapped keys. The first agent of a tenant finds
//!    none: it generates them, wraps them under the passphrase (argon2id)
//!    and stores them on the server; a concurrent first agent that loses the
//!    race unwraps the winner's instead. Later agents unwrap the stored keys
//!    with the passphrase, so a wrong passphrase is caught here, not at the
//!    first restore.
//! 3. Writes the keys (without the recovery secret for `--write-only`), the
//!    credential and the repository config 0600, and the profile last: a
//!    directory with a profile is a complete enrollment.

use stowage_protocol::api::{EnrollRequest, TenantKeyBundle, codes};
use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::{KdfParams, TenantKeys, WrappedTenantKeys};

use crate::api::ServerClient;
use crate::cli::{EnrollArgs, Global, Outcome};
use crate::passphrase;
use crate::profile::{
    AgentKeys, CREDENTIAL_FILE, ConfigDir, KEYS_FILE, PROFILE_FILE, Profile, REPO_FILE,
    write_private,
};
use crate::transport::{self, Fingerprint, TransportConfig, Trust, Url};

/// Runs `stowage enroll`.
///
/// # Errors
///
/// An existing enrollment (without `--force`), a bad URL or fingerprint, a
/// refused token, a wrong passphrase, or a file that cannot be written.
pub async fn run(global: &Global, args: EnrollArgs) -> anyhow::Result<Outcome> {
    let dir = ConfigDir::resolve(global.config_dir.clone())?;
    if dir.is_enrolled() && !args.force {
        anyhow::bail!(
            "{} already holds an enrollment; pass --force to replace it, or --config-dir \
             for another one",
            dir.path().join(PROFILE_FILE).display()
        );
    }
    let server = Url::parse(&args.server)
        .map_err(|error| anyhow::anyhow!("--server {:?} is not a URL - {error}", args.server))?;
    let pin = args
        .pin_fingerprint
        .as_deref()
        .map(str::parse::<Fingerprint>)
        .transpose()
        .map_err(|error| anyhow::anyhow!("--pin-fingerprint: {error}"))?;
    let trust = match (&pin, &args.ca_cert) {
        (Some(pin), _) => Trust::Pinned(*pin),
        (None, Some(ca)) => Trust::CaFile(ca.clone()),
        (None, None) => Trust::SystemRoots,
    };
    let transport = TransportConfig {
        server: server.clone(),
        trust,
        insecure_http: args.insecure_http,
    };
    let http = transport::build_client(&transport)?;
    let hostname = hostname();
    let agent_name = args.name.clone().unwrap_or_else(|| hostname.clone());
    let client = ServerClient::new(http, &server);

    let enrolled = match client
        .enroll(&EnrollRequest {
            token: args.token.clone(),
            agent_name: agent_name.clone(),
            hostname: hostname.clone(),
        })
        .await
    {
        Ok(enrolled) => enrolled,
        Err(error) => return Err(explain_connect_failure(error.into(), &transport).await),
    };
    let client = client.with_credential(zeroize::Zeroizing::new(enrolled.credential.clone()));

    let (keys, repo) = tenant_keys(&client, &args, enrolled.tenant_keys_exist).await?;
    let agent_keys = if args.write_only {
        AgentKeys::WriteOnly(keys.write_keys())
    } else {
        AgentKeys::Full(keys)
    };

    write_private(&dir.path().join(KEYS_FILE), &agent_keys.to_json())?;
    write_private(
        &dir.path().join(CREDENTIAL_FILE),
        format!("{}\n", enrolled.credential).as_bytes(),
    )?;
    write_private(&dir.path().join(REPO_FILE), repo.to_json().as_bytes())?;
    let profile = Profile {
        server: server.to_string(),
        ca_cert: args.ca_cert.clone(),
        pin_fingerprint: pin.map(|pin| pin.to_string()),
        insecure_http: args.insecure_http,
        agent_id: enrolled.agent_id,
        tenant_id: enrolled.tenant_id,
        agent_name: agent_name.clone(),
        hostname,
        write_only: args.write_only,
    };
    let text = toml::to_string(&profile)?;
    crate::profile::files::write_atomic(&dir.path().join(PROFILE_FILE), text.as_bytes(), 0o644)?;

    eprintln!(
        "enrolled agent {agent_name:?} ({}) in tenant {}{}; configuration in {}",
        enrolled.agent_id,
        enrolled.tenant_id,
        if args.write_only {
            " as write-only: it can back up but never read a backup"
        } else {
            ""
        },
        dir.path().display()
    );
    Ok(Outcome::Success)
}

/// Creates the tenant's keys (first agent) or unwraps the stored ones.
async fn tenant_keys(
    client: &ServerClient,
    args: &EnrollArgs,
    exist: bool,
) -> anyhow::Result<(TenantKeys, RepoConfig)> {
    let stored = if exist {
        client.tenant_keys().await?
    } else {
        None
    };
    if let Some(bundle) = stored {
        return unwrap_bundle(&bundle, args);
    }
    let secret = passphrase::read(args.passphrase_file.as_deref(), true)?;
    let keys = TenantKeys::generate();
    let repo = RepoConfig::default();
    let secret_for_kdf = secret.clone();
    let keys_for_kdf = keys.clone();
    let wrapped = tokio::task::spawn_blocking(move || {
        WrappedTenantKeys::wrap_random(&keys_for_kdf, secret_for_kdf.as_bytes(), KdfParams::DEFAULT)
    })
    .await??;
    match client
        .put_tenant_keys(&TenantKeyBundle::new(wrapped, &repo))
        .await
    {
        Ok(()) => {
            eprintln!(
                "created the tenant's keys; keep the recovery passphrase safe - without it no \
                 backup of this tenant can be read"
            );
            Ok((keys, repo))
        }
        // Another first agent won the race: use its keys.
        Err(error) if error.code() == Some(codes::TENANT_KEYS_EXIST) => {
            let bundle = client.tenant_keys().await?.ok_or_else(|| {
                anyhow::anyhow!("the server said the tenant's keys exist but returned none")
            })?;
            unwrap_bundle(&bundle, args)
        }
        Err(error) => Err(error.into()),
    }
}

fn unwrap_bundle(
    bundle: &TenantKeyBundle,
    args: &EnrollArgs,
) -> anyhow::Result<(TenantKeys, RepoConfig)> {
    let repo = bundle.repo_config().map_err(|error| {
        anyhow::anyhow!("the tenant's repository config on the server is unusable - {error}")
    })?;
    let secret = passphrase::read(args.passphrase_file.as_deref(), false)?;
    let keys = bundle
        .wrapped_keys
        .unwrap(secret.as_bytes())
        .map_err(|error| {
            anyhow::anyhow!(
                "the passphrase does not open the tenant's keys ({error}); it is the one chosen \
             when the tenant's first agent enrolled"
            )
        })?;
    Ok((keys, repo))
}

/// Adds the server's certificate fingerprint to a TLS failure, so a
/// self-signed server can be pinned after comparing it out of band.
async fn explain_connect_failure(
    error: anyhow::Error,
    transport: &TransportConfig,
) -> anyhow::Error {
    let tls_problem = format!("{error:#}").contains("certificate");
    if transport.server.scheme() != "https" || !tls_problem {
        return error;
    }
    match transport::fetch_fingerprint(&transport.server).await {
        Ok(fingerprint) => error.context(format!(
            "the server presents the certificate {fingerprint}; if the server's operator \
             confirms it, run enroll again with --pin-fingerprint {fingerprint}"
        )),
        Err(_) => error,
    }
}

/// This machine's host name, as recorded in snapshots.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
