//! `lab-runner start <part>`: a participant alone at a terminal. Each step is shown, then: check my
//! work · do it for me · hint · show the commands again · skip · back · quit. Progress is saved after
//! every change, so leaving and coming back lands on the same step.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use dialoguer::console::{Key, Term};

use super::engine::{self, EngineOptions, PartSession, Phase};
use super::progress::Store;
use super::terminal::{Terminal, TerminalNarrator};
use crate::actions::context::Asker;
use crate::lab::guide::{self, RenderedStep};
use crate::lab::{Lab, Part, Step};

/// Printed when there is no terminal to talk to.
pub const NO_TERMINAL: &str = "`lab-runner start` is interactive and needs a terminal (stdin and stdout). \
Without one, use `lab-runner verify` (every step checked, for CI) or `lab-runner demo <part> --yes` \
(every step performed and narrated).";

const MENU: &str = "[c] check my work · [d] do it for me · [h] hint · [s] show the commands · [n] skip · [b] back · [q] quit";

pub struct StartOptions {
    pub keep: bool,
    pub engine: EngineOptions,
}

/// What the participant chose at a step.
enum Choice {
    Check,
    DoIt,
    Hint,
    ShowCommands,
    Skip,
    Back,
    Quit,
    Unknown,
}

/// Reads one key: the menu works with single letters (Enter checks).
fn read_choice() -> Result<Choice> {
    let key = Term::stdout().read_key()?;
    Ok(match key {
        Key::Char('c') | Key::Char('C') | Key::Enter => Choice::Check,
        Key::Char('d') | Key::Char('D') => Choice::DoIt,
        Key::Char('h') | Key::Char('H') => Choice::Hint,
        Key::Char('s') | Key::Char('S') => Choice::ShowCommands,
        Key::Char('n') | Key::Char('N') => Choice::Skip,
        Key::Char('b') | Key::Char('B') => Choice::Back,
        Key::Char('q') | Key::Char('Q') | Key::Escape | Key::CtrlC => Choice::Quit,
        _ => Choice::Unknown,
    })
}

/// Asks `ask:` questions at the terminal.
struct TerminalAsker;
impl Asker for TerminalAsker {
    fn ask(&self, question: &str) -> Result<String> {
        Ok(dialoguer::Input::<String>::new()
            .with_prompt(question)
            .allow_empty(true)
            .interact_text()?)
    }
}

/// Runs `part` interactively. Returns the exit code.
pub async fn run(lab: &Lab, part: &Part, options: &StartOptions) -> Result<u8> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        bail!(crate::cli::run::UsageError(NO_TERMINAL.into()));
    }
    let term = Terminal::detect();
    let store = Store::open_default()?;
    term.markdown(&format!("# {} — {}\n", lab.manifest.title, part.file.title));

    let spinner = term.spinner(&format!("bringing up the {} environment", part.id()));
    let report = |line: &str| spinner.set_message(line.to_string());
    let narrator = Box::new(TerminalNarrator::new(&term, true));
    let session = engine::open_part(
        lab,
        part,
        &options.engine,
        narrator,
        Some(Box::new(TerminalAsker)),
        &report,
    )
    .await;
    spinner.finish_and_clear();
    let session = session?;
    term.note(&format!("environment: {}", session.description));

    let outcome = run_steps(lab, part, &session, &term, &store).await;
    if options.keep {
        let vars = session.ctx.vars();
        term.note(&format!(
            "keeping the environment ({}); app at {}; remove it with `lab-runner cleanup`",
            session.description,
            vars.get("base_url")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        ));
        std::mem::forget(session);
    } else {
        let spinner = term.spinner("removing the environment");
        let removed = session.teardown().await;
        spinner.finish_and_clear();
        removed?;
    }
    outcome
}

async fn run_steps(
    lab: &Lab,
    part: &Part,
    session: &PartSession,
    term: &Terminal,
    store: &Store,
) -> Result<u8> {
    let steps = &part.file.steps;
    let progress = store.part(lab, part)?;
    let mut index = progress.resume_index(part);
    if index > 0 && index < steps.len() {
        term.note(&format!(
            "welcome back: {} of {} steps done; resuming at step {}",
            progress.done_count(part),
            steps.len(),
            steps[index].id
        ));
        replay(session, &steps[..index], term).await;
    } else if index == 0 {
        let vars = session.ctx.vars();
        term.markdown(&lab.manifest.description);
        term.markdown(&session.ctx.renderer().render(&part.file.intro, &vars)?);
    }
    while index < steps.len() {
        let step = &steps[index];
        store.update(lab, part, |p| p.current = Some(step.id.clone()))?;
        match run_step(lab, session, part, step, term).await? {
            StepEnd::Passed => {
                store.update(lab, part, |p| {
                    p.done.insert(step.id.clone());
                    p.skipped.remove(&step.id);
                })?;
                index += 1;
            }
            StepEnd::Skipped => {
                store.update(lab, part, |p| {
                    p.skipped.insert(step.id.clone());
                })?;
                index += 1;
            }
            StepEnd::Back => {
                if index == 0 {
                    term.note("this is the first step");
                } else {
                    index -= 1;
                }
            }
            StepEnd::Quit => {
                term.note(&format!(
                    "progress saved: `lab-runner start {}` resumes at step {}",
                    part.id(),
                    step.id
                ));
                return Ok(crate::cli::exit::SUCCESS);
            }
        }
    }
    store.update(lab, part, |p| p.current = None)?;
    let done = store.part(lab, part)?.done_count(part);
    term.good(&format!(
        "{} complete: {done} of {} steps checked",
        part.id(),
        steps.len()
    ));
    term.takeaways(part);
    Ok(crate::cli::exit::SUCCESS)
}

