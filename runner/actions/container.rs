//! `container:` — recreate, restart, signal, read logs, wait until healthy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::Context;
use crate::env::health::{log_tail, wait_healthy};
use crate::lab::{ContainerAction, RecreateSpec};
use crate::outcome::{Done, Failure};

const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
const LOGS_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn perform(ctx: &Context, action: &ContainerAction) -> Done {
    match action {
        ContainerAction::Recreate(spec) => Ok(recreate(ctx, spec).await.map(|_| ())?),
        ContainerAction::Restart => {
            ctx.narrate("restart the app");
            {
                let mut env = ctx.env().write().await;
                ctx.show_command(&format!("docker restart {}", env.facts().name));
                env.restart().await?;
            }
            ctx.refresh_env_vars().await;
            Ok(healthy(ctx, HEALTHY_TIMEOUT).await.map(|_| ())?)
        }
        ContainerAction::WaitHealthy(w) => Ok(healthy(
            ctx,
            w.timeout
                .as_ref()
                .map(|d| d.get())
                .unwrap_or(HEALTHY_TIMEOUT),
        )
        .await
        .map(|_| ())?),
        ContainerAction::LogsContain(l) => {
            let wanted = match &l.regex {
                Some(pattern) => LogLine::Matching(
                    regex::Regex::new(pattern)
                        .with_context(|| format!("`{pattern}` is not a regular expression"))?,
                ),
                None => LogLine::Containing(l.text.clone()),
            };
            logs_contain(
                ctx,
                l.service.as_deref(),
                &wanted,
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

/// What a recreate did: the app's environment before and after, and how long it took to answer.
#[derive(Debug, Clone)]
pub struct Recreated {
    pub before: BTreeMap<String, String>,
    pub after: BTreeMap<String, String>,
    pub healthy_after: Duration,
}

/// Replaces the app with one whose environment is the current one (or, with `reset`, the original
/// one) with `spec`'s changes, and waits until it is healthy. `spec` is already rendered. Used by the
/// `container: {recreate: ...}` action and by `lab-runner redeploy`.
pub async fn recreate(ctx: &Context, spec: &RecreateSpec) -> Result<Recreated> {
    let (before, after) = {
        let mut env = ctx.env().write().await;
        let before = env.current_env().clone();
        let mut vars = if spec.reset {
            ctx.base_env().clone()
        } else {
            before.clone()
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
            .map(|(k, v)| shown(k, v))
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
        env.recreate(vars.clone()).await?;
        (before, vars)
    };
    ctx.refresh_env_vars().await;
    let healthy_after = healthy(ctx, HEALTHY_TIMEOUT).await?;
    Ok(Recreated {
        before,
        after,
        healthy_after,
    })
}

/// Whether a variable's value must not be printed (a token, a password).
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD"]
        .iter()
        .any(|s| upper.contains(s))
}

/// `NAME=value` as it may be printed: a secret's value is replaced by its length
/// (`LAB_TOKEN=(32 chars, hidden)`).
pub fn shown(name: &str, value: &str) -> String {
    if is_secret(name) {
        format!("{name}=({} chars, hidden)", value.chars().count())
    } else {
        format!("{name}={value}")
    }
}

async fn healthy(ctx: &Context, timeout: Duration) -> Result<Duration> {
    let env = ctx.env().read().await;
    let took = wait_healthy(env.as_ref(), ctx.health_path(), timeout).await?;
    ctx.narrate(&format!("the app is healthy ({} ms)", took.as_millis()));
    Ok(took)
}

/// A line the app's log must show.
enum LogLine {
    Containing(String),
    Matching(regex::Regex),
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogLine::Containing(text) => write!(f, "containing {text:?}"),
            LogLine::Matching(re) => write!(f, "matching /{re}/"),
        }
    }
}

impl LogLine {
    fn found_in(&self, logs: &str) -> bool {
        match self {
            LogLine::Containing(text) => logs.contains(text.as_str()),
            LogLine::Matching(re) => logs.lines().any(|line| re.is_match(line)),
        }
    }
}

/// Polls the app's log (or the lab service `service`'s) until a line of it is as `wanted` says.
async fn logs_contain(
    ctx: &Context,
    service: Option<&str>,
    wanted: &LogLine,
    timeout: Duration,
) -> Done {
    let started = Instant::now();
    let env = ctx.env().read().await;
    let whose = match service {
        None => "the app's log".to_string(),
        Some(name) => format!("the log of the service `{name}`"),
    };
    loop {
        let logs = match service {
            None => env.logs().await?,
            Some(name) => env.service_logs(name).await?,
        };
        if wanted.found_in(&logs) {
            ctx.narrate(&format!("{whose} shows a line {wanted}"));
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let tail = match service {
                None => log_tail(env.as_ref()).await,
                Some(_) => {
                    let lines: Vec<&str> = logs.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(15)..];
                    if tail.is_empty() {
                        format!("{whose} is empty")
                    } else {
                        format!("last lines of {whose}:\n  | {}", tail.join("\n  | "))
                    }
                }
            };
            return Err(Failure::new(
                whose.as_str(),
                format!("a line {wanted} (waited {:.1}s)", timeout.as_secs_f64()),
                tail,
            )
            .hint(ctx.step_hint())
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
