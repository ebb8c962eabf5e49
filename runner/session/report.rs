//! What `verify` prints: one line per step with its duration, the diagnosis of a failure, and a
//! summary line whose counts never lie.

use std::fmt::Write as _;
use std::time::Duration;

use crate::actions::failure::as_failure;
use crate::session::engine::Phase;

/// How one step went.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub part: String,
    pub step: String,
    pub title: String,
    pub duration: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Passed,
    Failed {
        phase: Option<Phase>,
        diagnosis: String,
    },
}

impl StepResult {
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Passed)
    }

    /// Not run at all: its part's environment could not be brought up (no phase ran).
    pub fn environment_failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { phase: None, .. })
    }

    /// `    PASS [   0.412s] part2 2.0  Confirm the baseline`
    pub fn line(&self) -> String {
        let status = if self.passed() { "PASS" } else { "FAIL" };
        format!(
            "{:>8} [{:>8.3}s] {} {:<4} {}",
            status,
            self.duration.as_secs_f64(),
            self.part,
            self.step,
            self.title
        )
    }

    /// The diagnosis, indented under the step line.
    pub fn details(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Passed => None,
            Outcome::Failed { diagnosis, .. } => Some(indent(diagnosis, 6)),
        }
    }
}

/// Turns an error from a phase into a diagnosis: for a judgement, expected / saw / hint; for anything
/// else, the error chain.
pub fn diagnose(phase: Phase, err: &anyhow::Error) -> String {
    let mut out = String::new();
    match as_failure(err) {
        Some(failure) => {
            let _ = write!(out, "{phase} failed: {failure}");
            // What was being done around the judgement, and what lay under it.
            let shown = failure.to_string();
            let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
            let at = chain.iter().position(|e| *e == shown).unwrap_or(0);
            if at > 0 {
                let _ = write!(out, "\n  (while: {})", chain[..at].join(": "));
            }
            if at + 1 < chain.len() {
                let _ = write!(out, "\n  (because: {})", chain[at + 1..].join(": "));
            }
        }
        None => {
            let _ = write!(out, "{phase} failed: {err:#}");
        }
    }
    out
}

pub fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last line of a run: `7 passed, 0 failed`.
pub fn summary(results: &[StepResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}
