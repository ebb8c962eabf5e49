//! A restricted Docker Engine API on a unix socket: the only way a workshop seat's terminal
//! container reaches the engine.
//!
//! A seat's participant types `docker kill --signal USR1 …`, `docker logs …`, `docker restart …`,
//! `docker ps`, `lab-runner tunnel` and `lab-runner pull` in a shell that runs inside a container.
//! Those need the Engine API, but only on the containers of the seat's own session: the host's
//! engine runs every other seat, and the runner itself. So the session serves an [`ApiGuard`]: a
//! unix socket, bind-mounted into the terminal container as `/var/run/docker.sock`, that forwards
//! the few requests those commands make to the real engine, and refuses everything else with an
//! answer in the engine's own style (`{"message": …}`, which the docker CLI prints as
//! `Error response from daemon: …`).
//!
//! What passes (`route` decides it from the method and the path alone):
//! - `GET|HEAD /_ping` and `GET /version`, as they are;
//! - `GET /containers/json`, with the session's label added to its `filters`;
//! - on a container the engine says carries the session's label ([`super::labels::SESSION`]),
//!   asked again on every request: `GET` its `json`, `logs`, `top`, `stats`, `archive` (and
//!   `HEAD` `archive`), `POST` its `kill`, `restart`, `start`, `stop`, `wait` and `exec` (not a
//!   privileged one); any other container is "No such container", whether it exists or not;
//! - `POST /exec/ID/start` (the hijacked stream, joined both ways), `GET /exec/ID/json` and
//!   `POST /exec/ID/resize` for the execs this guard created.
//!
//! Every path may start with an API version (`/v1.41`), kept when forwarding. A forwarded request
//! names the container by the id the check found, on a path rebuilt from the checked segments, so
//! the engine acts on exactly what was checked.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Map, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long connecting to the engine and its HTTP handshake may take.
const ENGINE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the engine may take to answer a request's head (not its body: `logs --follow` streams
/// for as long as the participant watches). `wait` and exec start have none; `stop` and
/// `restart` get their grace period on top.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's head, and then its body.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body taken (exec create and start send a little JSON; the rest none).
const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// The largest answer read whole: an exec's creation (`{"Id": …}`).
const MAX_EXEC_ANSWER: usize = 64 * 1024;
/// The largest container inspection read to check its labels.
const MAX_INSPECT_ANSWER: usize = 4 * 1024 * 1024;
/// Connections served at once (until a request takes one over); more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
/// Exec ids remembered; the oldest are forgotten past this.
const MAX_EXECS: usize = 4096;
/// The grace `stop` and `restart` are assumed to take when the request does not say (`t`).
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(60);

/// A restricted Docker Engine API served on a unix socket for one session (see the module's
/// documentation for what passes). Stops, and removes its socket, on [`ApiGuard::stop`] or when
/// dropped; open streams (a followed log, an exec) are cut then too.
pub struct ApiGuard {
    socket: PathBuf,
    cancel: CancellationToken,
    accept: Option<JoinHandle<()>>,
    removed: bool,
}

impl std::fmt::Debug for ApiGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiGuard")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl ApiGuard {
    /// Listens on `socket` (a stale socket file there is removed first; the socket is made mode
    /// 0666 so a container's user can connect) and forwards allowed requests to the engine at
    /// `engine`, a unix socket path such as [`engine_socket`] gives; anything else is an error
    /// saying the guard needs a local unix-socket engine. `session` is the value of the label
    /// [`super::labels::SESSION`] a container must carry to be reachable.
    pub async fn start(socket: &Path, engine: &Path, session: &str) -> Result<ApiGuard> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if session.is_empty() {
            bail!("the Docker API guard needs a session to guard (the session id is empty)");
        }
        check_engine(engine)?;
        match std::fs::symlink_metadata(socket) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(socket).with_context(|| {
                    format!(
                        "Failed to remove the stale Docker API guard socket {}",
                        socket.display()
                    )
                })?
            }
            Ok(_) => bail!(
                "Failed to serve the Docker API guard at {}: something that is not a socket is there",
                socket.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "Failed to look at {} for the Docker API guard",
                        socket.display()
                    )
                });
            }
        }
        let listener = UnixListener::bind(socket).with_context(|| {
            format!(
                "Failed to listen on {} for the Docker API guard",
                socket.display()
            )
        })?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).with_context(
            || {
                format!(
                    "Failed to let containers connect to the Docker API guard at {} (chmod 0666)",
                    socket.display()
                )
            },
        )?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            engine: engine.to_path_buf(),
            session: session.to_string(),
            execs: Mutex::new(Execs::default()),
            cancel: cancel.clone(),
        });
        let accept = tokio::spawn(accept(listener, shared));
        Ok(ApiGuard {
            socket: socket.to_path_buf(),
            cancel,
            accept: Some(accept),
            removed: false,
        })
    }

    /// The socket the guard listens on (to bind-mount as the container's `/var/run/docker.sock`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops listening, cuts the open connections and removes the socket file (dropping the
    /// guard does the same, without waiting for the listener to close).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(accept) = self.accept.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), accept).await;
        }
        self.remove_socket();
    }

    fn remove_socket(&mut self) {
        if !self.removed {
            self.removed = true;
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl Drop for ApiGuard {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.remove_socket();
    }
}

/// The engine's unix socket, from `DOCKER_HOST` or the default `/var/run/docker.sock`; an error
/// when the engine is not a local unix socket (`tcp://`, `ssh://`), which the guard cannot front.
pub fn engine_socket() -> Result<PathBuf> {
    engine_socket_of(&super::connect::docker_host())
}

fn engine_socket_of(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
        _ => bail!(
            "the Docker API guard of a seat's terminal needs a local unix-socket engine \
             (DOCKER_HOST=unix:///…), but the engine is at {host}"
        ),
    }
}

/// Whether `engine` is a path to a unix socket (the guard connects to nothing else).
fn check_engine(engine: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let text = engine.to_string_lossy();
    if text.contains("://") || !engine.is_absolute() {
        bail!(
            "the Docker API guard needs a local unix-socket engine given as an absolute path, not {text}"
        );
    }
    let meta = std::fs::metadata(engine).with_context(|| {
        format!("Failed to find the Docker engine's socket {text} for the Docker API guard")
    })?;
    if !meta.file_type().is_socket() {
        bail!("the Docker API guard needs a local unix-socket engine, and {text} is not a socket");
    }
    Ok(())
}

/// What every connection of one guard shares.
struct Shared {
    engine: PathBuf,
    session: String,
    execs: Mutex<Execs>,
    cancel: CancellationToken,
}

/// The exec ids this guard created, the oldest forgotten past [`MAX_EXECS`].
#[derive(Default)]
struct Execs {
    known: HashSet<String>,
    order: VecDeque<String>,
}

