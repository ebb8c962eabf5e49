//! What actions run against: the environment, the variables, and where to narrate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::env::Environment;
use crate::lab::{Renderer, Vars};
use crate::probe::http::HttpClient;

/// Where actions say what they do: nowhere for `verify`, the terminal for `start` and `demo`.
pub trait Narrator: Send + Sync {
    /// A line about what is happening ("POST /api/lab/event-loop-jam → 200 in 1502 ms").
    fn say(&self, line: &str);
    /// The shell command a participant would type for the same thing.
    fn command(&self, _shell: &str) {}
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
    health_path: String,
    narrator: Box<dyn Narrator>,
    hint: Mutex<Option<String>>,
}

/// Shared by every action of a session. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
    quiet: bool,
}

impl Context {
    pub fn new(
        env: Box<dyn Environment>,
        vars: Vars,
        base_env: BTreeMap<String, String>,
        health_path: String,
        artifacts_dir: PathBuf,
        narrator: Box<dyn Narrator>,
    ) -> Result<Context> {
        let ctx = Context {
            shared: Arc::new(Shared {
                env: RwLock::new(env),
                vars: Mutex::new(vars),
                renderer: Renderer::new(),
                http: HttpClient::new()?,
                artifacts_dir,
                base_env,
                health_path,
                narrator,
                hint: Mutex::new(None),
            }),
            quiet: false,
        };
        Ok(ctx)
    }

    /// The same context, narrating nothing (for retries).
    pub fn quieted(&self) -> Context {
        Context {
            shared: self.shared.clone(),
            quiet: true,
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
        &self.shared.health_path
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

    pub fn set_var(&self, name: &str, value: Value) {
        self.shared
            .vars
            .lock()
            .expect("vars lock")
            .insert(name.to_string(), value);
    }

    /// Renders every template inside `item` with the current variables.
    pub fn render<T: Serialize + DeserializeOwned>(&self, item: &T) -> Result<T> {
        self.shared.renderer.render_item(item, &self.vars())
    }

    pub fn render_str(&self, template: &str) -> Result<String> {
        self.shared.renderer.render(template, &self.vars())
    }

    pub fn narrate(&self, line: &str) {
        if !self.quiet {
            self.shared.narrator.say(line);
        }
    }

    pub fn show_command(&self, shell: &str) {
        if !self.quiet {
            self.shared.narrator.command(shell);
        }
    }

    /// The hint of the step being judged (used when a check has none of its own).
    pub fn step_hint(&self) -> Option<String> {
        self.shared.hint.lock().expect("hint lock").clone()
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
        vars.insert(
            "base_url".into(),
            json!(format!("http://{}", endpoints.app)),
        );
        vars.insert("app_port".into(), json!(endpoints.app.port()));
        vars.insert("backend".into(), json!(facts.backend.to_string()));
        vars.insert("container".into(), json!(facts.name));
        vars.insert("app_root".into(), json!(facts.app_root));
        vars.insert("artifact_dir".into(), json!(facts.artifact_dir));
        if let Some(inspector) = endpoints.inspector {
            vars.insert("inspector_addr".into(), json!(inspector.to_string()));
            vars.insert("inspector_port".into(), json!(inspector.port()));
        }
        if let Some(inside) = facts.inspector_inside {
            vars.insert("inspector_inside".into(), json!(inside));
        }
    }

    /// Tears the environment down.
    pub async fn teardown(&self) -> Result<()> {
        self.shared
            .env
            .write()
            .await
            .teardown()
            .await
            .context("Failed to tear the lab environment down")
    }
}
