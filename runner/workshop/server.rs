//! The workshop server: HTTPS on the address the instructor gives (loopback when none is given).
//! Participants' `start --join` post their progress to `/join/<code>/progress`; the instructor's
//! dashboard (`/dashboard?key=…`) shows the room live from it. Every request but `/health` is
//! authenticated: the join code for progress, the instructor's key for the dashboard (both compared
//! in constant time); the `Host` header must name the server's own address; bodies are small and
//! every connection has a handshake and header timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures_util::stream::{Stream, StreamExt as _};
use serde::Deserialize;
use tokio::sync::watch;

use super::board::{Board, Refused};
use super::protocol::Batch;
use super::seats::Seat;
use super::tls::ServerIdentity;

/// The dashboard page, its script and style (inline: the CSP allows them by hash).
const PAGE: &str = include_str!("assets/dashboard.html");
pub(super) const SCRIPT: &str = include_str!("assets/dashboard.js");
pub(super) const STYLE: &str = include_str!("assets/dashboard.css");

/// The largest progress batch taken.
const MAX_BODY: usize = 64 * 1024;
/// How long a connection may take for its TLS handshake and its request's head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server knows: its secrets and the room's board.
#[derive(Clone)]
pub struct Workshop {
    pub code: String,
    pub key: String,
    /// `host:port` values the `Host` header may carry.
    pub hosts: Vec<String>,
    pub board: Arc<Mutex<Board>>,
    /// Bumped on every change of the board (dashboards wake on it).
    pub changed: watch::Sender<u64>,
    /// The seats on this machine, once they are ready (none without `--seats`).
    pub seats: Arc<std::sync::RwLock<Vec<Seat>>>,
    /// The part the seats are at.
    pub seats_part: Option<String>,
}

/// Serves HTTPS on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    identity: &ServerIdentity,
    workshop: Workshop,
) -> Result<()> {
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(super::tls::server_config(identity)?));
    let router = router(workshop);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await
            else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                // A seat's Chrome DevTools goes through as a WebSocket (`passthrough.rs`).
                .with_upgrades()
                .await;
        });
    }
}

fn router(workshop: Workshop) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/join/{code}/progress", post(progress))
        .route("/dashboard", get(dashboard))
        .route("/dashboard/state", get(state))
        .route("/dashboard/events", get(events))
        .route("/seats", get(seat_sheet))
        .route("/seat/{n}", any(seat_root))
        .route("/seat/{n}/", any(seat_page))
        .route("/seat/{n}/{*rest}", any(seat_page))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            workshop.clone(),
            guard,
        ))
        .with_state(workshop)
}

/// The dashboard's CSP: its own inline script and style (by hash), its own event stream.
fn csp() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            crate::web::security::source_hash(SCRIPT),
            crate::web::security::source_hash(STYLE)
        )
    });
    &CSP
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// Refuses a request for another host (DNS rebinding), and secures every answer.
async fn guard(State(workshop): State<Workshop>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut response = if workshop.hosts.iter().any(|h| h == host) {
        next.run(request).await
    } else {
        refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only at the address `lab-runner workshop up` printed",
        )
    };
    let headers = response.headers_mut();
    // A seat's page keeps the policy its own server gave it (its script, by hash).
    let own_policy = headers.remove(header::CONTENT_SECURITY_POLICY);
    crate::web::security::secure_headers_with(headers, csp());
    if let Some(policy) = own_policy {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=300"),
    );
    response
}

fn same(a: &str, b: &str) -> bool {
    crate::web::security::same(a.as_bytes(), b.as_bytes())
}

async fn progress(
    State(workshop): State<Workshop>,
    Path(code): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !same(&code, &workshop.code) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this is not the workshop's join code",
        );
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "not a progress batch"),
    };
    let taken = workshop
        .board
        .lock()
        .expect("board lock")
        .take(batch, Instant::now());
    match taken {
        Ok(()) => {
            workshop.changed.send_modify(|n| *n += 1);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(Refused::Full) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the workshop has as many participants as it takes",
        ),
        Err(Refused::Invalid(why)) => refuse(StatusCode::BAD_REQUEST, why),
    }
}

#[derive(Deserialize)]
struct Key {
    #[serde(default)]
    key: String,
}

fn instructor(workshop: &Workshop, key: &Key) -> Option<Response> {
    (!same(&key.key, &workshop.key)).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "the instructor's key is required: use the dashboard address `workshop up` printed",
        )
    })
}

