//! The control endpoint of a running session. The process that owns a part's environment (`start`,
//! `verify`, `demo`) serves it, so that `lab-runner redeploy` and `lab-runner check`, typed in any
//! terminal, act on that environment the way the session itself would.
//!
//! Where: `$XDG_RUNTIME_DIR/lab-runner/`, else `/tmp/lab-runner-<uid>/` — a folder only its owner can
//! enter — holding `<session>.sock` (a Unix domain socket) and `<session>.json` (a [`SessionInfo`],
//! for discovery). `LAB_RUNNER_SESSION` (a socket path) tells a client which session to use.
//!
//! Protocol: the client sends one JSON line, a [`Request`]; the server answers with JSON lines:
//! `{"line": "..."}` for each line to print, then one `{"passed": true|false}` (the check passed,
//! the redeployed app came back) or `{"error": "..."}` (with `"usage": true` when the request itself
//! was wrong). The client (`cli/control.rs`) turns that into its exit code.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::engine::{DEFAULT_PHASE_BUDGET, PartSession};
use crate::actions::Context;
use crate::actions::container::{self, Recreated, shown};
use crate::lab::{Builtin, RecreateSpec};
use crate::outcome::UsageError;

/// Names the socket of the session a client talks to (wins over discovery).
pub const SESSION_ENV: &str = "LAB_RUNNER_SESSION";

/// How long a client waits to connect, and a server for the request line.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server waits for a client to take one line of the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long discovery waits for a session to accept a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a check may take: `start` may be busy with a step's phase first, then the check itself.
pub const CHECK_TIMEOUT: Duration = DEFAULT_PHASE_BUDGET
    .saturating_mul(2)
    .saturating_add(Duration::from_secs(30));
/// How long a redeploy may take: waiting for what holds the environment, the recreate, the health wait.
pub const REDEPLOY_TIMEOUT: Duration = DEFAULT_PHASE_BUDGET.saturating_add(Duration::from_secs(60));
/// After this long without a word from `start`, the client is told that it is busy.
const BUSY_NOTICE: Duration = Duration::from_secs(2);
/// The longest request line a server reads.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// `sun_path` holds 108 bytes with its terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Which front end owns the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Start,
    #[default]
    Verify,
    Demo,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Start => "start",
            Mode::Verify => "verify",
            Mode::Demo => "demo",
        })
    }
}

/// What `<session>.json` says about a session, for clients choosing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session: String,
    pub lab: String,
    pub part: String,
    pub mode: Mode,
    pub pid: u32,
    pub base_url: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    /// `docker` or `process`.
    #[serde(default)]
    pub backend: String,
    /// The app's container (docker), for clients that copy from it or tunnel into it.
    #[serde(default)]
    pub container: String,
    /// Where the app writes its captures, as the app sees it (a host folder on the process
    /// backend).
    #[serde(default)]
    pub artifact_dir: String,
}

impl std::fmt::Display for SessionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (lab-runner {}, pid {}, app at {})",
            self.lab, self.part, self.mode, self.pid, self.base_url
        )
    }
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Request {
    /// Recreate the app with its environment changed (or back to the original one, then changed).
    Redeploy {
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        unset: Vec<String>,
        #[serde(default)]
        original: bool,
    },
    /// Judge a step (the current one when `step` is not given), as `c` in `start` does.
    Check {
        #[serde(default)]
        step: Option<String>,
    },
}

/// One line of a server's answer. `Error` comes first: untagged variants are tried in order, and
/// an error may carry `usage` too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    /// The request could not be carried out; `usage` when the request itself was wrong.
    Error {
        error: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        usage: bool,
    },
    /// A line for the client to print.
    Line { line: String },
    /// The last line: the request was carried out, and whether it succeeded (the check passed, the
    /// redeployed app came back).
    Done { passed: bool },
}

impl Response {
    fn line(text: impl Into<String>) -> Response {
        Response::Line { line: text.into() }
    }

    /// A request that was wrong.
    pub fn refused(error: impl Into<String>) -> Response {
        Response::Error {
            error: error.into(),
            usage: true,
        }
    }
}

/// A `check` request forwarded to the `start` loop: it sends the lines it prints to `lines`, then
/// the final [`Response`] (`Done` or `Error`) to `done`.
pub struct CheckRequest {
    pub step: Option<String>,
    pub lines: mpsc::UnboundedSender<String>,
    pub done: oneshot::Sender<Response>,
}

