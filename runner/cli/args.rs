//! clap definitions only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::session::engine::BackendChoice;

#[derive(Debug, Parser)]
#[command(
    name = "lab-runner",
    version,
    about = "Runs guided, hands-on technical labs and proves every step works",
    long_about = "Runs guided, hands-on technical labs from declarative YAML: brings the lab's environment up \
                  (Docker, or a local process), shows each step, and checks the outcome against the live system.",
    after_help = "Examples:\n  lab-runner verify                 # prove every step of every part (CI)\n  lab-runner verify part2 --junit report.xml\n  lab-runner list\n  lab-runner lint labs/node-profiling\n  lab-runner cleanup"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the lab is and how its environment runs (shared by the commands that bring one up).
#[derive(Debug, Args, Clone)]
pub struct EnvArgs {
    /// The lab folder (default: $LAB_RUNNER_LAB, or labs/node-profiling found from here upwards)
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
    /// Where the app runs: docker, a local node process, or docker when reachable
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// How the lab image is made when it is not there yet
    #[arg(long, value_enum, default_value_t = ImageFrom::HostNode)]
    pub image_from: ImageFrom,
    /// Use this existing image instead of building one
    #[arg(long, value_name = "IMAGE", conflicts_with = "image_from")]
    pub image: Option<String>,
    /// Publish the app on its own port (3001) on 127.0.0.1 instead of an ephemeral one (an error,
    /// not a silent fallback, when another program holds that port)
    #[arg(long)]
    pub fixed_ports: bool,
    /// The app container's memory limit in MiB instead of the environment's `memory_mb` (a
    /// workshop's seats get what fits the host; Docker only)
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(64..))]
    pub memory: Option<u64>,
    /// The most CPU each of the environment's containers may use, in cores (e.g. 0.5; Docker only)
    #[arg(long, value_name = "CORES", value_parser = parse_cpus)]
    pub cpus: Option<f64>,
}

