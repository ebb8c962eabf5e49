//! `Debugger` domain: breakpoints by file URL, waiting for a pause, reading locals, resuming.
//!
//! Lines in this API are 1-based (as editors show them); CDP's are 0-based on the wire.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::Inspector;
use super::connection::PauseState;
use super::error::human;
use super::runtime::{exception_text, remote_object_to_json};

/// A script the debugger has reported (`Debugger.scriptParsed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub id: String,
    pub url: String,
}

/// Where a breakpoint bound, or where a frame is. `line` and `column` are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub script_id: String,
    pub url: String,
    pub line: u32,
    pub column: u32,
}

/// A breakpoint that bound at least one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakpoint {
    pub id: String,
    /// The `file://` URL it was set on.
    pub url: String,
    /// The 1-based line asked for. V8 moves a breakpoint on a line without code to the next
    /// line that has some: compare with `locations[..].line`.
    pub requested_line: u32,
    pub locations: Vec<Location>,
}

impl Breakpoint {
    /// Whether V8 bound it on another line than the one asked for. Node 20 slides a breakpoint
    /// on a blank or comment line forward to the next breakable location (even into the next
    /// function); only lines past the end of the script, or URLs not loaded, bind nothing.
    pub fn moved(&self) -> bool {
        self.locations.iter().any(|l| l.line != self.requested_line)
    }
}

/// One frame of the Call Stack of a pause, top first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Empty for top-level module code (DevTools shows `(anonymous)`).
    pub function_name: String,
    /// The frame's script URL, mapped through its scriptId.
    pub url: String,
    /// 1-based.
    pub line: u32,
    /// For `Debugger.evaluateOnCallFrame` in this frame.
    pub call_frame_id: String,
}

/// How to go on from a pause, one statement at a time (the buttons beside Resume in DevTools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `Debugger.stepOver`: run the current statement (calls included) and stop at the next one.
    Over,
    /// `Debugger.stepInto`: stop at the first statement of the function the statement calls.
    Into,
    /// `Debugger.stepOut`: run the rest of the current function and stop in its caller.
    Out,
}

impl Step {
    fn method(self) -> &'static str {
        match self {
            Step::Over => "Debugger.stepOver",
            Step::Into => "Debugger.stepInto",
            Step::Out => "Debugger.stepOut",
        }
    }

    /// The name of the button in DevTools.
    pub fn button(self) -> &'static str {
        match self {
            Step::Over => "Step over",
            Step::Into => "Step into",
            Step::Out => "Step out",
        }
    }
}

/// The debuggee stopped: its top frame and that frame's local variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Paused {
    /// `Debugger.paused` reason: `other` for breakpoints and `debugger;`, `exception`, ...
    pub reason: String,
    pub hit_breakpoints: Vec<String>,
    /// Empty for top-level module code.
    pub function_name: String,
    /// The frame's script URL, mapped through its scriptId (ESM frames carry no url).
    pub url: String,
    pub script_id: String,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    /// For `Debugger.evaluateOnCallFrame`.
    pub call_frame_id: String,
    /// Variables of the frame's `local` scope and of the `block` scopes inside it (the inner
    /// one wins a name clash), as by [`Inspector::evaluate`]: primitives as JSON values,
    /// `undefined` (and not-yet-initialised `let`/`const`) as `null`, objects as
    /// `{"type", "subtype", "description"}`.
    pub locals: Map<String, Value>,
    /// The Call Stack, top first (`frames[0]` is the frame above).
    pub frames: Vec<Frame>,
    /// The whole `Debugger.paused` params.
    pub raw: Value,
}

