//! A workshop's seats: for participants without a working Docker, each seat is a `lab-runner start
//! PART --web --shell` session on the instructor's machine, started before anyone arrives (warm: its
//! environment up, its first step waiting), with its own folder, state, token, ports, network and
//! containers (labelled with its session, so cleanup finds them), joined to the workshop under the
//! name `seat N`. The participant reaches it only through the workshop server
//! (`passthrough.rs`); its page's token is the seat's secret.
//!
//! The workshop server starts the seats as its children and stops them when it stops: each seat's
//! session removes its own environment on SIGTERM, as `start` does on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::capacity::Plan;

/// How long a seat may take to be ready (its environment up and its first step shown). The first
/// seat may build the lab's image; the others wait for the same one.
pub const READY_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a seat may take to end after SIGTERM (its environment is removed meanwhile).
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long one look at a seat's page may take.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the seats are: the part, the lab, their limits and where their sessions report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatsSpec {
    pub count: usize,
    pub part: String,
    pub lab: Option<PathBuf>,
    pub app_mb: u64,
    pub cpus: f64,
}

impl SeatsSpec {
    pub fn new(plan: &Plan, part: &str, lab: Option<PathBuf>) -> SeatsSpec {
        SeatsSpec {
            count: plan.seats,
            part: part.to_string(),
            lab,
            app_mb: plan.app_mb,
            cpus: plan.cpus,
        }
    }
}

/// One seat, as the server and `workshop status` know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seat {
    pub number: usize,
    pub pid: u32,
    /// The seat's page on 127.0.0.1 (reached only through the workshop).
    pub port: u16,
    /// The seat's secret: its page's token.
    pub token: String,
    /// Its folder: the participant's working folder (`work/`), its state and its log.
    pub dir: PathBuf,
}

impl Seat {
    pub fn name(&self) -> String {
        format!("seat {}", self.number)
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("seat.log")
    }
    /// Its address through the workshop at `workshop` (`host:port`).
    pub fn url(&self, workshop: &str) -> String {
        format!(
            "https://{workshop}/seat/{}/?token={}",
            self.number, self.token
        )
    }
}

/// A started seat's process and what is known of it.
pub struct Started {
    pub child: std::process::Child,
    pub number: usize,
    pub dir: PathBuf,
}

/// Starts `spec.count` seats under `root` (one folder each), reporting to `join_url`.
pub fn start_all(spec: &SeatsSpec, root: &Path, join_url: &str) -> Result<Vec<Started>> {
    let exe = std::env::current_exe().context("Failed to find this lab-runner")?;
    (1..=spec.count)
        .map(|number| {
            let dir = root.join(format!("seat-{number}"));
            let work = dir.join("work");
            let state = dir.join("state");
            for folder in [&work, &state] {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("Failed to create {}", folder.display()))?;
            }
            let log = std::fs::File::create(dir.join("seat.log"))
                .with_context(|| format!("Failed to create seat {number}'s log"))?;
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["start", &spec.part, "--web", "--no-browser", "--shell"])
                .args(["--join", join_url, "--name", &format!("seat {number}")])
                .args(["--backend", "docker"])
                .args(["--memory", &spec.app_mb.to_string()])
                .args(["--cpus", &spec.cpus.to_string()]);
            if let Some(lab) = &spec.lab {
                cmd.arg("--lab").arg(lab);
            }
            // The instructor's cache (bash's answers about the lab, kept by `up`'s own lint): a
            // seat's HOME is its own folder, and twenty-five seats asking bash again would cost
            // seconds of both cores.
            if let Some(cache) = crate::util::cache::dir().as_deref().and_then(Path::parent) {
                cmd.env("XDG_CACHE_HOME", cache);
            }
            // Every seat asks the engine at once: a busy engine is not a missing one.
            cmd.env(crate::env::docker::connect::CONNECT_TIMEOUT_VAR, "15");
            cmd.current_dir(&work)
                .env("LAB_RUNNER_STATE_DIR", &state)
                .env("HOME", &dir)
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            let child = cmd
                .spawn()
                .with_context(|| format!("Failed to start seat {number}"))?;
            Ok(Started { child, number, dir })
        })
        .collect()
}

/// The page address a seat printed (`http://127.0.0.1:PORT/?token=…`), once it has.
fn printed_page(log: &Path) -> Option<(u16, String)> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("http://127.0.0.1:")?;
        let (port, query) = rest.split_once("/?token=")?;
        Some((port.parse().ok()?, query.to_string()))
    })
}

/// Waits until every seat's page answers and its session waits at its first step; stops at the
/// first seat that ends or does not get there in [`READY_TIMEOUT`], with what its log says.
pub async fn wait_ready(started: &mut [Started]) -> Result<Vec<Seat>> {
    crate::util::crypto::ensure_provider();
    let client = reqwest::Client::builder()
        .timeout(LOOK_TIMEOUT)
        .no_proxy()
        .build()
        .context("Failed to make the seats' client")?;
    let begun = Instant::now();
    let mut ready: Vec<Option<Seat>> = vec![None; started.len()];
    loop {
        for (i, seat) in started.iter_mut().enumerate() {
            if ready[i].is_some() {
                continue;
            }
            let log = seat.dir.join("seat.log");
            if let Some(status) = seat.child.try_wait()? {
                bail!(
                    "seat {} stopped ({status}) before it was ready; its log ({}):\n{}",
                    seat.number,
                    log.display(),
                    tail(&log)
                );
            }
            let Some((port, token)) = printed_page(&log) else {
                continue;
            };
            if waiting_at_a_step(&client, port, &token).await {
                ready[i] = Some(Seat {
                    number: seat.number,
                    pid: seat.child.id(),
                    port,
                    token,
                    dir: seat.dir.clone(),
                });
            }
        }
        if ready.iter().all(Option::is_some) {
            return Ok(ready.into_iter().flatten().collect());
        }
        if begun.elapsed() > READY_TIMEOUT {
            let late: Vec<String> = started
                .iter()
                .zip(&ready)
                .filter(|(_, r)| r.is_none())
                .map(|(s, _)| s.number.to_string())
                .collect();
            let first = started
                .iter()
                .zip(&ready)
                .find(|(_, r)| r.is_none())
                .map(|(s, _)| s.dir.join("seat.log"));
            bail!(
                "seat(s) {} were not ready within {} s; the first one's log says:\n{}",
                late.join(", "),
                READY_TIMEOUT.as_secs(),
                first.map(|log| tail(&log)).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the seat's page answers and its session waits for a choice at a step.
pub async fn waiting_at_a_step(client: &reqwest::Client, port: u16, token: &str) -> bool {
    let Ok(answer) = client
        .get(format!("http://127.0.0.1:{port}/state?token={token}"))
        .send()
        .await
    else {
        return false;
    };
    let Ok(state) = answer.json::<serde_json::Value>().await else {
        return false;
    };
    state["status"]["waiting"] == true && !state["step"].is_null()
}

/// The last lines of a log.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Stops every seat: SIGTERM (each removes its environment), then SIGKILL after [`STOP_GRACE`].
pub async fn stop_all(started: &mut [Started]) {
    for seat in started.iter() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(seat.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let begun = Instant::now();
    loop {
        let running = started
            .iter_mut()
            .filter_map(|s| s.child.try_wait().ok())
            .filter(Option::is_none)
            .count();
        if running == 0 {
            return;
        }
        if begun.elapsed() > STOP_GRACE {
            for seat in started.iter_mut() {
                let _ = seat.child.kill();
                let _ = seat.child.wait();
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
