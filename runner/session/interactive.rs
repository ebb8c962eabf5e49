//! `lab-runner start <part>`: a participant alone at a terminal. Each step is shown, then: check my
//! work · do it for me · hint · show the commands again · skip · back · quit. Progress is saved after
//! every change, so leaving and coming back lands on the same step.
//!
//! `lab-runner check` from another terminal asks this loop, through the session's control socket,
//! for the same check as `c`: shown here, its lines sent there, and a pass moves on as `c` would.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use dialoguer::console::{Key, Term};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::control::{CheckRequest, Response};
use super::engine::{self, EngineOptions, PartSession, Phase};
use super::events::{Event, Events, Tone, millis};
use super::progress::Store;
use super::screen::RemoteCheckReporter;
use crate::actions::context::Asker;
use crate::lab::guide::{self, RenderedStep};
use crate::lab::{Action, Lab, Part, Step};
use crate::outcome::{Outcome, UsageError};

/// Printed when there is no terminal to talk to.
pub const NO_TERMINAL: &str = "`lab-runner start` is interactive and needs a terminal (stdin and stdout). \
Without one, use `lab-runner verify` (every step checked, for CI) or `lab-runner demo <part> --yes` \
(every step performed and narrated).";

const MENU: &[&str] = &[
    "[c] check my work",
    "[d] do it for me",
    "[h] hint",
    "[s] show the commands",
    "[n] skip",
    "[b] back",
    "[q] quit",
];

pub struct StartOptions {
    pub keep: bool,
    pub engine: EngineOptions,
    /// Choices from another face of the session (the browser guide, `start --web`): they enter
    /// the step's menu exactly where the terminal's keys do. With them, no terminal is needed.
    pub remote: Option<mpsc::Receiver<Choice>>,
    /// Who answers a check's questions when there is no terminal (the browser guide); with a
    /// terminal, it does.
    pub asker: Option<Box<dyn Asker>>,
    /// Told where the session's inspector is while its environment is up (the browser guide's
    /// DevTools proxy).
    pub inspector: Option<super::inspector_link::InspectorLink>,
    /// Called once the part's environment is up, with the session's context (the page's terminal
    /// panel, `start --web --shell`, types into its participant terminals).
    pub on_ready: Option<OnReady>,
}

/// What is handed the session's context when its environment is up.
pub type OnReady = Box<dyn FnOnce(&crate::actions::Context) + Send>;

/// What the participant chose at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Check,
    DoIt,
    Hint,
    ShowCommands,
    Skip,
    Back,
    Quit,
    Unknown,
}

impl Choice {
    /// The menu's choices another face may send, by name (the browser's buttons), with their
    /// keys: the terminal menu's, without quit (a page does not end the session).
    pub const REMOTE: &[(&'static str, char, Choice)] = &[
        ("check", 'c', Choice::Check),
        ("do", 'd', Choice::DoIt),
        ("hint", 'h', Choice::Hint),
        ("commands", 's', Choice::ShowCommands),
        ("skip", 'n', Choice::Skip),
        ("back", 'b', Choice::Back),
    ];

    /// A remote choice by its name; `None` for anything the menu does not offer.
    pub fn named(name: &str) -> Option<Choice> {
        Choice::REMOTE
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, c)| *c)
    }
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

/// What the loop waits for at a step's menu.
enum InputEvent {
    /// A key at this terminal, or the same choice from another face (the browser).
    Key(Choice),
    /// `lab-runner check` from another terminal.
    Check(CheckRequest),
}

/// The loop's inputs: the keyboard, read by one blocking reader that outlives a remote check (so
/// there is never a second one), and the session's check requests.
struct Input {
    pending: Option<JoinHandle<Result<Choice>>>,
    /// Whether keys are read from this terminal (not when there is none: `start --web`).
    keyboard: bool,
    checks: Option<mpsc::Receiver<CheckRequest>>,
    /// Choices from another face of the session (the browser guide).
    remote: Option<mpsc::Receiver<Choice>>,
    /// The terminal's settings before any key was read: the reader puts it in raw mode while it
    /// waits, so one still waiting when the loop ends leaves it raw unless they are put back.
    saved: Option<nix::sys::termios::Termios>,
}

