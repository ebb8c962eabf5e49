//! `lab-runner start <part>`: a participant alone at a terminal. Each step is shown, then: check my
//! work · do it for me · hint · show the commands again · skip · back · quit. Progress is saved after
//! every change, so leaving and coming back lands on the same step.
//!
//! `lab-runner check` from another terminal asks this loop, through the session's control socket,
//! for the same check as `c`: shown here, its lines sent there, and a pass moves on as `c` would.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use dialoguer::console::{Key, Term};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::control::{CheckRequest, Response};
use super::engine::{self, EngineOptions, PartSession, Phase};
use super::progress::Store;
use super::terminal::{Terminal, TerminalNarrator, diagnosis_lines};
use crate::actions::context::{Activity, Asker, Narrator};
use crate::lab::guide::{self, RenderedStep};
use crate::lab::{Action, Lab, Part, Step};

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

/// Where narration also goes while a `lab-runner check` from another terminal runs: its lines.
type Tee = Arc<Mutex<Option<mpsc::UnboundedSender<String>>>>;

/// The terminal's narration, also sent (plain) to the client of a remote check while one runs.
struct TeeNarrator {
    inner: TerminalNarrator,
    tee: Tee,
}

impl TeeNarrator {
    fn forward(&self, line: String) {
        if let Some(client) = self.tee.lock().expect("tee lock").as_ref() {
            let _ = client.send(line);
        }
    }
}

impl Narrator for TeeNarrator {
    fn say(&self, line: &str) {
        self.inner.say(line);
        self.forward(format!("  · {line}"));
    }

    fn command(&self, shell: &str) {
        self.inner.command(shell);
    }

    fn activity(&self, label: &str, expected: std::time::Duration) -> Box<dyn Activity> {
        self.forward(format!(
            "  · {label} (about {:.0} s)",
            expected.as_secs_f64()
        ));
        self.inner.activity(label, expected)
    }
}

/// What the loop waits for at a step's menu.
enum Event {
    /// A key at this terminal.
    Key(Choice),
    /// `lab-runner check` from another terminal.
    Check(CheckRequest),
}

/// The loop's inputs: the keyboard, read by one blocking reader that outlives a remote check (so
/// there is never a second one), and the session's check requests.
struct Input {
    pending: Option<JoinHandle<Result<Choice>>>,
    checks: Option<mpsc::Receiver<CheckRequest>>,
    tee: Tee,
    /// The terminal's settings before any key was read: the reader puts it in raw mode while it
    /// waits, so one still waiting when the loop ends leaves it raw unless they are put back.
    saved: Option<nix::sys::termios::Termios>,
}

impl Input {
    fn new(checks: Option<mpsc::Receiver<CheckRequest>>, tee: Tee) -> Input {
        Input {
            pending: None,
            checks,
            tee,
            saved: nix::sys::termios::tcgetattr(std::io::stdin()).ok(),
        }
    }

