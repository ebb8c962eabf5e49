//! The process backend: the lab app as a local child (`node <entry>`, or the app's `command:`) on
//! free loopback ports. For machines
//! without Docker and for fast tests. Steps that need a container (exec, tunnels) say they need Docker.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::node::{find_node, prepend_node_option};
use super::{AppState, Backend, Endpoints, EnvSpec, Environment, Facts};
use crate::lab::{AppRun, InspectorMode};
use crate::util::ports;

/// Environment markers on the app process (see [`kill_orphans`]).
const SESSION_MARK: &str = "LAB_RUNNER_SESSION";
const RUNNER_PID_MARK: &str = "LAB_RUNNER_PID";

/// How long the app gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The lab app as a child process of the runner.
pub struct ProcessEnv {
    spec: EnvSpec,
    /// The program started (the host's `node`, or the command's program) and its arguments.
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    child: Option<Child>,
    /// The app's stdout and stderr go to this file (not to pipes, so an app kept running with
    /// `--keep` outlives the runner without writing into a closed pipe).
    log_path: PathBuf,
    endpoints: Endpoints,
    /// Where SIGUSR1 opens the inspector (on-signal mode), or where it listens (open mode).
    inspector_port: Option<u16>,
    /// Holds the app's artifact folder (`artifacts/`) and its log (`app.log`); removed on drop.
    _work_dir: tempfile::TempDir,
    artifact_dir: PathBuf,
}

impl ProcessEnv {
    /// Starts the app; `report` hears about a preferred port that was taken (and which is used instead).
    pub async fn start(spec: EnvSpec, report: &dyn Fn(&str)) -> Result<ProcessEnv> {
        let (program, args) = match &spec.run {
            AppRun::Node(entry) => (
                find_node()?,
                vec![spec.app_dir.join(entry).to_string_lossy().into_owned()],
            ),
            AppRun::Command(argv) => match argv.split_first() {
                Some((program, args)) => (PathBuf::from(program), args.to_vec()),
                None => bail!("the app's `command:` is empty"),
            },
        };
        let app_port = match spec.fixed_app_port {
            Some(p) => ports::require_free(p)?,
            None => ports::free_port().context("Failed to find a free port for the app")?,
        };
        let inspector_port = match spec.inspector {
            InspectorMode::None => None,
            InspectorMode::Open { host_port } => {
                match ports::preferred_or_free(host_port, report) {
                    Some(port) => Some(port),
                    None => Some(
                        ports::free_port()
                            .context("Failed to find a free port for the inspector")?,
                    ),
                }
            }
            InspectorMode::OnSignal => {
                Some(ports::free_port().context("Failed to find a free port for the inspector")?)
            }
        };
        let work_dir = tempfile::Builder::new()
            .prefix(&format!("lab-runner-{}-{}-", spec.session_id, spec.part_id))
            .tempdir()
            .context("Failed to create the app's artifact folder")?;
        let mut env = ProcessEnv {
            env: spec.env.clone(),
            program,
            args,
            child: None,
            log_path: work_dir.path().join("app.log"),
            artifact_dir: work_dir.path().join("artifacts"),
            endpoints: Endpoints {
                app: SocketAddr::from((Ipv4Addr::LOCALHOST, app_port)),
                inspector: match spec.inspector {
                    InspectorMode::Open { .. } => {
                        inspector_port.map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
                    }
                    _ => None,
                },
            },
            inspector_port,
            _work_dir: work_dir,
            spec,
        };
        env.spawn()?;
        if matches!(env.spec.inspector, InspectorMode::Open { .. }) {
            env.ensure_inspector_bound(report).await?;
        }
        Ok(env)
    }

