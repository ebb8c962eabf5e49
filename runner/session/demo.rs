//! `lab-runner demo <part>`: an instructor shows a part to a room. Each step is rendered, its solve
//! performed and narrated (every HTTP call also shown as the `curl` a participant would type), then
//! its check judged — with a live line of the app's key signals while it runs.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::engine::{self, EngineOptions, Phase};
use super::events::{Event, Events, Tone, millis};
use crate::actions::Context;
use crate::lab::guide;
use crate::lab::{Builtin, Lab, Part};
use crate::outcome::{Outcome, StepResult, UsageError};
use crate::probe::http::HttpClient;
use crate::util::units;

pub struct DemoOptions {
    /// Seconds to wait between steps instead of waiting for Enter.
    pub pace: Option<f64>,
    /// Do not wait for Enter (needed without a terminal).
    pub yes: bool,
    pub keep: bool,
    /// Show the live line of the app's signals (on a terminal: it polls the app twice a second).
    pub live: bool,
    pub engine: EngineOptions,
}

/// Shows `part`; returns each step's result. An environment that cannot start is an error.
pub async fn run(
    lab: &Lab,
    part: &Part,
    options: &DemoOptions,
    events: &Events,
) -> Result<Vec<StepResult>> {
    let waits_for_enter = !options.yes && options.pace.is_none();
    if waits_for_enter && !std::io::stdin().is_terminal() {
        bail!(UsageError(
            "demo waits for Enter between steps and needs a terminal for it; without one, pass --yes (and --pace SECONDS to pause between steps)".into()
        ));
    }
    let started = Instant::now();
    events.emit(Event::PartStarted {
        part: part.id().to_string(),
        title: part.file.title.clone(),
        lab_title: lab.manifest.title.clone(),
        steps: part.file.steps.iter().map(|s| s.id.clone()).collect(),
    });
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
        let outcome = demo_step(ctx, part, step, i, options, events, waits_for_enter).await;
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
            pause_between_steps(options, events, waits_for_enter).await?;
        }
    }
    if let Some(takeaways) = super::terminal::takeaways(part) {
        events.emit(Event::Shown {
            part: part.id().to_string(),
            markdown: takeaways,
        });
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
    waits_for_enter: bool,
) -> Result<()> {
    if let Some(pace) = options.pace {
        tokio::time::sleep(Duration::from_secs_f64(pace.max(0.0))).await;
    } else if waits_for_enter {
        wait_for_enter(events, "press Enter for the next step").await?;
    }
    Ok(())
}

async fn wait_for_enter(events: &Events, text: &str) -> Result<()> {
    events.emit(Event::Waiting {
        part: None,
        text: text.to_string(),
        choices: Vec::new(),
    });
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)
    })
    .await??;
    Ok(())
}

async fn demo_step(
    ctx: &Context,
    part: &Part,
    step: &crate::lab::Step,
    index: usize,
    options: &DemoOptions,
    events: &Events,
    waits_for_enter: bool,
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
    if waits_for_enter {
        let _ = wait_for_enter(events, "press Enter to run it").await;
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
                live.emit(Event::Live {
                    part: p.clone(),
                    step: s.clone(),
                    text: Some(signals(&ctx, &http).await),
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
        });
    }
}

async fn signals(ctx: &Context, http: &HttpClient) -> String {
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
    let mut parts = vec![match health {
        Ok(r) => format!("health {} ms", r.elapsed.as_millis()),
        Err(_) => "health: no answer".into(),
    }];
    let Some(live) = &app.live else {
        return parts.join(" · ");
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
            parts.push(format!("{} {shown}", field.label));
        }
    }
    parts.join(" · ")
}
