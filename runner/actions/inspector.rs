//! `inspector:` — what DevTools does, done over the Chrome DevTools Protocol: discover the target,
//! attach, evaluate, pause at a line of the app's source, read locals, profile, snapshot the heap.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use serde_json::{Value, json};

use super::matcher::{judge, show_actual};
use super::{Context, perform_all};
use crate::lab::app_source;
use crate::lab::{
    Builtin, InspectorAction, InspectorEvaluate, InspectorEvaluateInFrame, InspectorHeapUsage,
    InspectorPauseAt, InspectorPaused, InspectorProfile, InspectorStep, InspectorWatch,
    SourcePlace,
};
use crate::outcome::{Done, Failure, Problem};
use crate::probe::inspector::{self, Inspector, Paused, Step, file_url};
use crate::util::duration::Dur;
use crate::util::units;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Captures of a big heap take longer than a call.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(120);

fn timeout_of(t: &Option<Dur>, default: Duration) -> Duration {
    t.as_ref().map(Dur::get).unwrap_or(default)
}

pub async fn perform(ctx: &Context, action: &InspectorAction) -> Done {
    match action {
        InspectorAction::Discover(d) => {
            let addr = inspector_addr(ctx)?;
            let timeout = timeout_of(&d.timeout, DEFAULT_TIMEOUT);
            ctx.show_command(&format!("curl -sS http://{addr}/json/list"));
            let version = inspector::version_with_timeout(addr, timeout)
                .await
                .map_err(|e| unreachable(ctx, addr, e))?;
            let targets = inspector::list_with_timeout(addr, timeout)
                .await
                .map_err(|e| unreachable(ctx, addr, e))?;
            let target = targets.first().ok_or_else(|| {
                Failure::new(
                    format!("http://{addr}/json/list"),
                    "one debuggable target",
                    "an empty list",
                )
            })?;
            let ws = target.web_socket_url_via(addr)?;
            let ws_no_scheme = ws.trim_start_matches("ws://").to_string();
            let devtools = crate::probe::inspector::devtools_url(&ws_no_scheme);
            ctx.narrate(&format!(
                "the inspector at {addr} answers: {} — {ws}",
                version.browser
            ));
            for (what, name) in &d.save {
                let value = match what.as_str() {
                    "ws_url" => ws.clone(),
                    "devtools_url" => devtools.clone(),
                    "target_id" => target.id.clone(),
                    "browser" => version.browser.clone(),
                    other => {
                        return Err(anyhow!(
                            "inspector discover can save ws_url, devtools_url, target_id or browser, not `{other}`"
                        )
                        .into());
                    }
                };
                ctx.set_var(name, json!(value));
            }
            Ok(())
        }
        InspectorAction::Attach(a) => {
            let client = attached(ctx, timeout_of(&a.timeout, DEFAULT_TIMEOUT)).await?;
            ctx.narrate(&format!(
                "attached to the inspector at {} ({})",
                client.addr(),
                client.ws_url()
            ));
            Ok(())
        }
        InspectorAction::Detach => {
            if let Some(client) = ctx.inspector_client().lock().await.take() {
                client
                    .close()
                    .await
                    .context("Failed to close the inspector connection")?;
                ctx.narrate("detached from the inspector");
            }
            Ok(())
        }
        InspectorAction::Evaluate(e) => evaluate(ctx, e).await,
        InspectorAction::PauseAt(p) => pause_at(ctx, p).await,
        InspectorAction::Paused(p) => paused(ctx, p).await,
        InspectorAction::StepOver(s) => step(ctx, Step::Over, s).await,
        InspectorAction::StepInto(s) => step(ctx, Step::Into, s).await,
        InspectorAction::StepOut(s) => step(ctx, Step::Out, s).await,
        InspectorAction::Watch(w) => watch(ctx, w).await,
        InspectorAction::EvaluateInFrame(e) => evaluate_in_frame(ctx, e).await,
        InspectorAction::Resume(r) => {
            resume(ctx, timeout_of(&r.timeout, Duration::from_secs(60))).await
        }
        InspectorAction::Profile(p) => profile(ctx, p).await,
        InspectorAction::HeapSnapshot(h) => {
            let dest = ctx.artifacts_dir().join(&h.to);
            let client = client(ctx, timeout_of(&h.timeout, CAPTURE_TIMEOUT)).await?;
            let started = Instant::now();
            let bytes = client.take_heap_snapshot(&dest).await.with_context(|| {
                format!("Failed to take a heap snapshot into {}", dest.display())
            })?;
            ctx.narrate(&format!(
                "heap snapshot: {} in {} ms → {}",
                units::bytes(bytes as f64),
                started.elapsed().as_millis(),
                dest.display()
            ));
            if let Some(name) = &h.save {
                ctx.set_var(name, json!(dest.to_string_lossy()));
            }
            Ok(())
        }
        InspectorAction::HeapUsage(h) => heap_usage(ctx, h).await,
    }
}

