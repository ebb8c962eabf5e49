//! The WebSocket connection: one reader task routes replies to waiting callers by id and fans
//! events out to subscriptions; callers send under a lock on the write half.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::discovery::host_header;
use super::error::{CdpError, human};

/// Largest message (and frame) accepted from the inspector. A CPU profile reply is one message
/// and can be tens of MB; tungstenite's defaults (64 MiB message, 16 MiB frame) are too small.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

type Ws = WebSocketStream<TcpStream>;

/// A CDP event: `{"method": ..., "params": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

/// Whether the debuggee is paused, as last reported by `Debugger.paused` / `Debugger.resumed`.
#[derive(Debug, Clone)]
pub(crate) enum PauseState {
    Running,
    /// `seq` counts pauses, so a caller can tell a new pause from the one it just resumed.
    Paused {
        seq: u64,
        params: Arc<Value>,
    },
    Disconnected(String),
}

struct ProtocolError {
    code: i64,
    message: String,
    data: Option<String>,
}

type Reply = std::result::Result<Value, ProtocolError>;

#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the connection has ended; no call may wait after that.
    closed: Option<String>,
}

enum Tx {
    Bounded(mpsc::Sender<Event>),
    Unbounded(mpsc::UnboundedSender<Event>),
}

struct Sub {
    id: u64,
    filter: Box<dyn Fn(&str) -> bool + Send + Sync>,
    tx: Tx,
}

/// State shared by the reader task and the callers. The reader holds it too, so it owns nothing
/// that keeps the socket open.
pub(crate) struct Router {
    pending: Mutex<Pending>,
    subs: Mutex<Vec<Sub>>,
    next_sub: AtomicU64,
    /// scriptId → url, from every `Debugger.scriptParsed` seen.
    scripts: Mutex<HashMap<String, String>>,
    pause: watch::Sender<PauseState>,
    pause_seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Router {
    fn new() -> Self {
        Router {
            pending: Mutex::new(Pending::default()),
            subs: Mutex::new(Vec::new()),
            next_sub: AtomicU64::new(1),
            scripts: Mutex::new(HashMap::new()),
            pause: watch::Sender::new(PauseState::Running),
            pause_seq: AtomicU64::new(0),
        }
    }

    pub(crate) fn script_url(&self, script_id: &str) -> Option<String> {
        lock(&self.scripts).get(script_id).cloned()
    }

    pub(crate) fn scripts(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = lock(&self.scripts)
            .iter()
            .map(|(id, url)| (id.clone(), url.clone()))
            .collect();
        all.sort();
        all
    }

    pub(crate) fn pause_state(&self) -> watch::Receiver<PauseState> {
        self.pause.subscribe()
    }

    fn closed_reason(&self) -> Option<String> {
        lock(&self.pending).closed.clone()
    }

    async fn handle_text(&self, text: &str) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return; // not JSON: nothing can be waiting for it
        };
        if let Some(id) = msg.get("id").and_then(Value::as_u64) {
            let reply = match msg.get("error") {
                Some(err) => Err(ProtocolError {
                    code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: err
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_string(),
                    data: err.get("data").map(|d| match d.as_str() {
                        Some(s) => s.to_string(),
                        None => d.to_string(),
                    }),
                }),
                None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
            };
            let waiter = lock(&self.pending).waiting.remove(&id);
            if let Some(tx) = waiter {
                let _ = tx.send(reply); // the caller may have timed out meanwhile
            }
            return;
        }
        let Some(method) = msg.get("method").and_then(Value::as_str) else {
            return;
        };
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "Debugger.scriptParsed" => {
                if let (Some(id), Some(url)) = (
                    params.get("scriptId").and_then(Value::as_str),
                    params.get("url").and_then(Value::as_str),
                ) {
                    lock(&self.scripts).insert(id.to_string(), url.to_string());
                }
            }
            "Debugger.paused" => {
                let seq = self.pause_seq.fetch_add(1, Ordering::SeqCst) + 1;
                self.pause.send_replace(PauseState::Paused {
                    seq,
                    params: Arc::new(params.clone()),
                });
            }
            "Debugger.resumed" => {
                self.pause.send_replace(PauseState::Running);
            }
            _ => {}
        }
        self.dispatch(Event {
            method: method.to_string(),
            params,
        })
        .await;
    }

    async fn dispatch(&self, event: Event) {
        // Clone the matching senders so no lock is held across an await.
        let targets: Vec<(u64, Option<mpsc::Sender<Event>>)> = {
            let mut subs = lock(&self.subs);
            let mut out = Vec::new();
            subs.retain(|sub| {
                if !(sub.filter)(&event.method) {
                    return true;
                }
                match &sub.tx {
                    Tx::Unbounded(tx) => tx.send(event.clone()).is_ok(),
                    Tx::Bounded(tx) => {
                        out.push((sub.id, Some(tx.clone())));
                        true
                    }
                }
            });
            out
        };
        let mut gone = Vec::new();
        for (id, tx) in targets {
            // Bounded subscriptions push back: the reader waits for the consumer (used to stream
            // heap snapshot chunks to disk without holding them all in memory).
            if let Some(tx) = tx
                && tx.send(event.clone()).await.is_err()
            {
                gone.push(id);
            }
        }
        if !gone.is_empty() {
            lock(&self.subs).retain(|s| !gone.contains(&s.id));
        }
    }

    fn shut(&self, reason: String) {
        let waiting = {
            let mut p = lock(&self.pending);
            if p.closed.is_none() {
                p.closed = Some(reason.clone());
            }
            std::mem::take(&mut p.waiting)
        };
        drop(waiting); // every waiting caller sees its sender dropped → Closed
        lock(&self.subs).clear(); // every subscription's recv() returns None
        self.pause.send_replace(PauseState::Disconnected(reason));
    }
}

