//! `lab-runner demo <part>`: an instructor shows a part to a room. Each step is rendered, its solve
//! performed and narrated (every HTTP call also shown as the `curl` a participant would type), then
//! its check judged — with a live line of the app's key signals while it runs.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::sync::mpsc;

use super::engine::{self, EngineOptions, Phase};
use super::events::{Event, Events, LiveValue, Tone, millis};
use crate::actions::Context;
use crate::lab::guide;
use crate::lab::{Builtin, Lab, Part};
use crate::outcome::{Outcome, StepResult, UsageError};
use crate::probe::http::HttpClient;
use crate::util::units;

/// What the presenter's page (`demo --web`) asks of the demo's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceControl {
    /// Go on now (as Enter in the terminal).
    Next,
    /// Stop the timed pace between steps, or let it go on.
    TogglePause,
}

pub struct DemoOptions {
    /// Seconds to wait between steps instead of waiting for Enter.
    pub pace: Option<f64>,
    /// Do not wait for Enter (needed without a terminal).
    pub yes: bool,
    pub keep: bool,
    /// Show the live line of the app's signals (on a terminal: it polls the app twice a second).
    pub live: bool,
    pub engine: EngineOptions,
    /// Pace control from the presenter's page (`demo --web`): Next wherever Enter is awaited,
    /// and pause / resume of the timed pace.
    pub remote: Option<mpsc::UnboundedReceiver<PaceControl>>,
    /// Sample the app's signals for the whole part, not only while a step runs (the presenter
    /// view's charts: the leak stays visible between steps).
    pub charts: bool,
}

/// Waits between steps as the options say: for Enter (at the terminal) or Next (on the page), or
/// for the pace's seconds unless the keyboard or the page paused it.
struct Pacer {
    remote: Option<mpsc::UnboundedReceiver<PaceControl>>,
    /// The presenter's keys at this terminal (Enter / n: next, p: pause), when there is one.
    keys: Option<PresenterKeys>,
    paused: bool,
    /// Neither a pace nor --yes: Enter (or Next) before each step and between steps.
    waits_for_enter: bool,
}

