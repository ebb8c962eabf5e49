//! Shared by the integration tests: the built binary, the shipped lab, fixtures, and the policy for
//! tests that need Docker — it lives here and only here: a test that needs Docker FAILS when Docker
//! is unreachable and `CI` is set, and is skipped (saying why) when `CI` is unset.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result};
use bollard::Docker;
use lab_runner::env::docker::DockerEnv;
use lab_runner::env::docker::cleanup::{self, Scope};
use lab_runner::env::docker::connect;
use lab_runner::env::docker::image::ImageChoice;
use lab_runner::env::{EnvSpec, Environment, wait_healthy};
use lab_runner::lab::InspectorMode;
use lab_runner::util::random;

pub mod chrome;
pub mod web;

/// The `lab-runner` binary cargo built for these tests. Its sessions are found in a folder of this
/// test's own (nextest runs each test in a process of its own): a client such as `pull` or `check`
/// never picks up a session another test runs at the same moment.
pub fn lab_runner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab-runner"));
    cmd.env_remove("LAB_RUNNER_LAB")
        .env_remove("LAB_RUNNER_SESSION")
        .env("NO_COLOR", "1")
        .env("XDG_RUNTIME_DIR", runtime_dir());
    cmd
}

/// This test process's folder for session sockets.
pub fn runtime_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("lr-")
            .tempdir()
            .expect("a temporary folder")
    })
    .path()
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
        docker_lock();
        return true;
    }
    if in_ci() {
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

/// Held by a test that uses Docker. Every test that asks [`docker_or_skip`] holds the lock shared
/// from then on, until its process ends (nextest runs each test in a process of its own); a test
/// that removes *every* labelled object (`lab-runner cleanup`, which also removes dangling labelled
/// images — a build in progress in another test) makes it exclusive, so it never removes another
/// test's environment or image. A test that forgot to ask for the lock cannot race with it.
pub struct DockerGuard {
    exclusive: bool,
}

impl Drop for DockerGuard {
    /// An exclusive hold goes back to shared (the test goes on using Docker as the others do).
    fn drop(&mut self) {
        if self.exclusive {
            let _ = docker_lock().lock_shared();
        }
    }
}

/// This test process's hold on the lock file.
fn docker_lock() -> &'static std::fs::File {
    static LOCK: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| {
        let path = std::env::temp_dir().join("lab-runner-tests-docker.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .expect("lock file");
        file.lock_shared().expect("shared lock");
        file
    })
}

/// Shared use of Docker by this test (what [`docker_or_skip`] already took).
pub fn docker_shared() -> DockerGuard {
    docker_lock();
    DockerGuard { exclusive: false }
}

/// Sole use of Docker by this test (for tests that run a global `cleanup`): the shared hold becomes
/// exclusive (on the same open file, so this process does not wait for itself).
pub fn docker_exclusive() -> DockerGuard {
    docker_lock().lock().expect("exclusive lock");
    DockerGuard { exclusive: true }
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

/// Whether the `CI` environment variable asks for strictness (set, and not empty, `0` or `false`).
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"),
        Err(_) => false,
    }
}

/// A Docker client of the test's own (bollard, to look at what the runner did independently of
/// the runner's client), or `None` when Docker is unreachable and the test should be skipped.
/// Panics (failing the test) when Docker is unreachable and `CI` is set.
///
/// ```ignore
/// let Some(docker) = support::docker_client_or_skip("my_test").await else { return Ok(()) };
/// ```
pub async fn docker_client_or_skip(test: &str) -> Option<Docker> {
    match connect::connect().await {
        Ok(_) => Some(observer()),
        Err(e) if in_ci() => panic!(
            "{test}: this test needs Docker, and CI is set, so an unreachable Docker is a failure, \
             not a skip: {e:#}"
        ),
        Err(e) => {
            eprintln!("SKIPPED {test} (set CI=1 to make this a failure): {e:#}");
            None
        }
    }
}

/// The test's own Docker client (bollard), for looking at what the runner made.
pub fn observer() -> Docker {
    Docker::connect_with_defaults().expect("a Docker client from the defaults (DOCKER_HOST)")
}

/// A folder under tests/fixtures.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A [`DockerEnv`] that is always torn down: by [`EnvGuard::teardown`], or — when the test fails
/// or panics first — on drop, by removing everything labelled with its session.
pub struct EnvGuard {
    env: Option<DockerEnv>,
    session: String,
}