/// A stream of events whose method matched the subscription's filter, in arrival order. It only
/// holds events that arrive after it was created. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    rx: Rx,
    router: Weak<Router>,
}

enum Rx {
    Bounded(mpsc::Receiver<Event>),
    Unbounded(mpsc::UnboundedReceiver<Event>),
}

impl Subscription {
    /// The next event; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        match &mut self.rx {
            Rx::Bounded(rx) => rx.recv().await,
            Rx::Unbounded(rx) => rx.recv().await,
        }
    }

    /// The next event, waiting at most `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Event> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(anyhow!(
                "the inspector connection ended while waiting for an event"
            )),
            Err(_) => Err(anyhow!(
                "timed out after {} waiting for an inspector event",
                human(timeout)
            )),
        }
    }

    /// An event that has already arrived, if any.
    pub fn try_recv(&mut self) -> Option<Event> {
        match &mut self.rx {
            Rx::Bounded(rx) => rx.try_recv().ok(),
            Rx::Unbounded(rx) => rx.try_recv().ok(),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(router) = self.router.upgrade() {
            lock(&router.subs).retain(|s| s.id != self.id);
        }
    }
}

/// One open WebSocket to one inspector target. Dropping it aborts the reader task and drops both
/// halves of the socket, which closes the TCP connection.
pub(crate) struct Connection {
    pub(crate) router: Arc<Router>,
    sink: tokio::sync::Mutex<Option<SplitSink<Ws, Message>>>,
    reader: Mutex<Option<JoinHandle<()>>>,
    ended: watch::Receiver<bool>,
    next_id: AtomicU64,
    pub(crate) addr: SocketAddr,
    pub(crate) ws_url: String,
    pub(crate) debugger_enabled: AtomicBool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(reader) = lock(&self.reader).take() {
            reader.abort();
        }
    }
}

