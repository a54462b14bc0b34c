//! Per-core throughput of the backup pipeline: FastCDC chunking, keyed BLAKE3
//! chunk ids, zstd level 3 and XChaCha20-Poly1305 sealing, all on one thread.
//!
//! The bar (issue): the whole pipeline should reach at least 80% of what
//! `zstd -3 -T1` does alone on the same files, because compression is the only
//! stage that ought to cost much. `scripts/bench-pipeline` runs this bench
//! next to `zstd -3 -T1` and `b3sum --num-threads 1` and prints the comparison.
//! Each stage is also measured alone so the cost breakdown is visible, as are
//! the streaming read path, a proposed fix to it, and one thing the agent must
//! not do (see [`benches`]).
//!
//! # Corpus
//! Real files built by `scripts/bench-corpus` (directory `STOWAGE_BENCH_CORPUS`,
//! default /tmp/stowage-bench-corpus), read into memory first so the disk stays
//! out of the measurement. At most `STOWAGE_BENCH_CORPUS_MB` MiB (default 256)
//! are taken, spread evenly over the sorted names so every kind of file keeps
//! its share. `STOWAGE_BENCH_FILE_LIST=PATH` writes the chosen paths
//! (NUL-separated) so peers can be timed on exactly the same bytes, and
//! `STOWAGE_BENCH_LIST_ONLY=1` stops right after writing it. Without a
//! corpus the bench says how to build one and runs on a synthetic mix, so
//! `cargo bench` never fails.
//!
//! # Time
//! Time is the thread's on-CPU time, not wall time: the question is MB/s per
//! core, and the bench machines are shared, so a wall clock would mostly
//! measure the other processes (see `cpu_time.rs`).

#[path = "pipeline/corpus.rs"]
mod corpus;
#[path = "pipeline/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use stowage_protocol::blob::{
    BlobKind, BlobSealer, Compression, SEALED_BLOB_OVERHEAD, seal_blob_into,
};
use stowage_protocol::chunker::{Chunker, ChunkerParams};
use stowage_protocol::crypto::{DataKey, IdKey};
use stowage_protocol::ids::BlobId;

use corpus::Corpus;
use cpu_time::CpuTime;

/// Everything one pipeline pass needs, built once.
struct Pipeline {
    /// Seeded from `id_key`, as a tenant's chunker is.
    chunker: Chunker,
    /// Keys the chunk ids.
    id_key: IdKey,
    /// Encrypts the blobs (one per pack in the agent; one for all here).
    data_key: DataKey,
}

impl Pipeline {
    fn new() -> Self {
        let id_key = IdKey::from_bytes([7; 32]);
        let chunker = Chunker::for_tenant(ChunkerParams::DEFAULT, &id_key)
            .expect("the default chunker parameters are valid");
        Self {
            chunker,
            id_key,
            data_key: DataKey::from_bytes([9; 32]),
        }
    }

    /// Chunks and hashes every file and hands each chunk to `seal` with its
    /// id and a fresh nonce; returns the total `seal` reports (sealed bytes).
    fn run(&self, corpus: &Corpus, mut seal: impl FnMut(&BlobId, &[u8], [u8; 24]) -> usize) -> u64 {
        let mut sealed = 0;
        let mut counter = 0u64;
        for file in &corpus.files {
            for span in self.chunker.chunks(file) {
                let chunk = &file[span.range()];
                counter += 1;
                sealed += seal(&self.id_key.chunk_id(chunk), chunk, nonce(counter)) as u64;
            }
        }
        sealed
    }
}

/// A distinct nonce per blob without a system call. The agent draws random
/// nonces: one `getrandom` call per blob, about a microsecond per megabyte
/// chunk, below this bench's resolution.
fn nonce(counter: u64) -> [u8; 24] {
    let mut nonce = [0; 24];
    nonce[..8].copy_from_slice(&counter.to_le_bytes());
    nonce
}

