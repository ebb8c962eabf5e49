//! The lab format: the serde types a lab folder is read into.
//!
//! A lab is a folder holding `lab.yaml` (the [`LabManifest`]) and one YAML file per part ([`PartFile`]).
//! Every struct rejects unknown fields, so a typo is an error with a line and column, never a silently
//! ignored setting. Strings in actions are minijinja templates, rendered when the action runs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use lab_util::duration::Dur;

/// `lab.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabManifest {
    /// The lab format the file is written in (checked before the rest is read).
    pub format: u32,
    /// Stable id; progress is keyed by it.
    pub id: String,
    pub title: String,
    /// Markdown shown before the first part (and at the top of the exported guide).
    #[serde(default)]
    pub description: String,
    /// Markdown shown when a participant finishes the last part (and closing the exported guide):
    /// when to use which approach, what to remember, where to go next.
    #[serde(default)]
    pub closing: String,
    /// Links for the exported guide's "Further reading".
    #[serde(default)]
    pub further_reading: Vec<Link>,
    /// Where the app under study lives and how it is reached.
    pub app: AppSpec,
    /// Values available to every template (`{{ jam_ms }}`).
    #[serde(default)]
    pub variables: BTreeMap<String, Value>,
    /// The lab's other services, by name: each runs in its own container beside the app in the
    /// environments that list it (`environments.<name>.services`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Named environments a part runs in.
    pub environments: BTreeMap<String, EnvironmentSpec>,
    pub parts: Vec<PartRef>,
}

/// A link with a title (`further_reading`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// The lab app: its source folder and how to run and probe it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Source folder, relative to the lab folder.
    pub source: String,
    /// A Node.js entry script, relative to the source folder: the app runs as `node <entry>` (with
    /// the inspector flags its environment asks for). Exactly one of `entry` and `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Or: the program and its arguments, run in the app's folder (`/app` in an image):
    /// `[python3, -u, server.py]`. Exactly one of `entry` and `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Where the app's image comes from (Docker backend): `offline:` host files, a `registry:`
    /// image or a `dockerfile:`. The default is the offline image with the host's `node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// What of the source folder goes into the lab's image (files and folders, relative to it);
    /// everything but `node_modules` and hidden files when not given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Port the app listens on inside its environment.
    #[serde(default = "default_app_port")]
    pub port: u16,
    /// Path answering 200 once the app is ready.
    #[serde(default = "default_health_path")]
    pub health: String,
    /// The oldest Node.js the app and the steps work with (`20.16`); `doctor` checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The header an `http` action with `token: true` carries the session's `{{ token }}` in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_header: Option<String>,
    /// Where the app serves Prometheus metrics (the default path of `metrics:` actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// What usually explains a surprising status from this app (shown with a failed request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_hints: Vec<StatusHint>,
    /// What to tell a participant whose app ran out of memory (how to release what the lab holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_memory_hint: Option<String>,
    /// The demo's live line: values read twice a second from one of the app's JSON endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveLine>,
}

/// `status_hints:` — a hint for a status, on paths that start with `path_prefix` (any path if none).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusHint {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    pub hint: String,
}

/// `live:` — what the demo's live line shows besides the health request's time.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveLine {
    /// A JSON endpoint of the app (not a metrics scrape: that would reset what the steps read).
    pub path: String,
    /// Send the session's token in `token_header`.
    #[serde(default)]
    pub token: bool,
    pub fields: Vec<LiveField>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveField {
    pub label: String,
    /// JSON pointer into the answer (`/memory/rss`).
    pub pointer: String,
    /// `bytes` shows the number as a size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl AppSpec {
    /// How the app is started: a Node entry script, or a command.
    pub fn run(&self) -> AppRun {
        match &self.entry {
            Some(entry) => AppRun::Node(entry.clone()),
            None => AppRun::Command(self.command.clone()),
        }
    }
}

/// How an app is started (see [`AppSpec::run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRun {
    /// `node <entry>`, the entry relative to the app's folder.
    Node(String),
    /// A program and its arguments, run in the app's folder.
    Command(Vec<String>),
}

