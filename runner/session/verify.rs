//! `lab-runner verify`: every step of every chosen part, non-interactive, in a fresh environment per
//! part: setup → check (must fail, unless the step opts out) → the step's mistakes (each rejected
//! with its hint) → solve → check (must pass) → cleanup; with `--mutations`, then the step again per
//! solve command or action left out, each in a fresh environment (the check must fail).
//! What happens is emitted as events ([`super::events`]); the reporters the command line chose print
//! it (the terminal's lines, JSON lines, JUnit).

use std::time::Instant;

use anyhow::Result;
use futures_util::StreamExt;

use super::engine::{self, EngineOptions, PartSession, Phase};
use super::events::{Event, Events, Tone, millis};
use super::fresh::Replay;
use super::mistakes::{self, MistakeResult};
use super::mutations;
use crate::lab::{Lab, Part, Step};
use crate::outcome::{Outcome, StepResult};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub parts: Vec<String>,
    /// Leave each part's environment running.
    pub keep: bool,
    /// Stop at the first failing step.
    pub fail_fast: bool,
    /// Also run every step once per solve command or action left out (`--mutations`).
    pub mutations: bool,
    /// How many mutants run at once (each in an environment of its own).
    pub mutation_jobs: usize,
    /// How many parts run at once (each in an environment of its own).
    pub jobs: usize,
    /// Verify only this step (`--step 2.3`), after solving the steps before it in its part.
    pub step: Option<String>,
    pub engine: EngineOptions,
}

/// Runs the chosen parts; returns every step's result (in order).
pub async fn run(lab: &Lab, options: &VerifyOptions, events: &Events) -> Result<Vec<StepResult>> {
    let parts = lab.select_parts(&options.parts)?;
    // With `--step`: the one part that has the step, and the step's index in it.
    let only = match &options.step {
        None => None,
        Some(id) => Some(find_step(&parts, id)?),
    };
    let parts: Vec<&Part> = match only {
        Some((part, _)) => vec![part],
        None => parts,
    };
    events.emit(Event::RunStarted {
        lab: lab.id().to_string(),
        title: lab.manifest.title.clone(),
        parts: parts.iter().map(|p| p.id().to_string()).collect(),
        steps: match only {
            Some(_) => 1,
            None => parts.iter().map(|p| p.file.steps.len()).sum(),
        },
    });
    let started = Instant::now();
    // Parts run `jobs` at a time, each with its own place in the stream; with --fail-fast no
    // part starts after one stopped. Results are put back in the parts' order.
    let stopped = std::sync::atomic::AtomicBool::new(false);
    let mut by_part: Vec<(usize, Vec<StepResult>)> =
        futures_util::stream::iter(parts.iter().enumerate())
            .map(|(index, part)| {
                let stopped = &stopped;
                let events = if options.jobs > 1 {
                    events.scoped()
                } else {
                    events.clone()
                };
                async move {
                    let mut results = Vec::new();
                    if !stopped.load(std::sync::atomic::Ordering::SeqCst)
                        && run_part(
                            lab,
                            part,
                            only.map(|(_, i)| i),
                            options,
                            &events,
                            &mut results,
                        )
                        .await
                    {
                        stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    (index, results)
                }
            })
            .buffer_unordered(options.jobs.max(1))
            .collect()
            .await;
    by_part.sort_by_key(|(index, _)| *index);
    let results: Vec<StepResult> = by_part.into_iter().flat_map(|(_, r)| r).collect();
    let passed = results.iter().filter(|r| r.passed()).count();
    events.emit(Event::RunFinished {
        passed,
        failed: results.len() - passed,
        duration_ms: millis(started.elapsed()),
    });
    Ok(results)
}

/// The part among `parts` that has the step `id`, and the step's index in it.
fn find_step<'a>(parts: &[&'a Part], id: &str) -> Result<(&'a Part, usize)> {
    parts
        .iter()
        .find_map(|part| {
            part.file
                .steps
                .iter()
                .position(|s| s.id == id)
                .map(|i| (*part, i))
        })
        .ok_or_else(|| {
            let known: Vec<&str> = parts
                .iter()
                .flat_map(|p| p.file.steps.iter().map(|s| s.id.as_str()))
                .collect();
            anyhow::anyhow!(
                "there is no step `{id}` in the parts chosen; the steps are: {}",
                known.join(", ")
            )
        })
}