/// The folder of the sockets: `$XDG_RUNTIME_DIR/lab-runner`, else `/tmp/lab-runner-<uid>`.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("lab-runner"),
        None => PathBuf::from(format!("/tmp/lab-runner-{}", nix::unistd::getuid())),
    }
}

/// Creates [`runtime_dir`] (0700) and makes sure only this user can enter it.
fn ensure_runtime_dir() -> Result<PathBuf> {
    let dir = runtime_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("Failed to create {}", dir.display()))?;
    let meta = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("Failed to look at {}", dir.display()))?;
    let uid = nix::unistd::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid {
        bail!(
            "{} is not a folder owned by you (uid {uid}); remove it, or set XDG_RUNTIME_DIR to a folder of yours",
            dir.display()
        );
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("Failed to make {} private (0700)", dir.display()))?;
    }
    Ok(dir)
}

/// A session's control endpoint: serves its socket until stopped or dropped, then removes it.
pub struct ControlServer {
    socket: PathBuf,
    info_path: PathBuf,
    task: JoinHandle<()>,
    /// Check requests for the `start` loop (taken once by it).
    checks: Mutex<Option<mpsc::Receiver<CheckRequest>>>,
}

/// What the connections of one server share.
struct Served {
    ctx: Context,
    info: Mutex<SessionInfo>,
    info_path: PathBuf,
    /// Where check requests go (a `start` session only).
    checks: Option<mpsc::Sender<CheckRequest>>,
}

impl ControlServer {
    /// Binds `<runtime dir>/<session>.sock`, writes `<session>.json` beside it, and serves.
    pub fn start(
        ctx: &Context,
        lab: &str,
        part: &str,
        session: &str,
        mode: Mode,
    ) -> Result<ControlServer> {
        let dir = ensure_runtime_dir()?;
        let socket = dir.join(format!("{session}.sock"));
        let info_path = dir.join(format!("{session}.json"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the control socket's path {} is longer than a Unix socket allows ({MAX_SOCKET_PATH} bytes); \
                 set XDG_RUNTIME_DIR to a shorter folder",
                socket.display()
            );
        }
        // Session ids are random: a file of the same name is a leftover of a killed session.
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("Failed to listen on {}", socket.display()))?;
        let info = SessionInfo {
            session: session.to_string(),
            lab: lab.to_string(),
            part: part.to_string(),
            mode,
            pid: std::process::id(),
            base_url: base_url(ctx),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            backend: text_var(ctx, "backend"),
            container: text_var(ctx, "container"),
            artifact_dir: text_var(ctx, "artifact_dir"),
        };
        if let Err(e) = write_info(&info_path, &info) {
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
        let (tx, rx) = mpsc::channel(8);
        let served = Arc::new(Served {
            ctx: ctx.clone(),
            info: Mutex::new(info),
            info_path: info_path.clone(),
            checks: (mode == Mode::Start).then_some(tx),
        });
        let task = tokio::spawn(serve(listener, served));
        Ok(ControlServer {
            socket,
            info_path,
            task,
            checks: Mutex::new(Some(rx)),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops serving (connections being answered are cut off) and removes the socket and its
    /// description. Safe to call more than once.
    pub fn stop(&self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.info_path);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl PartSession {
    /// The session's control socket (what `LAB_RUNNER_SESSION` names for `lab-runner redeploy` and
    /// `lab-runner check` run on its behalf).
    pub fn control_socket(&self) -> &Path {
        self.control.socket()
    }

    /// The `check` requests sent to this session, for the `start` loop to answer. Taken once.
    pub fn take_check_requests(&self) -> Option<mpsc::Receiver<CheckRequest>> {
        self.control.checks.lock().expect("checks lock").take()
    }
}

fn text_var(ctx: &Context, name: &str) -> String {
    ctx.var(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn base_url(ctx: &Context) -> String {
    ctx.builtin(Builtin::BaseUrl).unwrap_or_default()
}

fn write_info(path: &Path, info: &SessionInfo) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(info).context("Failed to describe the session")?;
    std::fs::write(&tmp, text).with_context(|| format!("Failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("Failed to write {}", path.display()))
}

async fn serve(listener: UnixListener, served: Arc<Served>) {
    // Connections live in the set, so stopping the server (aborting this task) ends them too.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(handle(stream, served.clone()));
            }
            // Out of file descriptors, say: try again shortly rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn handle(stream: UnixStream, served: Arc<Served>) {
    // The folder is private already; a peer of another user is refused all the same.
    let me = nix::unistd::getuid().as_raw();
    if stream.peer_cred().map(|c| c.uid()).ok() != Some(me) {
        return;
    }
    let (read, mut write) = stream.into_split();
    let request = match read_request(read).await {
        Ok(Some(request)) => request,
        // A probe (discovery connects and hangs up).
        Ok(None) => return,
        Err(e) => {
            let _ = send(&mut write, &Response::refused(format!("{e:#}"))).await;
            return;
        }
    };
    let last = match answer(&served, request, &mut write).await {
        Ok(last) => last,
        Err(e) => Response::Error {
            error: format!("{e:#}"),
            usage: false,
        },
    };
    let _ = send(&mut write, &last).await;
    let _ = write.shutdown().await;
}

/// Reads the one request line (None when the client hung up without one).
async fn read_request(read: impl AsyncRead + Unpin) -> Result<Option<Request>> {
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES));
    let n = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| anyhow!("no request within {} s", REQUEST_TIMEOUT.as_secs()))?
        .context("Failed to read the request")?;
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_str(line.trim())
        .map(Some)
        .with_context(|| format!("not a request this session understands: {:?}", line.trim()))
}

/// Writes one response line.
async fn send(write: &mut (impl AsyncWrite + Unpin), response: &Response) -> Result<()> {
    let mut line = serde_json::to_string(response).context("Failed to encode a response")?;
    line.push('\n');
    tokio::time::timeout(WRITE_TIMEOUT, write.write_all(line.as_bytes()))
        .await
        .map_err(|_| anyhow!("the client did not read the answer"))?
        .context("Failed to answer the client")
}

async fn answer(
    served: &Served,
    request: Request,
    write: &mut (impl AsyncWrite + Unpin),
) -> Result<Response> {
    match request {
        Request::Redeploy {
            env,
            unset,
            original,
        } => redeploy(served, env, unset, original, write).await,
        Request::Check { step } => check(served, step, write).await,
    }
}

/// Whether `name` can be an environment variable's name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn valid_var_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("an environment variable's name cannot be empty".into()),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => Err(format!(
            "`{name}` is not an environment variable's name (it must start with a letter or _)"
        )),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') => Err(format!(
            "`{name}` is not an environment variable's name (letters, digits and _ only)"
        )),
        _ => Ok(()),
    }
}

