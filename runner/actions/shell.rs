//! `shell:` — the commands a participant types, run exactly as the step shows them, in `bash`.
//!
//! The runner keeps a model of the participant's terminals: the main one, whose exported variables
//! and working folder carry over from one block to the next (the part's intro exports `BASE` and
//! `LAB_TOKEN` there, as a person does), and named others for commands that keep running (a tunnel),
//! which a later block interrupts with Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::Context;
use crate::lab::ShellAction;
use crate::outcome::{Done, Failure, Problem};

/// How long commands may run unless the action says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a Ctrl-C'd command may take to end.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);
/// How many lines of output a failure shows.
const OUTPUT_TAIL: usize = 20;

/// The participant's terminals, as verify, demo and "do it for me" drive them.
pub struct Terminals {
    /// The main terminal's exported variables and working folder.
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    /// Commands left running in other terminals, by name.
    others: HashMap<String, Background>,
    /// Where the commands run when not on this machine: a terminal container of their own.
    isolation: Option<Isolation>,
}

/// The participant's terminals run in a container of their own (a workshop seat's
/// `--isolated-shell`, see `env::docker::terminal`): each command is a `docker exec` there, its
/// state folder in a folder the container shares with this machine. The container is made when
/// first needed ([`open_terminal`]): a seat nobody uses costs no second container.
pub struct Isolation {
    pub spec: crate::env::docker::terminal::TerminalSpec,
    /// The container's name, once it is made (made once: the name stays if it is made again).
    pub container: Arc<tokio::sync::OnceCell<String>>,
    /// A folder mounted at the same path inside, for the commands' state folders.
    pub state_root: PathBuf,
    /// What must live as long as the terminals (the session's Docker guard).
    pub keep: Box<dyn std::any::Any + Send + Sync>,
}

/// With a terminal container whose tunnel port is mirrored on the host: waits until the mirror
/// has caught up with what a command just opened or closed inside, so what looks at the host's
/// port next (a check) sees what the participant's terminal sees.
async fn mirror_settled(ctx: &Context) {
    let mirror = {
        let terminals = ctx.terminals().lock().await;
        terminals
            .isolation
            .as_ref()
            .filter(|i| i.spec.tunnel_port.is_some())
            .map(|i| i.spec.mirror.clone())
    };
    if let Some(mirror) = mirror {
        crate::env::docker::terminal::mirror_settled(&mirror).await;
    }
}

/// Makes the participant's terminal container when the terminals are isolated and it is not made
/// yet (every command's first step; also when a participant arrives at a seat's page, so it is
/// there by the time they type). Nothing to do otherwise.
pub async fn open_terminal(ctx: &Context) -> anyhow::Result<()> {
    let pending = {
        let terminals = ctx.terminals().lock().await;
        terminals
            .isolation
            .as_ref()
            .map(|i| (i.container.clone(), i.spec.clone()))
    };
    let Some((container, spec)) = pending else {
        return Ok(());
    };
    container
        .get_or_try_init(|| async { ctx.env().write().await.open_terminal(&spec).await })
        .await?;
    Ok(())
}

/// What runs each command inside the terminal container: the participant's exports read from the
/// state folder, the command in a process group of its own (`setsid`), and a watcher that passes
/// each signal name written on stdin to that group (Ctrl-C from the page), or kills it when stdin
/// closes (the runner stopped waiting). Jobs the command left behind end with it.
const IN_CONTAINER: &str = r#"while IFS= read -r -d '' kv; do export "$kv"; done < "$__LAB_STATE/env.in"
exec 3<&0
setsid bash --noprofile --norc -c "$1" </dev/null &
pid=$!
{ while read -r sig <&3; do kill -s "$sig" -- "-$pid" 2>/dev/null; done; kill -s KILL -- "-$pid" 2>/dev/null; } &
watcher=$!
wait "$pid"
status=$?
kill -s TERM -- "-$pid" 2>/dev/null
kill "$watcher" 2>/dev/null
exit "$status""#;

