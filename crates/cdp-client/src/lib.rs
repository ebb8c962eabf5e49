//! A Chrome DevTools Protocol client for Node's inspector.
//!
//! ```text
//! discovery   GET /json/version, /json/list with Host: <ip>:<port>   (discovery.rs)
//! connection  one WebSocket; a reader task routes replies by id and fans out events (connection.rs)
//! Inspector   call(), subscribe(), and the operations a lab needs:
//!             evaluate (runtime.rs), breakpoints and pauses (debugger.rs),
//!             CPU profiles, heap snapshots and heap usage (profiler.rs)
//! ```
//!
//! Every call has a timeout: the handle's default ([`DEFAULT_TIMEOUT`] unless attached with
//! another), or a per-call one through [`Inspector::with_timeout`], which returns a handle on
//! the same connection with a different default. Failed calls surface [`CdpError`] (method, CDP
//! message, or "timed out"), wrapped in `anyhow` context saying what was being done.
//!
//! The socket is always closed: [`Inspector::close`] does the close handshake; dropping the
//! last handle aborts the reader task and drops the socket. This matters: a connected client
//! keeps an exiting Node process alive, and a paused process resumes only when the client
//! resumes it or goes away.
//!
//! Node facts this module is built around (Node 20): the inspector refuses a `Host` that is a
//! DNS name other than `localhost`; breakpoints bind only by `file://` URL, with 0-based lines
//! on the wire (this API is 1-based); ESM call frames carry an empty `url`, so frames are mapped
//! to URLs through `Debugger.scriptParsed`.
//!
//! Also observed on Node 20.20.2 (and pinned by tests/it/inspector_live.rs):
//! - `/json/list`'s `webSocketDebuggerUrl` echoes the `Host` header it was asked with, so it
//!   names whatever address the request came through; without a `Host` it names the listen
//!   address. We re-point it at the address we connected to either way.
//! - Node accepts several sessions at once and keeps listing the target while one is attached,
//!   so "a fresh attach works" says nothing about whether an old client is gone.
//! - Commands sent to a stopped (SIGSTOP) process run in order once it continues: a
//!   `Debugger.pause` that timed out still pauses the next JavaScript that runs, which may be
//!   the next `Runtime.evaluate`.
//! - `Runtime.enable` first replays the console messages already logged.

mod connection;
mod debugger;
mod discovery;
mod error;
mod profiler;
mod runtime;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub use connection::{Event, MAX_MESSAGE_BYTES, Subscription};
pub use debugger::{Breakpoint, Frame, Location, Paused, Script, Step, file_url};
pub use discovery::{Target, Version, devtools_url, get_json_over, host_header, rewrite_ws_url};
pub use error::CdpError;
pub use profiler::{HeapUsage, save_cpuprofile};

use connection::Connection;

/// Timeout of every call unless the handle says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /json/version` from the inspector at `addr`.
pub async fn version(addr: SocketAddr) -> Result<Version> {
    discovery::version(addr, DEFAULT_TIMEOUT).await
}

/// `GET /json/version`, waiting at most `timeout`.
pub async fn version_with_timeout(addr: SocketAddr, timeout: Duration) -> Result<Version> {
    discovery::version(addr, timeout).await
}

/// `GET /json/list` from the inspector at `addr`.
pub async fn list(addr: SocketAddr) -> Result<Vec<Target>> {
    discovery::list(addr, DEFAULT_TIMEOUT).await
}

/// `GET /json/list`, waiting at most `timeout`.
pub async fn list_with_timeout(addr: SocketAddr, timeout: Duration) -> Result<Vec<Target>> {
    discovery::list(addr, timeout).await
}

/// Discover the first target of the inspector at `addr` and connect to it.
pub async fn attach(addr: SocketAddr) -> Result<Inspector> {
    Inspector::attach(addr).await
}

/// A connected CDP session. Cheap to clone: clones share the connection, which closes when
/// [`Inspector::close`] is called on any of them or the last one is dropped.
#[derive(Clone)]
pub struct Inspector {
    conn: Arc<Connection>,
    timeout: Duration,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("addr", &self.conn.addr)
            .field("ws_url", &self.conn.ws_url)
            .field("timeout", &self.timeout)
            .field("closed", &self.conn.is_closed())
            .finish()
    }
}

impl Inspector {
    /// Discover the first target at `addr` (`/json/list`) and open its WebSocket through `addr`
    /// — not through the host and port the target list names, which may be the far end of a
    /// tunnel.
    pub async fn attach(addr: SocketAddr) -> Result<Inspector> {
        Self::attach_with_timeout(addr, DEFAULT_TIMEOUT).await
    }

    /// [`Inspector::attach`] with `timeout` for discovery, the handshake, and as the default of
    /// every later call.
    pub async fn attach_with_timeout(addr: SocketAddr, timeout: Duration) -> Result<Inspector> {
        let targets = discovery::list(addr, timeout)
            .await
            .with_context(|| format!("attaching to the inspector at {addr}"))?;
        let Some(target) = targets.first() else {
            bail!("attaching to the inspector at {addr}: /json/list names no target");
        };
        let ws_url = target
            .web_socket_url_via(addr)
            .with_context(|| format!("attaching to the inspector at {addr}"))?;
        Self::connect(addr, &ws_url, timeout).await
    }

    /// Open `ws_url` over a TCP connection to `addr` (use [`Target::web_socket_url_via`]).
    pub async fn connect(addr: SocketAddr, ws_url: &str, timeout: Duration) -> Result<Inspector> {
        let conn = Connection::open(addr, ws_url, timeout)
            .await
            .with_context(|| format!("attaching to the inspector at {addr}"))?;
        Ok(Inspector {
            conn: Arc::new(conn),
            timeout,
        })
    }

    /// A handle on the same connection whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Inspector {
        Inspector {
            conn: self.conn.clone(),
            timeout,
        }
    }

    /// This handle's call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The address the connection goes through.
    pub fn addr(&self) -> SocketAddr {
        self.conn.addr
    }

    /// The WebSocket URL that was opened (authority = [`Inspector::addr`]).
    pub fn ws_url(&self) -> &str {
        &self.conn.ws_url
    }

    /// Whether the connection has ended (closed by us, by Node, or broken).
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Send one CDP command and wait for its reply's `result`, within this handle's timeout.
    /// `params` may be `Value::Null` for none.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CdpError> {
        self.conn.call(method, params, self.timeout).await
    }

    /// Send one CDP command, waiting at most `timeout` for its reply.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CdpError> {
        self.conn.call(method, params, timeout).await
    }

    /// Receive every later event whose method passes `filter`. Unbounded: drain it, or drop it.
    pub fn subscribe(&self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Subscription {
        self.conn.subscribe(Box::new(filter), None)
    }

    /// Receive every later event named in `methods`.
    pub fn subscribe_to(&self, methods: &[&str]) -> Subscription {
        let methods: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
        self.subscribe(move |m| methods.iter().any(|w| w == m))
    }

    /// Close the WebSocket (close handshake, at most this handle's timeout) and drop the socket.
    /// Other clones of this handle see the connection closed.
    pub async fn close(self) -> Result<()> {
        self.conn.close(self.timeout).await
    }
}
