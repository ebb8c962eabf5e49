//! The Docker backend (bollard): image, network, container, signals, logs, copy-out, labels, cleanup.

pub mod api_guard;
pub mod archive;
pub mod cleanup;
pub mod client;
pub mod connect;
pub mod doctor;
pub mod image;
pub mod labels;
pub mod rootfs;
pub mod running;
pub mod subnets;
pub mod terminal;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding};

use super::{AppState, Endpoints, EnvSpec, Environment, Facts, ServiceFacts, ServiceRun};
use crate::env::node::prepend_node_option;
use crate::lab::{AppRun, InspectorMode, ServiceHealth};
use crate::probe::tunnel::Tunnel;
use crate::util::ports;
pub use client::{DockerClient, DockerError};
use image::{ImageChoice, ImageInput, LabImage, Recipe};

/// The inspector's port inside the container.
pub const INSPECTOR_PORT: u16 = 9229;
/// Where the app writes artifacts inside the container.
pub const ARTIFACT_DIR: &str = "/tmp";
/// Seconds the app gets to stop after SIGTERM before it is killed.
const STOP_GRACE_SECONDS: i32 = 5;
/// How long a lab service may take to become healthy after it starts.
const SERVICE_HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
/// The app's host name on the environment's network (services reach it as `app:<port>`).
pub const APP_ALIAS: &str = "app";

/// A lab service's container, running beside the app.
struct RunningService {
    spec: ServiceRun,
    container: String,
    image: String,
    published: Option<SocketAddr>,
}

/// The lab app running in a container on its own network.
pub struct DockerEnv {
    docker: DockerClient,
    spec: EnvSpec,
    image: LabImage,
    network: String,
    container: String,
    env: BTreeMap<String, String>,
    endpoints: Endpoints,
    /// Log lines written before the app last restarted (skipped by `logs`).
    log_offset: usize,
    /// The container's hostname (what `os.hostname()` says inside).
    hostname: String,
    /// The container's command, when the image's own is not the one to run.
    cmd: Option<Vec<String>>,
    services: Vec<RunningService>,
    /// The participant's terminal container, once one was asked for ([`terminal`]).
    terminal: Option<String>,
    /// The terminal's tunnel port mirrored on the host ([`terminal::mirror_tunnel_port`]).
    terminal_mirror: Option<tokio::task::JoinHandle<()>>,
    /// Torn down: no terminal is made any more (one asked for as the session ends).
    torn_down: bool,
}