struct Background {
    child: Running,
    /// Where its shell writes its state on exit (kept as long as it runs).
    _state: tempfile::TempDir,
    command: String,
    output: Arc<Mutex<Vec<String>>>,
}

/// A command's process: bash here, or the `docker exec` that runs it in the terminal container,
/// with the pipe its signals go through there (kept apart from the child: tokio closes a child's
/// stdin when it is waited for, and a closed pipe makes the container's side kill the command).
struct Running {
    process: Child,
    signals: Option<tokio::process::ChildStdin>,
}

impl Running {
    fn new(mut process: Child) -> Running {
        let signals = process.stdin.take();
        Running { process, signals }
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.process
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.process
    }
}

impl Terminals {
    /// A fresh terminal in `cwd` with the runner's own environment, the folder of this `lab-runner`
    /// first on `PATH` (steps run `lab-runner pull`, `lab-runner tunnel`, ...), and `extra` exported.
    pub fn new(cwd: &Path, extra: &BTreeMap<String, String>) -> Terminals {
        let mut env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| !k.starts_with("__LAB_"))
            .collect();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            let path = env.get("PATH").cloned().unwrap_or_default();
            env.insert(
                "PATH".into(),
                if path.is_empty() {
                    dir.display().to_string()
                } else {
                    format!("{}:{path}", dir.display())
                },
            );
        }
        env.extend(extra.clone());
        Terminals {
            env,
            cwd: cwd.to_path_buf(),
            others: HashMap::new(),
            isolation: None,
        }
    }

    /// From now on, every command runs in the terminal container of `isolation`, with that
    /// container's `PATH` and `HOME` and its own Docker (the session's guard).
    pub fn isolate(&mut self, isolation: Isolation) {
        use crate::env::docker::terminal::{HOME_IN_TERMINAL, PATH_IN_TERMINAL};
        self.env.insert("PATH".into(), PATH_IN_TERMINAL.into());
        self.env.insert("HOME".into(), HOME_IN_TERMINAL.into());
        for name in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"] {
            self.env.remove(name);
        }
        self.isolation = Some(isolation);
    }

    /// What failed when a command's process could not start.
    fn cannot_run(&self) -> &'static str {
        match self.isolation {
            None => "Failed to run bash (is it installed?)",
            Some(_) => {
                "Failed to run `docker exec` in the participant's terminal container (is the docker command installed?)"
            }
        }
    }

    /// A fresh state folder for one command.
    fn state_folder(&self) -> anyhow::Result<tempfile::TempDir> {
        match &self.isolation {
            Some(isolation) => tempfile::Builder::new()
                .prefix(".terminal-")
                .tempdir_in(&isolation.state_root),
            None => tempfile::tempdir(),
        }
        .context("Failed to create a folder for the shell's state")
    }

    /// The command that runs `script` (bash's text) with `env` in `cwd`, keeping its state in
    /// `state`: bash here, or `docker exec` in the terminal container.
    fn shell(
        &self,
        script: String,
        env: &BTreeMap<String, String>,
        cwd: &Path,
        state: &Path,
    ) -> anyhow::Result<Command> {
        let mut cmd;
        match &self.isolation {
            None => {
                cmd = Command::new("bash");
                cmd.arg("--noprofile")
                    .arg("--norc")
                    .arg("-c")
                    .arg(script)
                    .env_clear()
                    .envs(env)
                    .env("__LAB_STATE", state)
                    .current_dir(cwd)
                    .stdin(Stdio::null());
            }
            Some(isolation) => {
                let container = isolation
                    .container
                    .get()
                    .context("the participant's terminal container is not made yet")?;
                let mut exported = Vec::new();
                for (k, v) in env {
                    exported.extend_from_slice(format!("{k}={v}\0").as_bytes());
                }
                std::fs::write(state.join("env.in"), exported).with_context(|| {
                    format!(
                        "Failed to write the terminal's exports in {}",
                        state.display()
                    )
                })?;
                cmd = Command::new("docker");
                cmd.arg("exec")
                    .arg("-i")
                    .arg("-w")
                    .arg(cwd)
                    .arg("-e")
                    .arg(format!("__LAB_STATE={}", state.display()))
                    .arg(container)
                    .args([
                        "bash",
                        "--noprofile",
                        "--norc",
                        "-c",
                        IN_CONTAINER,
                        "lab-terminal",
                    ])
                    .arg(script)
                    .stdin(Stdio::piped());
            }
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Starts the main terminal again from a clean environment, not the runner's own: `PATH` (this
    /// `lab-runner`'s folder first), `HOME`, `LANG` and `TERM=dumb` only, so nothing of the person
    /// running the runner reaches a participant who types into it (`start --web --shell`). What the
    /// runner exports later (the session's socket, the intro's exports) is added as usual.
    pub fn clean_environment(&mut self) {
        let mut env = BTreeMap::new();
        let runner_path =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let path = match std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            Some(dir) => format!("{}:{runner_path}", dir.display()),
            None => runner_path,
        };
        env.insert("PATH".to_string(), path);
        if let Ok(home) = std::env::var("HOME") {
            env.insert("HOME".to_string(), home);
        }
        env.insert(
            "LANG".to_string(),
            std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
        );
        env.insert("TERM".to_string(), "dumb".to_string());
        // How this lab-runner reaches Docker and its state: `lab-runner pull`, `tunnel` and `check`
        // typed in the terminal must reach the same engine and session as the runner.
        for name in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_CONFIG",
            "LAB_RUNNER_STATE_DIR",
            "LAB_RUNNER_LAB",
        ] {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.to_string(), value);
            }
        }
        self.env = env;
    }

    /// The exports and the working folder the main terminal's shell left in `dir` when it ended.
    fn take_state(&mut self, dir: &Path) {
        if let Ok(env) = std::fs::read(dir.join("env")) {
            self.env = parse_env(&env);
        }
        if let Ok(pwd) = std::fs::read_to_string(dir.join("pwd")) {
            let pwd = PathBuf::from(pwd.trim_end_matches('\n'));
            // A folder inside the terminal container need not be one here.
            if self.isolation.is_some() || pwd.is_dir() {
                self.cwd = pwd;
            }
        }
    }

    /// A variable exported in the main terminal.
    pub fn exported(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The main terminal's exported variables and its current folder (what a command run "on the
    /// participant's side" sees).
    pub fn main_env(&self) -> (BTreeMap<String, String>, PathBuf) {
        (self.env.clone(), self.cwd.clone())
    }

    /// Exports `name=value` in the main terminal (what the runner itself provides, such as the
    /// session's control socket).
    pub fn export(&mut self, name: &str, value: &str) {
        self.env.insert(name.to_string(), value.to_string());
    }

    /// Ends every command still running in another terminal.
    pub async fn close_all(&mut self) {
        for (_, mut bg) in self.others.drain() {
            signal_group(&mut bg.child, nix::sys::signal::Signal::SIGINT).await;
            if tokio::time::timeout(INTERRUPT_GRACE, bg.child.wait())
                .await
                .is_err()
            {
                signal_group(&mut bg.child, nix::sys::signal::Signal::SIGKILL).await;
                let _ = bg.child.wait().await;
            }
        }
    }
}

