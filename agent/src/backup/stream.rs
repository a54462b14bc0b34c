//! `--stdin-name NAME [--command 'CMD ARGS']`: one stream backed up as the
//! file NAME, the only entry of the snapshot's root — standard input, or
//! the standard output of `sh -c CMD ARGS`. A command that exits non-zero
//! or is killed fails the backup (with its status and the end of its
//! standard error) before anything is committed, so a half-written dump
//! never becomes a snapshot.

use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use stowage_protocol::crypto::IdKey;
use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{
    EntryContent, EntryName, FileChunk, Timestamp, TreeBuilder, TreeEntry,
};

use super::metadata::Owners;
use super::sink::BlobSink;
use super::stats::Stats;

/// How much of a failing command's standard error the message keeps.
const STDERR_TAIL: usize = 4096;

/// Backs up the stream and returns the root tree id.
///
/// # Errors
///
/// The command cannot start, fails or is killed; reading fails; the sink fails.
pub fn back_up_stream(
    sink: &dyn BlobSink,
    id_key: &IdKey,
    name: &EntryName,
    command: Option<&str>,
    stats: &Stats,
) -> anyhow::Result<BlobId> {
    let mut read = 0u64;
    let mut on_bytes = |bytes: u64| {
        read += bytes;
        Stats::add(&stats.bytes_read, bytes);
        Stats::add(&stats.bytes_done, bytes);
    };
    let chunks = match command {
        None => sink
            .store_stream(&mut std::io::stdin().lock(), &mut on_bytes)
            .context("backing up standard input failed")?,
        Some(command) => run_command(sink, command, &mut on_bytes)?,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let owners = Owners::default();
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let entry = TreeEntry {
        name: name.clone(),
        mode: 0o600,
        uid,
        gid,
        user: owners.user(uid),
        group: owners.group(gid),
        mtime: Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: now.subsec_nanos(),
        },
        size: read,
        xattrs: Vec::new(),
        content: EntryContent::File {
            hardlink: None,
            chunks,
        },
    };
    let built = std::iter::once(entry)
        .collect::<TreeBuilder>()
        .build_keyed(id_key)
        .context("unable to build the root tree")?;
    for blob in built.blobs {
        Stats::bump(&stats.tree_blobs);
        sink.store_tree(blob)
            .context("storing the root tree failed")?;
    }
    Stats::bump(&stats.files);
    Stats::bump(&stats.files_new);
    Stats::bump(&stats.dirs);
    Stats::bump(&stats.dirs_new);
    Stats::add(&stats.total_bytes, read);
    Ok(built.root)
}

fn run_command(
    sink: &dyn BlobSink,
    command: &str,
    on_bytes: &mut dyn FnMut(u64),
) -> anyhow::Result<Vec<FileChunk>> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("unable to start the command {command:?}"))?;
    let mut stdout = child
        .stdout
        .take()
        .context("the command has no standard output")?;
    let mut stderr = child
        .stderr
        .take()
        .context("the command has no standard error")?;
    let tail = std::thread::spawn(move || {
        let mut tail = Vec::new();
        let mut buffer = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buffer[..n]);
            if tail.len() > STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        tail
    });
    let stored = sink.store_stream(&mut stdout, on_bytes);
    if stored.is_err() {
        let _ = child.kill();
    }
    drop(stdout);
    let status = child
        .wait()
        .with_context(|| format!("unable to wait for the command {command:?}"))?;
    let tail = tail.join().unwrap_or_default();
    if !status.success() {
        let tail = String::from_utf8_lossy(&tail);
        let tail = tail.trim_end();
        anyhow::bail!(
            "the command {command:?} failed ({status}); nothing was committed{}",
            if tail.is_empty() {
                String::new()
            } else {
                format!("; the end of its standard error:\n{tail}")
            }
        );
    }
    stored.with_context(|| format!("backing up the output of {command:?} failed"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use stowage_protocol::tree::TreeNode;

    use super::*;
    use crate::backup::sink::memory::MemorySink;

    #[test]
    fn a_command_output_becomes_the_single_file_of_the_root() {
        // Arrange
        let sink = MemorySink::new();
        let stats = Stats::default();
        let name = EntryName::try_from("dump.sql").unwrap();

        // Act
        let root = back_up_stream(
            &sink,
            &sink.key,
            &name,
            Some("printf 'abc'; printf def"),
            &stats,
        )
        .unwrap();

        // Assert
        let trees = sink.trees.lock().unwrap();
        let TreeNode::Leaf(entries) = TreeNode::decode(&trees[&root]).unwrap() else {
            panic!("a leaf");
        };
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, name);
        assert_eq!(entries[0].size, 6);
        assert_eq!(stats.bytes_read.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_failing_command_fails_with_its_status_and_stderr_tail() {
        let sink = MemorySink::new();
        let name = EntryName::try_from("dump").unwrap();
        let err = back_up_stream(
            &sink,
            &sink.key,
            &name,
            Some("echo partial; echo 'db is down' >&2; exit 3"),
            &Stats::default(),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("db is down"), "{text}");
        assert!(
            sink.trees.lock().unwrap().is_empty(),
            "no tree for a failed stream"
        );
    }

    #[test]
    fn a_killed_command_fails_naming_the_signal() {
        let sink = MemorySink::new();
        let name = EntryName::try_from("dump").unwrap();
        let err = back_up_stream(
            &sink,
            &sink.key,
            &name,
            Some("kill -9 $$"),
            &Stats::default(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("signal: 9"), "{err:#}");
    }
}
