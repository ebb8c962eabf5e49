//! A step's `mistakes:`: plausible wrong work, performed by verify instead of the solve, which the
//! check must reject with the mistake's hint in its diagnosis.
//!
//! Where a mistake runs: in the part's own session, right after the check before the solve (the
//! step's starting state), then the step's cleanup (its failures ignored: it was written for the
//! solved state) and the mistake's `undo:` put the world back before the next mistake and the real
//! solve. A mistake marked `fresh: true` (one whose effect nothing can undo, such as killing the
//! app) runs instead in an environment of its own, brought to the step's start by replaying the
//! part's earlier steps ([`Replay`]), which costs the part's time up to the step.

use std::time::Instant;

use serde::Serialize;

use super::engine::{self, PartSession, Phase};
use super::fresh::Replay;
use crate::actions::Context;
use crate::lab::{Mistake, Step};
use crate::outcome::{Done, Failure, Problem};

/// How one mistake fared (serialisable for machine-readable reports).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MistakeResult {
    pub name: String,
    /// The hint the diagnosis had to contain, rendered.
    pub hint: String,
    pub fresh: bool,
    /// The check's diagnosis of the mistake (None when the check accepted it).
    pub diagnosis: Option<String>,
    /// Why the mistake counts as not rejected (None when it was, with its hint).
    pub problem: Option<String>,
    pub seconds: f64,
}

impl MistakeResult {
    pub fn rejected(&self) -> bool {
        self.problem.is_none()
    }
}

/// Performs every mistake of `step` (the `index`th of its part); `session` is at the step's
/// starting state and is left there.
pub async fn run_all(
    replay: Replay<'_>,
    index: usize,
    session: &PartSession,
    step: &Step,
) -> Vec<MistakeResult> {
    let mut results = Vec::new();
    for mistake in &step.mistakes {
        let started = Instant::now();
        let mut result = if mistake.fresh {
            fresh(replay, index, step, mistake).await
        } else {
            in_place(&session.ctx, step, mistake).await
        };
        result.seconds = started.elapsed().as_secs_f64();
        results.push(result);
    }
    results
}

/// The failure of a step whose mistakes were not all rejected with their hints (None when they were).
pub fn failure(results: &[MistakeResult]) -> Option<Failure> {
    let bad: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.problem
                .as_ref()
                .map(|p| format!("mistake `{}`: {p}", r.name))
        })
        .collect();
    (!bad.is_empty()).then(|| {
        Failure::new(
            "the check, after each of the step's mistakes",
            "to reject each, with the mistake's hint",
            bad.join("\n"),
        )
    })
}

/// A phase's problem as the diagnosis shows it.
fn diagnose(phase: &str, problem: &Problem) -> String {
    format!("{phase} failed: {}", problem.text())
}

async fn in_place(ctx: &Context, step: &Step, mistake: &Mistake) -> MistakeResult {
    let mut result = judge(ctx, step, mistake).await;
    // The step's cleanup was written for the solved state (a resume with nothing paused may fail).
    let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
    if !mistake.undo.is_empty() {
        let undo = Step {
            solve: mistake.undo.clone(),
            ..step.clone()
        };
        if let Err(e) = engine::run_phase(ctx, &undo, Phase::Solve).await {
            let problem = format!(
                "its `undo:` failed, so the step cannot go on from its starting state: {}",
                diagnose("undo", &e)
            );
            result.problem = Some(match result.problem {
                Some(p) => format!("{p}; and {problem}"),
                None => problem,
            });
        }
    }
    result
}

async fn fresh(replay: Replay<'_>, index: usize, step: &Step, mistake: &Mistake) -> MistakeResult {
    let session = match replay.open_at(index).await {
        Ok(session) => session,
        Err(e) => {
            return MistakeResult {
                name: mistake.name.clone(),
                hint: mistake.hint.clone(),
                fresh: true,
                diagnosis: None,
                problem: Some(format!("not judged: {e:#}")),
                seconds: 0.0,
            };
        }
    };
    let result = match engine::run_phase(&session.ctx, step, Phase::Setup).await {
        Ok(()) => judge(&session.ctx, step, mistake).await,
        Err(e) => MistakeResult {
            name: mistake.name.clone(),
            hint: mistake.hint.clone(),
            fresh: true,
            diagnosis: None,
            problem: Some(format!("not judged: {}", diagnose("setup", &e))),
            seconds: 0.0,
        },
    };
    let _ = engine::run_phase(&session.ctx, step, Phase::Cleanup).await;
    let _ = session.teardown().await;
    result
}

/// Does the mistake's work, then judges the check: it must fail, saying the mistake's hint.
async fn judge(ctx: &Context, step: &Step, mistake: &Mistake) -> MistakeResult {
    let hint = ctx
        .render_str(&mistake.hint)
        .unwrap_or_else(|_| mistake.hint.clone());
    let mut result = MistakeResult {
        name: mistake.name.clone(),
        hint: hint.clone(),
        fresh: mistake.fresh,
        diagnosis: None,
        problem: None,
        seconds: 0.0,
    };
    let wrong = Step {
        solve: mistake.actions.clone(),
        ..step.clone()
    };
    // A participant's wrong commands may fail; they press Check all the same.
    let done: Done = engine::run_phase(ctx, &wrong, Phase::Solve).await;
    match engine::run_phase(ctx, step, Phase::Check).await {
        Ok(()) => {
            result.problem = Some(format!(
                "the check accepted it{}: make the check judge what this mistake gets wrong",
                match &done {
                    Ok(()) => String::new(),
                    Err(e) => format!(
                        " (although its own commands failed: {})",
                        diagnose("solve", e).lines().next().unwrap_or_default()
                    ),
                }
            ));
        }
        Err(e) => {
            let diagnosis = diagnose("check", &e);
            if !diagnosis.contains(&hint) {
                result.problem = Some(format!(
                    "the check rejected it, but its diagnosis does not give the mistake's hint \"{hint}\" \
                     (give the check that fails a `hint:` of its own); the diagnosis was:\n{}",
                    diagnosis
                        .lines()
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
            result.diagnosis = Some(diagnosis);
        }
    }
    result
}
