//! Issue 18's dashboard figure: 200 simulated joined participants post their progress to the
//! workshop server over HTTPS (the join protocol's batches, each client pinning the certificate),
//! and one dashboard listens to its event stream; the update latency is the time from a batch's
//! sending until the dashboard's stream carries it. Goal: under 100 ms at the 99th percentile.
//!
//! Run with `cargo bench --bench workshop` (no Docker, no browser). Figures go to
//! docs/PERFORMANCE.md by hand, with the date and machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use lab_runner::workshop::board::Board;
use lab_runner::workshop::protocol::{Batch, Progress, StepName};
use lab_runner::workshop::server::{Workshop, allowed_hosts, serve};
use lab_runner::workshop::tls;

const PARTICIPANTS: usize = 200;
/// How long the simulated room works.
const RUN: Duration = Duration::from_secs(30);
/// Each participant moves to another step about this often (so ~100 batches a second in all).
const EVERY: Duration = Duration::from_secs(2);
/// More steps than a participant reaches in the run, so each (participant, step) is sent once.
const STEPS: usize = 20;

fn steps() -> Vec<StepName> {
    (0..STEPS)
        .map(|i| StepName {
            id: format!("2.{i}"),
            title: format!("Step {i} of the part"),
        })
        .collect()
}

fn stats(name: &str, mut xs: Vec<f64>) {
    xs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<40} n={:<6} median {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        xs.len(),
        at(0.5),
        at(0.95),
        at(0.99),
        xs[xs.len() - 1]
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    lab_runner::util::crypto::ensure_provider();
    let identity = tls::make_identity("127.0.0.1".parse()?)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (changed, _) = tokio::sync::watch::channel(0);
    let workshop = Workshop {
        code: "c0de".into(),
        key: "k3y".into(),
        hosts: allowed_hosts(addr),
        board: Arc::new(Mutex::new(Board::default())),
        seats: Arc::new(std::sync::RwLock::new(Vec::new())),
        seats_part: None,
        changed,
    };
    let pin = identity.fingerprint.clone();
    tokio::spawn(async move { serve(listener, &identity, workshop).await });
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls::pinned_client_config(&pin)?)
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(PARTICIPANTS)
        .build()?;
    println!(
        "workshop bench: {PARTICIPANTS} participants, a step change each ~{EVERY:?}, {RUN:?}, https://{addr}"
    );

    // When each (participant, step) was sent.
    let sent: Arc<Mutex<HashMap<(usize, usize), Instant>>> = Default::default();
    // The dashboard: records when its stream first shows each participant at each step.
    let seen: Arc<Mutex<HashMap<(usize, usize), Instant>>> = Default::default();
    let dashboard = {
        // No limit on the whole request (it is a stream); one on each wait for more.
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls::pinned_client_config(&pin)?)
            .read_timeout(Duration::from_secs(10))
            .build()?;
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut answer = client
                .get(format!("https://{addr}/dashboard/events?key=k3y"))
                .send()
                .await
                .context("the dashboard's stream")?;
            let mut buffer = String::new();
            let mut updates = 0usize;
            let mut bytes = 0usize;
            while let Some(chunk) = answer.chunk().await? {
                let now = Instant::now();
                bytes += chunk.len();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                        continue;
                    };
                    updates += 1;
                    let board: serde_json::Value = serde_json::from_str(data)?;
                    let mut seen = seen.lock().unwrap();
                    for p in board["participants"].as_array().into_iter().flatten() {
                        let (Some(name), Some(step)) = (p["name"].as_str(), p["step"].as_str())
                        else {
                            continue;
                        };
                        let who: usize = name.trim_start_matches('p').parse().unwrap_or(usize::MAX);
                        let at: usize = step.trim_start_matches("2.").parse().unwrap_or(usize::MAX);
                        seen.entry((who, at)).or_insert(now);
                    }
                }
            }
            anyhow::Ok((updates, bytes))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let mut room = Vec::new();
    for who in 0..PARTICIPANTS {
        let client = client.clone();
        let sent = sent.clone();
        room.push(tokio::spawn(async move {
            let url = format!("https://{addr}/join/c0de/progress");
            let participant = format!("{who:012x}");
            let mut first = vec![Progress::PartStarted {
                part: "part2".into(),
                title: "Part two".into(),
                steps: steps(),
            }];
            // Spread the room's batches over time.
            tokio::time::sleep(EVERY.mul_f64(who as f64 / PARTICIPANTS as f64)).await;
            let mut step = 0usize;
            let mut posts = 0usize;
            while started.elapsed() < RUN {
                let mut progress = std::mem::take(&mut first);
                if step > 0 {
                    progress.push(Progress::CheckJudged {
                        part: "part2".into(),
                        step: format!("2.{}", step - 1),
                        passed: true,
                        diagnosis: None,
                    });
                }
                progress.push(Progress::StepShown {
                    part: "part2".into(),
                    step: format!("2.{step}"),
                });
                let batch = Batch {
                    participant: participant.clone(),
                    name: format!("p{who}"),
                    lab: "bench".into(),
                    progress,
                };
                sent.lock().unwrap().insert((who, step), Instant::now());
                let answer = client.post(&url).json(&batch).send().await?;
                anyhow::ensure!(
                    answer.status() == 204,
                    "the server answered {}",
                    answer.status()
                );
                posts += 1;
                step = (step + 1).min(STEPS - 1);
                tokio::time::sleep(EVERY).await;
            }
            anyhow::Ok(posts)
        }));
    }
    let mut posts = 0;
    for participant in room {
        posts += participant.await??;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    dashboard.abort();
    let elapsed = started.elapsed();
    let sent = sent.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut latency = Vec::new();
    let mut missing = 0;
    for (key, at) in sent.iter() {
        match seen.get(key) {
            Some(shown) => {
                latency.push(shown.saturating_duration_since(*at).as_secs_f64() * 1000.0)
            }
            None => missing += 1,
        }
    }
    println!(
        "{posts} batches in {:.1} s ({:.0}/s); {} (participant, step) updates measured, {missing} never shown",
        elapsed.as_secs_f64(),
        posts as f64 / elapsed.as_secs_f64(),
        latency.len()
    );
    stats("batch sent -> on the dashboard's stream", latency);
    Ok(())
}
