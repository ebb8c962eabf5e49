//! Helpers shared by the integration tests (`mod support;` in each test file that needs them).
//!
//! The Docker policy lives here and only here ([`docker_or_skip`]): a test that needs Docker
//! FAILS when Docker is unreachable and `CI` is set, and is skipped (saying why) when `CI` is
//! unset, so a laptop without Docker can still run `cargo test`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use bollard::Docker;
use lab_runner::env::docker::DockerEnv;
use lab_runner::env::docker::cleanup::{self, Scope};
use lab_runner::env::docker::connect;
use lab_runner::env::docker::image::ImageChoice;
use lab_runner::env::{EnvSpec, Environment, wait_healthy};
use lab_runner::lab::InspectorMode;
use lab_runner::util::random;

/// Whether the `CI` environment variable asks for strictness (set, and not empty, `0` or `false`).
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"),
        Err(_) => false,
    }
}

/// A connected Docker client, or `None` when Docker is unreachable and the test should be skipped.
/// Panics (failing the test) when Docker is unreachable and `CI` is set.
///
/// ```ignore
/// let Some(docker) = support::docker_or_skip("my_test").await else { return Ok(()) };
/// ```
pub async fn docker_or_skip(test: &str) -> Option<Docker> {
    match connect::connect().await {
        Ok(docker) => Some(docker),
        Err(e) if in_ci() => panic!(
            "{test}: this test needs Docker, and CI is set, so an unreachable Docker is a failure, \
             not a skip: {e:#}"
        ),
        Err(e) => {
            eprintln!("SKIPPED {test} (set CI=1 to make this a failure): {e:#}");
            None
        }
    }
}

/// A folder under tests/fixtures.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A [`DockerEnv`] that is always torn down: by [`EnvGuard::teardown`], or — when the test fails
/// or panics first — on drop, by removing everything labelled with its session.
pub struct EnvGuard {
    env: Option<DockerEnv>,
    session: String,
}

impl EnvGuard {
    /// Starts the app in `app_dir` (entry `src/server.js`, port 3001, health `/api/health`) with the
    /// offline host-node image, and waits until it is healthy.
    pub async fn start(
        app_dir: PathBuf,
        part: &str,
        inspector: InspectorMode,
        memory_mb: u64,
    ) -> Result<EnvGuard> {
        let session = random::session_id();
        let spec = EnvSpec {
            lab_id: "tests".into(),
            part_id: part.into(),
            session_id: session.clone(),
            app_dir,
            entry: "src/server.js".into(),
            app_port: 3001,
            health_path: "/api/health".into(),
            env: BTreeMap::new(),
            inspector,
            memory_mb,
            fixed_app_port: None,
        };
        let mut guard = EnvGuard { env: None, session };
        let env = DockerEnv::start(spec, &ImageChoice::HostNode, &|_| {})
            .await
            .context("starting the fixture container")?;
        guard.env = Some(env);
        wait_healthy(guard.env(), "/api/health", Duration::from_secs(30)).await?;
        Ok(guard)
    }

    pub fn env(&self) -> &DockerEnv {
        self.env
            .as_ref()
            .expect("the environment is up until teardown")
    }

    /// The Docker client and the container's name.
    pub fn docker(&self) -> (Docker, String) {
        let (docker, name) = self.env().docker().expect("a Docker environment");
        (docker.clone(), name.to_string())
    }

    pub async fn teardown(mut self) -> Result<()> {
        match self.env.take() {
            Some(mut env) => env.teardown().await,
            None => Ok(()),
        }
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        if self.env.take().is_none() {
            return;
        }
        // Drop may run inside the test's runtime (which cannot be blocked on): clean up from a
        // thread with its own.
        let session = self.session.clone();
        let cleanup = std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let docker = connect::connect().await?;
                cleanup::remove_labelled(
                    &docker,
                    &Scope {
                        session: Some(session),
                        images: false,
                    },
                )
                .await
                .map(|_| ())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cleaning up after a failed test: {e:#}"),
            Err(_) => eprintln!("cleaning up after a failed test: the cleanup thread panicked"),
        }
    }
}