async fn redeploy(
    served: &Served,
    env: BTreeMap<String, String>,
    unset: Vec<String>,
    original: bool,
    write: &mut (impl AsyncWrite + Unpin),
) -> Result<Response> {
    for name in env.keys().chain(&unset) {
        if let Err(e) = valid_var_name(name) {
            return Ok(Response::refused(e));
        }
    }
    if let Some((k, _)) = env.iter().find(|(_, v)| v.contains('\0')) {
        return Ok(Response::refused(format!(
            "the value of {k} contains a NUL byte"
        )));
    }
    let ctx = &served.ctx;
    let before_url = base_url(ctx);
    ctx.narrate("`lab-runner redeploy` from another terminal:");
    let spec = RecreateSpec {
        env,
        unset,
        reset: original,
    };
    match container::recreate(ctx, &spec).await {
        Ok(done) => {
            let name = ctx.env().read().await.facts().name;
            let after_url = base_url(ctx);
            let token = ctx.builtin(Builtin::Token).ok();
            for line in redeploy_report(
                &name,
                &done,
                original,
                &before_url,
                &after_url,
                token.as_deref(),
            ) {
                send(write, &Response::line(line)).await?;
            }
            let info = {
                let mut info = served.info.lock().expect("info lock");
                info.base_url = after_url;
                info.clone()
            };
            let _ = write_info(&served.info_path, &info);
            Ok(Response::Done { passed: true })
        }
        Err(e) => {
            send(
                write,
                &Response::line(format!(
                    "FAIL the app did not come back after the redeploy: {e:#}"
                )),
            )
            .await?;
            send(
                write,
                &Response::line(
                    "`lab-runner redeploy --original` brings back the environment the part started with",
                ),
            )
            .await?;
            Ok(Response::Done { passed: false })
        }
    }
}

