//! `lab-runner demo <part>`: an instructor shows a part to a room. Each step is rendered, its solve
//! performed and narrated (every HTTP call also shown as the `curl` a participant would type), then
//! its check judged — with a live line of the app's key signals while it runs.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::engine::{self, EngineOptions, Phase};
use super::report::{self, Outcome, StepResult};
use super::terminal::{Terminal, TerminalNarrator};
use crate::actions::Context;
use crate::actions::context::Narrator;
use crate::lab::guide;
use crate::lab::{Lab, Part};
use crate::probe::http::HttpClient;
use crate::util::units;

pub struct DemoOptions {
    /// Seconds to wait between steps instead of waiting for Enter.
    pub pace: Option<f64>,
    /// Do not wait for Enter (needed without a terminal).
    pub yes: bool,
    pub keep: bool,
    pub engine: EngineOptions,
}

/// Shares one narrator between the context (which owns a box) and the live line.
struct SharedNarrator(Arc<TerminalNarrator>);
impl Narrator for SharedNarrator {
    fn say(&self, line: &str) {
        self.0.say(line)
    }
    fn command(&self, shell: &str) {
        self.0.command(shell)
    }
    fn output(&self, line: &str) {
        self.0.output(line)
    }
    fn activity(
        &self,
        label: &str,
        expected: Duration,
    ) -> Box<dyn crate::actions::context::Activity> {
        self.0.activity(label, expected)
    }
}

pub async fn run(lab: &Lab, part: &Part, options: &DemoOptions) -> Result<u8> {
    let waits_for_enter = !options.yes && options.pace.is_none();
    if waits_for_enter && !std::io::stdin().is_terminal() {
        bail!(crate::cli::run::UsageError(
            "demo waits for Enter between steps and needs a terminal for it; without one, pass --yes (and --pace SECONDS to pause between steps)".into()
        ));
    }
    let term = Terminal::detect();
    term.markdown(&format!("# {} — {}\n", lab.manifest.title, part.file.title));
    let narrator = Arc::new(TerminalNarrator::new(&term, true));
    let spinner = term.spinner(&format!("bringing up the {} environment", part.id()));
    let report_line = |line: &str| spinner.set_message(line.to_string());
    let session = engine::open_part(
        lab,
        part,
        &options.engine,
        Box::new(SharedNarrator(narrator.clone())),
        None,
        &report_line,
    )
    .await;
    spinner.finish_and_clear();
    let session = session?;
    term.note(&format!("environment: {}", session.description));
    let ctx = &session.ctx;
    term.markdown(&ctx.renderer().render(&part.file.intro, &ctx.vars())?);

    let mut results = Vec::new();
    for (i, step) in part.file.steps.iter().enumerate() {
        let started = std::time::Instant::now();
        let outcome = demo_step(ctx, part, step, &term, &narrator, waits_for_enter).await;
        match &outcome {
            Outcome::Passed => term.good(&format!("step {} checked", step.id)),
            Outcome::Failed { diagnosis, .. } => {
                term.bad(&format!("step {} did not check out", step.id));
                println!("{}", report::indent(diagnosis, 4));
            }
        }
        results.push(StepResult {
            part: part.id().into(),
            step: step.id.clone(),
            title: step.title.clone(),
            duration: started.elapsed(),
            outcome,
        });
        if i + 1 < part.file.steps.len() {
            pause_between_steps(options, &term, waits_for_enter).await?;
        }
    }
    term.takeaways(part);
    println!("{}", report::summary(&results));
    if options.keep {
        term.note(&format!(
            "keeping the environment: {} (lab-runner cleanup removes it)",
            session.description
        ));
        session.keep();
    } else {
        session.teardown().await?;
    }
    Ok(if results.iter().all(|r| r.passed()) {
        crate::cli::exit::SUCCESS
    } else {
        crate::cli::exit::FAILED
    })
}

async fn pause_between_steps(
    options: &DemoOptions,
    term: &Terminal,
    waits_for_enter: bool,
) -> Result<()> {
    if let Some(pace) = options.pace {
        tokio::time::sleep(Duration::from_secs_f64(pace.max(0.0))).await;
    } else if waits_for_enter {
        term.note("press Enter for the next step");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)
        })
        .await??;
    }
    Ok(())
}

async fn demo_step(
    ctx: &Context,
    part: &Part,
    step: &crate::lab::Step,
    term: &Terminal,
    narrator: &Arc<TerminalNarrator>,
    waits_for_enter: bool,
) -> Outcome {
    let fail = |phase: Phase, e: anyhow::Error| Outcome::Failed {
        phase: Some(phase),
        diagnosis: report::diagnose(phase, &e),
    };
    if let Err(e) = engine::run_phase(ctx, step, Phase::Setup).await {
        return fail(Phase::Setup, e);
    }
    let rendered = match guide::render_step(ctx.renderer(), ctx.app(), step, &ctx.vars()) {
        Ok(r) => r,
        Err(e) => return fail(Phase::Setup, e),
    };
    term.step_heading(part, &step.id, &step.title);
    term.markdown(&rendered.instructions);
    if waits_for_enter {
        term.note("press Enter to run it");
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)
        })
        .await;
    }
    let live = LiveSignals::start(ctx, term, narrator);
    let solved = engine::run_phase(ctx, step, Phase::Solve).await;
    let checked = match solved {
        Ok(()) => engine::run_phase(ctx, step, Phase::Check)
            .await
            .map_err(|e| (Phase::Check, e)),
        Err(e) => Err((Phase::Solve, e)),
    };
    live.stop(narrator).await;
    let outcome = match checked {
        Ok(()) => Outcome::Passed,
        Err((phase, e)) => fail(phase, e),
    };
    if let Err(e) = engine::run_phase(ctx, step, Phase::Cleanup).await {
        return fail(Phase::Cleanup, e);
    }
    outcome
}

/// A line at the bottom of the screen with the app's key signals, refreshed twice a second: how
/// long the health request takes (a jammed event loop holds it) and the values lab.yaml's
/// `app.live` names, read from a JSON endpoint (not from the metrics, whose scrape would reset the
/// lag window the audience's own scrape shows).
struct LiveSignals {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl LiveSignals {
    fn start(ctx: &Context, term: &Terminal, narrator: &Arc<TerminalNarrator>) -> LiveSignals {
        if !term.styled() {
            return LiveSignals {
                task: None,
                bar: None,
            };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        narrator.attach_bar(Some(bar.clone()));
        let (b, ctx) = (bar.clone(), ctx.clone());
        let task = tokio::spawn(async move {
            let Ok(http) = HttpClient::new() else { return };
            loop {
                b.set_message(signals(&ctx, &http).await);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        LiveSignals {
            task: Some(task),
            bar: Some(bar),
        }
    }

    async fn stop(self, narrator: &Arc<TerminalNarrator>) {
        if let Some(task) = self.task {
            task.abort();
        }
        narrator.attach_bar(None);
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn signals(ctx: &Context, http: &HttpClient) -> String {
    let vars = ctx.vars();
    let text = |name: &str| {
        vars.get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let base = text("base_url");
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
        (Some(header), true) => vec![(header.clone(), text("token"))],
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
