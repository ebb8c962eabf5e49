//! The engine: brings a part's environment up, and runs a step's phases with their budgets.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::json;

use crate::actions::context::{Asker, Narrator};
use crate::actions::{self, Context};
use crate::env::docker::connect::{self, DockerUnavailable};
use crate::env::docker::image::ImageChoice;
use crate::env::{self, Backend, EnvSpec};
use crate::lab::{Builtin, Lab, Part, Requirement, Step, Vars};
use crate::outcome::{Done, Failure, Problem};
use crate::util::random;

/// How long one phase of a step may take unless the step says otherwise.
pub const DEFAULT_PHASE_BUDGET: Duration = Duration::from_secs(120);
/// How long the app may take to become healthy after its environment starts.
const START_HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which backend the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// Docker when it is reachable, otherwise a local process (said).
    Auto,
    Docker,
    Process,
}

/// How a session's environment is brought up.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub backend: BackendChoice,
    pub image: ImageChoice,
    /// Where artifacts copied out of the environment go (a temporary folder if not given).
    pub artifacts_dir: Option<PathBuf>,
    /// With `artifacts_dir`: a folder per session (`part2-1a2b3c4d`, for verify runs that must not
    /// mix) or one per part (`part2`, so a participant who comes back finds what they saved).
    pub artifacts_per_session: bool,
    /// Publish the app on its own port (3001) instead of an ephemeral one.
    pub fixed_ports: bool,
    /// Which front end owns the session (said on its control socket; only `start` answers `check`).
    pub mode: super::control::Mode,
    /// Limits that replace the lab's own (`--memory`, `--cpus`; a workshop's seats).
    pub limits: Limits,
    /// The participant's terminal starts from a clean environment, not the runner's (`start --web
    /// --shell`: someone else types into it).
    pub clean_terminal: bool,
    /// The participant's terminals run in a container of their own, with a Docker that reaches
    /// only this session's containers (`start --isolated-shell`: a workshop seat).
    pub isolated_terminal: bool,
}

/// Resource limits given on the command line instead of the lab's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// The app container's memory, in MiB (else the environment's `memory_mb`).
    pub memory_mb: Option<u64>,
    /// The most CPU each container may use, in cores (else no limit).
    pub cpus: Option<f64>,
}

/// One part's running environment and its variables.
pub struct PartSession {
    pub ctx: Context,
    pub session_id: String,
    pub backend: Backend,
    pub description: String,
    pub artifacts_dir: PathBuf,
    /// The session's control socket (`lab-runner redeploy`, `lab-runner check`); see `control.rs`.
    pub control: super::control::ControlServer,
    /// Held so the folder lives as long as the session when it is a temporary one.
    _temp_artifacts: Option<tempfile::TempDir>,
}

/// Sessions whose environments are up, so an interrupted run can remove them (see `cli::run`).
static ACTIVE_SESSIONS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The ids of the sessions whose environments may be up right now.
pub fn active_sessions() -> Vec<String> {
    ACTIVE_SESSIONS.lock().expect("session registry").clone()
}

fn register(session: &str) {
    ACTIVE_SESSIONS
        .lock()
        .expect("session registry")
        .push(session.to_string());
}

/// Marks a session's environment as removed.
pub fn unregister(session: &str) {
    ACTIVE_SESSIONS
        .lock()
        .expect("session registry")
        .retain(|s| s != session);
}

pub use crate::outcome::Phase;

/// Why `part` cannot run on the process backend (`None`: it can): its environment runs lab
/// services, its app's image comes from a registry or a Dockerfile, or it says `requires: docker`.
pub fn needs_docker(lab: &Lab, part: &Part) -> Option<String> {
    let env = lab.environment(part);
    if !env.services.is_empty() {
        return Some(format!(
            "its environment runs services {}",
            env.services.join(", ")
        ));
    }
    match &lab.manifest.app.image {
        Some(crate::lab::ImageSpec::Registry(name)) => {
            return Some(format!("its app's image is the registry image {name}"));
        }
        Some(crate::lab::ImageSpec::Dockerfile(file)) => {
            return Some(format!("its app's image is built from {file}"));
        }
        _ => {}
    }
    (env.requires == Some(Requirement::Docker))
        .then(|| "it execs into the container and tunnels through it".to_string())
}

