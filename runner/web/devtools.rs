//! Chrome DevTools through the page's own server: `GET /inspector?token=…` (a WebSocket upgrade)
//! is relayed, frame by frame, to the session's *current* inspector — the target that
//! `http://<the session's inspector_addr>/json/list` names at the moment DevTools connects. A
//! participant who reaches the session only through this server (a workshop seat) debugs with
//! their own Chrome without any inspector port being published to them.
//!
//! Safe by construction: the guard ([`super::security::guard`]) has checked the token, the `Host`
//! and the `Origin` (Chrome's DevTools page or this page only) before a request gets here; the
//! address comes from the session alone (never from the request: no host, port or target id is
//! read from it); discovery, the upstream handshake and every send have timeouts; each direction
//! has its own message cap.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use crate::session::inspector_link::InspectorLink;

/// How long the inspector has to answer `/json/list`.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the inspector's WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one message may take to be handed to either side (a peer that stops reading).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message (and frame) taken from the page's side: DevTools' commands are small, and this
/// is far above anything it sends; a client cannot make the runner buffer more.
pub const MAX_FROM_PAGE: usize = 64 << 20;
/// Largest message taken from the inspector: what the runner's own CDP client accepts (a CPU
/// profile is one reply of tens of MB; a heap snapshot arrives in chunks far smaller).
pub const MAX_FROM_INSPECTOR: usize = crate::probe::inspector::MAX_MESSAGE_BYTES;

/// What the proxy needs: where the session's inspector is, and when the session is over.
#[derive(Clone)]
pub struct Proxy {
    pub link: InspectorLink,
    /// Cancelled when the page's server stops: open DevTools connections close.
    pub ended: CancellationToken,
}

/// `GET /inspector`: a WebSocket to the session's inspector, or a status that says why not.
pub async fn inspector(State(proxy): State<Proxy>, mut request: Request) -> Response {
    let Some(key) = websocket_key(request.headers()) else {
        return answer(
            StatusCode::UPGRADE_REQUIRED,
            "this address is Chrome DevTools' WebSocket to the session's inspector: paste the \
             devtools:// address the page shows into Chrome's address bar",
        );
    };
    let addr = match proxy.link.addr() {
        Ok(addr) => addr,
        Err(why) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("no inspector is open in this session yet: {why:#}"),
            );
        }
    };
    let inspector = match connect(addr).await {
        Ok(inspector) => inspector,
        Err(Unreachable::NotOpen(why)) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "no inspector answers at the session's inspector address {addr} yet (a step \
                     opens it, or forwards it with `lab-runner tunnel`): {why:#}"
                ),
            );
        }
        Err(Unreachable::Handshake(why)) => {
            return answer(StatusCode::BAD_GATEWAY, &format!("{why:#}"));
        }
    };
    let Some(upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded to a WebSocket",
        );
    };
    let ended = proxy.ended.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let page = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(limits(MAX_FROM_PAGE)),
        )
        .await;
        relay(page, inspector, ended).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

fn answer(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The client's `Sec-WebSocket-Key` when the request is a WebSocket upgrade (version 13).
fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return None;
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return None;
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)?
        .to_str()
        .ok()?
        .trim();
    (!key.is_empty()).then(|| key.to_string())
}

fn limits(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

type Upstream = WebSocketStream<TcpStream>;

enum Unreachable {
    /// Nothing (or no target) answers discovery: the inspector is not open.
    NotOpen(anyhow::Error),
    /// The inspector listed a target but its WebSocket could not be opened.
    Handshake(anyhow::Error),
}

/// Discovers the inspector's target at `addr` and opens its WebSocket (both within their timeouts).
async fn connect(addr: SocketAddr) -> Result<Upstream, Unreachable> {
    let targets = crate::probe::inspector::list_with_timeout(addr, DISCOVERY_TIMEOUT)
        .await
        .map_err(Unreachable::NotOpen)?;
    let target = targets
        .iter()
        .find(|t| t.kind == "node")
        .or(targets.first())
        .ok_or_else(|| {
            Unreachable::NotOpen(anyhow!("http://{addr}/json/list lists no debugging target"))
        })?;
    let url = target
        .web_socket_url_via(addr)
        .map_err(Unreachable::Handshake)?;
    let handshake = async {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the inspector at {addr}"))?;
        tcp.set_nodelay(true)
            .with_context(|| format!("setting TCP_NODELAY on the connection to {addr}"))?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            url.as_str(),
            tcp,
            Some(limits(MAX_FROM_INSPECTOR)),
        )
        .await
        .with_context(|| format!("the WebSocket handshake with the inspector at {url}"))?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            Unreachable::Handshake(anyhow!(
                "opening the inspector's WebSocket {url}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(Unreachable::Handshake)
}

/// Relays messages both ways until either side ends (or the session does); then the other side
/// is closed too, so DevTools shows it lost the connection and Node sees its debugger go.
async fn relay<P>(page: WebSocketStream<P>, inspector: Upstream, ended: CancellationToken)
where
    P: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut to_page, mut from_page) = page.split();
    let (mut to_inspector, mut from_inspector) = inspector.split();
    let up = async {
        forward(&mut from_page, &mut to_inspector).await;
        let _ = tokio::time::timeout(SEND_TIMEOUT, to_inspector.close()).await;
    };
    let down = async {
        forward(&mut from_inspector, &mut to_page).await;
        let _ = tokio::time::timeout(SEND_TIMEOUT, to_page.close()).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = ended.cancelled() => {}
    }
}

/// Hands every data message from `from` to `to` until `from` ends, closes, fails, or `to` stops
/// taking them. Pings are answered by each side's own WebSocket; they are not relayed.
async fn forward<S, T>(from: &mut S, to: &mut T)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    T: futures_util::Sink<Message> + Unpin,
{
    while let Some(Ok(message)) = from.next().await {
        match message {
            Message::Text(_) | Message::Binary(_) => {
                match tokio::time::timeout(SEND_TIMEOUT, to.send(message)).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn only_a_version_13_upgrade_with_a_key_is_a_websocket() {
        let full = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            websocket_key(&headers(&full)).as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        for left_out in 0..full.len() {
            let some: Vec<_> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != left_out)
                .map(|(_, p)| *p)
                .collect();
            assert_eq!(
                websocket_key(&headers(&some)),
                None,
                "without {:?}",
                full[left_out]
            );
        }
        let mut old = full;
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(websocket_key(&headers(&old)), None);
    }
}