/// What a block printed and how it ended.
pub struct Ran {
    pub status: Option<i32>,
    pub output: Vec<String>,
}

pub async fn perform(ctx: &Context, action: &ShellAction) -> Done {
    let timeout = action
        .timeout
        .as_ref()
        .map(|d| d.get())
        .unwrap_or(DEFAULT_TIMEOUT);
    match (&action.terminal, action.interrupt) {
        (Some(name), true) => interrupt(ctx, name).await,
        (Some(name), false) => start_other(ctx, name, action, timeout).await,
        (None, _) => {
            ctx.show_command(&action.run);
            let ran = run_main(ctx, &action.run, timeout).await?;
            judge(ctx, &action.run, &ran)
        }
    }
}

/// A block's exit status counts: anything but 0 is a failed command showing what it printed.
fn judge(ctx: &Context, commands: &str, ran: &Ran) -> Done {
    if ran.status == Some(0) {
        return Ok(());
    }
    let tail: Vec<&str> = ran
        .output
        .iter()
        .rev()
        .take(OUTPUT_TAIL)
        .rev()
        .map(String::as_str)
        .collect();
    Err(Problem::Command(
        Failure::new(
            format!("the commands\n{}", indent(commands)),
            "exit status 0",
            format!(
                "{}{}",
                match ran.status {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".to_string(),
                },
                if tail.is_empty() {
                    " (no output)".to_string()
                } else {
                    format!("; its output ended with:\n{}", indent(&tail.join("\n")))
                }
            ),
        )
        .hint(ctx.step_hint()),
    ))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The script bash runs: the commands exactly as shown, after two lines that make a failing command
/// end the block (as a person would stop and look) and that keep what the block exported for the
/// next one.
fn script(commands: &str) -> String {
    format!(
        "set -eo pipefail\n\
         trap '__lab_status=$?; {{ env -0 > \"$__LAB_STATE/env\"; pwd > \"$__LAB_STATE/pwd\"; }} 2>/dev/null || true; exit $__lab_status' EXIT\n\
         {commands}\n"
    )
}

fn bash(terminals: &Terminals, commands: &str, state: &Path) -> anyhow::Result<Command> {
    terminals.shell(script(commands), &terminals.env, &terminals.cwd, state)
}

/// Runs `commands` in the main terminal and waits for them (at most `timeout`); what they export
/// and where they `cd` carry over to the next block. Commands still running at `timeout` are a
/// failed command.
pub async fn run_main(ctx: &Context, commands: &str, timeout: Duration) -> Done<Ran> {
    open_terminal(ctx).await?;
    let mut terminals = ctx.terminals().lock().await;
    let state = terminals.state_folder()?;
    let mut child = Running::new(
        bash(&terminals, commands, state.path())?
            .spawn()
            .with_context(|| terminals.cannot_run())?,
    );
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers = read_output(ctx, &mut child, &output);
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // Jobs a block left in the background end with it: nothing may outlive the step unseen.
    signal_group(&mut child, nix::sys::signal::Signal::SIGTERM).await;
    let status = match waited {
        Ok(status) => status.context("Failed to wait for bash")?.code(),
        Err(_) => {
            signal_group(&mut child, nix::sys::signal::Signal::SIGKILL).await;
            let _ = child.wait().await;
            drain(readers).await;
            let printed = output.lock().expect("output lock").clone();
            return Err(Problem::Command(Failure::new(
                format!("the commands\n{}", indent(commands)),
                format!("to finish within {:.0} s", timeout.as_secs_f64()),
                format!(
                    "still running (stopped now); its output so far:\n{}",
                    indent(&printed.join("\n"))
                ),
            )));
        }
    };
    drain(readers).await;
    terminals.take_state(state.path());
    let output = output.lock().expect("output lock").clone();
    Ok(Ran { status, output })
}

/// Waits a moment for the output readers after the process ended (a background job that escaped
/// the process group could hold the pipes open forever).
async fn drain(readers: Vec<tokio::task::JoinHandle<()>>) {
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    }
}