/// `path` as a `file://` URL the way Node's `pathToFileURL` writes it (percent-encoding
/// spaces, `#`, `?`, `%`, non-ASCII, ...). A string that already has a scheme (`file:`,
/// `node:`, `http:`) is returned unchanged. Relative paths are refused: they would be resolved
/// against the inspected process's working directory, which this side cannot know.
pub fn file_url(path: &str) -> Result<String> {
    if has_scheme(path) {
        return Ok(path.to_string());
    }
    if !path.starts_with('/') {
        bail!(
            "{path:?} is a relative path; breakpoints need an absolute path or a file:// URL \
             (as the inspected process sees it, e.g. file:///app/server.mjs)"
        );
    }
    let mut url = String::from("file://");
    for &b in path.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"/-._!$&'()*+,;=:@".contains(&b);
        if keep {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(url)
}

fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) if i >= 2 => s[..i]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')),
        _ => false,
    }
}

fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn u32_field(v: &Value, key: &str) -> u32 {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

impl Inspector {
    /// `Debugger.enable`. Node reports every loaded script (`Debugger.scriptParsed`) before it
    /// replies, so afterwards [`Inspector::scripts`] is complete. Idempotent.
    pub async fn enable_debugger(&self) -> Result<()> {
        self.call("Debugger.enable", json!({}))
            .await
            .context("enabling the debugger (Debugger.enable)")?;
        Ok(())
    }

    /// The scripts reported since the debugger was enabled, sorted by id.
    pub fn scripts(&self) -> Vec<Script> {
        self.conn
            .router
            .scripts()
            .into_iter()
            .map(|(id, url)| Script { id, url })
            .collect()
    }

    /// The URL of a script by id (what ESM call frames leave out).
    pub fn script_url(&self, script_id: &str) -> Option<String> {
        self.conn.router.script_url(script_id)
    }

    /// Set a breakpoint at 1-based `line` of `url` — a `file://` URL, or an absolute path, which
    /// is converted with [`file_url`] (a plain path binds nothing in Node). Enables the debugger
    /// first if needed. A breakpoint that binds no location is removed again and reported as an
    /// error listing the loaded scripts with a similar file name.
    pub async fn set_breakpoint_by_url(&self, url: &str, line: u32) -> Result<Breakpoint> {
        let doing = format!("setting a breakpoint at {url}:{line}");
        if line == 0 {
            bail!("{doing}: lines are 1-based");
        }
        let url = file_url(url).with_context(|| doing.clone())?;
        let doing = format!("setting a breakpoint at {url}:{line}");
        if !self.conn.debugger_enabled.load(Ordering::SeqCst) {
            self.enable_debugger().await.context(doing.clone())?;
        }
        let reply = self
            .call(
                "Debugger.setBreakpointByUrl",
                json!({ "url": url, "lineNumber": line - 1, "columnNumber": 0 }),
            )
            .await
            .map_err(|e| anyhow::Error::new(e).context(doing.clone()))?;
        let id = reply
            .get("breakpointId")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{doing}: the reply has no breakpointId: {reply}"))?
            .to_string();
        let locations: Vec<Location> = reply
            .get("locations")
            .and_then(Value::as_array)
            .map(|locs| locs.iter().map(|l| self.location(l)).collect())
            .unwrap_or_default();
        if locations.is_empty() {
            // V8 would keep it pending for a script that may load later; we want an answer now.
            let _ = self
                .call("Debugger.removeBreakpoint", json!({ "breakpointId": id }))
                .await;
            bail!("{doing}: {}", self.diagnose_unbound(&url, line));
        }
        Ok(Breakpoint {
            id,
            url,
            requested_line: line,
            locations,
        })
    }

    /// `Debugger.removeBreakpoint`.
    pub async fn remove_breakpoint(&self, breakpoint_id: &str) -> Result<()> {
        self.call(
            "Debugger.removeBreakpoint",
            json!({ "breakpointId": breakpoint_id }),
        )
        .await
        .map_err(|e| {
            anyhow::Error::new(e).context(format!("removing breakpoint {breakpoint_id}"))
        })?;
        Ok(())
    }

    /// Wait (at most `timeout`) until the debuggee is paused; returns at once if it already is.
    /// Then read the top frame's locals (within this handle's call timeout).
    pub async fn wait_paused(&self, timeout: Duration) -> Result<Paused> {
        if !self.conn.debugger_enabled.load(Ordering::SeqCst) {
            bail!(
                "waiting for the debuggee to pause: the debugger is not enabled \
                 (set a breakpoint or call enable_debugger first)"
            );
        }
        // The watch guard is not Send: copy the state out of it inside this block, so nothing of
        // it lives across the await below.
        let state: Result<PauseState, &str> = {
            let mut receiver = self.conn.router.pause_state();
            let waited = tokio::time::timeout(
                timeout,
                receiver.wait_for(|s| !matches!(s, PauseState::Running)),
            )
            .await;
            match waited {
                Err(_) => Err("timed out"),
                Ok(Err(_)) => Err("gone"),
                Ok(Ok(guard)) => Ok(guard.clone()),
            }
        };
        let params = match state {
            Err("timed out") => bail!(
                "waiting for the debuggee to pause: timed out after {} (no Debugger.paused: \
                 nothing hit a breakpoint)",
                human(timeout)
            ),
            Err(_) => bail!("waiting for the debuggee to pause: the connection is gone"),
            Ok(PauseState::Paused { params, .. }) => params,
            Ok(PauseState::Disconnected(reason)) => {
                bail!("waiting for the debuggee to pause: {reason}")
            }
            Ok(PauseState::Running) => bail!("waiting for the debuggee to pause: still running"),
        };
        self.describe_pause(&params)
            .await
            .context("reading the paused frame")
    }

    /// Whether the debuggee is paused right now (as last reported).
    pub fn is_paused(&self) -> bool {
        matches!(
            *self.conn.router.pause_state().borrow(),
            PauseState::Paused { .. }
        )
    }

    /// `Debugger.resume`, then wait (within this handle's timeout) for `Debugger.resumed`, so a
    /// later [`Inspector::wait_paused`] cannot see the pause just left.
    pub async fn resume(&self) -> Result<()> {
        let mut state = self.conn.router.pause_state();
        let paused_seq = match &*state.borrow() {
            PauseState::Paused { seq, .. } => Some(*seq),
            _ => None,
        };
        self.call("Debugger.resume", json!({}))
            .await
            .map_err(|e| anyhow::Error::new(e).context("resuming the debuggee"))?;
        if let Some(seq) = paused_seq {
            let left = state.wait_for(|s| match s {
                PauseState::Paused { seq: now, .. } => *now != seq,
                _ => true,
            });
            if tokio::time::timeout(self.timeout, left).await.is_err() {
                bail!(
                    "resuming the debuggee: Node accepted Debugger.resume but sent no \
                     Debugger.resumed within {}",
                    human(self.timeout)
                );
            }
        }
        Ok(())
    }

    /// Step from the current pause (`Debugger.stepOver`, `stepInto` or `stepOut`) and wait, at
    /// most `timeout`, for the pause it leads to; returns that pause. Fails when the debuggee is
    /// not paused, or when it runs on without stopping again (a step out of the last frame).
    pub async fn step(&self, step: Step, timeout: Duration) -> Result<Paused> {
        let doing = format!("pressing {} ({})", step.button(), step.method());
        let mut state = self.conn.router.pause_state();
        let paused_seq = match &*state.borrow() {
            PauseState::Paused { seq, .. } => *seq,
            _ => bail!("{doing}: the debuggee is not paused"),
        };
        self.call(step.method(), json!({}))
            .await
            .map_err(|e| anyhow::Error::new(e).context(doing.clone()))?;
        // Node sends Debugger.resumed, runs to the next statement, then Debugger.paused again:
        // wait for a pause other than the one stepped from.
        let next = state.wait_for(|s| match s {
            PauseState::Paused { seq, .. } => *seq != paused_seq,
            PauseState::Disconnected(_) => true,
            PauseState::Running => false,
        });
        let params = match tokio::time::timeout(timeout, next).await {
            Err(_) => bail!(
                "{doing}: the debuggee ran on and did not pause again within {}",
                human(timeout)
            ),
            Ok(Err(_)) => bail!("{doing}: the connection is gone"),
            Ok(Ok(guard)) => match &*guard {
                PauseState::Paused { params, .. } => params.clone(),
                PauseState::Disconnected(reason) => bail!("{doing}: {reason}"),
                PauseState::Running => bail!("{doing}: still running"),
            },
        };
        self.describe_pause(&params)
            .await
            .with_context(|| format!("{doing}: reading the paused frame"))
    }

    /// Evaluate `expression` in a paused frame's scope (its locals and closures), returning
    /// the value as [`Inspector::evaluate`] does.
    pub async fn evaluate_on_frame(&self, call_frame_id: &str, expression: &str) -> Result<Value> {
        let doing = || format!("evaluating `{expression}` in the paused frame");
        let reply = self
            .call(
                "Debugger.evaluateOnCallFrame",
                json!({
                    "callFrameId": call_frame_id,
                    "expression": expression,
                    "returnByValue": true,
                }),
            )
            .await
            .map_err(|e| anyhow::Error::new(e).context(doing()))?;
        if let Some(details) = reply.get("exceptionDetails") {
            bail!("{}: {}", doing(), exception_text(details));
        }
        Ok(reply
            .get("result")
            .map(remote_object_to_json)
            .unwrap_or(Value::Null))
    }

    /// `Debugger.pause`: stop at the next JavaScript statement.
    pub async fn pause(&self) -> Result<()> {
        if !self.conn.debugger_enabled.load(Ordering::SeqCst) {
            self.enable_debugger()
                .await
                .context("pausing the debuggee")?;
        }
        self.call("Debugger.pause", json!({}))
            .await
            .map_err(|e| anyhow::Error::new(e).context("pausing the debuggee"))?;
        Ok(())
    }

    fn location(&self, loc: &Value) -> Location {
        let script_id = str_field(loc, "scriptId");
        Location {
            url: self.script_url(&script_id).unwrap_or_default(),
            script_id,
            line: u32_field(loc, "lineNumber") + 1,
            column: u32_field(loc, "columnNumber") + 1,
        }
    }

    fn diagnose_unbound(&self, url: &str, line: u32) -> String {
        let wanted = file_name(url);
        let scripts = self.scripts();
        let exact = scripts.iter().any(|s| s.url == url);
        let mut similar: Vec<&str> = scripts
            .iter()
            .map(|s| s.url.as_str())
            .filter(|u| *u != url && file_name(u).eq_ignore_ascii_case(wanted))
            .collect();
        if similar.is_empty() {
            let stem = wanted
                .split('.')
                .next()
                .unwrap_or(wanted)
                .to_ascii_lowercase();
            if stem.len() >= 3 {
                similar = scripts
                    .iter()
                    .map(|s| s.url.as_str())
                    .filter(|u| file_name(u).to_ascii_lowercase().contains(&stem))
                    .collect();
            }
        }
        similar.sort_unstable();
        similar.dedup();
        let mut text = if exact {
            format!(
                "the URL and line bound no code: {url} is loaded, but line {line} has no \
                 breakable code at or after it (past the end of the file?)"
            )
        } else {
            format!(
                "the URL and line bound no code: no loaded script has the URL {url} \
                 (not imported yet, a different path inside the process, or a typo?)"
            )
        };
        if !similar.is_empty() {
            text.push_str("; loaded scripts with a similar name: ");
            text.push_str(&similar.join(", "));
        } else if !exact {
            text.push_str(&format!(
                "; none of the {} loaded scripts is named {wanted}",
                scripts.len()
            ));
        }
        text
    }

    async fn describe_pause(&self, params: &Value) -> Result<Paused> {
        let frame = params
            .get("callFrames")
            .and_then(Value::as_array)
            .and_then(|frames| frames.first())
            .ok_or_else(|| anyhow!("Debugger.paused carries no call frames: {params}"))?;
        let location = frame.get("location").cloned().unwrap_or(Value::Null);
        let loc = self.location(&location);
        let frame_url = str_field(frame, "url");
        let mut locals = Map::new();
        if let Some(scopes) = frame.get("scopeChain").and_then(Value::as_array) {
            for scope in scopes {
                let kind = scope.get("type").and_then(Value::as_str).unwrap_or("");
                if !matches!(kind, "local" | "block" | "catch") {
                    continue;
                }
                let Some(object_id) = scope
                    .get("object")
                    .and_then(|o| o.get("objectId"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                let props = self
                    .call(
                        "Runtime.getProperties",
                        json!({ "objectId": object_id, "ownProperties": true }),
                    )
                    .await
                    .map_err(|e| {
                        anyhow::Error::new(e).context(format!("reading the {kind} scope"))
                    })?;
                for prop in props
                    .get("result")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(name) = prop.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    if locals.contains_key(name) {
                        continue; // an inner block's variable shadows the outer one
                    }
                    let value = prop
                        .get("value")
                        .map(remote_object_to_json)
                        .unwrap_or(Value::Null);
                    locals.insert(name.to_string(), value);
                }
                if kind == "local" {
                    break; // closures and globals are not this frame's locals
                }
            }
        }
        let frames = params
            .get("callFrames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|f| {
                let at = self.location(f.get("location").unwrap_or(&Value::Null));
                let url = str_field(f, "url");
                Frame {
                    function_name: str_field(f, "functionName"),
                    url: if url.is_empty() { at.url } else { url },
                    line: at.line,
                    call_frame_id: str_field(f, "callFrameId"),
                }
            })
            .collect();
        Ok(Paused {
            reason: str_field(params, "reason"),
            frames,
            hit_breakpoints: params
                .get("hitBreakpoints")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            function_name: str_field(frame, "functionName"),
            url: if frame_url.is_empty() {
                loc.url.clone()
            } else {
                frame_url
            },
            script_id: loc.script_id,
            line: loc.line,
            column: loc.column,
            call_frame_id: str_field(frame, "callFrameId"),
            locals,
            raw: params.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_file_urls_like_node_writes_them() {
        assert_eq!(
            file_url("/app/server.mjs").unwrap(),
            "file:///app/server.mjs"
        );
        assert_eq!(
            file_url("/tmp/my lab/a#b?.mjs").unwrap(),
            "file:///tmp/my%20lab/a%23b%3F.mjs"
        );
        assert_eq!(file_url("/tmp/100%.js").unwrap(), "file:///tmp/100%25.js");
        assert_eq!(file_url("/tmp/é.mjs").unwrap(), "file:///tmp/%C3%A9.mjs");
        // Checked against Node 20's url.pathToFileURL().href.
        assert_eq!(
            file_url("/tmp/a b#?%é[]^|'!$&()*+,;=:@~{}\"<>`\\\t").unwrap(),
            "file:///tmp/a%20b%23%3F%25%C3%A9%5B%5D%5E%7C'!$&()*+,;=:@%7E%7B%7D%22%3C%3E%60%5C%09"
        );
        assert_eq!(file_url("file:///app/x.mjs").unwrap(), "file:///app/x.mjs");
        assert_eq!(file_url("node:internal/x").unwrap(), "node:internal/x");
        let err = file_url("app/server.mjs").unwrap_err().to_string();
        assert!(err.contains("relative path"), "{err}");
    }

    #[test]
    fn file_names_of_urls() {
        assert_eq!(file_name("file:///app/lib/jam.mjs"), "jam.mjs");
        assert_eq!(file_name("file:///app/jam.mjs?v=2"), "jam.mjs");
        assert_eq!(file_name("node:internal/main"), "main");
    }
}
