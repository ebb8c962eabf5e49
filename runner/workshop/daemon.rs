//! `workshop up`, `down` and `status`. `up` starts the server as a process of its own in the
//! background (`lab-runner workshop serve`, in a session of its own, its output in a log file) and
//! returns once it answers over HTTPS, as `docker compose up -d` does; what it needs to find the
//! server again (pid, address, pin, secrets) is in the state folder's `workshop.json`, readable by
//! the instructor only. `down` stops it; `status` asks it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::board::{Board, BoardView};
use super::seats::{self, Seat, SeatsSpec};
use super::server::{Workshop, allowed_hosts};
use super::tls;
use crate::util::runner_pid::is_live_runner;

/// How long `up` waits for the server to answer.
const UP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `status` waits for an answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// What `workshop.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub pid: u32,
    pub addr: SocketAddr,
    /// SHA-256 of the server's certificate.
    pub pin: String,
    pub code: String,
    pub key: String,
    pub log: PathBuf,
    /// The seats asked for (`--seats`), and those ready (all of them once `up` returns).
    #[serde(default)]
    pub seats_wanted: usize,
    #[serde(default)]
    pub seats: Vec<Seat>,
    /// The seats' lab folder (for their progress in `status`).
    #[serde(default)]
    pub seats_lab: Option<PathBuf>,
}

impl Running {
    pub fn join_url(&self) -> String {
        format!("https://{}/join/{}?pin={}", self.addr, self.code, self.pin)
    }
    pub fn dashboard_url(&self) -> String {
        format!("https://{}/dashboard?key={}", self.addr, self.key)
    }
    pub fn sheet_url(&self) -> String {
        format!("https://{}/seats?key={}", self.addr, self.key)
    }
}

pub fn state_file() -> Result<PathBuf> {
    Ok(crate::session::progress::state_dir()?.join("workshop.json"))
}

/// The running workshop, if its server is alive.
pub fn running() -> Result<Option<Running>> {
    let path = state_file()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("Failed to read {}", path.display())),
    };
    let running: Running = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a workshop's state; remove it", path.display()))?;
    Ok(is_live_runner(&running.pid.to_string()).then_some(running))
}

/// How the instructor asked for the server.
pub struct UpOptions {
    pub listen: IpAddr,
    pub port: u16,
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Seats to start on this machine.
    pub seats: Option<SeatsSpec>,
}

/// `workshop up`: starts the server in the background; returns once it answers.
pub async fn up(options: &UpOptions) -> Result<Running> {
    if let Some(running) = running()? {
        bail!(
            "a workshop is already running at https://{} (pid {}); `lab-runner workshop down` stops it",
            running.addr,
            running.pid
        );
    }
    if options.listen.is_unspecified() {
        bail!(
            "--listen {} would answer on every address; give the one participants reach this machine at (e.g. 192.168.1.20), or leave it out for 127.0.0.1",
            options.listen
        );
    }
    let dir = crate::session::progress::state_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    let state = state_file()?;
    let _ = std::fs::remove_file(&state);
    let log = dir.join("workshop.log");
    let log_file = std::fs::File::create(&log)
        .with_context(|| format!("Failed to create {}", log.display()))?;
    let exe = std::env::current_exe().context("Failed to find this lab-runner")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["workshop", "serve", "--listen"])
        .arg(options.listen.to_string())
        .arg("--port")
        .arg(options.port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    if let Some((cert, key)) = &options.cert {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some(seats) = &options.seats {
        cmd.arg("--seats-spec").arg(serde_json::to_string(seats)?);
    }
    let up_timeout = UP_TIMEOUT
        + options
            .seats
            .as_ref()
            .map_or(Duration::ZERO, |_| seats::READY_TIMEOUT);
    // A process group of its own: the instructor's terminal closing (its hangup goes to the
    // terminal's foreground group) or Ctrl-C there does not end the workshop.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("Failed to start the workshop server")?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            // Whatever it started (its seats, in its process group) goes with it.
            stop_group(child.id());
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "the workshop server stopped at once ({status}):\n{}",
                said.trim()
            );
        }
        if let Some(running) = running()?
            && running.seats.len() == running.seats_wanted
            && health(&running).await.is_ok()
        {
            return Ok(running);
        }
        if started.elapsed() > up_timeout {
            // Its seats stop with it (SIGTERM: each removes its environment).
            stop_group(child.id());
            bail!(
                "the workshop server was not ready within {} s; its log: {}",
                up_timeout.as_secs(),
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client(running: &Running) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls::pinned_client_config(&running.pin)?)
        .timeout(ASK_TIMEOUT)
        .connect_timeout(ASK_TIMEOUT)
        .build()
        .context("Failed to make the workshop client")
}

