//! Shared by the reliability tests that watch what the runner does to Docker: every container start
//! is seen (through the engine's event stream) and the container inspected at once, so containers
//! that a step recreates or restarts and then removes are looked at too.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

/// One published (or requested) port: `9229/tcp` on `127.0.0.1:32768`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub container_port: String,
    pub host_ip: String,
    pub host_port: String,
}

/// A container as it was right after one of its starts.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: String,
    pub name: String,
    pub session: String,
    pub part: String,
    pub network_mode: String,
    /// `HostConfig.PortBindings`: what the runner asked for.
    pub requested: Vec<Binding>,
    /// `NetworkSettings.Ports`: what Docker bound on the host.
    pub published: Vec<Binding>,
    /// Why it could not be inspected (removed before the inspection, say).
    pub missed: Option<String>,
}

impl Seen {
    pub fn published_ports(&self) -> Vec<&str> {
        let mut ports: Vec<&str> = self
            .published
            .iter()
            .map(|b| b.container_port.as_str())
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }

    /// The host port `container_port` is published on.
    pub fn host_port(&self, container_port: &str) -> Option<u16> {
        self.published
            .iter()
            .find(|b| b.container_port == container_port)
            .and_then(|b| b.host_port.parse().ok())
    }
}

/// Watches container starts of the runner's containers (label `io.lab-runner.managed=true`).
pub struct Watch {
    seen: Arc<Mutex<Vec<Seen>>>,
    pending: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts watching; events from a second before now are included, so nothing that starts while
/// the subscription is being set up is missed.
pub fn watch_starts(docker: Docker) -> Watch {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pending = Arc::new(Mutex::new(Vec::new()));
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let filters = HashMap::from([
        ("type", vec!["container"]),
        ("event", vec!["start"]),
        ("label", vec!["io.lab-runner.managed=true"]),
    ]);
    let options = EventsOptionsBuilder::default()
        .since(&since.to_string())
        .filters(&filters)
        .build();
    let task = {
        let seen = seen.clone();
        let pending = pending.clone();
        tokio::spawn(async move {
            let mut events = docker.events(Some(options));
            while let Some(Ok(event)) = events.next().await {
                let Some(id) = event.actor.and_then(|a| a.id) else {
                    continue;
                };
                let docker = docker.clone();
                let seen = seen.clone();
                pending.lock().unwrap().push(tokio::spawn(async move {
                    let found = inspect(&docker, &id).await;
                    seen.lock().unwrap().push(found);
                }));
            }
        })
    };
    Watch {
        seen,
        pending,
        task,
    }
}

impl Watch {
    /// Stops watching (after a moment for the last events) and returns every start seen.
    pub async fn stop(self) -> Vec<Seen> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.task.abort();
        let pending: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap());
        for handle in pending {
            let _ = handle.await;
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

async fn inspect(docker: &Docker, id: &str) -> Seen {
    let mut seen = Seen {
        id: id.to_string(),
        name: String::new(),
        session: String::new(),
        part: String::new(),
        network_mode: String::new(),
        requested: Vec::new(),
        published: Vec::new(),
        missed: None,
    };
    let inspect = match docker.inspect_container(id, None).await {
        Ok(inspect) => inspect,
        Err(e) => {
            seen.missed = Some(e.to_string());
            return seen;
        }
    };
    seen.name = inspect
        .name
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let labels = inspect
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    seen.session = labels
        .get("io.lab-runner.session")
        .cloned()
        .unwrap_or_default();
    seen.part = labels
        .get("io.lab-runner.part")
        .cloned()
        .unwrap_or_default();
    let host = inspect.host_config.unwrap_or_default();
    seen.network_mode = host.network_mode.unwrap_or_default();
    seen.requested = flatten(host.port_bindings.unwrap_or_default());
    seen.published = flatten(
        inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default(),
    );
    seen
}

fn flatten(map: HashMap<String, Option<Vec<bollard::models::PortBinding>>>) -> Vec<Binding> {
    let mut out: Vec<Binding> = map
        .into_iter()
        .flat_map(|(port, bindings)| {
            bindings
                .unwrap_or_default()
                .into_iter()
                .map(move |b| Binding {
                    container_port: port.clone(),
                    host_ip: b.host_ip.unwrap_or_default(),
                    host_port: b.host_port.unwrap_or_default(),
                })
        })
        .collect();
    out.sort_by(|a, b| a.container_port.cmp(&b.container_port));
    out
}

/// The `(part, container)` of every `START` line in a verify's output.
pub fn started(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("START ["))
        .filter_map(|l| {
            let container = l
                .split_whitespace()
                .find(|w| w.starts_with("lab-runner-"))?
                .trim_matches(|c: char| !(c.is_alphanumeric() || c == '-'))
                .to_string();
            let part = container.rsplit('-').next()?.to_string();
            Some((part, container))
        })
        .collect()
}

/// The session id in a container name `lab-runner-<session>-<part>`.
pub fn session_of(container: &str) -> String {
    container.split('-').nth(2).unwrap_or_default().to_string()
}

/// A child's stdout, line by line, each with when it arrived (read on a thread).
pub struct Lines {
    rx: mpsc::Receiver<(Instant, String)>,
    pub all: Vec<(Instant, String)>,
}

impl Lines {
    pub fn of(stdout: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            all: Vec::new(),
        }
    }

    /// Waits (at most `within`) for a line containing `needle`; returns it and when it came.
    pub fn wait_for(&mut self, needle: &str, within: Duration) -> Option<(Instant, String)> {
        let deadline = Instant::now() + within;
        if let Some(found) = self.all.iter().find(|(_, l)| l.contains(needle)) {
            return Some(found.clone());
        }
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (at, line) = self.rx.recv_timeout(left).ok()?;
            self.all.push((at, line.clone()));
            if line.contains(needle) {
                return Some((at, line));
            }
        }
    }

    /// Reads until the child closes its stdout (or `within` passes).
    pub fn drain(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => self.all.push(line),
                Err(_) => break,
            }
        }
    }

    pub fn text(&self) -> String {
        self.all
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits for `child` to exit within `within`; kills it otherwise (and says so).
pub fn wait_or_kill(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes everything labelled with `session` (containers, networks): what a test made, and only that.
pub async fn remove_session(session: &str) {
    if let Ok(docker) = lab_runner::env::docker::connect::connect().await {
        let _ = lab_runner::env::docker::cleanup::remove_labelled(
            &docker,
            &lab_runner::env::docker::cleanup::Scope {
                session: Some(session.to_string()),
                images: false,
                live_sessions: true,
                runner_pid: None,
            },
        )
        .await;
    }
}