/// The inspector's address on the host: `{{ inspector_addr }}` (the published port in Part 1, the
/// tunnel in Part 3).
fn inspector_addr(ctx: &Context) -> Result<SocketAddr> {
    let text = ctx.builtin(Builtin::InspectorAddr).map_err(|_| {
        anyhow!("this environment has no inspector reachable from the host (no `inspector_addr`)")
    })?;
    text.parse()
        .map_err(|_| anyhow!("inspector_addr `{text}` is not host:port"))
}

/// An inspector that does not answer is a judgement of the live system (it is not open, or not
/// yet), as an HTTP probe that gets no answer.
fn unreachable(ctx: &Context, addr: SocketAddr, e: anyhow::Error) -> Problem {
    Failure::new(
        format!("the inspector at {addr}"),
        "an answer to /json/version and /json/list",
        format!("{e:#}"),
    )
    .hint(ctx.own_hint().or(Some(
        "the inspector listens only when node runs with --inspect, or after SIGUSR1; it is published on 127.0.0.1 only".into(),
    )))
    .into()
}

/// The session's own client, connected on first use.
async fn attached(ctx: &Context, timeout: Duration) -> Done<Inspector> {
    let mut slot = ctx.inspector_client().lock().await;
    if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
        return Ok(client.with_timeout(timeout));
    }
    let addr = inspector_addr(ctx)?;
    let client = Inspector::attach_with_timeout(addr, timeout)
        .await
        .map_err(|e| unreachable(ctx, addr, e))?;
    *slot = Some(client.clone());
    Ok(client)
}

/// The session's client when attached, else a connection of its own for this action.
async fn client(ctx: &Context, timeout: Duration) -> Done<Inspector> {
    if let Some(client) = ctx
        .inspector_client()
        .lock()
        .await
        .as_ref()
        .filter(|c| !c.is_closed())
    {
        return Ok(client.with_timeout(timeout));
    }
    let addr = inspector_addr(ctx)?;
    Inspector::attach_with_timeout(addr, timeout)
        .await
        .map_err(|e| unreachable(ctx, addr, e))
}

async fn evaluate(ctx: &Context, e: &InspectorEvaluate) -> Done {
    let client = client(ctx, timeout_of(&e.timeout, DEFAULT_TIMEOUT)).await?;
    // While the app is paused (by the runner or by DevTools) Runtime.evaluate waits for the resume:
    // evaluate on the paused frame instead, as DevTools' console does. Enabling the debugger makes a
    // pause that is already there known to this connection.
    client.enable_debugger().await?;
    let paused = match client.is_paused() {
        true => client.wait_paused(Duration::from_millis(500)).await.ok(),
        // The paused event may trail the reply to Debugger.enable: give it a moment.
        false => client.wait_paused(Duration::from_millis(50)).await.ok(),
    };
    let value = if let Some(pause) = paused {
        client
            .evaluate_on_frame(&pause.call_frame_id, &e.expression)
            .await?
    } else {
        client.evaluate(&e.expression).await?
    };
    ctx.narrate(&format!("evaluate {} → {value}", e.expression));
    if let Some(matcher) = &e.expect
        && let Err(expected) = judge(matcher, Some(&value))
    {
        return Err(Failure::new(
            format!("evaluate `{}`", e.expression),
            expected,
            show_actual(Some(&value)),
        )
        .hint(ctx.step_hint())
        .into());
    }
    if let Some(name) = &e.save {
        ctx.set_var(name, value);
    }
    Ok(())
}

