//! Dispatch: each command calls into the concern that does the work, and its outcome becomes an exit
//! code (see [`super::exit`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::{
    CleanupArgs, Cli, Command, DemoArgs, EnvArgs, Format, ImageFrom, LintArgs, ListArgs, ResetArgs,
    StartArgs, StatusArgs, VerifyArgs,
};
use super::exit;
use crate::env::docker::connect::{self, DockerUnavailable};
use crate::env::docker::{cleanup, image::ImageChoice};
use crate::lab::{self, Lab, lint};
use crate::session::control::Mode;
use crate::session::engine::{self, BackendChoice, EngineOptions};
use crate::session::events::{Event, Events, Reporter};
use crate::session::screen::{Screen, ScreenReporter};
use crate::session::terminal::Terminal;
use crate::session::verify::{self, VerifyOptions};

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: Failed to start the async runtime: {e}");
            return exit::code(exit::ERROR);
        }
    };
    let outcome = runtime.block_on(dispatch(cli));
    // Do not wait for stray blocking tasks (a copy cut off by Ctrl-C) before exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(code) => exit::code(code),
        Err(e) => report_error(&e),
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Verify(args) => verify_command(args).await,
        Command::List(args) => list_command(args),
        Command::Lint(args) => lint_command(args),
        Command::Cleanup(args) => cleanup_command(args).await,
        Command::Start(args) => start_command(args).await,
        Command::Analyze(args) => {
            // Parsing hundreds of MB is CPU work: keep it off the async workers.
            tokio::task::spawn_blocking(move || crate::cli::analyze::run(&args))
                .await
                .context("the analysis task failed")??;
            Ok(exit::SUCCESS)
        }
        Command::Demo(args) => demo_command(args).await,
        Command::Status(args) => status_command(args),
        Command::Reset(args) => reset_command(args),
        Command::Doctor(args) => super::doctor::run(args).await,
        Command::Tunnel(args) => super::tunnel::run(&args).await,
        Command::Export(args) => super::export::run(args).await,
        Command::Pull(args) => super::pull::run(args).await,
        Command::Completions(args) => super::completions::run(args).await,
        Command::Schema(args) => super::schema::run(args).await,
        Command::New(args) => super::new::run(args).await,
        Command::Redeploy(args) => super::control::redeploy(args).await,
        Command::Check(args) => super::control::check(args).await,
        Command::Workshop(args) => super::workshop::run(args).await,
        Command::Forward(args) => super::forward::run(args).await,
    }
}

/// Prints an error the way a person needs it, and picks the exit code.
fn report_error(e: &anyhow::Error) -> ExitCode {
    if let Some(unavailable) = e
        .chain()
        .find_map(|c| c.downcast_ref::<DockerUnavailable>())
    {
        eprintln!("error: {unavailable}");
        return exit::code(exit::DOCKER_UNAVAILABLE);
    }
    if let Some(diagnostics) = e
        .chain()
        .find_map(|c| c.downcast_ref::<lab::diagnostic::Diagnostics>())
    {
        eprintln!("{diagnostics}");
        eprintln!(
            "error: the lab has {} problem(s); fix them and run `lab-runner lint` to check",
            diagnostics.0.len()
        );
        return exit::code(exit::USAGE);
    }
    if let Some(usage) = e.chain().find_map(|c| c.downcast_ref::<UsageError>()) {
        eprintln!("error: {usage}");
        return exit::code(exit::USAGE);
    }
    eprintln!("error: {e:#}");
    exit::code(exit::ERROR)
}

/// A mistake in what the user asked for (an unknown part, say); exits with [`exit::USAGE`].
pub use crate::outcome::UsageError;

fn lab_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(default_lab_dir)
}

