//! The inspector client against real Node processes (`node --inspect=127.0.0.1:0`).
//!
//! Each test starts its own fixture process (tests/fixtures/inspector/server.mjs, which imports
//! jam.mjs) and kills it when the test ends, however it ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use lab_runner::probe::inspector::{self, CdpError, Inspector, file_url};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const STARTUP: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inspector")
        .join(name);
    // Node reports the real path of a module.
    path.canonicalize().unwrap_or(path)
}

/// A `node --inspect=127.0.0.1:0 server.mjs` child, killed on drop.
struct NodeApp {
    child: Child,
    pid: u32,
    inspector: SocketAddr,
    http_port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        // SIGKILL works on a stopped process too; start_kill does nothing once it was reaped.
        let _ = self.child.start_kill();
    }
}

impl NodeApp {
    async fn start() -> Result<NodeApp> {
        let mut child = Command::new("node")
            .arg("--inspect=127.0.0.1:0")
            .arg(fixture("server.mjs"))
            .env_remove("NODE_OPTIONS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (is it on PATH?)")?;
        let pid = child.id().context("node exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let log = Arc::new(Mutex::new(String::new()));

        // stderr: find the inspector's port, then keep collecting (and draining) it.
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let log_writer = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut port_tx = Some(port_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("Debugger listening on ws://")
                    && let Some(tx) = port_tx.take()
                {
                    let authority = rest.split('/').next().unwrap_or_default().to_string();
                    let _ = tx.send(authority);
                }
                let mut log = log_writer.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut out_lines = BufReader::new(stdout).lines();
        let http_port = async {
            while let Some(line) = out_lines.next_line().await? {
                if let Some(port) = line.strip_prefix("LISTENING ") {
                    return Ok::<u16, anyhow::Error>(port.trim().parse()?);
                }
            }
            bail!("node's stdout ended before LISTENING")
        };
        let http_port = tokio::time::timeout(STARTUP, http_port)
            .await
            .context("waiting for the fixture's LISTENING line")??;
        tokio::spawn(async move { while let Ok(Some(_)) = out_lines.next_line().await {} });
        let authority = tokio::time::timeout(STARTUP, port_rx)
            .await
            .context("waiting for 'Debugger listening on'")??;
        let inspector: SocketAddr = authority
            .parse()
            .with_context(|| format!("inspector address {authority:?}"))?;
        Ok(NodeApp {
            child,
            pid,
            inspector,
            http_port,
            stderr: log,
        })
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {sig} {} failed", self.pid);
        }
        Ok(())
    }

    /// Whether the process exits by itself within `within`.
    async fn exits_within(&mut self, within: Duration) -> Result<bool> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }
}

/// The 1-based line of the first line of `file` containing `marker`.
fn line_of(file: &Path, marker: &str) -> Result<u32> {
    let text = std::fs::read_to_string(file)?;
    let index = text
        .lines()
        .position(|l| l.contains(marker))
        .ok_or_else(|| anyhow!("{marker:?} not in {}", file.display()))?;
    Ok(index as u32 + 1)
}

fn jam_url() -> Result<String> {
    file_url(&fixture("jam.mjs").to_string_lossy())
}

fn jam_line() -> Result<u32> {
    line_of(&fixture("jam.mjs"), "BREAKPOINT")
}

async fn http_get(url: String) -> Result<String> {
    lab_runner::util::crypto::ensure_provider();
    let response = reqwest::get(&url).await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}

