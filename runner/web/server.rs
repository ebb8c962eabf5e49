//! The HTTP server of the web face (axum, on 127.0.0.1 only): the page and its embedded assets, the
//! page state as JSON, the live changes as Server-Sent Events, the menu's actions as POSTs, and
//! (`start --web`) Chrome DevTools' WebSocket to the session's inspector ([`super::devtools`]).
//! Every route sits behind [`super::security::guard`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream, StreamExt as _};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::devtools::{self, Proxy};
use super::security::{self, Guard};
use super::shell::{self as page_shell, PageShell, ShellRefusal, ShellRequest};
use super::state::{Change, Shared};
use crate::session::inspector_link::InspectorLink;

/// Why an action was not taken.
pub enum Refusal {
    /// Not one of the menu's actions.
    Unknown,
    /// The session is not waiting for a choice now.
    Busy,
    /// A command runs in the page's main terminal (`--shell`).
    Terminal,
}

/// Takes a named action from the page (under the page state's lock).
pub type OnAction = Arc<dyn Fn(&str, &mut Shared) -> Result<(), Refusal> + Send + Sync>;

#[derive(Clone)]
struct App {
    shared: Arc<Mutex<Shared>>,
    on_action: OnAction,
    token: String,
    /// The terminal panel, with `start --web --shell`.
    shell: Option<Arc<PageShell>>,
}

/// The page and its assets, embedded in the binary.
const PAGE: &str = include_str!("assets/page.html");
/// The page's script and style, inline in the page (one request, no fetches before it is usable);
/// the CSP allows exactly these by their hashes (`security::csp`).
pub(super) const SCRIPT: &str = include_str!("assets/page.js");
pub(super) const STYLE: &str = include_str!("assets/page.css");
const ICON: &str = include_str!("assets/icon.svg");

/// How long the server waits for pages to take the last change when the session ends.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    /// Ends the connections that outlive a request (DevTools' WebSockets).
    ended: CancellationToken,
}

