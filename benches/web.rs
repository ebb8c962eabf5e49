//! Issue 16's figures: how soon the browser guide is usable, and how soon a check's verdict
//! reaches the page after the runner decides it.
//!
//! - page usable: headless Chromium requests the page (its script and style inline, the state in
//!   it) until it has rendered the step with its menu (`performance.mark('lab-usable')` in page.js),
//!   measured from the request's start, on a fresh session and on one with 300 verdicts in its log;
//!   also the page, its icon and the event stream's first state requested by hand over loopback.
//! - verdict to page: the runner's `check_judged` event emitted at T0 (the system clock) until the
//!   page's DOM holds the verdict (a MutationObserver's clock, the same system clock); also until
//!   the event's bytes reach a plain SSE client.
//!
//! Run with `cargo bench --bench web` (needs `chromium`; no Docker, no app). Figures go to
//! docs/PERFORMANCE.md by hand, with the date and machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use lab_runner::outcome::{Failure, Outcome, Phase, Problem};
use lab_runner::probe::inspector::Inspector;
use lab_runner::session::events::{Event, Events};
use lab_runner::web::state::PageSetup;
use serde_json::json;

fn stats(name: &str, mut xs: Vec<f64>) {
    xs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<44} n={:<4} median {:>7.2} ms   p95 {:>7.2} ms   max {:>7.2} ms",
        xs.len(),
        at(0.5),
        at(0.95),
        xs[xs.len() - 1]
    );
}

fn setup() -> PageSetup {
    PageSetup {
        inspector: false,
        lab_title: "Bench lab".into(),
        part: "part2".into(),
        part_title: "A part".into(),
        steps: (0..8)
            .map(|i| (format!("2.{i}"), format!("Step {i}")))
            .collect(),
        parts: vec![],
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

fn failed_check(n: usize) -> Event {
    Event::CheckJudged {
        part: "part2".into(),
        step: format!("bench-{n}"),
        before_solve: false,
        outcome: Outcome::failed(
            Phase::Check,
            Problem::Check(
                Failure::new("GET /api/lab/status: status", "200", "404 not found")
                    .hint(Some("enable the lab routes")),
            ),
        ),
    }
}

fn show_step(events: &Events) {
    events.emit(Event::StepStarted {
        part: "part2".into(),
        step: "2.1".into(),
        title: "Enable the lab endpoints".into(),
        index: 2,
        of: 8,
    });
    events.emit(Event::StepShown {
        part: "part2".into(),
        step: "2.1".into(),
        title: "Enable the lab endpoints".into(),
        index: 2,
        of: 8,
        instructions: include_str!("../labs/node-profiling/part2.yaml")
            .lines()
            .take(60)
            .collect::<Vec<_>>()
            .join("\n"),
        commands: None,
    });
    events.emit(Event::Waiting {
        part: Some("part2".into()),
        text: "choose".into(),
        choices: vec!["[c] check my work".into()],
    });
}

/// GET `target` and read the whole answer (Connection: close).
fn get(port: u16, target: &str) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    Ok(body)
}

/// An SSE client: connected, its first `state` read.
fn sse(port: u16, token: &str) -> Result<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /events?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the event stream closed");
        }
        if line.starts_with("event: state") {
            return Ok(reader);
        }
    }
}

/// Reads the stream until a line contains `needle`.
fn until(reader: &mut BufReader<TcpStream>, needle: &str) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the event stream closed before {needle}");
        }
        if line.contains(needle) {
            return Ok(());
        }
    }
}

struct Chromium {
    child: std::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> Result<Chromium> {
    let profile = tempfile::tempdir()?;
    let child = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("chromium runs (apt-get install chromium)")?;
    let file = profile.path().join("DevToolsActivePort");
    let started = Instant::now();
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            break port;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("chromium did not open its remote-debugging port");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ok(Chromium {
        child,
        port,
        _profile: profile,
    })
}

async fn eval(tab: &Inspector, expression: &str) -> Result<serde_json::Value> {
    let r = tab
        .call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )
        .await?;
    Ok(r["result"]["value"].clone())
}