/// The pause the app is in, as `client` sees it: a client that has just enabled its debugger
/// learns of a pause from an event that may trail the reply. A Failure when the app runs.
async fn current_pause(
    ctx: &Context,
    client: &Inspector,
    wait: Duration,
    needed_for: &str,
) -> Done<Paused> {
    client.enable_debugger().await?;
    client.wait_paused(wait).await.map_err(|_| {
        Failure::new(
            "the app's state",
            format!("paused ({needed_for} works only while the app is paused)"),
            format!("running (no pause within {:.1} s)", wait.as_secs_f64()),
        )
        .hint(ctx.step_hint())
        .into()
    })
}

/// A place in the app's source as a person reads it: `src/lab/x.js:26`.
fn place(ctx: &Context, pause_url: &str, line: u32) -> String {
    let file = app_relative(ctx, pause_url).unwrap_or_else(|| pause_url.to_string());
    format!("{file}:{line}")
}

/// The path inside the app's folder of a script URL of the app (`file://{app_root}/src/x.js`).
fn app_relative(ctx: &Context, url: &str) -> Option<String> {
    let root = ctx.builtin(Builtin::AppRoot).ok()?;
    let prefix = file_url(&format!("{}/", root.trim_end_matches('/'))).ok()?;
    url.strip_prefix(&prefix).map(str::to_string)
}

/// Step over / into / out, as the buttons in DevTools do, on the session's client (DevTools stays
/// attached); then the Watch expressions are evaluated again in the new pause.
async fn step(ctx: &Context, how: Step, s: &InspectorStep) -> Done {
    let timeout = timeout_of(&s.timeout, Duration::from_secs(30));
    let client = attached(ctx, DEFAULT_TIMEOUT).await?;
    let from = current_pause(ctx, &client, Duration::from_secs(2), how.button()).await?;
    let pause = client.step(how, timeout).await.map_err(|e| {
        Failure::new(
            format!("{} from {}", how.button(), place(ctx, &from.url, from.line)),
            "the app to pause again at the next statement",
            format!("{e:#}"),
        )
        .hint(ctx.step_hint())
    })?;
    ctx.narrate(&format!(
        "{} → paused in {} at {}",
        how.button(),
        display_name(&pause.function_name),
        place(ctx, &pause.url, pause.line)
    ));
    for expression in ctx.watches() {
        let value = client
            .evaluate_on_frame(&pause.call_frame_id, &expression)
            .await
            .map_or_else(|_| "<not available>".to_string(), |v| v.to_string());
        ctx.narrate(&format!("Watch: {expression} = {value}"));
    }
    Ok(())
}

/// The Call Stack as DevTools lists it, top first: `blockEventLoop ← eventLoopJam ← ...`.
fn call_stack_text(pause: &Paused) -> String {
    pause
        .frames
        .iter()
        .map(|f| display_name(&f.function_name))
        .collect::<Vec<_>>()
        .join(" ← ")
}

/// How DevTools names a frame in the Call Stack.
fn display_name(function: &str) -> &str {
    if function.is_empty() {
        "(anonymous)"
    } else {
        function
    }
}

/// Adds a Watch expression and shows its value in the current pause (DevTools shows
/// `<not available>` while running, or when the expression throws).
async fn watch(ctx: &Context, w: &InspectorWatch) -> Done {
    ctx.add_watch(&w.expression);
    let client = attached(ctx, DEFAULT_TIMEOUT).await?;
    client.enable_debugger().await?;
    let value = match client.wait_paused(Duration::from_millis(500)).await {
        Ok(pause) => client
            .evaluate_on_frame(&pause.call_frame_id, &w.expression)
            .await
            .map_or_else(|_| "<not available>".to_string(), |v| v.to_string()),
        Err(_) => "<not available> (not paused)".to_string(),
    };
    ctx.narrate(&format!("Watch: {} = {value}", w.expression));
    Ok(())
}

