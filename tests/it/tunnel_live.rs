//! The exec port-forward tunnel against a real container and a real Node inspector.
//!
//! Each test brings up tests/fixtures/tunnel (an ESM app with no SIGUSR1 listener) with
//! `InspectorMode::OnSignal` — so the inspector is neither open nor published — tunnels to the
//! container's own 127.0.0.1:9229, and tears the container down however the test ends.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::query_parameters::TopOptionsBuilder;
use lab_runner::env::Environment;
use lab_runner::lab::InspectorMode;
use lab_runner::probe::inspector::{self, Inspector};
use lab_runner::probe::tunnel::{FORWARDER_MARK, Origin, Tunnel, TunnelEvent};
use serde::Deserialize;
use serde_json::Value;
use support::{EnvGuard, docker_client_or_skip, docker_shared, fixture_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REMOTE: &str = "127.0.0.1:9229";
const WAIT: Duration = Duration::from_secs(20);

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a literal socket address")
}

async fn fixture(part: &str, memory_mb: u64) -> Result<EnvGuard> {
    EnvGuard::start(
        fixture_dir("tunnel"),
        part,
        InspectorMode::OnSignal,
        memory_mb,
    )
    .await
}

async fn open_tunnel(app: &EnvGuard) -> Result<Tunnel> {
    app.env()
        .open_tunnel(addr("127.0.0.1:0"), addr(REMOTE))
        .await
}