    /// The port picked for the inspector was free when it was picked, but another program (another
    /// lab, say) may have taken it before node bound it: node then runs without an inspector. Watch
    /// the log for which it was, and start again on another free port if needed (saying so).
    async fn ensure_inspector_bound(&mut self, report: &dyn Fn(&str)) -> Result<()> {
        for _attempt in 0..3 {
            let started = std::time::Instant::now();
            loop {
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                if log.contains("Debugger listening on") {
                    return Ok(());
                }
                if log.contains("Starting inspector on") && log.contains("failed") {
                    break;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    bail!("node did not report its inspector within 10 s; its log:\n{log}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let taken = self.inspector_port.unwrap_or_default();
            let port =
                ports::free_port().context("Failed to find a free port for the inspector")?;
            report(&format!(
                "port {taken} on 127.0.0.1 was taken before node could bind it; using {port} for the inspector instead"
            ));
            self.inspector_port = Some(port);
            self.endpoints.inspector = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
            self.stop().await?;
            self.spawn()?;
        }
        bail!("could not find a free port for the inspector after three tries")
    }

    fn spawn(&mut self) -> Result<()> {
        let mut env = self.env.clone();
        env.insert("PORT".into(), self.endpoints.app.port().to_string());
        env.insert("HOST".into(), "127.0.0.1".into());
        env.entry("LAB_ARTIFACT_DIR".into())
            .or_insert_with(|| self.artifact_dir.to_string_lossy().into_owned());
        match (self.spec.inspector, self.inspector_port) {
            (InspectorMode::Open { .. }, Some(port)) => {
                prepend_node_option(&mut env, &format!("--inspect=127.0.0.1:{port}"))
            }
            // SIGUSR1 opens the inspector on this port (not 9229, which another program may hold).
            (InspectorMode::OnSignal, Some(port)) => {
                prepend_node_option(&mut env, &format!("--inspect-port=127.0.0.1:{port}"))
            }
            _ => {}
        }
        // A fresh log for each start: `logs` reads what the app wrote since it last started.
        let log = std::fs::File::create(&self.log_path).with_context(|| {
            format!("Failed to create the app's log {}", self.log_path.display())
        })?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.spec.app_dir)
            .env_clear()
            .envs(inherited_env())
            .envs(&env)
            // Marks the process as the lab app of this runner, so `cleanup` can find it if the
            // runner is killed before it can stop it.
            .env(SESSION_MARK, &self.spec.session_id)
            .env(RUNNER_PID_MARK, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone()
                    .context("Failed to share the app's log file")?,
            ))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = command.spawn().with_context(|| {
            format!(
                "Failed to start {} {} in {}",
                self.program.display(),
                self.args.join(" "),
                self.spec.app_dir.display()
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    fn pid(&self) -> Result<Pid> {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .ok_or_else(|| anyhow!("the app process is not running"))?;
        Ok(Pid::from_raw(pid as i32))
    }

    async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        child.kill().await.context("Failed to kill the app process")
    }
}

/// What the app inherits from the runner's environment: enough to run, nothing lab-specific
/// (a stray NODE_OPTIONS or LAB_TOKEN must not leak in).
fn inherited_env() -> Vec<(String, String)> {
    ["PATH", "HOME", "LANG", "TMPDIR", "TZ"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

fn parse_signal(name: &str) -> Result<Signal> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>()
        .map_err(|_| anyhow!("`{name}` is not a signal name (try SIGUSR1 or SIGTERM)"))
}

#[async_trait]
impl Environment for ProcessEnv {
    fn facts(&self) -> Facts {
        let pid = self.child.as_ref().and_then(|c| c.id()).unwrap_or(0);
        Facts {
            backend: Backend::Process,
            name: format!("pid {pid}"),
            app_root: self.spec.app_dir.to_string_lossy().into_owned(),
            artifact_dir: self
                .env
                .get("LAB_ARTIFACT_DIR")
                .cloned()
                .unwrap_or_else(|| self.artifact_dir.to_string_lossy().into_owned()),
            inspector_inside: self.inspector_port.map(|p| format!("127.0.0.1:{p}")),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            description: format!(
                "local process (pid {pid}) {} {}",
                self.program.display(),
                self.args.join(" ")
            ),
        }
    }

    fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    fn current_env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    async fn recreate(&mut self, env: BTreeMap<String, String>) -> Result<()> {
        self.stop().await?;
        self.env = env;
        self.spawn()
    }

    async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.spawn()
    }

    async fn signal(&self, signal: &str) -> Result<()> {
        let signal = parse_signal(signal)?;
        kill(self.pid()?, signal)
            .with_context(|| format!("Failed to send {signal} to the app process"))
    }

    async fn logs(&self) -> Result<String> {
        match tokio::fs::read(&self.log_path).await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).with_context(|| {
                format!("Failed to read the app's log {}", self.log_path.display())
            }),
        }
    }

    async fn copy_out(&self, path: &str, dest: &Path) -> Result<u64> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("Failed to create {}", parent.display()))?;
        }
        if !Path::new(path).is_file() {
            bail!(
                "there is no file {path} (the app's artifact folder is {})",
                self.artifact_dir.display()
            );
        }
        tokio::fs::copy(path, dest)
            .await
            .with_context(|| format!("Failed to copy {path} to {}", dest.display()))
    }

    async fn state(&self) -> Result<AppState> {
        // try_wait needs &mut; a signal 0 tells whether the pid is alive without reaping it.
        match self.child.as_ref().and_then(|c| c.id()) {
            Some(pid) if kill(Pid::from_raw(pid as i32), None).is_ok() => {
                // A zombie (exited, not yet reaped) still accepts signal 0: look at /proc.
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let fields: Vec<&str> = status
                    .rsplit(')')
                    .next()
                    .map(|s| s.split_whitespace().collect())
                    .unwrap_or_default();
                if fields.first() == Some(&"Z") {
                    Ok(AppState::Exited {
                        code: zombie_exit_code(&fields),
                        oom_killed: false,
                    })
                } else {
                    Ok(AppState::Running)
                }
            }
            Some(_) => Ok(AppState::Exited {
                code: None,
                oom_killed: false,
            }),
            None => Ok(AppState::Gone),
        }
    }

    async fn teardown(&mut self) -> Result<()> {
        self.stop().await
    }

    async fn exec(&self, argv: &[String], timeout: Duration) -> Result<super::ExecOutput> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| anyhow!("nothing to run: the command is empty"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.spec.app_dir)
            .env_clear()
            .envs(inherited_env())
            .envs(&self.env)
            .env("PORT", self.endpoints.app.port().to_string())
            .env("HOST", "127.0.0.1");
        super::exec::run_local(
            command,
            &format!("`{program}` in the app's folder"),
            timeout,
        )
        .await
    }
}