impl DockerEnv {
    /// Connects, ensures the image, and starts the app in a fresh container on a fresh network.
    pub async fn start(
        spec: EnvSpec,
        choice: &ImageChoice,
        report: &dyn Fn(&str),
    ) -> Result<DockerEnv> {
        let docker = connect::connect().await?;
        if let Some(port) = spec.fixed_app_port {
            ports::require_free(port)?;
        }
        let recipe = Recipe::for_app(choice, spec.app_image.as_ref(), node_entry(&spec.run));
        let repository = image::repository(&spec.app_dir);
        let image = image::ensure(
            &docker,
            &ImageInput {
                repository: &repository,
                dir: Some(&spec.app_dir),
                files: &spec.app_files,
                recipe: &recipe,
            },
            report,
        )
        .await
        .context("Failed to make the app's image")?;
        report(&image.how);
        let cmd = app_cmd(&spec.run, &recipe);
        // The services' images before anything starts: a build that fails leaves nothing behind.
        let mut service_images = Vec::new();
        for service in &spec.services {
            let recipe = Recipe::of(service.image.as_ref(), None);
            let repository = match &service.dir {
                Some(dir) => image::repository(dir),
                None => format!("{}-{}", image::repository(&spec.app_dir), service.name),
            };
            let built = image::ensure(
                &docker,
                &ImageInput {
                    repository: &repository,
                    dir: service.dir.as_deref(),
                    files: &service.files,
                    recipe: &recipe,
                },
                report,
            )
            .await
            .with_context(|| {
                format!("Failed to make the image of the service `{}`", service.name)
            })?;
            report(&format!("service {}: {}", service.name, built.how));
            service_images.push(built.reference);
        }
        let base = format!("lab-runner-{}-{}", spec.session_id, spec.part_id);
        let network = base.clone();
        let subnet = subnets::create_network(
            &docker,
            NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels::for_session(
                    &spec.lab_id,
                    &spec.part_id,
                    &spec.session_id,
                )),
                ..Default::default()
            },
        )
        .await?;
        if let Some(subnet) = subnet {
            report(&format!(
                "Docker's address pools are used up; the network {network} has the subnet {subnet} of the runner's own range {}",
                subnets::RANGE
            ));
        }
        let mut env = DockerEnv {
            docker,
            env: spec.env.clone(),
            spec,
            image,
            network,
            container: base,
            endpoints: Endpoints {
                app: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                inspector: None,
            },
            log_offset: 0,
            hostname: String::new(),
            cmd,
            services: Vec::new(),
            terminal: None,
            terminal_mirror: None,
            torn_down: false,
        };
        for (service, image) in env.spec.services.clone().into_iter().zip(service_images) {
            let name = service.name.clone();
            if let Err(e) = env.start_service(service, image).await {
                let _ = env.teardown().await;
                return Err(e.context(format!("the service `{name}` did not start")));
            }
        }
        // A concrete host port rather than an ephemeral one: Docker hands out a new ephemeral port
        // when a container restarts, and the participant's `$BASE` would point nowhere.
        let wanted = Wanted {
            app: env.spec.fixed_app_port.or_else(|| ports::free_port().ok()),
            inspector: match env.spec.inspector {
                InspectorMode::Open { host_port } => ports::preferred_or_free(host_port, report),
                _ => None,
            },
        };
        if let Err(e) = env.create_and_start(&wanted, report).await {
            let _ = env.teardown().await;
            return Err(e);
        }
        Ok(env)
    }

    /// Creates the container with the current environment and starts it. Host ports in `wanted` are
    /// requested; `None` means an ephemeral port. A port taken between the check and the start (by
    /// another run starting at the same moment, say) falls back to an ephemeral one, said through
    /// `report` — except the app's fixed port (`--fixed-ports`), which is an error saying so.
    async fn create_and_start<R: Fn(&str) + ?Sized>(
        &mut self,
        wanted: &Wanted,
        report: &R,
    ) -> Result<()> {
        match self.try_create_and_start(wanted).await {
            Err(e) if is_port_conflict(&e) => {
                self.remove_container().await?;
                let fixed = self.spec.fixed_app_port;
                let taken = port_conflict(&e).and_then(DockerError::taken_port);
                for port in [wanted.app, wanted.inspector].into_iter().flatten() {
                    if Some(port) != fixed && taken == Some(port) {
                        report(&format!(
                            "port {port} on 127.0.0.1 was taken just now by another program; using another free port instead"
                        ));
                    }
                }
                let fallback = Wanted {
                    app: fixed.or_else(|| ports::free_port().ok()),
                    inspector: wanted.inspector.and_then(|_| ports::free_port().ok()),
                };
                match self.try_create_and_start(&fallback).await {
                    Err(e) if is_port_conflict(&e) && fixed.is_some() => {
                        self.remove_container().await?;
                        Err(e.context(ports::fixed_port_taken(fixed.unwrap_or_default())))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn try_create_and_start(&mut self, wanted: &Wanted) -> Result<()> {
        let spec = &self.spec;
        let app_port = format!("{}/tcp", spec.app_port);
        let inspector_port = format!("{INSPECTOR_PORT}/tcp");
        let loopback = |host_port: Option<u16>| {
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host_port.map(|p| p.to_string()).unwrap_or_default()),
            }])
        };
        let mut exposed = vec![app_port.clone()];
        let mut bindings = HashMap::from([(app_port.clone(), loopback(wanted.app))]);
        let mut env = self.env.clone();
        env.insert("PORT".into(), spec.app_port.to_string());
        env.insert("HOST".into(), "0.0.0.0".into());
        env.entry("LAB_ARTIFACT_DIR".into())
            .or_insert_with(|| ARTIFACT_DIR.into());
        if let InspectorMode::Open { .. } = spec.inspector {
            // Listening on all interfaces inside the container, published on the host's loopback only.
            prepend_node_option(&mut env, &format!("--inspect=0.0.0.0:{INSPECTOR_PORT}"));
            exposed.push(inspector_port.clone());
            bindings.insert(inspector_port.clone(), loopback(wanted.inspector));
        }
        let config = ContainerCreateBody {
            image: Some(self.image.reference.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: self.cmd.clone(),
            working_dir: self.cmd.as_ref().map(|_| rootfs::APP_IN_IMAGE.to_string()),
            networking_config: Some(aliases(&self.network, APP_ALIAS)),
            exposed_ports: Some(exposed),
            labels: Some(labels::for_session(
                &spec.lab_id,
                &spec.part_id,
                &spec.session_id,
            )),
            stop_timeout: Some(STOP_GRACE_SECONDS as i64),
            host_config: Some(HostConfig {
                binds: host_node_bind(self.image.host_node.as_deref()),
                ..locked_down(
                    bindings,
                    (spec.memory_mb * 1024 * 1024) as i64,
                    spec.cpus,
                    &self.network,
                )
            }),
            ..Default::default()
        };
        self.docker
            .create_container(&self.container, config)
            .await?;
        self.docker.start_container(&self.container).await?;
        self.log_offset = 0;
        self.read_published_ports().await
    }

    /// Reads the host ports Docker published, and the hostname. The published ports appear in
    /// inspect only after start, and ephemeral ones change when the container restarts.
    async fn read_published_ports(&mut self) -> Result<()> {
        let app_port = format!("{}/tcp", self.spec.app_port);
        let inspector_port = format!("{INSPECTOR_PORT}/tcp");
        let inspect = self.docker.inspect_container(&self.container).await?;
        self.hostname = inspect
            .config
            .as_ref()
            .and_then(|c| c.hostname.clone())
            .unwrap_or_default();
        let ports = inspect
            .network_settings
            .and_then(|n| n.ports)
            .ok_or_else(|| anyhow!("the container {} has no published ports", self.container))?;
        let host_port = |key: &str| -> Result<u16> {
            let binding = ports
                .get(key)
                .and_then(|b| b.as_ref())
                .and_then(|b| b.first())
                .ok_or_else(|| anyhow!("port {key} of {} is not published", self.container))?;
            if binding.host_ip.as_deref() != Some("127.0.0.1") {
                bail!(
                    "port {key} of {} is published on {:?}, not on 127.0.0.1",
                    self.container,
                    binding.host_ip
                );
            }
            binding
                .host_port
                .as_deref()
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("port {key} of {} has no host port", self.container))
        };
        self.endpoints = Endpoints {
            app: SocketAddr::from((Ipv4Addr::LOCALHOST, host_port(&app_port)?)),
            inspector: match self.spec.inspector {
                InspectorMode::Open { .. } => Some(SocketAddr::from((
                    Ipv4Addr::LOCALHOST,
                    host_port(&inspector_port)?,
                ))),
                _ => None,
            },
        };
        Ok(())
    }

    /// Starts `service` in a container of its own on the environment's network (its name is its
    /// host name there), published on 127.0.0.1, and waits until it is healthy.
    async fn start_service(&mut self, service: ServiceRun, image: String) -> Result<()> {
        let container = format!("{}-{}", self.container, service.name);
        let port = format!("{}/tcp", service.port);
        let mut env = service.env.clone();
        env.insert("PORT".into(), service.port.to_string());
        env.insert("HOST".into(), "0.0.0.0".into());
        let memory = (service.memory_mb * 1024 * 1024) as i64;
        let config = ContainerCreateBody {
            image: Some(image.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(service.command.clone()),
            working_dir: Some(rootfs::APP_IN_IMAGE.to_string()),
            hostname: Some(service.name.clone()),
            exposed_ports: Some(vec![port.clone()]),
            labels: Some(labels::for_service(
                &self.spec.lab_id,
                &self.spec.part_id,
                &self.spec.session_id,
                &service.name,
            )),
            stop_timeout: Some(STOP_GRACE_SECONDS as i64),
            networking_config: Some(aliases(&self.network, &service.name)),
            // Published on the host's loopback only, on an ephemeral port: the runner probes its
            // health there, and a `publish: true` service is the participant's too.
            host_config: Some(locked_down(
                HashMap::from([(
                    port.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )]),
                memory,
                self.spec.cpus,
                &self.network,
            )),
            ..Default::default()
        };
        self.docker.create_container(&container, config).await?;
        // Listed before it starts, so teardown removes it whatever happens next.
        self.services.push(RunningService {
            spec: service.clone(),
            container: container.clone(),
            image,
            published: None,
        });
        self.docker.start_container(&container).await?;
        let inspect = self.docker.inspect_container(&container).await?;
        let host_port: u16 = inspect
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|ports| ports.get(&port).cloned().flatten())
            .and_then(|b| b.first().cloned())
            .filter(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
            .and_then(|b| b.host_port)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("port {port} of {container} is not published on 127.0.0.1"))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
        self.wait_service_healthy(&service, &container, addr)
            .await?;
        if let Some(running) = self.services.last_mut() {
            running.published = service.publish.then_some(addr);
        }
        Ok(())
    }

    /// Polls the service's health (`http:` path answering 200, or its port accepting connections)
    /// until it holds, the container stops, or [`SERVICE_HEALTHY_TIMEOUT`] passes.
    async fn wait_service_healthy(
        &self,
        service: &ServiceRun,
        container: &str,
        addr: SocketAddr,
    ) -> Result<()> {
        let client = crate::probe::http::HttpClient::new()?;
        let started = std::time::Instant::now();
        let mut polls = 0u32;
        let mut last;
        loop {
            let probe = match &service.health {
                ServiceHealth::Http(path) => {
                    let url = format!("http://{addr}{path}");
                    match client.get_status(&url, Duration::from_millis(500)).await {
                        Ok(200) => return Ok(()),
                        Ok(status) => format!("GET {path} answered {status}"),
                        Err(e) => format!("GET {path}: {e:#}"),
                    }
                }
                ServiceHealth::Tcp(_) => {
                    let connect = tokio::net::TcpStream::connect(addr);
                    match tokio::time::timeout(Duration::from_millis(500), connect).await {
                        // Docker's proxy accepts on the host before the service listens, then
                        // closes: only a connection that stays open is the service's.
                        Ok(Ok(stream)) => {
                            if still_open(stream).await {
                                return Ok(());
                            }
                            format!("port {} closed the connection", service.port)
                        }
                        Ok(Err(e)) => format!("port {}: {e}", service.port),
                        Err(_) => format!("port {}: no answer within 500 ms", service.port),
                    }
                }
            };
            last = probe;
            polls += 1;
            if polls.is_multiple_of(5) {
                let inspect = self.docker.inspect_container(container).await?;
                let state = inspect.state.unwrap_or_default();
                if state.running != Some(true) {
                    let exited = AppState::Exited {
                        code: state.exit_code,
                        oom_killed: state.oom_killed == Some(true),
                    };
                    bail!(
                        "the service `{}` is not running: it {exited}\n{}",
                        service.name,
                        self.service_log_tail(container).await
                    );
                }
            }
            if started.elapsed() >= SERVICE_HEALTHY_TIMEOUT {
                bail!(
                    "the service `{}` did not become healthy within {:.0}s: {last}\n{}",
                    service.name,
                    SERVICE_HEALTHY_TIMEOUT.as_secs_f64(),
                    self.service_log_tail(container).await
                );
            }
            tokio::time::sleep(Duration::from_millis(if polls < 20 { 20 } else { 100 })).await;
        }
    }

    /// The last lines of a service's log, as a diagnosis block.
    async fn service_log_tail(&self, container: &str) -> String {
        match self.docker.logs(container).await {
            Ok(text) if text.trim().is_empty() => format!("the log of {container} is empty"),
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(15)..];
                format!(
                    "last lines of {container}'s log:\n  | {}",
                    tail.join("\n  | ")
                )
            }
            Err(e) => format!("(the log of {container} could not be read: {e:#})"),
        }
    }

    fn service(&self, name: &str) -> Result<&RunningService> {
        self.services
            .iter()
            .find(|s| s.spec.name == name)
            .ok_or_else(|| {
                let running: Vec<&str> =
                    self.services.iter().map(|s| s.spec.name.as_str()).collect();
                anyhow!(
                    "the service `{name}` does not run in this environment (it runs: {})",
                    if running.is_empty() {
                        "no services".to_string()
                    } else {
                        running.join(", ")
                    }
                )
            })
    }

    async fn remove_container(&self) -> Result<()> {
        Ok(self.docker.remove_container(&self.container).await?)
    }

    async fn all_logs(&self) -> Result<Vec<String>> {
        let text = self.docker.logs(&self.container).await?;
        Ok(text.lines().map(str::to_string).collect())
    }
}

