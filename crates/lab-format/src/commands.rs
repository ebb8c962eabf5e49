//! The shell commands a participant would type for a step's solve: `curl` for HTTP, `docker` for the
//! container. Generated from the same actions verify runs, so the guide cannot drift from what CI
//! proves.

use crate::{Action, AnalyzeAction, ContainerAction, HttpAction, InspectorAction, TunnelAction};

/// How commands refer to the session.
pub struct CommandStyle<'a> {
    pub base_url: &'a str,
    /// `$LAB_TOKEN` in the exported guide; the token itself in a live session.
    pub token: &'a str,
    /// The header the app reads its token from (lab.yaml `app.token_header`).
    pub token_header: &'a str,
    /// The app's health path.
    pub health: &'a str,
    /// The app's metrics path.
    pub metrics: &'a str,
    pub container: &'a str,
    /// Where the inspector answers on the host (`127.0.0.1:9229`).
    pub inspector: &'a str,
}

/// What a step shows a participant to do, as Markdown: its `shell:` commands exactly as verify runs
/// them, in a fenced block per terminal, and what is done in DevTools as a line of prose where it
/// happens. Empty when the step has nothing to do.
pub fn markdown(actions: &[Action], style: &CommandStyle) -> String {
    let mut pieces = Vec::new();
    for action in actions {
        describe(action, actions, style, &mut pieces);
    }
    let mut out: Vec<String> = Vec::new();
    let mut main: Vec<String> = Vec::new();
    let flush = |main: &mut Vec<String>, out: &mut Vec<String>| {
        if !main.is_empty() {
            out.push(format!("```sh\n{}\n```", main.join("\n")));
            main.clear();
        }
    };
    for piece in pieces {
        match piece {
            Piece::Shell(text) => main.push(text),
            Piece::Other(lead, text) => {
                flush(&mut main, &mut out);
                out.push(format!("{lead}\n\n```sh\n{text}\n```"));
            }
            Piece::Prose(text) => {
                flush(&mut main, &mut out);
                out.push(text);
            }
        }
    }
    flush(&mut main, &mut out);
    out.join("\n\n")
}

