//! A port-forward through Docker exec: the runner's `aws ssm start-session --document-name
//! AWS-StartPortForwardingSession`.
//!
//! ```text
//!  client ──TCP──▶ 127.0.0.1:<local>  (Tunnel: one listener on loopback)
//!                     │  one `docker exec` per accepted connection, tty off, stdin attached
//!                     ▼
//!  container:  node -e <FORWARDER_JS>  ──TCP──▶ 127.0.0.1:<remote> (the inspector, 9229)
//!              stdin ─▶ socket ─▶ stdout
//! ```
//!
//! Each accepted connection gets its own exec'd forwarder (a few lines of Node, [`FORWARDER_JS`]),
//! so connections are independent: one that fails (the inspector is not open yet) says why and
//! takes nothing else down. What the design rests on (Docker 20.10, API 1.41; Node 20):
//!
//! - **No tty.** A tty would mangle binary data and merge stderr into stdout. Without one, Docker
//!   multiplexes stdout and stderr into separate frames: only stdout bytes reach the client;
//!   stderr is collected as the connection's [`Diagnosis`] (before SIGUSR1 it says
//!   `ECONNREFUSED`).
//! - **Half-close travels.** When the client stops sending, the runner shuts the write side of
//!   the exec stream; Docker closes the forwarder's stdin; the forwarder ends its socket's write
//!   side. This matters because Node's inspector keeps its HTTP socket open after a reply and
//!   closes it only when the client does. The forwarder exits once both directions are done (or
//!   [`FORWARDER_IDLE_AFTER_EOF`] after stdin ended with nothing more from the remote), and the
//!   end of its output stream is the end of the connection.
//! - **`NODE_OPTIONS` is cleared** for the forwarder: an inherited `--inspect` would make it try
//!   to bind 9229 itself.
//! - **No leaks.** After a connection's stream ends the runner waits until Docker reports the exec
//!   stopped; one still running is reported ([`Tunnel::close`] fails, and a diagnosis says so).
//!   If the runner dies, Docker sees the exec stream close, closes the forwarder's stdin, and the
//!   forwarder ends by itself.
//!
//! Every wait has a timeout: exec create and start ([`EXEC_TIMEOUT`]), the forwarder's connect
//! ([`FORWARDER_CONNECT_TIMEOUT`]), the exit check ([`EXIT_WAIT`]), close ([`CLOSE_GRACE`]). An
//! idle connection has none: a debugging session may sit idle for as long as its user likes.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::probe::inspector::{Target, get_json_over};

/// The longest the runner waits for Docker to create or to start one forwarder exec.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a forwarder waits to connect to the remote address inside the container.
pub const FORWARDER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After its stdin ended, a forwarder whose remote neither closes nor sends for this long gives up.
pub const FORWARDER_IDLE_AFTER_EOF: Duration = Duration::from_secs(5);
/// After a connection's stream ended, the longest the runner waits for Docker to report the
/// forwarder stopped.
pub const EXIT_WAIT: Duration = Duration::from_secs(5);
/// On close, the time connections get to finish (their forwarders see stdin end) before they
/// are cut.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The first argument of every forwarder, so its processes can be found (`docker top`).
pub const FORWARDER_MARK: &str = "lab-runner-tunnel-forwarder";

/// Most stderr bytes kept per connection.
const MAX_STDERR: usize = 16 * 1024;
/// Most diagnoses kept (oldest dropped first).
const MAX_DIAGNOSES: usize = 64;
/// Read buffer of each direction.
const CHUNK: usize = 64 * 1024;
/// Queued events per subscriber before the slowest one starts missing some.
const EVENT_CAPACITY: usize = 1024;