impl Execs {
    fn remember(&mut self, id: &str) {
        if self.known.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            while self.order.len() > MAX_EXECS {
                if let Some(old) = self.order.pop_front() {
                    self.known.remove(&old);
                }
            }
        }
    }

    fn knows(&self, id: &str) -> bool {
        self.known.contains(id)
    }
}

/// Accepts connections until the guard is stopped; each is served on a task of its own, which
/// ends when the guard is stopped.
async fn accept(listener: UnixListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = shared.cancel.cancelled() => return,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shared.cancel.cancelled() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let cancel = shared.cancel.clone();
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(CLIENT_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                // Exec start hands the connection over to the exec's stream after its 101.
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// What a request is, from its method and path: the only requests that are forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// Forwarded as it is, to `path` (`/_ping`, `/version`, with the version prefix if any).
    Plain { path: String },
    /// The container list at `path`, whose `filters` get the session's label.
    List { path: String },
    /// `op` on the container `reference`, once the engine says it is the session's.
    Container {
        version: String,
        reference: String,
        op: ContainerOp,
    },
    /// `op` on the exec `id`, when this guard created it.
    Exec {
        version: String,
        id: String,
        op: ExecOp,
    },
    /// Anything else.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerOp {
    Inspect,
    Logs,
    Top,
    Stats,
    Archive,
    Kill,
    Restart,
    Start,
    Stop,
    Wait,
    Exec,
}

impl ContainerOp {
    fn of(method: &str, segment: &str) -> Option<ContainerOp> {
        use ContainerOp::*;
        Some(match (method, segment) {
            ("GET", "json") => Inspect,
            ("GET", "logs") => Logs,
            ("GET", "top") => Top,
            ("GET", "stats") => Stats,
            ("GET" | "HEAD", "archive") => Archive,
            ("POST", "kill") => Kill,
            ("POST", "restart") => Restart,
            ("POST", "start") => Start,
            ("POST", "stop") => Stop,
            ("POST", "wait") => Wait,
            ("POST", "exec") => Exec,
            _ => return None,
        })
    }

    fn segment(self) -> &'static str {
        use ContainerOp::*;
        match self {
            Inspect => "json",
            Logs => "logs",
            Top => "top",
            Stats => "stats",
            Archive => "archive",
            Kill => "kill",
            Restart => "restart",
            Start => "start",
            Stop => "stop",
            Wait => "wait",
            Exec => "exec",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecOp {
    Start,
    Inspect,
    Resize,
}

impl ExecOp {
    fn of(method: &str, segment: &str) -> Option<ExecOp> {
        Some(match (method, segment) {
            ("POST", "start") => ExecOp::Start,
            ("GET", "json") => ExecOp::Inspect,
            ("POST", "resize") => ExecOp::Resize,
            _ => return None,
        })
    }

    fn segment(self) -> &'static str {
        match self {
            ExecOp::Start => "start",
            ExecOp::Inspect => "json",
            ExecOp::Resize => "resize",
        }
    }
}

impl Route {
    /// Whether the request may carry a body (exec create's and start's JSON); the others take
    /// none (an old API's `start` would take a host config from one).
    fn takes_body(&self) -> bool {
        matches!(
            self,
            Route::Container {
                op: ContainerOp::Exec,
                ..
            } | Route::Exec {
                op: ExecOp::Start,
                ..
            }
        )
    }

    /// How long the engine may take to answer the head of this request with `query`; `None`
    /// for a request that waits for the container or the exec (`wait`, exec start).
    fn head_timeout(&self, query: Option<&str>) -> Option<Duration> {
        match self {
            Route::Container {
                op: ContainerOp::Wait,
                ..
            }
            | Route::Exec {
                op: ExecOp::Start, ..
            } => None,
            Route::Container {
                op: ContainerOp::Stop | ContainerOp::Restart,
                ..
            } => {
                let grace = query_values(query.unwrap_or(""))
                    .ok()
                    .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "t").map(|(_, v)| v))
                    .map(|t| t.trim().parse::<i64>());
                match grace {
                    None => Some(HEAD_TIMEOUT + DEFAULT_STOP_GRACE),
                    Some(Ok(seconds @ 0..=3600)) => {
                        Some(HEAD_TIMEOUT + Duration::from_secs(seconds.unsigned_abs()))
                    }
                    // `t=-1` waits for the container however long it takes.
                    Some(Ok(_)) => None,
                    // The engine refuses it at once.
                    Some(Err(_)) => Some(HEAD_TIMEOUT),
                }
            }
            _ => Some(HEAD_TIMEOUT),
        }
    }
}

/// Which request `method` on `path` (as sent, percent-encoded, without the query) is: the pure
/// decision of what the guard forwards. Each segment is percent-decoded before it is looked at;
/// an empty segment (`//`, a trailing `/`), `.`, `..`, one that decodes to something with a `/`,
/// or a container or exec reference that is not a plain name or id, is refused.
fn route(method: &Method, path: &str) -> Route {
    let Some(segments) = segments(path) else {
        return Route::Refused;
    };
    let (version, rest) = match segments.split_first() {
        Some((first, rest)) if is_version(first) => (format!("/{first}"), rest),
        _ => (String::new(), &segments[..]),
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.as_str(), rest.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Route::Plain {
            path: format!("{version}/_ping"),
        },
        ("GET", ["version"]) => Route::Plain {
            path: format!("{version}/version"),
        },
        ("GET", ["containers", "json"]) => Route::List {
            path: format!("{version}/containers/json"),
        },
        (method, ["containers", reference, op]) if is_name(reference) => {
            match ContainerOp::of(method, op) {
                Some(op) => Route::Container {
                    version,
                    reference: reference.to_string(),
                    op,
                },
                None => Route::Refused,
            }
        }
        (method, ["exec", id, op]) if is_name(id) => match ExecOp::of(method, op) {
            Some(op) => Route::Exec {
                version,
                id: id.to_string(),
                op,
            },
            None => Route::Refused,
        },
        _ => Route::Refused,
    }
}

/// The percent-decoded segments of `path`, or `None` when it does not start with `/`, has an
/// empty segment, a `.` or `..`, a bad escape, or a segment that decodes to a `/`, a NUL or
/// something that is not UTF-8.
fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    rest.split('/')
        .map(|raw| {
            let decoded = String::from_utf8(percent_decode(raw, false)?).ok()?;
            let fine = !decoded.is_empty()
                && decoded != "."
                && decoded != ".."
                && !decoded.contains(['/', '\\', '\0']);
            fine.then_some(decoded)
        })
        .collect()
}