impl Pacer {
    /// The next control from the keyboard or the page (never, without either). A source that
    /// ends is dropped; `None` when both are gone.
    async fn control(&mut self) -> Option<PaceControl> {
        loop {
            if self.remote.is_none() && self.keys.is_none() {
                return None;
            }
            let keys = async {
                match &mut self.keys {
                    Some(k) => k.controls.recv().await,
                    None => std::future::pending().await,
                }
            };
            let remote = async {
                match &mut self.remote {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                key = keys => match key {
                    Some(control) => return Some(control),
                    None => self.keys = None,
                },
                control = remote => match control {
                    Some(control) => return Some(control),
                    None => self.remote = None,
                },
            }
        }
    }

    /// Whether anything can pause or move the demo on while it waits.
    fn controlled(&self) -> bool {
        self.remote.is_some() || self.keys.is_some()
    }

    /// Waits for Enter or Next.
    async fn next(&mut self, events: &Events, text: &str) -> Result<()> {
        events.emit(Event::Waiting {
            part: None,
            text: text.to_string(),
            choices: Vec::new(),
        });
        loop {
            match self.control().await {
                Some(PaceControl::Next) => return Ok(()),
                Some(PaceControl::TogglePause) => self.paused = !self.paused,
                None => bail!(
                    "nothing is left to go on from: the presenter's page stopped and there is no \
                     terminal to press Enter in"
                ),
            }
        }
    }

    /// Waits `seconds`, or until Next; while paused, until Next or resume (then the rest).
    async fn pace(&mut self, events: &Events, seconds: f64) -> Result<()> {
        let mut left = Duration::from_secs_f64(seconds.max(0.0));
        loop {
            if self.paused {
                events.emit(Event::Waiting {
                    part: None,
                    text: "paused: Next (Enter) goes on, Resume (p) keeps the pace".into(),
                    choices: Vec::new(),
                });
                match self.control().await {
                    Some(PaceControl::Next) => return Ok(()),
                    Some(PaceControl::TogglePause) => {
                        self.paused = false;
                        events.note("resumed", Tone::Plain);
                    }
                    None => self.paused = false,
                }
                continue;
            }
            let started = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(left) => return Ok(()),
                control = self.control() => {
                    left = left.saturating_sub(started.elapsed());
                    match control {
                        Some(PaceControl::Next) => return Ok(()),
                        Some(PaceControl::TogglePause) => self.paused = true,
                        // Nothing can move it on any more: the pace alone.
                        None => {
                            tokio::time::sleep(left).await;
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// The presenter's keys at the demo's terminal: the terminal is put in cbreak mode for the demo
/// (each key arrives as typed, unechoed; output and Ctrl-C work as usual) and a reader turns
/// Enter, `n` and space into Next, `p` into pause / resume. Other keys are ignored. The
/// terminal's settings are put back when the demo ends.
struct PresenterKeys {
    controls: mpsc::UnboundedReceiver<PaceControl>,
    saved: nix::sys::termios::Termios,
}

impl PresenterKeys {
    /// `None` when stdin is not a terminal (or its settings cannot be changed).
    fn open() -> Option<PresenterKeys> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut cbreak = saved.clone();
        cbreak
            .local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &cbreak).ok()?;
        let (send, controls) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut byte = [0u8; 1];
            while let Ok(1) = std::io::stdin().read(&mut byte) {
                let control = match byte[0] {
                    b'\n' | b'\r' | b' ' | b'n' | b'N' => PaceControl::Next,
                    b'p' | b'P' => PaceControl::TogglePause,
                    _ => continue,
                };
                if send.send(control).is_err() {
                    break;
                }
            }
        });
        Some(PresenterKeys { controls, saved })
    }
}

impl Drop for PresenterKeys {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSADRAIN,
            &self.saved,
        );
    }
}

/// Shows `part`; returns each step's result. An environment that cannot start is an error.
pub async fn run(
    lab: &Lab,
    part: &Part,
    mut options: DemoOptions,
    events: &Events,
) -> Result<Vec<StepResult>> {
    let waits_for_enter = !options.yes && options.pace.is_none();
    let terminal = std::io::stdin().is_terminal();
    if waits_for_enter && !terminal && options.remote.is_none() {
        bail!(UsageError(
            "demo waits for Enter between steps and needs a terminal for it; without one, pass --yes (and --pace SECONDS to pause between steps)".into()
        ));
    }
    let started = Instant::now();
    events.emit(Event::part_started(lab, part));
    let busy = |text: Option<String>| {
        events.emit(Event::Busy {
            part: Some(part.id().to_string()),
            text,
        })
    };
    busy(Some(format!("bringing up the {} environment", part.id())));
    let say = |line: &str| events.note(line, Tone::Plain);
    let session =
        engine::open_part(lab, part, &options.engine, events.narrator(), None, &say).await;
    busy(None);
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            engine::announce_failed(events, part, &e);
            return Err(e);
        }
    };
    session.announce_ready(events, part, started);
    let ctx = &session.ctx;
    events.emit(Event::Shown {
        part: part.id().to_string(),
        markdown: ctx.renderer().render(&part.file.intro, &ctx.vars())?,
    });

    let keys = if terminal && (waits_for_enter || options.pace.is_some()) {
        PresenterKeys::open()
    } else {
        None
    };
    if keys.is_some() && options.pace.is_some() {
        events.note(
            "between steps: Enter goes on now, p pauses (and resumes) the pace",
            Tone::Plain,
        );
    }
    let mut pacer = Pacer {
        remote: options.remote.take(),
        keys,
        paused: false,
        waits_for_enter,
    };
    let options = &options;
    let charts = options
        .charts
        .then(|| ChartSamples::start(ctx, events, part.id()));
    let mut results = Vec::new();
    for (i, step) in part.file.steps.iter().enumerate() {
        let step_started = Instant::now();
        events.emit(Event::StepStarted {
            part: part.id().to_string(),
            step: step.id.clone(),
            title: step.title.clone(),
            index: i + 1,
            of: part.file.steps.len(),
        });
        let outcome = demo_step(ctx, part, step, i, options, events, &mut pacer).await;
        let result = StepResult {
            part: part.id().into(),
            step: step.id.clone(),
            title: step.title.clone(),
            duration: step_started.elapsed(),
            outcome,
        };
        events.emit(Event::StepFinished {
            part: result.part.clone(),
            step: result.step.clone(),
            title: result.title.clone(),
            outcome: result.outcome.clone(),
            duration_ms: millis(result.duration),
        });
        results.push(result);
        if i + 1 < part.file.steps.len() {
            pause_between_steps(options, events, &mut pacer).await?;
        }
    }
    if let Some(takeaways) = super::terminal::takeaways(part) {
        events.emit(Event::Shown {
            part: part.id().to_string(),
            markdown: takeaways,
        });
    }
    if let Some(charts) = charts {
        charts.stop().await;
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    events.emit(Event::PartFinished {
        part: part.id().to_string(),
        passed,
        failed: results.len() - passed,
        duration_ms: millis(started.elapsed()),
    });
    if options.keep {
        session.keep(events, part);
    } else {
        session.teardown().await?;
    }
    Ok(results)
}

