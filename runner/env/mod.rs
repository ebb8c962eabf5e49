//! Where the lab app runs. One trait, [`Environment`], with two backends:
//! [`docker`] (containers through the Docker Engine API) and [`process`] (a local `node` child, for
//! machines without Docker and for fast tests).

pub mod docker;
pub mod doctor;
pub mod exec;
pub mod health;
pub mod node;
pub mod process;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use async_trait::async_trait;

use crate::lab::{AppRun, ImageSpec, InspectorMode, ServiceHealth};
use crate::probe::tunnel::Tunnel;

pub use exec::ExecOutput;
pub use health::wait_healthy;

/// Which backend runs the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Docker,
    Process,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Docker => "docker",
            Backend::Process => "process",
        })
    }
}

/// Everything a backend needs to bring the app up, with templates already rendered.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub lab_id: String,
    pub part_id: String,
    pub session_id: String,
    /// The lab app's source folder on the host.
    pub app_dir: PathBuf,
    /// How the app is started: `node <entry>` (relative to `app_dir`) or a command run in it.
    pub run: AppRun,
    /// Where the app's image comes from (`app.image:`), for the Docker backend.
    pub app_image: Option<ImageSpec>,
    /// What of `app_dir` goes into an image (files and folders relative to it); everything but
    /// `node_modules` and hidden files when empty.
    pub app_files: Vec<String>,
    /// Port the app listens on inside its environment.
    pub app_port: u16,
    pub health_path: String,
    /// The app's environment variables (without PORT/HOST, which the backend sets).
    pub env: BTreeMap<String, String>,
    pub inspector: InspectorMode,
    pub memory_mb: u64,
    /// The most CPU each of the environment's containers may use, in cores (Docker only).
    pub cpus: Option<f64>,
    /// Publish the app on this host port instead of an ephemeral one.
    pub fixed_app_port: Option<u16>,
    /// The lab services started before the app, in order.
    pub services: Vec<ServiceRun>,
}

/// One lab service of an environment, with its templates rendered.
#[derive(Debug, Clone)]
pub struct ServiceRun {
    pub name: String,
    /// Its source folder on the host (its files go to `/app`).
    pub dir: Option<PathBuf>,
    pub files: Vec<String>,
    pub command: Vec<String>,
    /// Its image recipe; the app's when the service names none.
    pub image: Option<ImageSpec>,
    pub port: u16,
    pub publish: bool,
    pub health: ServiceHealth,
    pub env: BTreeMap<String, String>,
    pub memory_mb: u64,
}

/// A lab service as it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub name: String,
    /// Its container.
    pub container: String,
    /// Where the participant reaches it on the host (`publish: true`).
    pub published: Option<SocketAddr>,
}

/// Addresses on the host (always loopback) where the app can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub app: SocketAddr,
    /// The inspector as published on the host, when the environment publishes it.
    pub inspector: Option<SocketAddr>,
}

/// Facts about a running environment that templates and steps refer to.
#[derive(Debug, Clone)]
pub struct Facts {
    pub backend: Backend,
    /// Container name, or `pid <n>` for a process.
    pub name: String,
    /// Where the app's source lives as the app sees it (`/app` in a container).
    pub app_root: String,
    /// Where the app writes heap snapshots and profiles, as the app sees it.
    pub artifact_dir: String,
    /// Where the inspector listens as seen from inside the environment (`127.0.0.1:9229`).
    pub inspector_inside: Option<String>,
    /// The hostname the app sees (`os.hostname()`).
    pub hostname: String,
    /// One line for people: "docker container lab-runner-1a2b-part2 from lab-runner/lab-app:3f...".
    pub description: String,
}

/// How the app is doing, for diagnoses ("the container was OOM-killed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    Running,
    Exited { code: Option<i64>, oom_killed: bool },
    Gone,
}

impl std::fmt::Display for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppState::Running => f.write_str("is running"),
            AppState::Exited {
                oom_killed: true, ..
            } => f.write_str("was killed by the kernel's OOM killer (out of memory)"),
            AppState::Exited { code: Some(c), .. } => match killed_by(*c) {
                Some(signal) => write!(f, "was killed by {signal} (exit code {c})"),
                None => write!(f, "exited with code {c}"),
            },
            AppState::Exited { code: None, .. } => f.write_str("exited"),
            AppState::Gone => f.write_str("is gone (the container was removed)"),
        }
    }
}