/// The forwarder, run as `node --v8-pool-size=1 -e FORWARDER_JS <mark> <host> <port> <connect ms>
/// <idle ms>` with `NODE_OPTIONS` cleared. Measured on Node 20: ~80 ms to start, 4 threads, ~6 MB
/// of its own memory (the rest of its ~38 MB RSS is the shared `node` binary).
///
/// stdin → socket, socket → stdout, errors → stderr (one line each, prefixed). It ends the
/// socket's write side when stdin ends and exits when the socket has closed, after stdout has
/// been flushed; exit code 1 when the connection failed.
pub const FORWARDER_JS: &str = r#"'use strict';
const net = require('node:net');
const [, , host, portText, connectMsText, idleMsText] = process.argv;
const say = (text) => process.stderr.write(`lab-runner forwarder: ${text}\n`);
let failed = false;
let idleTimer = null;
const sock = net.connect({ host, port: Number(portText) });
sock.setNoDelay(true);
const connectTimer = setTimeout(() => {
  failed = true;
  say(`connect to ${host}:${portText} timed out after ${connectMsText} ms`);
  sock.destroy();
}, Number(connectMsText));
sock.on('connect', () => {
  clearTimeout(connectTimer);
  process.stdin.on('data', (chunk) => {
    if (!sock.write(chunk)) {
      process.stdin.pause();
      sock.once('drain', () => process.stdin.resume());
    }
  });
  process.stdin.on('end', () => {
    sock.end();
    idleTimer = setTimeout(() => sock.destroy(), Number(idleMsText));
  });
  process.stdin.on('error', () => sock.destroy());
});
sock.on('data', (chunk) => {
  if (idleTimer) idleTimer.refresh();
  if (!process.stdout.write(chunk)) {
    sock.pause();
    process.stdout.once('drain', () => sock.resume());
  }
});
sock.on('error', (err) => {
  failed = true;
  say(`${err.code || 'error'}: ${err.message}`);
});
sock.on('close', () => {
  clearTimeout(connectTimer);
  const code = failed ? 1 : 0;
  // Exit once stdout is flushed, or after a second if nobody reads it any more.
  setTimeout(() => process.exit(code), 1000);
  process.stdout.write('', () => process.exit(code));
});
process.stdout.on('error', () => process.exit(failed ? 1 : 0));
"#;

/// Where forwarders run: a process started inside the container with its stdin, stdout and
/// stderr attached, and asked later whether it stopped. The Docker backend implements it with
/// `docker exec` (`env::docker::DockerClient`); the tunnel itself knows no Docker.
#[async_trait]
pub trait Exec: Send + Sync + 'static {
    /// Starts `cmd` with `env` in `container`, attached; Docker's create and start each get at
    /// most `limit`.
    async fn start_attached(
        &self,
        container: &str,
        env: Vec<String>,
        cmd: Vec<String>,
        limit: Duration,
    ) -> Result<Attached>;
    /// Whether the process `id` still runs (asked within `limit`).
    async fn state(&self, id: &str, limit: Duration) -> Result<ExecState>;
}

/// A started forwarder: its output frames and its stdin.
pub struct Attached {
    pub id: String,
    pub output: Output,
    pub input: Input,
}

/// One frame of a forwarder's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    StdOut(bytes::Bytes),
    StdErr(bytes::Bytes),
    /// Bytes outside the stdout/stderr frames (never the remote's data without a tty).
    Unframed(bytes::Bytes),
}

/// Whether a forwarder still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecState {
    Running,
    /// Stopped, with its exit code when known.
    Exited(Option<i64>),
}

pub type Output = Pin<Box<dyn Stream<Item = Result<Frame>> + Send>>;
pub type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// Why a connection through the tunnel did not work, as the forwarder (or Docker) told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The connection it belongs to.
    pub connection: u64,
    /// The forwarder's exit code, when Docker reported one.
    pub exit_code: Option<i64>,
    /// What the forwarder wrote on stderr (trimmed; at most 16 KiB).
    pub stderr: String,
    /// One paragraph for people: what happened and what to do.
    pub message: String,
}

impl std::fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A TCP client of the local listener.
    Client(SocketAddr),
    /// [`Tunnel::dial`], inside this process.
    Dial,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Client(peer) => write!(f, "{peer}"),
            Origin::Dial => f.write_str("the runner"),
        }
    }
}

/// A connection that is open now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: u64,
    pub origin: Origin,
    /// How long it has been open.
    pub age: Duration,
    /// Bytes carried from the client to the remote so far.
    pub to_remote: u64,
    /// Bytes carried from the remote to the client so far.
    pub to_client: u64,
}

/// A connection that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSummary {
    pub id: u64,
    pub origin: Origin,
    pub duration: Duration,
    pub to_remote: u64,
    pub to_client: u64,
    /// The forwarder's exit code, when Docker reported one.
    pub exit_code: Option<i64>,
    /// Why it did not work, when it did not.
    pub diagnosis: Option<Diagnosis>,
}