/// Every part of `lab` that needs Docker, with the reason ([`needs_docker`]).
pub fn parts_needing_docker(lab: &Lab) -> Vec<(String, String)> {
    lab.parts
        .iter()
        .filter_map(|part| needs_docker(lab, part).map(|why| (part.id().to_string(), why)))
        .collect()
}

/// Decides the backend: Docker when asked or reachable; the process backend otherwise, unless the part
/// needs Docker (`needs_docker` says why).
pub async fn choose_backend(
    choice: BackendChoice,
    part: &str,
    needs_docker: Option<&str>,
    report: &dyn Fn(&str),
) -> Result<Backend> {
    match choice {
        BackendChoice::Docker => {
            connect::connect().await?;
            Ok(Backend::Docker)
        }
        BackendChoice::Process if needs_docker.is_some() => {
            bail!(
                "{part} needs Docker: {}; run it with --backend docker",
                needs_docker.unwrap_or_default()
            )
        }
        BackendChoice::Process => Ok(Backend::Process),
        BackendChoice::Auto => match connect::connect().await {
            Ok(_) => Ok(Backend::Docker),
            Err(e) if needs_docker.is_some() => Err(e.context(format!(
                "{part} needs Docker: {}",
                needs_docker.unwrap_or_default()
            ))),
            Err(e) => {
                let reason = e
                    .downcast_ref::<DockerUnavailable>()
                    .map(|u| u.reason.clone())
                    .unwrap_or_else(|| format!("{e:#}"));
                report(&format!(
                    "Docker is not reachable ({reason}); using the process backend (a local node)"
                ));
                Ok(Backend::Process)
            }
        },
    }
}

/// The variables every template of `lab` can use before anything runs: the lab's own variables and
/// the session's facts.
pub fn initial_vars(lab: &Lab, part: &Part, session_id: &str, token: &str) -> Vars {
    let mut vars: Vars = lab.manifest.variables.clone().into_iter().collect();
    Builtin::Token.set(&mut vars, json!(token));
    Builtin::Session.set(&mut vars, json!(session_id));
    Builtin::LabId.set(&mut vars, json!(lab.id()));
    Builtin::PartId.set(&mut vars, json!(part.id()));
    vars
}