/// An API version segment: `v1.41`, `v1`.
fn is_version(segment: &str) -> bool {
    let Some(number) = segment.strip_prefix('v') else {
        return false;
    };
    let parts: Vec<&str> = number.split('.').collect();
    parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A container name or id, or an exec id, as Docker spells them: `[A-Za-z0-9][A-Za-z0-9_.-]*`
/// (all characters a path carries as they are).
fn is_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    text.len() <= 256
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `%XX` decoded (and `+` as a space when `plus_is_space`, as in a query); `None` for a `%` not
/// followed by two hex digits.
fn percent_decode(text: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// `text` percent-encoded for a query, all but the unreserved characters (`A-Za-z0-9-._~`).
fn query_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query's `key=value` pairs, decoded, in order (empty pairs skipped, as the engine does).
fn query_values(query: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let decode = |text: &str| {
        percent_decode(text, true)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("the query parameter {text:?} is not valid URL encoding"))
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}

/// The container list's query with the session's label among its `filters`, every parameter
/// encoded again so the engine reads exactly what was checked. The first `filters` counts, as in
/// the engine; others are dropped. An error is the message of a refusal (status, text).
fn with_session_filter(
    query: Option<&str>,
    session: &str,
) -> std::result::Result<String, (StatusCode, String)> {
    let pairs = query_values(query.unwrap_or("")).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let mut filters = None;
    let mut out = Vec::new();
    for (key, value) in pairs {
        if key == "filters" {
            filters.get_or_insert(value);
        } else {
            out.push(format!("{}={}", query_encode(&key), query_encode(&value)));
        }
    }
    let filters = add_session_label(filters.as_deref().unwrap_or(""), session)?;
    out.push(format!("filters={}", query_encode(&filters)));
    Ok(out.join("&"))
}

/// `filters` (the engine's JSON: a map of filter name to a list of values, or to a set of values
/// as `{"value": true}`, possibly empty) with `label=io.lab-runner.session=<session>` added in
/// the same form. `before` and `since` are refused: they name a container, and their error for
/// an unknown one would tell what other containers exist.
fn add_session_label(
    filters: &str,
    session: &str,
) -> std::result::Result<String, (StatusCode, String)> {
    let bad = |what: &str| (StatusCode::BAD_REQUEST, format!("invalid filters: {what}"));
    let mut map = if filters.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(filters) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(bad("not a JSON object")),
            Err(e) => return Err(bad(&e.to_string())),
        }
    };
    for key in ["before", "since"] {
        if map.contains_key(key) {
            return Err((
                StatusCode::FORBIDDEN,
                format!("the `{key}` filter is not available in this terminal"),
            ));
        }
    }
    let wanted = format!("{}={session}", super::labels::SESSION);
    let as_set = map.is_empty() || map.values().any(Value::is_object);
    match map.get_mut("label") {
        None if as_set => {
            map.insert(
                "label".into(),
                Value::Object(Map::from_iter([(wanted, Value::Bool(true))])),
            );
        }
        None => {
            map.insert("label".into(), Value::Array(vec![Value::String(wanted)]));
        }
        Some(Value::Array(list)) => list.push(Value::String(wanted)),
        Some(Value::Object(set)) => {
            set.insert(wanted, Value::Bool(true));
        }
        Some(_) => return Err(bad("`label` is neither a list nor a set of labels")),
    }
    serde_json::to_string(&Value::Object(map)).map_err(|e| bad(&e.to_string()))
}

/// The fields an exec's creation may set (the engine matches names regardless of case, so any
/// other spelling is refused rather than guessed at).
const EXEC_FIELDS: &[&str] = &[
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ConsoleSize",
    // The docker CLI sends it (false) with every exec.
    "Detach",
    "DetachKeys",
    "Tty",
    "Env",
    "Cmd",
    "User",
    "WorkingDir",
    "Privileged",
];

/// An exec's creation body, checked (known fields only, not privileged) and written again, so
/// the engine reads exactly what was checked; an error is a refusal (status, text).
fn checked_exec_config(body: &[u8]) -> std::result::Result<Bytes, (StatusCode, String)> {
    let config: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the exec's configuration is not a JSON object: {e}"),
        )
    })?;
    if let Some(field) = config.keys().find(|k| !EXEC_FIELDS.contains(&k.as_str())) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("the exec option {field:?} is not available in this terminal"),
        ));
    }
    if !matches!(
        config.get("Privileged"),
        None | Some(Value::Null) | Some(Value::Bool(false))
    ) {
        return Err((
            StatusCode::FORBIDDEN,
            "a privileged exec is not available in this terminal".into(),
        ));
    }
    serde_json::to_vec(&config)
        .map(Bytes::from)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// A body either held whole or streamed from the other side.
enum GuardBody {
    Full(Option<Bytes>),
    Stream(Incoming),
}

impl GuardBody {
    fn empty() -> GuardBody {
        GuardBody::Full(None)
    }

    fn full(bytes: impl Into<Bytes>) -> GuardBody {
        let bytes = bytes.into();
        GuardBody::Full((!bytes.is_empty()).then_some(bytes))
    }
}

impl Body for GuardBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            GuardBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            GuardBody::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GuardBody::Full(bytes) => bytes.is_none(),
            GuardBody::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GuardBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            GuardBody::Stream(body) => body.size_hint(),
        }
    }
}

/// Why a body could not be read whole.
enum ReadError {
    TooBig,
    Broken(hyper::Error),
    Timeout,
}