    /// The next key, or the next check request, whichever comes first.
    async fn next(&mut self) -> Result<Event> {
        enum Woke {
            Key(std::result::Result<Result<Choice>, tokio::task::JoinError>),
            Check(Option<CheckRequest>),
        }
        loop {
            let key = self
                .pending
                .get_or_insert_with(|| tokio::task::spawn_blocking(read_choice));
            let woke = tokio::select! {
                read = key => Woke::Key(read),
                request = next_check(&mut self.checks) => Woke::Check(request),
            };
            match woke {
                Woke::Key(read) => {
                    self.pending = None;
                    return Ok(Event::Key(read.context("the key reader stopped")??));
                }
                Woke::Check(Some(request)) => return Ok(Event::Check(request)),
                // The control socket is gone: keys only.
                Woke::Check(None) => self.checks = None,
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

async fn next_check(checks: &mut Option<mpsc::Receiver<CheckRequest>>) -> Option<CheckRequest> {
    match checks {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Where a check's lines go: this terminal, and the `lab-runner check` that asked for it (plain,
/// as this terminal prints them without styles).
struct Echo<'a> {
    term: &'a Terminal,
    remote: Option<&'a mpsc::UnboundedSender<String>>,
}

impl Echo<'_> {
    fn forward(&self, line: String) {
        if let Some(client) = self.remote {
            let _ = client.send(line);
        }
    }

    fn note(&self, text: &str) {
        self.term.note(text);
        self.forward(text.to_string());
    }

    fn good(&self, text: &str) {
        self.term.good(text);
        self.forward(format!("PASS {text}"));
    }

    fn diagnosis(&self, err: &anyhow::Error) {
        self.term.diagnosis(err);
        for (i, line) in diagnosis_lines(err).into_iter().enumerate() {
            self.forward(if i == 0 { format!("FAIL {line}") } else { line });
        }
    }
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
    let tee = Tee::default();
    let narrator = Box::new(TeeNarrator {
        inner: TerminalNarrator::new(&term, true),
        tee: tee.clone(),
    });
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

    let mut input = Input::new(session.take_check_requests(), tee);
    let outcome = run_steps(lab, part, &session, &term, &store, &mut input).await;
    drop(input);
    if options.keep {
        let vars = session.ctx.vars();
        term.note(&format!(
            "keeping the environment ({}); app at {}; remove it with `lab-runner cleanup`",
            session.description,
            vars.get("base_url")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        ));
        session.keep();
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
    input: &mut Input,
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
        term.markdown(&format!("{}\n", lab.manifest.description));
        term.markdown(&session.ctx.renderer().render(&part.file.intro, &vars)?);
    }
    while index < steps.len() {
        let step = &steps[index];
        store.update(lab, part, |p| p.current = Some(step.id.clone()))?;
        match run_step(lab, session, part, step, term, input).await? {
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
    let last = lab.parts.last().is_some_and(|p| p.id() == part.id());
    if last && !lab.manifest.closing.trim().is_empty() {
        term.markdown(&lab.manifest.closing);
    }
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
    input: &mut Input,
) -> Result<StepEnd> {
    let ctx = &session.ctx;
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
    show_step(part, &rendered, term);
    if let Err(e) = setup {
        term.bad(&format!("the setup of step {} failed", step.id));
        term.diagnosis(&e);
    }
    if let Some(e) = missing {
        term.bad(&format!(
            "step {} needs something an earlier step makes ({e:#}): the <placeholders> above stand for it; \
             go back (b) and do that step, then come here again",
            step.id
        ));
    }
    let mut next_hint = 0;
    let end = loop {
        term.choices(MENU);
        let choice = match input.next().await? {
            Event::Key(choice) => choice,
            Event::Check(request) => {
                if remote_check(ctx, part, step, request, term, &input.tee).await {
                    break StepEnd::Passed;
                }
                continue;
            }
        };
        let here = Echo { term, remote: None };
        match choice {
            Choice::Check => {
                if check(ctx, step, &here).await {
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
                if check(ctx, step, &here).await {
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
async fn check(ctx: &crate::actions::Context, step: &Step, echo: &Echo<'_>) -> bool {
    echo.note("checking…");
    match engine::run_phase(ctx, step, Phase::Check).await {
        Ok(()) => {
            echo.good(&format!("step {} done", step.id));
            true
        }
        Err(e) => {
            echo.diagnosis(&e);
            false
        }
    }
}

/// A check asked for by `lab-runner check` in another terminal: the same check and lines as `c`,
/// shown here and sent there. True when it passed and was of the step on screen (which then moves
/// on, as after `c`); another step is only judged.
async fn remote_check(
    ctx: &crate::actions::Context,
    part: &Part,
    current: &Step,
    request: CheckRequest,
    term: &Terminal,
    tee: &Tee,
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
    term.note(&format!(
        "`lab-runner check{}` from another terminal:",
        if on_screen {
            String::new()
        } else {
            format!(" {}", target.id)
        }
    ));
    let echo = Echo {
        term,
        remote: Some(&request.lines),
    };
    *tee.lock().expect("tee lock") = Some(request.lines.clone());
    let passed = check(ctx, target, &echo).await;
    *tee.lock().expect("tee lock") = None;
    if !on_screen {
        echo.note(&format!(
            "(step {} is not the step on screen, {}: judged only, progress unchanged)",
            target.id, current.id
        ));
    }
    let exit = if passed {
        crate::cli::exit::SUCCESS
    } else {
        crate::cli::exit::FAILED
    };
    let _ = request.done.send(Response::Exit { exit });
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

fn show_step(part: &Part, rendered: &RenderedStep, term: &Terminal) {
    term.step_heading(part, &rendered.id, &rendered.title);
    term.markdown(&rendered.instructions);
    if !rendered.commands_inline && !rendered.commands.is_empty() {
        term.markdown(&rendered.commands);
    }
}