impl Input {
    fn new(
        keyboard: bool,
        checks: Option<mpsc::Receiver<CheckRequest>>,
        remote: Option<mpsc::Receiver<Choice>>,
    ) -> Input {
        Input {
            pending: None,
            keyboard,
            checks,
            remote,
            saved: nix::sys::termios::tcgetattr(std::io::stdin()).ok(),
        }
    }

    /// The next key (from this terminal or another face), or the next check request, whichever
    /// comes first. This is the one place the participant's choices enter the session.
    async fn next(&mut self) -> Result<InputEvent> {
        enum Woke {
            Key(std::result::Result<Result<Choice>, tokio::task::JoinError>),
            Check(Option<CheckRequest>),
            Remote(Option<Choice>),
        }
        loop {
            if self.keyboard {
                self.pending
                    .get_or_insert_with(|| tokio::task::spawn_blocking(read_choice));
            }
            let woke = tokio::select! {
                read = next_key(&mut self.pending) => Woke::Key(read),
                request = next_from(&mut self.checks) => Woke::Check(request),
                choice = next_from(&mut self.remote) => Woke::Remote(choice),
            };
            match woke {
                Woke::Key(read) => {
                    self.pending = None;
                    return Ok(InputEvent::Key(read.context("the key reader stopped")??));
                }
                Woke::Check(Some(request)) => return Ok(InputEvent::Check(request)),
                // The control socket is gone: keys only.
                Woke::Check(None) => self.checks = None,
                Woke::Remote(Some(choice)) => return Ok(InputEvent::Key(choice)),
                Woke::Remote(None) => {
                    self.remote = None;
                    if !self.keyboard && self.checks.is_none() {
                        bail!(
                            "the browser guide stopped and there is no terminal to read keys from"
                        );
                    }
                }
            }
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if self.pending.is_some()
            && let Some(saved) = &self.saved
        {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                saved,
            );
        }
    }
}

async fn next_from<T>(source: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match source {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_key(
    pending: &mut Option<JoinHandle<Result<Choice>>>,
) -> std::result::Result<Result<Choice>, tokio::task::JoinError> {
    match pending {
        Some(reader) => reader.await,
        None => std::future::pending().await,
    }
}

/// Said when a check asks a question and there is no terminal to answer it at.
const NO_TERMINAL_TO_ASK: &str = "this check asks a question, and `start --web` runs without a \
terminal to answer it in: run `lab-runner start PART --web` from a terminal";

/// Asks `ask:` questions at the terminal (when there is none, says so: the step's check fails
/// with that as its diagnosis).
struct TerminalAsker {
    terminal: bool,
}
impl Asker for TerminalAsker {
    fn ask(&self, question: &str) -> Result<String> {
        if !self.terminal {
            bail!(NO_TERMINAL_TO_ASK);
        }
        Ok(dialoguer::Input::<String>::new()
            .with_prompt(question)
            .allow_empty(true)
            .interact_text()?)
    }
}

/// How a `start` session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartEnd {
    /// Every step of the part is done.
    Completed,
    /// The participant quit; progress is saved.
    Quit,
}

/// Runs `part` interactively.
pub async fn run(
    lab: &Lab,
    part: &Part,
    options: StartOptions,
    events: &Events,
) -> Result<StartEnd> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !terminal && options.remote.is_none() {
        bail!(UsageError(NO_TERMINAL.into()));
    }
    let store = Store::open_default()?;
    let started = Instant::now();
    events.emit(Event::part_started(lab, part));
    let busy = |text: Option<String>| {
        events.emit(Event::Busy {
            part: Some(part.id().to_string()),
            text,
        })
    };
    busy(Some(format!("bringing up the {} environment", part.id())));
    let report = |line: &str| events.note(line, Tone::Plain);
    let session = engine::open_part(
        lab,
        part,
        &options.engine,
        events.narrator(),
        Some(match options.asker {
            Some(asker) if !terminal => asker,
            _ => Box::new(TerminalAsker { terminal }),
        }),
        &report,
    )
    .await;
    busy(None);
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            engine::announce_failed(events, part, &e);
            return Err(e);
        }
    };
    session.announce_ready(events, part, started);
    if let Some(link) = &options.inspector {
        link.attach(&session.ctx);
    }
    if let Some(on_ready) = options.on_ready {
        on_ready(&session.ctx);
    }

    let mut input = Input::new(terminal, session.take_check_requests(), options.remote);
    let outcome = run_steps(lab, part, &session, events, &store, &mut input).await;
    drop(input);
    if let Some(link) = &options.inspector {
        link.detach();
    }
    if let Ok(StartEnd::Completed) = outcome {
        // A participant does not fail a step: they try again, skip it, or leave.
        events.emit(Event::PartFinished {
            part: part.id().to_string(),
            passed: store.part(lab, part)?.done_count(part),
            failed: 0,
            duration_ms: millis(started.elapsed()),
        });
    }
    if options.keep {
        session.keep(events, part);
    } else {
        busy(Some("removing the environment".into()));
        let removed = session.teardown().await;
        busy(None);
        removed?;
    }
    outcome
}

