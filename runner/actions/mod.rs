//! Performing a step's actions and judging its checks against the live system.
//!
//! Each kind of action lives in its own file; [`perform`] dispatches. An action completes or
//! returns a [`Problem`] (see [`crate::outcome`]): a check that does not hold carries a [`Failure`]
//! (what was expected, what was seen, a hint); a command that failed and an error are other kinds.

pub mod analyze;
pub mod artifact;
pub mod ask;
pub mod command;
pub mod container;
pub mod context;
pub mod file;
pub mod http;
pub mod inspector;
pub mod matcher;
pub mod metrics;
pub mod port;
pub mod shell;
pub mod tunnel;

use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, try_join_all};

pub use crate::outcome::{Done, Failure, Problem};
pub use context::Context;

use crate::lab::Action;

/// Performs one action (rendering its templates first) and judges its expectations.
pub fn perform<'a>(ctx: &'a Context, action: &'a Action) -> BoxFuture<'a, Done> {
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
        Action::Command(a) => a.hint.as_ref(),
        Action::File(a) => a.hint.as_ref(),
        Action::Port(a) => a.hint.as_ref(),
        _ => None,
    }
}

fn perform_unhinted<'a>(ctx: &'a Context, action: &'a Action) -> BoxFuture<'a, Done> {
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
            Action::Command(a) => command::perform(ctx, &ctx.render(a)?).await,
            Action::File(a) => file::perform(ctx, &ctx.render(a)?).await,
            Action::Port(a) => port::perform(ctx, &ctx.render(a)?).await,
            Action::Eventually(e) => {
                let (timeout, interval) = (ctx.render(&e.timeout)?, ctx.render(&e.interval)?);
                eventually(ctx, &e.actions, ctx.patience(timeout.get()), interval.get()).await
            }
        }
    }
    .boxed()
}

/// Performs actions one after another, stopping at the first failure.
pub async fn perform_all(ctx: &Context, actions: &[Action]) -> Done {
    for action in actions {
        perform(ctx, action).await?;
    }
    Ok(())
}

/// Retries `actions` while what they judge is not yet true, until they all pass or `timeout`
/// passes; the last failure is the diagnosis. Only a judgement is retried ([`Problem::Check`], which
/// includes a probe that got no answer: an app that restarts or is jammed answers later); a command
/// that failed or an error ends the wait at once, since trying again would not change it.
async fn eventually(
    ctx: &Context,
    actions: &[Action],
    timeout: Duration,
    interval: Duration,
) -> Done {
    let quiet = ctx.quieted();
    retry_judgements(timeout, interval, || perform_all(&quiet, actions)).await
}

/// Calls `attempt` until it is done, it returns anything but a judgement, or `timeout` passes.
async fn retry_judgements<F, Fut>(timeout: Duration, interval: Duration, mut attempt: F) -> Done
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Done>,
{
    let started = std::time::Instant::now();
    loop {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(Problem::Check(_)) if started.elapsed() + interval < timeout => {
                tokio::time::sleep(interval).await;
            }
            Err(problem @ Problem::Check(_)) => {
                return Err(problem.context(format!(
                    "still not true after retrying for {:.1}s",
                    started.elapsed().as_secs_f64()
                )));
            }
            Err(problem) => return Err(problem),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(
        answers: Vec<fn() -> Problem>,
    ) -> (
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        impl FnMut() -> futures_util::future::Ready<Done>,
    ) {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = calls.clone();
        let attempt = move || {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            futures_util::future::ready(match answers.get(n) {
                Some(problem) => Err(problem()),
                None => Ok(()),
            })
        };
        (calls, attempt)
    }

    const LONG: Duration = Duration::from_secs(5);
    const TICK: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn a_judgement_is_retried_until_it_holds() {
        let not_yet = || Problem::Check(Failure::new("GET /x: status", "200", "503"));
        let (calls, attempt) = counted(vec![not_yet, not_yet]);
        assert!(retry_judgements(LONG, TICK, attempt).await.is_ok());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_command_or_an_error_is_not_retried() {
        let command = || Problem::Command(Failure::new("the commands", "exit status 0", "1"));
        let (calls, attempt) = counted(vec![command]);
        let err = retry_judgements(LONG, TICK, attempt).await.unwrap_err();
        assert!(matches!(err, Problem::Command(_)), "{err:?}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        let broken = || Problem::Error(anyhow::anyhow!("a template does not render"));
        let (calls, attempt) = counted(vec![broken]);
        let err = retry_judgements(LONG, TICK, attempt).await.unwrap_err();
        assert!(matches!(err, Problem::Error(_)), "{err:?}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_judgement_still_false_at_the_deadline_says_how_long_it_was_retried() {
        let not_yet = || Problem::Check(Failure::new("GET /x: status", "200", "503"));
        let (_, attempt) = counted(vec![not_yet; 1000]);
        let err = retry_judgements(Duration::from_millis(30), Duration::from_millis(5), attempt)
            .await
            .unwrap_err();
        let Problem::Check(failure) = err else {
            panic!("{err:?}")
        };
        assert!(
            failure.context()[0].starts_with("still not true after retrying for"),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn a_probe_that_gets_no_answer_is_a_judgement_and_retried() {
        // Nothing listens on this port until the third attempt: the app is still starting.
        let port = crate::util::ports::free_port().unwrap();
        let http = crate::probe::http::HttpClient::new().unwrap();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = std::sync::Arc::new(std::sync::Mutex::new(None));
        let attempt = || {
            let (http, calls, listener) = (http.clone(), calls.clone(), listener.clone());
            async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                    let server = tokio::net::TcpListener::bind(("127.0.0.1", port))
                        .await
                        .unwrap();
                    *listener.lock().unwrap() = Some(tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        while let Ok((mut socket, _)) = server.accept().await {
                            let mut request = Vec::new();
                            let mut buf = [0u8; 1024];
                            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                                match socket.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => request.extend_from_slice(&buf[..n]),
                                }
                            }
                            let _ = socket
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                                .await;
                        }
                    }));
                }
                let url = format!("http://127.0.0.1:{port}/");
                let request = crate::probe::http::Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    body: None,
                    timeout: Duration::from_secs(2),
                };
                http::send(&http, "GET /", &request).await.map(|_| ())
            }
        };
        let done = retry_judgements(LONG, Duration::from_millis(20), attempt).await;
        assert!(done.is_ok(), "{done:?}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        if let Some(server) = listener.lock().unwrap().take() {
            server.abort();
        }
    }
}