/// `image:` — where the image of the app or of a service comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ImageSpec {
    /// Built offline `FROM scratch`: these host files and folders at the same paths in the image,
    /// every shared library their ELF files load, and the app's (or service's) files in `/app`.
    Offline(OfflineImage),
    /// An image from a registry (`python:3.11-slim`): used when the engine has it, pulled when
    /// not; the app's (or service's) files are added in `/app`.
    Registry(String),
    /// A Dockerfile, relative to the source folder, which is the build context.
    Dockerfile(String),
}

/// `image: offline:` — the host's runtime, copied into an image built from scratch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineImage {
    /// Host files and folders (folders whole, without `__pycache__`), each at its own path in the
    /// image: `[/usr/bin/python3.11, /usr/lib/python3.11]`.
    pub host: Vec<String>,
    /// Host paths under `host` that are left out (`/usr/lib/python3.11/test`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Symbolic links made in the image: path → target (`/usr/bin/python3: python3.11`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
}

/// One of the lab's other services (`services.<name>` in `lab.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Folder (relative to the lab folder) whose files go to `/app` in the service's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What of `source` goes into the image (as `app.files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The program and its arguments, run in `/app`.
    pub command: Vec<String>,
    /// Where its image comes from; the app's image recipe when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// The port it listens on: the app and the other services reach it as `<name>:<port>`.
    pub port: u16,
    /// Also published on a free port of the host's 127.0.0.1 for the participant
    /// (`{{ services.<name>.url }}`, `{{ services.<name>.addr }}`).
    #[serde(default)]
    pub publish: bool,
    /// When it is ready: `{http: /health}` (answers 200) or `{tcp: true}` (the default: its port
    /// accepts connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ServiceHealth>,
    /// Its environment variables (templates, as an environment's `env`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Memory limit of its container, in MiB.
    #[serde(default = "default_service_memory_mb")]
    pub memory_mb: u64,
}

fn default_service_memory_mb() -> u64 {
    256
}

/// How a service shows it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceHealth {
    /// A path that answers 200.
    Http(String),
    /// `true`: its port accepts TCP connections.
    Tcp(bool),
}

fn default_app_port() -> u16 {
    3001
}
fn default_health_path() -> String {
    "/api/health".into()
}

/// One environment a part runs in.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    #[serde(default)]
    pub description: String,
    /// Environment variables of the app (templates; `{{ token }}` is the session's token).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How the Node inspector is set up.
    #[serde(default)]
    pub inspector: InspectorMode,
    /// Memory limit of the app's container, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// The least memory the app needs for every step of this environment's parts, in MiB. When a
    /// workshop's seats do not all fit the host at `memory_mb`, each seat's app gets less, never
    /// less than this (default: `memory_mb`, never lowered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_min_mb: Option<u64>,
    /// `docker` when the environment cannot be emulated by a local process (exec, tunnels).
    #[serde(default)]
    pub requires: Option<Requirement>,
    /// The lab's services (`services:` in `lab.yaml`) started, healthy, before the app, each in its
    /// own container on the environment's own network, reachable by its name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}

fn default_memory_mb() -> u64 {
    1024
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InspectorMode {
    /// No inspector.
    #[default]
    None,
    /// Listening from the start (`--inspect`), published on the host's loopback.
    /// `host_port` is the preferred host port; another free one is used (and said) when it is taken.
    Open {
        #[serde(default = "default_inspector_port")]
        host_port: u16,
    },
    /// Not listening and never published; `SIGUSR1` opens it inside the environment on 127.0.0.1.
    OnSignal,
}

fn default_inspector_port() -> u16 {
    9229
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    Docker,
}

/// A part as `lab.yaml` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartRef {
    pub id: String,
    /// The part's YAML file, relative to the lab folder.
    pub file: String,
    /// Key into `environments`.
    pub environment: String,
}

/// A part's YAML file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartFile {
    pub title: String,
    /// Markdown shown before the first step.
    #[serde(default)]
    pub intro: String,
    /// "What you can now explain": shown when the part is done.
    #[serde(default)]
    pub takeaways: Vec<String>,
    pub steps: Vec<Step>,
}

