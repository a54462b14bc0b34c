//! `stowage verify [SNAPSHOT] [--read-data]`: checks that snapshots are
//! restorable and names what is not (see [`crate::verify`]). Exit 0 when
//! nothing is wrong, 1 when anything is.

use std::io::IsTerminal;

use crate::cli::{Global, Outcome, VerifyArgs};
use crate::context::AgentContext;
use crate::snapshot_select::{self, Hosts};
use crate::units::Bytes;
use crate::verify::{VerifyOptions, VerifyReport, verify};

/// Runs `stowage verify`.
///
/// # Errors
///
/// Not enrolled, write-only, no such snapshot, the server failing, or any
/// problem found (after the report is printed).
pub async fn run(global: &Global, args: VerifyArgs) -> anyhow::Result<Outcome> {
    let context = AgentContext::load(global)?;
    context.reading_keys("verify backups")?;
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| context.profile.hostname.clone());
    let snapshots = match &args.snapshot {
        Some(spec) => vec![snapshot_select::resolve(&context.client, spec, &host).await?],
        None => snapshot_select::list(&context.client, &Hosts::One(host.clone())).await?,
    };
    if snapshots.is_empty() {
        anyhow::bail!("host {host:?} has no snapshot to verify; --host names another");
    }
    let chatty = !args.json && !global.no_progress && std::io::stderr().is_terminal();
    let options = VerifyOptions {
        read_data: args.read_data,
        limit_download: args.limit_download,
    };
    let count = snapshots.len();
    let report = verify(&context, &snapshots, options, |phase| {
        if chatty {
            eprintln!("verify: {phase} ({count} snapshots)");
        }
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in problem_lines(&report) {
            eprintln!("{line}");
        }
        println!("{}", summary_line(&report));
    }
    if report.problems.is_empty() {
        Ok(Outcome::Success)
    } else {
        anyhow::bail!(
            "verify found {} problem(s) affecting {} file(s); see above",
            report.problems.len(),
            report.affected_file_count
        )
    }
}

/// Each problem, then each damaged file, one line each.
pub fn problem_lines(report: &VerifyReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .problems
        .iter()
        .map(|problem| format!("problem: {problem}"))
        .collect();
    for file in &report.affected_files {
        lines.push(format!(
            "damaged: snapshot {} file {:?} (blob {})",
            &file.snapshot.to_hex()[..16],
            file.path,
            file.blob
        ));
    }
    if report.affected_file_count > report.affected_files.len() as u64 {
        lines.push(format!(
            "… and {} more damaged files",
            report.affected_file_count - report.affected_files.len() as u64
        ));
    }
    lines
}

/// What was checked and the verdict, in one line.
pub fn summary_line(report: &VerifyReport) -> String {
    let data = if report.read_data {
        format!(
            ", {} blobs read ({})",
            report.blobs_read,
            Bytes(report.bytes_read)
        )
    } else {
        String::new()
    };
    format!(
        "checked {} snapshots: {} trees, {} files, {} chunks in {} packs{data} in {:.1} s - {}",
        report.snapshots,
        report.trees,
        report.files,
        report.data_blobs,
        report.packs,
        report.seconds,
        if report.problems.is_empty() {
            "no problems found".to_owned()
        } else {
            format!("{} problems", report.problems.len())
        }
    )
}