/// The signal behind an exit code of 128 + n (how an init, a shell or Docker reports a process a
/// signal killed): `SIGKILL` for 137.
pub fn killed_by(code: i64) -> Option<&'static str> {
    let signal = i32::try_from(code.checked_sub(128)?).ok()?;
    nix::sys::signal::Signal::try_from(signal)
        .ok()
        .map(|s| s.as_str())
}

/// A running lab environment.
#[async_trait]
pub trait Environment: Send + Sync {
    fn facts(&self) -> Facts;
    fn endpoints(&self) -> Endpoints;
    /// The environment variables the app currently runs with.
    fn current_env(&self) -> &BTreeMap<String, String>;
    /// Replaces the app with one whose environment is `env`. Endpoints stay the same when possible.
    async fn recreate(&mut self, env: BTreeMap<String, String>) -> Result<()>;
    /// Restarts the app with its current environment.
    async fn restart(&mut self) -> Result<()>;
    /// Sends a signal (`SIGUSR1`, `SIGTERM`, ...) to the app's main process.
    async fn signal(&self, signal: &str) -> Result<()>;
    /// The app's stdout and stderr since it last started.
    async fn logs(&self) -> Result<String>;
    /// Copies the file at `path` (as the app sees it) to `dest` on the host; returns its size.
    async fn copy_out(&self, path: &str, dest: &Path) -> Result<u64>;
    async fn state(&self) -> Result<AppState>;
    /// Runs `argv` inside the app's environment (no shell unless `argv` starts one) and waits for it
    /// to end, at most `timeout`: a `docker exec` in the container; for a process, a local child in
    /// the app's folder with the app's environment variables.
    async fn exec(&self, argv: &[String], timeout: std::time::Duration) -> Result<ExecOutput>;
    /// Stops and removes everything this environment created.
    async fn teardown(&mut self) -> Result<()>;
    /// The lab services running beside the app (none on a backend without services).
    fn services(&self) -> Vec<ServiceFacts> {
        Vec::new()
    }
    /// Runs `argv` inside the container of the lab service `service`, as [`Environment::exec`].
    async fn service_exec(
        &self,
        service: &str,
        argv: &[String],
        timeout: std::time::Duration,
    ) -> Result<ExecOutput> {
        let _ = (argv, timeout);
        bail!("the service `{service}` does not run here: lab services need the Docker backend")
    }
    /// The stdout and stderr of the lab service `service`.
    async fn service_logs(&self, service: &str) -> Result<String> {
        bail!("the service `{service}` does not run here: lab services need the Docker backend")
    }
    /// Starts the participant's terminal container ([`docker::terminal`]); returns its name. Only
    /// a container can do that.
    async fn open_terminal(&mut self, terminal: &docker::terminal::TerminalSpec) -> Result<String> {
        let _ = terminal;
        bail!(
            "a terminal of its own is a container: --isolated-shell needs the Docker backend (--backend docker)"
        )
    }
    /// Forwards `local` (a loopback address; port 0 picks a free one) to `remote` as seen from
    /// inside the app's environment, one `docker exec` per connection ([`Tunnel`]). Only a
    /// container can do that; other backends say the step needs Docker.
    async fn open_tunnel(&self, local: SocketAddr, remote: SocketAddr) -> Result<Tunnel> {
        let _ = (local, remote);
        bail!(
            "a tunnel goes through `docker exec`: this step needs the Docker backend (--backend docker)"
        )
    }
}

/// Brings up the environment for `spec` on the chosen backend.
pub async fn start(
    backend: Backend,
    spec: EnvSpec,
    image: &docker::image::ImageChoice,
    reporter: &dyn Fn(&str),
) -> Result<Box<dyn Environment>> {
    match backend {
        Backend::Docker => Ok(Box::new(
            docker::DockerEnv::start(spec, image, reporter).await?,
        )),
        Backend::Process => Ok(Box::new(process::ProcessEnv::start(spec, reporter).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_code_past_128_names_the_signal() {
        assert_eq!(killed_by(137), Some("SIGKILL"));
        assert_eq!(killed_by(143), Some("SIGTERM"));
        assert_eq!(killed_by(1), None);
        assert_eq!(killed_by(128), None);
        assert_eq!(killed_by(-1), None);
        let killed = AppState::Exited {
            code: Some(137),
            oom_killed: false,
        };
        assert_eq!(killed.to_string(), "was killed by SIGKILL (exit code 137)");
        let exited = AppState::Exited {
            code: Some(1),
            oom_killed: false,
        };
        assert_eq!(exited.to_string(), "exited with code 1");
    }
}