async fn pause_between_steps(
    options: &DemoOptions,
    events: &Events,
    pacer: &mut Pacer,
) -> Result<()> {
    if let Some(pace) = options.pace {
        pacer.pace(events, pace).await?;
    } else if pacer.waits_for_enter {
        pacer.next(events, "press Enter for the next step").await?;
    } else if pacer.controlled() {
        // --yes: no waiting, unless the presenter paused.
        pacer.pace(events, 0.0).await?;
    }
    Ok(())
}

async fn demo_step(
    ctx: &Context,
    part: &Part,
    step: &crate::lab::Step,
    index: usize,
    options: &DemoOptions,
    events: &Events,
    pacer: &mut Pacer,
) -> Outcome {
    if let Err(problem) = engine::run_phase(ctx, step, Phase::Setup).await {
        return Outcome::failed(Phase::Setup, problem);
    }
    let rendered = match guide::render_step(ctx.renderer(), ctx.app(), step, &ctx.vars()) {
        Ok(r) => r,
        Err(e) => return Outcome::failed(Phase::Setup, e.into()),
    };
    events.emit(Event::StepShown {
        part: part.id().to_string(),
        step: step.id.clone(),
        title: step.title.clone(),
        index: index + 1,
        of: part.file.steps.len(),
        instructions: rendered.instructions.clone(),
        commands: None,
    });
    if pacer.waits_for_enter {
        let _ = pacer.next(events, "press Enter to run it").await;
    }
    let live = options
        .live
        .then(|| LiveSignals::start(ctx, events, part.id(), &step.id));
    let checked = match engine::run_phase(ctx, step, Phase::Solve).await {
        Ok(()) => {
            let checked = match engine::run_phase(ctx, step, Phase::Check).await {
                Ok(()) => Outcome::Passed,
                Err(problem) => Outcome::failed(Phase::Check, problem),
            };
            events.emit(Event::CheckJudged {
                part: part.id().to_string(),
                step: step.id.clone(),
                before_solve: false,
                outcome: checked.clone(),
            });
            checked
        }
        Err(problem) => Outcome::failed(Phase::Solve, problem),
    };
    if let Some(live) = live {
        live.stop().await;
    }
    if let Err(problem) = engine::run_phase(ctx, step, Phase::Cleanup).await {
        return Outcome::failed(Phase::Cleanup, problem);
    }
    checked
}