/// The Console while paused: the expression is evaluated in the paused frame.
async fn evaluate_in_frame(ctx: &Context, e: &InspectorEvaluateInFrame) -> Done {
    let wait = ctx.patience(timeout_of(&e.timeout, Duration::from_secs(2)));
    let session = ctx
        .inspector_client()
        .lock()
        .await
        .as_ref()
        .filter(|c| !c.is_closed())
        .cloned();
    // Without the session's client (a participant pausing in their own DevTools), a connection of
    // its own: it sees the pause, and closing it does not resume the app.
    let own = match session {
        Some(_) => None,
        None => {
            let addr = inspector_addr(ctx)?;
            Some(
                Inspector::attach_with_timeout(addr, DEFAULT_TIMEOUT)
                    .await
                    .map_err(|err| unreachable(ctx, addr, err))?,
            )
        }
    };
    let client = session
        .as_ref()
        .or(own.as_ref())
        .expect("a session client or one of its own");
    let result = async {
        let pause = current_pause(ctx, client, wait, "the Console in the paused frame").await?;
        let frame = match &e.caller_of {
            None => pause.frames.first(),
            Some(callee) => pause
                .frames
                .iter()
                .position(|f| f.function_name == *callee)
                .and_then(|i| pause.frames.get(i + 1)),
        }
        .ok_or_else(|| {
            Failure::new(
                "the Call Stack",
                match &e.caller_of {
                    Some(callee) => format!("{callee} with a frame below it"),
                    None => "a paused frame".to_string(),
                },
                call_stack_text(&pause),
            )
            .hint(ctx.step_hint())
        })?;
        let what = format!(
            "`{}` in the Console, in the frame of {} at {}",
            e.expression,
            display_name(&frame.function_name),
            place(ctx, &frame.url, frame.line)
        );
        let value = client
            .evaluate_on_frame(&frame.call_frame_id, &e.expression)
            .await
            .map_err(|err| {
                Failure::new(what.clone(), "a value", format!("{err:#}")).hint(ctx.step_hint())
            })?;
        ctx.narrate(&format!("{what} → {value}"));
        if let Some(matcher) = &e.expect
            && let Err(expected) = judge(matcher, Some(&value))
        {
            return Err(Failure::new(what, expected, show_actual(Some(&value)))
                .hint(ctx.step_hint())
                .into());
        }
        if let Some(name) = &e.save {
            ctx.set_var(name, value);
        }
        Ok::<_, Problem>(())
    }
    .await;
    if let Some(own) = own {
        let _ = own.close().await;
    }
    result
}

/// The 1-based line of `place` in the host's copy of the app, and its `file://` URL as the app sees it.
pub fn resolve(ctx: &Context, place: &SourcePlace) -> Result<(String, u32)> {
    let line = match &place.line_containing {
        Some(needle) => {
            app_source::locate_line(ctx.app_dir(), &place.file, &place.function, needle)?
        }
        None => {
            app_source::locate_function(ctx.app_dir(), &place.file, &place.function)?
                .first_statement
        }
    };
    let root = ctx.builtin(Builtin::AppRoot)?;
    let url = file_url(&format!("{}/{}", root.trim_end_matches('/'), place.file))?;
    Ok((url, line as u32))
}

async fn pause_at(ctx: &Context, p: &InspectorPauseAt) -> Done {
    let timeout = timeout_of(&p.timeout, DEFAULT_TIMEOUT);
    let client = attached(ctx, DEFAULT_TIMEOUT).await?;
    client.enable_debugger().await?;
    let (url, line) = resolve(ctx, &p.at)?;
    let breakpoint = client.set_breakpoint_by_url(&url, line).await?;
    ctx.add_breakpoint(breakpoint.id.clone());
    ctx.narrate(&format!(
        "breakpoint at {url}:{line} (in {})",
        p.at.function
    ));
    let trigger_ctx = ctx.quieted();
    let actions = p.trigger.clone();
    let mut trigger = tokio::spawn(async move { perform_all(&trigger_ctx, &actions).await });
    let pause = tokio::select! {
        pause = client.wait_paused(timeout) => pause,
        finished = &mut trigger => {
            let how = match finished {
                Ok(Ok(())) => "finished".to_string(),
                Ok(Err(problem)) => format!("failed: {}", problem.text()),
                Err(e) => format!("did not run: {e}"),
            };
            return Err(Failure::new(
                format!("pausing at {url}:{line}"),
                format!("the app to pause in {} while the trigger ran", p.at.function),
                format!("the trigger {how} and the app never paused: that line did not run"),
            )
            .hint(ctx.step_hint())
            .into());
        }
    };
    let pause = match pause {
        Ok(pause) => pause,
        Err(e) => {
            trigger.abort();
            return Err(Failure::new(
                format!("pausing at {url}:{line}"),
                format!(
                    "the app to pause in {} within {:.0} s",
                    p.at.function,
                    timeout.as_secs_f64()
                ),
                format!("{e:#}"),
            )
            .hint(ctx.step_hint())
            .into());
        }
    };
    ctx.add_background(format!("what paused at {}:{line}", p.at.file), trigger);
    if pause.function_name != p.at.function {
        return Err(Failure::new(
            format!("pausing at {url}:{line}"),
            format!("a pause in {}", p.at.function),
            format!(
                "a pause in `{}` at {}:{}",
                pause.function_name, pause.url, pause.line
            ),
        )
        .into());
    }
    ctx.narrate(&format!(
        "paused in {} at {}:{} — locals: {}",
        pause.function_name,
        p.at.file,
        pause.line,
        Value::Object(pause.locals.clone())
    ));
    Ok(())
}

