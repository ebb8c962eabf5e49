//! The web face's guard, in front of every route: safe by construction.
//!
//! - Bound to 127.0.0.1 only (the server never binds anything else).
//! - An unguessable token (128 bits) in every request: `?token=` in the URL (the page, its assets,
//!   its event stream) or the `X-Lab-Token` header (its actions); compared in constant time.
//! - The `Host` header must name the bound address (`127.0.0.1:PORT` or `localhost:PORT`), so a
//!   DNS-rebinding page that resolves its own name to 127.0.0.1 cannot reach it.
//! - Anything but GET and HEAD must come with an `Origin` equal to this server's own, and only
//!   POST routes change state.
//! - DevTools' WebSocket to the session's inspector ([`INSPECTOR_ROUTE`]) must come with the
//!   `Origin` of Chrome's DevTools page (`devtools://devtools`) or this server's own: a page of any
//!   other site that learnt the token still cannot drive the inspector from a visitor's browser.
//! - Every answer carries a Content-Security-Policy that allows only the page's own script and
//!   style (inline, by their hashes: no other inline script runs) and nothing of another origin, `nosniff`, no referrer (the token stays out of logs
//!   elsewhere), no framing and no caching.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The page's Content-Security-Policy: its own inline script and style, allowed by their SHA-256
/// (nothing else inline runs or applies), its icon, and its own event stream and actions.
pub fn csp() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src 'self'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            source_hash(super::server::SCRIPT),
            source_hash(super::server::STYLE)
        )
    });
    &CSP
}

/// `sha256-<base64>` of an inline element's text, as a CSP source.
pub fn source_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The route of DevTools' WebSocket to the session's inspector (`super::devtools`).
pub const INSPECTOR_ROUTE: &str = "/inspector";

/// The `Origin` Chrome's DevTools frontend (`devtools://devtools/bundled/…`) sends.
pub const DEVTOOLS_ORIGIN: &str = "devtools://devtools";

/// The header a page's actions carry the token in.
pub const TOKEN_HEADER: &str = "x-lab-token";

/// What the guard knows: the token and the port it is bound to.
#[derive(Clone)]
pub struct Guard {
    pub token: String,
    pub port: u16,
}

impl Guard {
    /// The `Host` values this server answers to.
    fn host_allowed(&self, host: &str) -> bool {
        host == format!("127.0.0.1:{}", self.port) || host == format!("localhost:{}", self.port)
    }

    fn token_in(&self, request: &Request) -> bool {
        let from_header = request
            .headers()
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok());
        let from_query = request.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "token")
                .map(|(_, v)| v)
        });
        [from_header, from_query]
            .into_iter()
            .flatten()
            .any(|given| same(given.as_bytes(), self.token.as_bytes()))
    }
}

/// Constant-time comparison (no early exit on the first differing byte).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    let mut response = (status, format!("{why}\n")).into_response();
    secure_headers(response.headers_mut());
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    secure_headers_with(headers, csp());
}

/// The headers every answer of a page of ours carries, with its own `csp`: no sniffing, no
/// referrer (the secret in the URL stays out of other servers' logs), no framing, no caching.
pub fn secure_headers_with(headers: &mut HeaderMap, csp: &'static str) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The middleware: refuses what is not allowed, and secures every answer.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !guard.host_allowed(host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to 127.0.0.1 or localhost at its own port",
        );
    }
    if !guard.token_in(&request) {
        return refuse(
            StatusCode::FORBIDDEN,
            "a token is required: use the URL lab-runner printed",
        );
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let own_origin = format!("http://{host}");
    if request.uri().path() == INSPECTOR_ROUTE && origin != DEVTOOLS_ORIGIN && origin != own_origin
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "the inspector's WebSocket is for Chrome DevTools (Origin devtools://devtools) or \
             this page only",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) && origin != own_origin {
        return refuse(
            StatusCode::FORBIDDEN,
            "a change must come from this page itself (its Origin)",
        );
    }
    let mut response = next.run(request).await;
    secure_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_needs_every_byte() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn only_the_bound_address_is_a_host() {
        let g = Guard {
            token: "t".into(),
            port: 4000,
        };
        assert!(g.host_allowed("127.0.0.1:4000"));
        assert!(g.host_allowed("localhost:4000"));
        assert!(!g.host_allowed("evil.example:4000"));
        assert!(!g.host_allowed("127.0.0.1:4001"));
        assert!(!g.host_allowed("127.0.0.1"));
    }
}