/// What `lab-runner redeploy` prints: what changed (secrets hidden), how soon the app answered,
/// whether `$BASE` still holds, and a note when a token differs from the session's.
pub fn redeploy_report(
    name: &str,
    done: &Recreated,
    original: bool,
    before_url: &str,
    after_url: &str,
    session_token: Option<&str>,
) -> Vec<String> {
    let mut changes: Vec<String> = done
        .after
        .iter()
        .filter(|(k, v)| done.before.get(*k) != Some(*v))
        .map(|(k, v)| shown(k, v))
        .collect();
    changes.extend(
        done.before
            .keys()
            .filter(|k| !done.after.contains_key(*k))
            .map(|k| format!("{k} removed")),
    );
    let changes = if changes.is_empty() {
        "its environment is unchanged".to_string()
    } else {
        changes.join(", ")
    };
    let mut lines = vec![format!(
        "redeployed the app ({name}){}: {changes}; healthy after {} ms",
        if original {
            " with the environment the part started with"
        } else {
            ""
        },
        done.healthy_after.as_millis()
    )];
    lines.push(if before_url == after_url {
        format!("it answers at {after_url} as before ($BASE still holds)")
    } else {
        format!("it now answers at {after_url} (was {before_url}): export BASE={after_url}")
    });
    if let Some(session_token) = session_token {
        for (k, v) in &done.after {
            let changed = done.before.get(k) != Some(v);
            if changed && k.to_ascii_uppercase().contains("TOKEN") && v != session_token {
                lines.push(format!(
                    "note: {k} is not this session's token (the one the part's intro shows); the runner's checks \
                     send the session's token, so they will be refused"
                ));
            }
        }
    }
    lines
}

async fn check(
    served: &Served,
    step: Option<String>,
    write: &mut (impl AsyncWrite + Unpin),
) -> Result<Response> {
    let Some(checks) = &served.checks else {
        let info = served.info.lock().expect("info lock").clone();
        return Ok(Response::refused(format!(
            "check works with a `lab-runner start` session; this is a {} session ({} {}, pid {})",
            info.mode, info.lab, info.part, info.pid
        )));
    };
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    let (done_tx, mut done) = oneshot::channel();
    checks
        .send(CheckRequest {
            step,
            lines: lines_tx,
            done: done_tx,
        })
        .await
        .map_err(|_| anyhow!("the start session no longer takes checks (it is ending)"))?;
    let deadline = tokio::time::sleep(CHECK_TIMEOUT);
    let busy = tokio::time::sleep(BUSY_NOTICE);
    tokio::pin!(deadline, busy);
    let mut heard = false;
    loop {
        tokio::select! {
            biased;
            Some(line) = lines.recv() => {
                heard = true;
                send(write, &Response::line(line)).await?;
            }
            last = &mut done => {
                // Lines sent before the result are already in the channel.
                while let Ok(line) = lines.try_recv() {
                    send(write, &Response::line(line)).await?;
                }
                return last.map_err(|_| anyhow!("the start session ended before it checked"));
            }
            _ = &mut busy, if !heard => {
                heard = true;
                send(write, &Response::line(
                    "the start session is busy (a step is running there); the check runs when it is back at its menu",
                )).await?;
            }
            _ = &mut deadline => bail!(
                "the start session did not answer within {} s",
                CHECK_TIMEOUT.as_secs()
            ),
        }
    }
}

/// A session a client found.
#[derive(Debug, Clone)]
pub struct Live {
    pub socket: PathBuf,
    /// What its `.json` says (None when it cannot be read).
    pub info: Option<SessionInfo>,
}

impl std::fmt::Display for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.info {
            Some(info) => write!(f, "{info}  [{}]", self.socket.display()),
            None => write!(f, "{}", self.socket.display()),
        }
    }
}

/// The sessions in [`runtime_dir`] that accept a connection, oldest first. A socket nobody listens
/// on any more (its session was killed) is removed with its description.
pub async fn live_sessions() -> Result<Vec<Live>> {
    let dir = runtime_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("Failed to read {}", dir.display())),
    };
    let mut live = Vec::new();
    for entry in entries.flatten() {
        let socket = entry.path();
        if socket.extension().is_none_or(|e| e != "sock") {
            continue;
        }
        let info_path = socket.with_extension("json");
        match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(&socket)).await {
            Ok(Err(e))
                if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) =>
            {
                let _ = std::fs::remove_file(&socket);
                let _ = std::fs::remove_file(&info_path);
                continue;
            }
            // Connected, or slow to accept (a busy session is still a session).
            _ => {}
        }
        let info = std::fs::read_to_string(&info_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        live.push(Live { socket, info });
    }
    live.sort_by_key(|l| l.info.as_ref().map(|i| i.started));
    Ok(live)
}

/// Whether `live` is a session of `part` (`part2` or `2`).
fn is_part(live: &Live, part: &str) -> bool {
    live.info
        .as_ref()
        .is_some_and(|i| i.part == part || i.part == format!("part{part}"))
}