/// `body` read whole, when it is at most `limit` bytes and ends `within` the time given.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    within: Duration,
) -> std::result::Result<Bytes, ReadError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(ReadError::TooBig);
    }
    let read = async {
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.map_err(ReadError::Broken)?.into_data() {
                if out.len() + data.len() > limit {
                    return Err(ReadError::TooBig);
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or(Err(ReadError::Timeout))
}

/// An answer in the engine's style: `{"message": …}` as JSON.
fn message(status: StatusCode, text: &str) -> Response<GuardBody> {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut response = Response::new(GuardBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn refused(method: &Method, path: &str) -> Response<GuardBody> {
    message(
        StatusCode::FORBIDDEN,
        &format!(
            "this terminal may only look at, signal, restart and exec into its own lab's \
             containers: {method} {path} is not allowed"
        ),
    )
}

fn no_such_container(reference: &str) -> Response<GuardBody> {
    message(
        StatusCode::NOT_FOUND,
        &format!("No such container: {reference}"),
    )
}

/// Headers that belong to one connection, not to the request or answer passed on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `from` without the hop-by-hop headers (and without the request-only ones a rewritten body
/// makes wrong: `content-length`, `expect`).
fn passed_headers(from: &HeaderMap, request: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in from {
        let name_text = name.as_str();
        let skip = HOP_BY_HOP.contains(&name_text)
            || (request && matches!(name_text, "content-length" | "expect"));
        if !skip {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Whether the client asks to take the connection over (`Connection: Upgrade`, `Upgrade: tcp`).
fn wants_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

impl Shared {
    /// Sends `request` to the engine on a fresh connection and returns its answer's head (its
    /// body streams on); `head_timeout` bounds the wait for the head. An error is the answer to
    /// give the client (502 unreachable or broken, 504 too slow).
    async fn send(
        &self,
        request: Request<GuardBody>,
        head_timeout: Option<Duration>,
    ) -> std::result::Result<Response<Incoming>, Response<GuardBody>> {
        let engine = self.engine.display();
        let unreachable = |reason: String| {
            message(
                StatusCode::BAD_GATEWAY,
                &format!("the Docker engine could not be reached at {engine}: {reason}"),
            )
        };
        let stream =
            match tokio::time::timeout(ENGINE_CONNECT_TIMEOUT, UnixStream::connect(&self.engine))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(unreachable(e.to_string())),
                Err(_) => return Err(unreachable("no connection within 5 s".into())),
            };
        let (mut sender, connection) = match tokio::time::timeout(
            ENGINE_CONNECT_TIMEOUT,
            hyper::client::conn::http1::handshake::<_, GuardBody>(TokioIo::new(stream)),
        )
        .await
        {
            Ok(Ok(handshake)) => handshake,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable("no HTTP handshake within 5 s".into())),
        };
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection.with_upgrades() => {}
                _ = cancel.cancelled() => {}
            }
        });
        let answer = sender.send_request(request);
        let answer = match head_timeout {
            Some(limit) => match tokio::time::timeout(limit, answer).await {
                Ok(answer) => answer,
                Err(_) => {
                    return Err(message(
                        StatusCode::GATEWAY_TIMEOUT,
                        &format!(
                            "the Docker engine did not answer within {} s",
                            limit.as_secs()
                        ),
                    ));
                }
            },
            None => answer.await,
        };
        answer.map_err(|e| {
            message(
                StatusCode::BAD_GATEWAY,
                &format!("the Docker engine at {engine} broke off the request: {e}"),
            )
        })
    }

    /// The id of the container `reference` when the engine says it carries this session's label,
    /// `Ok(None)` when it does not or does not exist (the same to the participant); an error is
    /// the answer to give.
    async fn ours(
        &self,
        reference: &str,
    ) -> std::result::Result<Option<String>, Response<GuardBody>> {
        // Unversioned: the engine's own API version, whatever the participant's client speaks.
        let request = engine_request(
            Method::GET,
            &format!("/containers/{reference}/json"),
            HeaderMap::new(),
            GuardBody::empty(),
        )
        .map_err(|e| message(StatusCode::BAD_REQUEST, &e))?;
        let response = self.send(request, Some(HEAD_TIMEOUT)).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let failed = |why: String| {
            message(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "the Docker engine could not say whether {reference} is one of this lab's \
                     containers: {why}"
                ),
            )
        };
        if status != StatusCode::OK {
            return Err(failed(format!("it answered {status}")));
        }
        let body = match read_body(response.into_body(), MAX_INSPECT_ANSWER, HEAD_TIMEOUT).await {
            Ok(body) => body,
            Err(ReadError::TooBig) => return Err(failed("its answer is too big".into())),
            Err(ReadError::Timeout) => return Err(failed("its answer did not end in time".into())),
            Err(ReadError::Broken(e)) => return Err(failed(e.to_string())),
        };
        let inspect: Value = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("its answer is not JSON: {e}")))?;
        let labels = inspect.pointer("/Config/Labels");
        let label = labels
            .and_then(|labels| labels.get(super::labels::SESSION))
            .and_then(Value::as_str);
        // The terminal itself is not one to stop, kill or exec into from inside it.
        let terminal = labels.is_some_and(|labels| labels.get(super::labels::TERMINAL).is_some());
        if label != Some(self.session.as_str()) || terminal {
            return Ok(None);
        }
        match inspect.get("Id").and_then(Value::as_str) {
            Some(id) if is_name(id) => Ok(Some(id.to_string())),
            _ => Err(failed("its answer has no container id".into())),
        }
    }

    fn knows_exec(&self, id: &str) -> bool {
        self.execs.lock().expect("exec ids lock").knows(id)
    }

    fn remember_exec(&self, id: &str) {
        self.execs.lock().expect("exec ids lock").remember(id);
    }
}

/// A request to the engine for `path_and_query` with `headers` (a `Host` added when missing: the
/// engine's HTTP server wants one); an error says the target is not a valid request target (it is
/// built from checked segments and a parsed or re-encoded query, so it is one).
fn engine_request(
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: GuardBody,
) -> std::result::Result<Request<GuardBody>, String> {
    let uri = path_and_query
        .parse::<hyper::Uri>()
        .map_err(|e| format!("{path_and_query} cannot be passed on to the Docker engine: {e}"))?;
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    if !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("docker"));
    }
    Ok(request)
}