/// The chain of an error, as `{:#}` prints it.
fn text(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[tokio::test]
async fn discovery_sends_the_ip_host_header_and_node_accepts_it() -> Result<()> {
    let app = NodeApp::start().await?;
    let version = inspector::version(app.inspector).await?;
    assert!(version.browser.starts_with("node.js/v"), "{version:?}");
    assert_eq!(version.protocol_version, "1.1");

    let targets = inspector::list(app.inspector).await?;
    assert_eq!(targets.len(), 1, "{targets:?}");
    let target = &targets[0];
    assert_eq!(target.kind, "node");
    assert_eq!(
        target.url,
        file_url(&fixture("server.mjs").to_string_lossy())?
    );
    // Node builds webSocketDebuggerUrl from the Host header it was sent: this shows the header
    // that really went over the wire.
    let expected = format!("ws://127.0.0.1:{}/{}", app.inspector.port(), target.id);
    assert_eq!(target.web_socket_debugger_url.as_deref(), Some(&*expected));

    // Nothing listening: the error says what was being done.
    let free = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let err = inspector::version(free).await.unwrap_err();
    assert!(
        text(&err).contains(&format!("connecting to the inspector at {free}")),
        "{err:#}"
    );

    // Why it matters: a DNS name in Host is refused.
    let mut raw = TcpStream::connect(app.inspector).await?;
    raw.write_all(b"GET /json/version HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut reply)).await??;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.0 400"), "{reply}");
    Ok(())
}

#[tokio::test]
async fn discovery_request_bytes_name_the_address_connected_to() -> Result<()> {
    // A listener that hands over the request it got and answers the way Node does (HTTP/1.0, a
    // length, and the socket left open), so the exact header sent is visible.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (request_tx, request_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let _ = request_tx.send(String::from_utf8_lossy(&request).into_owned());
        let body = r#"{"Browser": "node.js/v20.20.2", "Protocol-Version": "1.1"}"#;
        let reply = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).await?;
        tokio::time::sleep(Duration::from_secs(5)).await; // keep it open, like Node
        anyhow::Ok(())
    });
    let version = inspector::version_with_timeout(addr, Duration::from_secs(2)).await?;
    assert_eq!(version.browser, "node.js/v20.20.2");
    server.abort();
    let request = request_rx.await?;
    assert!(
        request.starts_with("GET /json/version HTTP/1.1\r\n"),
        "{request:?}"
    );
    let host_lines: Vec<&str> = request
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
        .collect();
    assert_eq!(host_lines, vec![format!("Host: 127.0.0.1:{}", addr.port())]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Runtime

#[tokio::test]
async fn evaluate_reads_the_inspected_process() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    assert_eq!(insp.evaluate("process.pid").await?, json!(app.pid));
    assert_eq!(insp.evaluate("1+1").await?, json!(2));
    assert_eq!(
        insp.evaluate("new Promise(r => setTimeout(() => r({ ok: [40 + 2] }), 10))")
            .await?,
        json!({ "ok": [42] })
    );
    assert_eq!(insp.evaluate("undefined").await?, Value::Null);
    assert_eq!(insp.evaluate("0/0").await?, json!("NaN"));
    insp.close().await?;
    assert!(
        app.stderr().contains("Debugger attached."),
        "{}",
        app.stderr()
    );
    Ok(())
}

#[tokio::test]
async fn replies_larger_than_tungstenite_default_frame_limit_arrive() -> Result<()> {
    // tungstenite refuses frames over 16 MiB by default; Node sends a reply as one frame.
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let big = insp.evaluate("'x'.repeat(20 * 1024 * 1024)").await?;
    assert_eq!(big.as_str().map(str::len), Some(20 * 1024 * 1024));
    insp.close().await
}

