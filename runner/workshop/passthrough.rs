//! A seat's page through the workshop server: `/seat/<n>/<path>` is the seat's own `start --web`
//! server's `<path>` on 127.0.0.1, with the same query, so the participant reaches their seat's
//! guide, its shell and its Chrome DevTools proxy over the workshop's HTTPS from another machine.
//!
//! The seat's secret is its page's token: the workshop checks it (in constant time) before anything
//! reaches the seat, and the seat's own guard checks it again. `Host` becomes the seat's own address,
//! and an `Origin` of the workshop's own becomes the seat's (a page served through the workshop is
//! the seat's page); any other `Origin` passes unchanged for the seat to judge. A WebSocket upgrade
//! is passed through as it is: the two upgraded connections are joined byte for byte.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

/// How long the seat may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the seat may take to answer a request's head (not its body: an event stream or a
/// command's output may last).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that belong to one connection, not to the request (RFC 9110 7.6.1); kept for an
/// upgrade, which needs `Connection` and `Upgrade` to reach the seat.
const HOP_BY_HOP: &[header::HeaderName] = &[
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::PROXY_AUTHORIZATION,
];

/// The seat's token given with the request: `?token=` or the page's `X-Lab-Token` header.
pub fn token_of(request: &Request) -> Option<String> {
    let from_header = request
        .headers()
        .get(crate::web::security::TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    from_header.or_else(|| {
        request.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "token")
                .map(|(_, v)| v.to_string())
        })
    })
}

/// Forwards `request` to the seat listening on 127.0.0.1:`port`, as `path` (what follows
/// `/seat/<n>`); `workshop_origins` are the origins the workshop's own pages have.
pub async fn forward(
    port: u16,
    path: &str,
    mut request: Request,
    workshop_origins: &[String],
) -> Response {
    let seat = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let upgrading = request.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let target = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut to_seat = match axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(&target)
        .body(body)
    {
        Ok(request) => request,
        Err(_) => return (StatusCode::BAD_REQUEST, "not a path a seat has\n").into_response(),
    };
    let headers = to_seat.headers_mut();
    for (name, value) in &parts.headers {
        if upgrading || !HOP_BY_HOP.contains(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let seat_host = HeaderValue::from_str(&seat.to_string()).expect("an address is a header value");
    headers.insert(header::HOST, seat_host);
    let own_origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| workshop_origins.iter().any(|o| o == origin));
    if own_origin {
        let seat_origin =
            HeaderValue::from_str(&format!("http://{seat}")).expect("an origin is a header value");
        headers.insert(header::ORIGIN, seat_origin);
    }
    match send(seat, to_seat).await {
        Ok(mut answer) => {
            if answer.status() == StatusCode::SWITCHING_PROTOCOLS
                && let Some(client_upgrade) = client_upgrade
            {
                let seat_upgrade = hyper::upgrade::on(&mut answer);
                tokio::spawn(async move {
                    if let (Ok(client), Ok(seat)) = tokio::join!(client_upgrade, seat_upgrade) {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(client),
                            &mut TokioIo::new(seat),
                        )
                        .await;
                    }
                });
            }
            let (parts, body) = answer.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the seat does not answer ({e:#}); the instructor can see it in `lab-runner workshop status`\n"),
        )
            .into_response(),
    }
}

/// One request on a connection of its own to the seat (loopback: connecting is cheap, and a
/// streamed answer keeps its connection as long as it lasts).
async fn send(
    seat: SocketAddr,
    request: axum::http::Request<Body>,
) -> Result<axum::http::Response<hyper::body::Incoming>> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(seat))
        .await
        .with_context(|| {
            format!(
                "connecting to {seat} took over {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("connecting to {seat}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("starting HTTP with the seat")?;
    tokio::spawn(connection.with_upgrades());
    tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(request))
        .await
        .with_context(|| {
            format!(
                "the seat took over {} s to answer",
                ANSWER_TIMEOUT.as_secs()
            )
        })?
        .context("the seat's answer")
}