impl EnvGuard {
    /// Starts the app in `app_dir` (entry `src/server.js`, port 3001, health `/api/health`) with the
    /// offline host-node image, and waits until it is healthy.
    pub async fn start(
        app_dir: PathBuf,
        part: &str,
        inspector: InspectorMode,
        memory_mb: u64,
    ) -> Result<EnvGuard> {
        EnvGuard::start_with_env(app_dir, part, inspector, memory_mb, BTreeMap::new()).await
    }

    /// [`EnvGuard::start`] with the app's environment variables.
    pub async fn start_with_env(
        app_dir: PathBuf,
        part: &str,
        inspector: InspectorMode,
        memory_mb: u64,
        env: BTreeMap<String, String>,
    ) -> Result<EnvGuard> {
        let session = random::session_id();
        let spec = EnvSpec {
            lab_id: "tests".into(),
            part_id: part.into(),
            session_id: session.clone(),
            app_dir,
            run: lab_runner::lab::AppRun::Node("src/server.js".into()),
            app_image: None,
            app_files: vec!["package.json".into(), "src".into()],
            app_port: 3001,
            health_path: "/api/health".into(),
            env,
            inspector,
            memory_mb,
            cpus: None,
            fixed_app_port: None,
            services: Vec::new(),
        };
        let mut guard = EnvGuard { env: None, session };
        let env = DockerEnv::start(spec, &ImageChoice::HostNode, &|_| {})
            .await
            .context("starting the fixture container")?;
        guard.env = Some(env);
        wait_healthy(guard.env(), "/api/health", Duration::from_secs(30)).await?;
        Ok(guard)
    }

    pub fn env(&self) -> &DockerEnv {
        self.env
            .as_ref()
            .expect("the environment is up until teardown")
    }

    /// The environment, to change it (`recreate` with another environment, say).
    pub fn env_mut(&mut self) -> &mut DockerEnv {
        self.env
            .as_mut()
            .expect("the environment is up until teardown")
    }

    /// The session id on every object of this environment (`io.lab-runner.session`).
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The test's own Docker client ([`observer`]) and the container's name.
    pub fn docker(&self) -> (Docker, String) {
        (observer(), self.env().facts().name)
    }

    pub async fn teardown(mut self) -> Result<()> {
        match self.env.take() {
            Some(mut env) => env.teardown().await,
            None => Ok(()),
        }
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        if self.env.take().is_none() {
            return;
        }
        // Drop may run inside the test's runtime (which cannot be blocked on): clean up from a
        // thread with its own.
        let session = self.session.clone();
        let cleanup = std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let docker = connect::connect().await?;
                cleanup::remove_labelled(
                    &docker,
                    &Scope {
                        session: Some(session),
                        images: false,
                        live_sessions: true,
                        runner_pid: None,
                    },
                )
                .await
                .map(|_| ())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cleaning up after a failed test: {e:#}"),
            Err(_) => eprintln!("cleaning up after a failed test: the cleanup thread panicked"),
        }
    }
}

/// Creates and starts a labelled container of `image` that publishes `port` (`3001/tcp`) on every
/// interface — the exposure the runner never makes, for tests that must see it caught.
pub async fn start_exposed_container(
    docker: &Docker,
    image: &str,
    name: &str,
    labels: &[(&str, &str)],
    env: &[&str],
    port: &str,
) -> Result<()> {
    use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
    use bollard::query_parameters::CreateContainerOptionsBuilder;
    use std::collections::HashMap;
    let config = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(env.iter().map(|s| s.to_string()).collect()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        exposed_ports: Some(vec![port.to_string()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                port.to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(name).build()),
            config,
        )
        .await
        .with_context(|| format!("create {name}"))?;
    docker
        .start_container(name, None)
        .await
        .with_context(|| format!("start {name}"))?;
    Ok(())
}

/// What a run of the binary gave: its exit code, its stdout, and everything (for messages).
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub all: String,
}

/// Runs `lab-runner` with `args` and waits for it.
pub fn run(args: &[&str]) -> Run {
    run_command(lab_runner().args(args))
}

/// Runs a prepared `lab-runner` command and waits for it.
pub fn run_command(command: &mut Command) -> Run {
    let out = command.output().expect("lab-runner runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        all: text(&out),
    }
}

/// Every step in `steps` has its own `PASS` line, and the last line counts them all as passed.
pub fn assert_all_passed(run: &Run, part: &str, steps: &[&str]) {
    for step in steps {
        let passed = run.stdout.lines().any(|l| {
            l.trim_start().starts_with("PASS [") && l.contains(&format!(" {part} {step} "))
        });
        assert!(passed, "step {step} did not pass:\n{}", run.all);
    }
    let summary = format!("{} passed, 0 failed", steps.len());
    assert_eq!(
        run.stdout.lines().last(),
        Some(summary.as_str()),
        "{}",
        run.all
    );
}