/// A line at the bottom of the screen with the app's key signals, refreshed twice a second: how
/// long the health request takes (a jammed event loop holds it) and the values lab.yaml's
/// `app.live` names, read from a JSON endpoint (not from the metrics, whose scrape would reset the
/// lag window the audience's own scrape shows).
struct LiveSignals {
    task: tokio::task::JoinHandle<()>,
    events: Events,
    part: String,
    step: String,
}

impl LiveSignals {
    fn start(ctx: &Context, events: &Events, part: &str, step: &str) -> LiveSignals {
        let (ctx, live) = (ctx.clone(), events.clone());
        let (p, s) = (part.to_string(), step.to_string());
        let task = tokio::spawn(async move {
            let Ok(http) = HttpClient::new() else { return };
            loop {
                let (text, values) = signals(&ctx, &http).await;
                live.emit(Event::Live {
                    part: p.clone(),
                    step: s.clone(),
                    text: Some(text),
                    values,
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        LiveSignals {
            task,
            events: events.clone(),
            part: part.to_string(),
            step: step.to_string(),
        }
    }

    async fn stop(self) {
        self.task.abort();
        // The task may be between two awaits on another worker: wait for it to end, so no live
        // line comes after the one that removes it.
        let _ = self.task.await;
        self.events.emit(Event::Live {
            part: self.part,
            step: self.step,
            text: None,
            values: Vec::new(),
        });
    }
}

/// The app's signals as numbers, once a second for the whole part, for the presenter's charts
/// (`live` events with no text: the terminal's live line is the steps' own).
struct ChartSamples {
    task: tokio::task::JoinHandle<()>,
}

impl ChartSamples {
    fn start(ctx: &Context, events: &Events, part: &str) -> ChartSamples {
        let (ctx, live, part) = (ctx.clone(), events.clone(), part.to_string());
        let task = tokio::spawn(async move {
            let Ok(http) = HttpClient::new() else { return };
            loop {
                let (_, values) = signals(&ctx, &http).await;
                live.emit(Event::Live {
                    part: part.clone(),
                    step: String::new(),
                    text: None,
                    values,
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        ChartSamples { task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The live line's text, and its signals as numbers.
async fn signals(ctx: &Context, http: &HttpClient) -> (String, Vec<LiveValue>) {
    let vars = ctx.vars();
    let text = |b: Builtin| b.text(&vars).unwrap_or_default().to_string();
    let base = text(Builtin::BaseUrl);
    let app = ctx.app();
    let health = http
        .get(
            &format!("{base}{}", app.health),
            vec![],
            Duration::from_secs(5),
        )
        .await;
    let mut values = Vec::new();
    let mut parts = vec![match health {
        Ok(r) => {
            values.push(LiveValue {
                label: "health".into(),
                value: r.elapsed.as_secs_f64() * 1000.0,
                unit: "ms".into(),
            });
            format!("health {} ms", r.elapsed.as_millis())
        }
        Err(_) => "health: no answer".into(),
    }];
    let Some(live) = &app.live else {
        return (parts.join(" · "), values);
    };
    let headers = match (&app.token_header, live.token) {
        (Some(header), true) => vec![(header.clone(), text(Builtin::Token))],
        _ => vec![],
    };
    if let Ok(r) = http
        .get(
            &format!("{base}{}", live.path),
            headers,
            Duration::from_secs(2),
        )
        .await
        && let Some(json) = r.json().filter(|_| r.status == 200)
    {
        for field in &live.fields {
            let Some(value) = json.pointer(&field.pointer) else {
                continue;
            };
            let shown = match (field.unit.as_deref(), value.as_f64()) {
                (Some("bytes"), Some(n)) => units::bytes(n),
                _ => value.to_string(),
            };
            if let Some(n) = value.as_f64() {
                values.push(LiveValue {
                    label: field.label.clone(),
                    value: n,
                    unit: field.unit.clone().unwrap_or_default(),
                });
            }
            parts.push(format!("{} {shown}", field.label));
        }
    }
    (parts.join(" · "), values)
}
