//! `verify --mutations`: is every part of a solve needed for its check?
//!
//! Each step is run again once per *mutant*: its solve with one command (of a `shell:` block) or one
//! action (nested ones included: a `pause_at` trigger, a `profile`'s `during`) left out. The check
//! must then fail — otherwise it passes for work the participant did not do. A part of the solve the
//! check does not judge (a `curl` that only shows the participant a status) is listed in the step's
//! `unchecked:` with the reason, and is not run.
//!
//! Every mutant starts from a fresh environment at the step's starting state ([`Replay`]): mutants
//! run in place, one after another, would judge each other's leftovers. That costs the part's time
//! up to the step per mutant, so mutants run `jobs` at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::{self, Phase};
use super::fresh::Replay;
use crate::lab::Step;
pub use crate::lab::mutants::{Mutant, mutants, without};
use crate::outcome::{Failure, Problem};

/// How a mutant fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MutantOutcome {
    /// The check failed without it: the check needs it.
    Caught { diagnosis: String },
    /// The check passed without it.
    Survived,
    /// Marked in the step's `unchecked:` (not run).
    Unchecked { reason: String },
    /// Could not be judged: its fresh environment, or replaying the earlier steps, failed.
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MutantResult {
    #[serde(flatten)]
    pub mutant: Mutant,
    #[serde(flatten)]
    pub outcome: MutantOutcome,
    pub seconds: f64,
}

/// The mutants of one step and how each fared (serialisable for machine-readable reports).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMutations {
    pub part: String,
    pub step: String,
    pub title: String,
    pub mutants: Vec<MutantResult>,
    /// Wall time of the step's mutants (they run in parallel).
    pub seconds: f64,
    /// Why the step has no mutants, when it has none (an observation step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Counts of a set of mutants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Score {
    pub caught: usize,
    pub unchecked: usize,
    pub survived: usize,
    pub errors: usize,
}

impl Score {
    pub fn of<'a>(mutants: impl IntoIterator<Item = &'a MutantResult>) -> Score {
        let mut s = Score::default();
        for m in mutants {
            match m.outcome {
                MutantOutcome::Caught { .. } => s.caught += 1,
                MutantOutcome::Unchecked { .. } => s.unchecked += 1,
                MutantOutcome::Survived => s.survived += 1,
                MutantOutcome::Error { .. } => s.errors += 1,
            }
        }
        s
    }

    pub fn total(&self) -> usize {
        self.caught + self.unchecked + self.survived + self.errors
    }

    /// Caught or marked, of all: 1.0 when every mutant is accounted for (1.0 with none).
    pub fn ratio(&self) -> f64 {
        if self.total() == 0 {
            1.0
        } else {
            (self.caught + self.unchecked) as f64 / self.total() as f64
        }
    }

    pub fn complete(&self) -> bool {
        self.survived == 0 && self.errors == 0
    }

    /// `6/6 (100 %): 4 caught, 2 unchecked`
    pub fn text(&self) -> String {
        let mut parts = vec![format!("{} caught", self.caught)];
        if self.unchecked > 0 {
            parts.push(format!("{} unchecked", self.unchecked));
        }
        if self.survived > 0 {
            parts.push(format!("{} survived", self.survived));
        }
        if self.errors > 0 {
            parts.push(format!("{} not judged", self.errors));
        }
        format!(
            "{}/{} ({:.0} %): {}",
            self.caught + self.unchecked,
            self.total(),
            self.ratio() * 100.0,
            parts.join(", ")
        )
    }
}

impl StepMutations {
    pub fn score(&self) -> Score {
        Score::of(&self.mutants)
    }

    /// The failure of a step whose mutants are not all caught or marked (None when they are).
    pub fn failure(&self) -> Option<Failure> {
        self.diagnosis().map(|text| {
            Failure::new(
                "the check, with one command or action of the solve left out at a time",
                "to fail each time (or the step to list what it need not see under `unchecked:`)",
                text,
            )
            .hint(Some(
                "make the check judge what the survivor does, or list it under the step's `unchecked:` \
                 with the reason the check need not see it",
            ))
        })
    }

