//! The agent's upload engine against the real server, in process: SQLite and
//! the local store in a temp dir, plain HTTP on 127.0.0.1.
//!
//! Each test creates a tenant and an enrollment token through the server's
//! database functions, enrolls an agent with the agent's own client, makes
//! tenant keys locally and drives `stowage_agent::upload::Uploader` from the
//! test thread (its methods block, as they do on the backup's worker threads).
//! What the engine stored is read back through the restore API (locate,
//! ranged pack reads) and opened with the tenant's secret.
//!
//! `store_stream_throughput_over_real_files` is the engine's benchmark
//! (ignored by default; see its doc).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use stowage_agent::api::{RetryPolicy, ServerClient};
use stowage_agent::transport::{TransportConfig, Trust, Url, build_client};
use stowage_agent::upload::{UploadError, UploadOptions, UploadProgress, Uploader};
use stowage_protocol::api::EnrollRequest;
use stowage_protocol::blob::{BlobKind, open_blob};
use stowage_protocol::chunker::ChunkerParams;
use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::{TenantKeys, open_data_key};
use stowage_protocol::ids::{AgentId, BlobId, PackId, TenantId, UploadSessionId};
use stowage_protocol::pack::{PACK_HEADER_LEN, PackHeader};
use stowage_protocol::snapshot::{RawPath, SnapshotRecord, SnapshotSummary};
use stowage_protocol::tree::{
    EntryContent, EntryName, FileChunk, Timestamp, TreeBuilder, TreeEntry,
};
use stowage_server::configuration::Settings;
use stowage_server::db::{enrollment_tokens, tenants};
use stowage_server::domain::TenantName;
use stowage_server::startup::Application;
use tempfile::TempDir;
use zeroize::Zeroizing;

/// A running server with one enrolled agent of one tenant.
struct Harness {
    runtime: tokio::runtime::Runtime,
    client: ServerClient,
    keys: TenantKeys,
    agent: AgentId,
    tenant: TenantId,
    data_dir: TempDir,
}

/// Small chunks and 1 MiB packs, so a few MiB of test data make many of each.
fn small_repo() -> RepoConfig {
    RepoConfig {
        chunker: ChunkerParams {
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
            normalization: 1,
        },
        pack_target_size: 1024 * 1024,
        ..RepoConfig::default()
    }
}