/// What the session at `socket` says about itself (its `.json` beside it).
pub fn session_info(socket: &Path) -> Result<SessionInfo> {
    let path = socket.with_extension("json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("Failed to read the session description {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("the session description {} is not valid", path.display()))
}

/// The socket to talk to: `$LAB_RUNNER_SESSION`, else the one live session (of `part`, if given).
pub async fn find_session(part: Option<&str>) -> Result<PathBuf> {
    if let Some(named) = std::env::var_os(SESSION_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(named));
    }
    let live = live_sessions().await?;
    let list = |sessions: &[&Live]| {
        sessions
            .iter()
            .map(|l| format!("\n  {l}"))
            .collect::<String>()
    };
    let all: Vec<&Live> = live.iter().collect();
    let chosen: Vec<&Live> = match part {
        Some(p) => live.iter().filter(|l| is_part(l, p)).collect(),
        None => all.clone(),
    };
    match (chosen.as_slice(), part) {
        ([one], _) => Ok(one.socket.clone()),
        ([], _) if live.is_empty() => Err(anyhow!(
            "no lab session is running (none in {}): start one in another terminal, e.g. `lab-runner start part2`, \
             and run this again while it is up",
            runtime_dir().display()
        )),
        ([], Some(p)) => Err(UsageError(format!(
            "no running lab session is of {p}; running:{}",
            list(&all)
        ))
        .into()),
        (_, _) => Err(UsageError(format!(
            "{} lab sessions are running; choose one with --part PART (or set {SESSION_ENV} to its socket):{}",
            chosen.len(),
            list(&chosen)
        ))
        .into()),
    }
}

