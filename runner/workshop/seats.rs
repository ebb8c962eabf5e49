//! A workshop's seats: for participants without a working Docker, each seat is a `lab-runner start
//! PART --web --shell` session on the instructor's machine, started before anyone arrives (warm: its
//! environment up, its first step waiting), with its own folder, state, token, ports, network and
//! containers (labelled with its session, so cleanup finds them), joined to the workshop under the
//! name `seat N`. The participant reaches it only through the workshop server
//! (`passthrough.rs`); its page's token is the seat's secret.
//!
//! The workshop server starts the seats as its children and stops them when it stops: each seat's
//! session removes its own environment on SIGTERM, as `start` does on Ctrl-C. It chooses each
//! seat's port and token up front and gives them to the seat (`--port`, and the token in
//! [`crate::web::TOKEN_ENV`], out of argv); a seat whose session ends (its participant finished the
//! part, or it stopped) is started again at the same address, on the part that comes next
//! ([`next_part`]), unless it keeps ending at once ([`QuickEnds`]).

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
    /// The part its session is on.
    #[serde(default)]
    pub part: String,
    /// It ended at once too often in a row and is left stopped ([`QuickEnds`]).
    #[serde(default)]
    pub given_up: bool,
}

impl Seat {
    pub fn name(&self) -> String {
        format!("seat {}", self.number)
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("seat.log")
    }
    /// Its progress store (its own state folder's).
    pub fn progress(&self) -> crate::session::progress::Store {
        progress_store(&self.dir)
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
    /// Its page's port on 127.0.0.1 and its token: chosen by the server. The token is the same
    /// at every start; so is the port, unless another program took it while the seat restarted.
    pub port: u16,
    pub token: String,
    /// The part its session is on.
    pub part: String,
    /// Its name on the workshop's board, the same at every start (one participant, not one per
    /// session).
    pub join_id: String,
    /// When its process was started, and how often in a row it ended soon after.
    pub since: Instant,
    pub quick_ends: QuickEnds,
    /// Left stopped ([`QuickEnds`]).
    pub given_up: bool,
}

impl Started {
    /// The seat as the server and `workshop status` know it.
    pub fn seat(&self) -> Seat {
        Seat {
            number: self.number,
            pid: self.child.id(),
            port: self.port,
            token: self.token.clone(),
            dir: self.dir.clone(),
            part: self.part.clone(),
            given_up: self.given_up,
        }
    }
}

/// What every start of a seat needs: this lab-runner, the seats' spec and where they report.
pub struct Launcher {
    exe: PathBuf,
    spec: SeatsSpec,
    join_url: String,
}

impl Launcher {
    pub fn new(spec: &SeatsSpec, join_url: &str) -> Result<Launcher> {
        Ok(Launcher {
            exe: std::env::current_exe().context("Failed to find this lab-runner")?,
            spec: spec.clone(),
            join_url: join_url.to_string(),
        })
    }

    /// Starts seat `number`'s session of `part` in `dir`, its page at 127.0.0.1:`port` with
    /// `token`; its output goes to the end of its log.
    fn spawn(
        &self,
        number: usize,
        dir: &Path,
        part: &str,
        port: u16,
        token: &str,
        join_id: &str,
    ) -> Result<std::process::Child> {
        let work = dir.join("work");
        let state = dir.join("state");
        for folder in [&work, &state] {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("Failed to create {}", folder.display()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("seat.log"))
            .with_context(|| format!("Failed to open seat {number}'s log"))?;
        let spec = &self.spec;
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.args([
            "start",
            part,
            "--web",
            "--no-browser",
            "--shell",
            "--isolated-shell",
        ])
        .args(["--port", &port.to_string()])
        .args([
            "--join",
            &self.join_url,
            "--name",
            &format!("seat {number}"),
        ])
        .args(["--backend", "docker"])
        .args(["--memory", &spec.app_mb.to_string()])
        .args(["--cpus", &spec.cpus.to_string()]);
        if let Some(lab) = &spec.lab {
            cmd.arg("--lab").arg(lab);
        }
        // The instructor's cache (bash's answers about the lab, kept by `up`'s own lint): a
        // seat's HOME is its own folder, and fifty seats asking bash again would cost seconds of
        // both cores.
        if let Some(cache) = crate::util::cache::dir().as_deref().and_then(Path::parent) {
            cmd.env("XDG_CACHE_HOME", cache);
        }
        // Every seat asks the engine at once: a busy engine is not a missing one.
        cmd.env(crate::env::docker::connect::CONNECT_TIMEOUT_VAR, "15");
        cmd.current_dir(&work)
            .env("LAB_RUNNER_STATE_DIR", &state)
            .env("HOME", dir)
            // Out of argv, which every local user can read.
            .env(crate::web::TOKEN_ENV, token)
            .env(super::join::PARTICIPANT_ENV, join_id)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        cmd.spawn()
            .with_context(|| format!("Failed to start seat {number}"))
    }

    /// Starts seat `seat` again (same folder and token) on `part`, on its port unless another
    /// program took that port after the seat ended: then on a free one, said. The participant's
    /// address is the workshop's `/seat/N/`, which the server points at the new port.
    pub fn restart(&self, seat: &mut Started, part: String) -> Result<()> {
        let port = port_for_restart(seat.port)?;
        if port != seat.port {
            println!(
                "seat {}'s port {} on 127.0.0.1 was taken after it ended: it goes on at {port} (its address through the workshop is unchanged)",
                seat.number, seat.port
            );
            seat.port = port;
        }
        let child = self.spawn(
            seat.number,
            &seat.dir,
            &part,
            seat.port,
            &seat.token,
            &seat.join_id,
        )?;
        seat.child = child;
        seat.part = part;
        seat.since = Instant::now();
        Ok(())
    }
}

/// `port` when it can still be listened on at 127.0.0.1, else a free port.
fn port_for_restart(port: u16) -> Result<u16> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return Ok(port);
    }
    Ok(free_ports(1)?[0])
}