/// The lab a command means when none is given: `$LAB_RUNNER_LAB`; else, from the current directory
/// upwards, the first folder that is a lab (holds `lab.yaml`: an author working in their lab) or
/// holds the shipped one (`labs/node-profiling`); else the shipped lab next to the source tree.
pub fn default_lab_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAB_RUNNER_LAB") {
        return PathBuf::from(dir);
    }
    let relative = Path::new("labs").join("node-profiling");
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join("lab.yaml").is_file() {
                return dir.to_path_buf();
            }
            if dir.join(&relative).join("lab.yaml").is_file() {
                return dir.join(&relative);
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Loads the lab and lints it; any problem is an error that exits with [`exit::USAGE`].
pub fn load_lab(dir: Option<PathBuf>) -> Result<Lab> {
    let dir = lab_dir(dir);
    let lab = lab::load(&dir).map_err(lab::diagnostic::Diagnostics)?;
    let problems = lint::lint(&lab);
    if !problems.is_empty() {
        return Err(lab::diagnostic::Diagnostics(problems).into());
    }
    Ok(lab)
}

fn engine_options(env: &EnvArgs, artifacts: Option<PathBuf>, mode: Mode) -> EngineOptions {
    EngineOptions {
        backend: env.backend,
        image: match (&env.image, env.image_from) {
            (Some(image), _) => ImageChoice::Existing(image.clone()),
            (None, ImageFrom::HostNode) => ImageChoice::HostNode,
            (None, ImageFrom::Dockerfile) => ImageChoice::Dockerfile,
        },
        artifacts_per_session: true,
        artifacts_dir: artifacts,
        fixed_ports: env.fixed_ports,
        mode,
        limits: crate::session::engine::Limits {
            memory_mb: env.memory,
            cpus: env.cpus,
        },
        clean_terminal: false,
        isolated_terminal: false,
    }
}

/// Runs `work`; on Ctrl-C, SIGTERM or SIGHUP (the terminal was closed), drops it, removes whatever
/// environments are up, and says why it stopped (`Err(why)`). A panic in `work` removes them too,
/// then goes on.
pub async fn interruptible<T>(
    work: impl Future<Output = Result<T>>,
) -> Result<std::result::Result<T, &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("Failed to listen for SIGHUP")?;
    let terminals = TerminalStreams::now();
    // A panic in the session (a bug, or a line written to a terminal that has just closed, before
    // the hangup is heard below) still removes what it started.
    let work = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work));
    let why = tokio::select! {
        result = work => match result {
            Ok(result) => return result.map(Ok),
            Err(panic) => {
                remove_active_environments("the run stopped on an internal error").await;
                std::panic::resume_unwind(panic)
            }
        },
        _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
        _ = term.recv() => "terminated (SIGTERM)",
        _ = hangup.recv() => {
            terminals.leave_closed_terminal();
            "the terminal was closed (SIGHUP)"
        }
    };
    remove_active_environments(why).await;
    Ok(Err(why))
}

/// Which of stdout and stderr were a terminal when a run began.
struct TerminalStreams {
    stdout: bool,
    stderr: bool,
}

impl TerminalStreams {
    fn now() -> TerminalStreams {
        use std::io::IsTerminal;
        TerminalStreams {
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }

    /// Points the streams that were the closed terminal at /dev/null. A write to a terminal that
    /// has hung up fails, and Rust's `println!` panics on a failed write: the first line said
    /// after the terminal closed ended the process before it removed the lab's environment, and
    /// the container and network were left behind.
    fn leave_closed_terminal(&self) {
        let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
            return;
        };
        if self.stdout {
            let _ = nix::unistd::dup2_stdout(&null);
        }
        if self.stderr {
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }
}

/// Where the lines for a person go.
fn human_output(to_stderr: bool) -> crate::session::report::Output {
    if to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    }
}

