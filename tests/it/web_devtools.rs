//! Chrome DevTools through the page (`start --web`): `/inspector?token=…` is a WebSocket relayed to
//! the session's own inspector. A real `lab-runner start part1 --web` on the process backend (its
//! app is a real `node --inspect=127.0.0.1:PORT`), reached the way DevTools reaches it: a
//! WebSocket with the page's token and DevTools' Origin, then CDP over it. Every refusal is asked
//! for with a hand-written request (any Host, Origin or path).

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::web::{Reply, WebSession};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEVTOOLS_ORIGIN: &str = "devtools://devtools";

/// `start PART --web` on the process backend (or `backend`), once its first step waits for the
/// participant (the environment is up).
fn started(part: &str, first_step: &str) -> WebSession {
    started_on(part, first_step, "process")
}

fn started_on(part: &str, first_step: &str, backend: &str) -> WebSession {
    let session = WebSession::start(&["start", part, "--backend", backend]);
    session.wait_state(&format!("step {first_step} waiting"), |s| {
        s["step"]["id"] == first_step && s["status"]["waiting"] == true
    });
    session
}

/// The WebSocket DevTools opens: `ws://127.0.0.1:PORT/<target>` with `origin`.
async fn open(session: &WebSession, target: &str, origin: &str) -> Result<Socket, String> {
    let mut request = format!("ws://127.0.0.1:{}{target}", session.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_str(origin).unwrap());
    match tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => Err(format!(
            "HTTP {}: {}",
            response.status(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 15 s".into()),
    }
}

/// One CDP call over `socket`: its `result` (events before the reply are passed over).
async fn call(socket: &mut Socket, id: u64, method: &str, params: Value) -> Value {
    let message = json!({"id": id, "method": method, "params": params}).to_string();
    socket.send(Message::text(message)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(message) = socket.next().await {
            let Message::Text(text) = message.expect("the relay keeps the connection") else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                return value;
            }
        }
        panic!("the connection ended before the reply to {method}")
    })
    .await
    .unwrap_or_else(|_| panic!("no reply to {method} within 15 s"));
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

/// `HeapProfiler.takeHeapSnapshot` as DevTools makes it: the chunks it streams, joined.
async fn heap_snapshot(socket: &mut Socket, id: u64) -> String {
    let started = std::time::Instant::now();
    let message = json!({"id": id, "method": "HeapProfiler.takeHeapSnapshot",
                         "params": {"reportProgress": false}});
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
    let (mut snapshot, mut chunks, mut largest) = (String::new(), 0, 0);
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(message) = socket.next().await {
            let Message::Text(text) = message.expect("the relay keeps the connection") else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{value}");
                return;
            }
            if value["method"] == "HeapProfiler.addHeapSnapshotChunk" {
                let chunk = value["params"]["chunk"].as_str().unwrap();
                chunks += 1;
                largest = largest.max(text.len());
                snapshot.push_str(chunk);
            }
        }
        panic!("the connection ended during the heap snapshot")
    })
    .await
    .expect("the heap snapshot within 120 s");
    eprintln!(
        "heap snapshot through the page: {} bytes in {chunks} chunks (largest message {largest} \
         bytes), {:.1} s",
        snapshot.len(),
        started.elapsed().as_secs_f64()
    );
    snapshot
}

async fn evaluate(socket: &mut Socket, id: u64, expression: &str) -> Value {
    let result = call(
        socket,
        id,
        "Runtime.evaluate",
        json!({"expression": expression, "returnByValue": true}),
    )
    .await;
    result["result"]["value"].clone()
}

