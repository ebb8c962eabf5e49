//! Target discovery over the inspector's HTTP endpoints (`/json/version`, `/json/list`).
//!
//! A tiny hand-written HTTP/1.1 GET ([`get_json_over`], over a `TcpStream` or a tunnel's dialled
//! stream: the runner's only one), so the bytes on the wire are ours:
//! Node's inspector answers 400 to any `Host` that is a DNS name other than `localhost`
//! (DNS-rebinding protection), so we always send the IP literal we connect to. Node answers
//! with HTTP/1.0, a `Content-Length`, and then keeps the socket open (even when asked to close
//! it), so the body is read by length, never to EOF.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::human;

/// Largest response head (status line + headers) we accept.
const MAX_HEAD: usize = 64 * 1024;
/// Largest discovery body we accept; a target list is a few hundred bytes per target.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// `GET /json/version`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// e.g. `node.js/v20.20.2`.
    #[serde(rename = "Browser")]
    pub browser: String,
    /// e.g. `1.1`.
    #[serde(rename = "Protocol-Version")]
    pub protocol_version: String,
}

/// One entry of `GET /json/list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// A fresh UUID every time the inspector is opened.
    pub id: String,
    /// `node` for a Node.js process.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    /// The main script as a `file://` URL.
    #[serde(default)]
    pub url: String,
    /// As Node reported it. Node names whatever `Host` it was asked with (or its own listen address
    /// when none was sent), so through a tunnel or proxy it may name an address we cannot reach:
    /// connect with [`Target::web_socket_url_via`] instead.
    #[serde(default)]
    pub web_socket_debugger_url: Option<String>,
    #[serde(default)]
    pub devtools_frontend_url: Option<String>,
}

impl Target {
    /// The target's WebSocket URL pointed at `addr` — the address we discovered it through.
    pub fn web_socket_url_via(&self, addr: SocketAddr) -> Result<String> {
        match &self.web_socket_debugger_url {
            Some(url) => rewrite_ws_url(url, addr),
            // Some inspectors leave the URL out while a client is attached; the path is the id.
            None => Ok(format!("ws://{addr}/{}", self.id)),
        }
    }
}

/// The `Host` header value sent to the inspector at `addr`: the IP literal and port we connect
/// to (`127.0.0.1:<port>` on loopback; `[::1]:<port>` for IPv6).
/// The `devtools://` URL that opens Chrome's own DevTools on the target whose WebSocket is
/// `ws_no_scheme` (`127.0.0.1:9229/<id>`). The plain `inspector.html?ws=` form: Chromium's
/// navigation refuses the longer `js_app.html?experiments=true&v8only=true&ws=` form that
/// `/json/list` names (net::ERR_INVALID_URL, Chromium 156), while this one opens and attaches.
pub fn devtools_url(ws_no_scheme: &str) -> String {
    format!("devtools://devtools/bundled/inspector.html?ws={ws_no_scheme}")
}

pub fn host_header(addr: SocketAddr) -> String {
    addr.to_string()
}

/// Replace the authority of a `ws://host:port/path` URL with `addr`, keeping the path.
pub fn rewrite_ws_url(url: &str, addr: SocketAddr) -> Result<String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("webSocketDebuggerUrl {url:?} does not start with ws://"))?;
    let path = match rest.find('/') {
        Some(slash) => &rest[slash..],
        None => bail!("webSocketDebuggerUrl {url:?} has no path (the target id)"),
    };
    Ok(format!("ws://{addr}{path}"))
}

/// `GET /json/version` from the inspector at `addr`.
pub async fn version(addr: SocketAddr, timeout: Duration) -> Result<Version> {
    let body = get_json(addr, "/json/version", timeout).await?;
    serde_json::from_value(body)
        .with_context(|| format!("reading the inspector's /json/version at {addr}"))
}

/// `GET /json/list` from the inspector at `addr`.
pub async fn list(addr: SocketAddr, timeout: Duration) -> Result<Vec<Target>> {
    let body = get_json(addr, "/json/list", timeout).await?;
    serde_json::from_value(body)
        .with_context(|| format!("reading the inspector's /json/list at {addr}"))
}

async fn get_json(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Value> {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.with_context(|| {
            format!("connecting to the inspector at {addr} (is Node running with --inspect?)")
        })?;
        get_json_over(stream, addr, path).await
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        anyhow!(
            "GET http://{addr}{path}: timed out after {} (is the process stopped, or is \
             something else listening there?)",
            human(timeout)
        )
    })?
}