async fn wait_true(tab: &Inspector, expression: &str) -> Result<()> {
    let started = Instant::now();
    while eval(tab, expression).await? != json!(true) {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("never true: {expression}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// A new tab of `chrome`, connected.
async fn new_tab(chrome: &Chromium) -> Result<Inspector> {
    let out = Command::new("curl")
        .args(["-sS", "-X", "PUT"])
        .arg(format!(
            "http://127.0.0.1:{}/json/new?about:blank",
            chrome.port
        ))
        .output()?;
    let tab_info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let ws = tab_info["webSocketDebuggerUrl"]
        .as_str()
        .context("no tab")?
        .to_string();
    let tab = Inspector::connect(
        format!("127.0.0.1:{}", chrome.port).parse()?,
        &ws,
        Duration::from_secs(30),
    )
    .await?;
    tab.call("Page.enable", json!({})).await?;
    Ok(tab)
}

/// Loads the page 21 times; from each navigation's start until the page has rendered the step with
/// its menu enabled (the first load warms Chromium's caches of this origin: not counted).
async fn page_usable(tab: &Inspector, url: &str) -> Result<Vec<f64>> {
    let mut usable = Vec::new();
    for i in 0..21 {
        tab.call("Page.navigate", json!({ "url": url })).await?;
        wait_true(
            tab,
            "performance.getEntriesByName('lab-usable').length > 0 && !document.querySelector('#menu button').disabled",
        )
        .await?;
        let at = eval(
            tab,
            "performance.getEntriesByName('lab-usable')[0].startTime - performance.getEntriesByType('navigation')[0].requestStart",
        )
        .await?;
        if i > 0 {
            usable.push(at.as_f64().unwrap_or(f64::NAN));
        }
    }
    Ok(usable)
}

#[tokio::main]
async fn main() -> Result<()> {
    let (face, _choices, _asker) = lab_runner::web::serve_start(
        setup(),
        0,
        lab_runner::session::inspector_link::InspectorLink::new(),
        false,
    )
    .await?;
    let events = Events::new(vec![face.reporter()]);
    show_step(&events);
    let port: u16 = face
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()?;
    let token = face
        .url
        .split("token=")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    println!(
        "lab-runner web bench, {}",
        face.url.split('?').next().unwrap_or_default()
    );

    // Page usable without a browser: the document (its script and style inline), its icon, the
    // stream's first state.
    let mut by_hand = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        get(port, &format!("/?token={token}"))?;
        get(port, &format!("/assets/icon.svg?token={token}"))?;
        drop(sse(port, &token)?);
        by_hand.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    stats("page + icon + first state, by hand", by_hand);

    // In Chromium.
    let chrome = chromium()?;
    let tab = new_tab(&chrome).await?;
    stats(
        "Chromium: page usable, a fresh session",
        page_usable(&tab, &face.url).await?,
    );

    // Verdict to a plain SSE client.
    let mut reader = sse(port, &token)?;
    let mut to_client = Vec::new();
    for n in 0..300 {
        let t0 = Instant::now();
        events.emit(failed_check(n));
        until(&mut reader, &format!("step bench-{n}:"))?;
        to_client.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    drop(reader);
    stats("verdict emitted -> SSE client has it", to_client);

    // A tab of its own: the first one has rendered the 300 verdicts as they came.
    let tab = new_tab(&chrome).await?;
    stats(
        "Chromium: page usable, after 300 verdicts",
        page_usable(&tab, &face.url).await?,
    );
    let breakdown = eval(
        &tab,
        "(() => { const n = performance.getEntriesByType('navigation')[0]; const r = {}; \
         for (const k of ['requestStart', 'responseEnd', 'domInteractive', 'domContentLoadedEventEnd', 'loadEventEnd']) r[k] = Math.round(n[k] * 10) / 10; \
         for (const e of performance.getEntriesByType('resource')) r[e.name.split('?')[0].split('/').pop()] = [Math.round(e.startTime), Math.round(e.responseEnd)]; \
         for (const m of performance.getEntriesByType('mark')) r[m.name] = Math.round(m.startTime); r.usable = performance.getEntriesByName('lab-usable')[0].startTime; return JSON.stringify(r); })()",
    )
    .await?;
    println!(
        "  the last load, ms from its start: {}",
        breakdown.as_str().unwrap_or_default()
    );

    // Verdict to the page's DOM.
    eval(
        &tab,
        "window.__seen = {}; new MutationObserver(() => { for (const e of document.querySelectorAll('#log .log.fail strong')) { const k = e.textContent; if (!(k in window.__seen)) window.__seen[k] = performance.timeOrigin + performance.now(); } }).observe(document.querySelector('#log'), { childList: true }); true",
    )
    .await?;
    let mut to_page = Vec::new();
    for n in 1000..1200 {
        let t0 = now_ms();
        events.emit(failed_check(n));
        let key = format!("step bench-{n}: not yet");
        wait_true(&tab, &format!("{key:?} in window.__seen")).await?;
        let seen = eval(&tab, &format!("window.__seen[{key:?}]")).await?;
        to_page.push(seen.as_f64().unwrap_or(f64::NAN) - t0);
    }
    stats("Chromium: verdict emitted -> in the page's DOM", to_page);
    Ok(())
}