/// `len` pseudo-random (incompressible) bytes, the same for the same `seed`.
fn random_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Starts the server and enrolls an agent (with a quick retry policy, so a
/// refused upload fails in well under a second).
fn harness(extra_env: &[(&str, &str)]) -> Harness {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let data_dir = tempfile::tempdir().expect("a temp dir");
    let mut env: HashMap<String, String> = HashMap::from([
        ("STOWAGE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "STOWAGE_DATA_DIR".to_owned(),
            data_dir.path().display().to_string(),
        ),
    ]);
    for (key, value) in extra_env {
        env.insert((*key).to_owned(), (*value).to_owned());
    }
    let settings = Settings::from_sources(None, &env).expect("the settings are valid");
    let (client, agent, tenant) = runtime.block_on(async {
        let app = Application::build(settings)
            .await
            .expect("the server builds");
        let db = app.database().clone();
        let tenant = tenants::insert(&db, &TenantName::parse("upload-engine").unwrap())
            .await
            .expect("the tenant is created");
        let token = enrollment_tokens::create(&db, tenant.id, Duration::from_mins(10))
            .await
            .expect("a token is created");
        let url = Url::parse(&format!("http://127.0.0.1:{}", app.port())).unwrap();
        tokio::spawn(app.run_until_stopped());
        let http = build_client(&TransportConfig {
            server: url.clone(),
            trust: Trust::SystemRoots,
            insecure_http: true,
        })
        .expect("the agent's client builds");
        let client = ServerClient::new(http, &url).with_retry(RetryPolicy {
            attempts: 2,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        });
        let enrolled = client
            .enroll(&EnrollRequest {
                token: token.secret.expose_secret().to_owned(),
                agent_name: "engine".to_owned(),
                hostname: "engine-host".to_owned(),
            })
            .await
            .expect("the agent enrolls");
        let client = client.with_credential(Zeroizing::new(enrolled.credential));
        (client, enrolled.agent_id, tenant.id)
    });
    Harness {
        runtime,
        client,
        keys: TenantKeys::generate(),
        agent,
        tenant,
        data_dir,
    }
}

impl Harness {
    fn session(&self) -> UploadSessionId {
        self.runtime
            .block_on(self.client.open_session(None))
            .expect("a session opens")
            .session_id
    }

    /// An engine on a fresh session.
    fn uploader(&self, repo: &RepoConfig) -> (Uploader, UploadSessionId) {
        let session = self.session();
        let uploader = Uploader::start(
            self.client.clone(),
            self.runtime.handle().clone(),
            session,
            self.keys.write_keys(),
            repo,
            UploadOptions::default(),
        )
        .expect("the engine starts");
        (uploader, session)
    }

    /// Reads each blob back through locate and ranged pack reads, opens it
    /// with the tenant secret and returns (pack, kind, plaintext) per id.
    fn read_back(&self, ids: &[BlobId]) -> Vec<(PackId, BlobKind, Vec<u8>)> {
        self.runtime.block_on(async {
            let located = self
                .client
                .locate(ids.to_vec())
                .await
                .expect("locate works");
            assert!(located.unknown.is_empty(), "unknown: {:?}", located.unknown);
            let by_id: HashMap<BlobId, _> = located
                .found
                .into_iter()
                .map(|found| (found.id, found))
                .collect();
            let mut out = Vec::new();
            for id in ids {
                let found = &by_id[id];
                let header = self
                    .client
                    .pack_range(&found.pack_id, 0..PACK_HEADER_LEN as u64)
                    .await
                    .expect("the pack header reads");
                let header = PackHeader::decode(&header).expect("the pack header parses");
                let key = open_data_key(&header.sealed_key, &self.keys.recovery_secret)
                    .expect("the tenant secret opens the pack's data key");
                let start = u64::from(found.offset);
                let sealed = self
                    .client
                    .pack_range(&found.pack_id, start..start + u64::from(found.length))
                    .await
                    .expect("the blob reads");
                let plaintext = open_blob(&key, id, found.kind, &sealed, 64 << 20)
                    .expect("the blob opens and its id matches");
                out.push((found.pack_id, found.kind, plaintext));
            }
            out
        })
    }

    /// Commits a snapshot whose root is `root`.
    fn commit(&self, session: &UploadSessionId, root: BlobId) {
        let now = chrono::Utc::now();
        let record = SnapshotRecord {
            root,
            parent: None,
            hostname: "engine-host".to_owned(),
            agent: self.agent,
            plan: None,
            paths: vec![RawPath::from("/engine")],
            tags: Vec::new(),
            started_at: now,
            finished_at: now,
            summary: SnapshotSummary::default(),
            error_log: None,
        };
        self.runtime
            .block_on(self.client.commit(session, &record))
            .expect("the server commits: every blob is stored or leased");
    }
}

fn store(uploader: &Uploader, data: &[u8]) -> Vec<FileChunk> {
    let mut read = 0;
    let chunks = uploader
        .store_stream(&mut &data[..], &mut |n| read += n)
        .expect("the stream is stored");
    assert_eq!(read, data.len() as u64, "on_bytes heard every byte read");
    let lengths: u64 = chunks.iter().map(|chunk| u64::from(chunk.len)).sum();
    assert_eq!(lengths, read, "the chunk lengths add up to the stream");
    chunks
}

/// The chunks' ids, in order.
fn ids_of(chunks: &[FileChunk]) -> Vec<BlobId> {
    chunks.iter().map(|chunk| chunk.id).collect()
}

/// A directory with one file per chunk list, as the backup builds it.
fn tree_of(
    keys: &TenantKeys,
    files: &[(&str, &[FileChunk], u64)],
) -> stowage_protocol::tree::BuiltTree {
    let mut builder = TreeBuilder::new();
    for (name, chunks, size) in files {
        builder.push(TreeEntry {
            name: EntryName::new(name.as_bytes()).unwrap(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: Vec::new(),
            group: Vec::new(),
            mtime: Timestamp::default(),
            size: *size,
            xattrs: Vec::new(),
            content: EntryContent::File {
                hardlink: None,
                chunks: chunks.to_vec(),
            },
        });
    }
    builder.build_keyed(&keys.id_key).expect("the tree builds")
}

#[test]
fn stored_streams_and_trees_come_back_byte_identical_from_separate_packs() {
    // Arrange
    let harness = harness(&[]);
    let repo = small_repo();
    let (uploader, session) = harness.uploader(&repo);
    let random = random_bytes("round trip", 5 * 1024 * 1024 + 123);
    let text = b"compressible line of text\n".repeat(100_000);
    let empty: Vec<u8> = Vec::new();

    // Act
    let random_ids = store(&uploader, &random);
    let text_ids = store(&uploader, &text);
    let empty_ids = store(&uploader, &empty);
    let log_id = uploader.store_data(b"error log".to_vec()).unwrap();
    let tree = tree_of(
        &harness.keys,
        &[
            ("random", &random_ids, random.len() as u64),
            ("text", &text_ids, text.len() as u64),
        ],
    );
    for blob in tree.blobs.clone() {
        uploader.store_tree(blob).unwrap();
    }
    let progress = uploader.finish().expect("every upload succeeds");

    // Assert
    assert!(empty_ids.is_empty());
    assert!(random_ids.len() > 10, "{} chunks", random_ids.len());
    let back = harness.read_back(&ids_of(&random_ids));
    let joined: Vec<u8> = back.iter().flat_map(|(_, _, p)| p.clone()).collect();
    assert!(
        joined == random,
        "the random stream reassembles byte for byte"
    );
    for ((_, _, plaintext), chunk) in back.iter().zip(&random_ids) {
        assert_eq!(plaintext.len(), chunk.len as usize, "chunk {}", chunk.id);
    }
    let text_back = harness.read_back(&ids_of(&text_ids));
    let joined: Vec<u8> = text_back.iter().flat_map(|(_, _, p)| p.clone()).collect();
    assert!(joined == text, "the text stream reassembles byte for byte");
    assert_eq!(harness.read_back(&[log_id])[0].2, b"error log");
    let tree_back = harness.read_back(&[tree.root]);
    assert_eq!(tree_back[0].1, BlobKind::Tree);
    let data_packs: HashSet<PackId> = back.iter().map(|(pack, _, _)| *pack).collect();
    assert!(
        data_packs.len() >= 4,
        "5 MiB in 1 MiB packs: {}",
        data_packs.len()
    );
    assert!(
        !data_packs.contains(&tree_back[0].0),
        "the tree shares a pack with data"
    );
    assert!(
        progress.bytes_sealed < (random.len() + text.len() / 10) as u64,
        "the text was compressed: {progress:?}"
    );
    assert_eq!(progress.tree_packs_uploaded, 1, "{progress:?}");
    assert_eq!(
        progress.packs_uploaded,
        progress.data_packs_uploaded + progress.tree_packs_uploaded
    );
    assert_eq!(progress.bytes_read, (random.len() + text.len()) as u64);
    assert_eq!(
        progress.chunks_new,
        progress.chunks + 1,
        "all chunks and the log are new"
    );
    harness.commit(&session, tree.root);
}

#[test]
fn a_second_store_of_the_same_data_uploads_no_pack() {
    // Arrange
    let harness = harness(&[]);
    let repo = small_repo();
    let data = random_bytes("second store", 3 * 1024 * 1024);
    let (first, session) = harness.uploader(&repo);
    let ids = store(&first, &data);
    let tree = tree_of(&harness.keys, &[("file", &ids, data.len() as u64)]);
    first.store_tree(tree.blobs[0].clone()).unwrap();
    let before = first.finish().unwrap();
    harness.commit(&session, tree.root);
    assert!(before.data_packs_uploaded >= 2, "{before:?}");

    // Act
    let (second, session) = harness.uploader(&repo);
    let again = store(&second, &data);
    second.store_tree(tree.blobs[0].clone()).unwrap();
    let after = second.finish().unwrap();

    // Assert
    assert_eq!(again, ids, "the same bytes give the same chunk ids");
    assert_eq!(after.chunks, ids.len() as u64);
    assert_eq!(after.chunks_new, 0, "{after:?}");
    assert_eq!(after.packs_uploaded, 0, "{after:?}");
    assert_eq!(after.bytes_uploaded, 0, "{after:?}");
    assert_eq!(after.blobs_deduplicated, ids.len() as u64 + 1, "{after:?}");
    harness.commit(&session, tree.root);
}

#[test]
fn a_store_repeated_after_an_uncommitted_session_uploads_only_what_that_session_lacked() {
    // Arrange: a first run uploads half the data and is never committed,
    // as when a backup is killed.
    let harness = harness(&[]);
    let repo = small_repo();
    let sent_before = random_bytes("resume: first half", 2 * 1024 * 1024);
    let never_sent = random_bytes("resume: second half", 1024 * 1024);
    let (first, _abandoned) = harness.uploader(&repo);
    store(&first, &sent_before);
    let interrupted = first.finish().unwrap();
    assert!(interrupted.data_packs_uploaded >= 1, "{interrupted:?}");

    // Act: the rerun stores everything under a new session and commits.
    let (rerun, session) = harness.uploader(&repo);
    let first_ids = store(&rerun, &sent_before);
    let second_ids = store(&rerun, &never_sent);
    let tree = tree_of(
        &harness.keys,
        &[
            ("first", &first_ids, sent_before.len() as u64),
            ("second", &second_ids, never_sent.len() as u64),
        ],
    );
    rerun.store_tree(tree.blobs[0].clone()).unwrap();
    let progress = rerun.finish().unwrap();

    // Assert
    assert_eq!(progress.chunks_new, second_ids.len() as u64, "{progress:?}");
    assert_eq!(progress.bytes_new, never_sent.len() as u64, "{progress:?}");
    assert_eq!(
        progress.blobs_deduplicated,
        first_ids.len() as u64,
        "{progress:?}"
    );
    harness.commit(&session, tree.root);
    let back = harness.read_back(&ids_of(&first_ids));
    let joined: Vec<u8> = back.into_iter().flat_map(|(_, _, p)| p).collect();
    assert!(
        joined == sent_before,
        "the first run's chunks still read back"
    );
}

#[test]
fn a_chunk_repeated_within_one_stream_is_stored_once() {
    // Arrange: zeros cut at the maximum chunk size, so every chunk is the same.
    let harness = harness(&[]);
    let repo = small_repo();
    let max = repo.chunker.max_size as usize;
    let zeros = vec![0u8; 10 * max];
    let (uploader, _session) = harness.uploader(&repo);

    // Act
    let ids = store(&uploader, &zeros);
    let progress = uploader.finish().unwrap();

    // Assert
    assert_eq!(ids.len(), 10);
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(progress.chunks, 10);
    assert_eq!(progress.chunks_new, 1, "{progress:?}");
    assert_eq!(progress.bytes_new, max as u64, "{progress:?}");
    assert_eq!(progress.blobs_deduplicated, 9, "{progress:?}");
    assert_eq!(harness.read_back(&ids_of(&ids[..1]))[0].2, vec![0u8; max]);
}

#[test]
fn a_pack_the_server_cannot_store_fails_every_later_call_and_finish_naming_the_pack() {
    // Arrange: the tenant's pack directory is a file, so the server's store
    // fails every pack write (a 5xx, retried, then given up).
    let harness = harness(&[]);
    let repo = small_repo();
    let tenant_dir = harness
        .data_dir
        .path()
        .join("objects/tenants")
        .join(harness.tenant.to_hex());
    std::fs::create_dir_all(&tenant_dir).unwrap();
    std::fs::write(tenant_dir.join("packs"), b"not a directory").unwrap();
    let (uploader, _session) = harness.uploader(&repo);

    // Act: enough data to fill packs, then keep calling until the failure shows.
    store(&uploader, &random_bytes("refused", 3 * 1024 * 1024));
    let deadline = Instant::now() + Duration::from_secs(30);
    let later = loop {
        match uploader.store_data(b"one more".to_vec()) {
            Err(error) => break error,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => panic!("the engine never reported the failed upload"),
        }
    };
    let finished = uploader
        .finish()
        .expect_err("finish reports the failed upload");

    // Assert
    assert!(matches!(later, UploadError::Stopped(_)), "{later}");
    let UploadError::Upload { pack, kind, .. } = finished.root() else {
        panic!("not an upload error: {finished}");
    };
    assert_eq!(*kind, BlobKind::Data);
    let message = finished.to_string();
    assert!(message.contains(&pack.to_hex()), "{message}");
    assert!(
        message.contains("500") || message.contains("503"),
        "{message}"
    );
    assert!(later.to_string().contains(&pack.to_hex()), "{later}");
}

/// Files under `roots`, largest trees first, up to `limit` bytes in total.
fn corpus(roots: &[PathBuf], limit: u64) -> (Vec<PathBuf>, u64) {
    let mut files = Vec::new();
    let mut total = 0;
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let size = entry.metadata().map_or(0, |meta| meta.len());
                if total + size > limit {
                    return (files, total);
                }
                total += size;
                files.push(entry.path());
            }
        }
    }
    (files, total)
}