/// Sends `request` to the session at `socket`, hands each line of the answer to `on_line`, and
/// returns the final response (`Done` or `Error`). Gives up after `timeout`.
pub async fn request(
    socket: &Path,
    request: &Request,
    timeout: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<Response> {
    let from_env = std::env::var_os(SESSION_ENV).is_some_and(|v| v == socket.as_os_str());
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let why = match e.kind() {
                ErrorKind::ConnectionRefused | ErrorKind::NotFound => {
                    " (that session has ended: start a new one, e.g. `lab-runner start part2`)"
                }
                _ => "",
            };
            return Err(anyhow::Error::new(e).context(format!(
                "Failed to reach the lab session at {}{}{why}",
                socket.display(),
                if from_env {
                    format!(" (named by {SESSION_ENV})")
                } else {
                    String::new()
                }
            )));
        }
        Err(_) => bail!(
            "the lab session at {} did not accept a connection within {} s",
            socket.display(),
            CONNECT_TIMEOUT.as_secs()
        ),
    };
    let exchange = async {
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(request).context("Failed to encode the request")?;
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .context("Failed to send the request")?;
        let mut lines = BufReader::new(read).lines();
        loop {
            let text = match lines.next_line().await {
                Ok(Some(text)) => text,
                // A session that ends mid-answer closes or resets the connection.
                Ok(None) => break,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e).context("Failed to read the session's answer"),
            };
            match serde_json::from_str::<Response>(&text)
                .with_context(|| format!("the session answered something unexpected: {text:?}"))?
            {
                Response::Line { line } => on_line(&line),
                last => return Ok(last),
            }
        }
        bail!("the session closed the connection without a result (did it end?)")
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        anyhow!(
            "no answer from the lab session within {} s",
            timeout.as_secs()
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_tagged_by_command() {
        let redeploy = Request::Redeploy {
            env: BTreeMap::from([("LAB_ENABLE".to_string(), "true".to_string())]),
            unset: vec!["LAB_ALLOW_PROD".into()],
            original: false,
        };
        let text = serde_json::to_string(&redeploy).unwrap();
        assert_eq!(
            text,
            r#"{"command":"redeploy","env":{"LAB_ENABLE":"true"},"unset":["LAB_ALLOW_PROD"],"original":false}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), redeploy);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"redeploy","original":true}"#).unwrap(),
            Request::Redeploy {
                env: BTreeMap::new(),
                unset: vec![],
                original: true
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"check"}"#).unwrap(),
            Request::Check { step: None }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"check","step":"2.1"}"#).unwrap(),
            Request::Check {
                step: Some("2.1".into())
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"rm -rf"}"#).is_err());
    }

    #[test]
    fn responses_are_lines_then_a_verdict_or_an_error() {
        let cases = [
            (Response::line("checking…"), r#"{"line":"checking…"}"#),
            (Response::Done { passed: false }, r#"{"passed":false}"#),
            (
                Response::Error {
                    error: "boom".into(),
                    usage: false,
                },
                r#"{"error":"boom"}"#,
            ),
            (Response::refused("no"), r#"{"error":"no","usage":true}"#),
        ];
        for (response, text) in cases {
            assert_eq!(serde_json::to_string(&response).unwrap(), text);
            assert_eq!(
                serde_json::from_str::<Response>(text).unwrap(),
                response,
                "{text}"
            );
        }
    }

    #[test]
    fn variable_names_are_checked() {
        assert!(valid_var_name("LAB_TOKEN").is_ok());
        assert!(valid_var_name("_x1").is_ok());
        assert!(valid_var_name("").unwrap_err().contains("empty"));
        assert!(valid_var_name("1A").is_err());
        assert!(valid_var_name("A-B").is_err());
        assert!(valid_var_name("A B").is_err());
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_redeploy_report_says_what_changed_and_never_prints_a_token() {
        let token = "0123456789abcdef0123456789abcdef";
        let done = Recreated {
            before: env(&[("NODE_ENV", "production")]),
            after: env(&[
                ("NODE_ENV", "production"),
                ("LAB_ENABLE", "true"),
                ("LAB_TOKEN", token),
            ]),
            healthy_after: Duration::from_millis(240),
        };
        let url = "http://127.0.0.1:40000";
        let lines = redeploy_report("c1", &done, false, url, url, Some(token));
        assert_eq!(
            lines,
            vec![
                "redeployed the app (c1): LAB_ENABLE=true, LAB_TOKEN=(32 chars, hidden); healthy after 240 ms"
                    .to_string(),
                format!("it answers at {url} as before ($BASE still holds)"),
            ]
        );
        assert!(!lines.concat().contains(token));

        let back = Recreated {
            before: done.after.clone(),
            after: done.before.clone(),
            healthy_after: Duration::from_millis(200),
        };
        let lines = redeploy_report(
            "c1",
            &back,
            true,
            url,
            "http://127.0.0.1:40001",
            Some(token),
        );
        assert!(
            lines[0].contains(
                "with the environment the part started with: LAB_ENABLE removed, LAB_TOKEN removed"
            ),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("export BASE=http://127.0.0.1:40001"),
            "{lines:?}"
        );

        let other = Recreated {
            before: env(&[]),
            after: env(&[("LAB_TOKEN", "not-the-session-token")]),
            healthy_after: Duration::ZERO,
        };
        let lines = redeploy_report("c1", &other, false, url, url, Some(token));
        assert!(
            lines[2].starts_with("note: LAB_TOKEN is not this session's token"),
            "{lines:?}"
        );
        assert!(!lines.concat().contains("not-the-session-token"));
    }

    #[tokio::test]
    async fn a_client_reads_lines_until_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("t.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let request = read_request(read).await.unwrap().unwrap();
            assert_eq!(request, Request::Check { step: None });
            send(&mut write, &Response::line("checking…"))
                .await
                .unwrap();
            send(&mut write, &Response::line("PASS step 2.1 done"))
                .await
                .unwrap();
            send(&mut write, &Response::Done { passed: true })
                .await
                .unwrap();
        });
        let mut seen = Vec::new();
        let last = request(
            &socket,
            &Request::Check { step: None },
            Duration::from_secs(5),
            |l| seen.push(l.to_string()),
        )
        .await
        .unwrap();
        server.await.unwrap();
        assert_eq!(seen, ["checking…", "PASS step 2.1 done"]);
        assert_eq!(last, Response::Done { passed: true });
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_without_a_result_is_an_error_and_a_silent_one_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("t.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
            // The second client gets no answer at all.
            let (_silent, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let hung_up = request(
            &socket,
            &Request::Check { step: None },
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            format!("{hung_up:#}").contains("without a result"),
            "{hung_up:#}"
        );
        let silent = request(
            &socket,
            &Request::Check { step: None },
            Duration::from_millis(300),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(format!("{silent:#}").contains("no answer"), "{silent:#}");
        server.abort();
    }

    #[tokio::test]
    async fn a_refused_socket_says_the_session_ended() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("gone.sock");
        drop(UnixListener::bind(&socket).unwrap());
        let e = request(
            &socket,
            &Request::Check { step: None },
            Duration::from_secs(1),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(format!("{e:#}").contains("that session has ended"), "{e:#}");
    }
}