/// One part of what a step shows.
enum Piece {
    /// Commands for the participant's main terminal.
    Shell(String),
    /// Commands for another terminal, after a line saying so.
    Other(&'static str, String),
    /// What is done outside a terminal (DevTools).
    Prose(String),
}

fn describe(action: &Action, step: &[Action], style: &CommandStyle, out: &mut Vec<Piece>) {
    match action {
        Action::Shell(s) if s.interrupt => {
            let name = s.terminal.as_deref().unwrap_or_default();
            out.push(Piece::Prose(match others_command(step, name) {
                Some(command) => {
                    format!("Then press **Ctrl-C** in the terminal running `{command}`.")
                }
                None => format!("Then press **Ctrl-C** in the terminal where `{name}` runs."),
            }));
        }
        Action::Shell(s) if s.terminal.is_some() => out.push(Piece::Other(
            "In **another terminal** (leave it running):",
            s.run.trim_end().to_string(),
        )),
        Action::Shell(s) => out.push(Piece::Shell(s.run.trim_end().to_string())),
        Action::Inspector(i) => describe_devtools(i, step, style, out),
        other => {
            if let Some(line) = for_action(other, style) {
                out.push(Piece::Shell(line));
            }
        }
    }
}

/// What a participant does in DevTools for an inspector action.
fn describe_devtools(
    action: &InspectorAction,
    step: &[Action],
    style: &CommandStyle,
    out: &mut Vec<Piece>,
) {
    let prose = |text: String| Piece::Prose(text);
    match action {
        InspectorAction::Discover(_) => out.push(Piece::Shell(format!(
            "curl -sS http://{}/json/list",
            style.inspector
        ))),
        InspectorAction::Attach(_) => out.push(prose(
            "**In DevTools:** open the `devtools://` URL above (or `chrome://inspect` → *inspect*).".into(),
        )),
        InspectorAction::Detach => out.push(prose("**In DevTools:** close the DevTools window.".into())),
        InspectorAction::Evaluate(e) => out.push(prose(format!(
            "**In the DevTools Console:** `{}`",
            e.expression
        ))),
        InspectorAction::PauseAt(p) => {
            out.push(prose(format!(
                "**In DevTools → Sources:** open `{}` and set a breakpoint in `{}`{}.",
                p.at.file,
                p.at.function,
                p.at.line_containing
                    .as_ref()
                    .map(|l| format!(" on the line `{l}`"))
                    .unwrap_or_default()
            )));
            for trigger in &p.trigger {
                match trigger {
                    Action::Shell(s) if s.terminal.is_none() => out.push(Piece::Other(
                        "Then, in **another terminal**:",
                        s.run.trim_end().to_string(),
                    )),
                    other => describe(other, step, style, out),
                }
            }
        }
        InspectorAction::Paused(_) => {}
        InspectorAction::StepOver(_) => out.push(prose(
            "**In DevTools:** press **Step over** (F10).".into(),
        )),
        InspectorAction::StepInto(_) => out.push(prose(
            "**In DevTools:** press **Step into** (F11).".into(),
        )),
        InspectorAction::StepOut(_) => out.push(prose(
            "**In DevTools:** press **Step out** (Shift+F11).".into(),
        )),
        InspectorAction::Watch(w) => out.push(prose(format!(
            "**In DevTools → Sources → Watch:** add the expression `{}`.",
            w.expression
        ))),
        InspectorAction::EvaluateInFrame(e) => out.push(prose(match &e.caller_of {
            Some(callee) => format!(
                "**In DevTools → Call Stack:** click the frame below `{callee}`; then **in the Console:** `{}`",
                e.expression
            ),
            None => format!(
                "**In the DevTools Console, while paused:** `{}`",
                e.expression
            ),
        })),
        InspectorAction::Resume(_) => out.push(prose(
            "**In DevTools:** remove the breakpoint (click its line number) and press **Resume** (F8)."
                .into(),
        )),
        InspectorAction::Profile(p) => {
            out.push(prose(
                "**In DevTools → JavaScript Profiler:** press **Start**; then, in a terminal:"
                    .into(),
            ));
            for during in &p.during {
                describe(during, step, style, out);
            }
            out.push(prose(format!(
                "**Back in the Profiler:** press **Stop**, then **Save** the profile as `{}`.",
                p.to
            )));
        }
        InspectorAction::HeapSnapshot(h) => out.push(prose(format!(
            "**In DevTools → Memory:** take a heap snapshot and save it as `{}`.",
            h.to
        ))),
        InspectorAction::HeapUsage(_) => out.push(prose(
            "**In DevTools → Memory:** read the heap size shown under the snapshot list.".into(),
        )),
    }
}

/// The command started in the terminal `name` by one of `actions` (for "Ctrl-C in ...").
fn others_command<'a>(actions: &'a [Action], name: &str) -> Option<&'a str> {
    actions.iter().find_map(|a| match a {
        Action::Shell(s) if !s.interrupt && s.terminal.as_deref() == Some(name) => {
            s.run.lines().next()
        }
        _ => None,
    })
}

/// One shell line (or a few, joined by newlines) per action. Actions inside `parallel` run with `&`.
pub fn for_actions(actions: &[Action], style: &CommandStyle) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| for_action(a, style))
        .collect()
}