/// `--cpus`: a positive number of cores, at most this machine's.
fn parse_cpus(text: &str) -> Result<f64, String> {
    let cores: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of cores (e.g. 0.5 or 2)"))?;
    let here = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if !(0.01..=here).contains(&cores) {
        return Err(format!(
            "{cores} cores: give between 0.01 and this machine's {here}"
        ));
    }
    Ok(cores)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFrom {
    /// FROM scratch with the host's node binary: works offline
    HostNode,
    /// lab-app/Dockerfile (FROM node:20-...): needs a registry
    Dockerfile,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every step of the chosen parts non-interactively and prove each one
    #[command(
        after_help = "Examples:\n  lab-runner verify\n  lab-runner verify part2 --junit target/lab-junit.xml\n  lab-runner verify 2 --backend process --verbose\n  lab-runner verify part2 --format json > events.jsonl\n  lab-runner verify part2 --mutations\n\nEach step: setup → check (must fail) → each of its mistakes (the check must reject it with its hint) → solve → check (must pass) → cleanup.\nWith --mutations, each step again per solve command or action left out, in a fresh environment: the check must fail.\nExit code 0 only if every step passed."
    )]
    Verify(VerifyArgs),
    /// List the lab's parts and steps
    #[command(after_help = "Example:\n  lab-runner list")]
    List(ListArgs),
    /// Check the lab's files: YAML and schema, templates, step ids, solves
    #[command(after_help = "Examples:\n  lab-runner lint\n  lab-runner lint labs/node-profiling")]
    Lint(LintArgs),
    /// Do a part interactively: each step shown, your work checked against the live system
    #[command(
        after_help = "Examples:\n  lab-runner start part1\n  lab-runner start 2 --backend process\n  lab-runner start part1 --web         # the same session in your browser too\n  lab-runner start part2 --web --shell # ... with a terminal on the page (a workshop seat)\n\nKeys at each step: c check my work · d do it for me · h hint · s show the commands · n skip · b back · q quit.\nProgress is saved after every step; run the same command to resume. Needs a terminal (see `verify`, `demo --yes`),\nunless --web serves the same session as a page in your browser (the same keys, as buttons).\n\nWARNING: --shell gives whoever has the page's address a shell on this machine, as the user running lab-runner.\nUse it only for a participant without a terminal of their own (a workshop seat), and keep the address to them."
    )]
    Start(StartArgs),
    /// Show a part to an audience: each step performed, narrated and checked
    #[command(
        after_help = "Examples:\n  lab-runner demo part2              # Enter between steps\n  lab-runner demo part2 --pace 5     # 5 s between steps (p pauses, Enter goes on)\n  lab-runner demo part1 --pace 0 --yes   # no waiting (CI)\n  lab-runner demo part2 --web        # the presenter view in your browser: big type, live charts, Next / Pause"
    )]
    Demo(DemoArgs),
    /// Show your progress through each part
    #[command(after_help = "Example:\n  lab-runner status")]
    Status(StatusArgs),
    /// Forget progress: all of it, one part's, or one step's
    #[command(
        after_help = "Examples:\n  lab-runner reset          # everything\n  lab-runner reset part2\n  lab-runner reset 2.3      # resume at step 2.3 next time"
    )]
    Reset(ResetArgs),
    /// Read a CPU profile or heap snapshot: top functions, flame graph, sizes per constructor, diffs
    Analyze(crate::cli::analyze::AnalyzeArgs),
    /// Remove every container, network and dangling image the runner created
    #[command(
        after_help = "Examples:\n  lab-runner cleanup\n  lab-runner cleanup --images   # also the lab images (rebuilt when needed)"
    )]
    Cleanup(CleanupArgs),
    Doctor(super::doctor::DoctorArgs),
    Export(super::export::ExportArgs),
    Pull(super::pull::PullArgs),
    Completions(super::completions::CompletionsArgs),
    Schema(super::schema::SchemaArgs),
    New(super::new::NewArgs),
    Tunnel(super::tunnel::TunnelArgs),
    Redeploy(super::control::RedeployArgs),
    Check(super::control::CheckArgs),
    /// Run a workshop: a server participants' `start --join` report to, and the instructor's live dashboard
    Workshop(super::workshop::WorkshopArgs),
    /// The first process of a participant's terminal container (a workshop seat's): not for people
    #[command(hide = true)]
    Forward(super::forward::ForwardArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Parts to verify (`part2` or `2`); all when none are given
    pub parts: Vec<String>,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Leave each part's environment running afterwards
    #[arg(long)]
    pub keep: bool,
    /// Stop at the first failing step
    #[arg(long)]
    pub fail_fast: bool,
    /// Verify only this step (`2.3`), after solving the steps before it in its part
    #[arg(long, value_name = "ID")]
    pub step: Option<String>,
    /// With --step: verify it again each time a file of the lab or its app changes, until Ctrl-C
    #[arg(long, requires = "step")]
    pub watch: bool,
    /// Print what each action does
    #[arg(long, short)]
    pub verbose: bool,
    /// Also rerun each step once per solve command or action left out: the check must fail
    /// without it, unless the step lists it under `unchecked:` (each mutant gets a fresh environment)
    #[arg(long)]
    pub mutations: bool,
    /// How many mutants run at once, each in an environment of its own
    #[arg(long, value_name = "N", default_value_t = 2, requires = "mutations")]
    pub mutation_jobs: usize,
    /// How many parts run at once, each in an environment of its own (ports of their own; a
    /// preferred host port already taken moves to a free one, and the part says so)
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Keep copied artifacts (profiles, snapshots) under this folder
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Run the steps' commands in a terminal container of their own, as a workshop seat's
    /// participant types them (`start --isolated-shell`; Docker backend)
    #[arg(long)]
    pub isolated_shell: bool,
    /// What stdout carries: the lines a person reads, or one JSON object per event for tools
    /// (docs/events.md); with json, the person's lines go to stderr
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[command(flatten)]
    pub env: EnvArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for a person
    Human,
    /// JSON lines, one per event (docs/events.md); the lines for a person go to stderr
    Json,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The part to do (`part1` or `1`)
    pub part: String,
    /// Leave the environment running when you quit
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub web: WebArgs,
    /// Give the page a terminal: commands typed there run on this machine, as this user, in the
    /// session's participant terminal (for a participant without a terminal of their own, such as
    /// a workshop seat). WARNING: whoever has the page's address gets a shell on this machine.
    #[arg(long, requires = "web")]
    pub shell: bool,
    /// With --shell: the page's terminal (and "do it for me") runs in a container of its own on
    /// the lab's network, whose Docker reaches only this session's containers (a workshop seat)
    #[arg(long, requires = "shell")]
    pub isolated_shell: bool,
    /// Report your progress to an instructor's workshop (the address `lab-runner workshop up`
    /// printed): only the part, the step and your checks' verdicts are sent
    #[arg(long, value_name = "URL")]
    pub join: Option<String>,
    /// The name the instructor sees (default: your login name)
    #[arg(long, value_name = "NAME", requires = "join")]
    pub name: Option<String>,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// The browser face of a session (`start --web`, `demo --web`).
#[derive(Debug, Args, Clone)]
pub struct WebArgs {
    /// Also serve the session as a web page on 127.0.0.1 (its URL, with a token, is printed)
    #[arg(long)]
    pub web: bool,
    /// The page's port on 127.0.0.1 (default: a free one)
    #[arg(long, value_name = "PORT", requires = "web", default_value_t = 0)]
    pub port: u16,
    /// Do not open the page in the default browser (it is opened only when a display exists)
    #[arg(long, requires = "web")]
    pub no_browser: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The part to show (`part2` or `2`)
    pub part: String,
    /// Seconds between steps instead of waiting for Enter (at the terminal, `p` pauses and resumes
    /// the pace, Enter goes on at once)
    #[arg(long, value_name = "SECONDS")]
    pub pace: Option<f64>,
    /// Never wait for Enter (for CI, or an unattended screen)
    #[arg(long)]
    pub yes: bool,
    /// Leave the environment running afterwards
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub env: EnvArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The lab folder
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// A part (`part2`) or a step (`2.3`); everything when omitted
    pub what: Option<String>,
    /// The lab folder
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The lab folder
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// The lab folder (default: the shipped lab)
    pub lab_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Also remove the lab images
    #[arg(long)]
    pub images: bool,
    /// Also remove what sessions still running (start, demo, verify) use; they fail then
    #[arg(long)]
    pub all: bool,
}