fn parse_env(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('=')?;
            let kept = !k.is_empty()
                && !k.starts_with("__LAB_")
                && !matches!(k, "_" | "SHLVL" | "PWD" | "OLDPWD");
            kept.then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Reads stdout and stderr line by line into `output`, narrating each line.
fn read_output(
    ctx: &Context,
    child: &mut Child,
    output: &Arc<Mutex<Vec<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(reader(ctx.clone(), out, output.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(reader(ctx.clone(), err, output.clone()));
    }
    readers
}

fn reader(
    ctx: Context,
    stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).split(b'\n');
        while let Ok(Some(line)) = lines.next_segment().await {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            ctx.output_line(&line);
            output.lock().expect("output lock").push(line);
        }
    })
}

/// Sends `signal` to the process group of `child` (bash and every job it started). In a terminal
/// container (stdin piped) the signal's name goes to the wrapper there, which sends it on; SIGKILL
/// also ends the `docker exec` here, whose closed stdin makes the wrapper kill what is left.
async fn signal_group(child: &mut Running, signal: nix::sys::signal::Signal) {
    use tokio::io::AsyncWriteExt as _;
    if let Some(stdin) = child.signals.as_mut() {
        let name = signal.as_str().trim_start_matches("SIG");
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            stdin.write_all(format!("{name}\n").as_bytes()),
        )
        .await;
        if signal != nix::sys::signal::Signal::SIGKILL {
            return;
        }
        child.signals = None;
    }
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Starts `action.run` in the terminal `name` and leaves it running; waits for `ready` in its output
/// when given.
async fn start_other(ctx: &Context, name: &str, action: &ShellAction, timeout: Duration) -> Done {
    ctx.narrate(&format!("in another terminal ({name}):"));
    ctx.show_command(&action.run);
    open_terminal(ctx).await?;
    let mut terminals = ctx.terminals().lock().await;
    if terminals.others.contains_key(name) {
        return Err(anyhow!(
            "the terminal `{name}` still runs a command: interrupt it first (`shell: {{interrupt: {name}}}`)"
        )
        .into());
    }
    let state = terminals.state_folder()?;
    let mut child = Running::new(
        bash(&terminals, &action.run, state.path())?
            .spawn()
            .with_context(|| terminals.cannot_run())?,
    );
    let output = Arc::new(Mutex::new(Vec::new()));
    let _readers = read_output(ctx, &mut child, &output);
    if let Some(ready) = &action.ready {
        let started = std::time::Instant::now();
        loop {
            if output
                .lock()
                .expect("output lock")
                .iter()
                .any(|l| l.contains(ready.as_str()))
            {
                break;
            }
            if let Some(status) = child.try_wait().context("Failed to look at bash")? {
                let ran = Ran {
                    status: status.code(),
                    output: output.lock().expect("output lock").clone(),
                };
                judge(ctx, &action.run, &ran)?;
                return Err(Problem::Command(Failure::new(
                    format!("the command in the terminal `{name}`"),
                    format!("to keep running and print `{ready}`"),
                    "it ended at once",
                )));
            }
            if started.elapsed() > timeout {
                signal_group(&mut child, nix::sys::signal::Signal::SIGKILL).await;
                let printed = output.lock().expect("output lock").join("\n");
                return Err(Problem::Command(
                    Failure::new(
                        format!("the command in the terminal `{name}`"),
                        format!(
                            "`{ready}` in its output within {:.0} s",
                            timeout.as_secs_f64()
                        ),
                        if printed.is_empty() {
                            "no output".to_string()
                        } else {
                            indent(&printed)
                        },
                    )
                    .hint(ctx.step_hint()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    terminals.others.insert(
        name.to_string(),
        Background {
            _state: state,
            child,
            command: action.run.clone(),
            output,
        },
    );
    drop(terminals);
    mirror_settled(ctx).await;
    Ok(())
}

/// Ctrl-C in the terminal `name`: its command must end, and end well (a tunnel closes cleanly).
async fn interrupt(ctx: &Context, name: &str) -> Done {
    let mut terminals = ctx.terminals().lock().await;
    let Some(mut bg) = terminals.others.remove(name) else {
        return Err(anyhow!(
            "nothing runs in the terminal `{name}`: no earlier step started a command there"
        )
        .into());
    };
    ctx.narrate(&format!("Ctrl-C in the terminal `{name}` ({})", bg.command));
    signal_group(&mut bg.child, nix::sys::signal::Signal::SIGINT).await;
    let status = match tokio::time::timeout(INTERRUPT_GRACE, bg.child.wait()).await {
        Ok(status) => status.context("Failed to wait for bash")?,
        Err(_) => {
            signal_group(&mut bg.child, nix::sys::signal::Signal::SIGKILL).await;
            let _ = bg.child.wait().await;
            return Err(Problem::Command(Failure::new(
                format!("`{}` after Ctrl-C", bg.command),
                format!("to end within {:.0} s", INTERRUPT_GRACE.as_secs_f64()),
                "it kept running (killed now)",
            )));
        }
    };
    let ran = Ran {
        // bash reports a command ended by SIGINT as 130: that is how Ctrl-C ends one.
        status: status.code().map(|c| if c == 130 { 0 } else { c }),
        output: bg.output.lock().expect("output lock").clone(),
    };
    drop(terminals);
    mirror_settled(ctx).await;
    judge(ctx, &bg.command, &ran)
}

/// Where the lines of a command the participant typed go (the page's terminal panel).
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How a command the participant typed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedEnd {
    /// It ended by itself, with this exit status (`None`: killed by a signal).
    Exited(Option<i32>),
    /// Ctrl-C ended it.
    Interrupted,
    /// It still ran at its time limit and was stopped.
    TimedOut,
}

/// The script bash runs for what a participant typed: their lines as a terminal runs them (a
/// failing line does not stop the next, no `set -e`), then what they exported and where they
/// `cd`'d kept for the next command.
fn typed_script(commands: &str) -> String {
    format!(
        "trap '__lab_status=$?; {{ env -0 > \"$__LAB_STATE/env\"; pwd > \"$__LAB_STATE/pwd\"; }} 2>/dev/null || true; exit $__lab_status' EXIT\n\
         {commands}\n"
    )
}

/// Runs `commands` as the participant typed them, in the main terminal (`keep` true: what they
/// export and where they `cd` carry over, as in "do it for me") or in a terminal of its own
/// started from the main terminal's environment and folder (`keep` false: a command left running,
/// such as a tunnel). Each line printed goes to `sink`; `interrupt` is Ctrl-C; at `timeout` the
/// command is stopped. The terminals are not held while it runs (a typed `lab-runner check` needs
/// the session), so the caller runs one main command at a time.
pub async fn run_typed(
    terminals: &tokio::sync::Mutex<Terminals>,
    commands: &str,
    keep: bool,
    timeout: Duration,
    sink: LineSink,
    interrupt: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<TypedEnd> {
    let (state, mut child) = {
        let terminals = terminals.lock().await;
        let (env, cwd) = terminals.main_env();
        let state = terminals.state_folder()?;
        let child = terminals
            .shell(typed_script(commands), &env, &cwd, state.path())?
            .spawn()
            .with_context(|| format!("{} in {}", terminals.cannot_run(), cwd.display()))?;
        (state, Running::new(child))
    };
    let mut readers = Vec::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let sink = sink.clone();
        readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stream).split(b'\n');
            while let Ok(Some(line)) = lines.next_segment().await {
                sink(String::from_utf8_lossy(&line).trim_end_matches('\r'));
            }
        }));
    }
    let end = tokio::select! {
        status = child.wait() => TypedEnd::Exited(status.context("Failed to wait for bash")?.code()),
        _ = tokio::time::sleep(timeout) => {
            signal_group(&mut child, nix::sys::signal::Signal::SIGKILL).await;
            let _ = child.wait().await;
            TypedEnd::TimedOut
        }
        Ok(()) = interrupt => {
            signal_group(&mut child, nix::sys::signal::Signal::SIGINT).await;
            if tokio::time::timeout(INTERRUPT_GRACE, child.wait()).await.is_err() {
                signal_group(&mut child, nix::sys::signal::Signal::SIGKILL).await;
                let _ = child.wait().await;
            }
            TypedEnd::Interrupted
        }
    };
    // Jobs the command left in the background end with it, as after a block of "do it for me".
    signal_group(&mut child, nix::sys::signal::Signal::SIGTERM).await;
    drain(readers).await;
    if keep && end != TypedEnd::TimedOut {
        terminals.lock().await.take_state(state.path());
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_variables_are_read_back_without_the_runners_own() {
        let env = parse_env(b"BASE=http://x\0__LAB_STATE=/tmp/a\0A=b=c\0");
        assert_eq!(env.get("BASE").map(String::as_str), Some("http://x"));
        assert_eq!(env.get("A").map(String::as_str), Some("b=c"));
        assert!(!env.contains_key("__LAB_STATE"));
    }
}
