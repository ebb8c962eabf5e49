//! Readiness: the app is ready when its health path answers 200 (an HTTP probe, not a log line —
//! log wording changes break waits).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{AppState, Environment};
use crate::probe::http::HttpClient;

/// Polls the app's health path until it answers 200, the environment stops running, or `timeout`
/// passes. A failure says why, with the end of the app's log.
pub async fn wait_healthy(
    env: &dyn Environment,
    health_path: &str,
    timeout: Duration,
) -> Result<Duration> {
    let client = HttpClient::new()?;
    let started = Instant::now();
    let url = format!("http://{}{}", env.endpoints().app, health_path);
    let mut last_error;
    let mut polls = 0u32;
    loop {
        match client.get_status(&url, Duration::from_millis(500)).await {
            Ok(200) => return Ok(started.elapsed()),
            Ok(status) => last_error = format!("answered {status}"),
            Err(e) => last_error = format!("{e:#}"),
        }
        polls += 1;
        // Every few polls, look at the environment itself: an app that has exited will never answer.
        if polls.is_multiple_of(5) {
            let state = env.state().await?;
            if state != AppState::Running {
                bail!(
                    "the app is not running: it {state}\n{}",
                    log_tail(env).await
                );
            }
        }
        if started.elapsed() >= timeout {
            bail!(
                "the app did not become healthy within {:.1}s: GET {url} {last_error}\n{}",
                timeout.as_secs_f64(),
                log_tail(env).await
            );
        }
        tokio::time::sleep(Duration::from_millis(if polls < 20 { 10 } else { 100 })).await;
    }
}

/// The last lines of the app's log, as a diagnosis block.
pub async fn log_tail(env: &dyn Environment) -> String {
    match env.logs().await {
        Ok(logs) if logs.trim().is_empty() => "the app's log is empty".to_string(),
        Ok(logs) => {
            let lines: Vec<&str> = logs.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            format!("last lines of the app's log:\n  | {}", tail.join("\n  | "))
        }
        Err(e) => format!("(the app's log could not be read: {e:#})"),
    }
}