/// Saves a change to the participant's progress and says so.
fn save_progress(
    store: &Store,
    lab: &Lab,
    part: &Part,
    events: &Events,
    change: impl FnOnce(&mut super::progress::PartProgress),
) -> Result<()> {
    store.update(lab, part, change)?;
    let progress = store.part(lab, part)?;
    events.emit(Event::ProgressSaved {
        part: part.id().to_string(),
        current: progress.current.clone(),
        done: progress.done.iter().cloned().collect(),
        skipped: progress.skipped.iter().cloned().collect(),
    });
    Ok(())
}

async fn run_steps(
    lab: &Lab,
    part: &Part,
    session: &PartSession,
    events: &Events,
    store: &Store,
    input: &mut Input,
) -> Result<StartEnd> {
    let steps = &part.file.steps;
    let progress = store.part(lab, part)?;
    let mut index = progress.resume_index(part);
    let shown = |markdown: String| {
        events.emit(Event::Shown {
            part: part.id().to_string(),
            markdown,
        })
    };
    if index > 0 && index < steps.len() {
        events.note(
            format!(
                "welcome back: {} of {} steps done; resuming at step {}",
                progress.done_count(part),
                steps.len(),
                steps[index].id
            ),
            Tone::Plain,
        );
        replay(session, &steps[..index], events).await;
    } else if index == 0 {
        let vars = session.ctx.vars();
        shown(format!("{}\n", lab.manifest.description));
        shown(session.ctx.renderer().render(&part.file.intro, &vars)?);
    }
    while index < steps.len() {
        let step = &steps[index];
        save_progress(store, lab, part, events, |p| {
            p.current = Some(step.id.clone())
        })?;
        let started = Instant::now();
        events.emit(Event::StepStarted {
            part: part.id().to_string(),
            step: step.id.clone(),
            title: step.title.clone(),
            index: index + 1,
            of: steps.len(),
        });
        let end = run_step(lab, session, part, step, index, events, input).await?;
        events.emit(Event::StepFinished {
            part: part.id().to_string(),
            step: step.id.clone(),
            title: step.title.clone(),
            outcome: match end {
                StepEnd::Passed => Outcome::Passed,
                StepEnd::Skipped => Outcome::Skipped,
                StepEnd::Back | StepEnd::Quit => Outcome::Interrupted,
            },
            duration_ms: millis(started.elapsed()),
        });
        match end {
            StepEnd::Passed => {
                save_progress(store, lab, part, events, |p| {
                    p.done.insert(step.id.clone());
                    p.skipped.remove(&step.id);
                })?;
                index += 1;
            }
            StepEnd::Skipped => {
                save_progress(store, lab, part, events, |p| {
                    p.skipped.insert(step.id.clone());
                })?;
                index += 1;
            }
            StepEnd::Back => {
                if index == 0 {
                    events.note("this is the first step", Tone::Plain);
                } else {
                    index -= 1;
                }
            }
            StepEnd::Quit => {
                events.note(
                    format!(
                        "progress saved: `lab-runner start {}` resumes at step {}",
                        part.id(),
                        step.id
                    ),
                    Tone::Plain,
                );
                return Ok(StartEnd::Quit);
            }
        }
    }
    save_progress(store, lab, part, events, |p| p.current = None)?;
    let progress = store.part(lab, part)?;
    let done = progress.done_count(part);
    events.note(
        format!(
            "{} complete: {done} of {} steps checked",
            part.id(),
            steps.len()
        ),
        Tone::Good,
    );
    if let Some(takeaways) = super::terminal::takeaways(part) {
        shown(takeaways);
    }
    let last = lab.parts.last().is_some_and(|p| p.id() == part.id());
    if last && !lab.manifest.closing.trim().is_empty() {
        shown(lab.manifest.closing.clone());
    }
    Ok(StartEnd::Completed)
}

