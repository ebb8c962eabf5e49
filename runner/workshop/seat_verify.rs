//! `workshop verify PART`: the part's `verify`, once per seat, all at once, each a `lab-runner
//! verify` of its own in an environment of its own with the seats' limits (`--memory`, `--cpus`),
//! so the instructor knows before the room fills that every seat can do every step with what it is
//! given, under the load of all the others. The seats' own sessions are not touched.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::io::AsyncBufReadExt as _;

use super::seats::SeatsSpec;

/// The longest one seat's verify may take (a part's own steps have their own budgets).
const SEAT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How one seat's verify went.
#[derive(Debug, Clone)]
pub struct SeatResult {
    pub number: usize,
    pub passed: usize,
    pub failed: usize,
    /// The steps that failed, each with what its check said.
    pub failures: Vec<String>,
    pub elapsed: Duration,
    /// Why the run itself did not finish (it crashed, timed out, was stopped).
    pub broken: Option<String>,
}

impl SeatResult {
    pub fn ok(&self) -> bool {
        self.broken.is_none() && self.failed == 0 && self.passed > 0
    }
}

/// Runs `spec.part`'s verify for every one of `spec.count` seats at once.
pub async fn verify_all(spec: &SeatsSpec) -> Result<Vec<SeatResult>> {
    let exe = std::env::current_exe().context("Failed to find this lab-runner")?;
    let runs = (1..=spec.count).map(|number| verify_one(exe.clone(), spec, number));
    Ok(futures_util::future::join_all(runs).await)
}

async fn verify_one(exe: PathBuf, spec: &SeatsSpec, number: usize) -> SeatResult {
    let begun = Instant::now();
    let mut result = SeatResult {
        number,
        passed: 0,
        failed: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
        broken: None,
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args([
        "verify",
        &spec.part,
        "--backend",
        "docker",
        "--format",
        "json",
        // The commands where the seat's participant types them: its terminal container.
        "--isolated-shell",
    ])
    .args(["--memory", &spec.app_mb.to_string()])
    .args(["--cpus", &spec.cpus.to_string()]);
    if let Some(lab) = &spec.lab {
        cmd.arg("--lab").arg(lab);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            result.broken = Some(format!("could not start: {e}"));
            return result;
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let read = async {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            take_event(&line, &mut result);
        }
        let mut said = String::new();
        let mut err = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = err.next_line().await {
            said = line;
        }
        (child.wait().await, said)
    };
    match tokio::time::timeout(SEAT_TIMEOUT, read).await {
        Ok((Ok(status), _)) if status.success() || result.failed > 0 => {}
        Ok((Ok(status), said)) => {
            result.broken = Some(format!("verify ended with {status}: {said}"));
        }
        Ok((Err(e), _)) => result.broken = Some(format!("verify could not be waited for: {e}")),
        Err(_) => {
            result.broken = Some(format!(
                "verify took over {} min and was stopped",
                SEAT_TIMEOUT.as_secs() / 60
            ));
        }
    }
    result.elapsed = begun.elapsed();
    result
}

/// One event line of `verify --format json` (docs/events.md).
fn take_event(line: &str, result: &mut SeatResult) {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
        return;
    };
    match event["event"].as_str() {
        Some("step_finished") if event["outcome"] != "passed" => {
            let said = event["failure"]["saw"]
                .as_str()
                .or(event["error"].as_str())
                .unwrap_or("");
            result.failures.push(format!(
                "{} {} ({}{})",
                event["step"].as_str().unwrap_or("?"),
                event["title"].as_str().unwrap_or(""),
                event["outcome"].as_str().unwrap_or("failed"),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", said.chars().take(120).collect::<String>())
                }
            ));
        }
        Some("run_finished") => {
            result.passed = event["passed"].as_u64().unwrap_or(0) as usize;
            result.failed = event["failed"].as_u64().unwrap_or(0) as usize;
        }
        _ => {}
    }
}
