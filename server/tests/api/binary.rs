//! The real `stowage-server` binary: starts with no configuration file in an
//! empty directory, serves, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_stowage-server");

/// Starts the binary in `cwd` with only `envs` set, and returns it with a
/// channel of its stdout lines.
fn start(cwd: &std::path::Path, envs: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BINARY)
        .current_dir(cwd)
        .env_clear()
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

/// Waits for a log line containing `needle` and returns it.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line containing {needle:?} within 30 s"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn wait_with_timeout(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("the server did not exit within 30 s");
}

#[tokio::test]
async fn the_binary_runs_on_embedded_defaults_and_stops_on_sigterm() {
    // Arrange: an empty working directory; only the port is chosen, so
    // parallel test runs do not fight over 8080.
    let cwd = tempfile::tempdir().unwrap();
    let (mut child, lines) = start(cwd.path(), &[("STOWAGE_LISTEN", "127.0.0.1:0")]);

    // Act
    let line = wait_for_line(&lines, "listening on http://");
    let address = line
        .rsplit("listening on ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    let ready = client
        .get(format!("{address}/readyz"))
        .send()
        .await
        .unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = wait_for_line(&lines, "stowage-server stopped");
    let status = wait_with_timeout(&mut child);

    // Assert
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    assert_eq!(ready.status(), 200);
    assert!(killed.success());
    assert!(stopped.contains("database connections closed"), "{stopped}");
    assert!(status.success(), "exit status {status}");
    assert!(cwd.path().join("stowage-data/stowage.db").is_file());
    assert!(cwd.path().join("stowage-data/objects").is_dir());
}

#[test]
fn the_binary_refuses_a_bad_setting_and_names_it() {
    let cwd = tempfile::tempdir().unwrap();

    let output = Command::new(BINARY)
        .current_dir(cwd.path())
        .env_clear()
        .env("STOWAGE_LISTEN", "abc")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("STOWAGE_LISTEN: \"abc\" is not a socket address like 127.0.0.1:8080"),
        "{stderr}"
    );
    assert!(
        !cwd.path().join("stowage-data").exists(),
        "a refused start wrote data"
    );
}