/// The exit code of a zombie from the fields of its `/proc/<pid>/stat` after the command name
/// (field 3, the state, first): field 52 is the wait status. A process a signal killed gets 128 + the
/// signal, as a shell or Docker would report it.
fn zombie_exit_code(fields: &[&str]) -> Option<i64> {
    let status: i64 = fields.get(52 - 3)?.parse().ok()?;
    Some(match status & 0x7f {
        0 => (status >> 8) & 0xff,
        signal => 128 + signal,
    })
}

/// Stops lab app processes whose runner is gone (killed with `kill -9`, say). Returns their pids.
pub fn kill_orphans() -> Vec<i32> {
    let mut killed = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return killed;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        let value = |name: &str| {
            vars.iter().find_map(|v| {
                v.strip_prefix(format!("{name}=").as_bytes())
                    .map(|rest| String::from_utf8_lossy(rest).into_owned())
            })
        };
        let (Some(_session), Some(runner)) = (value(SESSION_MARK), value(RUNNER_PID_MARK)) else {
            continue;
        };
        if !crate::util::runner_pid::is_live_runner(&runner)
            && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
        {
            killed.push(pid);
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields after `(node)` in a zombie's /proc/<pid>/stat, with `status` as field 52.
    fn zombie_fields(status: &str) -> Vec<String> {
        let mut fields = vec!["Z".to_string()];
        fields.extend((4..52).map(|_| "0".to_string()));
        fields.push(status.to_string());
        fields
    }

    #[test]
    fn a_zombie_tells_its_exit_code_or_the_signal_that_killed_it() {
        let code = |status: &str| {
            let fields = zombie_fields(status);
            zombie_exit_code(&fields.iter().map(String::as_str).collect::<Vec<_>>())
        };
        assert_eq!(code("9"), Some(137), "killed by SIGKILL");
        assert_eq!(code("256"), Some(1), "exit(1)");
        assert_eq!(code("0"), Some(0));
        assert_eq!(code("x"), None);
        assert_eq!(
            zombie_exit_code(&["Z", "1"]),
            None,
            "an old kernel without field 52"
        );
    }
}