async fn health(running: &Running) -> Result<()> {
    client(running)?
        .get(format!("https://{}/health", running.addr))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// `workshop status`: the board as the server has it.
pub async fn status(running: &Running) -> Result<BoardView> {
    let answer = client(running)?
        .get(format!(
            "https://{}/dashboard/state?key={}",
            running.addr, running.key
        ))
        .send()
        .await
        .with_context(|| format!("The workshop server at {} does not answer", running.addr))?
        .error_for_status()
        .context("The workshop server refused the instructor's key")?;
    let view: serde_json::Value = answer.json().await.context("The workshop's state")?;
    serde_json::from_value(view).context("The workshop's state is not a board")
}

/// SIGTERM to the server's process group: the server and the seats it started (each removes its
/// environment on SIGTERM).
fn stop_group(server_pid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(server_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// `workshop down`: stops the server (which stops its seats) and forgets it. False when none was
/// running.
pub async fn down() -> Result<bool> {
    let state = state_file()?;
    let Some(running) = running()? else {
        // A server that died without stopping its seats: they are still in its process group.
        if let Some(gone) = std::fs::read_to_string(&state)
            .ok()
            .and_then(|text| serde_json::from_str::<Running>(&text).ok())
            && gone
                .seats
                .iter()
                .any(|seat| is_live_runner(&seat.pid.to_string()))
        {
            stop_group(gone.pid);
            let _ = std::fs::remove_file(&state);
            return Ok(true);
        }
        let _ = std::fs::remove_file(&state);
        return Ok(false);
    };
    let pid = nix::unistd::Pid::from_raw(running.pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .with_context(|| format!("Failed to stop the workshop server (pid {})", running.pid))?;
    let started = Instant::now();
    // The server stops its seats first (each removes its environment).
    let grace = Duration::from_secs(10) + seats::STOP_GRACE;
    while is_live_runner(&running.pid.to_string()) {
        if started.elapsed() > grace {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_file(&state);
    Ok(true)
}

/// `workshop serve` (what `up` starts): listens, writes `workshop.json`, serves until SIGTERM;
/// with seats (and their lab), starts them, and starts again each one whose session ends.
pub async fn serve(
    listen: IpAddr,
    port: u16,
    cert: Option<(&Path, &Path)>,
    seats: Option<(SeatsSpec, crate::lab::Lab)>,
) -> Result<()> {
    let identity = match cert {
        Some((cert, key)) => tls::load_identity(cert, key)?,
        None => tls::make_identity(listen)?,
    };
    let listener = tokio::net::TcpListener::bind((listen, port))
        .await
        .with_context(|| format!("Failed to listen on {listen}:{port}"))?;
    let addr = listener.local_addr()?;
    let running = Running {
        pid: std::process::id(),
        addr,
        pin: identity.fingerprint.clone(),
        code: crate::util::random::hex(8),
        key: crate::util::random::hex(16),
        log: crate::session::progress::state_dir()?.join("workshop.log"),
        seats_wanted: seats.as_ref().map_or(0, |(s, _)| s.count),
        seats: Vec::new(),
        seats_lab: seats.as_ref().and_then(|(s, _)| s.lab.clone()),
    };
    let (changed, _) = tokio::sync::watch::channel(0);
    let workshop = Workshop {
        code: running.code.clone(),
        key: running.key.clone(),
        hosts: allowed_hosts(addr),
        board: Arc::new(Mutex::new(Board::default())),
        changed,
        seats: Arc::new(std::sync::RwLock::new(Vec::new())),
        seats_part: seats.as_ref().map(|(s, _)| s.part.clone()),
    };
    write_private(&state_file()?, &serde_json::to_string_pretty(&running)?)?;
    println!("workshop server at https://{addr} (pid {})", running.pid);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let server = super::server::serve(listener, &identity, workshop.clone());
    tokio::pin!(server);
    let Some((spec, lab)) = &seats else {
        return tokio::select! {
            served = &mut server => served,
            _ = term.recv() => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
    };
    let root = crate::session::progress::state_dir()?.join("seats");
    let _ = std::fs::remove_dir_all(&root);
    let launcher = seats::Launcher::new(spec, &running.join_url())?;
    let mut started = seats::start_all(&launcher, &root)?;
    println!("{} seat(s) starting for {}", spec.count, spec.part);
    let ready = tokio::select! {
        ready = seats::wait_ready(&mut started) => ready,
        served = &mut server => served.map(|()| Vec::new()),
        _ = term.recv() => Ok(Vec::new()),
    };
    match ready {
        Ok(ready) if ready.len() == spec.count => {
            publish_seats(&workshop, &running, ready)?;
            println!("{} seat(s) ready", spec.count);
        }
        Ok(_) => {
            stop_seats(&mut started).await;
            return Ok(());
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            stop_seats(&mut started).await;
            let _ = std::fs::remove_file(state_file()?);
            return Err(e);
        }
    }
    // Supervised until the server stops: looked at between waits, so never while they stop.
    let served = loop {
        tokio::select! {
            served = &mut server => break served,
            _ = term.recv() => break Ok(()),
            _ = tokio::signal::ctrl_c() => break Ok(()),
            () = tokio::time::sleep(SUPERVISE_EVERY) => {}
        }
        if seats::supervise(&mut started, &launcher, lab).await {
            let now = started.iter().map(seats::Started::seat).collect();
            if let Err(e) = publish_seats(&workshop, &running, now) {
                eprintln!("error: {e:#}");
            }
        }
    };
    stop_seats(&mut started).await;
    served
}

/// How often the server looks whether a seat's session has ended.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

/// The seats as they are now: for the server's passthrough, and in `workshop.json` for `status`.
fn publish_seats(workshop: &Workshop, running: &Running, seats: Vec<Seat>) -> Result<()> {
    *workshop.seats.write().expect("seats lock") = seats.clone();
    let running = Running {
        seats,
        ..running.clone()
    };
    write_private(&state_file()?, &serde_json::to_string_pretty(&running)?)
}

/// Stops the seats and removes whatever of their environments a seat that had to be killed left.
async fn stop_seats(started: &mut [seats::Started]) {
    if started.is_empty() {
        return;
    }
    println!("stopping {} seat(s)", started.len());
    seats::stop_all(started).await;
    for seat in started.iter() {
        seats::remove_left(seat.number, seat.child.id()).await;
    }
}

/// Writes `text` to `path`, readable by its owner only (it holds the instructor's key).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("Failed to write {}", tmp.display()))?;
    file.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("Failed to write {}", path.display()))
}