/// Sends SIGUSR1 and waits until the inspector answers through the tunnel.
async fn open_inspector(app: &EnvGuard, tunnel: &Tunnel) -> Result<()> {
    app.env().signal("SIGUSR1").await?;
    let started = Instant::now();
    loop {
        match inspector::version_with_timeout(tunnel.local_addr(), Duration::from_secs(5)).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > WAIT => {
                return Err(e.context(format!(
                    "the inspector did not answer through the tunnel within {WAIT:?} of SIGUSR1; \
                     last diagnosis: {:?}",
                    tunnel.last_error()
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The forwarder processes running in `container`, as `docker top` lists them.
async fn forwarders(docker: &Docker, container: &str) -> Result<Vec<String>> {
    let top = docker
        .top_processes(
            container,
            Some(TopOptionsBuilder::default().ps_args("-eo pid,args").build()),
        )
        .await
        .with_context(|| format!("docker top {container}"))?;
    Ok(top
        .processes
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.join(" "))
        .filter(|line| line.contains(FORWARDER_MARK))
        .collect())
}

/// Closes the tunnel and proves it: nothing listens on its port, no forwarder runs.
async fn close_and_check(tunnel: Tunnel, docker: &Docker, container: &str) -> Result<()> {
    let local = tunnel.local_addr();
    tunnel.close().await?;
    assert_eq!(tunnel.connections(), 0, "connections after close");
    match TcpStream::connect(local).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(e) => bail!("connecting to {local} after close: expected a refusal, got {e}"),
        Ok(_) => bail!("something still listens on {local} after close"),
    }
    let left = forwarders(docker, container).await?;
    assert!(
        left.is_empty(),
        "forwarders still running after close: {left:#?}"
    );
    Ok(())
}

/// One HTTP GET on a fresh connection that stays open: status, body, and the open stream.
async fn get_keep_open(local: SocketAddr, path: &str) -> Result<(u16, Vec<u8>, TcpStream)> {
    let mut stream = TcpStream::connect(local).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {local}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("GET {path}: closed before an answer");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status in {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| anyhow!("no Content-Length in {head:?}"))?;
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("GET {path}: closed mid-body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body, stream))
}

#[tokio::test]
async fn before_sigusr1_the_diagnosis_says_econnrefused_and_after_it_cdp_works() -> Result<()> {
    let test = "before_sigusr1_the_diagnosis_says_econnrefused_and_after_it_cdp_works";
    let Some(_) = docker_client_or_skip(test).await else {
        return Ok(());
    };
    let _docker = docker_shared();
    let app = fixture("tun1", 512).await?;
    let (docker, container) = app.docker();
    let tunnel = open_tunnel(&app).await?;
    let local = tunnel.local_addr();
    assert!(local.ip().is_loopback() && local.port() != 0, "{local}");

    // (1) The inspector is not open: the connection is accepted, then closed without a byte,
    // and the forwarder's stderr becomes the diagnosis.
    let mut events = tunnel.subscribe();
    let mut client = TcpStream::connect(local).await?;
    client
        .write_all(format!("GET /json/version HTTP/1.1\r\nHost: {local}\r\n\r\n").as_bytes())
        .await?;
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut got))
        .await
        .context("the failed connection was not closed")??;
    assert!(
        got.is_empty(),
        "bytes reached the client: {:?}",
        String::from_utf8_lossy(&got)
    );
    let summary = loop {
        match tokio::time::timeout(WAIT, events.recv()).await?? {
            TunnelEvent::Closed(summary) => break summary,
            TunnelEvent::Opened { .. } => {}
        }
    };
    let diagnosis = summary
        .diagnosis
        .context("no diagnosis for the failed connection")?;
    assert!(diagnosis.stderr.contains("ECONNREFUSED"), "{diagnosis:?}");
    assert!(diagnosis.message.contains("ECONNREFUSED"), "{diagnosis}");
    assert!(diagnosis.message.contains("SIGUSR1"), "{diagnosis}");
    assert_eq!(diagnosis.exit_code, Some(1), "{diagnosis:?}");
    assert_eq!(summary.to_client, 0);
    assert_eq!(tunnel.last_error().as_ref(), Some(&diagnosis));
    // The runner's own probe says the same.
    let err = tunnel
        .inspector_targets(Duration::from_secs(10))
        .await
        .expect_err("no inspector yet");
    assert!(format!("{err:#}").contains("ECONNREFUSED"), "{err:#}");

    // (2) SIGUSR1 opens the inspector inside the container; the tunnel reaches it.
    open_inspector(&app, &tunnel).await?;
    let targets = inspector::list(local).await?;
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0].kind, "node");
    let via_probe = tunnel.inspector_targets(Duration::from_secs(10)).await?;
    assert_eq!(via_probe[0].id, targets[0].id);

    // A client that half-closes after its request still gets the whole answer, then EOF: the
    // inspector keeps an HTTP socket open after replying, so the end comes from the half-close
    // travelling through the exec stream to the forwarder and on to the inspector.
    let mut events = tunnel.subscribe();
    let mut client = TcpStream::connect(local).await?;
    client
        .write_all(format!("GET /json/version HTTP/1.1\r\nHost: {local}\r\n\r\n").as_bytes())
        .await?;
    let me = client.local_addr()?;
    client.shutdown().await?;
    let half_closed = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut answer))
        .await
        .context("no EOF after the half-close")??;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains(" 200 "),
        "{answer}"
    );
    assert!(answer.contains("\"Browser\""), "{answer}");
    let summary = loop {
        match tokio::time::timeout(WAIT, events.recv()).await?? {
            TunnelEvent::Closed(summary) if summary.origin == Origin::Client(me) => break summary,
            _ => {}
        }
    };
    assert_eq!(summary.exit_code, Some(0), "{summary:?}");
    assert_eq!(summary.diagnosis, None);
    assert_eq!(summary.to_client as usize, answer.len());
    assert!(
        half_closed.elapsed() < Duration::from_secs(2),
        "the connection ended {:?} after the half-close: not by the half-close",
        half_closed.elapsed()
    );

    let session = Inspector::attach(local).await?;
    let pid = session.evaluate("process.pid").await?;
    lab_runner::util::crypto::ensure_provider();
    let health: Value = reqwest::get(format!("http://{}/api/health", app.env().endpoints().app))
        .await?
        .json()
        .await?;
    assert_eq!(pid, health["pid"], "the pid seen through the tunnel");
    // An ESM app has no `require` in its global scope, and `import()` from Runtime.evaluate
    // fails (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING); `process.getBuiltinModule` (Node >= 20.16)
    // works.
    let env_hostname = session.evaluate("globalThis.process.env.HOSTNAME").await?;
    let os_hostname = session
        .evaluate("process.getBuiltinModule('node:os').hostname()")
        .await?;
    let inspect = docker.inspect_container(&container, None).await?;
    let hostname = inspect
        .config
        .and_then(|c| c.hostname)
        .context("the container has no hostname")?;
    assert_eq!(env_hostname, Value::String(hostname.clone()));
    assert_eq!(os_hostname, Value::String(hostname));
    session.close().await?;

    // (5) close: no listener, no forwarder.
    close_and_check(tunnel, &docker, &container).await?;
    app.teardown().await
}