/// The Node entry of an app that is started as `node <entry>`.
fn node_entry(run: &AppRun) -> Option<&str> {
    match run {
        AppRun::Node(entry) => Some(entry),
        AppRun::Command(_) => None,
    }
}

/// The app container's command when the image's own is not the one: the app's `command:`, or
/// `node <entry>` in an image whose command is not the entry's.
fn app_cmd(run: &AppRun, recipe: &Recipe) -> Option<Vec<String>> {
    match (run, recipe) {
        (AppRun::Command(argv), _) => Some(argv.clone()),
        (
            AppRun::Node(_),
            Recipe::HostNode { .. } | Recipe::Existing(_) | Recipe::Dockerfile(_),
        ) => None,
        (AppRun::Node(entry), Recipe::Offline(_) | Recipe::Registry(_)) => Some(vec![
            "node".into(),
            format!("{}/{entry}", rootfs::APP_IN_IMAGE),
        ]),
    }
}

/// A container's place on `network`, reachable there by `alias`.
fn aliases(network: &str, alias: &str) -> bollard::models::NetworkingConfig {
    bollard::models::NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.to_string(),
            bollard::models::EndpointSettings {
                aliases: Some(vec![alias.to_string()]),
                ..Default::default()
            },
        )])),
    }
}

/// Whether a fresh connection stays open a moment (a listener behind Docker's port proxy), rather
/// than being closed at once (the proxy with nothing behind it).
async fn still_open(mut stream: tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await {
        // Nothing to read yet: the service holds the connection open.
        Err(_) => true,
        // A server that speaks first (a database's greeting) is there too.
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
    }
}