enum StepEnd {
    Passed,
    Skipped,
    Back,
    Quit,
}

/// Brings the environment to where `done` steps left it: their setup, solve and cleanup, quietly.
async fn replay(session: &PartSession, done: &[Step], events: &Events) {
    let ctx = session.ctx.quieted();
    let busy = |text: Option<String>| events.emit(Event::Busy { part: None, text });
    for step in done {
        busy(Some(format!(
            "restoring the state after step {} ({})",
            step.id, step.title
        )));
        for phase in [Phase::Setup, Phase::Solve, Phase::Cleanup] {
            if let Err(problem) = engine::run_phase(&ctx, step, phase).await {
                busy(None);
                events.note(
                    format!(
                        "could not replay the {phase} of step {}: {}",
                        step.id,
                        problem.text()
                    ),
                    Tone::Plain,
                );
                break;
            }
        }
        busy(None);
    }
}

async fn run_step(
    lab: &Lab,
    session: &PartSession,
    part: &Part,
    step: &Step,
    index: usize,
    events: &Events,
    input: &mut Input,
) -> Result<StepEnd> {
    let ctx = &session.ctx;
    let note = |text: String, tone: Tone| events.note(text, tone);
    let phase_failed = |phase: Phase, problem| {
        events.emit(Event::PhaseFailed {
            part: part.id().to_string(),
            step: step.id.clone(),
            outcome: Outcome::failed(phase, problem),
        })
    };
    let setup = engine::run_phase(ctx, step, Phase::Setup).await;
    let (rendered, missing) = match guide::render_step(ctx.renderer(), ctx.app(), step, &ctx.vars())
    {
        Ok(rendered) => (rendered, None),
        Err(e) => {
            // A value an earlier (skipped) step would have made is missing: show the step with
            // placeholders and say what is missing, rather than leaving.
            let mut vars = guide::placeholder_vars(lab, part, &guide::saved_names(part));
            vars.extend(ctx.vars());
            (
                guide::render_step(ctx.renderer(), ctx.app(), step, &vars)?,
                Some(e),
            )
        }
    };
    show_step(part, &rendered, index, events);
    if let Err(problem) = setup {
        phase_failed(Phase::Setup, problem);
    }
    if let Some(e) = missing {
        note(
            format!(
                "step {} needs something an earlier step makes ({e:#}): the <placeholders> above stand for it; \
                 go back (b) and do that step, then come here again",
                step.id
            ),
            Tone::Bad,
        );
    }
    let mut next_hint = 0;
    let end = loop {
        events.emit(Event::Waiting {
            part: Some(part.id().to_string()),
            text: "choose".into(),
            choices: MENU.iter().map(|c| c.to_string()).collect(),
        });
        let choice = match input.next().await? {
            InputEvent::Key(choice) => choice,
            InputEvent::Check(request) => {
                if remote_check(ctx, part, step, request, events).await {
                    break StepEnd::Passed;
                }
                continue;
            }
        };
        match choice {
            Choice::Check => {
                if check(ctx, part, step, events).await {
                    break StepEnd::Passed;
                }
            }
            Choice::DoIt => {
                if step.solve.is_empty() {
                    note(
                        "this step is done by hand: nothing to do for you here".into(),
                        Tone::Plain,
                    );
                    continue;
                }
                note("doing it for you:".into(), Tone::Plain);
                if let Err(problem) = engine::run_phase(ctx, step, Phase::Solve).await {
                    phase_failed(Phase::Solve, problem);
                    continue;
                }
                if check(ctx, part, step, events).await {
                    break StepEnd::Passed;
                }
            }
            Choice::Hint => match rendered.hints.get(next_hint) {
                Some(hint) => {
                    events.emit(Event::Shown {
                        part: part.id().to_string(),
                        markdown: format!(
                            "**Hint {}/{}:** {hint}",
                            next_hint + 1,
                            rendered.hints.len()
                        ),
                    });
                    next_hint = (next_hint + 1) % rendered.hints.len();
                }
                None => note("no hints for this step".into(), Tone::Plain),
            },
            Choice::ShowCommands => {
                if rendered.commands.is_empty() {
                    note("this step has no commands".into(), Tone::Plain);
                } else {
                    events.emit(Event::Shown {
                        part: part.id().to_string(),
                        markdown: rendered.commands.clone(),
                    });
                }
            }
            Choice::Skip => break StepEnd::Skipped,
            Choice::Back => break StepEnd::Back,
            Choice::Quit => break StepEnd::Quit,
            Choice::Unknown => {}
        }
    };
    if !matches!(end, StepEnd::Quit)
        && let Err(problem) = engine::run_phase(ctx, step, Phase::Cleanup).await
    {
        phase_failed(Phase::Cleanup, problem);
    }
    Ok(end)
}

