//! Shared by the integration tests: the built binary, the shipped lab, and the policy for tests that
//! need Docker (fail in CI, skip only on a developer's machine without Docker).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `lab-runner` binary cargo built for these tests.
pub fn lab_runner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab-runner"));
    cmd.env_remove("LAB_RUNNER_LAB").env("NO_COLOR", "1");
    cmd
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_lab() -> PathBuf {
    repo_root().join("labs").join("node-profiling")
}

pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(path)
}

/// Whether Docker answers. Without it: in CI (the `CI` variable set) the test fails with a clear
/// message; on a developer's machine it is skipped, saying why.
pub fn docker_or_skip(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test} needs a running Docker engine, and CI is set: start Docker (the CI script should have)."
        );
    }
    eprintln!("skipping {test}: Docker is not reachable (set CI=1 to make this a failure)");
    false
}

/// Output as text, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Docker objects carrying `label` (containers with `ps -a`, or networks).
pub fn docker_ids(kind: &str, label: &str) -> Vec<String> {
    let args: Vec<&str> = match kind {
        "container" => vec!["ps", "-a", "-q", "--filter"],
        "network" => vec!["network", "ls", "-q", "--filter"],
        other => panic!("unknown docker object kind {other}"),
    };
    let out = Command::new("docker")
        .args(args)
        .arg(format!("label={label}"))
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A copy of a lab folder in a temp dir (so a test can change it), with `app.source` pointing at the
/// repository's lab app.
pub fn copy_lab(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(from).expect("lab folder") {
        let entry = entry.expect("entry");
        let text = std::fs::read_to_string(entry.path()).expect("lab file");
        let app = repo_root().join("lab-app");
        let text = text.replace(
            "source: ../../lab-app",
            &format!("source: {}", app.display()),
        );
        std::fs::write(dir.path().join(entry.file_name()), text).expect("write");
    }
    dir
}

/// Held by a test that uses Docker. Most take it shared; a test that removes *every* labelled object
/// (`lab-runner cleanup`) takes it exclusively, so it never removes another test's environment.
pub struct DockerGuard(#[allow(dead_code)] std::fs::File);

fn docker_lock_file() -> std::fs::File {
    let path = std::env::temp_dir().join("lab-runner-tests-docker.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .expect("lock file")
}

/// Shared use of Docker by this test.
pub fn docker_shared() -> DockerGuard {
    let file = docker_lock_file();
    file.lock_shared().expect("shared lock");
    DockerGuard(file)
}

/// Sole use of Docker by this test (for tests that run a global `cleanup`).
pub fn docker_exclusive() -> DockerGuard {
    let file = docker_lock_file();
    file.lock().expect("exclusive lock");
    DockerGuard(file)
}

/// The session id from a `START` line naming a container `lab-runner-<session>-<part>`.
pub fn container_name(stdout: &str) -> Option<String> {
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("lab-runner-") && w.matches('-').count() >= 3)
        .map(|w| {
            w.trim_matches(|c: char| !(c.is_alphanumeric() || c == '-'))
                .to_string()
        })
}