/// The engine's refusal to publish a port that is taken, when that is why `e` failed.
fn port_conflict(e: &anyhow::Error) -> Option<&DockerError> {
    e.chain()
        .filter_map(|c| c.downcast_ref::<DockerError>())
        .find(|d| d.is_port_allocated())
}

/// Whether Docker refused to start a container because a host port it should publish is taken.
fn is_port_conflict(e: &anyhow::Error) -> bool {
    port_conflict(e).is_some()
}

/// Host ports to ask for.
/// How long Docker gets to create and start an exec, and to say how it ended.
const EXEC_CALL_LIMIT: Duration = Duration::from_secs(10);

/// Runs `argv` in `container` with `docker exec` (stdin closed) and collects what it prints until it
/// ends or `timeout` passes. Docker cannot stop an exec: one still running at `timeout` is left to
/// end with the container, and said to have timed out.
async fn exec_in(
    docker: &DockerClient,
    container: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<super::ExecOutput> {
    use crate::probe::tunnel::{Exec, ExecState, Frame};
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    if argv.is_empty() {
        bail!("nothing to run: the command is empty");
    }
    let started = std::time::Instant::now();
    let attached = docker
        .start_attached(container, Vec::new(), argv.to_vec(), EXEC_CALL_LIMIT)
        .await
        .with_context(|| format!("Failed to run `{}` in {container}", argv.join(" ")))?;
    let (id, mut output, mut input) = (attached.id, attached.output, attached.input);
    // Nothing to read on stdin: a command that reads it sees its end.
    let _ = tokio::time::timeout(Duration::from_secs(2), input.shutdown()).await;
    let mut out = super::ExecOutput::default();
    let read = async {
        while let Some(frame) = output.next().await {
            match frame? {
                Frame::StdOut(b) | Frame::Unframed(b) => super::exec::keep(&mut out.stdout, &b),
                Frame::StdErr(b) => super::exec::keep(&mut out.stderr, &b),
            }
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(done) => done.with_context(|| format!("Failed to read `{}`'s output", argv[0]))?,
        Err(_) => out.timed_out = true,
    }
    out.took = started.elapsed();
    if !out.timed_out {
        // The stream ends a moment before Docker records the exit code.
        let asked = std::time::Instant::now();
        loop {
            match docker.state(&id, EXEC_CALL_LIMIT).await? {
                ExecState::Exited(code) => {
                    out.status = code;
                    break;
                }
                ExecState::Running if asked.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                ExecState::Running => bail!(
                    "`{}` in {container} closed its output but Docker still says it runs",
                    argv.join(" ")
                ),
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Wanted {
    app: Option<u16>,
    inspector: Option<u16>,
}

#[async_trait]
impl Environment for DockerEnv {
    fn facts(&self) -> Facts {
        Facts {
            backend: super::Backend::Docker,
            name: self.container.clone(),
            app_root: rootfs::APP_IN_IMAGE.into(),
            artifact_dir: self
                .env
                .get("LAB_ARTIFACT_DIR")
                .cloned()
                .unwrap_or_else(|| ARTIFACT_DIR.into()),
            inspector_inside: match self.spec.inspector {
                InspectorMode::None => None,
                _ => Some(format!("127.0.0.1:{INSPECTOR_PORT}")),
            },
            hostname: self.hostname.clone(),
            description: {
                let mut text = format!(
                    "docker container {} ({})",
                    self.container, self.image.reference
                );
                for s in &self.services {
                    text.push_str(&format!(", service {} ({})", s.container, s.image));
                }
                text
            },
        }
    }

    fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    fn current_env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    async fn recreate(&mut self, env: BTreeMap<String, String>) -> Result<()> {
        let keep = Wanted {
            app: Some(self.endpoints.app.port()),
            inspector: self.endpoints.inspector.map(|a| a.port()),
        };
        self.remove_container().await?;
        self.env = env;
        // The same ports as before; a change (one taken meanwhile) shows in the refreshed endpoints.
        self.create_and_start(&keep, &|_| {}).await
    }

    async fn restart(&mut self) -> Result<()> {
        let before = self.all_logs().await?.len();
        self.docker
            .stop_container(&self.container, STOP_GRACE_SECONDS)
            .await?;
        self.docker.start_container(&self.container).await?;
        self.log_offset = before;
        self.read_published_ports().await
    }

    async fn signal(&self, signal: &str) -> Result<()> {
        Ok(self.docker.kill_container(&self.container, signal).await?)
    }

    async fn logs(&self) -> Result<String> {
        let lines = self.all_logs().await?;
        Ok(lines[self.log_offset.min(lines.len())..].join("\n"))
    }

    async fn copy_out(&self, path: &str, dest: &Path) -> Result<u64> {
        archive::copy_file_out(&self.docker, &self.container, path, dest).await
    }

    async fn state(&self) -> Result<AppState> {
        match self.docker.inspect_container(&self.container).await {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                if state.running == Some(true) {
                    Ok(AppState::Running)
                } else {
                    Ok(AppState::Exited {
                        code: state.exit_code,
                        oom_killed: state.oom_killed == Some(true),
                    })
                }
            }
            Err(e) if e.is_not_found() => Ok(AppState::Gone),
            Err(e) => Err(e.into()),
        }
    }

    async fn teardown(&mut self) -> Result<()> {
        self.torn_down = true;
        if let Some(mirror) = self.terminal_mirror.take() {
            mirror.abort();
        }
        let terminal = match self.terminal.take() {
            Some(name) => self.docker.remove_container(&name).await,
            None => Ok(()),
        };
        let container = self.remove_container().await;
        let mut services = Ok(());
        for service in &self.services {
            if let Err(e) = self.docker.remove_container(&service.container).await {
                services = Err(e);
            }
        }
        let network = self.docker.remove_network(&self.network).await;
        container
            .and(terminal.map_err(Into::into))
            .and(services.map_err(Into::into))
            .and(network.map_err(Into::into))
    }

    fn services(&self) -> Vec<ServiceFacts> {
        self.services
            .iter()
            .map(|s| ServiceFacts {
                name: s.spec.name.clone(),
                container: s.container.clone(),
                published: s.published,
            })
            .collect()
    }

    async fn service_exec(
        &self,
        service: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<super::ExecOutput> {
        let container = &self.service(service)?.container;
        exec_in(&self.docker, container, argv, timeout).await
    }

    async fn service_logs(&self, service: &str) -> Result<String> {
        let container = &self.service(service)?.container;
        Ok(self.docker.logs(container).await?)
    }

    async fn exec(&self, argv: &[String], timeout: Duration) -> Result<super::ExecOutput> {
        exec_in(&self.docker, &self.container, argv, timeout).await
    }

    async fn open_terminal(&mut self, spec: &terminal::TerminalSpec) -> Result<String> {
        if self.torn_down {
            bail!("the session has ended: its environment is removed");
        }
        let name = format!("{}-terminal", self.container);
        // What an earlier attempt that failed may have left.
        if let Some(earlier) = self.terminal.take() {
            self.docker.remove_container(&earlier).await?;
        }
        let mut forwards = vec![(
            self.endpoints.app,
            format!("{APP_ALIAS}:{}", self.spec.app_port),
        )];
        if let Some(inspector) = self.endpoints.inspector {
            forwards.push((inspector, format!("{APP_ALIAS}:{INSPECTOR_PORT}")));
        }
        for service in &self.services {
            if let Some(published) = service.published {
                forwards.push((
                    published,
                    format!("{}:{}", service.spec.name, service.spec.port),
                ));
            }
        }
        let config = terminal::config(
            spec,
            &terminal::Reachable { forwards },
            &self.image.reference,
            &self.network,
            {
                let mut labels = labels::for_session(
                    &self.spec.lab_id,
                    &self.spec.part_id,
                    &self.spec.session_id,
                );
                labels.insert(labels::TERMINAL.to_string(), "true".to_string());
                labels
            },
            self.spec.cpus,
        );
        self.terminal = Some(name.clone());
        self.docker
            .create_container(&name, config)
            .await
            .with_context(|| {
                format!("Failed to create the participant's terminal container {name}")
            })?;
        self.docker.start_container(&name).await.with_context(|| {
            format!("Failed to start the participant's terminal container {name}")
        })?;
        if let Some(port) = spec.tunnel_port {
            let inspect = self.docker.inspect_container(&name).await?;
            let pid = inspect
                .state
                .as_ref()
                .and_then(|s| s.pid)
                .filter(|p| *p > 0)
                .unwrap_or(-1);
            let ip = inspect
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .and_then(|n| n.get(&self.network))
                .and_then(|n| n.ip_address.as_deref())
                .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
            let (Ok(pid), Some(ip)) = (u32::try_from(pid), ip) else {
                bail!(
                    "the terminal container {name} has no process or no address on {}",
                    self.network
                );
            };
            if let Some(old) = self.terminal_mirror.take() {
                old.abort();
            }
            self.terminal_mirror = Some(tokio::spawn(terminal::mirror_tunnel_port(
                pid,
                ip,
                port,
                spec.mirror.clone(),
            )));
        }
        Ok(name)
    }

    async fn open_tunnel(&self, local: SocketAddr, remote: SocketAddr) -> Result<Tunnel> {
        Tunnel::open(
            Arc::new(self.docker.clone()),
            self.container.clone(),
            local,
            remote,
        )
        .await
    }
}

/// How every container the runner makes runs, the app's and each service's alike: an init as PID 1
/// (it forwards signals: SIGTERM to stop, SIGUSR1 for node's inspector), a memory limit without
/// swap, the environment's own network, no capabilities, no privilege gain, a bounded number of
/// processes, and only `bindings` published.
/// The host's `node`, read-only, over the image's copy of it, when the engine runs on this host.
///
/// The image holds the same file (its tag is named by the file's path, size, time and inode), so
/// nothing the app sees changes; what changes is where its 100 MB are read from. On an engine
/// whose storage is fuse-overlayfs (rootless Docker, this project's CI), every container reads its
/// image's copy through a FUSE daemon of its own, and fifty seats starting at once read 5 GB that
/// way, while a bind mount is one file in the host's page cache. An engine elsewhere
/// (`DOCKER_HOST=tcp://…`, `ssh://…`) has no such file, so the image's copy is used.
fn host_node_bind(host_node: Option<&std::path::Path>) -> Option<Vec<String>> {
    let node = host_node?;
    let local = std::env::var("DOCKER_HOST").map_or(true, |host| host.starts_with("unix://"));
    let path = node.to_str()?;
    (local && !path.contains(':')).then(|| vec![format!("{path}:{}:ro", rootfs::NODE_IN_IMAGE)])
}

fn locked_down(
    bindings: HashMap<String, Option<Vec<PortBinding>>>,
    memory_bytes: i64,
    cpus: Option<f64>,
    network: &str,
) -> HostConfig {
    HostConfig {
        port_bindings: Some(bindings),
        init: Some(true),
        memory: Some(memory_bytes),
        memory_swap: Some(memory_bytes),
        nano_cpus: cpus.map(|cores| (cores * 1e9) as i64),
        network_mode: Some(network.to_string()),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        pids_limit: Some(256),
        ..Default::default()
    }
}