#[tokio::test]
async fn exceptions_surface_with_their_text() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let err = insp
        .evaluate("throw new Error('boom from the test')")
        .await
        .unwrap_err();
    let msg = text(&err);
    assert!(msg.contains("Error: boom from the test"), "{msg}");
    assert!(msg.contains("evaluating `throw new Error"), "{msg}");

    let err = insp
        .evaluate("Promise.reject(new RangeError('rejected on purpose'))")
        .await
        .unwrap_err();
    assert!(
        text(&err).contains("RangeError: rejected on purpose"),
        "{err:#}"
    );

    // A CDP protocol error carries the method and Node's message.
    let err = insp.call("Debugger.resume", json!({})).await.unwrap_err();
    assert!(matches!(err, CdpError::Protocol { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("Debugger.resume failed: "), "{msg}");
    let err = insp.call("No.suchMethod", Value::Null).await.unwrap_err();
    assert!(err.to_string().contains("No.suchMethod"), "{err}");
    insp.close().await
}

// ---------------------------------------------------------------------------------------------
// Debugger

#[tokio::test]
async fn breakpoint_by_file_url_pauses_the_request_in_blockeventloop() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let url = jam_url()?;
    let line = jam_line()?;

    let bp = insp.set_breakpoint_by_url(&url, line).await?;
    assert_eq!(bp.locations.len(), 1, "{bp:?}");
    assert!(!bp.moved());
    assert_eq!(bp.locations[0].line, line);
    assert_eq!(bp.locations[0].url, url);

    let request = tokio::spawn(http_get(app.url("/jam?ms=123")));
    let paused = insp.wait_paused(Duration::from_secs(5)).await?;
    assert_eq!(paused.function_name, "blockEventLoop");
    assert_eq!(paused.url, url, "ESM frames are mapped through scriptId");
    assert!(
        paused.raw["callFrames"][0]["url"]
            .as_str()
            .is_some_and(str::is_empty),
        "Node 20 still leaves ESM frame urls empty? {}",
        paused.raw["callFrames"][0]
    );
    assert_eq!(paused.line, line);
    assert_eq!(
        paused.locals.get("ms"),
        Some(&json!(123)),
        "{:?}",
        paused.locals
    );
    // Not yet initialised (temporal dead zone) reads as null.
    assert_eq!(paused.locals.get("started"), Some(&Value::Null));
    assert_eq!(paused.hit_breakpoints, vec![bp.id.clone()]);
    assert!(insp.is_paused());
    assert!(
        !request.is_finished(),
        "the request must wait for the pause"
    );
    assert_eq!(
        insp.evaluate_on_frame(&paused.call_frame_id, "ms * 2")
            .await?,
        json!(246)
    );

    insp.resume().await?;
    assert!(!insp.is_paused());
    let body: Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(5), request).await???)?;
    assert_eq!(body["ms"], json!(123));

    // Removed: the next request runs straight through.
    insp.remove_breakpoint(&bp.id).await?;
    let body =
        tokio::time::timeout(Duration::from_secs(5), http_get(app.url("/jam?ms=5"))).await??;
    assert!(body.contains("\"ms\":5"), "{body}");
    assert!(!insp.is_paused());
    let err = insp
        .wait_paused(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(text(&err).contains("timed out after 100ms"), "{err:#}");
    insp.close().await
}

#[tokio::test]
async fn disconnecting_while_paused_resumes_the_process() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    insp.set_breakpoint_by_url(&jam_url()?, jam_line()?).await?;
    let request = tokio::spawn(http_get(app.url("/jam?ms=7")));
    let paused = insp.wait_paused(Duration::from_secs(5)).await?;
    assert_eq!(paused.locals.get("ms"), Some(&json!(7)));
    drop(insp); // no resume: going away must let the request finish
    let body = tokio::time::timeout(Duration::from_secs(5), request).await???;
    assert!(body.contains("\"ms\":7"), "{body}");
    Ok(())
}