async fn paused(ctx: &Context, p: &InspectorPaused) -> Done {
    let timeout = ctx.patience(timeout_of(&p.timeout, Duration::from_secs(2)));
    let addr = inspector_addr(ctx)?;
    // A connection of its own: it sees the pause whoever caused it (DevTools or the runner), and
    // closing it does not resume the app.
    let observer = Inspector::attach_with_timeout(addr, DEFAULT_TIMEOUT)
        .await
        .map_err(|e| unreachable(ctx, addr, e))?;
    let result = async {
        observer.enable_debugger().await?;
        let pause = observer.wait_paused(timeout).await.map_err(|_| {
            Failure::new(
                "the app's state",
                format!("paused in {}", p.function),
                format!("running (no pause within {:.1} s)", timeout.as_secs_f64()),
            )
            .hint(ctx.step_hint())
        })?;
        if pause.function_name != p.function {
            return Err(Failure::new(
                "the paused frame",
                format!("in function {}", p.function),
                format!(
                    "in `{}` at {}:{}",
                    pause.function_name, pause.url, pause.line
                ),
            )
            .hint(ctx.step_hint())
            .into());
        }
        if let Some(needle) = &p.line_containing {
            let file = p.file.as_deref().ok_or_else(|| {
                anyhow!("a `paused` check with `line_containing` needs the `file` it is in")
            })?;
            let (url, line) = resolve(
                ctx,
                &SourcePlace {
                    file: file.to_string(),
                    function: p.function.clone(),
                    line_containing: Some(needle.clone()),
                },
            )?;
            if pause.url != url || pause.line != line {
                let seen = app_source_line(ctx, &pause.url, pause.line)
                    .map(|text| format!(" (`{text}`)"))
                    .unwrap_or_default();
                return Err(Failure::new(
                    format!("the paused line in {}", p.function),
                    format!("{file}:{line} (`{}`)", needle),
                    format!("{}{seen}", place(ctx, &pause.url, pause.line)),
                )
                .hint(ctx.step_hint())
                .into());
            }
        }
        if !p.call_stack.is_empty() {
            let names: Vec<&str> = pause
                .frames
                .iter()
                .map(|f| display_name(&f.function_name))
                .collect();
            if !names.starts_with(&p.call_stack.iter().map(String::as_str).collect::<Vec<_>>()) {
                return Err(Failure::new(
                    "the Call Stack",
                    format!("starting with {}", p.call_stack.join(" ← ")),
                    names.join(" ← "),
                )
                .hint(ctx.step_hint())
                .into());
            }
        }
        for (var, callee) in &p.save_caller {
            let below = pause
                .frames
                .iter()
                .position(|f| f.function_name == *callee)
                .and_then(|i| pause.frames.get(i + 1))
                .ok_or_else(|| {
                    Failure::new(
                        format!("the caller of {callee} in the Call Stack"),
                        format!("{callee} with a frame below it"),
                        call_stack_text(&pause),
                    )
                })?;
            ctx.set_var(var, json!(display_name(&below.function_name)));
        }
        for (name, matcher) in &p.locals {
            let actual = pause.locals.get(name);
            if let Err(expected) = judge(matcher, actual) {
                return Err(Failure::new(
                    format!("local `{name}` in {}", p.function),
                    expected,
                    show_actual(actual),
                )
                .hint(ctx.step_hint())
                .into());
            }
        }
        for (var, local) in &p.save {
            let value = pause.locals.get(local).ok_or_else(|| {
                anyhow!(
                    "the paused frame has no local `{local}`; it has {:?}",
                    pause.locals.keys().collect::<Vec<_>>()
                )
            })?;
            ctx.set_var(var, value.clone());
        }
        ctx.narrate(&format!(
            "the app is paused in {} at {} — Call Stack: {}",
            display_name(&pause.function_name),
            place(ctx, &pause.url, pause.line),
            call_stack_text(&pause)
        ));
        Ok::<_, Problem>(())
    }
    .await;
    let _ = observer.close().await;
    result
}

