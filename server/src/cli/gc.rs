//! `gc --tenant T [--dry-run] [--json]`: garbage collection of one tenant
//! from the command line (see [`crate::gc`] for what it does and why it is
//! safe beside running servers and backups). A run takes its turn
//! ([`crate::gc::claim`]): it waits while the server's scheduled collection
//! of the tenant, or another `gc`, runs, and the server's waits for it. It
//! counts in the tenant's run totals like a scheduled run.

use std::time::Duration;

use anyhow::Context;

use super::admin::{open, tenant_id};
use crate::configuration::Settings;
use crate::db::new_row_id;
use crate::gc::{self, GcOptions, claim};
use crate::storage;

/// `gc`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct GcArgs {
    /// Name of the tenant.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// Report what would be reclaimed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Delete a pack object with no index row only once it has had none
    /// for this long (an upload in flight writes the object first): 90s,
    /// 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_age)]
    pub orphan_min_age: Duration,
    /// Repack a pack holding dead blobs when its live blobs fill less than
    /// this percentage of it (0 turns repacking off).
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = gc::DEFAULT_REPACK_BELOW_PERCENT,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub repack_below: u8,
}

/// Runs garbage collection for the tenant and answers the report's text.
///
/// # Errors
///
/// Fails when the tenant does not exist, or the database or the object
/// store fails; what was done before stays done.
pub async fn run(settings: &Settings, args: &GcArgs) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, &args.tenant).await?;
    let name = args.tenant.trim();
    let store = storage::open(&settings.object_store)
        .await
        .context("unable to open the object store")?;
    let options = GcOptions {
        dry_run: args.dry_run,
        orphan_min_age: args.orphan_min_age,
        repack_below_percent: args.repack_below,
    };
    let report = if args.dry_run {
        // A dry run writes nothing, so it needs no turn.
        gc::collect(&db, store.as_ref(), tenant, options).await
    } else {
        let holder = format!("gc-command-{}", new_row_id());
        let held = claim::claim_when_free(&db, tenant, &holder, || {
            eprintln!(
                "stowage-server: another garbage collection of tenant {name:?} is running \
                 (the server's scheduled one, or another gc); waiting for it to finish"
            );
        })
        .await
        .with_context(|| format!("unable to claim the garbage collection of tenant {name:?}"))?;
        let outcome = gc::collect(&db, store.as_ref(), tenant, options).await;
        let recorded = match &outcome {
            Ok(report) => held.release(Ok(report)).await,
            Err(error) => held.release(Err(&format!("{error:#}"))).await,
        };
        if let Err(error) = recorded {
            eprintln!(
                "stowage-server: unable to record the run of tenant {name:?} (its claim runs out \
                 by itself within {} s) - {error}",
                claim::CLAIM_LEASE.as_secs()
            );
        }
        outcome
    }
    .with_context(|| format!("garbage collection of tenant {name:?} failed"))?;
    db.close().await;
    if args.json {
        Ok(format!("{}\n", serde_json::to_string_pretty(&report)?))
    } else {
        Ok(report.to_string())
    }
}

/// An age on the command line: `0s` (no wait, for tests and clean-ups with
/// every server stopped) or a lifetime as [`super::parse_ttl`] reads it.
fn parse_age(text: &str) -> Result<Duration, String> {
    if matches!(text.trim(), "0" | "0s" | "0m" | "0h" | "0d") {
        Ok(Duration::ZERO)
    } else {
        super::parse_ttl(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repack_below(extra: &[&str]) -> Result<u8, clap::Error> {
        use clap::Parser;
        let args = [&["stowage-server", "gc", "--tenant", "acme"][..], extra].concat();
        match crate::cli::Cli::try_parse_from(args)?.command {
            Some(crate::cli::Command::Gc(gc)) => Ok(gc.repack_below),
            other => panic!("not a gc command: {other:?}"),
        }
    }

    #[test]
    fn repack_below_defaults_to_eighty_percent_takes_zero_to_turn_off_and_refuses_over_100() {
        assert_eq!(repack_below(&[]).unwrap(), 80);
        assert_eq!(repack_below(&["--repack-below", "0"]).unwrap(), 0);
        assert_eq!(repack_below(&["--repack-below", "100"]).unwrap(), 100);
        assert!(repack_below(&["--repack-below", "101"]).is_err());
    }

    #[test]
    fn an_orphan_age_may_be_zero_or_a_lifetime() {
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_age("soon").unwrap_err().contains("\"soon\""));
    }
}