/// A WebSocket handshake written by hand, with these extra `head` lines.
fn handshake(session: &WebSession, target: &str, head: &[(&str, &str)]) -> Reply {
    let mut lines = vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    lines.extend_from_slice(head);
    session.request("GET", target, &lines, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_devtools_runs_code_in_the_sessions_app_through_the_page() {
    let session = started("part1", "1.1");
    let state = session.state();
    assert_eq!(state["devtools"], true, "part1 has an inspector: {state:#}");
    let page = session.request("GET", &format!("/?token={}", session.token), &[], "");
    assert!(
        page.body.contains("id=\"devtools\"") && page.body.contains("Chrome DevTools"),
        "the page has the DevTools box"
    );

    let target = format!("/inspector?token={}", session.token);
    let mut devtools = open(&session, &target, DEVTOOLS_ORIGIN)
        .await
        .expect("DevTools' Origin with the token is let through");
    assert_eq!(evaluate(&mut devtools, 1, "1+1").await, 2);
    // It is the session's app: the lab app's own module is loaded there.
    let main = evaluate(&mut devtools, 2, "process.argv[1]").await;
    assert!(
        main.as_str().is_some_and(|m| m.ends_with("server.js")),
        "the session's lab app, not another node: {main}"
    );
    // DevTools' first calls, as it makes them on attaching.
    call(&mut devtools, 3, "Runtime.enable", json!({})).await;
    call(&mut devtools, 4, "Debugger.enable", json!({})).await;

    // The Memory panel's heap snapshot: a heap of about 50 MB as a snapshot, streamed back in
    // chunks, every one through the relay.
    evaluate(
        &mut devtools,
        5,
        "globalThis.labRunnerTestObjects = Array.from({length: 400000}, (_, i) => ({i, s: 'item ' + i})); 0",
    )
    .await;
    let snapshot = heap_snapshot(&mut devtools, 6).await;
    assert!(
        snapshot.starts_with("{\"snapshot\":{\"meta\":") && snapshot.trim_end().ends_with('}'),
        "a whole snapshot: {}…",
        &snapshot[..snapshot.len().min(80)]
    );
    assert!(
        snapshot.len() > 40 << 20,
        "the snapshot of a heap this big: {} bytes",
        snapshot.len()
    );

    // The page itself (behind a workshop, the Origin is rewritten to the page's own) is let through.
    let mut from_page = open(&session, &target, &session.origin())
        .await
        .expect("the page's own Origin is let through");
    assert_eq!(evaluate(&mut from_page, 1, "40+2").await, 42);
    from_page.close(None).await.unwrap();

    // The session ends: DevTools' connection is closed, not left hanging.
    drop(session);
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match devtools.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "DevTools' connection stayed open after the session ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_devtools_refuses_what_is_not_devtools_with_the_token() {
    let session = started("part1", "1.1");
    let token = session.token.clone();
    let target = format!("/inspector?token={token}");
    let devtools = ("Origin", DEVTOOLS_ORIGIN);

    // No token, a wrong one.
    let reply = handshake(&session, "/inspector", &[devtools]);
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("a token is required"), "{}", reply.body);
    let wrong = format!("/inspector?token={}", "0".repeat(token.len()));
    assert_eq!(handshake(&session, &wrong, &[devtools]).status, 403);
    // A page of another site (as a browser's WebSocket sends it), then by hand: no Origin at
    // all, a host that starts with DevTools' own name, `null`.
    let err = open(&session, &target, "https://attacker.example")
        .await
        .expect_err("a foreign Origin is refused");
    assert!(err.starts_with("HTTP 403"), "{err}");
    for origin in [
        Some("https://attacker.example"),
        Some("devtools://devtools.attacker.example"),
        Some("null"),
        None,
    ] {
        let head: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let reply = handshake(&session, &target, &head);
        assert_eq!(reply.status, 403, "Origin {origin:?}: {}", reply.body);
        assert!(reply.body.contains("Chrome DevTools"), "{}", reply.body);
    }
    // A DNS-rebinding Host.
    let reply = handshake(
        &session,
        &target,
        &[
            devtools,
            ("Host", &format!("rebind.example:{}", session.port)),
        ],
    );
    assert_eq!(reply.status, 421, "{}", reply.body);

    // Nothing else is reachable through it: the inspector's HTTP endpoints, a target of the
    // client's choosing, a plain GET.
    for path in [
        format!("/inspector/json/list?token={token}"),
        format!("/json/list?token={token}"),
        format!("/inspector/00000000-0000-0000-0000-000000000000?token={token}"),
    ] {
        let reply = handshake(&session, &path, &[devtools]);
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert!(
            !reply.body.contains("webSocketDebuggerUrl"),
            "{}",
            reply.body
        );
    }
    let reply = session.request("GET", &target, &[devtools], "");
    assert_eq!(reply.status, 426, "{}", reply.body);
    assert!(
        !reply.body.contains("webSocketDebuggerUrl"),
        "{}",
        reply.body
    );
    // An address in the query is not taken: the connection is still the session's inspector.
    let mut socket = open(
        &session,
        &format!("{target}&ws=127.0.0.1:1/x&host=127.0.0.1&port=1"),
        DEVTOOLS_ORIGIN,
    )
    .await
    .expect("the session's inspector, whatever the query says");
    assert_eq!(evaluate(&mut socket, 1, "1+1").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_devtools_without_an_inspector_says_so() {
    // Part 2 runs the app as in production: no inspector at all.
    let session = started("part2", "2.0");
    assert_eq!(session.state()["devtools"], false);
    let target = format!("/inspector?token={}", session.token);
    let reply = handshake(&session, &target, &[("Origin", DEVTOOLS_ORIGIN)]);
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply.body.contains("no inspector is open in this session"),
        "{}",
        reply.body
    );
    let err = open(&session, &target, DEVTOOLS_ORIGIN)
        .await
        .expect_err("no WebSocket without an inspector");
    assert!(err.starts_with("HTTP 503"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_devtools_follows_part3s_inspector_from_closed_to_the_tunnel() {
    const TEST: &str = "web_devtools_follows_part3s_inspector_from_closed_to_the_tunnel";
    if !crate::support::docker_or_skip(TEST) {
        return;
    }
    // Part 3's container publishes no inspector: it opens on SIGUSR1 (3.2) inside the container,
    // and is reached through the participant's `lab-runner tunnel` (3.3).
    let session = started_on("part3", "3.1", "docker");
    assert_eq!(session.state()["devtools"], true);
    let target = format!("/inspector?token={}", session.token);
    let reply = handshake(&session, &target, &[("Origin", DEVTOOLS_ORIGIN)]);
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("no inspector answers at the session's inspector address"),
        "{}",
        reply.body
    );
    for (step, next) in [("3.1", "3.2"), ("3.2", "3.3"), ("3.3", "3.4")] {
        let reply = session.act("do");
        assert_eq!(reply.status, 202, "do {step}: {}", reply.body);
        session.wait_state(&format!("step {next} after doing {step}"), |s| {
            s["step"]["id"] == next && s["status"]["waiting"] == true
        });
    }
    let mut devtools = open(&session, &target, DEVTOOLS_ORIGIN)
        .await
        .expect("the inspector through the tunnel, once it is open");
    assert_eq!(evaluate(&mut devtools, 1, "1+1").await, 2);
}