/// Runs one part (or only its step `only`, the steps before it solved first); returns true when
/// verification should stop (fail-fast).
async fn run_part(
    lab: &Lab,
    part: &Part,
    only: Option<usize>,
    options: &VerifyOptions,
    events: &Events,
    results: &mut Vec<StepResult>,
) -> bool {
    let started = Instant::now();
    let first = results.len();
    events.emit(Event::PartStarted {
        part: part.id().to_string(),
        title: part.file.title.clone(),
        lab_title: lab.manifest.title.clone(),
        steps: part
            .file
            .steps
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o == *i))
            .map(|(_, s)| s.id.clone())
            .collect(),
    });
    let say = |line: &str| events.note(line, Tone::Plain);
    let opened = engine::open_part(lab, part, &options.engine, events.narrator(), None, &say).await;
    let session = match opened {
        Ok(session) => session,
        Err(e) => {
            // Every step of the part counts as failed: nothing was proven.
            engine::announce_failed(events, part, &e);
            let error = format!("{e:#}");
            for step in &part.file.steps {
                let result = StepResult {
                    part: part.id().into(),
                    step: step.id.clone(),
                    title: step.title.clone(),
                    duration: std::time::Duration::ZERO,
                    outcome: Outcome::EnvironmentFailed {
                        error: error.clone(),
                    },
                };
                finished(events, &result);
                results.push(result);
            }
            part_finished(events, part, &results[first..], started);
            return options.fail_fast;
        }
    };
    session.announce_ready(events, part, started);
    let mut stop = false;
    let replay = Replay {
        lab,
        part,
        options: &options.engine,
    };
    let mut reached = Ok(());
    if let Some(index) = only
        && index > 0
    {
        let before: Vec<&str> = part.file.steps[..index]
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        events.note(
            format!(
                "solving {} first (setup, solve, check, cleanup), to reach the start of step {}",
                before.join(", "),
                part.file.steps[index].id
            ),
            Tone::Plain,
        );
        reached = super::fresh::solve_steps_before(&session, part, index).await;
    }
    let chosen: Vec<(usize, &Step)> = part
        .file
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .collect();
    let of = chosen.len();
    for (n, (i, step)) in chosen.into_iter().enumerate() {
        events.emit(Event::StepStarted {
            part: part.id().to_string(),
            step: step.id.clone(),
            title: step.title.clone(),
            index: n + 1,
            of,
        });
        if let Err(e) = &reached {
            // The steps before it did not pass as solved: the step's start was never reached.
            let result = StepResult {
                part: part.id().into(),
                step: step.id.clone(),
                title: step.title.clone(),
                duration: std::time::Duration::ZERO,
                outcome: Outcome::ActionFailed {
                    phase: Phase::Setup,
                    error: format!("{e:#}"),
                },
            };
            finished(events, &result);
            results.push(result);
            stop = options.fail_fast;
            break;
        }
        let (mut result, tried) = verify_step(&session, replay, i, step, events).await;
        if !tried.is_empty() {
            events.emit(Event::MistakesJudged {
                part: part.id().to_string(),
                step: step.id.clone(),
                mistakes: tried,
            });
        }
        if options.mutations && result.passed() {
            let m = mutations::run_step(replay, i, step, options.mutation_jobs).await;
            if let Some(failure) = m.failure() {
                result.outcome = Outcome::CheckFailed {
                    phase: Phase::Check,
                    failure,
                };
            }
            events.emit(Event::MutationsJudged { mutations: m });
        }
        finished(events, &result);
        let failed = !result.passed();
        results.push(result);
        if failed && options.fail_fast {
            stop = true;
            break;
        }
    }
    if options.keep {
        session.keep(events, part);
    } else if let Err(e) = session.teardown().await {
        events.note(format!("{e:#}"), Tone::Bad);
    }
    part_finished(events, part, &results[first..], started);
    stop
}