    /// What a failing step's diagnosis says about its mutants (None when all are accounted for).
    pub fn diagnosis(&self) -> Option<String> {
        let bad: Vec<String> = self
            .mutants
            .iter()
            .filter_map(|m| match &m.outcome {
                MutantOutcome::Survived => Some(format!(
                    "without {} `{}` the check still passes",
                    m.mutant.id, m.mutant.left_out
                )),
                MutantOutcome::Error { message } => Some(format!(
                    "without {} `{}`: not judged: {message}",
                    m.mutant.id, m.mutant.left_out
                )),
                _ => None,
            })
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "mutations {}:\n{}",
                self.score().text(),
                bad.iter()
                    .map(|b| format!("  - {b}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    }
}

/// Runs every mutant of `step` (the `index`th of its part), `jobs` at a time, each in a fresh
/// environment at the step's start; unchecked ones are listed, not run.
pub async fn run_step(replay: Replay<'_>, index: usize, step: &Step, jobs: usize) -> StepMutations {
    let started = Instant::now();
    let mut result = StepMutations {
        part: replay.part.id().to_string(),
        step: step.id.clone(),
        title: step.title.clone(),
        mutants: Vec::new(),
        seconds: 0.0,
        skipped: None,
    };
    if !step.check_fails_before_solve || step.check.is_empty() || step.manual {
        result.skipped = Some(
            if step.check.is_empty() {
                "the step has no check"
            } else if step.manual {
                "the step is done by hand (no solve)"
            } else {
                "an observation step: its check holds before any solve, so no omission can fail it"
            }
            .into(),
        );
        return result;
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let runs = mutants(step).into_iter().map(|m| {
        let permits = permits.clone();
        async move {
            let began = Instant::now();
            let outcome = match &m.unchecked {
                Some(reason) => MutantOutcome::Unchecked {
                    reason: reason.clone(),
                },
                None => {
                    let _permit = permits.acquire().await;
                    judge(replay, index, step, &m).await
                }
            };
            MutantResult {
                mutant: m,
                outcome,
                seconds: began.elapsed().as_secs_f64(),
            }
        }
    });
    result.mutants = futures_util::future::join_all(runs).await;
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// One mutant: a fresh environment at the step's start, its setup, the solve without `m`, the check.
async fn judge(replay: Replay<'_>, index: usize, step: &Step, m: &Mutant) -> MutantOutcome {
    let solve = match without(&step.solve, m) {
        Ok(solve) => solve,
        Err(e) => {
            return MutantOutcome::Error {
                message: format!("{e:#}"),
            };
        }
    };
    let session = match replay.open_at(index).await {
        Ok(session) => session,
        Err(e) => {
            return MutantOutcome::Error {
                message: format!("{e:#}"),
            };
        }
    };
    let ctx = &session.ctx;
    let outcome = match engine::run_phase(ctx, step, Phase::Setup).await {
        Err(problem) => MutantOutcome::Error {
            message: format!("setup failed: {}", problem.text()),
        },
        Ok(()) => {
            let mutated = Step {
                solve,
                ..step.clone()
            };
            // A participant's incomplete work may well fail part way; they press Check all the same.
            let _ = engine::run_phase(ctx, &mutated, Phase::Solve).await;
            match engine::run_phase(ctx, step, Phase::Check).await {
                Ok(()) => MutantOutcome::Survived,
                Err(problem) => MutantOutcome::Caught {
                    diagnosis: diagnosis(&problem),
                },
            }
        }
    };
    let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
    let _ = tokio::time::timeout(Duration::from_secs(60), session.teardown()).await;
    outcome
}

fn diagnosis(problem: &Problem) -> String {
    format!("check failed: {}", problem.text())
}

/// Each part's mutation score, and the lab's, as the terminal's summary shows them.
pub fn summary(mutated: &[StepMutations]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut parts: Vec<&str> = mutated.iter().map(|m| m.part.as_str()).collect();
    parts.dedup();
    for part in parts {
        let of_part: Vec<&StepMutations> = mutated.iter().filter(|m| m.part == part).collect();
        let score = Score::of(of_part.iter().flat_map(|m| &m.mutants));
        let seconds: f64 = of_part.iter().map(|m| m.seconds).sum();
        lines.push(format!(
            "   MUTATIONS {part} [{seconds:>8.3}s] {}",
            score.text()
        ));
    }
    let score = Score::of(mutated.iter().flat_map(|m| &m.mutants));
    lines.push(format!("   MUTATIONS all {}", score.text()));
    lines
}