/// Answers one request: refused, or checked and forwarded to the engine with its answer streamed
/// back (an exec start's connection joined to the engine's both ways).
async fn handle(shared: &Shared, mut request: Request<Incoming>) -> Response<GuardBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = route(&method, &path);
    if route == Route::Refused {
        // The body first: answered before it arrived, the client's write of it breaks, and the
        // docker CLI says "broken pipe" instead of why (`docker run`'s create, for one).
        let _ = read_body(request.into_body(), MAX_REQUEST_BODY, CLIENT_TIMEOUT).await;
        return refused(&method, &path);
    }
    let upgrade = matches!(
        route,
        Route::Exec {
            op: ExecOp::Start,
            ..
        }
    ) && wants_upgrade(request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_REQUEST_BODY, CLIENT_TIMEOUT).await {
        Ok(body) => body,
        Err(ReadError::TooBig) => {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request's body is over {} KiB", MAX_REQUEST_BODY / 1024),
            );
        }
        Err(ReadError::Timeout) => {
            return message(
                StatusCode::REQUEST_TIMEOUT,
                "the request's body did not arrive in time",
            );
        }
        Err(ReadError::Broken(e)) => {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("the request's body could not be read: {e}"),
            );
        }
    };
    if !body.is_empty() && !route.takes_body() {
        return message(
            StatusCode::BAD_REQUEST,
            &format!("{method} {path} takes no request body here"),
        );
    }
    let query = parts.uri.query();
    let with_query = |target: String, query: Option<&str>| match query {
        Some(query) => format!("{target}?{query}"),
        None => target,
    };
    let target = match &route {
        Route::Plain { path } => with_query(path.clone(), query),
        Route::List { path } => match with_session_filter(query, &shared.session) {
            Ok(query) => with_query(path.clone(), Some(&query)),
            Err((status, text)) => return message(status, &text),
        },
        Route::Container {
            version,
            reference,
            op,
        } => match shared.ours(reference).await {
            Ok(Some(id)) => {
                with_query(format!("{version}/containers/{id}/{}", op.segment()), query)
            }
            Ok(None) => return no_such_container(reference),
            Err(answer) => return answer,
        },
        Route::Exec { version, id, op } => {
            if !shared.knows_exec(id) {
                return message(
                    StatusCode::NOT_FOUND,
                    &format!("No such exec instance: {id}"),
                );
            }
            with_query(format!("{version}/exec/{id}/{}", op.segment()), query)
        }
        Route::Refused => return refused(&method, &path),
    };
    let exec_create = matches!(
        route,
        Route::Container {
            op: ContainerOp::Exec,
            ..
        }
    );
    let body = if exec_create && !body.is_empty() {
        match checked_exec_config(&body) {
            Ok(body) => body,
            Err((status, text)) => return message(status, &text),
        }
    } else {
        body
    };
    let mut headers = passed_headers(&parts.headers, true);
    if !body.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let protocol = parts
            .headers
            .get(header::UPGRADE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("tcp"));
        headers.insert(header::UPGRADE, protocol);
    }
    let outgoing = match engine_request(method, &target, headers, GuardBody::full(body)) {
        Ok(outgoing) => outgoing,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e),
    };
    let mut response = match shared.send(outgoing, route.head_timeout(query)).await {
        Ok(response) => response,
        Err(answer) => return answer,
    };
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return message(
                StatusCode::BAD_GATEWAY,
                "the Docker engine switched protocols on a request that did not ask to",
            );
        };
        let engine_upgrade = hyper::upgrade::on(&mut response);
        let cancel = shared.cancel.clone();
        tokio::spawn(async move {
            let joined = async {
                let (client, engine) = tokio::time::timeout(HEAD_TIMEOUT, async {
                    tokio::try_join!(client_upgrade, engine_upgrade)
                })
                .await
                .ok()?
                .ok()?;
                let (mut client, mut engine) = (TokioIo::new(client), TokioIo::new(engine));
                tokio::io::copy_bidirectional(&mut client, &mut engine)
                    .await
                    .ok()
            };
            tokio::select! {
                _ = joined => {}
                _ = cancel.cancelled() => {}
            }
        });
        let mut answer = Response::new(GuardBody::empty());
        *answer.status_mut() = status;
        *answer.headers_mut() = passed_headers(response.headers(), false);
        for name in [header::CONNECTION, header::UPGRADE] {
            if let Some(value) = response.headers().get(&name) {
                answer.headers_mut().insert(name, value.clone());
            }
        }
        return answer;
    }
    let headers = passed_headers(response.headers(), false);
    let body = if exec_create {
        let body = match read_body(response.into_body(), MAX_EXEC_ANSWER, HEAD_TIMEOUT).await {
            Ok(body) => body,
            Err(_) => {
                return message(
                    StatusCode::BAD_GATEWAY,
                    "the Docker engine's answer to creating the exec could not be read",
                );
            }
        };
        if status.is_success() {
            let created: Option<Value> = serde_json::from_slice(&body).ok();
            if let Some(id) = created
                .as_ref()
                .and_then(|c| c.get("Id"))
                .and_then(Value::as_str)
            {
                shared.remember_exec(id);
            }
        }
        GuardBody::full(body)
    } else {
        GuardBody::Stream(response.into_body())
    };
    let mut answer = Response::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    if exec_create {
        // The length of the body as read (the engine's header may have said chunked).
        answer.headers_mut().remove(header::CONTENT_LENGTH);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Route {
        route(&Method::GET, path)
    }

    fn post(path: &str) -> Route {
        route(&Method::POST, path)
    }

    fn container(version: &str, reference: &str, op: ContainerOp) -> Route {
        Route::Container {
            version: version.into(),
            reference: reference.into(),
            op,
        }
    }

    #[test]
    fn ping_and_version_pass_with_or_without_an_api_version() {
        for (method, path, to) in [
            (Method::GET, "/_ping", "/_ping"),
            (Method::HEAD, "/_ping", "/_ping"),
            (Method::GET, "/v1.41/_ping", "/v1.41/_ping"),
            (Method::HEAD, "/v1.47/_ping", "/v1.47/_ping"),
            (Method::GET, "/version", "/version"),
            (Method::GET, "/v1.24/version", "/v1.24/version"),
            (Method::GET, "/v1/version", "/v1/version"),
        ] {
            assert_eq!(
                route(&method, path),
                Route::Plain { path: to.into() },
                "{method} {path}"
            );
        }
        assert_eq!(route(&Method::POST, "/_ping"), Route::Refused);
        assert_eq!(route(&Method::HEAD, "/version"), Route::Refused);
        assert_eq!(get("/v1.41.2/version"), Route::Refused);
        assert_eq!(get("/v/version"), Route::Refused);
        assert_eq!(get("/vX.1/version"), Route::Refused);
        assert_eq!(get("/v1.41/v1.41/version"), Route::Refused);
    }

    #[test]
    fn the_container_list_passes() {
        assert_eq!(
            get("/containers/json"),
            Route::List {
                path: "/containers/json".into()
            }
        );
        assert_eq!(
            get("/v1.43/containers/json"),
            Route::List {
                path: "/v1.43/containers/json".into()
            }
        );
        assert_eq!(post("/containers/json"), Route::Refused);
    }

    #[test]
    fn each_allowed_container_operation() {
        use ContainerOp::*;
        for (method, op) in [
            (Method::GET, Inspect),
            (Method::GET, Logs),
            (Method::GET, Top),
            (Method::GET, Stats),
            (Method::GET, Archive),
            (Method::HEAD, Archive),
            (Method::POST, Kill),
            (Method::POST, Restart),
            (Method::POST, Start),
            (Method::POST, Stop),
            (Method::POST, Wait),
            (Method::POST, Exec),
        ] {
            let path = format!("/containers/lab-runner-1a2b-part2/{}", op.segment());
            assert_eq!(
                route(&method, &path),
                container("", "lab-runner-1a2b-part2", op),
                "{method} {path}"
            );
            let versioned = format!("/v1.41{path}");
            assert_eq!(
                route(&method, &versioned),
                container("/v1.41", "lab-runner-1a2b-part2", op),
                "{method} {versioned}"
            );
        }
        // An id, and a name with dots and underscores.
        let id = "4f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c";
        assert_eq!(
            post(&format!("/containers/{id}/kill")),
            container("", id, Kill)
        );
        assert_eq!(
            get("/containers/a.b_c-1/logs"),
            container("", "a.b_c-1", Logs)
        );
    }

    #[test]
    fn other_container_operations_and_methods_are_refused() {
        for (method, path) in [
            (Method::POST, "/containers/create"),
            (Method::POST, "/v1.41/containers/create"),
            (Method::DELETE, "/containers/ours"),
            (Method::POST, "/containers/ours/update"),
            (Method::POST, "/containers/ours/attach"),
            (Method::GET, "/containers/ours/attach/ws"),
            (Method::POST, "/containers/ours/rename"),
            (Method::POST, "/containers/ours/pause"),
            (Method::PUT, "/containers/ours/archive"),
            (Method::GET, "/containers/ours/export"),
            (Method::GET, "/containers/ours/changes"),
            (Method::POST, "/containers/ours/resize"),
            (Method::GET, "/containers/ours/kill"),
            (Method::POST, "/containers/ours/logs"),
            (Method::HEAD, "/containers/ours/json"),
            (Method::POST, "/containers/prune"),
            (Method::GET, "/containers/ours"),
            (Method::GET, "/containers/ours/json/extra"),
            (Method::GET, "/images/json"),
            (Method::POST, "/images/create"),
            (Method::GET, "/networks"),
            (Method::GET, "/volumes"),
            (Method::GET, "/info"),
            (Method::GET, "/events"),
            (Method::GET, "/system/df"),
            (Method::POST, "/build"),
            (Method::GET, "/swarm"),
            (Method::GET, "/plugins"),
            (Method::POST, "/exec/abc/stop"),
            (Method::GET, "/exec/abc/start"),
            (Method::POST, "/exec/abc"),
            (Method::GET, "/"),
            (Method::GET, ""),
            (Method::GET, "*"),
        ] {
            assert_eq!(route(&method, path), Route::Refused, "{method} {path}");
        }
    }

    #[test]
    fn exec_operations_pass_to_be_checked() {
        for (method, segment, op) in [
            (Method::POST, "start", ExecOp::Start),
            (Method::GET, "json", ExecOp::Inspect),
            (Method::POST, "resize", ExecOp::Resize),
        ] {
            assert_eq!(
                route(&method, &format!("/v1.41/exec/abc123/{segment}")),
                Route::Exec {
                    version: "/v1.41".into(),
                    id: "abc123".into(),
                    op
                }
            );
        }
    }

    #[test]
    fn dot_segments_empty_segments_and_trailing_slashes_are_refused() {
        for path in [
            "/containers/ours/../../images/create",
            "/containers/../containers/ours/kill",
            "/containers/ours/./kill",
            "/containers/./kill",
            "/containers/../kill",
            "/containers/ours/kill/",
            "/containers/json/",
            "/containers//kill",
            "//containers/ours/kill",
            "/v1.41//containers/ours/kill",
            "/_ping/",
            "containers/ours/kill",
        ] {
            assert_eq!(post(path), Route::Refused, "POST {path}");
            assert_eq!(get(path), Route::Refused, "GET {path}");
        }
    }

    #[test]
    fn percent_encoding_gets_around_nothing() {
        for path in [
            // A slash, a backslash or a NUL inside the reference.
            "/containers/ours%2F..%2F..%2Fimages%2Fcreate/kill",
            "/containers/ours%2fkill/kill",
            "/containers/a%5Cb/kill",
            "/containers/ours%00/kill",
            // Dot segments, encoded.
            "/containers/%2e%2e/kill",
            "/containers/%2E/kill",
            "/containers/ours/%2e%2e/kill",
            // Bad escapes, and bytes that are not UTF-8.
            "/containers/ours%/kill",
            "/containers/ours%zz/kill",
            "/containers/ours%2/kill",
            "/containers/%ff/kill",
            // References that are not names.
            "/containers/-ours/kill",
            "/containers/.ours/kill",
            "/containers/our%20s/kill",
            "/containers/ours+x/kill",
            "/containers/%2Fours/kill",
            // A refused operation, encoded.
            "/containers/ours/%75pdate",
            "/containers/cre%61te",
        ] {
            assert_eq!(post(path), Route::Refused, "POST {path}");
        }
        // What decodes to an allowed request is that request, and is forwarded as it decoded.
        assert_eq!(
            post("/containers/%6furs/%6Bill"),
            container("", "ours", ContainerOp::Kill)
        );
        assert_eq!(
            get("/v1%2E41/_ping"),
            Route::Plain {
                path: "/v1.41/_ping".into()
            }
        );
    }

    #[test]
    fn exec_and_container_references_are_single_plain_segments() {
        assert_eq!(post("/exec/ab%2Fcd/start"), Route::Refused);
        assert_eq!(post("/exec/../start"), Route::Refused);
        assert_eq!(post("/exec/abc/start/"), Route::Refused);
        assert!(is_name("abc"));
        assert!(is_name("lab-runner-1a2b-part2"));
        assert!(!is_name(""));
        assert!(!is_name(".."));
        assert!(!is_name("a/b"));
        assert!(!is_name(&"a".repeat(257)));
    }

    fn filters_of(query: &str) -> Value {
        let pairs = query_values(query).unwrap();
        let filters: Vec<&(String, String)> =
            pairs.iter().filter(|(k, _)| k == "filters").collect();
        assert_eq!(filters.len(), 1, "{query}");
        serde_json::from_str(&filters[0].1).unwrap()
    }

    #[test]
    fn the_list_gets_the_session_label_when_there_are_no_filters() {
        for query in [None, Some(""), Some("all=1"), Some("filters=")] {
            let rewritten = with_session_filter(query, "s1").unwrap();
            assert_eq!(
                filters_of(&rewritten),
                serde_json::json!({"label": {"io.lab-runner.session=s1": true}}),
                "{query:?}"
            );
        }
        let rewritten = with_session_filter(Some("all=1&limit=5"), "s1").unwrap();
        assert!(
            rewritten.starts_with("all=1&limit=5&filters="),
            "{rewritten}"
        );
    }

    #[test]
    fn the_list_keeps_the_participants_other_filters() {
        // The docker CLI's form: sets of values.
        let cli = query_encode(r#"{"name":{"web":true},"status":{"running":true}}"#);
        let rewritten = with_session_filter(Some(&format!("all=1&filters={cli}")), "s1").unwrap();
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({
                "name": {"web": true},
                "status": {"running": true},
                "label": {"io.lab-runner.session=s1": true},
            })
        );
        // bollard's form: lists of values.
        let bollard = query_encode(r#"{"status":["running"]}"#);
        let rewritten = with_session_filter(Some(&format!("filters={bollard}")), "s1").unwrap();
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({
                "status": ["running"],
                "label": ["io.lab-runner.session=s1"],
            })
        );
    }

    #[test]
    fn the_list_adds_the_session_label_to_the_participants_labels() {
        let list = query_encode(r#"{"label":["io.lab-runner.part=p1"]}"#);
        let rewritten = with_session_filter(Some(&format!("filters={list}")), "s1").unwrap();
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({"label": ["io.lab-runner.part=p1", "io.lab-runner.session=s1"]})
        );
        let set = query_encode(r#"{"label":{"io.lab-runner.session=s2":true}}"#);
        let rewritten = with_session_filter(Some(&format!("filters={set}")), "s1").unwrap();
        // Both must hold, so another session's label lists nothing.
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({"label": {
                "io.lab-runner.session=s2": true,
                "io.lab-runner.session=s1": true,
            }})
        );
        // A `false` in the set cannot switch the session's label off.
        let off = query_encode(r#"{"label":{"io.lab-runner.session=s1":false}}"#);
        let rewritten = with_session_filter(Some(&format!("filters={off}")), "s1").unwrap();
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({"label": {"io.lab-runner.session=s1": true}})
        );
    }

    #[test]
    fn the_list_reads_its_query_as_the_engine_does() {
        // `+` is a space and escapes are decoded, in the key too: `filter%73` is `filters`.
        let json = r#"{"name":["a b"]}"#.replace(' ', "+");
        let rewritten =
            with_session_filter(Some(&format!("filter%73={json}&x=%41")), "s1").unwrap();
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({"name": ["a b"], "label": ["io.lab-runner.session=s1"]})
        );
        assert!(rewritten.starts_with("x=A&"), "{rewritten}");
        // Only the first `filters` counts, as in the engine; the second is dropped.
        let first = query_encode(r#"{"status":["running"]}"#);
        let second = query_encode(r#"{"label":["x=y"]}"#);
        let rewritten =
            with_session_filter(Some(&format!("filters={first}&filters={second}")), "s1").unwrap();
        assert_eq!(
            filters_of(&rewritten),
            serde_json::json!({"status": ["running"], "label": ["io.lab-runner.session=s1"]})
        );
    }

    #[test]
    fn the_list_refuses_what_it_cannot_restrict() {
        for (filters, status) in [
            ("[1,2]", StatusCode::BAD_REQUEST),
            ("not json", StatusCode::BAD_REQUEST),
            (r#"{"label":"x"}"#, StatusCode::BAD_REQUEST),
            (r#"{"before":["other"]}"#, StatusCode::FORBIDDEN),
            (r#"{"since":{"other":true}}"#, StatusCode::FORBIDDEN),
        ] {
            let query = format!("filters={}", query_encode(filters));
            let (got, _) = with_session_filter(Some(&query), "s1").unwrap_err();
            assert_eq!(got, status, "{filters}");
        }
        let (got, _) = with_session_filter(Some("filters=%zz"), "s1").unwrap_err();
        assert_eq!(got, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn exec_creation_is_checked_and_written_again() {
        // bollard's, and the docker CLI's (every field, `Detach` among them).
        for fine in [
            &br#"{"AttachStdout":true,"Cmd":["sh"],"Tty":false,"Privileged":false}"#[..],
            br#"{"User":"","Privileged":false,"Tty":true,"ConsoleSize":[24,80],"AttachStdin":true,
                "AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"",
                "Env":null,"WorkingDir":"","Cmd":["sh"]}"#,
        ] {
            let written: Value =
                serde_json::from_slice(&checked_exec_config(fine).unwrap()).unwrap();
            assert_eq!(written, serde_json::from_slice::<Value>(fine).unwrap());
        }
        for body in [
            &br#"{"Cmd":["sh"],"Privileged":true}"#[..],
            br#"{"Cmd":["sh"],"privileged":true}"#,
            br#"{"Cmd":["sh"],"Privileged":1}"#,
            br#"{"Cmd":["sh"],"Privileged":false,"Privileged":true}"#,
            br#"{"Cmd":["sh"],"HostConfig":{}}"#,
            br#"["sh"]"#,
            b"not json",
        ] {
            assert!(
                checked_exec_config(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn stop_and_restart_wait_for_their_grace() {
        let stop = container("", "ours", ContainerOp::Stop);
        assert_eq!(
            stop.head_timeout(Some("t=10")),
            Some(HEAD_TIMEOUT + Duration::from_secs(10))
        );
        assert_eq!(
            stop.head_timeout(None),
            Some(HEAD_TIMEOUT + DEFAULT_STOP_GRACE)
        );
        assert_eq!(stop.head_timeout(Some("t=-1")), None);
        assert_eq!(
            container("", "ours", ContainerOp::Wait).head_timeout(None),
            None
        );
        assert_eq!(
            container("", "ours", ContainerOp::Kill).head_timeout(Some("signal=USR1")),
            Some(HEAD_TIMEOUT)
        );
    }

    #[test]
    fn the_engine_must_be_a_local_unix_socket() {
        assert_eq!(
            engine_socket_of("unix:///var/run/docker.sock").unwrap(),
            PathBuf::from("/var/run/docker.sock")
        );
        for host in [
            "tcp://10.0.0.1:2375",
            "ssh://me@host",
            "npipe:////./pipe/x",
            "unix://rel",
        ] {
            let e = engine_socket_of(host).unwrap_err().to_string();
            assert!(e.contains("local unix-socket engine"), "{e}");
        }
        let e = check_engine(Path::new("tcp://10.0.0.1:2375")).unwrap_err();
        assert!(e.to_string().contains("unix-socket engine"), "{e}");
    }

    // A fake engine: the one place one is right, since the real engine's other containers cannot
    // be staged safely in a unit test.

    const SESSION: &str = "s1";
    const OURS_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn inspect(id: &str, session: &str) -> String {
        serde_json::json!({
            "Id": id,
            "Config": {"Labels": {super::super::labels::SESSION: session}},
        })
        .to_string()
    }

    /// Serves the fake engine on `socket`; every request's method, path and query is noted in
    /// `seen`.
    async fn fake_engine(socket: PathBuf, seen: Arc<Mutex<Vec<String>>>) {
        let listener = UnixListener::bind(&socket).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let method = request.method().clone();
                        let full = request.uri().path().to_string();
                        let query = request.uri().query().unwrap_or("").to_string();
                        seen.lock().unwrap().push(format!("{method} {full}"));
                        // Routed without its API version, like the engine.
                        let path = match full.strip_prefix("/v1.41/") {
                            Some(rest) => format!("/{rest}"),
                            None => full.clone(),
                        };
                        let reply = |status: u16, body: String| {
                            let mut response = Response::new(GuardBody::full(body));
                            *response.status_mut() = StatusCode::from_u16(status).unwrap();
                            response
                        };
                        let ours_kill = format!("/containers/{OURS_ID}/kill");
                        let ours_exec = format!("/containers/{OURS_ID}/exec");
                        let response = match (method.as_str(), path.as_str()) {
                            ("GET", "/_ping") => reply(200, "OK".into()),
                            ("GET", "/containers/json") => reply(200, query),
                            ("GET", "/containers/ours/json") => {
                                reply(200, inspect(OURS_ID, SESSION))
                            }
                            ("GET", "/containers/theirs/json") => {
                                reply(200, inspect("fedcba9876543210", "s2"))
                            }
                            ("GET", "/containers/unlabelled/json") => {
                                reply(200, r#"{"Id":"aaaa","Config":{"Labels":null}}"#.into())
                            }
                            ("GET", p) if p.starts_with("/containers/") && p.ends_with("/json") => {
                                reply(404, r#"{"message":"No such container"}"#.into())
                            }
                            ("POST", p) if p == ours_kill => reply(204, String::new()),
                            ("POST", p) if p == ours_exec => reply(201, r#"{"Id":"abc"}"#.into()),
                            ("POST", "/exec/abc/start") => {
                                let upgrade = hyper::upgrade::on(&mut request);
                                tokio::spawn(async move {
                                    let upgraded = TokioIo::new(upgrade.await.unwrap());
                                    let (mut read, mut write) = tokio::io::split(upgraded);
                                    let _ = tokio::io::copy(&mut read, &mut write).await;
                                });
                                let mut response = reply(101, String::new());
                                let headers = response.headers_mut();
                                headers.insert(
                                    header::CONNECTION,
                                    HeaderValue::from_static("Upgrade"),
                                );
                                headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
                                response
                            }
                            _ => reply(500, format!("fake engine: unexpected {method} {path}")),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    /// Sends one request to the guard at `socket`; the answer's status, body, and the
    /// connection when it was taken over.
    async fn send(
        socket: &Path,
        method: Method,
        path: &str,
        body: &str,
        upgrade: bool,
    ) -> (StatusCode, String, Option<hyper::upgrade::Upgraded>) {
        let stream = UnixStream::connect(socket).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, GuardBody>(TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection.with_upgrades());
        let mut request = Request::new(GuardBody::full(body.to_string()));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap();
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("docker"));
        if upgrade {
            let headers = request.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        }
        let mut response = sender.send_request(request).await.unwrap();
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
            return (status, String::new(), Some(upgraded));
        }
        let Ok(body) = read_body(response.into_body(), 1 << 20, Duration::from_secs(5)).await
        else {
            panic!("the guard's answer to {path} could not be read");
        };
        (status, String::from_utf8_lossy(&body).into_owned(), None)
    }

    #[tokio::test]
    async fn the_guard_forwards_the_sessions_requests_and_refuses_the_rest() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("engine.sock");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fake = tokio::spawn(fake_engine(engine.clone(), seen.clone()));
        for _ in 0..100 {
            if engine.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let socket = dir.path().join("guard.sock");
        // A stale socket is replaced.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let guard = ApiGuard::start(&socket, &engine, SESSION).await.unwrap();
        assert_eq!(guard.socket(), socket);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o666);
        }

        let (status, body, _) = send(&socket, Method::GET, "/_ping", "", false).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));

        // The kill reaches the engine on the id the check found, with the version kept.
        let (status, _, _) = send(
            &socket,
            Method::POST,
            "/v1.41/containers/ours/kill?signal=USR1",
            "",
            false,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            seen.lock()
                .unwrap()
                .contains(&format!("POST /v1.41/containers/{OURS_ID}/kill")),
            "{:?}",
            seen.lock().unwrap()
        );
        let (status, _, _) = send(
            &socket,
            Method::POST,
            "/containers/ours/kill?signal=USR1",
            "",
            false,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        for other in ["theirs", "nobody", "unlabelled"] {
            let (status, body, _) = send(
                &socket,
                Method::POST,
                &format!("/containers/{other}/kill"),
                "",
                false,
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["message"], format!("No such container: {other}"));
        }

        let (status, body, _) = send(
            &socket,
            Method::POST,
            "/v1.41/containers/create",
            "{}",
            false,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body["message"],
            "this terminal may only look at, signal, restart and exec into its own lab's \
             containers: POST /v1.41/containers/create is not allowed"
        );

        // A body where none belongs, and a privileged exec.
        let (status, _, _) = send(
            &socket,
            Method::POST,
            "/containers/ours/start",
            "{\"x\":1}",
            false,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = send(
            &socket,
            Method::POST,
            "/containers/ours/exec",
            r#"{"Cmd":["sh"],"Privileged":true}"#,
            false,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // An exec's start before it was created here, then its creation and start.
        let (status, body, _) = send(&socket, Method::POST, "/exec/abc/start", "{}", true).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("No such exec instance: abc"), "{body}");
        let (status, body, _) = send(
            &socket,
            Method::POST,
            "/containers/ours/exec",
            r#"{"AttachStdin":true,"AttachStdout":true,"Cmd":["cat"]}"#,
            false,
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::CREATED, r#"{"Id":"abc"}"#)
        );
        let (status, _, upgraded) = send(
            &socket,
            Method::POST,
            "/exec/abc/start",
            r#"{"Detach":false,"Tty":false}"#,
            true,
        )
        .await;
        assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
        let mut stream = TokioIo::new(upgraded.unwrap());
        stream.write_all(b"hello through the guard").await.unwrap();
        let mut echoed = [0u8; 23];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, b"hello through the guard");
        let (status, _, _) = send(&socket, Method::POST, "/exec/def/start", "{}", true).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The list reaches the engine with the session's label added to the participant's filter.
        let filters = query_encode(r#"{"status":{"running":true}}"#);
        let (status, query, _) = send(
            &socket,
            Method::GET,
            &format!("/v1.41/containers/json?all=1&filters={filters}"),
            "",
            false,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            filters_of(&query),
            serde_json::json!({
                "status": {"running": true},
                "label": {"io.lab-runner.session=s1": true},
            })
        );

        let seen = seen.lock().unwrap().clone();
        assert!(
            !seen
                .iter()
                .any(|r| r.contains("create") || r.contains("theirs/kill")),
            "{seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|r| r.contains("fedcba") || r.contains("/exec/def")),
            "{seen:?}"
        );

        guard.stop().await;
        assert!(!socket.exists());
        fake.abort();
    }

    #[tokio::test]
    async fn an_unreachable_engine_is_a_502() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("engine.sock");
        // A socket file with nobody behind it.
        drop(std::os::unix::net::UnixListener::bind(&engine).unwrap());
        let socket = dir.path().join("guard.sock");
        let guard = ApiGuard::start(&socket, &engine, SESSION).await.unwrap();
        let (status, body, _) = send(&socket, Method::GET, "/_ping", "", false).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(body.contains("could not be reached"), "{body}");
        drop(guard);
        assert!(!socket.exists());
    }
}