/// One step of a part.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Stable id ("2.2"); progress is keyed by it.
    pub id: String,
    pub title: String,
    /// Markdown, rendered with minijinja.
    pub instructions: String,
    #[serde(default)]
    pub hints: Vec<String>,
    /// Brings the world to the step's starting state.
    #[serde(default)]
    pub setup: Vec<Action>,
    /// What "do it for me", demo and verify perform.
    #[serde(default)]
    pub solve: Vec<Action>,
    /// Judged against the live system.
    #[serde(default)]
    pub check: Vec<Action>,
    /// verify asserts that the check fails before the solve (opt out per step).
    #[serde(default = "yes")]
    pub check_fails_before_solve: bool,
    #[serde(default)]
    pub cleanup: Vec<Action>,
    /// Plausible wrong work: verify performs each instead of the solve and asserts that the check
    /// rejects it with the mistake's hint (see `session/mistakes.rs`). Never shown to participants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mistakes: Vec<Mistake>,
    /// Parts of the solve the check does not judge, each with the reason: `verify --mutations`
    /// leaves out every other command and action of the solve in turn and expects the check to fail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<Unchecked>,
    /// The participant does this by hand and no solve can do it for them (lint accepts a check without
    /// a solve only then).
    #[serde(default)]
    pub manual: bool,
    /// Budget for each phase of the step (setup, solve, check, cleanup).
    #[serde(default)]
    pub timeout: Option<Dur>,
}

fn yes() -> bool {
    true
}

/// `mistakes:` — one plausible piece of wrong work a participant might do instead of the solve.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mistake {
    /// What the participant got wrong ("a jam shorter than asked"); named in verify's output.
    pub name: String,
    /// What they do instead of the solve: the solve's vocabulary (`shell`, `inspector`, `wait`,
    /// `ask`), which lint holds to the same rules as a solve.
    #[serde(rename = "do")]
    pub actions: Vec<Action>,
    /// Text the check's diagnosis must contain once it rejects this work (a template): the hint the
    /// participant who made this mistake needs.
    pub hint: String,
    /// Actions (of any kind) that bring the world back to the step's starting state afterwards,
    /// before the next mistake and the real solve run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<Action>,
    /// Run in an environment of its own, brought to the step's starting state by replaying the
    /// part's earlier steps: for a mistake whose effect no `undo` can take back (the app killed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
}

/// `unchecked:` — a command or action of the solve that the check does not judge, and why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unchecked {
    /// Commands of the solve's `shell:` blocks whose first line starts with this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A solve action by its path, as lint and `verify --mutations` name it
    /// (`solve[0].profile.during[0]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Why the check need not (or cannot) see it: shown by `verify --mutations`.
    pub reason: String,
}

/// Something the runner does, or judges, against the live system.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// An HTTP request to the app.
    Http(Box<HttpAction>),
    /// Actions run at the same time; all must succeed.
    Parallel(Vec<Action>),
    /// Actions run one after another (useful inside `parallel`).
    Sequence(Vec<Action>),
    /// A Prometheus scrape of the app, judged and/or saved.
    Metrics(MetricsAction),
    /// Something done to, or read from, the app's container (or process).
    Container(ContainerAction),
    /// A file copied out of the environment to the host.
    Artifact(ArtifactAction),
    /// A captured profile or snapshot, read and judged.
    Analyze(AnalyzeAction),
    /// Pause for a while.
    Wait(Dur),
    /// Retry the inner actions until they all pass, or the timeout ends.
    Eventually(EventuallyAction),
    /// Talk to the app's inspector over the Chrome DevTools Protocol (at `{{ inspector_addr }}`).
    Inspector(InspectorAction),
    /// A port-forward into the container through Docker exec (the SSM port-forwarding session of
    /// this lab). Needs Docker.
    Tunnel(TunnelAction),
    /// A question whose right answer the runner derives from live state (asked in interactive mode;
    /// answered from the same state by verify and demo).
    Ask(AskAction),
    /// Shell commands a participant types: shown in the step exactly as written (after rendering) and
    /// run exactly so, in `bash`, by verify, demo and "do it for me".
    Shell(ShellAction),
    /// A check (or setup): runs a command on the participant's side or inside the app's environment
    /// and judges how it ended (exit status, output, duration). Never part of a solve.
    Command(CommandAction),
    /// A check: a file in the participant's workspace exists (or not) and holds some text.
    File(FileCheck),
    /// A check: waits until a TCP port accepts connections (or, with `open: false`, refuses them).
    Port(PortWait),
}

