//! The page's terminal panel (`start PART --web --shell`): what a participant types on the page runs
//! in the session's participant terminals (`actions::shell::Terminals`), the same ones "do it for
//! me" types into, so exports and `cd` carry over both ways. The main terminal runs one command at
//! a time, and only while the session offers its menu (not during a check or "do it for me"); a
//! command may instead start in a terminal of its own and keep running (a tunnel) until Ctrl-C.
//! Every command has a time limit. The guard in front of the route is the page's (`security.rs`).
//!
//! Whoever has the page's address has a shell on this machine as the user running `lab-runner`:
//! that is what `--shell` is for, and why it is off by default. With `--isolated-shell` (a
//! workshop seat) the participant's terminals are a container of their own instead
//! (`session::isolated_shell`); this panel does not change: it types into the same terminals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::state::{MAIN_TERMINAL, Shared};
use crate::actions::Context;
use crate::actions::shell::{LineSink, TypedEnd, open_terminal, run_typed};

/// How long a command in the main terminal may run.
pub const MAIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long a command left running in a terminal of its own may run (a tunnel for a whole part).
pub const OTHER_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// The largest request the panel takes (a pasted block of commands).
pub const MAX_BODY: usize = 16 * 1024;
/// How many terminals may run a command at once.
const MAX_RUNNING: usize = 8;
/// How long the session's end waits for the panel's commands to end after Ctrl-C.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(12);

/// What the page sends: `{"run": COMMANDS}` (in the main terminal), with `"terminal": "new"` to
/// start them in a terminal of their own; or `{"interrupt": TERMINAL}` (Ctrl-C).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellRequest {
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub terminal: Option<String>,
    #[serde(default)]
    pub interrupt: Option<String>,
}

/// Why the panel did not take a request.
#[derive(Debug)]
pub enum ShellRefusal {
    /// The request itself is wrong (400).
    Bad(String),
    /// Not now (409).
    Busy(String),
}

/// The panel's side of the session.
pub struct PageShell {
    shared: Arc<Mutex<Shared>>,
    /// The session's context, once its environment is up.
    ctx: OnceLock<Context>,
    /// Ctrl-C of each terminal's running command.
    interrupts: Mutex<HashMap<String, oneshot::Sender<()>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The number of the next terminal of its own (the main one is the first).
    next: Mutex<usize>,
}

impl PageShell {
    pub fn new(shared: Arc<Mutex<Shared>>) -> PageShell {
        shared.lock().expect("page state lock").enable_shell();
        PageShell {
            shared,
            ctx: OnceLock::new(),
            interrupts: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            next: Mutex::new(2),
        }
    }

    /// The session's environment is up: commands may run.
    pub fn ready(&self, ctx: &Context) {
        let _ = self.ctx.set(ctx.clone());
    }

    /// A participant opened the page: with `--isolated-shell`, their terminal container is made
    /// now, in the background, so it is there when they type (an error is said by the first
    /// command instead).
    pub fn warm(&self) {
        if let Some(ctx) = self.ctx.get().cloned() {
            tokio::spawn(async move {
                let _ = open_terminal(&ctx).await;
            });
        }
    }

    /// Takes a request of the page: starts its command, or sends Ctrl-C. Says what it did.
    pub fn take(self: &Arc<Self>, request: ShellRequest) -> Result<String, ShellRefusal> {
        match request {
            ShellRequest {
                run: Some(run),
                terminal,
                interrupt: None,
            } => self.run(run, terminal.as_deref()),
            ShellRequest {
                run: None,
                terminal: None,
                interrupt: Some(name),
            } => self.interrupt(&name),
            _ => Err(ShellRefusal::Bad(USAGE.to_string())),
        }
    }