async fn dashboard(State(workshop): State<Workshop>, Query(key): Query<Key>) -> Response {
    if let Some(refused) = instructor(&workshop, &key) {
        return refused;
    }
    let initial = serde_json::to_string(
        &workshop
            .board
            .lock()
            .expect("board lock")
            .view(Instant::now()),
    )
    .unwrap_or_else(|_| "null".into())
    .replace('<', "\\u003c");
    let html = PAGE
        .replace("{{style}}", STYLE)
        .replace("{{script}}", SCRIPT)
        .replace("{{initial}}", &initial);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn state(State(workshop): State<Workshop>, Query(key): Query<Key>) -> Response {
    if let Some(refused) = instructor(&workshop, &key) {
        return refused;
    }
    let view = workshop
        .board
        .lock()
        .expect("board lock")
        .view(Instant::now());
    axum::Json(view).into_response()
}

async fn events(State(workshop): State<Workshop>, Query(key): Query<Key>) -> Response {
    if let Some(refused) = instructor(&workshop, &key) {
        return refused;
    }
    Sse::new(board_stream(workshop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The board's view now, then after every change (changes that come while one is sent are one),
/// and once a second so the times on steps move.
fn board_stream(workshop: Workshop) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let changes = workshop.changed.subscribe();
    futures_util::stream::unfold(
        (workshop, changes, true),
        |(workshop, mut changes, first)| async move {
            if !first {
                let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
            }
            changes.mark_unchanged();
            let view = workshop
                .board
                .lock()
                .expect("board lock")
                .view(Instant::now());
            let data = serde_json::to_string(&view).unwrap_or_default();
            let event = SseEvent::default().event("board").data(data);
            Some((Ok(event), (workshop, changes, false)))
        },
    )
    .boxed()
}

/// The printable sheet of seat addresses (the instructor's key).
async fn seat_sheet(State(workshop): State<Workshop>, Query(key): Query<Key>) -> Response {
    if let Some(refused) = instructor(&workshop, &key) {
        return refused;
    }
    let seats = workshop.seats.read().expect("seats lock").clone();
    let host = workshop.hosts.first().cloned().unwrap_or_default();
    let part = workshop.seats_part.as_deref().unwrap_or("—");
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        super::sheet::html(&seats, &host, part),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::sheet::csp()),
    );
    response
}

/// Why a request for a seat is refused.
type SeatRefusal = (StatusCode, &'static str);

/// The seat with this number and the given secret, or the refusal.
fn seat_for(workshop: &Workshop, n: &str, request: &Request) -> Result<Seat, SeatRefusal> {
    let seat = n
        .parse::<usize>()
        .ok()
        .and_then(|n| {
            workshop
                .seats
                .read()
                .expect("seats lock")
                .iter()
                .find(|s| s.number == n)
                .cloned()
        })
        .ok_or((StatusCode::NOT_FOUND, "there is no such seat"))?;
    match super::passthrough::token_of(request) {
        Some(token) if same(&token, &seat.token) => Ok(seat),
        _ => Err((
            StatusCode::FORBIDDEN,
            "this seat's secret is required: use the whole address on your seat's card",
        )),
    }
}

/// `/seat/<n>?token=…` becomes `/seat/<n>/?token=…`, so the page's relative addresses are the seat's.
async fn seat_root(
    State(workshop): State<Workshop>,
    Path(n): Path<String>,
    request: Request,
) -> Response {
    if let Err((status, why)) = seat_for(&workshop, &n, &request) {
        return refuse(status, why);
    }
    let query = request.uri().query().unwrap_or("");
    let location = format!("/seat/{n}/?{query}");
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

/// Anything under `/seat/<n>/`: the seat's own page, passed through.
async fn seat_page(State(workshop): State<Workshop>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let Some((n, rest)) = path.strip_prefix("/seat/").and_then(|p| p.split_once('/')) else {
        return refuse(StatusCode::NOT_FOUND, "there is no such seat");
    };
    let seat = match seat_for(&workshop, n, &request) {
        Ok(seat) => seat,
        Err((status, why)) => return refuse(status, why),
    };
    let origins: Vec<String> = workshop
        .hosts
        .iter()
        .map(|h| format!("https://{h}"))
        .collect();
    super::passthrough::forward(seat.port, &format!("/{rest}"), request, &origins).await
}

/// The `host:port` values a request may name for a server at `addr`.
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{}", addr.port()));
        hosts.push(format!("127.0.0.1:{}", addr.port()));
    }
    hosts.dedup();
    hosts
}
