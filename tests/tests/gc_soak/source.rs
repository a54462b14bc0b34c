//! The changing source tree of one soak agent, and manifests of trees.
//!
//! Each agent's tree has its own files under `own/` and copies of a pool
//! shared by every agent under `shared/`. Every round rewrites some own
//! files (new content, new size), adds one, puts a pool item into one of
//! three shared slots and deletes files beyond a cap, so each backup both
//! adds data and lets old data die. The pool's items are the same bytes on
//! every agent, so their chunks dedup across agents: an item one agent
//! dropped long ago (and whose snapshots retention forgot) may still be
//! what another agent's newest snapshot needs — the case garbage collection
//! must get right. Contents come from BLAKE3's output stream (incompressible
//! and deterministic per agent and round), sized 100 KiB to 1.4 MiB, at
//! most [`MAX_FILES`] of them: under 20 MB per agent.
//!
//! A [`Manifest`] is what a tree held, by relative path: size and BLAKE3
//! hash. Restores are compared with the manifest taken just before their
//! backup, so the test keeps hashes, not copies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stowage_e2e::fixture::write_random;

/// Relative path → (size, BLAKE3 of the content).
pub type Manifest = BTreeMap<String, (u64, blake3::Hash)>;

/// Items in the pool every agent draws its shared files from.
const SHARED_POOL: u64 = 12;
/// Shared slots per agent (`shared/slot-N.bin`).
const SHARED_SLOTS: u64 = 3;
/// Most files a tree holds after a round.
pub const MAX_FILES: usize = 14;

/// One agent's source tree.
#[derive(Debug)]
pub struct Source {
    /// The directory given to `stowage backup`.
    pub root: PathBuf,
    agent: usize,
    /// The number the next added own file gets.
    next_file: u32,
}

impl Source {
    /// Creates the tree of agent `agent` under `root`: six own files and
    /// every shared slot filled.
    pub fn new(root: PathBuf, agent: usize) -> Self {
        std::fs::create_dir_all(root.join("own")).unwrap();
        std::fs::create_dir_all(root.join("shared")).unwrap();
        let mut source = Self {
            root,
            agent,
            next_file: 0,
        };
        for _ in 0..6 {
            source.add_own(0);
        }
        for slot in 0..SHARED_SLOTS {
            source.fill_slot(slot, pick(agent, 0, &format!("slot-{slot}"), SHARED_POOL));
        }
        source
    }

    /// Round `round`'s changes; see the module docs.
    pub fn change(&mut self, round: u32) {
        let own = self.own_files();
        for what in ["rewrite-a", "rewrite-b"] {
            let victim = &own[index(self.agent, round, what, own.len())];
            let size = file_size(self.agent, round, what);
            write_random(
                victim,
                &format!("agent-{}-round-{round}-{what}", self.agent),
                size,
            );
        }
        self.add_own(round);
        let slot = pick(self.agent, round, "slot", SHARED_SLOTS);
        let item = pick(self.agent, round, "item", SHARED_POOL);
        self.fill_slot(slot, item);
        if pick(self.agent, round, "drop-shared", 4) == 0 {
            let slot = pick(self.agent, round, "drop-slot", SHARED_SLOTS);
            let _ = std::fs::remove_file(self.slot_path(slot));
        }
        let mut own = self.own_files();
        while own.len() + self.shared_count() > MAX_FILES {
            let victim = own.remove(index(self.agent, round, "delete", own.len()));
            std::fs::remove_file(&victim).unwrap();
        }
    }

    /// What the tree holds now.
    pub fn manifest(&self) -> Manifest {
        manifest_of(&self.root)
    }

    fn add_own(&mut self, round: u32) {
        let path = self
            .root
            .join("own")
            .join(format!("file-{:04}.bin", self.next_file));
        let what = format!("add-{}", self.next_file);
        write_random(
            &path,
            &format!("agent-{}-round-{round}-{what}", self.agent),
            file_size(self.agent, round, &what),
        );
        self.next_file += 1;
    }

    fn fill_slot(&self, slot: u64, item: u64) {
        write_random(
            &self.slot_path(slot),
            &format!("soak-shared-{item}"),
            300 * 1024 + item * 100 * 1024,
        );
    }

    fn slot_path(&self, slot: u64) -> PathBuf {
        self.root.join("shared").join(format!("slot-{slot}.bin"))
    }

    fn own_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.root.join("own"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn shared_count(&self) -> usize {
        std::fs::read_dir(self.root.join("shared")).unwrap().count()
    }
}

/// The manifest of the tree under `root` (regular files only; the soak
/// trees hold nothing else).
pub fn manifest_of(root: &Path) -> Manifest {
    let mut manifest = Manifest::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            manifest.insert(name, (bytes.len() as u64, blake3::hash(&bytes)));
        }
    }
    manifest
}

/// How `actual` differs from `expected`, one sentence per file.
pub fn differences(expected: &Manifest, actual: &Manifest) -> Vec<String> {
    let mut found = Vec::new();
    for (name, want) in expected {
        match actual.get(name) {
            None => found.push(format!("file {name} is missing")),
            Some(got) if got != want => found.push(format!(
                "file {name} differs: {} bytes (blake3 {}) instead of {} bytes (blake3 {})",
                got.0,
                got.1.to_hex(),
                want.0,
                want.1.to_hex()
            )),
            Some(_) => {}
        }
    }
    for name in actual.keys().filter(|name| !expected.contains_key(*name)) {
        found.push(format!("file {name} was not in the source"));
    }
    found
}

/// A number below `n` drawn from agent, round and purpose.
fn pick(agent: usize, round: u32, what: &str, n: u64) -> u64 {
    let hash = blake3::hash(format!("{agent}/{round}/{what}").as_bytes());
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap()) % n
}

fn index(agent: usize, round: u32, what: &str, len: usize) -> usize {
    usize::try_from(pick(agent, round, what, len as u64)).unwrap()
}

/// 100 KiB to 1 MiB: one to two chunks (the chunker's minimum is 512 KiB).
fn file_size(agent: usize, round: u32, what: &str) -> u64 {
    100 * 1024 + pick(agent, round, &format!("{what}-size"), 924 * 1024)
}