enum StepEnd {
    Passed,
    Skipped,
    Back,
    Quit,
}

/// Brings the environment to where `done` steps left it: their setup, solve and cleanup, quietly.
async fn replay(session: &PartSession, done: &[Step], term: &Terminal) {
    let ctx = session.ctx.quieted();
    for step in done {
        let spinner = term.spinner(&format!(
            "restoring the state after step {} ({})",
            step.id, step.title
        ));
        for phase in [Phase::Setup, Phase::Solve, Phase::Cleanup] {
            if let Err(e) = engine::run_phase(&ctx, step, phase).await {
                spinner.finish_and_clear();
                term.note(&format!(
                    "could not replay the {phase} of step {}: {e:#}",
                    step.id
                ));
                break;
            }
        }
        spinner.finish_and_clear();
    }
}

async fn run_step(
    lab: &Lab,
    session: &PartSession,
    part: &Part,
    step: &Step,
    term: &Terminal,
) -> Result<StepEnd> {
    let ctx = &session.ctx;
    if let Err(e) = engine::run_phase(ctx, step, Phase::Setup).await {
        term.bad(&format!("the setup of step {} failed", step.id));
        term.diagnosis(&e);
    }
    let rendered = match guide::render_step(ctx.renderer(), step, &ctx.vars()) {
        Ok(rendered) => rendered,
        Err(e) => {
            // A value an earlier (skipped) step would have made is missing: show the step with
            // placeholders and say what is missing, rather than leaving.
            term.bad(&format!(
                "step {} needs something an earlier step makes ({e:#}); do that step (press b to go back) or follow the placeholders below",
                step.id
            ));
            let mut vars = guide::placeholder_vars(lab, part, &guide::saved_names(part));
            vars.extend(ctx.vars());
            guide::render_step(ctx.renderer(), step, &vars)?
        }
    };
    show_step(part, &rendered, term);
    let mut next_hint = 0;
    let end = loop {
        term.note(MENU);
        let choice = tokio::task::spawn_blocking(read_choice).await??;
        match choice {
            Choice::Check => {
                if check(ctx, step, term).await {
                    break StepEnd::Passed;
                }
            }
            Choice::DoIt => {
                if step.solve.is_empty() {
                    term.note("this step is done by hand: nothing to do for you here");
                    continue;
                }
                term.note("doing it for you:");
                if let Err(e) = engine::run_phase(ctx, step, Phase::Solve).await {
                    term.bad("the solve failed");
                    term.diagnosis(&e);
                    continue;
                }
                if check(ctx, step, term).await {
                    break StepEnd::Passed;
                }
            }
            Choice::Hint => match rendered.hints.get(next_hint) {
                Some(hint) => {
                    term.markdown(&format!(
                        "**Hint {}/{}:** {hint}",
                        next_hint + 1,
                        rendered.hints.len()
                    ));
                    next_hint = (next_hint + 1) % rendered.hints.len();
                }
                None => term.note("no hints for this step"),
            },
            Choice::ShowCommands => {
                if rendered.commands.is_empty() {
                    term.note("this step has no commands");
                } else {
                    term.markdown(&rendered.commands);
                }
            }
            Choice::Skip => break StepEnd::Skipped,
            Choice::Back => break StepEnd::Back,
            Choice::Quit => break StepEnd::Quit,
            Choice::Unknown => {}
        }
    };
    if !matches!(end, StepEnd::Quit)
        && let Err(e) = engine::run_phase(ctx, step, Phase::Cleanup).await
    {
        term.note(&format!("the cleanup of step {} failed: {e:#}", step.id));
    }
    Ok(end)
}

/// Runs the step's check and shows each result; true when it passed.
async fn check(ctx: &crate::actions::Context, step: &Step, term: &Terminal) -> bool {
    term.note("checking…");
    match engine::run_phase(ctx, step, Phase::Check).await {
        Ok(()) => {
            term.good(&format!("step {} done", step.id));
            true
        }
        Err(e) => {
            term.diagnosis(&e);
            false
        }
    }
}

fn show_step(part: &Part, rendered: &RenderedStep, term: &Terminal) {
    term.step_heading(part, &rendered.id, &rendered.title);
    term.markdown(&rendered.instructions);
    if !rendered.commands_inline && !rendered.commands.is_empty() {
        term.markdown(&rendered.commands);
    }
}