/// Free ports on 127.0.0.1, `count` different ones (each held until all are chosen).
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let held = (0..count)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("Failed to find free ports on 127.0.0.1 for the seats' pages")?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// Starts `spec.count` seats under `root` (one folder each), reporting to `join_url`, each on a
/// port and with a token chosen here.
pub fn start_all(launcher: &Launcher, root: &Path) -> Result<Vec<Started>> {
    let spec = &launcher.spec;
    let ports = free_ports(spec.count)?;
    (1..=spec.count)
        .zip(ports)
        .map(|(number, port)| {
            let dir = root.join(format!("seat-{number}"));
            let token = crate::util::random::token();
            let join_id = crate::util::random::hex(12);
            let child = launcher.spawn(number, &dir, &spec.part, port, &token, &join_id)?;
            Ok(Started {
                child,
                number,
                dir,
                port,
                token,
                part: spec.part.clone(),
                join_id,
                since: Instant::now(),
                quick_ends: QuickEnds::default(),
                given_up: false,
            })
        })
        .collect()
}

/// A seat's progress store, in its own state folder.
pub fn progress_store(dir: &Path) -> crate::session::progress::Store {
    crate::session::progress::Store::in_dir(&dir.join("state"))
}

/// The part a seat whose session ended starts again on: the first part not complete in its own
/// progress, looking from the part it was on onwards, then from the lab's first (a seat of a room
/// at Part 2 whose participant quits Part 2 goes back to Part 2, not to an unfinished Part 1); the
/// part it was on when every part is complete.
pub fn next_part(
    lab: &crate::lab::Lab,
    progress: &crate::session::progress::Store,
    was_on: &str,
) -> Result<String> {
    let from = lab.parts.iter().position(|p| p.id() == was_on).unwrap_or(0);
    let order = lab.parts[from..].iter().chain(&lab.parts[..from]);
    for part in order {
        let done = progress.part(lab, part)?.done_count(part);
        if done < part.file.steps.len() {
            return Ok(part.id().to_string());
        }
    }
    Ok(was_on.to_string())
}

/// A seat that ends this soon after it started ended "at once".
pub const QUICK_END: Duration = Duration::from_secs(10);
/// How many such ends in a row leave a seat stopped.
pub const QUICK_ENDS_ALLOWED: u32 = 3;

/// The rule against a restart loop: a seat that ends within [`QUICK_END`] of its start
/// [`QUICK_ENDS_ALLOWED`] times in a row is left stopped (its log says why).
#[derive(Debug, Clone, Default)]
pub struct QuickEnds {
    in_a_row: u32,
}

impl QuickEnds {
    /// The seat ended after running `ran`: whether to start it again.
    pub fn restart_after(&mut self, ran: Duration) -> bool {
        if ran < QUICK_END {
            self.in_a_row += 1;
        } else {
            self.in_a_row = 0;
        }
        self.in_a_row < QUICK_ENDS_ALLOWED
    }
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
            if waiting_at_a_step(&client, seat.port, &seat.token).await {
                ready[i] = Some(seat.seat());
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

/// Looks at every seat once: a seat whose session ended is started again (same folder, port and
/// token) on [`next_part`], unless [`QuickEnds`] says to leave it stopped; what a seat that was
/// killed left in Docker is removed first. True when a seat changed (the server then says so in
/// `workshop.json`). Never called while the seats are being stopped.
pub async fn supervise(
    started: &mut [Started],
    launcher: &Launcher,
    lab: &crate::lab::Lab,
) -> bool {
    let mut changed = false;
    for seat in started.iter_mut().filter(|s| !s.given_up) {
        let status = match seat.child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("error: seat {}: {e}", seat.number);
                continue;
            }
        };
        changed = true;
        let ran = seat.since.elapsed();
        let log = seat.dir.join("seat.log");
        if !seat.quick_ends.restart_after(ran) {
            seat.given_up = true;
            println!(
                "seat {} ended ({status}) {QUICK_ENDS_ALLOWED} times in a row within {} s of starting: left stopped; its log: {}",
                seat.number,
                QUICK_END.as_secs(),
                log.display()
            );
            continue;
        }
        remove_left(seat.number, seat.child.id()).await;
        let part = next_part(lab, &progress_store(&seat.dir), &seat.part).unwrap_or_else(|e| {
            eprintln!(
                "error: seat {}'s progress: {e:#}; it goes on with {}",
                seat.number, seat.part
            );
            seat.part.clone()
        });
        println!(
            "seat {} ended ({status}) after {} s; starting it again on {part}",
            seat.number,
            ran.as_secs()
        );
        if let Err(e) = launcher.restart(seat, part) {
            seat.given_up = true;
            eprintln!("error: {e:#}; seat {} is left stopped", seat.number);
        }
    }
    changed
}