/// `command:` — run a command and judge how it ended. A check, not something a participant does:
/// lint keeps it out of a solve.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAction {
    /// Shell commands: `bash` on the participant's side (with the participant's exported variables,
    /// in their terminal's folder), `sh -c` inside the app's environment (the image needs a shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The program and its arguments, run without a shell (for an image that has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// Where it runs: `participant` (the default: the participant's machine), `app` (inside the
    /// app's environment: `docker exec` in its container; for the process backend, a local process
    /// in the app's folder with the app's environment variables), or a service's name (`docker
    /// exec` in that service's container).
    #[serde(default, rename = "in")]
    pub side: Side,
    /// What must be true of how it ended; with nothing said, exit status 0.
    #[serde(default)]
    pub expect: CommandExpect,
    /// Variables saved from what it printed: `name: stdout`, `stderr`, `exit`, or a JSON pointer
    /// into stdout read as JSON (`/items/0/id`). Text is saved without its trailing newline.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
    /// How long it may run (default 30 s); still running then, it is stopped and judged as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Where a `command:` runs: `participant`, `app`, or the name of one of the lab's services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Side {
    /// The participant's machine, as their terminal is.
    #[default]
    Participant,
    /// Inside the app's environment.
    App,
    /// Inside that service's container.
    Service(String),
}

impl Side {
    pub fn name(&self) -> &str {
        match self {
            Side::Participant => "participant",
            Side::App => "app",
            Side::Service(name) => name,
        }
    }
}

impl Serialize for Side {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match name.as_str() {
            "participant" => Side::Participant,
            "app" => Side::App,
            "" => {
                return Err(serde::de::Error::custom(
                    "`in:` is empty: give participant, app or a service's name",
                ));
            }
            _ => Side::Service(name),
        })
    }
}

impl JsonSchema for Side {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Side".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Where a command runs: `participant` (the participant's machine), `app` (inside the app's environment) or the name of one of the lab's services (inside its container).",
            "type": "string",
            "minLength": 1
        })
    }
}

/// What a command's ending must look like.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandExpect {
    /// The exit status (`0`, `{ne: 0}`, `{one_of: [0, 1]}`); 0 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<TextExpect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<TextExpect>,
    /// Stdout read as JSON: JSON pointer → matcher.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, Matcher>,
    /// It took at least this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<Dur>,
    /// It took at most this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Dur>,
}

/// What a text (a command's output, a file) must hold. Every condition given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_contains: Option<String>,
    /// A regular expression (Rust `regex` syntax) that must match somewhere; `(?m)^...$` for a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// `file:` — a file in the participant's workspace (the folder their terminal starts in, which
/// `{{ workspace }}` names; a relative `path` is relative to it).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCheck {
    pub path: String,
    /// `false`: the file must not exist.
    #[serde(default = "yes")]
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_contains: Option<String>,
    /// A regular expression its text must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `port:` — wait for a TCP port, as seen from the participant's side.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortWait {
    /// `host:port` (`127.0.0.1:{{ app_port }}`).
    pub address: String,
    /// `false`: wait until nothing accepts connections there any more.
    #[serde(default = "yes")]
    pub open: bool,
    /// How long to wait (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `shell:` — what a participant types into a terminal. A plain string is commands for the