#[tokio::test]
async fn breakpoints_that_bind_nothing_are_diagnosed() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let url = jam_url()?;

    // A line past the end of the file.
    let err = insp.set_breakpoint_by_url(&url, 10_000).await.unwrap_err();
    let msg = text(&err);
    assert!(
        msg.contains(&format!("setting a breakpoint at {url}:10000")),
        "{msg}"
    );
    assert!(msg.contains("bound no code"), "{msg}");
    assert!(msg.contains("is loaded"), "{msg}");

    // A blank line does bind: V8 slides it to the next breakable location, and says so.
    let blank = line_of(&fixture("jam.mjs"), "export function blockEventLoop")? - 1;
    let bp = insp.set_breakpoint_by_url(&url, blank).await?;
    assert!(bp.moved(), "{bp:?}");
    assert_eq!(bp.locations[0].line, jam_line()?);
    insp.remove_breakpoint(&bp.id).await?;

    // A file that is not loaded, next to one with the same name that is.
    let elsewhere = url.replace("/inspector/jam.mjs", "/inspector/old/jam.mjs");
    let err = insp.set_breakpoint_by_url(&elsewhere, 3).await.unwrap_err();
    let msg = text(&err);
    assert!(msg.contains("no loaded script has the URL"), "{msg}");
    assert!(
        msg.contains(&format!("loaded scripts with a similar name: {url}")),
        "{msg}"
    );

    // Nothing like it at all.
    let err = insp
        .set_breakpoint_by_url("file:///nowhere/zzqx.mjs", 1)
        .await
        .unwrap_err();
    assert!(
        text(&err).contains("loaded scripts is named zzqx.mjs"),
        "{err:#}"
    );

    // No pending breakpoint was left behind: a request runs straight through.
    let body =
        tokio::time::timeout(Duration::from_secs(5), http_get(app.url("/jam?ms=1"))).await??;
    assert!(body.contains("\"ms\":1"), "{body}");
    insp.close().await
}

#[tokio::test]
async fn plain_paths_are_converted_and_relative_paths_refused() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let path = fixture("jam.mjs").to_string_lossy().into_owned();
    let line = jam_line()?;

    // The fact behind the conversion: Node binds nothing for a plain path.
    insp.call("Debugger.enable", json!({})).await?; // raw: the handle notices anyway
    let raw = insp
        .call(
            "Debugger.setBreakpointByUrl",
            json!({ "url": path, "lineNumber": line - 1 }),
        )
        .await?;
    assert_eq!(raw["locations"], json!([]), "{raw}");
    if let Some(id) = raw["breakpointId"].as_str() {
        insp.remove_breakpoint(id).await?;
    }

    let bp = insp.set_breakpoint_by_url(&path, line).await?;
    assert_eq!(bp.url, jam_url()?);
    assert_eq!(bp.locations.len(), 1);
    insp.remove_breakpoint(&bp.id).await?;

    let err = insp
        .set_breakpoint_by_url("tests/fixtures/inspector/jam.mjs", line)
        .await
        .unwrap_err();
    assert!(text(&err).contains("relative path"), "{err:#}");
    insp.close().await
}

// ---------------------------------------------------------------------------------------------
// Profiling and heap

#[tokio::test]
async fn cpu_profile_of_a_jam_is_dominated_by_the_jam() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let (profile, body) = insp
        .profile_while(Duration::from_micros(500), http_get(app.url("/jam?ms=300")))
        .await?;
    assert!(body?.contains("\"ms\":300"));

    // Self samples per (function, url).
    let nodes = profile["nodes"].as_array().context("no nodes")?;
    let samples = profile["samples"].as_array().context("no samples")?;
    let mut by_id = std::collections::HashMap::new();
    for node in nodes {
        let frame = &node["callFrame"];
        by_id.insert(
            node["id"].as_u64().unwrap_or_default(),
            (
                frame["functionName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                frame["url"].as_str().unwrap_or_default().to_string(),
            ),
        );
    }
    let mut counts: std::collections::HashMap<(String, String), usize> = Default::default();
    for s in samples {
        if let Some(key) = s.as_u64().and_then(|id| by_id.get(&id)) {
            *counts.entry(key.clone()).or_default() += 1;
        }
    }
    let jam_url = jam_url()?;
    let jam: usize = counts
        .iter()
        .filter(|((_, url), _)| *url == jam_url)
        .map(|(_, n)| n)
        .sum();
    let (top_other, top_other_n) = counts
        .iter()
        .filter(|((name, url), _)| {
            *url != jam_url && !matches!(name.as_str(), "(idle)" | "(program)" | "(root)")
        })
        .max_by_key(|(_, n)| **n)
        .map(|(k, n)| (k.clone(), *n))
        .unwrap_or_default();
    assert!(
        jam > 3 * top_other_n && jam >= 30,
        "jam.mjs has {jam} samples; the busiest other function {top_other:?} has {top_other_n}"
    );
    assert!(
        counts
            .keys()
            .any(|(name, url)| name == "blockEventLoop" && *url == jam_url),
        "blockEventLoop is named in the profile"
    );

    let dir = tempfile::tempdir()?;
    let out = dir.path().join("jam.cpuprofile");
    let written = inspector::save_cpuprofile(&profile, &out).await?;
    assert_eq!(written, std::fs::metadata(&out)?.len());
    let back: Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    assert_eq!(back["samples"], profile["samples"]);
    insp.close().await
}