async fn resume(ctx: &Context, timeout: Duration) -> Done {
    ctx.clear_watches();
    let client = ctx.inspector_client().lock().await.clone();
    match client {
        Some(client) if !client.is_closed() => {
            if client.is_paused() {
                client.resume().await?;
                ctx.narrate("resumed");
            }
            for id in ctx.take_breakpoints() {
                client.remove_breakpoint(&id).await?;
            }
        }
        _ => {
            // Paused by someone else (DevTools): resume from a connection of our own.
            let addr = inspector_addr(ctx)?;
            if let Ok(observer) = Inspector::attach_with_timeout(addr, DEFAULT_TIMEOUT).await {
                observer.enable_debugger().await?;
                if observer
                    .wait_paused(Duration::from_millis(300))
                    .await
                    .is_ok()
                {
                    observer.resume().await?;
                    ctx.narrate("resumed");
                }
                let _ = observer.close().await;
            }
        }
    }
    let started = Instant::now();
    for (name, task) in ctx.take_background() {
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, task).await {
            Ok(Ok(result)) => result.map_err(|p| p.context(format!("{name}, once resumed")))?,
            Ok(Err(e)) => return Err(anyhow!("{name} did not run to the end: {e}").into()),
            Err(_) => {
                return Err(anyhow!(
                    "{name} did not finish within {:.0} s of resuming",
                    timeout.as_secs_f64()
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The text of 1-based `line` of the app's file at `url` (`file://{app_root}/...`), trimmed.
fn app_source_line(ctx: &Context, url: &str, line: u32) -> Option<String> {
    let relative = app_relative(ctx, url)?;
    let text = std::fs::read_to_string(ctx.app_dir().join(relative)).ok()?;
    Some(
        text.lines()
            .nth(line.checked_sub(1)? as usize)?
            .trim()
            .to_string(),
    )
}

async fn profile(ctx: &Context, p: &InspectorProfile) -> Done {
    let dest = ctx.artifacts_dir().join(&p.to);
    let client = client(ctx, timeout_of(&p.timeout, CAPTURE_TIMEOUT)).await?;
    let started = Instant::now();
    let (profile, during) = client
        .profile_while(Duration::from_micros(1000), perform_all(ctx, &p.during))
        .await
        .context("Failed to record a CPU profile")?;
    during?;
    let bytes = inspector::save_cpuprofile(&profile, &dest).await?;
    ctx.narrate(&format!(
        "CPU profile of {} ms saved to {} ({})",
        started.elapsed().as_millis(),
        dest.display(),
        units::bytes(bytes as f64)
    ));
    if let Some(name) = &p.save {
        ctx.set_var(name, json!(dest.to_string_lossy()));
    }
    Ok(())
}

async fn heap_usage(ctx: &Context, h: &InspectorHeapUsage) -> Done {
    let client = client(ctx, timeout_of(&h.timeout, DEFAULT_TIMEOUT)).await?;
    let usage = client.heap_usage().await?;
    let value = |key: &str| -> Result<Value> {
        match key {
            "used" => Ok(json!(usage.used_size)),
            "total" => Ok(json!(usage.total_size)),
            other => Err(anyhow!("heap usage has `used` and `total`, not `{other}`")),
        }
    };
    for (key, matcher) in &h.expect {
        let actual = value(key)?;
        if let Err(expected) = judge(matcher, Some(&actual)) {
            return Err(Failure::new(
                format!("heap {key} bytes"),
                expected,
                show_actual(Some(&actual)),
            )
            .into());
        }
    }
    for (name, key) in &h.save {
        ctx.set_var(name, value(key)?);
    }
    ctx.narrate(&format!(
        "heap: {} used of {}",
        units::bytes(usage.used_size as f64),
        units::bytes(usage.total_size as f64)
    ));
    Ok(())
}