/// participant's main terminal; the long form names another terminal, for a command that keeps
/// running (a tunnel), or interrupts one (Ctrl-C).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "ShellForm", into = "ShellForm")]
pub struct ShellAction {
    /// The commands, exactly as shown (empty for an interrupt).
    pub run: String,
    /// Run in (or interrupt) this other terminal instead of the main one.
    pub terminal: Option<String>,
    /// With `terminal`: text its output shows once the command is ready (the step goes on then).
    pub ready: Option<String>,
    /// Press Ctrl-C in `terminal` and wait until its command ends.
    pub interrupt: bool,
    /// How long the commands may take (default 60 s), or a long-running one to become ready.
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
enum ShellForm {
    Text(String),
    Spec(ShellSpec),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ShellSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terminal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ready: Option<String>,
    /// The terminal to press Ctrl-C in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interrupt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<Dur>,
}

impl From<ShellForm> for ShellAction {
    fn from(form: ShellForm) -> ShellAction {
        match form {
            ShellForm::Text(run) => ShellAction {
                run,
                terminal: None,
                ready: None,
                interrupt: false,
                timeout: None,
            },
            ShellForm::Spec(spec) => ShellAction {
                run: spec.run.unwrap_or_default(),
                interrupt: spec.interrupt.is_some(),
                terminal: spec.interrupt.or(spec.terminal),
                ready: spec.ready,
                timeout: spec.timeout,
            },
        }
    }
}

impl From<ShellAction> for ShellForm {
    fn from(a: ShellAction) -> ShellForm {
        if a.terminal.is_none() && a.ready.is_none() && a.timeout.is_none() && !a.interrupt {
            return ShellForm::Text(a.run);
        }
        ShellForm::Spec(ShellSpec {
            run: (!a.run.is_empty()).then_some(a.run),
            terminal: if a.interrupt {
                None
            } else {
                a.terminal.clone()
            },
            interrupt: if a.interrupt { a.terminal } else { None },
            ready: a.ready,
            timeout: a.timeout,
        })
    }
}

/// `inspector:` — what the runner does through the Chrome DevTools Protocol, as DevTools would.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InspectorAction {
    /// `/json/version` and `/json/list` answer; saves the target's WebSocket and DevTools URLs.
    Discover(InspectorDiscover),
    /// Connects the session's own client and keeps it (as DevTools stays attached) until `detach`.
    Attach(InspectorAttach),
    /// Closes the session's own client.
    Detach,
    /// `Runtime.evaluate` in the app.
    Evaluate(InspectorEvaluate),
    /// Sets a breakpoint on a line of the app's source (by `file://` URL), runs `trigger` in the
    /// background, and waits until the app pauses there. The app stays paused until `resume`.
    PauseAt(Box<InspectorPauseAt>),
    /// Looks at the current pause from a fresh connection: where it is and the frame's locals.
    Paused(InspectorPaused),
    /// Step over (F10): runs the paused statement and stops at the next one.
    StepOver(InspectorStep),
    /// Step into (F11): stops at the first statement of the function the paused statement calls.
    StepInto(InspectorStep),
    /// Step out (Shift+F11): runs the rest of the paused function and stops in its caller.
    StepOut(InspectorStep),
    /// A Watch expression: evaluated in the paused frame now, and again after every step.
    Watch(InspectorWatch),
    /// The Console while paused: `Debugger.evaluateOnCallFrame` in the paused frame, which sees
    /// its locals and its module's variables. Fails when the app is not paused.
    EvaluateInFrame(InspectorEvaluateInFrame),
    /// Resumes a pause, removes the breakpoints the runner set, and waits for what `pause_at`
    /// triggered to finish (its own expectations included).
    Resume(InspectorResume),
    /// Records a CPU profile while `during` runs and saves it on the host.
    Profile(Box<InspectorProfile>),
    /// Takes a heap snapshot (streamed) and saves it on the host.
    HeapSnapshot(InspectorHeapSnapshot),
    /// `Runtime.getHeapUsage`: `used` and `total` bytes.
    HeapUsage(InspectorHeapUsage),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorDiscover {
    /// Variables saved: `ws_url`, `devtools_url`, `target_id` → variable name.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorAttach {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorEvaluate {
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A place in the lab app's source, resolved from the source itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePlace {
    /// Relative to the app's folder (`src/lab/event-loop-jam.js`).
    pub file: String,
    pub function: String,
    /// The first line in the function containing this text; without it, the function's first
    /// statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_containing: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorPauseAt {
    pub at: SourcePlace,
    /// What makes the app run that line (started in the background).
    pub trigger: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorStep {
    /// How long the app may run before it pauses again (a step out runs the rest of the function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorEvaluateInFrame {
    pub expression: String,
    /// Selects first the frame below this function's in the Call Stack (its caller), as a click
    /// on that frame does; without it, the paused frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    /// How long to wait for the app to be paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorWatch {
    pub expression: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorPaused {
    /// The paused frame's function.
    pub function: String,
    /// With `line_containing`: the paused frame's file, relative to the app's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The pause is on the first line of `function` in `file` containing this text (resolved from
    /// the app's source, as `pause_at` resolves its breakpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_containing: Option<String>,
    /// The Call Stack starts with these functions, top first (the paused one included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_stack: Vec<String>,
    /// Variables saved from the Call Stack: `name: function` saves the name of the function that
    /// called `function` (the frame below it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save_caller: BTreeMap<String, String>,
    /// The frame's local variables → matchers.
    #[serde(default)]
    pub locals: BTreeMap<String, Matcher>,
    /// Variables saved from the frame's locals: `name: local`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    /// How long to wait for the app to be paused (a participant may still be setting it up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorResume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorProfile {
    pub during: Vec<Action>,
    /// File name under the session's artifact folder.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorHeapSnapshot {
    /// File name under the session's artifact folder.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorHeapUsage {
    /// `used` / `total` → matcher.
    #[serde(default)]
    pub expect: BTreeMap<String, Matcher>,
    /// Variables saved: `name: used|total`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

/// `tunnel:` — open or close the session's port-forward, or look through one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TunnelAction {
    /// Listens on `local` and forwards each connection to `remote` inside the container; from then
    /// on `{{ inspector_addr }}` is the tunnel.
    Open(TunnelOpen),
    /// Closes the session's tunnel: no listener, no forwarder left.
    Close,
    /// Nothing listens on `{{ tunnel_addr }}` any more (and the session holds no tunnel).
    Closed,
    /// Whether the inspector answers inside the container, looked at through a tunnel of its own.
    InspectorReachable(bool),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TunnelOpen {
    /// Where to listen on the host (loopback only).
    pub local: String,
    /// Where to connect, as seen from inside the container.
    #[serde(default = "default_tunnel_remote")]
    pub remote: String,
}

fn default_tunnel_remote() -> String {
    "127.0.0.1:9229".into()
}

/// `ask:` — a question with an answer derived from live state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskAction {
    pub question: String,
    /// A template giving the right answer from variables saved from live state.
    pub answer: String,
    /// For numbers: how far off an answer may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `http:` — one request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, Scalar>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// A raw body (sent as is, with `headers` deciding its content type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send the session's `x-lab-token`.
    #[serde(default)]
    pub token: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    #[serde(default)]
    pub expect: HttpExpect,
    /// Variables saved from the JSON response: `name: /json/pointer`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    /// Send the request to this service's published address (one of the lab's `services:`, with
    /// `publish: true`) instead of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// How long the request is expected to take (a capture): shown as a countdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lasts: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

impl HttpAction {
    /// Path and query as a person reads them: `/api/lab/event-loop-jam?ms=1500`.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}?{}", self.path, q.join("&"))
        }
    }
}

/// What an HTTP response must look like. With nothing said, any 2xx status passes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// JSON pointer → matcher.
    #[serde(default)]
    pub json: BTreeMap<String, Matcher>,
    /// Header name → matcher.
    #[serde(default)]
    pub headers: BTreeMap<String, Matcher>,
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// The response took at least this long (a request held up by a jammed event loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_latency: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Dur>,
}

/// `metrics:` — scrape the app's Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsAction {
    /// The app's `metrics` path (lab.yaml) unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Series selector (`name` or `name{label="value"}`) → matcher.
    #[serde(default)]
    pub expect: BTreeMap<String, Matcher>,
    /// Variables saved from the scrape: `name: selector`.
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `container:` — act on the app's container (or local process).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ContainerAction {
    /// Replace the app with one whose environment is changed; the change holds for later steps.
    Recreate(RecreateSpec),
    /// Restart the app with its current environment.
    Restart,
    /// Wait until the app answers its health path.
    WaitHealthy(WaitHealthy),
    /// Wait until the app's log (stdout and stderr, since it last started) contains the text (or a
    /// service's log, with `service:`).
    LogsContain(LogsContain),
    /// Send a signal (`SIGUSR1`) to the app's main process.
    Signal(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecreateSpec {
    /// Variables to set (templates).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables to remove.
    #[serde(default)]
    pub unset: Vec<String>,
    /// Go back to the environment as `lab.yaml` defines it before applying `env` and `unset`.
    #[serde(default)]
    pub reset: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitHealthy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsContain {
    /// Text a line of the log contains.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Or: a regular expression a line of the log matches (`listening on \d+`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Read this service's log (one of the lab's `services:`) instead of the app's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `artifact:` — copy a file out of the environment (the Docker archive API for containers).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactAction {
    /// Path inside the environment.
    pub copy: String,
    /// File name under the session's artifact folder on the host.
    pub to: String,
    /// Variable that receives the host path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

/// `analyze:` — read a captured file and judge it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AnalyzeAction {
    Cpuprofile(CpuprofileCheck),
    Heapsnapshot(HeapsnapshotCheck),
    /// Two snapshots of the same process compared (by node id).
    HeapDiff(HeapDiffCheck),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeapDiffCheck {
    /// Host path of the earlier snapshot.
    pub old: String,
    /// Host path of the later snapshot.
    pub new: String,
    /// Change in bytes held by ArrayBuffer backing stores (Buffer contents), new minus old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_store_delta: Option<Matcher>,
    /// Variables saved from the comparison: `largest_growth` (the constructor whose size grew
    /// most, as the comparison names it) → variable name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuprofileCheck {
    /// Host path of the `.cpuprofile`.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<u64>,
    /// A function (matched by script URL and line range) that must hold a share of sampled time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_share: Option<FunctionShare>,
    /// Variables saved from the profile: `hottest` (the function with the most self time, not
    /// counting `(idle)`, `(program)` and `(garbage collector)`) → variable name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionShare {
    /// Shown in messages; also matched when the line range is not given.
    pub function: String,
    /// The script URL must end with this.
    pub url_suffix: String,
    /// 1-based inclusive line range of the function in its file (inlining moves samples between
    /// frames, so the range is what counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<[u32; 2]>,
    /// Minimum share, 0..1.
    pub at_least: f64,
    /// What the share is of: `all` sampled time, or `busy` time (not counting `(idle)`,
    /// `(program)` and `(garbage collector)`; what a person reads off any recording).
    #[serde(default)]
    pub of: ShareOf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShareOf {
    #[default]
    All,
    Busy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeapsnapshotCheck {
    /// Host path of the `.heapsnapshot`.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_nodes: Option<u64>,
    /// Bytes held by ArrayBuffer backing stores (Buffer contents) in the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_store_bytes: Option<Matcher>,
    /// Variables saved from what keeps the snapshot's largest object alive (its shortest retainer
    /// path, as DevTools' Retainers pane lists first): `largest_holder` (the first variable or
    /// property on that path, e.g. `retained`), `largest_holder_retained_mib` (what that
    /// variable's value retains, in MiB with one decimal, as `lab-runner analyze --retainers`
    /// prints it) → variable name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `eventually:` — poll until the inner actions pass.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventuallyAction {
    pub timeout: Dur,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(rename = "do")]
    pub actions: Vec<Action>,
    /// What a participant whose work this check rejects should do (shown in the diagnosis instead
    /// of the step's first hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn default_interval() -> Dur {
    Dur::from_millis(250)
}

/// A YAML scalar used where a string is sent (query values): `ms: 1500` and `ms: "1500"` alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Text(s) => f.write_str(s),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Float(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// What a value must be. A plain value means "equal to"; a map of operators says more:
/// `{gte: 1.0}`, `{exists: true}`, `{contains: "ws://"}`, `{one_of: [200, 204]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Matcher {
    Ops(Box<MatchOps>),
    Equals(Value),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchOps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ne: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
}

pub const MATCH_OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "starts_with",
    "exists",
    "one_of",
];

impl JsonSchema for Matcher {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Matcher".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let ops = generator.subschema_for::<MatchOps>();
        schemars::json_schema!({
            "description": "What a value must be: a plain value means equal to it; a map gives operators ({gte: 1.0}, {exists: true}, {contains: \"ws://\"}, {one_of: [200, 204]}). Compare with a map by {eq: {...}}.",
            "anyOf": [ops, {"not": {"type": "object"}}]
        })
    }
}

impl JsonSchema for ShellAction {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ShellAction".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ShellForm::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    /// A map is always read as operators (so a misspelt operator is an error, not a silent literal);
    /// compare against a literal map with `{eq: {...}}`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value {
            Value::Object(map) => {
                if map.is_empty() {
                    return Err(serde::de::Error::custom(
                        "empty matcher: give a value, or operators such as {gte: 1}",
                    ));
                }
                if let Some(bad) = map.keys().find(|k| !MATCH_OPERATORS.contains(&k.as_str())) {
                    return Err(serde::de::Error::custom(format!(
                        "unknown matcher operator `{bad}`, expected one of {}; to compare with a map write {{eq: {{...}}}}",
                        MATCH_OPERATORS.join(", ")
                    )));
                }
                serde_json::from_value(Value::Object(map))
                    .map(|ops| Matcher::Ops(Box::new(ops)))
                    .map_err(serde::de::Error::custom)
            }
            other => Ok(Matcher::Equals(other)),
        }
    }
}
