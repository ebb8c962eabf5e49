//! What actions run against: the environment, the variables, and where to narrate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use tokio::task::JoinHandle;

use crate::env::Environment;
use crate::lab::{Builtin, Renderer, Templated, Vars};
use crate::probe::http::HttpClient;
use crate::probe::inspector::Inspector;

/// Where actions say what they do: nowhere for `verify`, the terminal for `start` and `demo`.
pub trait Narrator: Send + Sync {
    /// A line about what is happening ("POST /api/lab/event-loop-jam → 200 in 1502 ms").
    fn say(&self, line: &str);
    /// The shell command a participant would type for the same thing.
    fn command(&self, _shell: &str) {}
    /// A line a command printed.
    fn output(&self, _line: &str) {}
    /// Something that will take about `expected` (a 30 s profile): a countdown while it runs, until
    /// the returned guard is dropped.
    fn activity(&self, _label: &str, _expected: std::time::Duration) -> Box<dyn Activity> {
        Box::new(())
    }
}

/// A running activity; dropping it ends what the narrator shows for it.
pub trait Activity: Send {}
impl Activity for () {}

/// Answers `ask` questions: a person at a terminal in interactive mode. Without one, questions are
/// answered from the same live state the right answer comes from (verify, demo).
pub trait Asker: Send + Sync {
    /// Asks `question` and returns what the person typed.
    fn ask(&self, question: &str) -> Result<String>;
}

/// Says nothing.
pub struct Silent;
impl Narrator for Silent {
    fn say(&self, _line: &str) {}
}

struct Shared {
    env: RwLock<Box<dyn Environment>>,
    vars: Mutex<Vars>,
    renderer: Renderer,
    http: HttpClient,
    artifacts_dir: PathBuf,
    base_env: BTreeMap<String, String>,
    /// The lab's app: how it is probed (health, token header, metrics, hints).
    app: crate::lab::AppSpec,
    narrator: Box<dyn Narrator>,
    hint: Mutex<Option<String>>,
    /// The lab app's source folder on the host (breakpoint lines are computed from it).
    app_dir: PathBuf,
    /// The session's own inspector client, kept across steps like an attached DevTools.
    inspector: tokio::sync::Mutex<Option<Inspector>>,
    /// Breakpoints the runner set on its client, removed on `resume`.
    breakpoints: Mutex<Vec<String>>,
    /// Watch expressions added while paused, evaluated again after each step; cleared on `resume`.
    watches: Mutex<Vec<String>>,
    /// Actions started in the background (what `pause_at` triggered), awaited by `resume`.
    background: Mutex<Vec<(String, JoinHandle<crate::outcome::Done>)>>,
    asker: Option<Box<dyn Asker>>,
    /// The session's port-forward (Part 3), kept across steps.
    tunnel: tokio::sync::Mutex<Option<crate::probe::tunnel::Tunnel>>,
    /// The participant's terminals, where `shell:` commands run.
    terminals: tokio::sync::Mutex<super::shell::Terminals>,
}

/// Shared by every action of a session. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    quiet: bool,
    /// Narrate actions but do not show their shell commands (checks: the participant does not type them).
    hide_commands: bool,
    /// Set while a check runs that is expected not to hold (verify's check before the solve): checks
    /// that wait for something to become true give up quickly.
    impatient: bool,
    /// The hint of the check being judged, when it has one of its own (it wins over the step's).
    own_hint: Option<Arc<str>>,
}

