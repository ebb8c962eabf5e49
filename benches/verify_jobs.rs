//! Issue 18's `verify --jobs` figure, with the real binary and Docker on this machine: every part of
//! the shipped lab verified at once (`verify --jobs 3`, each part in an environment of its own)
//! against the longest part verified alone (goal ≤ 1.3×), and against the three one after another.
//!
//! Each round runs `verify part1`, `verify part2`, `verify part3` alone, then `verify --jobs 3`;
//! the figures are medians over the rounds. A run that does not pass fails the bench: a fast
//! failure measures nothing.
//!
//! Run with `cargo bench --bench verify_jobs` (needs Docker; about 4 minutes a round). `ROUNDS=N`
//! changes the rounds (default 3). Figures go to docs/PERFORMANCE.md by hand, with the date, the
//! machine and its load.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

#[path = "common/machine.rs"]
mod machine;
use machine::load;

const PARTS: [&str; 3] = ["part1", "part2", "part3"];

/// Runs `lab-runner verify ARGS` to its end, with its output kept; the time it took, or an error
/// with the tail of its output when it did not pass.
fn verify(state: &Path, args: &[&str]) -> Result<Duration> {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_lab-runner"))
        .arg("verify")
        .args(args)
        .env("LAB_RUNNER_STATE_DIR", state)
        .output()
        .with_context(|| format!("lab-runner verify {}", args.join(" ")))?;
    let took = t.elapsed();
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        bail!(
            "lab-runner verify {} did not pass ({}):\n{}\n{}",
            args.join(" "),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn s(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn main() -> Result<()> {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let state = tempfile::tempdir()?;
    println!("machine: load {} at the start", load());
    // The lab image, made once beforehand (no side of the comparison builds it).
    verify(state.path(), &["part2", "--step", "2.0"]).context("making the lab image")?;

    let mut alone: Vec<Vec<Duration>> = vec![Vec::new(); PARTS.len()];
    let mut together = Vec::new();
    for round in 1..=rounds {
        for (i, part) in PARTS.iter().enumerate() {
            alone[i].push(verify(state.path(), &[part])?);
        }
        together.push(verify(state.path(), &["--jobs", "3"])?);
        println!(
            "round {round}: {} alone {}; all three with --jobs 3 {} (load {})",
            PARTS.join(", "),
            alone
                .iter()
                .map(|runs| s(runs[round - 1]))
                .collect::<Vec<_>>()
                .join(", "),
            s(together[round - 1]),
            load()
        );
    }

    let alone: Vec<Duration> = alone.into_iter().map(median).collect();
    let (longest_part, longest) = PARTS
        .iter()
        .zip(&alone)
        .max_by_key(|(_, d)| **d)
        .map(|(p, d)| (*p, *d))
        .expect("three parts");
    let one_after_another: Duration = alone.iter().sum();
    let together = median(together);
    println!(
        "medians of {rounds}: {}",
        PARTS
            .iter()
            .zip(&alone)
            .map(|(p, d)| format!("{p} alone {}", s(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "verify --jobs 3 (all three parts): {} = {:.2}× the longest part alone ({longest_part}, {}) (goal ≤ 1.3×); {:.2}× the three one after another ({})",
        s(together),
        together.as_secs_f64() / longest.as_secs_f64(),
        s(longest),
        together.as_secs_f64() / one_after_another.as_secs_f64(),
        s(one_after_another)
    );
    println!("machine: load {} at the end", load());
    Ok(())
}
