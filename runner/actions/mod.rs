//! Performing a step's actions and judging its checks against the live system.
//!
//! Each kind of action lives in its own file; [`perform`] dispatches. A check that does not hold
//! returns a [`Failure`] (what was expected, what was seen, a hint) inside the `anyhow::Error`.

pub mod analyze;
pub mod artifact;
pub mod ask;
pub mod container;
pub mod context;
pub mod failure;
pub mod http;
pub mod inspector;
pub mod matcher;
pub mod metrics;
pub mod shell;
pub mod tunnel;

use std::time::Duration;

use anyhow::Result;
use futures_util::future::{BoxFuture, FutureExt, try_join_all};

pub use context::Context;
pub use failure::Failure;

use crate::lab::Action;

/// Performs one action (rendering its templates first) and judges its expectations.
pub fn perform<'a>(ctx: &'a Context, action: &'a Action) -> BoxFuture<'a, Result<()>> {
    async move {
        if let Some(hint) = own_hint(action) {
            let hinted = ctx.with_hint(ctx.render_str(hint)?);
            return perform_unhinted(&hinted, action).await;
        }
        perform_unhinted(ctx, action).await
    }
    .boxed()
}

/// The `hint:` an action carries for when it does not hold.
pub fn own_hint(action: &Action) -> Option<&String> {
    use crate::lab::{AnalyzeAction, ContainerAction, InspectorAction};
    match action {
        Action::Http(a) => a.hint.as_ref(),
        Action::Metrics(a) => a.hint.as_ref(),
        Action::Container(ContainerAction::LogsContain(a)) => a.hint.as_ref(),
        Action::Analyze(AnalyzeAction::Cpuprofile(a)) => a.hint.as_ref(),
        Action::Analyze(AnalyzeAction::Heapsnapshot(a)) => a.hint.as_ref(),
        Action::Analyze(AnalyzeAction::HeapDiff(a)) => a.hint.as_ref(),
        Action::Inspector(InspectorAction::Discover(a)) => a.hint.as_ref(),
        Action::Inspector(InspectorAction::Paused(a)) => a.hint.as_ref(),
        Action::Inspector(InspectorAction::Evaluate(a)) => a.hint.as_ref(),
        Action::Inspector(InspectorAction::EvaluateInFrame(a)) => a.hint.as_ref(),
        Action::Ask(a) => a.hint.as_ref(),
        Action::Eventually(a) => a.hint.as_ref(),
        _ => None,
    }
}

fn perform_unhinted<'a>(ctx: &'a Context, action: &'a Action) -> BoxFuture<'a, Result<()>> {
    async move {
        match action {
            Action::Http(a) => http::perform(ctx, &*ctx.render(a)?).await,
            Action::Metrics(a) => metrics::perform(ctx, &ctx.render(a)?).await,
            Action::Container(a) => container::perform(ctx, &ctx.render(a)?).await,
            Action::Artifact(a) => artifact::perform(ctx, &ctx.render(a)?).await,
            Action::Analyze(a) => analyze::perform(ctx, &ctx.render(a)?).await,
            Action::Wait(d) => {
                let d = ctx.render(d)?;
                ctx.narrate(&format!("wait {d}"));
                tokio::time::sleep(d.get()).await;
                Ok(())
            }
            Action::Parallel(actions) => {
                try_join_all(actions.iter().map(|a| perform(ctx, a))).await?;
                Ok(())
            }
            Action::Sequence(actions) => perform_all(ctx, actions).await,
            Action::Inspector(a) => inspector::perform(ctx, &ctx.render(a)?).await,
            Action::Ask(a) => ask::perform(ctx, &ctx.render(a)?).await,
            Action::Tunnel(a) => tunnel::perform(ctx, &ctx.render(a)?).await,
            Action::Shell(a) => shell::perform(ctx, &ctx.render(a)?).await,
            Action::Eventually(e) => {
                let (timeout, interval) = (ctx.render(&e.timeout)?, ctx.render(&e.interval)?);
                eventually(ctx, &e.actions, ctx.patience(timeout.get()), interval.get()).await
            }
        }
    }
    .boxed()
}

/// Performs actions one after another, stopping at the first failure.
pub async fn perform_all(ctx: &Context, actions: &[Action]) -> Result<()> {
    for action in actions {
        perform(ctx, action).await?;
    }
    Ok(())
}

/// Retries `actions` until they all pass or `timeout` passes; the last failure is the diagnosis.
async fn eventually(
    ctx: &Context,
    actions: &[Action],
    timeout: Duration,
    interval: Duration,
) -> Result<()> {
    let started = std::time::Instant::now();
    let quiet = ctx.quieted();
    loop {
        match perform_all(&quiet, actions).await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() + interval >= timeout => {
                return Err(e.context(format!(
                    "still not true after retrying for {:.1}s",
                    started.elapsed().as_secs_f64()
                )));
            }
            Err(_) => tokio::time::sleep(interval).await,
        }
    }
}
