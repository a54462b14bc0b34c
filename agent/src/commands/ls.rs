//! `stowage ls SNAPSHOT [PATH]`: every entry of a snapshot (or below PATH
//! in it), recursively, depth first in name order — mode, owner, size,
//! mtime and path, or one JSON object per line with `--json`.
//!
//! File names live only in sealed trees, so listing needs the keys that
//! open them: a write-only agent is refused.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use chrono::DateTime;
use serde_json::json;
use stowage_protocol::tree::{EntryContent, EntryKind, TreeEntry};

use crate::cli::{Global, LsArgs, Outcome};
use crate::context::AgentContext;
use crate::reader::RepoReader;
use crate::restore::walk::{self, Filter, Listing, Node, Start};
use crate::snapshot_select;
use crate::throttle::Throttle;

/// Runs `stowage ls`.
///
/// # Errors
///
/// A write-only agent, an unknown snapshot or path, an unreachable server,
/// or a directory that could not be read (after listing everything else).
pub async fn run(global: &Global, args: LsArgs) -> anyhow::Result<Outcome> {
    let context = AgentContext::load(global)?;
    let keys = context.reading_keys("list the files of a backup")?.clone();
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| context.profile.hostname.clone());
    let item = snapshot_select::resolve(&context.client, &args.snapshot, &host).await?;
    let reader = RepoReader::new(context.client.clone(), keys, Arc::new(Throttle::new(None)));
    let inner = args
        .path
        .as_ref()
        .map(|p| walk::normalize(p.as_os_str().as_bytes()))
        .unwrap_or_default();
    let listing = match walk::resolve(&reader, item.record.root, &inner).await? {
        Start::Tree(tree) => walk::walk(&reader, tree, &Filter::default()).await?,
        Start::Entry(entry) => Listing {
            nodes: vec![Node {
                path: Vec::new(),
                parent: None,
                entry,
            }],
            errors: Vec::new(),
        },
    };
    let mut out = String::new();
    for node in &listing.nodes {
        let path = full_path(&inner, &node.path);
        if args.json {
            let _ = writeln!(out, "{}", entry_json(&path, &node.entry));
        } else {
            let _ = writeln!(out, "{}", line(&path, &node.entry));
        }
        if out.len() > 1 << 16 {
            print!("{out}");
            out.clear();
        }
    }
    print!("{out}");
    for (path, error) in &listing.errors {
        eprintln!(
            "error: {}: directory not listed - {error}",
            String::from_utf8_lossy(&full_path(&inner, path))
        );
    }
    if !listing.errors.is_empty() {
        anyhow::bail!(
            "{} directories of snapshot {} could not be read",
            listing.errors.len(),
            item.id
        );
    }
    Ok(Outcome::Success)
}

/// `/inner/path`, the entry's path inside the snapshot.
fn full_path(inner: &[u8], path: &[u8]) -> Vec<u8> {
    let mut full = vec![b'/'];
    full.extend_from_slice(inner);
    if !inner.is_empty() && !path.is_empty() {
        full.push(b'/');
    }
    full.extend_from_slice(path);
    full
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::BlockDevice => "block_device",
        EntryKind::CharDevice => "char_device",
        EntryKind::Fifo => "fifo",
        EntryKind::Socket => "socket",
    }
}