#[tokio::test]
async fn heap_snapshot_streams_to_a_file() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("app.heapsnapshot");
    let written = insp.take_heap_snapshot(&out).await?;
    assert_eq!(written, std::fs::metadata(&out)?.len());
    assert!(written > 100_000, "only {written} bytes");
    let snapshot: Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    assert!(
        snapshot["snapshot"]["meta"]["node_fields"].is_array(),
        "no snapshot.meta.node_fields"
    );
    assert!(snapshot["nodes"].as_array().is_some_and(|n| !n.is_empty()));

    // Unwritable target: an error that names the file, and the connection still works.
    let err = insp
        .take_heap_snapshot(&dir.path().join("missing/dir/x.heapsnapshot"))
        .await
        .unwrap_err();
    assert!(text(&err).contains("missing/dir/x.heapsnapshot"), "{err:#}");
    assert_eq!(insp.evaluate("2*3").await?, json!(6));
    insp.close().await
}

#[tokio::test]
async fn heap_usage_follows_what_the_app_retains() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    insp.collect_garbage().await?;
    let before = insp.heap_usage().await?;
    assert!(
        before.used_size > 0 && before.total_size >= before.used_size,
        "{before:?}"
    );

    // 4M doubles in a JS array: ~32 MB on the V8 heap.
    insp.evaluate("globalThis.kept = new Array(4e6).fill(1.5); kept.length")
        .await?;
    insp.collect_garbage().await?;
    let retained = insp.heap_usage().await?;
    let grown = retained.used_size.saturating_sub(before.used_size);
    assert!(
        grown > 25_000_000,
        "grew by {grown} bytes: {before:?} → {retained:?}"
    );

    // A Buffer's bytes live outside the V8 heap: 64 MB barely moves usedSize.
    insp.evaluate("globalThis.buf = Buffer.alloc(64 * 1024 * 1024, 1); buf.length")
        .await?;
    insp.collect_garbage().await?;
    let with_buffer = insp.heap_usage().await?;
    let buffer_growth = with_buffer.used_size.saturating_sub(retained.used_size);
    assert!(
        buffer_growth < 4_000_000,
        "a 64 MB Buffer grew usedSize by {buffer_growth}"
    );

    insp.evaluate("globalThis.kept = null; globalThis.buf = null; 0")
        .await?;
    insp.collect_garbage().await?;
    let released = insp.heap_usage().await?;
    assert!(
        released.used_size < retained.used_size - 25_000_000,
        "{retained:?} → {released:?}"
    );
    insp.close().await
}

// ---------------------------------------------------------------------------------------------
// Timeouts, tunnels, closing

fn assert_timed_out(err: &anyhow::Error, method: &str) {
    let msg = text(err);
    assert!(msg.contains("timed out"), "{msg}");
    let cdp = err
        .downcast_ref::<CdpError>()
        .unwrap_or_else(|| panic!("no CdpError in {msg}"));
    assert!(cdp.is_timeout(), "{cdp:?}");
    assert_eq!(cdp.method(), method, "{msg}");
    assert!(msg.contains(method), "{msg}");
}

