//! `lab-runner verify`: every step of every chosen part, non-interactive, in a fresh environment per
//! part: setup → check (must fail, unless the step opts out) → solve → check (must pass) → cleanup.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::engine::{self, EngineOptions, PartSession, Phase};
use super::fresh::Replay;
use super::junit;
use super::mistakes::{self, MistakeResult};
use super::mutations::{self, Score, StepMutations};
use super::report::{self, Outcome, StepResult};
use crate::actions::context::{Narrator, Silent};
use crate::lab::{Lab, Part, Step};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub parts: Vec<String>,
    pub junit: Option<PathBuf>,
    /// Leave each part's environment running.
    pub keep: bool,
    /// Stop at the first failing step.
    pub fail_fast: bool,
    /// Print what each action does.
    pub verbose: bool,
    /// Also run every step once per solve command or action left out (`--mutations`).
    pub mutations: bool,
    /// How many mutants run at once (each in an environment of its own).
    pub mutation_jobs: usize,
    pub engine: EngineOptions,
}

/// Prints narration indented under the current step (with `--verbose`).
struct Verbose;
impl Narrator for Verbose {
    fn say(&self, line: &str) {
        println!("           · {line}");
    }
    fn command(&self, shell: &str) {
        for (i, line) in shell.lines().enumerate() {
            println!("           {} {line}", if i == 0 { "$" } else { " " });
        }
    }
    fn output(&self, line: &str) {
        println!("             {line}");
    }
}

/// Runs the chosen parts; returns every step's result (in order).
pub async fn run(lab: &Lab, options: &VerifyOptions) -> Result<Vec<StepResult>> {
    let parts = lab.select_parts(&options.parts)?;
    let total_steps: usize = parts.iter().map(|p| p.file.steps.len()).sum();
    println!(
        "Verifying lab {} ({}): {} part(s), {} step(s)",
        lab.id(),
        lab.manifest.title,
        parts.len(),
        total_steps
    );
    let started = Instant::now();
    let mut results = Vec::new();
    let mut mutated: Vec<StepMutations> = Vec::new();
    for part in parts {
        let stop = run_part(lab, part, options, &mut results, &mut mutated).await;
        if stop {
            break;
        }
    }
    println!(
        "------------\n     Summary [{:>8.3}s] {} step(s) run",
        started.elapsed().as_secs_f64(),
        results.len()
    );
    for failed in results.iter().filter(|r| !r.passed()) {
        println!(
            "        FAIL {} {:<4} {}",
            failed.part, failed.step, failed.title
        );
    }
    if options.mutations {
        print_mutation_summary(&mutated);
    }
    if let Some(path) = &options.junit {
        junit::write(path, lab.id(), &results, &mutated)?;
        println!("JUnit report written to {}", path.display());
    }
    println!("{}", report::summary(&results));
    Ok(results)
}

/// Runs one part; returns true when verification should stop (fail-fast).
async fn run_part(
    lab: &Lab,
    part: &Part,
    options: &VerifyOptions,
    results: &mut Vec<StepResult>,
    mutated: &mut Vec<StepMutations>,
) -> bool {
    let started = Instant::now();
    let say = |line: &str| println!("       · {line}");
    let narrator: Box<dyn Narrator> = if options.verbose {
        Box::new(Verbose)
    } else {
        Box::new(Silent)
    };
    let session = match engine::open_part(lab, part, &options.engine, narrator, None, &say).await {
        Ok(session) => session,
        Err(e) => {
            // Every step of the part counts as failed: nothing was proven.
            let diagnosis = format!(
                "the environment of {} could not be brought up: {e:#}",
                part.id()
            );
            for step in &part.file.steps {
                let r = StepResult {
                    part: part.id().into(),
                    step: step.id.clone(),
                    title: step.title.clone(),
                    duration: std::time::Duration::ZERO,
                    outcome: Outcome::Failed {
                        phase: None,
                        diagnosis: diagnosis.clone(),
                    },
                };
                println!("{}", r.line());
                results.push(r);
            }
            println!("{}", report::indent(&diagnosis, 6));
            return options.fail_fast;
        }
    };
    println!(
        "   START [{:>8.3}s] {} {} — {}",
        started.elapsed().as_secs_f64(),
        part.id(),
        part.file.title,
        session.description
    );
    let _ = std::io::stdout().flush();
    let mut stop = false;
    let replay = Replay {
        lab,
        part,
        options: &options.engine,
    };
    for (index, step) in part.file.steps.iter().enumerate() {
        let (mut result, tried) = verify_step(&session, replay, index, step).await;
        if options.mutations && result.passed() {
            let m = mutations::run_step(replay, index, step, options.mutation_jobs).await;
            if let Some(diagnosis) = m.diagnosis() {
                result.outcome = Outcome::Failed {
                    phase: Some(Phase::Check),
                    diagnosis,
                };
            }
            mutated.push(m);
        }
        println!("{}", result.line());
        print_mistakes(&tried);
        if let Some(m) = mutated
            .last()
            .filter(|m| m.step == step.id && m.part == part.id())
        {
            print_mutations(m);
        }
        if let Some(details) = result.details() {
            println!("{details}");
        }
        let _ = std::io::stdout().flush();
        let failed = !result.passed();
        results.push(result);
        if failed && options.fail_fast {
            stop = true;
            break;
        }
    }
    if options.keep {
        println!(
            "       · keeping the {} environment: {} (remove it with `lab-runner cleanup`)",
            part.id(),
            session.description
        );
        let vars = session.ctx.vars();
        if let Some(url) = vars.get("base_url") {
            println!(
                "       · app: {}  token: {}",
                url.as_str().unwrap_or_default(),
                vars.get("token")
                    .and_then(|t| t.as_str())
                    .unwrap_or_default()
            );
        }
        println!("       · artifacts: {}", session.artifacts_dir.display());
        std::mem::forget(session);
    } else if let Err(e) = session.teardown().await {
        println!("       · {e:#}");
    }
    stop
}