/// Measures `pass` as benchmark `name`, sized from one pass run first
/// (which also warms the caches): ten samples of one pass each for slow
/// stages, at least three seconds for fast ones. (Criterion sizes samples
/// from a wall-clock warm-up, so on a busy machine it may warn that ten
/// samples take longer than planned; the samples are still on-CPU time.)
fn bench<R>(group: &mut BenchmarkGroup<'_, CpuTime>, name: &str, mut pass: impl FnMut() -> R) {
    let clock = CpuTime::new();
    let start = clock.start();
    black_box(pass());
    let one_pass = clock.end(start);
    group.measurement_time((one_pass * 10).clamp(Duration::from_secs(3), Duration::from_secs(40)));
    group.bench_function(name, |b| b.iter(&mut pass));
}

/// Prints what the corpus turns into: chunks, sealed size, how many blobs
/// kept their compression and what share of the (wall) sealing time went
/// into chunks that zstd could not shrink and were then stored as they were.
fn describe(corpus: &Corpus, pipeline: &Pipeline) {
    let mut sealer = BlobSealer::new(Compression::DEFAULT);
    let (mut chunks, mut compressed, mut raw_bytes) = (0, 0, 0);
    let (mut all_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    let mut out = Vec::new();
    let written = pipeline.run(corpus, |id, chunk, nonce| {
        out.clear();
        let start = Instant::now();
        let key = &pipeline.data_key;
        let len = sealer.seal_into(key, id, BlobKind::Data, chunk, nonce, &mut out);
        let took = start.elapsed();
        chunks += 1;
        all_time += took;
        if len < chunk.len() + SEALED_BLOB_OVERHEAD {
            compressed += 1;
        } else {
            raw_time += took;
            raw_bytes += chunk.len() as u64;
        }
        len
    });
    eprintln!(
        "corpus: {chunks} chunks, sealed {:.1} MB = {:.1}% of plaintext; \
         {} chunks ({:.1} MB) stored uncompressed took {:.0}% of the sealing time",
        megabytes(written),
        100.0 * megabytes(written) / megabytes(corpus.bytes),
        chunks - compressed,
        megabytes(raw_bytes),
        100.0 * raw_time.as_secs_f64() / all_time.as_secs_f64(),
    );
}

/// Bytes in decimal megabytes, for display.
#[expect(
    clippy::cast_precision_loss,
    reason = "display only; exact below 2^53 bytes"
)]
fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The benchmarks, in group `pipeline`:
/// - `full`: chunk + id + zstd-3 + seal with one [`BlobSealer`], as the agent should run it;
/// - `chunk`, `id-hash`, `compress`, `seal`: one stage alone over the same chunks
///   (`compress` = zstd-3 with one reused context, `seal` = copy + AEAD with
///   compression off);
/// - `chunk-streamed`: `chunk` reading each file through [`Chunker::stream_with_buffer`]
///   with one reused buffer, as the agent reads files (adds the read copy);
/// - `full-fresh-sealer`: `full` through [`seal_blob_into`], which builds a zstd
///   context per blob, to show why the agent must keep one [`BlobSealer`].
///
/// Then `full` and `compress` alternate for a few pairs (see [`interleave`]).
///
/// Without `--bench` (`cargo test --benches`), criterion runs each once as a
/// smoke test; the corpus is then cut to a few MiB.
fn benches(c: &mut Criterion<CpuTime>) {
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let corpus = Corpus::load(quick);
    if std::env::var_os("STOWAGE_BENCH_LIST_ONLY").is_some() {
        return;
    }
    let pipeline = Pipeline::new();
    describe(&corpus, &pipeline);
    let chunks: Vec<&[u8]> = corpus
        .files
        .iter()
        .flat_map(|file| {
            pipeline
                .chunker
                .chunks(file)
                .map(|span| &file[span.range()])
        })
        .collect();
    let (key, kind) = (&pipeline.data_key, BlobKind::Data);
    let mut out = Vec::new();
    let mut full_out = Vec::new();
    let mut sealer = BlobSealer::new(Compression::DEFAULT);

    let mut group = c.benchmark_group("pipeline");
    group
        .throughput(Throughput::BytesDecimal(corpus.bytes))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));

    let mut full = || {
        pipeline.run(&corpus, |id, chunk, nonce| {
            full_out.clear();
            sealer.seal_into(key, id, kind, chunk, nonce, &mut full_out)
        })
    };
    bench(&mut group, "full", &mut full);

    bench(&mut group, "chunk", || {
        let files = corpus.files.iter();
        files
            .map(|f| pipeline.chunker.chunks(f).count())
            .sum::<usize>()
    });

    bench(&mut group, "id-hash", || {
        let ids = chunks.iter().map(|chunk| pipeline.id_key.chunk_id(chunk));
        ids.fold(0u8, |acc, id| acc ^ id.as_bytes()[0])
    });

    let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd allocates a context");
    let bound = zstd::zstd_safe::compress_bound(ChunkerParams::DEFAULT.max_size as usize);
    let mut buffer = Vec::with_capacity(bound);
    let mut compress = || {
        let mut total = 0;
        for chunk in &chunks {
            buffer.clear();
            let compressed = compressor.compress_to_buffer(chunk, &mut buffer);
            total += compressed.expect("the buffer holds the compress bound");
        }
        total
    };
    bench(&mut group, "compress", &mut compress);

    let mut plain_sealer = BlobSealer::new(Compression::NONE);
    let id = BlobId::from_bytes([1; 32]);
    bench(&mut group, "seal", || {
        let mut total = 0;
        for (counter, chunk) in (0u64..).zip(&chunks) {
            out.clear();
            total += plain_sealer.seal_into(key, &id, kind, chunk, nonce(counter), &mut out);
        }
        total
    });

    let mut stream_buffer = Vec::new();
    bench(&mut group, "chunk-streamed", || {
        let mut count = 0;
        for file in &corpus.files {
            let buffer = std::mem::take(&mut stream_buffer);
            let mut stream = pipeline.chunker.stream_with_buffer(&file[..], buffer);
            while let Some(chunk) = stream.next_chunk().expect("a slice reads without error") {
                count += chunk.data.len() & 1;
            }
            stream_buffer = stream.into_buffer();
        }
        count
    });

    bench(&mut group, "full-fresh-sealer", || {
        pipeline.run(&corpus, |id, chunk, nonce| {
            out.clear();
            seal_blob_into(&mut out, key, id, kind, chunk, Compression::DEFAULT, nonce)
        })
    });

    group.finish();
    interleave(if quick { 1 } else { 3 }, &mut full, &mut compress);
}

/// Prints the pipeline's speed relative to compression alone, from passes of
/// each taken alternately. Load on a shared machine (above all on the other
/// hyperthread of the same core) drifts by tens of percent over a minute,
/// which separate criterion runs see as a different speed; pairs of passes
/// taken back to back see nearly the same machine. `scripts/bench-pipeline`
/// reads the `interleaved:` line.
fn interleave<A, B>(rounds: usize, mut full: impl FnMut() -> A, mut compress: impl FnMut() -> B) {
    let clock = CpuTime::new();
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = clock.start();
            black_box(full());
            let full_time = clock.end(start);
            let start = clock.start();
            black_box(compress());
            clock.end(start).as_secs_f64() / full_time.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let shown: Vec<String> = ratios
        .iter()
        .map(|r| format!("{:.1}%", 100.0 * r))
        .collect();
    eprintln!(
        "interleaved: pipeline speed = {:.1}% of compress-only (median of {rounds} pairs: {})",
        100.0 * ratios[rounds / 2],
        shown.join(" "),
    );
}

fn main() {
    let mut criterion = Criterion::default()
        .with_measurement(CpuTime::new())
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