/// Brings up `part`'s environment and returns a session ready to run its steps.
pub async fn open_part(
    lab: &Lab,
    part: &Part,
    options: &EngineOptions,
    narrator: Box<dyn Narrator>,
    asker: Option<Box<dyn Asker>>,
    report: &dyn Fn(&str),
) -> Result<PartSession> {
    let spec_env = lab.environment(part);
    let needs_docker = needs_docker(lab, part);
    let backend =
        choose_backend(options.backend, part.id(), needs_docker.as_deref(), report).await?;
    if backend == Backend::Process && options.limits != Limits::default() {
        bail!(
            "--memory and --cpus limit containers, and {} would run as a local process without limits; run it with --backend docker",
            part.id()
        );
    }
    let session_id = random::session_id();
    let token = random::token();
    let vars = initial_vars(lab, part, &session_id, &token);
    let renderer = crate::lab::Renderer::for_app(&lab.app_dir());
    let base_env: BTreeMap<String, String> = spec_env
        .env
        .iter()
        .map(|(k, v)| {
            renderer
                .render(v, &vars)
                .map(|r| (k.clone(), r))
                .with_context(|| {
                    format!(
                        "in environment `{}`, variable {k}",
                        part.reference.environment
                    )
                })
        })
        .collect::<Result<_>>()?;
    let memory_mb = options.limits.memory_mb.unwrap_or(spec_env.memory_mb);
    let spec = EnvSpec {
        lab_id: lab.id().to_string(),
        part_id: part.id().to_string(),
        session_id: session_id.clone(),
        app_dir: std::fs::canonicalize(lab.app_dir()).with_context(|| {
            format!(
                "the lab app folder {} does not exist",
                lab.app_dir().display()
            )
        })?,
        run: lab.manifest.app.run(),
        app_image: lab.manifest.app.image.clone(),
        app_files: lab.manifest.app.files.clone(),
        app_port: lab.manifest.app.port,
        health_path: lab.manifest.app.health.clone(),
        env: base_env.clone(),
        inspector: spec_env.inspector,
        memory_mb,
        cpus: options.limits.cpus,
        fixed_app_port: options.fixed_ports.then_some(lab.manifest.app.port),
        services: service_runs(lab, part, &renderer, &vars)?,
    };
    let (artifacts_dir, temp) = match &options.artifacts_dir {
        Some(dir) => {
            let dir = if options.artifacts_per_session {
                dir.join(format!("{}-{}", part.id(), session_id))
            } else {
                dir.join(part.id())
            };
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("Failed to create {}", dir.display()))?;
            // Absolute: the guide tells people (and DevTools' save dialogs) where to put files.
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("Failed to resolve {}", dir.display()))?;
            (dir, None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix(&format!("lab-runner-{}-{}-", part.id(), session_id))
                .tempdir()
                .context("Failed to create the session's artifact folder")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let spec_app_dir = spec.app_dir.clone();
    register(&session_id);
    let environment = env::start(backend, spec, &options.image, report).await?;
    let description = environment.facts().description;
    let healthy = env::wait_healthy(
        environment.as_ref(),
        &lab.manifest.app.health,
        START_HEALTHY_TIMEOUT,
    )
    .await;
    let mut vars = vars;
    Builtin::HostArtifacts.set(&mut vars, json!(artifacts_dir.to_string_lossy()));
    Builtin::MemoryLimitMb.set(&mut vars, json!(memory_mb));
    if spec_env.inspector == crate::lab::InspectorMode::OnSignal {
        // Nothing publishes the inspector: the participant (or the solve) forwards this port to it.
        let port =
            crate::util::ports::free_port().context("Failed to find a free port for the tunnel")?;
        Builtin::TunnelPort.set(&mut vars, json!(port));
        Builtin::InspectorAddr.set(&mut vars, json!(format!("127.0.0.1:{port}")));
        Builtin::TunnelAddr.set(&mut vars, json!(format!("127.0.0.1:{port}")));
    }
    let ctx = Context::new(
        environment,
        vars,
        base_env,
        lab.manifest.app.clone(),
        artifacts_dir.clone(),
        spec_app_dir,
        narrator,
        asker,
    )?;
    if let Err(e) = healthy {
        let _ = ctx.teardown().await;
        unregister(&session_id);
        return Err(e.context(format!("the {} environment did not start", part.id())));
    }
    ctx.refresh_env_vars().await;
    if options.clean_terminal {
        ctx.terminals().lock().await.clean_environment();
    }
    let control = match super::control::ControlServer::start(
        &ctx,
        lab.id(),
        part.id(),
        &session_id,
        options.mode,
    ) {
        Ok(control) => control,
        Err(e) => {
            let _ = ctx.teardown().await;
            unregister(&session_id);
            return Err(e.context("Failed to open the session's control socket"));
        }
    };
    // Commands the runner types for the participant (verify, demo, "do it for me") reach this
    // session, not another one running beside it.
    ctx.terminals().lock().await.export(
        "LAB_RUNNER_SESSION",
        &control.socket().display().to_string(),
    );
    if let Err(e) = run_intro(&ctx, part).await {
        let _ = ctx.teardown().await;
        unregister(&session_id);
        return Err(e);
    }
    // After the intro, whose exports and `cd` the terminal container starts from.
    if options.isolated_terminal
        && let Err(e) =
            super::isolated_shell::isolate(&ctx, &session_id, control.socket(), &artifacts_dir)
                .await
    {
        let _ = ctx.teardown().await;
        unregister(&session_id);
        return Err(e);
    }
    Ok(PartSession {
        ctx,
        session_id,
        backend,
        description,
        artifacts_dir,
        control,
        _temp_artifacts: temp,
    })
}

/// The lab services `part`'s environment runs, with their templates rendered.
fn service_runs(
    lab: &Lab,
    part: &Part,
    renderer: &crate::lab::Renderer,
    vars: &Vars,
) -> Result<Vec<env::ServiceRun>> {
    let app_image = lab.manifest.app.image.as_ref();
    lab.environment(part)
        .services
        .iter()
        .map(|name| {
            let service = lab.manifest.services.get(name).ok_or_else(|| {
                anyhow!(
                    "environment `{}` names the service `{name}`, which lab.yaml does not define",
                    part.reference.environment
                )
            })?;
            let dir = match &service.source {
                Some(source) => {
                    let dir = lab.dir.join(source);
                    Some(std::fs::canonicalize(&dir).with_context(|| {
                        format!(
                            "the source folder {} of the service `{name}` does not exist",
                            dir.display()
                        )
                    })?)
                }
                None => None,
            };
            let env = service
                .env
                .iter()
                .map(|(k, v)| {
                    renderer
                        .render(v, vars)
                        .map(|r| (k.clone(), r))
                        .with_context(|| format!("in service `{name}`, variable {k}"))
                })
                .collect::<Result<_>>()?;
            Ok(env::ServiceRun {
                name: name.clone(),
                dir,
                files: service.files.clone(),
                command: service.command.clone(),
                image: service.image.clone().or_else(|| app_image.cloned()),
                port: service.port,
                publish: service.publish,
                health: service
                    .health
                    .clone()
                    .unwrap_or(crate::lab::ServiceHealth::Tcp(true)),
                env,
                memory_mb: service.memory_mb,
            })
        })
        .collect()
}

/// Runs the shell blocks of the part's intro in the participant's main terminal, as a person
/// following the guide does first (they export `BASE`, `LAB_TOKEN`, ...).
async fn run_intro(ctx: &Context, part: &Part) -> Result<()> {
    let intro = ctx
        .renderer()
        .render(&part.file.intro, &ctx.vars())
        .with_context(|| format!("Failed to render the intro of {}", part.id()))?;
    for block in crate::lab::fenced::runnable_blocks(&intro) {
        let ran = actions::shell::run_main(&ctx.quieted(), &block, Duration::from_secs(30))
            .await
            .map_err(|p| anyhow!("the intro of {}: {}", part.id(), p.text()))?;
        if ran.status != Some(0) {
            bail!(
                "the intro of {} shows commands that fail (exit status {:?}):\n{block}\n{}",
                part.id(),
                ran.status,
                ran.output.join("\n")
            );
        }
    }
    Ok(())
}

impl PartSession {
    /// Removes the environment.
    /// Says the environment is up (`environment_ready`), `started` being when opening began.
    pub fn announce_ready(&self, events: &super::events::Events, part: &Part, started: Instant) {
        events.emit(super::events::Event::EnvironmentReady {
            part: part.id().to_string(),
            description: self.description.clone(),
            backend: self.backend.to_string(),
            duration_ms: super::events::millis(started.elapsed()),
        });
    }

    pub async fn teardown(&self) -> Result<()> {
        self.control.stop();
        let result = self.ctx.teardown().await;
        unregister(&self.session_id);
        result
    }

    /// Leaves the environment running after this process ends (`--keep`; `lab-runner cleanup`
    /// removes it). The session is leaked on purpose, not dropped: dropping it would undo what
    /// is kept — the process backend's app is a child killed on drop, its folder (log,
    /// captures) and a temporary artifacts folder are removed on drop, an open tunnel closes.
    /// The control socket goes first: nobody serves it once this process ends. The session
    /// leaves the registry of active ones, so a Ctrl-C later in the same run (a multi-part
    /// `verify --keep`) does not remove what was kept.
    pub fn keep(self, events: &super::events::Events, part: &Part) {
        let vars = self.ctx.vars();
        let text = |b: Builtin| b.text(&vars).map(str::to_string);
        events.emit(super::events::Event::EnvironmentKept {
            part: part.id().to_string(),
            description: self.description.clone(),
            base_url: text(Builtin::BaseUrl),
            token: text(Builtin::Token),
            artifacts: self.artifacts_dir.display().to_string(),
        });
        self.control.stop();
        unregister(&self.session_id);
        std::mem::forget(self);
    }
}

/// Says the part's environment could not be opened (`environment_failed`): none of its steps runs.
pub fn announce_failed(events: &super::events::Events, part: &Part, error: &anyhow::Error) {
    events.emit(super::events::Event::EnvironmentFailed {
        part: part.id().to_string(),
        error: format!("{error:#}"),
        steps: part.file.steps.iter().map(|s| s.id.clone()).collect(),
    });
}

/// The actions of `step` for `phase`.
pub fn actions_of(step: &Step, phase: Phase) -> &[crate::lab::Action] {
    match phase {
        Phase::Setup => &step.setup,
        Phase::CheckBeforeSolve | Phase::Check => &step.check,
        Phase::Solve => &step.solve,
        Phase::Cleanup => &step.cleanup,
    }
}

/// Runs one phase of `step` within the step's budget. The app found dead meanwhile is said first
/// ([`Problem::AppDied`]), with the problem the phase had under it.
pub async fn run_phase(ctx: &Context, step: &Step, phase: Phase) -> Done {
    let budget = step
        .timeout
        .as_ref()
        .map(|d| d.get())
        .unwrap_or(DEFAULT_PHASE_BUDGET);
    ctx.set_step_hint(
        step.hints
            .first()
            .map(|h| ctx.render_str(h).unwrap_or_else(|_| h.clone())),
    );
    let actions = actions_of(step, phase);
    let ctx = &if matches!(phase, Phase::Check | Phase::CheckBeforeSolve) {
        ctx.checking()
    } else {
        ctx.clone()
    };
    let work = tokio::time::timeout(budget, actions::perform_all(ctx, actions));
    tokio::select! {
        outcome = work => match outcome {
            Ok(Ok(())) => Ok(()),
            // A failure may come from the app having died: say that first.
            // A check's judgement (expected / saw) came from a live app; anything else (a request
            // cut off, a participant's command that failed) may mean it died, which Docker reports
            // a moment later.
            Ok(Err(problem)) => {
                let death = if is_check(phase) && matches!(problem, Problem::Check(_)) {
                    app_death(ctx).await
                } else {
                    app_death_settled(ctx).await
                };
                match death {
                    Some(death) => Err(Problem::AppDied(death.because(problem.text()))),
                    None => Err(problem),
                }
            }
            Err(_) => Err(Problem::Error(anyhow!(
                "the {phase} of step {} did not finish within its budget of {:.0} s",
                step.id,
                budget.as_secs_f64()
            ))),
        },
        death = watch_for_death(ctx) => Err(Problem::AppDied(death).context(format!("during the {phase} of step {}", step.id))),
    }
}

fn is_check(phase: Phase) -> bool {
    matches!(phase, Phase::Check | Phase::CheckBeforeSolve)
}

/// How often a running phase looks whether the app is still alive.
const DEATH_WATCH: Duration = Duration::from_millis(500);

/// Resolves when the app has stopped running (OOM-killed, crashed, killed), with the diagnosis;
/// a phase then fails at once rather than waiting for its requests to time out. The environment is
/// not looked at while an action holds it for a change (a recreate or restart stops the app on
/// purpose).
async fn watch_for_death(ctx: &Context) -> Failure {
    loop {
        tokio::time::sleep(DEATH_WATCH).await;
        let dead = match ctx.env().try_read() {
            Ok(env) => !matches!(
                env.state().await,
                Ok(crate::env::AppState::Running) | Err(_)
            ),
            Err(_) => false,
        };
        if dead && let Some(death) = app_death(ctx).await {
            return death;
        }
    }
}

/// [`app_death`], giving the engine a moment to notice: a request cut off by an OOM kill fails a
/// little before Docker reports the container stopped.
async fn app_death_settled(ctx: &Context) -> Option<Failure> {
    for _ in 0..5 {
        if let Some(death) = app_death(ctx).await {
            return Some(death);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The diagnosis when the app is not running (None while it runs).
async fn app_death(ctx: &Context) -> Option<Failure> {
    let env = ctx.env().try_read().ok()?;
    let state = env.state().await.ok()?;
    if state == crate::env::AppState::Running {
        return None;
    }
    let tail = crate::env::health::log_tail(env.as_ref()).await;
    let hint = match state {
        crate::env::AppState::Exited {
            oom_killed: true, ..
        } => format!(
            "the container's memory limit is {} MiB; whatever the step retained did not fit ({}`memory_mb` \
             in lab.yaml sets the limit)",
            ctx.memory_limit_mb(),
            ctx.app()
                .out_of_memory_hint
                .as_ref()
                .map(|h| format!("{h}; "))
                .unwrap_or_default()
        ),
        crate::env::AppState::Exited { code: Some(c), .. } if crate::env::killed_by(c).is_some() => {
            "the signal came from outside the app (`docker kill`, `kill -9`, a supervisor or the container \
             runtime; an out-of-memory kill would have been named as such): the app never signals itself"
                .to_string()
        }
        _ => "the app's log above says why it stopped".to_string(),
    };
    Some(
        Failure::new(
            format!("the app ({})", env.facts().name),
            "running",
            format!("it {state}\n{tail}"),
        )
        .hint(Some(hint)),
    )
}