/// What happens to a tunnel's connections, for whoever subscribed ([`Tunnel::subscribe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    Opened { id: u64, origin: Origin },
    Closed(ConnectionSummary),
}

/// A listening port-forward into a container. See the module documentation.
///
/// [`Tunnel::close`] stops it and waits until every forwarder has stopped; dropping it stops
/// everything without waiting.
pub struct Tunnel {
    shared: Arc<Shared>,
    local: SocketAddr,
    cancel: CancellationToken,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("local", &self.local)
            .field("container", &self.shared.container)
            .field("remote", &self.shared.remote)
            .field("connections", &self.connections())
            .field("closed", &self.cancel.is_cancelled())
            .finish()
    }
}

/// State shared by the listener and the connection tasks.
struct Shared {
    exec: Arc<dyn Exec>,
    container: String,
    remote: SocketAddr,
    next_id: AtomicU64,
    active: Mutex<BTreeMap<u64, Arc<Counters>>>,
    diagnoses: Mutex<VecDeque<Diagnosis>>,
    /// Execs that were still running [`EXIT_WAIT`] after their stream ended.
    leaked: Mutex<Vec<String>>,
    tasks: Mutex<JoinSet<()>>,
    events: broadcast::Sender<TunnelEvent>,
}

struct Counters {
    origin: Origin,
    opened: Instant,
    to_remote: AtomicU64,
    to_client: AtomicU64,
}

