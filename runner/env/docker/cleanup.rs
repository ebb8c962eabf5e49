//! Finding and removing everything the runner created, by label — also what a killed runner left.

use anyhow::Result;

use super::client::{DockerClient, DockerError};
use super::labels;

/// What `cleanup` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub images: Vec<String>,
    /// Containers and networks left because the runner that made them is still running (a live
    /// `start`, `demo` or `verify`), with that runner's pid.
    pub left_live: Vec<(String, String)>,
}

/// Which objects to remove.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this session's objects (None: every session's).
    pub session: Option<String>,
    /// Also remove the lab images (not only dangling ones left by re-tagging).
    pub images: bool,
    /// Also remove what a still-running runner made (its session ends badly then).
    pub live_sessions: bool,
    /// Only what the runner with this pid made (a workshop's seat that had to be killed).
    pub runner_pid: Option<u32>,
}

/// The pid of a still-running runner that made an object with these labels, if any.
fn live_runner(labels: Option<&std::collections::HashMap<String, String>>) -> Option<String> {
    let pid = labels?.get(labels::RUNNER_PID)?;
    crate::util::runner_pid::is_live_runner(pid).then(|| pid.clone())
}

/// Labelled containers (running or not), then labelled networks, then labelled images that are
/// dangling (or all of them with `scope.images`).
pub async fn remove_labelled(docker: &DockerClient, scope: &Scope) -> Result<Removed> {
    let mut pairs = vec![(labels::MANAGED, "true")];
    if let Some(session) = &scope.session {
        pairs.push((labels::SESSION, session));
    }
    let pid = scope.runner_pid.map(|pid| pid.to_string());
    if let Some(pid) = &pid {
        pairs.push((labels::RUNNER_PID, pid));
    }
    let one_owner = scope.session.is_some() || scope.runner_pid.is_some();
    let filter = labels::filter(&pairs);
    let mut removed = Removed::default();

    for c in docker.list_containers(true, &filter).await? {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| id.clone())
            .trim_start_matches('/')
            .to_string();
        if !one_owner
            && !scope.live_sessions
            && let Some(pid) = live_runner(c.labels.as_ref())
        {
            removed.left_live.push((name, pid));
            continue;
        }
        docker.remove_container(&id).await?;
        removed.containers.push(name);
    }

    for n in docker.list_networks(&filter).await? {
        let Some(name) = n.name else { continue };
        if !one_owner
            && !scope.live_sessions
            && let Some(pid) = live_runner(n.labels.as_ref())
        {
            removed.left_live.push((name, pid));
            continue;
        }
        docker.remove_network(&name).await?;
        removed.networks.push(name);
    }

    if !one_owner {
        let mut image_filter = labels::filter(&[(labels::MANAGED, "true")]);
        if !scope.images {
            image_filter.insert("dangling".into(), vec!["true".into()]);
        }
        for image in docker.list_images(&image_filter).await? {
            let name = image
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.clone());
            match docker.remove_image(&image.id, &name).await {
                Ok(()) => removed.images.push(name),
                // Still used by a container of another tool, or already gone: leave it.
                Err(DockerError::NotFound { .. } | DockerError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(removed)
}
