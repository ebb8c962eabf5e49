//! `container:` — recreate, restart, signal, read logs, wait until healthy.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Context;
use super::failure::Failure;
use crate::env::health::{log_tail, wait_healthy};
use crate::lab::{ContainerAction, RecreateSpec};

const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
const LOGS_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn perform(ctx: &Context, action: &ContainerAction) -> Result<()> {
    match action {
        ContainerAction::Recreate(spec) => recreate(ctx, spec).await,
        ContainerAction::Restart => {
            ctx.narrate("restart the app");
            {
                let mut env = ctx.env().write().await;
                ctx.show_command(&format!("docker restart {}", env.facts().name));
                env.restart().await?;
            }
            ctx.refresh_env_vars().await;
            healthy(ctx, HEALTHY_TIMEOUT).await
        }
        ContainerAction::WaitHealthy(w) => {
            healthy(
                ctx,
                w.timeout
                    .as_ref()
                    .map(|d| d.get())
                    .unwrap_or(HEALTHY_TIMEOUT),
            )
            .await
        }
        ContainerAction::LogsContain(l) => {
            logs_contain(
                ctx,
                &l.text,
                ctx.patience(l.timeout.as_ref().map(|d| d.get()).unwrap_or(LOGS_TIMEOUT)),
            )
            .await
        }
        ContainerAction::Signal(signal) => {
            let env = ctx.env().read().await;
            let name = env.facts().name;
            ctx.show_command(&format!("docker kill --signal {signal} {name}"));
            env.signal(signal).await?;
            ctx.narrate(&format!("sent {signal} to {name}"));
            Ok(())
        }
    }
}

async fn recreate(ctx: &Context, spec: &RecreateSpec) -> Result<()> {
    {
        let mut env = ctx.env().write().await;
        let mut vars = if spec.reset {
            ctx.base_env().clone()
        } else {
            env.current_env().clone()
        };
        for name in &spec.unset {
            vars.remove(name);
        }
        for (k, v) in &spec.env {
            vars.insert(k.clone(), v.clone());
        }
        let changes: Vec<String> = spec
            .env
            .iter()
            .map(|(k, v)| {
                if k.contains("TOKEN") {
                    format!("{k}=…")
                } else {
                    format!("{k}={v}")
                }
            })
            .chain(spec.unset.iter().map(|k| format!("-{k}")))
            .collect();
        ctx.narrate(&format!(
            "recreate the app{} with {}",
            if spec.reset {
                " from its original environment"
            } else {
                ""
            },
            if changes.is_empty() {
                "no changes".into()
            } else {
                changes.join(" ")
            }
        ));
        env.recreate(vars).await?;
    }
    ctx.refresh_env_vars().await;
    healthy(ctx, HEALTHY_TIMEOUT).await
}

async fn healthy(ctx: &Context, timeout: Duration) -> Result<()> {
    let env = ctx.env().read().await;
    let took = wait_healthy(env.as_ref(), ctx.health_path(), timeout).await?;
    ctx.narrate(&format!("the app is healthy ({} ms)", took.as_millis()));
    Ok(())
}

/// Polls the app's log until it contains `text`.
async fn logs_contain(ctx: &Context, text: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let env = ctx.env().read().await;
    loop {
        let logs = env.logs().await?;
        if logs.contains(text) {
            ctx.narrate(&format!("the app's log shows {text:?}"));
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let tail = log_tail(env.as_ref()).await;
            bail!(
                Failure::new(
                    "the app's log",
                    format!(
                        "a line containing {text:?} (waited {:.1}s)",
                        timeout.as_secs_f64()
                    ),
                    tail
                )
                .hint(ctx.step_hint())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