/// `drwxr-xr-x`-style mode text, special bits included.
fn mode_text(kind: EntryKind, mode: u32) -> String {
    let mut text = String::with_capacity(10);
    text.push(match kind {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::BlockDevice => 'b',
        EntryKind::CharDevice => 'c',
        EntryKind::Fifo => 'p',
        EntryKind::Socket => 's',
    });
    for (shift, special, set, unset) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(match (mode & special != 0, bits & 1 != 0) {
            (true, true) => set,
            (true, false) => unset,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

fn owner(name: &[u8], id: u32) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        String::from_utf8_lossy(name).into_owned()
    }
}

fn mtime_text(entry: &TreeEntry) -> String {
    DateTime::from_timestamp(entry.mtime.seconds, entry.mtime.nanos).map_or_else(
        || format!("{}s", entry.mtime.seconds),
        |time| time.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn link_target(entry: &TreeEntry) -> Option<String> {
    match &entry.content {
        EntryContent::Symlink { target } => Some(String::from_utf8_lossy(target).into_owned()),
        _ => None,
    }
}

/// One human line: mode, owner/group, size, mtime (UTC), path[ -> target].
fn line(path: &[u8], entry: &TreeEntry) -> String {
    let mut text = format!(
        "{} {:>8}/{:<8} {:>12} {} {}",
        mode_text(entry.kind(), entry.mode),
        owner(&entry.user, entry.uid),
        owner(&entry.group, entry.gid),
        entry.size,
        mtime_text(entry),
        String::from_utf8_lossy(path)
    );
    if let Some(target) = link_target(entry) {
        let _ = write!(text, " -> {target}");
    }
    text
}

fn entry_json(path: &[u8], entry: &TreeEntry) -> serde_json::Value {
    let mtime = DateTime::from_timestamp(entry.mtime.seconds, entry.mtime.nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    let mut value = json!({
        "path": String::from_utf8_lossy(path),
        "type": kind_name(entry.kind()),
        "mode": entry.mode,
        "uid": entry.uid,
        "gid": entry.gid,
        "user": String::from_utf8_lossy(&entry.user),
        "group": String::from_utf8_lossy(&entry.group),
        "size": entry.size,
        "mtime": mtime,
    });
    if std::str::from_utf8(path).is_err() {
        value["path_hex"] = json!(hex::encode(path));
    }
    if let Some(target) = link_target(entry) {
        value["link_target"] = json!(target);
    }
    value
}

#[cfg(test)]
mod tests {
    use stowage_protocol::tree::{EntryName, Timestamp};

    use super::*;

    fn entry(mode: u32, content: EntryContent) -> TreeEntry {
        TreeEntry {
            name: EntryName::try_from("x").unwrap(),
            mode,
            uid: 1000,
            gid: 100,
            user: b"alice".to_vec(),
            group: Vec::new(),
            mtime: Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            },
            size: 42,
            xattrs: Vec::new(),
            content,
        }
    }

    #[test]
    fn modes_read_like_ls_including_special_bits() {
        assert_eq!(mode_text(EntryKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_text(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_text(EntryKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_text(EntryKind::Dir, 0o1777), "drwxrwxrwt");
    }

    #[test]
    fn a_line_shows_owner_names_or_ids_and_the_link_target() {
        let link = entry(
            0o777,
            EntryContent::Symlink {
                target: b"../t".to_vec(),
            },
        );
        let text = line(b"/a/x", &link);
        assert!(text.starts_with("lrwxrwxrwx    alice/100"), "{text}");
        assert!(text.ends_with("2023-11-14 22:13:20 /a/x -> ../t"), "{text}");
    }

    #[test]
    fn json_lines_carry_every_field_and_hex_for_non_utf8_paths() {
        let file = entry(
            0o644,
            EntryContent::File {
                hardlink: None,
                chunks: Vec::new(),
            },
        );
        let value = entry_json(b"/caf\xe9", &file);
        assert_eq!(value["type"], "file");
        assert_eq!(value["size"], 42);
        assert_eq!(value["mtime"], "2023-11-14T22:13:20.000000005Z");
        assert_eq!(value["path_hex"], "2f636166e9");
    }

    #[test]
    fn paths_are_shown_from_the_snapshot_root() {
        assert_eq!(full_path(b"", b"a/b"), b"/a/b");
        assert_eq!(full_path(b"etc", b"ssh"), b"/etc/ssh");
        assert_eq!(full_path(b"etc/hosts", b""), b"/etc/hosts");
    }
}