#[tokio::test]
async fn every_call_times_out_when_node_is_stopped() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    insp.enable_debugger().await?;
    app.signal("-STOP")?;
    let quick = insp.with_timeout(Duration::from_millis(250));
    let started = Instant::now();

    let err = quick
        .call("Runtime.evaluate", json!({"expression": "1"}))
        .await;
    let err = anyhow::Error::new(err.unwrap_err());
    assert_timed_out(&err, "Runtime.evaluate");
    assert!(text(&err).contains("timed out after 250ms"), "{err:#}");

    assert_timed_out(
        &quick.evaluate("1+1").await.unwrap_err(),
        "Runtime.evaluate",
    );
    assert_timed_out(
        &quick.heap_usage().await.unwrap_err(),
        "Runtime.getHeapUsage",
    );
    assert_timed_out(
        &quick.collect_garbage().await.unwrap_err(),
        "HeapProfiler.collectGarbage",
    );
    assert_timed_out(
        &quick
            .set_breakpoint_by_url(&jam_url()?, jam_line()?)
            .await
            .unwrap_err(),
        "Debugger.setBreakpointByUrl",
    );
    assert_timed_out(&quick.resume().await.unwrap_err(), "Debugger.resume");
    assert_timed_out(&quick.pause().await.unwrap_err(), "Debugger.pause");
    assert_timed_out(
        &quick
            .profile_while(Duration::from_millis(1), async {})
            .await
            .unwrap_err(),
        "Profiler.enable",
    );
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("stopped.heapsnapshot");
    assert_timed_out(
        &quick.take_heap_snapshot(&out).await.unwrap_err(),
        "HeapProfiler.takeHeapSnapshot",
    );
    assert!(!out.exists(), "the partial snapshot is removed");

    // Discovery and attaching time out too (the kernel accepts; nobody answers).
    let err = inspector::version_with_timeout(app.inspector, Duration::from_millis(250))
        .await
        .unwrap_err();
    assert!(text(&err).contains("timed out after 250ms"), "{err:#}");
    let err = Inspector::attach_with_timeout(app.inspector, Duration::from_millis(250))
        .await
        .unwrap_err();
    assert!(text(&err).contains("timed out after 250ms"), "{err:#}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Continued: the same connection works again; late replies to timed-out calls are ignored.
    // The calls sent while stopped still run in order, Debugger.pause included: it takes effect
    // at the next JavaScript statement, which is the next evaluation.
    app.signal("-CONT")?;
    let evaluation = tokio::spawn({
        let insp = insp.clone();
        async move { insp.evaluate("40+2").await }
    });
    insp.wait_paused(Duration::from_secs(5)).await?;
    insp.resume().await?;
    assert_eq!(evaluation.await??, json!(42));
    assert_eq!(insp.evaluate("1+1").await?, json!(2));
    insp.close().await
}

/// A TCP forwarder on a random local port to `target`; counts the connections it carried.
async fn forwarder(target: SocketAddr) -> Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    let carried = Arc::new(AtomicUsize::new(0));
    let count = carried.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok((local, carried))
}