impl Connection {
    /// Open the WebSocket at `ws_url` over a TCP connection to `addr` (the URL's authority is
    /// only used for the handshake's `Host` header, which must be an IP literal or localhost).
    pub(crate) async fn open(addr: SocketAddr, ws_url: &str, timeout: Duration) -> Result<Self> {
        let handshake = async {
            let tcp = TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to the inspector at {addr}"))?;
            tcp.set_nodelay(true)
                .with_context(|| format!("setting TCP_NODELAY on the connection to {addr}"))?;
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_MESSAGE_BYTES))
                .max_frame_size(Some(MAX_MESSAGE_BYTES));
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(ws_url, tcp, Some(config))
                    .await
                    .with_context(|| {
                        format!(
                            "WebSocket handshake with {ws_url} (Host: {})",
                            host_header(addr)
                        )
                    })?;
            anyhow::Ok(ws)
        };
        let ws = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| {
                anyhow!(
                    "opening the WebSocket {ws_url}: timed out after {} (is the process stopped?)",
                    human(timeout)
                )
            })??;
        let (sink, stream) = ws.split();
        let router = Arc::new(Router::new());
        let (ended_tx, ended) = watch::channel(false);
        let reader = tokio::spawn(read_loop(stream, router.clone(), ended_tx));
        Ok(Connection {
            router,
            sink: tokio::sync::Mutex::new(Some(sink)),
            reader: Mutex::new(Some(reader)),
            ended,
            next_id: AtomicU64::new(1),
            addr,
            ws_url: ws_url.to_string(),
            debugger_enabled: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.router.closed_reason().is_some()
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> std::result::Result<Value, CdpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.router.pending);
            if let Some(reason) = &pending.closed {
                return Err(CdpError::Closed {
                    method: method.to_string(),
                    reason: reason.clone(),
                });
            }
            pending.waiting.insert(id, tx);
        }
        // Forget the waiter however this call ends (reply, error, timeout, or cancellation).
        let _forget = ForgetOnDrop {
            router: &self.router,
            id,
        };
        let message = if params.is_null() {
            json!({ "id": id, "method": method })
        } else {
            json!({ "id": id, "method": method, "params": params })
        };
        let round_trip = async {
            {
                let mut sink = self.sink.lock().await;
                let Some(sink) = sink.as_mut() else {
                    return Err(CdpError::Closed {
                        method: method.to_string(),
                        reason: "closed by this client".into(),
                    });
                };
                sink.send(Message::Text(message.to_string().into()))
                    .await
                    .map_err(|e| CdpError::Send {
                        method: method.to_string(),
                        reason: e.to_string(),
                    })?;
            }
            match rx.await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(e)) => Err(CdpError::Protocol {
                    method: method.to_string(),
                    code: e.code,
                    message: e.message,
                    data: e.data,
                }),
                Err(_) => Err(CdpError::Closed {
                    method: method.to_string(),
                    reason: self
                        .router
                        .closed_reason()
                        .unwrap_or_else(|| "connection dropped".into()),
                }),
            }
        };
        match tokio::time::timeout(timeout, round_trip).await {
            Ok(result) => {
                // Track the debugger's state however it was switched (raw calls included).
                if result.is_ok() {
                    match method {
                        "Debugger.enable" => self.debugger_enabled.store(true, Ordering::SeqCst),
                        "Debugger.disable" => self.debugger_enabled.store(false, Ordering::SeqCst),
                        _ => {}
                    }
                }
                result
            }
            Err(_) => Err(CdpError::Timeout {
                method: method.to_string(),
                after: timeout,
            }),
        }
    }

    pub(crate) fn subscribe(
        &self,
        filter: Box<dyn Fn(&str) -> bool + Send + Sync>,
        bound: Option<usize>,
    ) -> Subscription {
        let id = self.router.next_sub.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = match bound {
            Some(n) => {
                let (tx, rx) = mpsc::channel(n.max(1));
                (Tx::Bounded(tx), Rx::Bounded(rx))
            }
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Tx::Unbounded(tx), Rx::Unbounded(rx))
            }
        };
        let closed = self.is_closed();
        if !closed {
            lock(&self.router.subs).push(Sub { id, filter, tx });
        }
        // When closed, the sender was dropped right here, so recv() returns None at once.
        Subscription {
            id,
            rx,
            router: Arc::downgrade(&self.router),
        }
    }

    /// Close handshake, then drop the socket. Waits at most `timeout` for the peer.
    pub(crate) async fn close(&self, timeout: Duration) -> Result<()> {
        // From here on, calls fail at once with this reason (the first reason recorded wins).
        {
            let mut pending = lock(&self.router.pending);
            if pending.closed.is_none() {
                pending.closed = Some("closed by this client".into());
            }
        }
        let sink = self.sink.lock().await.take();
        let mut result = Ok(());
        if let Some(mut sink) = sink {
            match tokio::time::timeout(timeout, sink.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if self.is_closed() => {
                    // The peer had already gone; nothing left to close.
                    let _ = e;
                }
                Ok(Err(e)) => result = Err(anyhow!("closing the inspector WebSocket: {e}")),
                Err(_) => {
                    result = Err(anyhow!(
                        "closing the inspector WebSocket: timed out after {}; dropped it",
                        human(timeout)
                    ))
                }
            }
            // Give the reader a moment to see Node's close frame, then stop it either way.
            let mut ended = self.ended.clone();
            let _ = tokio::time::timeout(timeout.min(Duration::from_secs(1)), async {
                ended.wait_for(|e| *e).await.map(|_| ())
            })
            .await;
        }
        if let Some(reader) = lock(&self.reader).take() {
            reader.abort();
        }
        self.router.shut("closed by this client".into());
        result
    }
}

struct ForgetOnDrop<'a> {
    router: &'a Router,
    id: u64,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        lock(&self.router.pending).waiting.remove(&self.id);
    }
}

async fn read_loop(mut stream: SplitStream<Ws>, router: Arc<Router>, ended: watch::Sender<bool>) {
    let reason = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => router.handle_text(text.as_str()).await,
            Some(Ok(Message::Binary(bytes))) => {
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    router.handle_text(text).await;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!("the inspector closed the connection ({})", f.reason),
                    None => "the inspector closed the connection".to_string(),
                };
            }
            Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
            Some(Err(e)) => break format!("reading from the inspector failed: {e}"),
            None => break "the inspector connection ended".to_string(),
        }
    };
    router.shut(reason);
    let _ = ended.send(true);
}