impl Server {
    /// Stops accepting, lets the pages' streams end (after [`Change::End`]) and waits for them,
    /// within [`FINISH_TIMEOUT`].
    pub async fn finish(&mut self) {
        self.ended.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(FINISH_TIMEOUT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ended.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Binds 127.0.0.1:`port` (0: a free one) and serves the page; with `inspector`, also DevTools'
/// WebSocket to the session's inspector at [`security::INSPECTOR_ROUTE`].
pub async fn serve(
    port: u16,
    token: String,
    shared: Arc<Mutex<Shared>>,
    on_action: OnAction,
    inspector: Option<InspectorLink>,
    shell: Option<Arc<PageShell>>,
) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("Failed to listen on 127.0.0.1:{port} for the browser guide"))?;
    let addr = listener
        .local_addr()
        .context("Failed to read the guide's bound address")?;
    let guard = Guard {
        token: token.clone(),
        port: addr.port(),
    };
    let app = App {
        shared,
        on_action,
        token,
        shell,
    };
    let ended = CancellationToken::new();
    let mut router = Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .route("/state", get(state))
        .route("/events", get(events))
        .route("/action", post(action))
        .route(
            "/shell",
            post(shell_route).layer(axum::extract::DefaultBodyLimit::max(page_shell::MAX_BODY)),
        )
        .with_state(app);
    if let Some(link) = inspector {
        router = router.merge(
            Router::new()
                .route(security::INSPECTOR_ROUTE, get(devtools::inspector))
                .with_state(Proxy {
                    link,
                    ended: ended.clone(),
                }),
        );
    }
    let router = router.layer(axum::middleware::from_fn_with_state(guard, security::guard));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(accept(listener, router, stopped));
    Ok(Server {
        addr,
        task: Some(task),
        stop: Some(stop),
        ended,
    })
}

/// How long a connection may take to send a request's head (a client that connects and says
/// nothing is dropped).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves connections until `stopped`, then lets the open ones finish (a page's stream ends after
/// [`Change::End`]). hyper directly, not `axum::serve`, for its header-read timeout. Each
/// connection may be upgraded (DevTools' WebSocket), which hyper-util's `GracefulShutdown` does not
/// take: each connection is told to finish itself, and the last one to end lets `accept` return.
async fn accept(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stopped: oneshot::Receiver<()>,
) {
    let shutdown = CancellationToken::new();
    // Every connection holds a sender: when all are dropped, every connection has ended.
    let (alive, mut all_ended) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        // No Nagle: an event's few bytes go out at once, not after the page's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            // DevTools' WebSocket (`/inspector`) takes the connection over after its 101.
            .with_upgrades();
        let shutdown = shutdown.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = shutdown.cancelled() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    shutdown.cancel();
    drop(alive);
    let _ = all_ended.recv().await;
}

/// How many of the log's latest entries the page carries in itself; the event stream's first state,
/// a moment later, brings the whole log (a long session's 400 entries made the page slow to parse).
const LOG_IN_PAGE: usize = 40;

async fn page(State(app): State<App>) -> Response {
    if let Some(shell) = &app.shell {
        shell.warm();
    }
    let mut snapshot = app.shared.lock().expect("page state lock").page.clone();
    let drop = snapshot.log.len().saturating_sub(LOG_IN_PAGE);
    snapshot.log.drain(..drop);
    // The state as of this request, in the page itself (a data block, never run), so the page is
    // usable before its event stream connects; `<` escaped so no text can close the element.
    let initial = serde_json::to_string(&snapshot)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c");
    // The state last, so nothing in it is taken for a placeholder.
    let html = PAGE
        .replace("{{style}}", STYLE)
        .replace("{{script}}", SCRIPT)
        .replace("{{token}}", &app.token)
        .replace("{{view}}", snapshot.view)
        .replace("{{initial}}", &initial);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    let (kind, body) = match name.as_str() {
        "icon.svg" => ("image/svg+xml", ICON),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn state(State(app): State<App>) -> Response {
    let snapshot = app.shared.lock().expect("page state lock").page.clone();
    axum::Json(snapshot).into_response()
}

fn sse(change: &Change) -> SseEvent {
    SseEvent::default().event(change.name()).data(change.data())
}

async fn events(State(app): State<App>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (snapshot, receiver) = {
        let shared = app.shared.lock().expect("page state lock");
        (
            Change::State(Box::new(shared.page.clone())),
            shared.changes.subscribe(),
        )
    };
    let first = stream::once(async move { Ok(sse(&snapshot)) });
    let shared = app.shared.clone();
    let rest = stream::unfold(receiver, move |mut receiver| {
        let shared = shared.clone();
        async move {
            let change = match receiver.recv().await {
                Ok(change) => change,
                // This page fell behind: everything anew.
                Err(RecvError::Lagged(_)) => Change::State(Box::new(
                    shared.lock().expect("page state lock").page.clone(),
                )),
                Err(RecvError::Closed) => return None,
            };
            Some((change, receiver))
        }
    })
    // The stream ends after the session's last change.
    .scan(false, |ended, change| {
        let go_on = !*ended;
        *ended = matches!(change, Change::End);
        std::future::ready(go_on.then(|| Ok(sse(&change))))
    });
    Sse::new(first.chain(rest)).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct ActionBody {
    action: String,
    /// With `"action": "answer"`: the answer to the question on the page.
    #[serde(default)]
    answer: Option<String>,
}

async fn action(State(app): State<App>, body: axum::body::Bytes) -> Response {
    let Ok(ActionBody { action, answer }) = serde_json::from_slice::<ActionBody>(&body) else {
        return (StatusCode::BAD_REQUEST, "send {\"action\": NAME} as JSON\n").into_response();
    };
    // An answer travels as one name to the view's handler, which alone knows whether it asks.
    let action = match (action.as_str(), answer) {
        ("answer", Some(text)) => format!("answer:{text}"),
        ("answer", None) => String::new(),
        _ if action.starts_with("answer:") => String::new(),
        _ => action,
    };
    let taken = {
        let mut shared = app.shared.lock().expect("page state lock");
        (app.on_action)(&action, &mut shared)
    };
    match taken {
        Ok(()) => (StatusCode::ACCEPTED, "ok\n").into_response(),
        Err(Refusal::Unknown) => (
            StatusCode::BAD_REQUEST,
            "not an action of this page's menu\n",
        )
            .into_response(),
        Err(Refusal::Busy) => (
            StatusCode::CONFLICT,
            "the session is busy: wait until the step's menu is offered again\n",
        )
            .into_response(),
        Err(Refusal::Terminal) => (
            StatusCode::CONFLICT,
            "a command still runs in the main terminal: wait for it to end, or press Ctrl-C\n",
        )
            .into_response(),
    }
}

/// The terminal panel's commands and Ctrl-C (`--shell` only).
async fn shell_route(
    State(app): State<App>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let Some(shell) = &app.shell else {
        return (
            StatusCode::NOT_FOUND,
            "this page has no terminal: the session was started without --shell \
             (`lab-runner start PART --web --shell`)\n",
        )
            .into_response();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a request to the terminal may be at most {} KiB: run a longer script from a file\n",
                    page_shell::MAX_BODY / 1024
                ),
            )
                .into_response();
        }
        Err(rejection) => {
            return (rejection.status(), format!("{}\n", rejection.body_text())).into_response();
        }
    };
    let request = match serde_json::from_slice::<ShellRequest>(&body) {
        Ok(request) => request,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{}; {e}\n", page_shell::USAGE),
            )
                .into_response();
        }
    };
    match shell.take(request) {
        Ok(done) => (StatusCode::ACCEPTED, format!("{done}\n")).into_response(),
        Err(ShellRefusal::Bad(why)) => {
            (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
        }
        Err(ShellRefusal::Busy(why)) => (StatusCode::CONFLICT, format!("{why}\n")).into_response(),
    }
}