#[tokio::test]
async fn works_through_a_tcp_forwarder_on_another_port() -> Result<()> {
    let app = NodeApp::start().await?;
    let (local, carried) = forwarder(app.inspector).await?;
    assert_ne!(local.port(), app.inspector.port());

    let insp = inspector::attach(local).await?;
    assert!(
        insp.ws_url().starts_with(&format!("ws://{local}/")),
        "{}",
        insp.ws_url()
    );
    assert_eq!(insp.evaluate("process.pid").await?, json!(app.pid));
    let bp = insp.set_breakpoint_by_url(&jam_url()?, jam_line()?).await?;
    let request = tokio::spawn(http_get(app.url("/jam?ms=11")));
    let paused = insp.wait_paused(Duration::from_secs(5)).await?;
    assert_eq!(paused.locals.get("ms"), Some(&json!(11)));
    insp.resume().await?;
    tokio::time::timeout(Duration::from_secs(5), request).await???;
    insp.remove_breakpoint(&bp.id).await?;
    insp.close().await?;
    assert!(
        carried.load(Ordering::SeqCst) >= 2,
        "discovery and WebSocket went through it"
    );

    // A target list fetched at the far end names the far end's port; the URL is re-pointed at
    // the address we go through.
    let direct = inspector::list(app.inspector).await?;
    let remote_url = direct[0]
        .web_socket_debugger_url
        .clone()
        .context("no webSocketDebuggerUrl")?;
    assert!(remote_url.contains(&format!(":{}/", app.inspector.port())));
    let via = direct[0].web_socket_url_via(local)?;
    assert_eq!(via, format!("ws://{local}/{}", direct[0].id));
    let insp = Inspector::connect(local, &via, inspector::DEFAULT_TIMEOUT).await?;
    assert_eq!(insp.evaluate("1+1").await?, json!(2));
    insp.close().await
}

#[tokio::test]
async fn an_attached_client_keeps_an_exiting_node_alive_until_it_goes() -> Result<()> {
    // Control: while a client stays connected, a process with nothing left to do does not exit.
    let mut app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    insp.evaluate("stopFixture(); 0").await?;
    assert!(!app.exits_within(Duration::from_millis(800)).await?);
    assert!(
        app.stderr()
            .contains("Waiting for the debugger to disconnect"),
        "{}",
        app.stderr()
    );
    // close() lets it go.
    insp.close().await?;
    assert!(
        app.exits_within(Duration::from_secs(5)).await?,
        "{}",
        app.stderr()
    );
    Ok(())
}

#[tokio::test]
async fn dropping_the_client_lets_node_exit() -> Result<()> {
    let mut app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let clone = insp.with_timeout(Duration::from_secs(1));
    insp.evaluate("stopFixture(); 0").await?;
    drop(insp);
    // A clone still holds the connection…
    assert!(!app.exits_within(Duration::from_millis(500)).await?);
    // …until it goes too.
    drop(clone);
    assert!(
        app.exits_within(Duration::from_secs(5)).await?,
        "{}",
        app.stderr()
    );
    Ok(())
}

#[tokio::test]
async fn after_close_calls_fail_fast_and_a_fresh_attach_works() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let other = insp.clone();
    let mut events = other.subscribe_to(&["Debugger.paused"]);
    insp.close().await?;
    assert!(other.is_closed());
    let started = Instant::now();
    let err = other.evaluate("1").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(100));
    let cdp = err.downcast_ref::<CdpError>().context("no CdpError")?;
    assert!(matches!(cdp, CdpError::Closed { .. }), "{cdp:?}");
    assert!(text(&err).contains("closed by this client"), "{err:#}");
    assert!(
        events.recv().await.is_none(),
        "subscriptions end with the connection"
    );

    let again = inspector::attach(app.inspector).await?;
    assert_eq!(again.evaluate("1+2").await?, json!(3));
    again.close().await
}

#[tokio::test]
async fn events_reach_subscribers() -> Result<()> {
    let app = NodeApp::start().await?;
    let insp = inspector::attach(app.inspector).await?;
    let mut console = insp.subscribe(|m| m.starts_with("Runtime.console"));
    insp.call("Runtime.enable", json!({})).await?;
    insp.evaluate("console.log('hello from node', 7)").await?;
    // Runtime.enable first replays the console messages already logged (the fixture's
    // LISTENING line): skip to ours.
    let event = loop {
        let event = console.recv_timeout(Duration::from_secs(5)).await?;
        if event.params["args"][0]["value"] != json!(format!("LISTENING {}", app.http_port)) {
            break event;
        }
    };
    assert_eq!(event.method, "Runtime.consoleAPICalled");
    assert_eq!(event.params["args"][0]["value"], json!("hello from node"));
    assert_eq!(event.params["args"][1]["value"], json!(7));
    insp.close().await
}