/// A poisoned lock only means a task panicked while holding it; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tunnel {
    /// Listens on `local` (loopback only; port 0 picks a free one) and forwards every accepted
    /// connection to `remote` as seen from inside `container`. The container's reachability is
    /// not checked here: like an SSM session, the tunnel opens, and each connection says why it
    /// failed ([`Tunnel::last_error`], [`TunnelEvent::Closed`]).
    pub async fn open(
        exec: Arc<dyn Exec>,
        container: String,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Tunnel> {
        if !local.ip().is_loopback() {
            bail!(
                "refusing to listen on {local}: the tunnel listens on loopback only (127.0.0.1 or \
                 [::1]), because whoever reaches the inspector controls the process"
            );
        }
        let listener = TcpListener::bind(local)
            .await
            .with_context(|| format!("Failed to listen on {local}"))?;
        let local = listener
            .local_addr()
            .with_context(|| format!("Failed to read the address of the listener on {local}"))?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared {
            exec,
            container,
            remote,
            next_id: AtomicU64::new(1),
            active: Mutex::new(BTreeMap::new()),
            diagnoses: Mutex::new(VecDeque::new()),
            leaked: Mutex::new(Vec::new()),
            tasks: Mutex::new(JoinSet::new()),
            events,
        });
        let cancel = CancellationToken::new();
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), cancel.clone()));
        Ok(Tunnel {
            shared,
            local,
            cancel,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// Where the tunnel listens (with the real port when it was opened with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The container the connections go into.
    pub fn container(&self) -> &str {
        &self.shared.container
    }

    /// The address the forwarders connect to, inside the container.
    pub fn remote_addr(&self) -> SocketAddr {
        self.shared.remote
    }

    /// How many connections are open now (counting those whose forwarder is still stopping).
    pub fn connections(&self) -> usize {
        lock(&self.shared.active).len()
    }

    /// The connections open now.
    pub fn connection_list(&self) -> Vec<ConnectionInfo> {
        lock(&self.shared.active)
            .iter()
            .map(|(id, c)| ConnectionInfo {
                id: *id,
                origin: c.origin,
                age: c.opened.elapsed(),
                to_remote: c.to_remote.load(Ordering::Relaxed),
                to_client: c.to_client.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The most recent diagnosis: why the last failed connection failed.
    pub fn last_error(&self) -> Option<Diagnosis> {
        lock(&self.shared.diagnoses).back().cloned()
    }

    /// The recent diagnoses, oldest first (at most 64).
    pub fn diagnoses(&self) -> Vec<Diagnosis> {
        lock(&self.shared.diagnoses).iter().cloned().collect()
    }

    /// Every later connection event. Events are not kept for late subscribers; a subscriber
    /// that falls more than 1024 events behind misses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<TunnelEvent> {
        self.shared.events.subscribe()
    }

    /// Whether [`Tunnel::close`] has begun.
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A connection through the tunnel from inside this process, without a TCP client: the
    /// returned stream's far end is the remote. It is tracked, closed and diagnosed like any
    /// other connection (its events say [`Origin::Dial`]).
    pub fn dial(&self) -> Result<tokio::io::DuplexStream> {
        self.dial_with_id().map(|(stream, _)| stream)
    }

    fn dial_with_id(&self) -> Result<(tokio::io::DuplexStream, u64)> {
        if self.cancel.is_cancelled() {
            bail!("the tunnel into {} is closed", self.shared.container);
        }
        let (ours, theirs) = tokio::io::duplex(CHUNK * 4);
        let id = spawn_connection(&self.shared, theirs, Origin::Dial, self.cancel.clone());
        Ok((ours, id))
    }

    /// `GET /json/list` from the inspector at the remote address, through a dialled connection
    /// (so no local TCP client is involved), within `timeout`. When the connection could not be
    /// made (the inspector is not open, say), the error is the forwarder's diagnosis.
    pub async fn inspector_targets(&self, timeout: Duration) -> Result<Vec<Target>> {
        let remote = self.shared.remote;
        let doing = || {
            format!(
                "GET /json/list from {remote} in {} through the tunnel",
                self.shared.container
            )
        };
        // Subscribed before dialling, so the connection's end cannot be missed.
        let mut events = self.subscribe();
        let (stream, id) = self.dial_with_id()?;
        let body = match tokio::time::timeout(timeout, get_json_over(stream, remote, "/json/list"))
            .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                // The forwarder's stderr comes with the end of its stream: wait for it.
                let closed = async {
                    loop {
                        match events.recv().await {
                            Ok(TunnelEvent::Closed(summary)) if summary.id == id => {
                                return summary.diagnosis;
                            }
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                };
                let diagnosis = tokio::time::timeout(EXIT_WAIT + Duration::from_secs(1), closed)
                    .await
                    .ok()
                    .flatten();
                return Err(match diagnosis {
                    Some(d) => anyhow!("{d}"),
                    None => e,
                })
                .with_context(doing);
            }
            Err(_) => bail!(
                "{}: no answer within {:.1} s",
                doing(),
                timeout.as_secs_f64()
            ),
        };
        serde_json::from_value(body)
            .with_context(|| format!("{}: the body is not a target list", doing()))
    }

    /// Stops listening (nothing listens on [`Tunnel::local_addr`] once this returns), closes every
    /// connection — each forwarder sees its stdin end and gets [`CLOSE_GRACE`] to finish — and
    /// waits until Docker reports every forwarder stopped. Fails, naming them, when some are
    /// still running. Calling it again does nothing more.
    pub async fn close(&self) -> Result<()> {
        self.cancel.cancel();
        let accept = lock(&self.accept).take();
        if let Some(accept) = accept {
            // The accept loop ends at once when cancelled; dropping it drops the listener.
            match tokio::time::timeout(Duration::from_secs(5), accept).await {
                Ok(_) => {}
                Err(_) => bail!(
                    "closing the tunnel on {}: the listener did not stop within 5 s",
                    self.local
                ),
            }
        }
        let mut tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        let all_done = async { while tasks.join_next().await.is_some() {} };
        let limit = CLOSE_GRACE + EXIT_WAIT + EXEC_TIMEOUT;
        if tokio::time::timeout(limit, all_done).await.is_err() {
            tasks.abort_all();
            bail!(
                "closing the tunnel into {}: {} connection(s) did not finish within {:.0} s",
                self.shared.container,
                tasks.len(),
                limit.as_secs_f64()
            );
        }
        let leaked = lock(&self.shared.leaked).clone();
        if !leaked.is_empty() {
            bail!(
                "closing the tunnel into {}: {} forwarder exec(s) were still running {:.0} s after \
                 their connection ended: {}",
                self.shared.container,
                leaked.len(),
                EXIT_WAIT.as_secs_f64(),
                leaked.join(", ")
            );
        }
        Ok(())
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(accept) = lock(&self.accept).take() {
            accept.abort();
        }
        // Dropping a connection drops its exec stream: Docker closes the forwarder's stdin, and
        // the forwarder ends by itself.
        lock(&self.shared.tasks).abort_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let _ = spawn_connection(&shared, stream, Origin::Client(peer), cancel.clone());
                }
                Err(e) => {
                    // Out of file descriptors and the like: say so and keep listening.
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    shared.record(Diagnosis {
                        connection: id,
                        exit_code: None,
                        stderr: String::new(),
                        message: format!("accepting a connection failed: {e}"),
                    });
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
}

/// Starts carrying `client` through a new forwarder; returns the connection's id.
fn spawn_connection<S>(
    shared: &Arc<Shared>,
    client: S,
    origin: Origin,
    cancel: CancellationToken,
) -> u64
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let counters = Arc::new(Counters {
        origin,
        opened: Instant::now(),
        to_remote: AtomicU64::new(0),
        to_client: AtomicU64::new(0),
    });
    lock(&shared.active).insert(id, counters.clone());
    let _ = shared.events.send(TunnelEvent::Opened { id, origin });
    let task = run_connection(shared.clone(), id, counters, client, cancel);
    let mut tasks = lock(&shared.tasks);
    // Reap finished tasks so the set does not grow with every connection ever made.
    while tasks.try_join_next().is_some() {}
    tasks.spawn(task);
    id
}

impl Shared {
    fn record(&self, diagnosis: Diagnosis) {
        let mut diagnoses = lock(&self.diagnoses);
        if diagnoses.len() == MAX_DIAGNOSES {
            diagnoses.pop_front();
        }
        diagnoses.push_back(diagnosis);
    }

    /// The forwarder's environment and command.
    fn forwarder(&self) -> (Vec<String>, Vec<String>) {
        let ms = |d: Duration| d.as_millis().to_string();
        (
            // An inherited --inspect would make the forwarder try to bind the inspector's port.
            vec!["NODE_OPTIONS=".into()],
            vec![
                "node".into(),
                // One V8 worker thread instead of four: each forwarder is 4 tasks, not 7, against
                // the container's pids limit.
                "--v8-pool-size=1".into(),
                "-e".into(),
                FORWARDER_JS.into(),
                FORWARDER_MARK.into(),
                self.remote.ip().to_string(),
                self.remote.port().to_string(),
                ms(FORWARDER_CONNECT_TIMEOUT),
                ms(FORWARDER_IDLE_AFTER_EOF),
            ],
        )
    }
}

/// What carrying one connection came to.
#[derive(Default)]
struct Carried {
    exec_id: Option<String>,
    stderr: Vec<u8>,
    /// Bytes Docker sent outside any stdout/stderr frame (never forwarded).
    unframed: usize,
    error: Option<anyhow::Error>,
    /// Cut short by close().
    cut: bool,
}

async fn run_connection<S>(
    shared: Arc<Shared>,
    id: u64,
    counters: Arc<Counters>,
    client: S,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut carried = Carried::default();
    carry(&shared, &counters, client, &cancel, &mut carried).await;
    let exit = match &carried.exec_id {
        Some(exec_id) => wait_stopped(shared.exec.as_ref(), exec_id).await,
        None => ExecExit::NotStarted,
    };
    if let ExecExit::StillRunning = exit
        && let Some(exec_id) = &carried.exec_id
    {
        lock(&shared.leaked).push(exec_id.clone());
    }
    let exit_code = match exit {
        ExecExit::Exited(code) => code,
        _ => None,
    };
    let diagnosis = diagnose(&shared, id, &carried, &exit);
    if let Some(d) = &diagnosis {
        shared.record(d.clone());
    }
    lock(&shared.active).remove(&id);
    let _ = shared.events.send(TunnelEvent::Closed(ConnectionSummary {
        id,
        origin: counters.origin,
        duration: counters.opened.elapsed(),
        to_remote: counters.to_remote.load(Ordering::Relaxed),
        to_client: counters.to_client.load(Ordering::Relaxed),
        exit_code,
        diagnosis,
    }));
}

/// Starts the forwarder and carries bytes both ways until its output ends, the client goes
/// away, or close() cuts it.
async fn carry<S>(
    shared: &Shared,
    counters: &Counters,
    client: S,
    cancel: &CancellationToken,
    carried: &mut Carried,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let started = start_forwarder(shared, carried).await;
    let (output, input) = match started {
        Ok(streams) => streams,
        Err(e) => {
            carried.error = Some(e);
            return;
        }
    };
    let (client_read, client_write) = tokio::io::split(client);
    let mut stderr = Vec::new();
    let mut unframed = 0usize;
    let outcome = {
        let up = pump_up(client_read, input, &counters.to_remote, cancel);
        let down = pump_down(
            output,
            client_write,
            &counters.to_client,
            &mut stderr,
            &mut unframed,
        );
        let mut up = std::pin::pin!(up);
        let mut down = std::pin::pin!(down);
        let work = async {
            tokio::select! {
                // The forwarder's output ended: it has exited; the connection is over.
                r = &mut down => r,
                r = &mut up => match r {
                    // The client stopped sending (or close() began): the remote's answer and the
                    // forwarder's exit are still to come.
                    Ok(()) => (&mut down).await,
                    Err(e) => {
                        // Keep what the forwarder still has to say (its stderr) for the diagnosis.
                        let _ = tokio::time::timeout(Duration::from_secs(1), &mut down).await;
                        Err(e)
                    }
                },
            }
        };
        let cut = async {
            cancel.cancelled().await;
            tokio::time::sleep(CLOSE_GRACE).await;
        };
        tokio::select! {
            r = work => r.map(|()| false),
            _ = cut => Ok(true),
        }
    };
    carried.stderr = stderr;
    carried.unframed = unframed;
    match outcome {
        Ok(cut) => carried.cut = cut,
        Err(e) => carried.error = Some(e),
    }
}

async fn start_forwarder(shared: &Shared, carried: &mut Carried) -> Result<(Output, Input)> {
    let (env, cmd) = shared.forwarder();
    let attached = shared
        .exec
        .start_attached(&shared.container, env, cmd, EXEC_TIMEOUT)
        .await?;
    carried.exec_id = Some(attached.id);
    Ok((attached.output, attached.input))
}

/// Client → forwarder's stdin. On the client's EOF (or close()), shuts the stream's write side,
/// which Docker turns into EOF on the forwarder's stdin.
async fn pump_up<R>(
    mut client: R,
    mut input: Input,
    counter: &AtomicU64,
    cancel: &CancellationToken,
) -> Result<()>
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            r = client.read(&mut buf) => r.context("reading from the local client")?,
            _ = cancel.cancelled() => 0,
        };
        if n == 0 {
            match tokio::time::timeout(EXEC_TIMEOUT, input.shutdown()).await {
                Ok(r) => r.context("ending the forwarder's stdin")?,
                Err(_) => bail!(
                    "ending the forwarder's stdin: no progress within {} s",
                    EXEC_TIMEOUT.as_secs()
                ),
            }
            return Ok(());
        }
        input
            .write_all(&buf[..n])
            .await
            .context("writing to the forwarder's stdin")?;
        input
            .flush()
            .await
            .context("writing to the forwarder's stdin")?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Forwarder's stdout → client; its stderr is kept for the diagnosis. Ends the client's read
/// side when the forwarder's output ends.
async fn pump_down<W>(
    mut output: Output,
    mut client: W,
    counter: &AtomicU64,
    stderr: &mut Vec<u8>,
    unframed: &mut usize,
) -> Result<()>
where
    W: AsyncWrite + Unpin,
{
    while let Some(frame) = output.next().await {
        match frame.context("reading the forwarder's output")? {
            Frame::StdOut(message) => {
                client
                    .write_all(&message)
                    .await
                    .context("writing to the local client")?;
                counter.fetch_add(message.len() as u64, Ordering::Relaxed);
            }
            Frame::StdErr(message) => {
                let room = MAX_STDERR.saturating_sub(stderr.len());
                stderr.extend_from_slice(&message[..message.len().min(room)]);
            }
            // Without a tty everything comes framed; anything else is not the remote's data.
            Frame::Unframed(message) => *unframed += message.len(),
        }
    }
    // The client may already be gone; that is not this connection's failure.
    let _ = client.shutdown().await;
    Ok(())
}

enum ExecExit {
    NotStarted,
    Exited(Option<i64>),
    StillRunning,
    Unknown(String),
}

/// Waits (at most [`EXIT_WAIT`]) until Docker reports the exec stopped.
async fn wait_stopped(exec: &dyn Exec, exec_id: &str) -> ExecExit {
    let deadline = tokio::time::Instant::now() + EXIT_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        match exec.state(exec_id, EXEC_TIMEOUT).await {
            Ok(ExecState::Exited(code)) => return ExecExit::Exited(code),
            Ok(ExecState::Running) => {}
            Err(e) => return ExecExit::Unknown(format!("{e:#}")),
        }
        if tokio::time::Instant::now() + pause > deadline {
            return ExecExit::StillRunning;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

fn diagnose(shared: &Shared, id: u64, carried: &Carried, exit: &ExecExit) -> Option<Diagnosis> {
    let container = &shared.container;
    let remote = shared.remote;
    let stderr = String::from_utf8_lossy(&carried.stderr).trim().to_string();
    let exit_code = match exit {
        ExecExit::Exited(code) => *code,
        _ => None,
    };
    let mut parts: Vec<String> = Vec::new();
    if stderr.contains("ECONNREFUSED") {
        parts.push(format!(
            "nothing listens on {remote} inside the container {container} — is the inspector \
             open? Open it with SIGUSR1: `docker kill --signal USR1 {container}` (forwarder: {})",
            one_line(&stderr)
        ));
    } else if !stderr.is_empty() {
        parts.push(format!(
            "the forwarder in {container} reported: {}",
            one_line(&stderr)
        ));
    }
    if let Some(e) = &carried.error {
        parts.push(format!("{e:#}"));
    }
    match exit {
        ExecExit::Exited(Some(code)) if *code != 0 && stderr.is_empty() => parts.push(format!(
            "the forwarder in {container} exited with code {code}{}",
            match code {
                126 | 127 => " (is `node` on the container's PATH?)",
                _ => "",
            }
        )),
        ExecExit::StillRunning => parts.push(format!(
            "the forwarder (exec {}) was still running {:.0} s after its connection ended",
            carried.exec_id.as_deref().unwrap_or("?"),
            EXIT_WAIT.as_secs_f64()
        )),
        ExecExit::Unknown(why) if !carried.cut => {
            parts.push(format!("could not check that the forwarder stopped: {why}"))
        }
        _ => {}
    }
    if carried.unframed > 0 {
        parts.push(format!(
            "Docker sent {} byte(s) outside the stdout/stderr frames (not forwarded)",
            carried.unframed
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(Diagnosis {
        connection: id,
        exit_code,
        stderr,
        message: format!("connection {id}: {}", parts.join("; ")),
    })
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts nothing: for what is decided before any forwarder runs.
    struct NoExec;

    #[async_trait]
    impl Exec for NoExec {
        async fn start_attached(
            &self,
            _: &str,
            _: Vec<String>,
            _: Vec<String>,
            _: Duration,
        ) -> Result<Attached> {
            bail!("no exec in this test")
        }

        async fn state(&self, _: &str, _: Duration) -> Result<ExecState> {
            Ok(ExecState::Exited(None))
        }
    }

    #[tokio::test]
    async fn refuses_to_listen_beyond_loopback() {
        // Nothing is started before the address is checked.
        let err = Tunnel::open(
            Arc::new(NoExec),
            "c".into(),
            "0.0.0.0:0".parse().expect("an address"),
            "127.0.0.1:9229".parse().expect("an address"),
        )
        .await
        .expect_err("0.0.0.0 must be refused");
        assert!(format!("{err}").contains("loopback only"), "{err}");
    }

    #[test]
    fn econnrefused_gets_the_sigusr1_hint() {
        let (events, _) = broadcast::channel(1);
        let shared = Shared {
            exec: Arc::new(NoExec),
            container: "lab-c".into(),
            remote: "127.0.0.1:9229".parse().expect("an address"),
            next_id: AtomicU64::new(1),
            active: Mutex::new(BTreeMap::new()),
            diagnoses: Mutex::new(VecDeque::new()),
            leaked: Mutex::new(Vec::new()),
            tasks: Mutex::new(JoinSet::new()),
            events,
        };
        let carried = Carried {
            stderr: b"lab-runner forwarder: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9229\n"
                .to_vec(),
            ..Default::default()
        };
        let d = diagnose(&shared, 7, &carried, &ExecExit::Exited(Some(1))).expect("a diagnosis");
        assert_eq!(d.exit_code, Some(1));
        assert!(
            d.message
                .starts_with("connection 7: nothing listens on 127.0.0.1:9229")
        );
        assert!(d.message.contains("docker kill --signal USR1 lab-c"), "{d}");
        assert!(
            d.message.contains("connect ECONNREFUSED 127.0.0.1:9229"),
            "{d}"
        );
        // A clean connection has nothing to say.
        assert!(diagnose(&shared, 8, &Carried::default(), &ExecExit::Exited(Some(0))).is_none());
    }
}