/// Removes the environments of the sessions still active. What it says goes to stderr, and a
/// stderr that cannot be written (the terminal closed) does not stop it.
async fn remove_active_environments(why: &str) {
    use std::io::Write;
    let say = |line: String| {
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    let sessions = engine::active_sessions();
    say(format!(
        "\n{why}: removing {} lab environment(s)…",
        sessions.len()
    ));
    if sessions.is_empty() {
        return;
    }
    // Process environments died with their futures (their children are killed on drop).
    if let Ok(docker) = connect::connect().await {
        for session in sessions {
            let scope = cleanup::Scope {
                session: Some(session.clone()),
                images: false,
                live_sessions: true,
                runner_pid: None,
            };
            match cleanup::remove_labelled(&docker, &scope).await {
                Ok(removed) => {
                    engine::unregister(&session);
                    for name in removed.containers.iter().chain(&removed.networks) {
                        say(format!("  removed {name}"));
                    }
                }
                Err(e) => say(format!("  {e:#} — run `lab-runner cleanup`")),
            }
        }
    }
}

async fn verify_command(args: VerifyArgs) -> Result<u8> {
    let lab = load_lab(args.env.lab.clone())?;
    check_verify_args(&lab, &args)?;
    if args.env.backend == BackendChoice::Docker {
        // Asked for Docker: say at once if it is not there, rather than failing every step.
        connect::connect().await?;
    }
    if args.watch {
        return verify_watching(lab, &args).await;
    }
    match verify_once(&lab, &args).await? {
        Ok(code) => Ok(code),
        Err(()) => Ok(exit::INTERRUPTED),
    }
}

/// The parts and the step asked for exist (else a usage error).
fn check_verify_args(lab: &Lab, args: &VerifyArgs) -> Result<()> {
    let parts = lab
        .select_parts(&args.parts)
        .map_err(|e| UsageError(e.to_string()))?;
    if let Some(id) = &args.step
        && !parts
            .iter()
            .any(|p| p.file.steps.iter().any(|s| &s.id == id))
    {
        return Err(UsageError(format!(
            "there is no step `{id}` in {}: `lab-runner list` shows the steps",
            if args.parts.is_empty() {
                "the lab".to_string()
            } else {
                args.parts.join(", ")
            }
        ))
        .into());
    }
    Ok(())
}

/// One verify run with the reporters `args` asks for: its exit code, or `Err(())` when interrupted.
async fn verify_once(lab: &Lab, args: &VerifyArgs) -> Result<std::result::Result<u8, ()>> {
    // With JSON lines on stdout, what a person reads goes to stderr.
    let json = args.format == Format::Json;
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if json {
        reporters.push(Box::new(crate::session::json::JsonReporter::new(Box::new(
            std::io::stdout(),
        ))));
    }
    if let Some(path) = &args.junit {
        reporters.push(Box::new(crate::session::junit::JunitReporter::new(
            path.clone(),
            human_output(json),
        )));
    }
    reporters.push(Box::new(crate::session::report::VerifyReporter::new(
        human_output(json),
        args.verbose,
    )));
    let events = Events::new(reporters);
    let options = VerifyOptions {
        parts: args.parts.clone(),
        keep: args.keep,
        fail_fast: args.fail_fast,
        mutations: args.mutations,
        mutation_jobs: args.mutation_jobs,
        jobs: usize::from(args.jobs),
        step: args.step.clone(),
        engine: EngineOptions {
            isolated_terminal: args.isolated_shell,
            ..engine_options(&args.env, args.artifacts.clone(), Mode::Verify)
        },
    };
    match interruptible(verify::run(lab, &options, &events)).await? {
        Ok(results) => {
            events.finish()?;
            Ok(Ok(verify_exit(&results)))
        }
        Err(why) => {
            events.emit(Event::Interrupted { why: why.into() });
            Ok(Err(()))
        }
    }
}

/// `verify --step ID --watch`: the step now, then again after each change to the lab's files (or
/// its app's), until Ctrl-C. A lab that no longer loads or lints says why and waits for the fix.
async fn verify_watching(lab: Lab, args: &VerifyArgs) -> Result<u8> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("Failed to listen for Ctrl-C")?;
    let mut term = signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("Failed to listen for SIGHUP")?;
    let dir = lab_dir(args.env.lab.clone());
    let mut lab = Some(lab);
    loop {
        let roots = super::watch::roots(&dir, lab.as_ref().map(Lab::app_dir));
        let before = super::watch::snapshot(&roots);
        if let Some(lab) = &lab {
            match check_verify_args(lab, args) {
                Ok(()) => {
                    if verify_once(lab, args).await?.is_err() {
                        return Ok(exit::INTERRUPTED);
                    }
                }
                Err(e) => eprintln!("{e:#}"),
            }
        }
        eprintln!(
            "watching {} for changes; Ctrl-C to stop",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        // Listeners made once, before the first run: a Ctrl-C between a run and this wait is
        // still heard (a listener made afterwards would miss it, and the signal would be lost).
        let changed = tokio::select! {
            changed = super::watch::changed(&roots, &before) => changed,
            _ = interrupt.recv() => return Ok(exit::INTERRUPTED),
            _ = term.recv() => return Ok(exit::INTERRUPTED),
            _ = hangup.recv() => return Ok(exit::INTERRUPTED),
        };
        eprintln!(
            "changed: {}; verifying step {} again",
            changed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.step.as_deref().unwrap_or_default()
        );
        lab = match load_lab(Some(dir.clone())) {
            Ok(lab) => Some(lab),
            Err(e) => {
                eprintln!("{e:#}");
                None
            }
        };
    }
}

/// verify's exit code: 0 when every step passed; 4 when an environment could not start (that
/// proved nothing either way: not a failed check but "something else went wrong", as the README
/// documents); 1 when a step failed.
fn verify_exit(results: &[crate::outcome::StepResult]) -> u8 {
    if !results.is_empty() && results.iter().all(|r| r.passed()) {
        exit::SUCCESS
    } else if results.iter().any(|r| r.environment_failed()) {
        exit::ERROR
    } else {
        exit::FAILED
    }
}

fn list_command(args: ListArgs) -> Result<u8> {
    let lab = load_lab(args.lab)?;
    println!("{} — {}", lab.id(), lab.manifest.title);
    for part in &lab.parts {
        let env = lab.environment(part);
        println!(
            "\n{}  {}  (environment: {}{})",
            part.id(),
            part.file.title,
            part.reference.environment,
            if env.requires.is_some() {
                ", needs Docker"
            } else {
                ""
            }
        );
        for step in &part.file.steps {
            let mut marks = Vec::new();
            if step.manual {
                marks.push("manual");
            }
            if !step.check_fails_before_solve {
                marks.push("observation");
            }
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!("  [{}]", marks.join(", "))
            };
            println!("  {:<5} {}{marks}", step.id, step.title);
        }
    }
    Ok(exit::SUCCESS)
}

