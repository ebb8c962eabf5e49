//! A command run to its end with a time limit: what it printed and how it ended. The Docker backend
//! runs one inside the app's container ([`super::Environment::exec`]); a local child (the process
//! backend's `exec`, a `command:` check on the participant's side) goes through [`run_local`].

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How much of each stream is kept (a check reads the start of an output, not gigabytes of it).
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit status; None when a signal ended it or it did not end in time.
    pub status: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// It was still running at the time limit (and was stopped, where that is possible).
    pub timed_out: bool,
    /// How long it ran.
    pub took: Duration,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Appends `bytes` to `into`, keeping at most [`OUTPUT_LIMIT`] bytes.
pub fn keep(into: &mut Vec<u8>, bytes: &[u8]) {
    let room = OUTPUT_LIMIT.saturating_sub(into.len());
    into.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Runs `command` (stdin empty, in a process group of its own) until it ends or `timeout` passes;
/// then its whole group is killed. `what` names it in errors.
pub async fn run_local(mut command: Command, what: &str, timeout: Duration) -> Result<ExecOutput> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("Failed to start {what}"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let out_task = read_all(stdout);
    let err_task = read_all(stderr);
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let group = child.id().and_then(|p| i32::try_from(p).ok());
    let (status, timed_out) = match waited {
        Ok(status) => (
            status
                .with_context(|| format!("Failed to wait for {what}"))?
                .code()
                .map(i64::from),
            false,
        ),
        Err(_) => (None, true),
    };
    // What it left running in the background ends with it.
    if let Some(pid) = group {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if timed_out {
        let _ = child.wait().await;
    }
    let took = started.elapsed();
    let collect = |task: tokio::task::JoinHandle<Vec<u8>>| async move {
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    Ok(ExecOutput {
        status,
        stdout: collect(out_task).await,
        stderr: collect(err_task).await,
        timed_out,
        took,
    })
}

/// Reads a stream to its end in a task, keeping at most [`OUTPUT_LIMIT`] bytes.
fn read_all(
    mut stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            keep(&mut kept, &buf[..n]);
        }
        kept
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_command_gives_its_output_status_and_time() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = run_local(cmd, "sh", Duration::from_secs(10)).await.unwrap();
        assert_eq!(out.status, Some(3));
        assert_eq!(out.stdout_text(), "out\n");
        assert_eq!(out.stderr_text(), "err\n");
        assert!(!out.timed_out);
    }

    #[tokio::test]
    async fn a_command_past_its_time_is_stopped_with_what_it_printed() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30"]);
        let out = run_local(cmd, "sh", Duration::from_millis(300))
            .await
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.status, None);
        assert_eq!(out.stdout_text(), "started\n");
        assert!(out.took < Duration::from_secs(5), "{:?}", out.took);
    }
}
