//! `stowage service install|uninstall`: puts `stowage daemon` under
//! systemd, or takes it away (see [`crate::service`]).

use crate::cli::{Global, Outcome, ServiceAction, ServiceArgs};
use crate::profile::{self, ConfigDir};
use crate::service::{self, Agent, ServiceOptions};

/// Runs `stowage service`.
///
/// # Errors
///
/// As [`service::install`] and [`service::uninstall`]; also when the
/// running executable cannot be found and no --binary was given.
#[allow(
    clippy::unused_async,
    reason = "every command's run is async (see commands/mod.rs)"
)]
pub async fn run(global: &Global, args: ServiceArgs) -> anyhow::Result<Outcome> {
    let said = match args.action {
        ServiceAction::Install(install) => {
            let binary = match install.binary {
                Some(binary) => binary,
                None => std::env::current_exe().map_err(|error| {
                    anyhow::anyhow!(
                        "unable to find this program's own path ({error}); pass --binary"
                    )
                })?,
            };
            let agent = Agent {
                binary,
                config_dir: ConfigDir::resolve(global.config_dir.clone())?,
                cache_dir: global.cache_dir.clone(),
            };
            service::install(&agent, &options(install.unit_dir, !install.no_start))?
        }
        ServiceAction::Uninstall(uninstall) => {
            service::uninstall(&options(uninstall.unit_dir, !uninstall.no_stop))?
        }
    };
    for line in said {
        eprintln!("stowage service: {line}");
    }
    Ok(Outcome::Success)
}

fn options(unit_dir: Option<std::path::PathBuf>, use_systemctl: bool) -> ServiceOptions {
    ServiceOptions {
        unit_dir,
        use_systemctl,
        systemctl: service::systemctl::find(),
        is_root: profile::is_root(),
    }
}