fn lint_command(args: LintArgs) -> Result<u8> {
    let dir = lab_dir(args.lab_dir);
    let lab = match lab::load(&dir) {
        Ok(lab) => lab,
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{} problem(s) in {}", problems.len(), dir.display());
            return Ok(exit::USAGE);
        }
    };
    let problems = lint::lint(&lab);
    for p in &problems {
        println!("{p}");
    }
    let steps: usize = lab.parts.iter().map(|p| p.file.steps.len()).sum();
    if problems.is_empty() {
        for (part, why) in crate::session::engine::parts_needing_docker(&lab) {
            println!("{part} needs Docker: {why}");
        }
        println!(
            "{}: ok — {} part(s), {steps} step(s)",
            dir.display(),
            lab.parts.len()
        );
        Ok(exit::SUCCESS)
    } else {
        println!("{} problem(s) in {}", problems.len(), dir.display());
        Ok(exit::USAGE)
    }
}

async fn cleanup_command(args: CleanupArgs) -> Result<u8> {
    let killed = crate::env::process::kill_orphans();
    for pid in &killed {
        println!("stopped orphaned lab app process {pid}");
    }
    let docker = connect::connect().await?;
    let removed = cleanup::remove_labelled(
        &docker,
        &cleanup::Scope {
            session: None,
            images: args.images,
            live_sessions: args.all,
            runner_pid: None,
        },
    )
    .await?;
    for c in &removed.containers {
        println!("removed container {c}");
    }
    for n in &removed.networks {
        println!("removed network {n}");
    }
    for i in &removed.images {
        println!("removed image {i}");
    }
    for (what, pid) in &removed.left_live {
        println!("left {what}: its lab-runner (pid {pid}) is still running");
    }
    if !removed.left_live.is_empty() {
        println!(
            "cleanup: what running sessions use is left; end them (q, Ctrl-C), or remove it \
             anyway with `lab-runner cleanup --all`"
        );
    }
    println!(
        "cleanup: {} container(s), {} network(s), {} image(s), {} process(es) removed",
        removed.containers.len(),
        removed.networks.len(),
        removed.images.len(),
        killed.len()
    );
    Ok(exit::SUCCESS)
}

