//! Where the real `stowage` and `stowage-server` binaries are.
//!
//! `CARGO_BIN_EXE_*` only exists for a package's own binaries, and this crate
//! owns none: the binaries sit in the same target directory as the test
//! executable (`<target>/<profile>/deps/<test>` → `<target>/<profile>/`).
//! Cargo only builds another package's binaries when that package's own
//! tests need them, so `scripts/test` builds them first; when either is
//! missing or older than a source file of the protocol, agent or server
//! (an edit since), the first call runs `cargo build` for both into the same
//! target directory and profile, so `cargo nextest run -p stowage-e2e` never
//! tests a stale binary (`STOWAGE_E2E_NO_BUILD=1` turns this off, to test
//! the binaries as they are while the sources change). A fresh binary is never rebuilt from here: a build
//! with other features would replace `stowage-server` under the server's own
//! tests running in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The agent binary.
pub fn agent() -> &'static Path {
    &built().agent
}

/// The server binary.
pub fn server() -> &'static Path {
    &built().server
}

struct Binaries {
    agent: PathBuf,
    server: PathBuf,
}

fn built() -> &'static Binaries {
    static BUILT: OnceLock<Binaries> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let binaries = Binaries {
            agent: profile_dir.join("stowage"),
            server: profile_dir.join("stowage-server"),
        };
        let sources = newest_source();
        let rebuild = std::env::var_os("STOWAGE_E2E_NO_BUILD").is_none();
        if rebuild
            && [&binaries.agent, &binaries.server]
                .iter()
                .any(|path| modified(path).is_none_or(|built| built < sources))
        {
            build(&profile_dir);
        }
        for path in [&binaries.agent, &binaries.server] {
            assert!(
                path.is_file(),
                "{} does not exist after cargo build",
                path.display()
            );
        }
        binaries
    })
}

/// `<target>/<profile>`: the parent of the `deps` directory holding the
/// running test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable knows its path");
    let deps = exe.parent().expect("the test executable is in a directory");
    if deps.file_name().is_some_and(|name| name == "deps") {
        deps.parent().expect("deps has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

/// The newest modification time among the sources the binaries are built from.
fn newest_source() -> SystemTime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending: Vec<PathBuf> = ["protocol", "agent", "server"]
        .iter()
        .flat_map(|krate| {
            [
                root.join(krate).join("src"),
                root.join(krate).join("Cargo.toml"),
            ]
        })
        .chain([root.join("Cargo.lock")])
        .collect();
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
            }
        } else if let Ok(time) = meta.modified() {
            newest = newest.max(time);
        }
    }
    newest
}

/// Builds both binaries into `profile_dir`'s target directory and profile.
fn build(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("the profile dir has a parent");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("the profile dir has a UTF-8 name");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["-p", "stowage-agent", "--bin", "stowage"])
        .args(["-p", "stowage-server", "--bin", "stowage-server"])
        // The features the workspace's test build gives the server, so this
        // build and that one agree on what the binary is.
        .args(["--features", "stowage-server/fault-points"]);
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the stowage and stowage-server binaries failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
