//! The bench's input: real files read into memory, or a synthetic mix.
//!
//! Real files matter: executables, libraries, sources, documentation and
//! catalogues compress (and chunk) very differently, and a synthetic buffer
//! flatters or punishes zstd depending on how it is made. The synthetic mix
//! exists only so `cargo bench` and `cargo clippy --all-targets` work on a
//! machine where `scripts/bench-corpus` has not run.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Directory `scripts/bench-corpus` builds by default.
const DEFAULT_DIR: &str = "/tmp/stowage-bench-corpus";
/// Default cap on the bytes loaded, in MiB.
const DEFAULT_CAP_MIB: u64 = 256;
/// Size of the synthetic fallback, in MiB.
const SYNTHETIC_MIB: u64 = 48;
/// Cap in quick mode (`cargo test --benches` runs each bench once, unoptimised).
const QUICK_CAP_MIB: u64 = 8;

/// Files held in memory, in name order.
pub struct Corpus {
    /// Each file's bytes.
    pub files: Vec<Vec<u8>>,
    /// Sum of the files' lengths: the bytes one pass processes.
    pub bytes: u64,
}

impl Corpus {
    /// Loads the corpus the environment names, or the synthetic mix if there is
    /// none; `quick` caps it at a few MiB, for a smoke run.
    ///
    /// # Panics
    ///
    /// Panics if `STOWAGE_BENCH_CORPUS_MB` is not a number, a chosen file cannot
    /// be read or the file list cannot be written: a bench that silently measured something else would
    /// be worse.
    pub fn load(quick: bool) -> Self {
        let dir = std::env::var_os("STOWAGE_BENCH_CORPUS")
            .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
        let cap_mib = match std::env::var("STOWAGE_BENCH_CORPUS_MB") {
            _ if quick => QUICK_CAP_MIB,
            Ok(value) => value
                .parse()
                .expect("STOWAGE_BENCH_CORPUS_MB is a whole number of MiB"),
            Err(_) => DEFAULT_CAP_MIB,
        };
        let paths = match select(&dir, cap_mib * 1024 * 1024) {
            Ok(paths) if !paths.is_empty() => paths,
            outcome => {
                let why = outcome.map_or_else(|e| e.to_string(), |_| "it holds no files".into());
                eprintln!(
                    "bench corpus {} is unusable ({why}); build it with `scripts/bench-corpus` \
                     (or point STOWAGE_BENCH_CORPUS at a directory of files). \
                     Falling back to a synthetic mix, which says little about real throughput.",
                    dir.display()
                );
                return Self::synthetic(cap_mib.min(SYNTHETIC_MIB) * 1024 * 1024);
            }
        };
        let files: Vec<Vec<u8>> = paths
            .iter()
            .map(|path| {
                fs::read(path).unwrap_or_else(|e| {
                    panic!("cannot read bench corpus file {}: {e}", path.display())
                })
            })
            .collect();
        if let Some(list) = std::env::var_os("STOWAGE_BENCH_FILE_LIST") {
            write_list(Path::new(&list), &paths);
        }
        let bytes = files.iter().map(|f| f.len() as u64).sum();
        eprintln!(
            "corpus: {} files, {:.1} MB from {}",
            files.len(),
            crate::megabytes(bytes),
            dir.display()
        );
        Self { files, bytes }
    }

    /// About `size` bytes in files of 4 KiB to 8 MiB: a third random bytes,
    /// a third text-like words, a third structured binary records.
    fn synthetic(size: u64) -> Self {
        const WORDS: [&str; 12] = [
            "the ",
            "backup ",
            "chunk ",
            "of ",
            "files ",
            "and ",
            "snapshot ",
            "tenant ",
            "restore ",
            "pack ",
            "\n",
            "fn main() {} ",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut files = Vec::new();
        let mut bytes = 0;
        while bytes < size {
            let len = 4096_usize << (next() % 12);
            let file: Vec<u8> = match files.len() % 3 {
                0 => (0..len).map(|_| next().to_le_bytes()[3]).collect(),
                1 => std::iter::repeat_with(|| WORDS[(next() % 12) as usize].bytes())
                    .flatten()
                    .take(len)
                    .collect(),
                _ => (0..len / 16)
                    .flat_map(|i| {
                        let record = (i as u64).wrapping_mul(2_654_435_761) & 0xffff;
                        [record.to_le_bytes(), (next() % 64).to_le_bytes()]
                    })
                    .flatten()
                    .collect(),
            };
            bytes += file.len() as u64;
            files.push(file);
        }
        Self { files, bytes }
    }
}

/// The regular, non-hidden files of `dir` in name order, thinned evenly to at
/// most `cap` bytes: a file is taken when the bytes taken so far, plus its own,
/// stay within `cap` times the share of the corpus seen so far.
fn select(dir: &Path, cap: u64) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let meta = entry.metadata()?;
        if !hidden && meta.is_file() && meta.len() > 0 {
            files.push((entry.path(), meta.len()));
        }
    }
    files.sort();
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    let (mut seen, mut taken) = (0u128, 0u128);
    let mut chosen = Vec::new();
    for (path, len) in files {
        seen += u128::from(len);
        if (taken + u128::from(len)) * u128::from(total) <= u128::from(cap) * seen {
            taken += u128::from(len);
            chosen.push(path);
        }
    }
    Ok(chosen)
}

/// Writes `paths` NUL-separated to `list`, for `xargs -0`.
fn write_list(list: &Path, paths: &[PathBuf]) {
    use std::os::unix::ffi::OsStrExt;
    let mut out = fs::File::create(list)
        .unwrap_or_else(|e| panic!("cannot create the bench file list {}: {e}", list.display()));
    for path in paths {
        out.write_all(path.as_os_str().as_bytes())
            .and_then(|()| out.write_all(b"\0"))
            .unwrap_or_else(|e| panic!("cannot write the bench file list {}: {e}", list.display()));
    }
}
