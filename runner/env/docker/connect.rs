//! Connecting to the Docker Engine: the usual defaults (`DOCKER_HOST` honoured), a version
//! negotiation (Debian's engine speaks API 1.41), and a clear error within a second when there is no
//! daemon.

use std::time::Duration;

use anyhow::{Result, anyhow};
use bollard::Docker;

use super::client::{DockerClient, DockerError, call, root_cause};

/// How long the runner waits for the daemon to answer its first ping, unless
/// [`CONNECT_TIMEOUT_VAR`] says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Seconds to wait for the first answer instead of [`CONNECT_TIMEOUT`] (0.1 to 60): for an engine
/// that many runs ask at once, such as a workshop's seats starting together, which set it.
pub const CONNECT_TIMEOUT_VAR: &str = "LAB_RUNNER_DOCKER_CONNECT_TIMEOUT";

/// [`CONNECT_TIMEOUT`], or what [`CONNECT_TIMEOUT_VAR`] says when it is a number of seconds in
/// range (anything else is said on stderr and ignored).
fn connect_timeout() -> Duration {
    let Ok(text) = std::env::var(CONNECT_TIMEOUT_VAR) else {
        return CONNECT_TIMEOUT;
    };
    match text.trim().parse::<f64>() {
        Ok(seconds) if (0.1..=60.0).contains(&seconds) => Duration::from_secs_f64(seconds),
        _ => {
            eprintln!(
                "note: {CONNECT_TIMEOUT_VAR}={text:?} is not a number of seconds from 0.1 to 60; waiting {} s for Docker",
                CONNECT_TIMEOUT.as_secs()
            );
            CONNECT_TIMEOUT
        }
    }
}

/// Why Docker could not be used at all (the command line maps it to its own exit code).
#[derive(Debug)]
pub struct DockerUnavailable {
    pub host: String,
    pub reason: String,
}

impl std::fmt::Display for DockerUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Docker is not reachable at {}: {}.\n\
             Start the Docker daemon (or fix DOCKER_HOST), or run without Docker: --backend process \
             (steps that need a container will say so).",
            self.host, self.reason
        )
    }
}

impl std::error::Error for DockerUnavailable {}

/// The Docker host the runner will use, as a person would write it.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Connects, negotiates the API version and pings, all within [`CONNECT_TIMEOUT`] (or what
/// [`CONNECT_TIMEOUT_VAR`] says).
pub async fn connect() -> Result<DockerClient> {
    let host = docker_host();
    let unavailable = |reason: String| {
        anyhow!(DockerUnavailable {
            host: host.clone(),
            reason,
        })
    };
    let docker = Docker::connect_with_defaults().map_err(|e| unavailable(root_cause(&e)))?;
    let attempt = async {
        let docker = docker.negotiate_version().await?;
        docker.ping().await?;
        Ok::<_, bollard::errors::Error>(docker)
    };
    let limit = connect_timeout();
    match call("connect to Docker", limit, attempt).await {
        Ok(docker) => Ok(DockerClient::new(docker)),
        Err(DockerError::Timeout { .. }) => Err(unavailable(format!(
            "no answer within {:.0} ms",
            limit.as_secs_f64() * 1000.0
        ))),
        Err(e) => Err(unavailable(e.reason())),
    }
}