fn finished(events: &Events, result: &StepResult) {
    events.emit(Event::StepFinished {
        part: result.part.clone(),
        step: result.step.clone(),
        title: result.title.clone(),
        outcome: result.outcome.clone(),
        duration_ms: millis(result.duration),
    });
}

fn part_finished(events: &Events, part: &Part, results: &[StepResult], started: Instant) {
    let passed = results.iter().filter(|r| r.passed()).count();
    events.emit(Event::PartFinished {
        part: part.id().to_string(),
        passed,
        failed: results.len() - passed,
        duration_ms: millis(started.elapsed()),
    });
}

/// One step through all its phases (and its mistakes, from its starting state).
pub async fn verify_step(
    session: &PartSession,
    replay: Replay<'_>,
    index: usize,
    step: &Step,
    events: &Events,
) -> (StepResult, Vec<MistakeResult>) {
    let started = Instant::now();
    let mut tried = Vec::new();
    let outcome = step_outcome(session, replay, index, step, events, &mut tried).await;
    let outcome = match (outcome, mistakes::failure(&tried)) {
        (Outcome::Passed, Some(failure)) => Outcome::CheckFailed {
            phase: Phase::Check,
            failure,
        },
        (outcome, _) => outcome,
    };
    let result = StepResult {
        part: replay.part.id().into(),
        step: step.id.clone(),
        title: step.title.clone(),
        duration: started.elapsed(),
        outcome,
    };
    (result, tried)
}

async fn step_outcome(
    session: &PartSession,
    replay: Replay<'_>,
    index: usize,
    step: &Step,
    events: &Events,
    tried: &mut Vec<MistakeResult>,
) -> Outcome {
    let part = replay.part;
    let ctx = &session.ctx;
    let judged = |before_solve: bool, outcome: &Outcome| {
        events.emit(Event::CheckJudged {
            part: part.id().to_string(),
            step: step.id.clone(),
            before_solve,
            outcome: outcome.clone(),
        })
    };
    if let Err(problem) = engine::run_phase(ctx, step, Phase::Setup).await {
        return Outcome::failed(Phase::Setup, problem);
    }
    // The guide must render with the live session's variables, as a participant would see it.
    if let Err(e) = crate::lab::guide::render_step(ctx.renderer(), ctx.app(), step, &ctx.vars()) {
        return Outcome::failed(Phase::Setup, e.into());
    }
    if step.check_fails_before_solve && !step.check.is_empty() {
        let unsolved = ctx.expecting_failure();
        let before = match engine::run_phase(&unsolved, step, Phase::CheckBeforeSolve).await {
            Ok(()) => Outcome::Passed,
            Err(problem) => Outcome::failed(Phase::CheckBeforeSolve, problem),
        };
        judged(true, &before);
        if before.passed() {
            let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
            return Outcome::HeldBeforeSolve;
        }
    }
    // Wrong work from the starting state: the check must reject each with its hint.
    *tried = mistakes::run_all(replay, index, session, step).await;
    if let Err(problem) = engine::run_phase(ctx, step, Phase::Solve).await {
        let outcome = Outcome::failed(Phase::Solve, problem);
        let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
        return outcome;
    }
    let checked = match engine::run_phase(ctx, step, Phase::Check).await {
        Ok(()) => Outcome::Passed,
        Err(problem) => Outcome::failed(Phase::Check, problem),
    };
    judged(false, &checked);
    if !checked.passed() {
        let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
        return checked;
    }
    if let Err(problem) = engine::run_phase(ctx, step, Phase::Cleanup).await {
        return Outcome::failed(Phase::Cleanup, problem);
    }
    Outcome::Passed
}