fn print_mistakes(tried: &[MistakeResult]) {
    let rejected: Vec<&str> = tried
        .iter()
        .filter(|m| m.rejected())
        .map(|m| m.name.as_str())
        .collect();
    if !rejected.is_empty() {
        let seconds: f64 = tried.iter().map(|m| m.seconds).sum();
        println!(
            "           · rejected with its hint [{seconds:.1}s]: {}",
            rejected.join("; ")
        );
    }
}

fn print_mutations(m: &StepMutations) {
    match &m.skipped {
        Some(why) => println!("           · mutations: none ({why})"),
        None => println!(
            "           · mutations [{:.1}s]: {}",
            m.seconds,
            m.score().text()
        ),
    }
}

/// Each part's mutation score, and the lab's.
fn print_mutation_summary(mutated: &[StepMutations]) {
    let mut parts: Vec<&str> = mutated.iter().map(|m| m.part.as_str()).collect();
    parts.dedup();
    for part in parts {
        let of_part: Vec<&StepMutations> = mutated.iter().filter(|m| m.part == part).collect();
        let score = Score::of(of_part.iter().flat_map(|m| &m.mutants));
        let seconds: f64 = of_part.iter().map(|m| m.seconds).sum();
        println!("   MUTATIONS {part} [{seconds:>8.3}s] {}", score.text());
    }
    let score = Score::of(mutated.iter().flat_map(|m| &m.mutants));
    println!("   MUTATIONS all {}", score.text());
}

/// One step through all its phases (and its mistakes, from its starting state).
pub async fn verify_step(
    session: &PartSession,
    replay: Replay<'_>,
    index: usize,
    step: &Step,
) -> (StepResult, Vec<MistakeResult>) {
    let started = Instant::now();
    let mut tried = Vec::new();
    let outcome = step_outcome(session, replay, index, step, &mut tried).await;
    let outcome = match (outcome, mistakes::diagnosis(&tried)) {
        (Outcome::Passed, Some(diagnosis)) => Outcome::Failed {
            phase: Some(Phase::Check),
            diagnosis,
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
    tried: &mut Vec<MistakeResult>,
) -> Outcome {
    let ctx = &session.ctx;
    let fail = |phase: Phase, e: anyhow::Error| Outcome::Failed {
        phase: Some(phase),
        diagnosis: report::diagnose(phase, &e),
    };
    if let Err(e) = engine::run_phase(ctx, step, Phase::Setup).await {
        return fail(Phase::Setup, e);
    }
    // The guide must render with the live session's variables, as a participant would see it.
    if let Err(e) = crate::lab::guide::render_step(ctx.renderer(), ctx.app(), step, &ctx.vars()) {
        return fail(Phase::Setup, e);
    }
    if step.check_fails_before_solve && !step.check.is_empty() {
        let unsolved = ctx.expecting_failure();
        if engine::run_phase(&unsolved, step, Phase::CheckBeforeSolve)
            .await
            .is_ok()
        {
            let outcome = Outcome::Failed {
                phase: Some(Phase::CheckBeforeSolve),
                diagnosis: "the check passed before the solve ran, so it cannot tell a solved step from an \
                            unsolved one; make the check stricter, or set `check_fails_before_solve: false` \
                            for an observation step"
                    .into(),
            };
            let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
            return outcome;
        }
    }
    // Wrong work from the starting state: the check must reject each with its hint.
    *tried = mistakes::run_all(replay, index, session, step).await;
    if let Err(e) = engine::run_phase(ctx, step, Phase::Solve).await {
        let outcome = fail(Phase::Solve, e);
        let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
        return outcome;
    }
    if let Err(e) = engine::run_phase(ctx, step, Phase::Check).await {
        let outcome = fail(Phase::Check, e);
        let _ = engine::run_phase(ctx, step, Phase::Cleanup).await;
        return outcome;
    }
    if let Err(e) = engine::run_phase(ctx, step, Phase::Cleanup).await {
        return fail(Phase::Cleanup, e);
    }
    Outcome::Passed
}
