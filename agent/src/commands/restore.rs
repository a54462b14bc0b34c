//! `stowage restore SNAPSHOT[:PATH] --target DIR`: restores a snapshot, or
//! the directory or file PATH inside it, into DIR (see [`crate::restore`]).
//!
//! `--include` paths are relative to what is restored (the snapshot root,
//! or PATH). Problems are printed on standard error, those caused by one
//! damaged or missing blob grouped with every file it affects; any error
//! makes the command fail (exit 1) once everything else is restored.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::cli::{Global, Outcome, RestoreArgs};
use crate::context::AgentContext;
use crate::reader::RepoReader;
use crate::restore::walk::{self, Filter};
use crate::restore::{self, Problems, RestoreOptions, Summary};
use crate::snapshot_select;
use crate::throttle::Throttle;
use crate::units::Bytes;

/// Runs `stowage restore`.
///
/// # Errors
///
/// A write-only agent, an unknown snapshot or path, an unusable target, an
/// unreachable server, or any entry that could not be restored.
pub async fn run(global: &Global, args: RestoreArgs) -> anyhow::Result<Outcome> {
    let context = AgentContext::load(global)?;
    let keys = context.reading_keys("restore a backup")?.clone();
    let (spec, inner) = split_spec(&args.snapshot);
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| context.profile.hostname.clone());
    let item = snapshot_select::resolve(&context.client, spec, &host).await?;
    let throttle = Arc::new(Throttle::new(args.limit_download));
    let reader = RepoReader::new(context.client.clone(), keys, throttle);
    let start = walk::resolve(&reader, item.record.root, inner.as_bytes()).await?;
    let options = RestoreOptions {
        overwrite: args.overwrite,
        filter: Filter::new(args.include.iter().map(|p| p.as_os_str().as_bytes())),
        show_progress: !args.json && !global.no_progress && std::io::stderr().is_terminal(),
        tally: Arc::default(),
    };
    let summary = restore::restore(&reader, start, &args.target, &options).await?;
    if args.json {
        println!(
            "{}",
            summary_json(&item.id.to_hex(), &args.target, &summary)
        );
    } else {
        eprintln!("{}", summary_line(&summary, &args.target));
    }
    for line in problem_lines(&summary.problems) {
        eprintln!("{line}");
    }
    let errors = failed_entries(&summary.problems);
    if errors > 0 {
        anyhow::bail!(
            "restore of snapshot {} into {} finished with {errors} entries not restored (listed above)",
            item.id,
            args.target.display()
        );
    }
    Ok(Outcome::Success)
}

/// `SNAPSHOT:PATH` → (`SNAPSHOT`, `PATH`); no colon → the whole snapshot.
fn split_spec(spec: &str) -> (&str, &str) {
    spec.split_once(':').unwrap_or((spec, ""))
}

/// What a restore did, in one line.
pub fn summary_line(summary: &Summary, target: &Path) -> String {
    format!(
        "restored {} files ({}), {} directories, {} hard links, {} other entries into {} in {:.1}s; {} left as they were",
        summary.counts.files,
        Bytes(summary.bytes),
        summary.counts.dirs,
        summary.counts.hardlinks,
        summary.counts.special,
        target.display(),
        summary.duration.as_secs_f64(),
        summary.counts.skipped,
    )
}

/// Warnings, then errors grouped by cause (one damaged blob → all its
/// files), one line each.
pub fn problem_lines(problems: &Problems) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, warning) in &problems.warnings {
        lines.push(format!(
            "warning: {}: {warning}",
            String::from_utf8_lossy(path)
        ));
    }
    for (cause, paths) in group(&problems.errors) {
        if paths.len() == 1 {
            lines.push(format!("error: {}: {cause}", paths[0]));
        } else {
            lines.push(format!("error: {cause}; affects {} entries:", paths.len()));
            lines.extend(paths.into_iter().map(|path| format!("  {path}")));
        }
    }
    lines
}

/// How many distinct entries failed to restore.
pub fn failed_entries(problems: &Problems) -> usize {
    problems
        .errors
        .iter()
        .map(|(path, _)| path)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Errors grouped by message, in first-seen order.
fn group(errors: &[(Vec<u8>, String)]) -> Vec<(&str, Vec<String>)> {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (path, message) in errors {
        let path = String::from_utf8_lossy(path).into_owned();
        let slot = *index.entry(message.as_str()).or_insert_with(|| {
            groups.push((message.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(path);
    }
    groups
}

fn summary_json(snapshot: &str, target: &Path, summary: &Summary) -> serde_json::Value {
    let entries = |list: &[(Vec<u8>, String)]| {
        list.iter()
            .map(|(path, message)| {
                json!({"path": String::from_utf8_lossy(path), "message": message})
            })
            .collect::<Vec<_>>()
    };
    json!({
        "snapshot": snapshot,
        "target": target.to_string_lossy(),
        "files": summary.counts.files,
        "dirs": summary.counts.dirs,
        "hardlinks": summary.counts.hardlinks,
        "special": summary.counts.special,
        "skipped": summary.counts.skipped,
        "bytes": summary.bytes,
        "duration_seconds": summary.duration.as_secs_f64(),
        "errors": entries(&summary.problems.errors),
        "warnings": entries(&summary.problems.warnings),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_after_the_first_colon_selects_part_of_the_snapshot() {
        assert_eq!(split_spec("latest"), ("latest", ""));
        assert_eq!(split_spec("ab12:/etc/ssh"), ("ab12", "/etc/ssh"));
        assert_eq!(split_spec("latest:/a:b"), ("latest", "/a:b"));
    }

    #[test]
    fn errors_with_one_cause_are_grouped_with_every_affected_file() {
        let errors = vec![
            (b"a".to_vec(), "blob 1 in pack 2 is damaged".to_owned()),
            (b"b".to_vec(), "cannot be created".to_owned()),
            (b"c".to_vec(), "blob 1 in pack 2 is damaged".to_owned()),
        ];
        let grouped = group(&errors);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].0, "blob 1 in pack 2 is damaged");
        assert_eq!(grouped[0].1, ["a", "c"]);
        assert_eq!(grouped[1].1, ["b"]);
    }
}
