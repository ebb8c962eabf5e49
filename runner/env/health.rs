//! Readiness: the app is ready when its health path answers 200 (an HTTP probe, not a log line —
//! log wording changes break waits).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{AppState, Environment};
use crate::probe::http::HttpClient;

/// Polls the app's health path until it answers 200, the environment stops running, or `timeout`
/// passes. A failure says why, with the end of the app's log.
///
/// Every few polls the environment is asked whether the app still runs (an app that has exited
/// will never answer). That question goes to the engine, which can be slow to answer while it
/// creates many networks and containers at once (a workshop's seats starting together): the probe
/// goes on meanwhile, so an app that is up is seen up at once.
pub async fn wait_healthy(
    env: &dyn Environment,
    health_path: &str,
    timeout: Duration,
) -> Result<Duration> {
    let client = HttpClient::new()?;
    let started = Instant::now();
    let url = format!("http://{}{}", env.endpoints().app, health_path);
    let mut last_error;
    let mut polls = 0u32;
    let mut state_check = None;
    loop {
        match client.get_status(&url, Duration::from_millis(500)).await {
            Ok(200) => return Ok(started.elapsed()),
            Ok(status) => last_error = format!("answered {status}"),
            Err(e) => last_error = format!("{e:#}"),
        }
        polls += 1;
        if state_check.is_none() && polls.is_multiple_of(5) {
            state_check = Some(Box::pin(env.state()));
        }
        if started.elapsed() >= timeout {
            bail!(
                "the app did not become healthy within {:.1}s: GET {url} {last_error}\n{}",
                timeout.as_secs_f64(),
                log_tail(env).await
            );
        }
        let pause = tokio::time::sleep(Duration::from_millis(if polls < 20 { 10 } else { 100 }));
        match state_check.as_mut() {
            Some(check) => {
                tokio::select! {
                    state = check => {
                        state_check = None;
                        let state = state?;
                        if state != AppState::Running {
                            bail!(
                                "the app is not running: it {state}\n{}",
                                log_tail(env).await
                            );
                        }
                    }
                    _ = pause => {}
                }
            }
            None => pause.await,
        }
    }
}

pub async fn log_tail(env: &dyn Environment) -> String {
    match env.logs().await {
        Ok(logs) if logs.trim().is_empty() => "the app's log is empty".to_string(),
        Ok(logs) => {
            let lines: Vec<&str> = logs.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            format!("last lines of the app's log:\n  | {}", tail.join("\n  | "))
        }
        Err(e) => format!("(the app's log could not be read: {e:#})"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::path::Path;

    use anyhow::bail;
    use async_trait::async_trait;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::env::{Endpoints, ExecOutput, Facts};

    /// An app that answers its health path 503 `unready` times, then 200, and an engine that takes
    /// `state_after` to say what the app's state is (`None`: it never answers).
    struct Slow {
        app: SocketAddr,
        state_after: Option<Duration>,
        state: AppState,
        env: BTreeMap<String, String>,
    }

    async fn app(unready: usize) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let status = if n < unready {
                    "503 Not Ready"
                } else {
                    "200 OK"
                };
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        addr
    }

    #[async_trait]
    impl Environment for Slow {
        fn facts(&self) -> Facts {
            unimplemented!("not asked by the health wait")
        }
        fn endpoints(&self) -> Endpoints {
            Endpoints {
                app: self.app,
                inspector: None,
            }
        }
        fn current_env(&self) -> &BTreeMap<String, String> {
            &self.env
        }
        async fn recreate(&mut self, _: BTreeMap<String, String>) -> Result<()> {
            bail!("not asked")
        }
        async fn restart(&mut self) -> Result<()> {
            bail!("not asked")
        }
        async fn signal(&self, _: &str) -> Result<()> {
            bail!("not asked")
        }
        async fn logs(&self) -> Result<String> {
            Ok("the app's log".into())
        }
        async fn copy_out(&self, _: &str, _: &Path) -> Result<u64> {
            bail!("not asked")
        }
        async fn state(&self) -> Result<AppState> {
            match self.state_after {
                Some(after) => {
                    tokio::time::sleep(after).await;
                    Ok(self.state.clone())
                }
                None => std::future::pending().await,
            }
        }
        async fn exec(&self, _: &[String], _: Duration) -> Result<ExecOutput> {
            bail!("not asked")
        }
        async fn teardown(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// The app comes up while the engine is too busy to say it runs (many seats starting): the
    /// wait ends when the app answers, not when the engine does.
    #[tokio::test]
    async fn an_app_that_answers_is_healthy_while_the_engine_is_busy() {
        let env = Slow {
            app: app(30).await,
            state_after: None,
            state: AppState::Running,
            env: BTreeMap::new(),
        };
        let waited = tokio::time::timeout(
            Duration::from_secs(20),
            wait_healthy(&env, "/api/health", Duration::from_secs(60)),
        )
        .await
        .expect("the wait hung on the engine's answer");
        waited.unwrap();
    }

    /// An app that has exited never answers: the engine's word ends the wait, with its log.
    #[tokio::test]
    async fn an_app_that_has_exited_ends_the_wait_with_its_log() {
        let env = Slow {
            app: app(usize::MAX).await,
            state_after: Some(Duration::from_millis(300)),
            state: AppState::Exited {
                code: Some(1),
                oom_killed: false,
            },
            env: BTreeMap::new(),
        };
        let e = wait_healthy(&env, "/api/health", Duration::from_secs(60))
            .await
            .unwrap_err();
        let said = format!("{e:#}");
        assert!(said.contains("the app is not running"), "{said}");
        assert!(said.contains("the app's log"), "{said}");
    }
}