/// Runs the step's check; the judgement is an event (shown here, and sent to a remote client while
/// one listens). True when it passed.
async fn check(ctx: &crate::actions::Context, part: &Part, step: &Step, events: &Events) -> bool {
    events.note("checking…", Tone::Plain);
    let outcome = match engine::run_phase(ctx, step, Phase::Check).await {
        Ok(()) => Outcome::Passed,
        Err(problem) => Outcome::failed(Phase::Check, problem),
    };
    let passed = outcome.passed();
    events.emit(Event::CheckJudged {
        part: part.id().to_string(),
        step: step.id.clone(),
        before_solve: false,
        outcome,
    });
    passed
}

/// A check asked for by `lab-runner check` in another terminal: the same check and lines as `c`,
/// shown here and sent there. True when it passed and was of the step on screen (which then moves
/// on, as after `c`); another step is only judged.
async fn remote_check(
    ctx: &crate::actions::Context,
    part: &Part,
    current: &Step,
    request: CheckRequest,
    events: &Events,
) -> bool {
    let target = match request.step.as_deref() {
        None => current,
        Some(id) => match part.file.steps.iter().find(|s| s.id == id) {
            Some(step) => step,
            None => {
                let ids: Vec<&str> = part.file.steps.iter().map(|s| s.id.as_str()).collect();
                let _ = request.done.send(Response::refused(format!(
                    "{} has no step {id}; its steps are {}",
                    part.id(),
                    ids.join(", ")
                )));
                return false;
            }
        },
    };
    if asks(&target.check) {
        let _ = request.done.send(Response::refused(format!(
            "the check of step {} asks you a question: press c in the terminal running `lab-runner start` to answer it",
            target.id
        )));
        return false;
    }
    let on_screen = target.id == current.id;
    events.note(
        format!(
            "`lab-runner check{}` from another terminal:",
            if on_screen {
                String::new()
            } else {
                format!(" {}", target.id)
            }
        ),
        Tone::Plain,
    );
    let remote = events.attach(Box::new(RemoteCheckReporter::new(request.lines.clone())));
    let passed = check(ctx, part, target, events).await;
    if !on_screen {
        events.note(
            format!(
                "(step {} is not the step on screen, {}: judged only, progress unchanged)",
                target.id, current.id
            ),
            Tone::Plain,
        );
    }
    events.detach(remote);
    let _ = request.done.send(Response::Done { passed });
    passed && on_screen
}

/// Whether any of `actions` (nested ones included) asks the participant a question.
fn asks(actions: &[Action]) -> bool {
    actions.iter().any(|action| match action {
        Action::Ask(_) => true,
        Action::Parallel(inner) | Action::Sequence(inner) => asks(inner),
        Action::Eventually(e) => asks(&e.actions),
        _ => false,
    })
}

fn show_step(part: &Part, rendered: &RenderedStep, index: usize, events: &Events) {
    events.emit(Event::StepShown {
        part: part.id().to_string(),
        step: rendered.id.clone(),
        title: rendered.title.clone(),
        index: index + 1,
        of: part.file.steps.len(),
        instructions: rendered.instructions.clone(),
        commands: (!rendered.commands_inline && !rendered.commands.is_empty())
            .then(|| rendered.commands.clone()),
    });
}