/// `GET path` over `stream` to the inspector at `addr` (which names the `Host`): the JSON body of
/// a 200 answer; any other status is an error quoting the body.
pub async fn get_json_over<S>(stream: S, addr: SocketAddr, path: &str) -> Result<Value>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (status, body) = http_get(stream, addr, path).await?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        let hint = if text.contains("WebSockets request was expected") {
            " (Node answers this when it rejects the Host header)"
        } else {
            ""
        };
        bail!(
            "GET http://{addr}{path}: HTTP {status}: {}{hint}",
            text.trim()
        );
    }
    serde_json::from_slice(&body).with_context(|| {
        format!(
            "GET http://{addr}{path}: the body is not JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

/// One HTTP/1.1 GET over `stream`; returns the status and the body. Ends by shutting the write
/// side (a tunnel's forwarder ends its socket, and exits, once the inspector closes it).
async fn http_get<S>(mut stream: S, addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        host_header(addr)
    );
    stream
        .write_all(request.as_bytes())
        .await
        .with_context(|| format!("sending GET {path} to {addr}"))?;
    stream
        .flush()
        .await
        .with_context(|| format!("sending GET {path} to {addr}"))?;

    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            bail!("GET http://{addr}{path}: response head larger than {MAX_HEAD} bytes");
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .with_context(|| format!("reading the reply to GET {path} from {addr}"))?;
        if n == 0 {
            bail!(
                "GET http://{addr}{path}: connection closed before a complete response head \
                 (got {} bytes)",
                buf.len()
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status(status_line).ok_or_else(|| {
        anyhow!("GET http://{addr}{path}: not an HTTP status line: {status_line:?}")
    })?;
    let mut content_length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            let n: usize = value.trim().parse().map_err(|_| {
                anyhow!(
                    "GET http://{addr}{path}: bad Content-Length {:?}",
                    value.trim()
                )
            })?;
            content_length = Some(n);
        }
    }
    let mut body = buf.split_off(head_end + 4);
    match content_length {
        Some(n) if n > MAX_BODY => {
            bail!("GET http://{addr}{path}: body of {n} bytes is larger than {MAX_BODY}")
        }
        // Node keeps the socket open after the reply: read exactly the announced length.
        Some(n) => {
            while body.len() < n {
                let mut chunk = vec![0u8; (n - body.len()).min(64 * 1024)];
                let got = stream
                    .read(&mut chunk)
                    .await
                    .with_context(|| format!("reading the body of GET {path} from {addr}"))?;
                if got == 0 {
                    bail!(
                        "GET http://{addr}{path}: connection closed after {} of {n} body bytes",
                        body.len()
                    );
                }
                body.extend_from_slice(&chunk[..got]);
            }
            body.truncate(n);
        }
        // Error replies (e.g. the Host rejection) have no length and end with the connection.
        None => {
            let mut limited = (&mut stream).take((MAX_BODY - body.len().min(MAX_BODY)) as u64);
            limited
                .read_to_end(&mut body)
                .await
                .with_context(|| format!("reading the body of GET {path} from {addr}"))?;
        }
    }
    let _ = stream.shutdown().await;
    Ok((status, body))
}

fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let proto = parts.next()?;
    if !proto.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_authority_and_keeps_the_path() {
        let addr: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let url = rewrite_ws_url("ws://10.0.0.7:9229/6de43c12-7b01-4318", addr).unwrap();
        assert_eq!(url, "ws://127.0.0.1:40001/6de43c12-7b01-4318");
        let v6: SocketAddr = "[::1]:9230".parse().unwrap();
        assert_eq!(
            rewrite_ws_url("ws://0.0.0.0:9229/x", v6).unwrap(),
            "ws://[::1]:9230/x"
        );
        assert!(rewrite_ws_url("http://127.0.0.1:9229/x", addr).is_err());
        assert!(rewrite_ws_url("ws://127.0.0.1:9229", addr).is_err());
    }

    #[test]
    fn host_header_is_the_ip_literal() {
        let addr: SocketAddr = "127.0.0.1:9229".parse().unwrap();
        assert_eq!(host_header(addr), "127.0.0.1:9229");
    }

    #[test]
    fn parses_node_list_entries() {
        let json = r#"[ {
          "description": "node.js instance",
          "devtoolsFrontendUrl": "devtools://devtools/bundled/js_app.html?ws=127.0.0.1:5555/abc",
          "id": "abc", "title": "/app/server.mjs", "type": "node",
          "url": "file:///app/server.mjs",
          "webSocketDebuggerUrl": "ws://127.0.0.1:5555/abc"
        } ]"#;
        let targets: Vec<Target> = serde_json::from_str(json).unwrap();
        assert_eq!(targets[0].kind, "node");
        let via: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            targets[0].web_socket_url_via(via).unwrap(),
            "ws://127.0.0.1:6000/abc"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.0 200 OK"), Some(200));
        assert_eq!(parse_status("HTTP/1.1 400 Bad Request"), Some(400));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
    }
}