/// The guide's commands call `lab-runner` by name (`redeploy`, `pull`, `tunnel`, `analyze`): when the
/// participant's shell would not find this one (`cargo run -- start …`), say how it will.
fn lab_runner_not_on_path() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join("lab-runner").is_file()))
        .unwrap_or(false);
    (!found).then(|| {
        format!(
            "note: the guide's commands call `lab-runner`, and your shell will not find it: in the terminal \
             where you type them, first `export PATH=\"{}:$PATH\"` (or install it once: `cargo install --path .`)",
            dir.display()
        )
    })
}

/// The one part named on the command line.
pub fn one_part<'a>(lab: &'a Lab, name: &str) -> Result<&'a crate::lab::Part> {
    Ok(lab
        .select_parts(&[name.to_string()])
        .map_err(|e| UsageError(e.to_string()))?[0])
}

async fn start_command(args: StartArgs) -> Result<u8> {
    let lab = load_lab(args.env.lab.clone())?;
    if let Some(note) = lab_runner_not_on_path() {
        eprintln!("{note}");
    }
    let part = one_part(&lab, &args.part)?;
    // What the participant saves (profiles, snapshots) stays where they can find it again.
    let mut engine = engine_options(&args.env, Some(PathBuf::from("lab-artifacts")), Mode::Start);
    engine.artifacts_per_session = false;
    // Someone else types into the participant's terminal: none of this user's variables.
    engine.clean_terminal = args.shell;
    engine.isolated_terminal = args.isolated_shell;
    // With the guide in the browser, the terminal keeps a short live log.
    let screen: Box<dyn crate::session::events::Reporter> = if args.web.web {
        Box::new(crate::session::short_log::ShortLogReporter::new(
            Terminal::detect(),
        ))
    } else {
        Box::new(ScreenReporter::new(Terminal::detect(), Screen::Start))
    };
    let mut reporters = vec![screen];
    if let Some(url) = &args.join {
        let address = crate::workshop::join::JoinAddress::parse(url)
            .map_err(|e| UsageError(format!("{e:#}")))?;
        let name = args
            .name
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "participant".into());
        let steps = part
            .file
            .steps
            .iter()
            .map(|s| crate::workshop::protocol::StepName {
                id: s.id.clone(),
                title: s.title.clone(),
            })
            .collect();
        reporters.push(Box::new(crate::workshop::join::JoinReporter::start(
            &address,
            name,
            lab.id().to_string(),
            steps,
        )?));
    }
    let mut remote = None;
    let mut asker: Option<Box<dyn crate::actions::context::Asker>> = None;
    let inspector = crate::session::inspector_link::InspectorLink::new();
    let mut on_ready = None;
    let face = if args.web.web {
        let (face, choices, page_asker) = crate::web::serve_start(
            page_setup(&lab, part)?,
            args.web.port,
            inspector.clone(),
            args.shell,
        )
        .await?;
        announce_page(&face.url, &args.web);
        reporters.push(face.reporter());
        remote = Some(choices);
        asker = Some(Box::new(page_asker));
        on_ready = face.on_ready();
        Some(face)
    } else {
        None
    };
    let options = crate::session::interactive::StartOptions {
        keep: args.keep,
        engine,
        remote,
        asker,
        inspector: args.web.web.then_some(inspector),
        on_ready,
    };
    let events = Events::new(reporters);
    let run = crate::session::interactive::run(&lab, part, options, &events);
    let code = match interruptible(run).await? {
        // Quitting is fine: the participant's progress is saved.
        Ok(_) => exit::SUCCESS,
        Err(why) => {
            events.emit(Event::Interrupted { why: why.into() });
            exit::INTERRUPTED
        }
    };
    // A joined session's last progress goes out (briefly: the workshop may be gone).
    events.finish()?;
    if let Some(face) = face {
        face.finish().await;
    }
    Ok(code)
}

