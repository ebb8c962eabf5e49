//! `start --web --shell --isolated-shell` (what a workshop seat runs): once the part's intro has
//! set the participant's exports and folder, their terminals move into a container of their own
//! (`env::docker::terminal`), so everything typed for the participant and by them afterwards —
//! "do it for me", the page's terminal — runs there, with a Docker that reaches only this
//! session's containers (`env::docker::api_guard`). The container itself is made when first
//! needed (`actions::shell::open_terminal`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::actions::Context;
use crate::actions::shell::Isolation;
use crate::env::docker::api_guard::{ApiGuard, engine_socket};
use crate::env::docker::terminal::TerminalSpec;
use crate::lab::Builtin;

/// Starts the session's Docker guard and points the participant's terminals at their container
/// (made on first use). `control_socket` is the session's (for `lab-runner check`, `redeploy`, `pull`
/// typed inside); `artifacts_dir` is the participant's working folder.
pub async fn isolate(
    ctx: &Context,
    session_id: &str,
    control_socket: &Path,
    artifacts_dir: &Path,
) -> Result<()> {
    // Said at the start, not at the first command.
    if ctx.env().read().await.facts().backend != crate::env::Backend::Docker {
        anyhow::bail!(
            "a terminal of its own is a container: --isolated-shell needs the Docker backend (--backend docker)"
        );
    }
    let state = crate::session::progress::state_dir()?;
    let state_root = state.join("terminal");
    std::fs::create_dir_all(&state_root)
        .with_context(|| format!("Failed to create {}", state_root.display()))?;
    let guard_socket = control_socket.with_file_name(format!("{session_id}.docker.sock"));
    let guard = ApiGuard::start(&guard_socket, &engine_socket()?, session_id)
        .await
        .context("Failed to start the Docker guard of the participant's terminal")?;
    let exe = std::env::current_exe().context("Failed to find this lab-runner's own program")?;
    let tunnel_port = ctx
        .var(Builtin::TunnelPort.name())
        .and_then(|p| p.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let spec = TerminalSpec {
        shared: dedup(vec![
            artifacts_dir.to_path_buf(),
            state,
            control_socket.to_path_buf(),
        ]),
        guard_socket,
        exe,
        tunnel_port,
        mirror: crate::env::docker::terminal::mirror_state(),
        user: format!(
            "{}:{}",
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw()
        ),
    };
    ctx.terminals().lock().await.isolate(Isolation {
        spec,
        container: Default::default(),
        state_root,
        keep: Box::new(guard),
    });
    Ok(())
}

/// The folders to share, each once, without one inside another.
fn dedup(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !kept.iter().any(|k| path.starts_with(k)) {
            kept.push(path);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_inside_another_shared_one_is_not_shared_twice() {
        let paths = dedup(vec![
            PathBuf::from("/seat/work"),
            PathBuf::from("/seat"),
            PathBuf::from("/run/x.sock"),
        ]);
        assert_eq!(
            paths,
            vec![PathBuf::from("/run/x.sock"), PathBuf::from("/seat")]
        );
    }
}