#[tokio::test]
async fn twenty_concurrent_connections_beside_a_long_cdp_session() -> Result<()> {
    let test = "twenty_concurrent_connections_beside_a_long_cdp_session";
    let Some(_) = docker_client_or_skip(test).await else {
        return Ok(());
    };
    let _docker = docker_shared();
    let app = fixture("tun3", 768).await?;
    let (docker, container) = app.docker();
    let tunnel = open_tunnel(&app).await?;
    let local = tunnel.local_addr();
    open_inspector(&app, &tunnel).await?;

    // A long-lived WebSocket session, busy the whole time.
    let session = Inspector::attach(local).await?;
    let busy = {
        let session = session.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            for i in 0..200u64 {
                let v = session.evaluate(&format!("{i} + 1")).await?;
                if v != i + 1 {
                    bail!("evaluate {i} + 1 gave {v}");
                }
                n += 1;
            }
            Ok(n)
        })
    };

    // 20 connections at once, each kept open until all have answered.
    let gets = (0..20).map(|_| get_keep_open(local, "/json/version"));
    let started = Instant::now();
    let answers = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::future::join_all(gets),
    )
    .await
    .context("20 concurrent GETs through the tunnel")?;
    let took = started.elapsed();
    let mut open = Vec::new();
    for answer in answers {
        let (status, body, stream) = answer?;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let version: Value = serde_json::from_slice(&body)?;
        assert!(
            version["Browser"]
                .as_str()
                .is_some_and(|b| b.starts_with("node.js/")),
            "{version}"
        );
        open.push(stream);
    }
    assert!(
        tunnel.connections() >= 21,
        "expected 20 GETs and the session open at once, the tunnel counts {}",
        tunnel.connections()
    );
    let list = tunnel.connection_list();
    assert!(list.iter().all(|c| c.to_remote > 0), "{list:#?}");
    eprintln!("20 concurrent GETs answered in {took:?}");

    // Closing the clients closes their connections, in both directions, and their forwarders.
    drop(open);
    let deadline = Instant::now() + WAIT;
    while tunnel.connections() > 1 {
        if Instant::now() > deadline {
            bail!(
                "{} connections still open {WAIT:?} after their clients closed: {:#?}",
                tunnel.connections(),
                tunnel.connection_list()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(busy.await??, 200);
    assert_eq!(session.evaluate("40 + 2").await?, Value::from(42));
    let left = forwarders(&docker, &container).await?;
    assert_eq!(left.len(), 1, "only the session's forwarder: {left:#?}");
    assert!(
        tunnel.diagnoses().is_empty(),
        "clean connections have nothing to say: {:#?}",
        tunnel.diagnoses()
    );

    // close() ends the open session too.
    close_and_check(tunnel, &docker, &container).await?;
    assert!(
        session.evaluate("1").await.is_err(),
        "the session survived close()"
    );
    app.teardown().await
}

#[derive(Deserialize)]
struct HeapSnapshot {
    snapshot: SnapshotHeader,
    nodes: Vec<u64>,
    strings: Vec<String>,
}

#[derive(Deserialize)]
struct SnapshotHeader {
    meta: SnapshotMeta,
    node_count: usize,
}

#[derive(Deserialize)]
struct SnapshotMeta {
    node_fields: Vec<String>,
}

#[tokio::test]
async fn a_heap_snapshot_streams_through_the_tunnel_as_valid_json() -> Result<()> {
    let test = "a_heap_snapshot_streams_through_the_tunnel_as_valid_json";
    let Some(_) = docker_client_or_skip(test).await else {
        return Ok(());
    };
    let _docker = docker_shared();
    let app = fixture("tun4", 1024).await?;
    let (docker, container) = app.docker();
    let tunnel = open_tunnel(&app).await?;
    open_inspector(&app, &tunnel).await?;
    let session =
        Inspector::attach_with_timeout(tunnel.local_addr(), Duration::from_secs(120)).await?;
    session
        .evaluate(
            "class TunnelBallast { constructor(i) { this.i = i; this.s = 'ballast-' + i; } } \
             globalThis.ballast = Array.from({ length: 200000 }, (_, i) => new TunnelBallast(i)); \
             globalThis.ballast.length",
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("through-tunnel.heapsnapshot");
    let written = session.take_heap_snapshot(&path).await?;
    let size = std::fs::metadata(&path)?.len();
    assert_eq!(written, size);
    assert!(
        size > 10 * 1024 * 1024,
        "a {size}-byte snapshot is too small"
    );
    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    let snapshot: HeapSnapshot =
        serde_json::from_reader(file).context("the snapshot is not valid JSON")?;
    let fields = snapshot.snapshot.meta.node_fields.len();
    assert!(fields > 0);
    assert_eq!(snapshot.nodes.len(), snapshot.snapshot.node_count * fields);
    assert!(snapshot.strings.iter().any(|s| s == "TunnelBallast"));
    session.close().await?;
    close_and_check(tunnel, &docker, &container).await?;
    app.teardown().await
}

#[tokio::test]
async fn dropping_a_tunnel_stops_its_listener_and_forwarders() -> Result<()> {
    let test = "dropping_a_tunnel_stops_its_listener_and_forwarders";
    let Some(_) = docker_client_or_skip(test).await else {
        return Ok(());
    };
    let _docker = docker_shared();
    let app = fixture("tun6", 512).await?;
    let (docker, container) = app.docker();
    let tunnel = open_tunnel(&app).await?;
    let local = tunnel.local_addr();
    open_inspector(&app, &tunnel).await?;
    let session = Inspector::attach(local).await?;
    assert_eq!(forwarders(&docker, &container).await?.len(), 1);
    drop(tunnel);
    // Drop does not wait; the listener and the forwarder go shortly after.
    let deadline = Instant::now() + WAIT;
    loop {
        let listening = TcpStream::connect(local).await.is_ok();
        let left = forwarders(&docker, &container).await?;
        if !listening && left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("after drop: listening {listening}, forwarders {left:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(session.evaluate("1").await.is_err());
    app.teardown().await
}

#[tokio::test]
async fn a_client_that_vanishes_mid_transfer_leaves_no_forwarder() -> Result<()> {
    let test = "a_client_that_vanishes_mid_transfer_leaves_no_forwarder";
    let Some(_) = docker_client_or_skip(test).await else {
        return Ok(());
    };
    let _docker = docker_shared();
    let app = fixture("tun7", 512).await?;
    let (docker, container) = app.docker();
    // To the app's own port inside the container: a download far bigger than any buffer.
    let tunnel = app
        .env()
        .open_tunnel(addr("127.0.0.1:0"), addr("127.0.0.1:3001"))
        .await?;
    let local = tunnel.local_addr();
    let mut client = TcpStream::connect(local).await?;
    client
        .write_all(format!("GET /api/bytes?mb=1024 HTTP/1.1\r\nHost: {local}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    while got < 8 * 1024 * 1024 {
        let n = tokio::time::timeout(WAIT, client.read(&mut buf)).await??;
        if n == 0 {
            bail!("the download ended after {got} bytes");
        }
        got += n;
    }
    assert_eq!(forwarders(&docker, &container).await?.len(), 1);
    let started = Instant::now();
    drop(client);
    loop {
        let left = forwarders(&docker, &container).await?;
        if left.is_empty() && tunnel.connections() == 0 {
            break;
        }
        if started.elapsed() > WAIT {
            bail!(
                "{:?} after the client vanished: {} connection(s), forwarders {left:#?}",
                started.elapsed(),
                tunnel.connections()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "forwarder gone {:?} after the client vanished",
        started.elapsed()
    );
    close_and_check(tunnel, &docker, &container).await?;
    app.teardown().await
}

/// A participant's `lab-runner tunnel` left running in another terminal ends by itself when the
/// lab's container goes (the session ended), saying why, instead of listening on forever.
#[tokio::test]
async fn the_tunnel_command_ends_when_its_container_is_removed() -> Result<()> {
    let test = "the_tunnel_command_ends_when_its_container_is_removed";
    let Some(_) = docker_client_or_skip(test).await else {
        return Ok(());
    };
    let _docker = docker_shared();
    let app = fixture("tun7", 512).await?;
    let (_, container) = app.docker();
    let mut tunnel = tokio::process::Command::from(support::lab_runner())
        .args([
            "tunnel",
            "--container",
            &container,
            "--local",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = tunnel.stdout.take().context("the tunnel's stdout")?;
    let mut said = Vec::new();
    let mut chunk = [0u8; 4096];
    // Forwarding, and the inspector (opened now) answering through it: the tunnel a participant
    // leaves running once DevTools is attached.
    for (wanted, then_signal) in [("Forwarding", true), ("The inspector answers", false)] {
        while !String::from_utf8_lossy(&said).contains(wanted) {
            let n = tokio::time::timeout(WAIT, stdout.read(&mut chunk))
                .await
                .with_context(|| format!("the tunnel did not say {wanted:?} within 20 s"))??;
            if n == 0 {
                bail!("the tunnel ended early: {}", String::from_utf8_lossy(&said));
            }
            said.extend_from_slice(&chunk[..n]);
        }
        if then_signal {
            app.env().signal("SIGUSR1").await?;
        }
    }
    app.teardown().await?;
    let status = tokio::time::timeout(WAIT, tunnel.wait())
        .await
        .context("the tunnel still runs 20 s after its container was removed")??;
    stdout.read_to_end(&mut said).await?;
    let said = String::from_utf8_lossy(&said);
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("The container {container} was removed")),
        "{said}"
    );
    assert!(said.contains("Tunnel closed"), "{said}");
    Ok(())
}
