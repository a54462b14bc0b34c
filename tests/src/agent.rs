//! The real `stowage` binary, enrolled against a [`TestServer`].
//!
//! Each agent has its own configuration and cache directories (temp dirs),
//! passed as `STOWAGE_CONFIG_DIR` / `STOWAGE_CACHE_DIR`, and gets the
//! recovery passphrase from `STOWAGE_PASSPHRASE`, so nothing on the machine
//! running the tests is read or written. Commands run with a cleared
//! environment (plus `PATH` for `--command`) and `--no-progress`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use stowage_agent::cli::Global;
use stowage_agent::context::AgentContext;
use tempfile::TempDir;

use crate::binaries;
use crate::server::TestServer;

/// The recovery passphrase every test tenant uses.
pub const PASSPHRASE: &str = "e2e recovery passphrase";

/// A tenant on a test server, ready to enroll agents into.
#[derive(Debug)]
pub struct Tenant<'a> {
    /// The server.
    pub server: &'a TestServer,
    /// The tenant's name.
    pub name: String,
}

impl<'a> Tenant<'a> {
    /// Creates a tenant named `name` with the server's admin command.
    pub fn create(server: &'a TestServer, name: &str) -> Self {
        server.create_tenant(name);
        Self {
            server,
            name: name.to_owned(),
        }
    }

    /// Enrolls a full (restore-capable) agent named `name`.
    pub fn enroll(&self, name: &str) -> Agent {
        Agent::enroll(self.server, &self.server.token(&self.name), name, false)
    }

    /// Enrolls a write-only agent named `name`.
    pub fn enroll_write_only(&self, name: &str) -> Agent {
        Agent::enroll(self.server, &self.server.token(&self.name), name, true)
    }
}

/// An enrolled agent: its directories and how to run commands as it.
#[derive(Debug)]
pub struct Agent {
    config_dir: TempDir,
    cache_dir: TempDir,
    /// The agent's name (also the host name its snapshots record, via `--host`).
    pub name: String,
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not one JSON value ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics with the output unless the command succeeded (exit 0).
    #[track_caller]
    pub fn expect_success(&self) -> &Self {
        self.expect_code(0)
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Agent {
    /// `stowage enroll --server URL --token T --name NAME [--write-only]`.
    pub fn enroll(server: &TestServer, token: &str, name: &str, write_only: bool) -> Self {
        let agent = Self {
            config_dir: tempfile::tempdir().expect("a config dir"),
            cache_dir: tempfile::tempdir().expect("a cache dir"),
            name: name.to_owned(),
        };
        let mut args = vec![
            "enroll",
            "--server",
            &server.url,
            "--token",
            token,
            "--name",
            name,
        ];
        if write_only {
            args.push("--write-only");
        }
        agent.run(&args).expect_success();
        agent
    }

    /// The agent's configuration directory.
    pub fn config_dir(&self) -> &Path {
        self.config_dir.path()
    }

    /// The agent's cache directory.
    pub fn cache_dir(&self) -> &Path {
        self.cache_dir.path()
    }

    /// The command `stowage ARGS`, configured for this agent, not started.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(binaries::agent());
        command
            .arg("--no-progress")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.config_dir.path())
            .env("STOWAGE_CONFIG_DIR", self.config_dir.path())
            .env("STOWAGE_CACHE_DIR", self.cache_dir.path())
            .env("STOWAGE_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null());
        command
    }

    /// Runs `stowage ARGS` to completion.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.command(args)
            .output()
            .expect("the agent binary runs")
            .into()
    }

    /// Runs `WRAPPER… stowage ARGS` to completion, e.g. under `setpriv`.
    pub fn run_wrapped<S: AsRef<OsStr>>(&self, wrapper: &[&str], args: &[S]) -> Run {
        let plain = self.command(args);
        let mut command = Command::new(wrapper[0]);
        command
            .args(&wrapper[1..])
            .arg(plain.get_program())
            .args(plain.get_args())
            .env_clear()
            .stdin(Stdio::null());
        for (key, value) in plain.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        command.output().expect("the wrapped agent runs").into()
    }

    /// Starts `stowage ARGS` in the background, output discarded.
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent binary starts")
    }

    /// `stowage backup --json --host NAME PATH…` run to completion.
    pub fn backup<S: AsRef<OsStr>>(&self, paths: &[S]) -> Run {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("backup"),
            OsStr::new("--json"),
            OsStr::new("--host"),
            OsStr::new(&self.name),
        ];
        args.extend(paths.iter().map(AsRef::as_ref));
        self.run(&args)
    }

    /// `stowage restore SNAPSHOT --target DIR --host NAME` run to completion.
    pub fn restore(&self, snapshot: &str, target: &Path) -> Run {
        self.run(&[
            OsStr::new("restore"),
            OsStr::new(snapshot),
            OsStr::new("--target"),
            target.as_os_str(),
            OsStr::new("--host"),
            OsStr::new(&self.name),
        ])
    }

    /// This host's snapshots as `stowage snapshots --json` lists them, newest first.
    pub fn snapshots(&self) -> Vec<serde_json::Value> {
        let run = self.run(&["snapshots", "--json", "--host", &self.name]);
        run.expect_success();
        match run.json() {
            serde_json::Value::Array(items) => items,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// The agent's loaded profile, keys and API client (what its commands use).
    pub fn context(&self) -> AgentContext {
        AgentContext::load(&Global {
            config_dir: Some(self.config_dir.path().to_path_buf()),
            cache_dir: Some(self.cache_dir.path().to_path_buf()),
            no_progress: true,
        })
        .expect("the agent's profile loads")
    }

    /// Removes the agent's cache (the next backup re-reads everything).
    pub fn clear_cache(&self) {
        for entry in std::fs::read_dir(self.cache_dir.path()).expect("the cache dir lists") {
            let path: PathBuf = entry.expect("a cache entry").path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("the cache entry is removed");
            } else {
                std::fs::remove_file(&path).expect("the cache entry is removed");
            }
        }
    }
}