/// What the page shows before the session says anything: the lab, the part, its steps, and each
/// part's progress for the sidebar.
fn page_setup(lab: &Lab, part: &crate::lab::Part) -> Result<crate::web::state::PageSetup> {
    let store = crate::session::progress::Store::open_default()?;
    let mut parts = Vec::new();
    for p in &lab.parts {
        parts.push(crate::web::PartSummary {
            id: p.id().to_string(),
            title: p.file.title.clone(),
            done: store.part(lab, p)?.done_count(p),
            steps: p.file.steps.len(),
        });
    }
    Ok(crate::web::state::PageSetup {
        inspector: lab.environment(part).inspector != crate::lab::InspectorMode::None,
        lab_title: lab.manifest.title.clone(),
        part: part.id().to_string(),
        part_title: part.file.title.clone(),
        steps: part
            .file
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.title.clone()))
            .collect(),
        parts,
    })
}

/// Prints the page's URL on a line of its own, and opens it unless told not to.
fn announce_page(url: &str, args: &crate::cli::args::WebArgs) {
    println!("the session in your browser (keep this address to yourself: it holds the token):");
    println!("{url}");
    if !args.no_browser
        && let Some(opened) = crate::web::open_in_browser(url)
    {
        println!("{opened}");
    }
}

async fn demo_command(args: DemoArgs) -> Result<u8> {
    let lab = load_lab(args.env.lab.clone())?;
    let part = one_part(&lab, &args.part)?;
    let term = Terminal::detect();
    // The live line polls the app: only where someone watches it (a terminal, the presenter view).
    let live = term.styled() || args.web.web;
    let mut reporters: Vec<Box<dyn crate::session::events::Reporter>> =
        vec![Box::new(ScreenReporter::new(term, Screen::Demo))];
    let mut remote = None;
    let face = if args.web.web {
        let (face, pace) = crate::web::serve_demo(page_setup(&lab, part)?, args.web.port).await?;
        announce_page(&face.url, &args.web);
        reporters.push(face.reporter());
        remote = Some(pace);
        Some(face)
    } else {
        None
    };
    let options = crate::session::demo::DemoOptions {
        pace: args.pace,
        yes: args.yes,
        keep: args.keep,
        live,
        engine: engine_options(&args.env, None, Mode::Demo),
        remote,
        charts: args.web.web,
    };
    let events = Events::new(reporters);
    let code = match interruptible(crate::session::demo::run(&lab, part, options, &events)).await? {
        Ok(results) if results.iter().all(|r| r.passed()) => exit::SUCCESS,
        Ok(_) => exit::FAILED,
        Err(why) => {
            events.emit(Event::Interrupted { why: why.into() });
            exit::INTERRUPTED
        }
    };
    if let Some(face) = face {
        face.finish().await;
    }
    Ok(code)
}

fn status_command(args: StatusArgs) -> Result<u8> {
    let lab = load_lab(args.lab)?;
    let store = crate::session::progress::Store::open_default()?;
    println!(
        "{} — {}   (progress: {})",
        lab.id(),
        lab.manifest.title,
        store.path().display()
    );
    for part in &lab.parts {
        let progress = store.part(&lab, part)?;
        let steps = &part.file.steps;
        let done = progress.done_count(part);
        let next = progress.resume_index(part);
        let where_ = if done == steps.len() {
            "complete".to_string()
        } else if next < steps.len() {
            format!("next: {} {}", steps[next].id, steps[next].title)
        } else {
            "all steps visited".to_string()
        };
        println!("  {:<6} {done}/{} done   {where_}", part.id(), steps.len());
        for step in steps {
            let mark = if progress.done.contains(&step.id) {
                "✓"
            } else if progress.skipped.contains(&step.id) {
                "skipped"
            } else {
                " "
            };
            println!("           {mark:<7} {:<5} {}", step.id, step.title);
        }
    }
    Ok(exit::SUCCESS)
}

fn reset_command(args: ResetArgs) -> Result<u8> {
    let lab = load_lab(args.lab)?;
    let scope = crate::session::progress::reset_scope(&lab, args.what.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let store = crate::session::progress::Store::open_default()?;
    println!("{}", crate::session::progress::reset(&store, &lab, &scope)?);
    Ok(exit::SUCCESS)
}