/// How long a waiting check waits while it is expected not to hold.
const IMPATIENT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl Context {
    /// `app_dir` is the lab app's source folder on the host.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        env: Box<dyn Environment>,
        vars: Vars,
        base_env: BTreeMap<String, String>,
        app: crate::lab::AppSpec,
        artifacts_dir: PathBuf,
        app_dir: PathBuf,
        narrator: Box<dyn Narrator>,
        asker: Option<Box<dyn Asker>>,
    ) -> Result<Context> {
        let ctx = Context {
            shared: Arc::new(Shared {
                env: RwLock::new(env),
                vars: Mutex::new(vars),
                renderer: Renderer::for_app(&app_dir),
                app_dir,
                inspector: tokio::sync::Mutex::new(None),
                breakpoints: Mutex::new(Vec::new()),
                watches: Mutex::new(Vec::new()),
                background: Mutex::new(Vec::new()),
                asker,
                tunnel: tokio::sync::Mutex::new(None),
                terminals: tokio::sync::Mutex::new(super::shell::Terminals::new(
                    &artifacts_dir,
                    &BTreeMap::new(),
                )),
                http: HttpClient::new()?,
                artifacts_dir,
                base_env,
                app,
                narrator,
                hint: Mutex::new(None),
            }),
            quiet: false,
            hide_commands: false,
            impatient: false,
            own_hint: None,
        };
        Ok(ctx)
    }

    /// The same context, narrating nothing (for retries).
    pub fn quieted(&self) -> Context {
        Context {
            quiet: true,
            ..self.clone()
        }
    }

    /// The same context, narrating without the shell commands (for checks).
    pub fn checking(&self) -> Context {
        Context {
            hide_commands: true,
            ..self.clone()
        }
    }

    /// The same context, quiet, for a check that is expected not to hold: waits are cut short.
    pub fn expecting_failure(&self) -> Context {
        Context {
            quiet: true,
            impatient: true,
            ..self.clone()
        }
    }

    /// How long a waiting check should wait, given what it asks for.
    pub fn patience(&self, wanted: std::time::Duration) -> std::time::Duration {
        if self.impatient {
            wanted.min(IMPATIENT_WAIT)
        } else {
            wanted
        }
    }

    pub fn env(&self) -> &RwLock<Box<dyn Environment>> {
        &self.shared.env
    }

    pub fn http(&self) -> &HttpClient {
        &self.shared.http
    }

    pub fn artifacts_dir(&self) -> &PathBuf {
        &self.shared.artifacts_dir
    }

    pub fn base_env(&self) -> &BTreeMap<String, String> {
        &self.shared.base_env
    }

    pub fn health_path(&self) -> &str {
        &self.shared.app.health
    }

    /// The lab's app as lab.yaml describes it.
    pub fn app(&self) -> &crate::lab::AppSpec {
        &self.shared.app
    }

    pub fn renderer(&self) -> &Renderer {
        &self.shared.renderer
    }

    pub fn vars(&self) -> Vars {
        self.shared.vars.lock().expect("vars lock").clone()
    }

    pub fn var(&self, name: &str) -> Option<Value> {
        self.shared
            .vars
            .lock()
            .expect("vars lock")
            .get(name)
            .cloned()
    }

    /// A variable the runner provides, as text; an error (never an empty string) when the session
    /// has not set it.
    pub fn builtin(&self, builtin: Builtin) -> Result<String> {
        let vars = self.shared.vars.lock().expect("vars lock");
        builtin.text(&vars).map(str::to_string).with_context(|| {
            format!(
                "this session has no `{}` yet (the environment has not said it)",
                builtin.name()
            )
        })
    }

    pub fn set_var(&self, name: &str, value: Value) {
        self.shared
            .vars
            .lock()
            .expect("vars lock")
            .insert(name.to_string(), value);
    }

    /// Renders every template inside `item` with the current variables.
    /// `item` with every template in it rendered with the session's variables.
    pub fn render<T: Templated>(&self, item: &T) -> Result<T> {
        item.render(&self.shared.renderer, &self.vars())
    }

    pub fn render_str(&self, template: &str) -> Result<String> {
        self.shared.renderer.render(template, &self.vars())
    }

    pub fn narrate(&self, line: &str) {
        if !self.quiet {
            self.shared.narrator.say(line);
        }
    }

    /// A countdown for an action expected to take `expected` (nothing when quiet).
    pub fn activity(&self, label: &str, expected: std::time::Duration) -> Box<dyn Activity> {
        if self.quiet {
            Box::new(())
        } else {
            self.shared.narrator.activity(label, expected)
        }
    }

    /// A line printed by a command the participant's terminal ran (shown unless quiet).
    pub fn output_line(&self, line: &str) {
        if !self.quiet {
            self.shared.narrator.output(line);
        }
    }

    /// The participant's terminals.
    pub fn terminals(&self) -> &tokio::sync::Mutex<super::shell::Terminals> {
        &self.shared.terminals
    }

    pub fn show_command(&self, shell: &str) {
        if !self.quiet && !self.hide_commands {
            self.shared.narrator.command(shell);
        }
    }

    /// The hint a failed judgement shows: the check's own `hint`, or else the step's first hint.
    pub fn step_hint(&self) -> Option<String> {
        self.own_hint
            .as_deref()
            .map(str::to_string)
            .or_else(|| self.shared.hint.lock().expect("hint lock").clone())
    }

    /// The hint of the check being judged, if it has one of its own.
    pub fn own_hint(&self) -> Option<String> {
        self.own_hint.as_deref().map(str::to_string)
    }

    /// The same context, judging a check whose own hint is `hint`.
    pub fn with_hint(&self, hint: String) -> Context {
        Context {
            own_hint: Some(hint.into()),
            ..self.clone()
        }
    }

    pub fn set_step_hint(&self, hint: Option<String>) {
        *self.shared.hint.lock().expect("hint lock") = hint;
    }

    /// Updates the variables that describe the environment (`base_url`, `container`, ...) after it
    /// started or changed.
    pub async fn refresh_env_vars(&self) {
        let env = self.shared.env.read().await;
        let endpoints = env.endpoints();
        let facts = env.facts();
        let mut vars = self.shared.vars.lock().expect("vars lock");
        let vars = &mut *vars;
        Builtin::BaseUrl.set(vars, json!(format!("http://{}", endpoints.app)));
        Builtin::AppPort.set(vars, json!(endpoints.app.port()));
        Builtin::Backend.set(vars, json!(facts.backend.to_string()));
        Builtin::Container.set(vars, json!(facts.name));
        Builtin::AppRoot.set(vars, json!(facts.app_root));
        Builtin::AppHostname.set(vars, json!(facts.hostname));
        Builtin::ArtifactDir.set(vars, json!(facts.artifact_dir));
        if let Some(inspector) = endpoints.inspector {
            Builtin::InspectorAddr.set(vars, json!(inspector.to_string()));
            Builtin::InspectorPort.set(vars, json!(inspector.port()));
        }
        if let Some(inside) = facts.inspector_inside {
            Builtin::InspectorInside.set(vars, json!(inside));
        }
        let services: serde_json::Map<String, serde_json::Value> = env
            .services()
            .into_iter()
            .filter_map(|s| {
                let addr = s.published?;
                Some((s.name, crate::lab::builtins::service_vars(addr.port())))
            })
            .collect();
        Builtin::Services.set(vars, serde_json::Value::Object(services));
    }

    /// The environment's memory limit (MiB), for diagnoses.
    pub fn memory_limit_mb(&self) -> u64 {
        self.var(Builtin::MemoryLimitMb.name())
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }

    pub fn app_dir(&self) -> &PathBuf {
        &self.shared.app_dir
    }

    pub fn asker(&self) -> Option<&dyn Asker> {
        self.shared.asker.as_deref()
    }

    /// The session's own inspector client (None when not attached).
    pub fn inspector_client(&self) -> &tokio::sync::Mutex<Option<Inspector>> {
        &self.shared.inspector
    }

    pub fn tunnel(&self) -> &tokio::sync::Mutex<Option<crate::probe::tunnel::Tunnel>> {
        &self.shared.tunnel
    }

    pub fn add_breakpoint(&self, id: String) {
        self.shared
            .breakpoints
            .lock()
            .expect("breakpoints lock")
            .push(id);
    }

    pub fn take_breakpoints(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.breakpoints.lock().expect("breakpoints lock"))
    }

    /// Adds a Watch expression (once).
    pub fn add_watch(&self, expression: &str) {
        let mut watches = self.shared.watches.lock().expect("watches lock");
        if !watches.iter().any(|w| w == expression) {
            watches.push(expression.to_string());
        }
    }

    pub fn watches(&self) -> Vec<String> {
        self.shared.watches.lock().expect("watches lock").clone()
    }

    pub fn clear_watches(&self) {
        self.shared.watches.lock().expect("watches lock").clear();
    }

    /// Keeps a background task (named for messages) until `take_background`.
    pub fn add_background(&self, name: String, task: JoinHandle<crate::outcome::Done>) {
        self.shared
            .background
            .lock()
            .expect("background lock")
            .push((name, task));
    }

    pub fn take_background(&self) -> Vec<(String, JoinHandle<crate::outcome::Done>)> {
        std::mem::take(&mut *self.shared.background.lock().expect("background lock"))
    }

    /// Tears the environment down (closing the inspector client first: a connected client keeps an
    /// exiting Node alive).
    pub async fn teardown(&self) -> Result<()> {
        if let Some(client) = self.shared.inspector.lock().await.take() {
            let _ = client.close().await;
        }
        if let Some(tunnel) = self.shared.tunnel.lock().await.take() {
            let _ = tunnel.close().await;
        }
        for (_, task) in self.take_background() {
            task.abort();
        }
        self.shared.terminals.lock().await.close_all().await;
        self.shared
            .env
            .write()
            .await
            .teardown()
            .await
            .context("Failed to tear the lab environment down")
    }
}