    fn run(
        self: &Arc<Self>,
        commands: String,
        terminal: Option<&str>,
    ) -> Result<String, ShellRefusal> {
        if commands.trim().is_empty() {
            return Err(ShellRefusal::Bad(
                "there is no command to run: type one first".into(),
            ));
        }
        let new = match terminal {
            None | Some(MAIN_TERMINAL) => false,
            Some("new") => true,
            Some(other) => {
                return Err(ShellRefusal::Bad(format!(
                    "`{other}` is not where a command can start: use \"main\" (the default) or \"new\" \
                     (a terminal of its own); a command left running takes no input"
                )));
            }
        };
        let Some(ctx) = self.ctx.get().cloned() else {
            return Err(ShellRefusal::Busy(
                "the lab's environment is still starting: wait for the first step".into(),
            ));
        };
        let name = {
            let mut shared = self.shared.lock().expect("page state lock");
            if shared.page.status.ended.is_some() {
                return Err(ShellRefusal::Busy("the session has ended".into()));
            }
            if shared.terminals_running() >= MAX_RUNNING {
                return Err(ShellRefusal::Busy(format!(
                    "{MAX_RUNNING} terminals already run a command: end one with Ctrl-C first"
                )));
            }
            let name = if new {
                let mut next = self.next.lock().expect("terminal numbers lock");
                let name = next.to_string();
                *next += 1;
                name
            } else {
                if let Some(running) = shared.terminal_running(MAIN_TERMINAL) {
                    return Err(ShellRefusal::Busy(format!(
                        "a command still runs in the main terminal ({}): wait for it to end, or press Ctrl-C",
                        first_line(running)
                    )));
                }
                if !shared.page.status.waiting {
                    return Err(ShellRefusal::Busy(
                        "the session is busy (a check, \"do it for me\", or a question): wait until \
                         its menu is offered again"
                            .into(),
                    ));
                }
                MAIN_TERMINAL.to_string()
            };
            shared.terminal_started(&name, &commands);
            name
        };
        let (interrupt, interrupted) = oneshot::channel();
        self.interrupts
            .lock()
            .expect("interrupts lock")
            .insert(name.clone(), interrupt);
        let sink: LineSink = {
            let shared = self.shared.clone();
            let name = name.clone();
            Arc::new(move |line: &str| {
                shared
                    .lock()
                    .expect("page state lock")
                    .terminal_printed(&name, line)
            })
        };
        let timeout = if new { OTHER_TIMEOUT } else { MAIN_TIMEOUT };
        let this = self.clone();
        let task_name = name.clone();
        let task = tokio::spawn(async move {
            let ended = match open_terminal(&ctx).await {
                Ok(()) => {
                    run_typed(ctx.terminals(), &commands, !new, timeout, sink, interrupted).await
                }
                Err(e) => Err(e),
            };
            this.interrupts
                .lock()
                .expect("interrupts lock")
                .remove(&task_name);
            let (how, said) = match ended {
                Ok(TypedEnd::Exited(Some(0))) => ("exit status 0".to_string(), None),
                Ok(TypedEnd::Exited(Some(code))) => (
                    format!("exit status {code}"),
                    Some(format!("[exit status {code}]")),
                ),
                Ok(TypedEnd::Exited(None)) => (
                    "killed by a signal".to_string(),
                    Some("[killed by a signal]".to_string()),
                ),
                Ok(TypedEnd::Interrupted) => {
                    ("interrupted (Ctrl-C)".to_string(), Some("^C".to_string()))
                }
                Ok(TypedEnd::TimedOut) => {
                    let limit = format!("{} min", timeout.as_secs() / 60);
                    (
                        format!("stopped after {limit}"),
                        Some(format!(
                            "[stopped: still running after {limit}, the time limit of a command in this terminal]"
                        )),
                    )
                }
                Err(e) => (
                    "could not run".to_string(),
                    Some(format!("[could not run the command: {e:#}]")),
                ),
            };
            this.shared
                .lock()
                .expect("page state lock")
                .terminal_ended(&task_name, how, said);
        });
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(format!("running in the terminal `{name}`"))
    }

    fn interrupt(&self, name: &str) -> Result<String, ShellRefusal> {
        let Some(interrupt) = self
            .interrupts
            .lock()
            .expect("interrupts lock")
            .remove(name)
        else {
            return Err(ShellRefusal::Busy(format!(
                "nothing runs in the terminal `{name}`"
            )));
        };
        let _ = interrupt.send(());
        Ok(format!("Ctrl-C sent to the terminal `{name}`"))
    }

    /// The session is over: Ctrl-C in every terminal, and a moment for their commands to end.
    pub async fn close(&self) {
        for (_, interrupt) in self.interrupts.lock().expect("interrupts lock").drain() {
            let _ = interrupt.send(());
        }
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(CLOSE_TIMEOUT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// What the route takes, said when a request is not that.
pub const USAGE: &str = "send {\"run\": COMMANDS} as JSON (with \"terminal\": \"new\" to start them in \
a terminal of their own), or {\"interrupt\": TERMINAL} for Ctrl-C";

fn first_line(command: &str) -> &str {
    command.lines().next().unwrap_or_default()
}