/// Removes what the seat's process `pid` left in Docker (nothing, unless it was killed).
pub async fn remove_left(number: usize, pid: u32) {
    let docker = match crate::env::docker::connect::connect().await {
        Ok(docker) => docker,
        Err(e) => {
            eprintln!("error: removing what seat {number} left: {e:#}");
            return;
        }
    };
    let scope = crate::env::docker::cleanup::Scope {
        runner_pid: Some(pid),
        ..Default::default()
    };
    match crate::env::docker::cleanup::remove_labelled(&docker, &scope).await {
        Ok(removed) if !removed.containers.is_empty() => println!(
            "seat {number} left {} container(s): removed",
            removed.containers.len()
        ),
        Ok(_) => {}
        Err(e) => eprintln!("error: removing what seat {number} left: {e:#}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_seat_keeps_its_port_unless_another_program_took_it() {
        let port = free_ports(1).expect("a free port")[0];
        assert_eq!(port_for_restart(port).expect("port"), port);
        let taker = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
        let moved = port_for_restart(port).expect("port");
        assert_ne!(moved, port);
        assert!(std::net::TcpListener::bind(("127.0.0.1", moved)).is_ok());
        drop(taker);
    }

    #[test]
    fn a_seat_that_keeps_ending_at_once_is_left_stopped() {
        let quick = QUICK_END - Duration::from_millis(1);
        let mut ends = QuickEnds::default();
        // Two quick ends are started again; the third in a row is not.
        assert!(ends.restart_after(quick));
        assert!(ends.restart_after(quick));
        assert!(!ends.restart_after(quick));

        // A session that ran a while (a participant finished a part) starts the count again.
        let mut ends = QuickEnds::default();
        assert!(ends.restart_after(quick));
        assert!(ends.restart_after(quick));
        assert!(ends.restart_after(QUICK_END));
        assert!(ends.restart_after(quick));
        assert!(ends.restart_after(quick));
        assert!(!ends.restart_after(quick));

        // Finishing part after part is never a loop.
        let mut ends = QuickEnds::default();
        for _ in 0..10 {
            assert!(ends.restart_after(Duration::from_secs(600)));
        }
    }

    /// The two-part fixture lab and an empty progress store of a seat's own.
    fn two_parts() -> (
        crate::lab::Lab,
        tempfile::TempDir,
        crate::session::progress::Store,
    ) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/workshop/two-parts");
        let lab = crate::lab::load(&dir).unwrap();
        let state = tempfile::tempdir().unwrap();
        let store = crate::session::progress::Store::in_dir(state.path());
        (lab, state, store)
    }

    /// Marks `step` of `part` done in `store`.
    fn mark_done(
        lab: &crate::lab::Lab,
        store: &crate::session::progress::Store,
        part: &str,
        step: &str,
    ) {
        let part = lab.parts.iter().find(|p| p.id() == part).unwrap();
        store
            .update(lab, part, |progress| {
                progress.done.insert(step.to_string());
            })
            .unwrap();
    }

    #[test]
    fn a_seat_goes_on_with_the_first_part_not_complete_from_the_one_it_was_on() {
        let (lab, _state, store) = two_parts();
        let done = |part: &str, step: &str| mark_done(&lab, &store, part, step);
        // Nothing done: the part it was on (a participant who quit it).
        assert_eq!(next_part(&lab, &store, "part1").unwrap(), "part1");
        assert_eq!(next_part(&lab, &store, "part2").unwrap(), "part2");
        // Part 1 complete: Part 2, whichever it was on.
        done("part1", "1.1");
        assert_eq!(next_part(&lab, &store, "part1").unwrap(), "part2");
        assert_eq!(next_part(&lab, &store, "part2").unwrap(), "part2");
        // Every part complete: the part it was on.
        done("part2", "2.1");
        assert_eq!(next_part(&lab, &store, "part1").unwrap(), "part1");
        assert_eq!(next_part(&lab, &store, "part2").unwrap(), "part2");
    }

    #[test]
    fn a_seat_that_finished_the_rooms_part_goes_on_with_one_it_has_not_done() {
        let (lab, _state, store) = two_parts();
        mark_done(&lab, &store, "part2", "2.1");
        // A room at Part 2: finished, the seat goes on with Part 1, which it has not done.
        assert_eq!(next_part(&lab, &store, "part2").unwrap(), "part1");
    }
}