/// Peak resident set of this process, from `/proc/self/status` (kB).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds from a `/proc/.../stat` line (clock ticks at 100 Hz).
fn stat_cpu_seconds(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((name, ticks / 100.0))
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| stat_cpu_seconds(&stat))
        .map_or(0.0, |(_, seconds)| seconds)
}

/// CPU seconds of each live thread, by thread id: (name, seconds).
fn thread_cpu() -> HashMap<String, (String, f64)> {
    let mut out = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let tid = task.file_name().to_string_lossy().into_owned();
        if let Some(cpu) = std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| stat_cpu_seconds(&stat))
        {
            out.insert(tid, cpu);
        }
    }
    out
}

fn bench_files(files: &[PathBuf], uploader: &Uploader, threads: usize) -> u64 {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::Builder::new()
                    .name("reader".into())
                    .spawn_scoped(scope, || {
                        let mut stored = 0u64;
                        loop {
                            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(path) = files.get(n) else {
                                return stored;
                            };
                            let Ok(mut file) = std::fs::File::open(path) else {
                                continue;
                            };
                            match uploader.store_stream(&mut file, &mut |_| {}) {
                                Ok(ids) => stored += ids.len() as u64,
                                Err(error) if error.is_read() => {}
                                Err(error) => panic!("{}: {error}", path.display()),
                            }
                        }
                    })
                    .expect("a reader thread starts")
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// The engine's throughput over real files: `store_stream` from 2 reader
/// threads through a real server on loopback, with the repository defaults
/// (1 MiB average chunks, zstd 3, 16 MiB packs).
///
/// Ignored by default (it reads ~1 GB); run it in an optimised build:
/// `cargo nextest run --release -p stowage-e2e -E 'test(/throughput/)' --run-ignored only --no-capture`.
/// `STOWAGE_BENCH_DIRS` (colon-separated) and `STOWAGE_BENCH_BYTES` choose
/// the corpus (default: /usr/lib and ~/.rustup, 1 GB). The file cache is warmed
/// by a first read, as for restic in the comparison script. Peak RSS here
/// includes the in-process server (see the report for the agent alone).
#[test]
#[ignore = "a benchmark: reads about 1 GB of real files"]
fn store_stream_throughput_over_real_files() {
    let roots: Vec<PathBuf> = std::env::var("STOWAGE_BENCH_DIRS").map_or_else(
        |_| {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            vec![PathBuf::from("/usr/lib"), Path::new(&home).join(".rustup")]
        },
        |dirs| dirs.split(':').map(PathBuf::from).collect(),
    );
    let limit = std::env::var("STOWAGE_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000_000);
    let (files, total) = corpus(&roots, limit);
    for path in &files {
        if let Ok(mut file) = std::fs::File::open(path) {
            let _ = std::io::copy(&mut file, &mut std::io::sink());
        }
    }
    let harness = harness(&[
        ("STOWAGE_AGENT_RATE_LIMIT", "100000"),
        ("STOWAGE_AGENT_RATE_BURST", "100000"),
    ]);
    let repo = RepoConfig::default();
    let (uploader, _session) = harness.uploader(&repo);

    let before = thread_cpu();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (chunks, progress, threads) = std::thread::scope(|scope| {
        // Samples every thread's CPU time, keeping the last value of each
        // (threads that end keep their final sample).
        let monitor = scope.spawn(|| {
            let mut seen = HashMap::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                seen.extend(thread_cpu());
                std::thread::sleep(Duration::from_millis(50));
            }
            seen.extend(thread_cpu());
            seen
        });
        let chunks = bench_files(&files, &uploader, 2);
        let progress: UploadProgress = uploader.finish().expect("the uploads succeed");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (chunks, progress, monitor.join().unwrap())
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let mut by_name: HashMap<String, f64> = HashMap::new();
    for (tid, (name, seconds)) in threads {
        let earlier = before.get(&tid).map_or(0.0, |(_, s)| *s);
        let group = name
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .to_owned();
        *by_name.entry(group).or_default() += seconds - earlier;
    }
    let mut by_name: Vec<_> = by_name.into_iter().filter(|(_, s)| *s > 0.05).collect();
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    eprintln!("CPU seconds by thread: {by_name:?}");

    #[allow(clippy::cast_precision_loss)]
    let mb = total as f64 / 1e6;
    eprintln!(
        "store_stream: {} files, {mb:.0} MB in {elapsed:.2} s = {:.0} MB/s; CPU {cpu:.2} s = {:.0}% of 2 cores; peak RSS {} MiB (agent + in-process server); {chunks} chunks; {progress:?}",
        files.len(),
        mb / elapsed,
        cpu / elapsed / 2.0 * 100.0,
        peak_rss_kib() / 1024,
    );
    assert_eq!(progress.bytes_read, total);
}