fn for_action(action: &Action, style: &CommandStyle) -> Option<String> {
    Some(match action {
        Action::Http(h) => curl(h, style.base_url, style.token_header, style.token),
        Action::Metrics(m) => {
            let names: Vec<&str> = m
                .expect
                .keys()
                .chain(m.save.values())
                .map(|s| s.split('{').next().unwrap_or(s))
                .collect();
            let path = m.path.as_deref().unwrap_or(style.metrics);
            if names.is_empty() {
                format!("curl -sS \"{}{path}\"", style.base_url)
            } else {
                format!(
                    "curl -sS \"{}{path}\" | grep -E '^({})'",
                    style.base_url,
                    names.join("|")
                )
            }
        }
        Action::Parallel(inner) => {
            let lines: Vec<String> = inner
                .iter()
                .filter_map(|a| for_action(a, style))
                .map(|line| {
                    if line.contains("; ") {
                        format!("( {line} ) &")
                    } else {
                        format!("{line} &")
                    }
                })
                .collect();
            if lines.is_empty() {
                return None;
            }
            format!("{}\nwait", lines.join("\n"))
        }
        Action::Sequence(inner) => {
            let lines = for_actions(inner, style);
            if lines.is_empty() {
                return None;
            }
            lines.join("; ")
        }
        // A person's pace (switching to DevTools, typing): nothing to type.
        Action::Wait(_) => return None,
        Action::Container(c) => match c {
            ContainerAction::Recreate(spec) => {
                let mut changes: Vec<String> = spec
                    .env
                    .iter()
                    .map(|(k, v)| {
                        let shown = if v.contains(style.token) && !style.token.is_empty() {
                            "$LAB_TOKEN".to_string()
                        } else {
                            v.clone()
                        };
                        format!("-e {k}={shown}")
                    })
                    .collect();
                changes.extend(spec.unset.iter().map(|k| format!("(without {k})")));
                format!(
                    "# recreate the app's container with {}{}\n# (ECS: a new task definition revision with these variables, then update the service)",
                    if spec.reset {
                        "its original environment "
                    } else {
                        ""
                    },
                    changes.join(" ")
                )
            }
            ContainerAction::Restart => format!("docker restart {}", style.container),
            ContainerAction::Signal(signal) => {
                format!("docker kill --signal {signal} {}", style.container)
            }
            ContainerAction::WaitHealthy(_) => {
                format!("curl -sS \"{}{}\"", style.base_url, style.health)
            }
            ContainerAction::LogsContain(l) => match &l.regex {
                Some(re) => format!(
                    "docker logs {} 2>&1 | grep -E {}",
                    style.container,
                    lab_util::shell_lines::quote(re)
                ),
                None => format!(
                    "docker logs {} 2>&1 | grep -F '{}'",
                    style.container, l.text
                ),
            },
        },
        Action::Artifact(a) => format!("lab-runner pull {} {}", a.copy, a.to),
        Action::Analyze(AnalyzeAction::Cpuprofile(c)) => format!("lab-runner analyze {}", c.file),
        Action::Analyze(AnalyzeAction::Heapsnapshot(h)) => format!("lab-runner analyze {}", h.file),
        Action::Analyze(AnalyzeAction::HeapDiff(d)) => {
            format!("lab-runner analyze --diff {} {}", d.old, d.new)
        }
        Action::Eventually(e) => for_actions(&e.actions, style).join("\n"),
        Action::Inspector(i) => inspector_line(i, style)?,
        Action::Ask(_) => return None,
        Action::Shell(s) if s.interrupt => format!(
            "# Ctrl-C in the terminal `{}`",
            s.terminal.as_deref().unwrap_or_default()
        ),
        Action::Shell(s) => s.run.trim_end().to_string(),
        Action::Tunnel(t) => match t {
            TunnelAction::Open(o) => format!(
                "lab-runner tunnel --container {} --local {} --remote {} &",
                style.container, o.local, o.remote
            ),
            TunnelAction::Close => {
                "kill %lab-runner   # or Ctrl-C in the terminal running `lab-runner tunnel`".into()
            }
            TunnelAction::Closed | TunnelAction::InspectorReachable(_) => return None,
        },
        Action::Command(c) => {
            let text = match &c.run {
                Some(run) => run.trim_end().to_string(),
                None => c
                    .argv
                    .iter()
                    .map(|w| lab_util::shell_lines::quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            // A service's container is named after the app's, with the service's name after it.
            let container = match &c.side {
                crate::Side::Participant => return Some(text),
                crate::Side::App => style.container.to_string(),
                crate::Side::Service(name) => format!("{}-{name}", style.container),
            };
            match &c.run {
                Some(_) => format!(
                    "docker exec {container} sh -c {}",
                    lab_util::shell_lines::quote(&text)
                ),
                None => format!("docker exec {container} {text}"),
            }
        }
        Action::File(f) => match (&f.contains, &f.regex) {
            (Some(text), _) => format!(
                "grep -F {} {}",
                lab_util::shell_lines::quote(text),
                lab_util::shell_lines::quote(&f.path)
            ),
            (None, Some(re)) => format!(
                "grep -E {} {}",
                lab_util::shell_lines::quote(re),
                lab_util::shell_lines::quote(&f.path)
            ),
            (None, None) => format!("ls -l {}", lab_util::shell_lines::quote(&f.path)),
        },
        Action::Port(p) => {
            let (host, port) = p.address.rsplit_once(':').unwrap_or((&p.address, ""));
            format!("nc -z {host} {port}")
        }
    })
}

/// What a participant does in DevTools for an inspector action, as a comment line (a command where
/// there is one).
fn inspector_line(action: &InspectorAction, style: &CommandStyle) -> Option<String> {
    Some(match action {
        InspectorAction::Discover(_) => format!("curl -sS http://{}/json/list", style.inspector),
        InspectorAction::Attach(_) => {
            "# DevTools: open the devtools:// URL above (or chrome://inspect → inspect)".into()
        }
        InspectorAction::Detach => "# DevTools: close the DevTools window".into(),
        InspectorAction::Evaluate(e) => format!("# DevTools Console: {}", e.expression),
        InspectorAction::PauseAt(p) => {
            let mut lines = vec![format!(
                "# DevTools Sources: open {} and set a breakpoint in {}{}",
                p.at.file,
                p.at.function,
                p.at.line_containing
                    .as_ref()
                    .map(|l| format!(" on the line `{l}`"))
                    .unwrap_or_default()
            )];
            let trigger = for_actions(&p.trigger, style);
            if p.trigger.iter().any(|a| matches!(a, Action::Shell(_))) {
                lines.push("# then, in another terminal:".into());
                lines.extend(trigger);
            } else {
                lines.extend(trigger.into_iter().map(|l| format!("{l} &")));
            }
            lines.join("\n")
        }
        InspectorAction::Paused(_) => return None,
        InspectorAction::StepOver(_) => "# DevTools: press Step over (F10)".into(),
        InspectorAction::StepInto(_) => "# DevTools: press Step into (F11)".into(),
        InspectorAction::StepOut(_) => "# DevTools: press Step out (Shift+F11)".into(),
        InspectorAction::Watch(w) => format!("# DevTools Sources → Watch: add {}", w.expression),
        InspectorAction::EvaluateInFrame(e) => match &e.caller_of {
            Some(callee) => format!(
                "# DevTools: click the frame below {callee} in the Call Stack; Console: {}",
                e.expression
            ),
            None => format!("# DevTools Console (paused): {}", e.expression),
        },
        InspectorAction::Resume(_) => {
            "# DevTools: remove the breakpoint and press Resume (F8)".into()
        }
        InspectorAction::Profile(p) => {
            let mut lines = vec!["# DevTools JavaScript Profiler: press Start".to_string()];
            lines.extend(for_actions(&p.during, style));
            lines.push(format!(
                "# DevTools JavaScript Profiler: press Stop, then Save as {}",
                p.to
            ));
            lines.join("\n")
        }
        InspectorAction::HeapSnapshot(h) => format!(
            "# DevTools Memory: take a heap snapshot and save it as {}",
            h.to
        ),
        InspectorAction::HeapUsage(_) => {
            "# DevTools Memory: the heap size shown under the snapshot list".into()
        }
    })
}

/// The `curl` command a participant would type for `action`.
pub fn curl(action: &HttpAction, base_url: &str, token_header: &str, token: &str) -> String {
    let mut parts = vec!["curl -sS".to_string()];
    if !action.method.eq_ignore_ascii_case("GET") {
        parts.push(format!("-X {}", action.method.to_ascii_uppercase()));
    }
    if action.token {
        let header = if token.starts_with('$') {
            format!("-H \"{token_header}: {token}\"")
        } else {
            format!("-H '{token_header}: {token}'")
        };
        parts.push(header);
    }
    for (k, v) in &action.headers {
        parts.push(format!("-H '{k}: {v}'"));
    }
    if let Some(json) = &action.json {
        parts.push("-H 'content-type: application/json'".into());
        parts.push(format!("-d '{json}'"));
    } else if let Some(body) = &action.body {
        parts.push(format!(
            "--data-binary {}",
            lab_util::shell_lines::quote(body)
        ));
    }
    parts.push(format!("\"{base_url}{}\"", action.target()));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_shows_method_token_and_query() {
        let a: HttpAction = crate::yaml::parse(
            "{method: POST, path: /api/lab/event-loop-jam, query: {ms: 1500}, token: true}",
            std::path::Path::new("test.yaml"),
        )
        .unwrap();
        assert_eq!(
            curl(&a, "http://127.0.0.1:3001", "x-lab-token", "$LAB_TOKEN"),
            "curl -sS -X POST -H \"x-lab-token: $LAB_TOKEN\" \"http://127.0.0.1:3001/api/lab/event-loop-jam?ms=1500\""
        );
    }

    #[test]
    fn parallel_runs_in_the_background_and_waits() {
        let actions: Vec<Action> = crate::yaml::parse("- parallel:\n    - http: {path: /a}\n    - sequence:\n        - wait: 200ms\n        - http: {path: /b}\n", std::path::Path::new("test.yaml")).unwrap();
        let style = CommandStyle {
            base_url: "http://h",
            token: "$LAB_TOKEN",
            token_header: "x-lab-token",
            health: "/health",
            metrics: "/metrics",
            container: "c",
            inspector: "127.0.0.1:9229",
        };
        let lines = for_actions(&actions, &style);
        assert_eq!(
            lines,
            // A wait is a person's pace, not a command.
            vec!["curl -sS \"http://h/a\" &\ncurl -sS \"http://h/b\" &\nwait"]
        );
    }

    #[test]
    fn debugger_buttons_and_the_paused_console_are_told_as_devtools_names_them() {
        let actions: Vec<Action> = crate::yaml::parse(
            "- inspector: {watch: {expression: deadline}}\n\
             - inspector: {step_over: {}}\n\
             - inspector: {step_into: {}}\n\
             - inspector: {step_out: {}}\n\
             - inspector: {evaluate_in_frame: {expression: eventLoopJamsTotal()}}\n\
             - inspector: {evaluate_in_frame: {caller_of: eventLoopJam, expression: 'labStatus(params, config)'}}\n\
             - inspector: {resume: {}}\n",
            std::path::Path::new("test.yaml"),
        )
        .unwrap();
        let style = CommandStyle {
            base_url: "http://h",
            token: "$LAB_TOKEN",
            token_header: "x-lab-token",
            health: "/health",
            metrics: "/metrics",
            container: "c",
            inspector: "127.0.0.1:9229",
        };
        let shown = markdown(&actions, &style);
        let paragraphs: Vec<&str> = shown.split("\n\n").collect();
        assert_eq!(
            paragraphs,
            vec![
                "**In DevTools → Sources → Watch:** add the expression `deadline`.",
                "**In DevTools:** press **Step over** (F10).",
                "**In DevTools:** press **Step into** (F11).",
                "**In DevTools:** press **Step out** (Shift+F11).",
                "**In the DevTools Console, while paused:** `eventLoopJamsTotal()`",
                "**In DevTools → Call Stack:** click the frame below `eventLoopJam`; then **in the Console:** `labStatus(params, config)`",
                "**In DevTools:** remove the breakpoint (click its line number) and press **Resume** (F8).",
            ]
        );
    }
}
