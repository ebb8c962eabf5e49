//! What the page shows, kept from the session's events: the sidebar (parts, the part's steps and
//! their state), the intro, the step on screen, what happened at this step (commands, output,
//! notes, every check's verdict with expected / saw / hint) and whether the session waits for a
//! choice. A page that (re)connects gets all of it at once ([`Snapshot`]), then each change.
//!
//! [`GuideReporter`] is the event stream's reporter for the browser: it updates the page state and
//! sends each change to every connected page, under one lock, so a page never misses or doubles one.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::markdown::{escape, to_html};
use crate::outcome::Outcome;
use crate::session::events::{Event, Reporter, Tone};
use crate::session::interactive::Choice;
use crate::session::terminal::diagnosis_lines;

/// A part in the sidebar.
#[derive(Debug, Clone, Serialize)]
pub struct PartSummary {
    pub id: String,
    pub title: String,
    pub done: usize,
    pub steps: usize,
}

/// A step of the part in the sidebar: `todo`, `current`, `done` or `skipped`.
#[derive(Debug, Clone, Serialize)]
pub struct StepItem {
    pub id: String,
    pub title: String,
    pub state: &'static str,
}

/// The step on screen.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub id: String,
    pub title: String,
    pub index: usize,
    pub of: usize,
    pub html: String,
}

/// One line (or block) of what happened, as HTML.
#[derive(Debug, Clone, Serialize)]
pub struct LogItem {
    pub class: &'static str,
    pub html: String,
}

/// A button of the step's menu, with its key (the terminal's).
#[derive(Debug, Clone, Serialize)]
pub struct Button {
    pub action: &'static str,
    pub key: char,
    pub label: &'static str,
}

/// Whether the session waits for a choice, or what it is busy with.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Status {
    pub waiting: bool,
    pub busy: Option<String>,
    /// The session is over (completed, quit, interrupted): the page says so.
    pub ended: Option<String>,
    /// demo: the presenter's pace is paused.
    pub paused: bool,
    /// A check's question the page is asked to answer (start --web without a terminal).
    pub question: Option<String>,
}

/// A terminal of the page's panel (`start --web --shell`): the main one, or one a command was
/// started in to keep running.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalView {
    pub name: String,
    /// The command running in it now.
    pub running: Option<String>,
    /// How many commands have ended in it.
    pub ended: u64,
    /// How the last one ended (`exit status 0`, `interrupted (Ctrl-C)`, `stopped after 10 min`).
    pub last: Option<String>,
    /// What it printed, the last [`MAX_TERMINAL_LINES`] lines (its commands echoed after `$ `).
    pub lines: Vec<String>,
}

/// The page's terminal panel.
#[derive(Debug, Clone, Serialize)]
pub struct ShellView {
    pub terminals: Vec<TerminalView>,
}

/// How many lines each terminal of the panel keeps.
pub const MAX_TERMINAL_LINES: usize = 500;

/// The main terminal's name in the panel.
pub const MAIN_TERMINAL: &str = "main";

/// Everything a page shows, sent when it connects.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// This session's own id, new at every start: a page that outlives its session (a workshop
    /// seat started again at the same address) sees a different one and reloads.
    pub session: String,
    /// `start` (the participant's guide) or `demo` (the presenter view).
    pub view: &'static str,
    pub lab_title: String,
    pub part: String,
    pub part_title: String,
    pub parts: Vec<PartSummary>,
    pub steps: Vec<StepItem>,
    pub intro: Vec<String>,
    pub step: Option<StepView>,
    pub closing: Vec<String>,
    pub log: Vec<LogItem>,
    pub buttons: Vec<Button>,
    pub status: Status,
    /// The page offers Chrome DevTools on the session's inspector through its own server
    /// (`start --web` of a part with an inspector): it shows the `devtools://` address to paste.
    pub devtools: bool,
    /// The terminal panel, only with `--shell`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellView>,
}

/// A change to one terminal of the panel: lines it printed, and what runs in it now.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalChange {
    pub name: String,
    pub lines: Vec<String>,
    pub running: Option<String>,
    pub ended: u64,
    pub last: Option<String>,
}

/// A change sent to connected pages (`event:` is the variant's name, `data:` its JSON).
#[derive(Debug, Clone)]
pub enum Change {
    /// Everything anew (a step appeared, the progress changed).
    State(Box<Snapshot>),
    /// One more line of what happened.
    Log(LogItem),
    /// The session's status.
    Status(Status),
    /// demo: the app's metrics, one sample.
    Metrics(serde_json::Value),
    /// A terminal of the panel printed lines, or a command in it started or ended.
    Terminal(TerminalChange),
    /// The session is over: the last change; each page's stream ends after it.
    End,
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::State(_) => "state",
            Change::Log(_) => "log",
            Change::Status(_) => "status",
            Change::Metrics(_) => "metrics",
            Change::Terminal(_) => "terminal",
            Change::End => "end",
        }
    }
    pub fn data(&self) -> String {
        let json = match self {
            Change::State(s) => serde_json::to_string(s),
            Change::Log(l) => serde_json::to_string(l),
            Change::Status(s) => serde_json::to_string(s),
            Change::Metrics(m) => serde_json::to_string(m),
            Change::Terminal(t) => serde_json::to_string(t),
            Change::End => Ok("{}".to_string()),
        };
        json.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// How many log lines a step keeps (a long command's output scrolls off the top).
const MAX_LOG: usize = 400;

/// The page state and the channel its changes go out on.
pub struct Shared {
    pub page: Snapshot,
    pub changes: broadcast::Sender<Change>,
    /// A step has started since the part did (Markdown shown outside a step is then the closing).
    started_steps: bool,
    in_step: bool,
}

impl Shared {
    pub fn new(view: &'static str, page: PageSetup) -> Shared {
        let (changes, _) = broadcast::channel(1024);
        let buttons = if view == "start" {
            Choice::REMOTE
                .iter()
                .map(|(action, key, _)| Button {
                    action,
                    key: *key,
                    label: label(action),
                })
                .collect()
        } else {
            vec![
                Button {
                    action: "next",
                    key: 'n',
                    label: "Next",
                },
                Button {
                    action: "pause",
                    key: 'p',
                    label: "Pause",
                },
            ]
        };
        Shared {
            page: Snapshot {
                session: crate::util::random::hex(8),
                view,
                lab_title: page.lab_title,
                part: page.part,
                part_title: page.part_title,
                parts: page.parts,
                steps: page
                    .steps
                    .into_iter()
                    .map(|(id, title)| StepItem {
                        id,
                        title,
                        state: "todo",
                    })
                    .collect(),
                intro: Vec::new(),
                step: None,
                closing: Vec::new(),
                log: Vec::new(),
                buttons,
                status: Status::default(),
                devtools: view == "start" && page.inspector,
                shell: None,
            },
            changes,
            started_steps: false,
            in_step: false,
        }
    }

    fn send(&self, change: Change) {
        // No page connected is fine.
        let _ = self.changes.send(change);
    }

    fn state_changed(&self) {
        self.send(Change::State(Box::new(self.page.clone())));
    }

    fn status_changed(&self) {
        self.send(Change::Status(self.page.status.clone()));
    }

    fn log(&mut self, class: &'static str, html: String) {
        let item = LogItem { class, html };
        if self.page.log.len() >= MAX_LOG {
            self.page.log.remove(0);
        }
        self.page.log.push(item.clone());
        self.send(Change::Log(item));
    }

    /// The page's waiting flag, set off by a choice the page sent (until the menu is offered again).
    pub fn chosen(&mut self) {
        self.page.status.waiting = false;
        self.status_changed();
    }

    /// A question for the page to answer (`None`: answered).
    pub fn set_question(&mut self, question: Option<String>) {
        self.page.status.question = question;
        self.status_changed();
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.page.status.paused = paused;
        self.status_changed();
    }

    /// Gives the page its terminal panel, with the main terminal (`--shell`).
    pub fn enable_shell(&mut self) {
        self.page.shell = Some(ShellView {
            terminals: vec![TerminalView {
                name: MAIN_TERMINAL.to_string(),
                running: None,
                ended: 0,
                last: None,
                lines: Vec::new(),
            }],
        });
    }

    /// What runs in the panel's terminal `name` (None: nothing, or no such terminal).
    pub fn terminal_running(&self, name: &str) -> Option<&str> {
        self.page
            .shell
            .as_ref()?
            .terminals
            .iter()
            .find(|t| t.name == name)?
            .running
            .as_deref()
    }

    /// How many of the panel's terminals have a command running.
    pub fn terminals_running(&self) -> usize {
        self.page.shell.as_ref().map_or(0, |s| {
            s.terminals.iter().filter(|t| t.running.is_some()).count()
        })
    }

    /// Changes the terminal `name` (made when new) and sends the change; nothing without a panel.
    fn terminal(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut TerminalView),
        new_lines: Vec<String>,
    ) {
        let Some(shell) = self.page.shell.as_mut() else {
            return;
        };
        let at = match shell.terminals.iter().position(|t| t.name == name) {
            Some(at) => at,
            None => {
                shell.terminals.push(TerminalView {
                    name: name.to_string(),
                    running: None,
                    ended: 0,
                    last: None,
                    lines: Vec::new(),
                });
                shell.terminals.len() - 1
            }
        };
        let view = &mut shell.terminals[at];
        change(view);
        view.lines.extend(new_lines.iter().cloned());
        let over = view.lines.len().saturating_sub(MAX_TERMINAL_LINES);
        view.lines.drain(..over);
        let sent = TerminalChange {
            name: view.name.clone(),
            lines: new_lines,
            running: view.running.clone(),
            ended: view.ended,
            last: view.last.clone(),
        };
        self.send(Change::Terminal(sent));
    }

    /// A command starts in the terminal `name`: echoed as typed, and marked running.
    pub fn terminal_started(&mut self, name: &str, command: &str) {
        let command = command.to_string();
        let echo = echoed(&command);
        self.terminal(name, |t| t.running = Some(command), echo);
    }

    /// Lines a command printed in the terminal `name`.
    pub fn terminal_printed(&mut self, name: &str, line: &str) {
        self.terminal(name, |_| {}, vec![line.to_string()]);
    }

    /// The command in the terminal `name` ended (`how`: `exit status 0`, ...); `said` is printed
    /// after its output when it has something to say (a failure, Ctrl-C, the time limit).
    pub fn terminal_ended(&mut self, name: &str, how: String, said: Option<String>) {
        self.terminal(
            name,
            |t| {
                t.running = None;
                t.ended += 1;
                t.last = Some(how);
            },
            said.into_iter().collect(),
        );
    }

    /// Ends every page's stream (the session is over).
    pub fn end(&self) {
        self.send(Change::End);
    }

    pub fn metrics(&self, sample: serde_json::Value) {
        self.send(Change::Metrics(sample));
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::PartStarted { .. } => {}
            Event::Busy { text, .. } => {
                self.page.status.busy = text.clone();
                if text.is_some() {
                    self.page.status.waiting = false;
                }
                self.status_changed();
            }
            Event::Note { text, tone, .. } => self.log(tone_class(*tone), escape(text)),
            Event::EnvironmentReady { description, .. } => {
                self.log("note", format!("environment: {}", escape(description)))
            }
            Event::EnvironmentFailed { error, .. } => self.log(
                "bad",
                format!("the environment could not be brought up: {}", escape(error)),
            ),
            Event::Shown { markdown, .. } => {
                let html = to_html(markdown);
                if self.in_step {
                    self.log("shown", html);
                } else if self.started_steps {
                    self.page.step = None;
                    self.page.closing.push(html);
                    self.state_changed();
                } else {
                    self.page.intro.push(html);
                    self.state_changed();
                }
            }
            Event::StepStarted {
                step,
                title,
                index,
                of,
                ..
            } => {
                self.started_steps = true;
                self.in_step = true;
                // What happened belongs to its step; the verdict that moved on to this one stays.
                let last = self.page.log.pop().filter(|item| item.class == "pass");
                self.page.log.clear();
                self.page.log.extend(last);
                self.page.closing.clear();
                for item in &mut self.page.steps {
                    if item.id == *step {
                        item.state = "current";
                    } else if item.state == "current" {
                        item.state = "todo";
                    }
                }
                self.page.step = Some(StepView {
                    id: step.clone(),
                    title: title.clone(),
                    index: *index,
                    of: *of,
                    html: String::new(),
                });
                self.state_changed();
            }
            Event::StepShown {
                step,
                title,
                index,
                of,
                instructions,
                commands,
                ..
            } => {
                let mut html = to_html(instructions);
                if let Some(commands) = commands {
                    html.push_str(&to_html(commands));
                }
                self.page.step = Some(StepView {
                    id: step.clone(),
                    title: title.clone(),
                    index: *index,
                    of: *of,
                    html,
                });
                self.state_changed();
            }
            Event::CommandRun { command, .. } => {
                // "Do it for me" types in the same terminal the participant does.
                self.terminal(MAIN_TERMINAL, |_| {}, echoed(command));
                self.log(
                "command",
                format!(
                    "<div class=\"code\"><button type=\"button\" class=\"copy\" title=\"Copy\">Copy</button>\
                     <pre><code>{}</code></pre></div>",
                    escape(command)
                ),
                )
            }
            Event::Output { line, .. } => {
                self.terminal(MAIN_TERMINAL, |_| {}, vec![line.clone()]);
                self.log("output", escape(line))
            }
            Event::ActionPerformed { text, .. } => self.log("action", escape(text)),
            Event::ActivityStarted {
                label, expected_ms, ..
            } => self.log(
                "action",
                format!(
                    "{} (about {:.0} s)",
                    escape(label),
                    *expected_ms as f64 / 1000.0
                ),
            ),
            Event::ActivityFinished { .. } => {}
            Event::Live { values, .. } => {
                if !values.is_empty() {
                    let t = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or_default();
                    let metrics: Vec<serde_json::Value> = values
                        .iter()
                        .map(|v| {
                            serde_json::json!({
                                "name": v.label,
                                "title": chart_title(&v.label),
                                "unit": v.unit,
                                "value": v.value,
                            })
                        })
                        .collect();
                    self.metrics(serde_json::json!({ "t": t, "metrics": metrics }));
                }
            }
            Event::PhaseFailed { step, outcome, .. } => {
                let what = match outcome.phase() {
                    Some(phase) => format!("the {phase} of step {step} failed"),
                    None => format!("step {step} failed"),
                };
                self.log("fail", verdict(&what, outcome));
            }
            Event::CheckJudged { step, outcome, .. } => {
                if outcome.passed() {
                    self.log(
                        "pass",
                        format!("<strong>PASS</strong> step {} done", escape(step)),
                    );
                } else {
                    self.log("fail", verdict(&format!("step {step}: not yet"), outcome));
                }
            }
            Event::MistakesJudged { .. } | Event::MutationsJudged { .. } => {}
            Event::StepFinished {
                part,
                step,
                outcome,
                ..
            } => {
                self.in_step = false;
                if self.page.view == "demo" {
                    // A check's verdict is already shown (check_judged); a solve or setup that
                    // failed before any check is said here.
                    let judged = matches!(outcome.phase(), Some(crate::outcome::Phase::Check));
                    if let (Some(d), false) = (outcome.diagnosis(part), judged) {
                        self.log(
                            "fail",
                            format!(
                                "step {} did not check out<pre>{}</pre>",
                                escape(step),
                                escape(&d)
                            ),
                        );
                    }
                    if let Some(item) = self.page.steps.iter_mut().find(|s| s.id == *step) {
                        item.state = if outcome.passed() { "done" } else { "failed" };
                    }
                    self.state_changed();
                }
            }
            Event::ProgressSaved {
                current,
                done,
                skipped,
                part,
            } => {
                for item in &mut self.page.steps {
                    item.state = if done.contains(&item.id) {
                        "done"
                    } else if skipped.contains(&item.id) {
                        "skipped"
                    } else if current.as_ref() == Some(&item.id) {
                        "current"
                    } else {
                        "todo"
                    };
                }
                if let Some(summary) = self.page.parts.iter_mut().find(|p| p.id == *part) {
                    summary.done = done.len();
                }
                self.state_changed();
            }
            Event::Waiting { text, choices, .. } => {
                self.page.status.waiting = true;
                self.page.status.busy = None;
                if self.page.view == "demo" && choices.is_empty() {
                    self.log("note", escape(text));
                }
                self.status_changed();
            }
            Event::EnvironmentKept { description, .. } => self.log(
                "note",
                format!("keeping the environment: {}", escape(description)),
            ),
            Event::PartFinished { passed, failed, .. } => {
                self.page.status.waiting = false;
                self.page.status.ended = Some(if self.page.view == "demo" {
                    format!("the demo is over: {passed} passed, {failed} failed")
                } else {
                    "the part is complete".into()
                });
                self.state_changed();
            }
            Event::RunStarted { .. } | Event::RunFinished { .. } => {}
            Event::Interrupted { why } => {
                self.page.status.waiting = false;
                self.page.status.ended = Some(format!("the session stopped: {why}"));
                self.status_changed();
            }
        }
    }
}

/// A command as a terminal shows it typed: `$ ` before its first line, `> ` before the others.
fn echoed(command: &str) -> Vec<String> {
    command
        .trim_end_matches('\n')
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{}{l}", if i == 0 { "$ " } else { "> " }))
        .collect()
}

fn label(action: &str) -> &'static str {
    match action {
        "check" => "Check my work",
        "do" => "Do it for me",
        "hint" => "Hint",
        "commands" => "Show the commands",
        "skip" => "Skip",
        "back" => "Back",
        _ => "?",
    }
}

/// A chart's title for a live signal (the health request's time is the event loop's lag as a
/// request feels it).
fn chart_title(label: &str) -> String {
    match label {
        "health" => "event-loop lag (health request)".into(),
        "heap" => "heap used".into(),
        "external" => "external memory".into(),
        other => other.to_string(),
    }
}

fn tone_class(tone: Tone) -> &'static str {
    match tone {
        Tone::Plain => "note",
        Tone::Good => "good",
        Tone::Bad => "bad",
    }
}

/// A failed verdict: what, then expected / saw / hint (the terminal's lines, as a definition list).
fn verdict(what: &str, outcome: &Outcome) -> String {
    let mut html = format!("<strong>{}</strong>", escape(what));
    match outcome.failure() {
        Some(f) => {
            html.push_str("<dl>");
            html.push_str(&format!("<dt>failed</dt><dd>{}</dd>", escape(&f.what)));
            html.push_str(&format!(
                "<dt>expected</dt><dd><code>{}</code></dd>",
                escape(&f.expected)
            ));
            html.push_str(&format!(
                "<dt>saw</dt><dd><pre>{}</pre></dd>",
                escape(&f.saw)
            ));
            if let Some(hint) = &f.hint {
                html.push_str(&format!(
                    "<dt>hint</dt><dd class=\"hint\">{}</dd>",
                    escape(hint)
                ));
            }
            html.push_str("</dl>");
        }
        None => {
            html.push_str("<pre>");
            html.push_str(&escape(&diagnosis_lines(outcome).join("\n")));
            html.push_str("</pre>");
        }
    }
    html
}

/// What the page knows before the session says anything.
pub struct PageSetup {
    /// The part's environment has an inspector: the page offers Chrome DevTools through its
    /// server (`start --web`).
    pub inspector: bool,
    pub lab_title: String,
    pub part: String,
    pub part_title: String,
    pub steps: Vec<(String, String)>,
    pub parts: Vec<PartSummary>,
}

/// The browser's reporter: every event updates the page state and goes out to connected pages.
pub struct GuideReporter {
    shared: Arc<Mutex<Shared>>,
}

impl GuideReporter {
    pub fn new(shared: Arc<Mutex<Shared>>) -> GuideReporter {
        GuideReporter { shared }
    }
}

impl Reporter for GuideReporter {
    fn event(&mut self, event: &Event) {
        self.shared.lock().expect("page state lock").apply(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, Phase, Problem};

    fn shared() -> Shared {
        Shared::new(
            "start",
            PageSetup {
                inspector: false,
                lab_title: "Lab".into(),
                part: "part2".into(),
                part_title: "Two".into(),
                steps: vec![("2.0".into(), "A".into()), ("2.1".into(), "B".into())],
                parts: vec![],
            },
        )
    }

    #[test]
    fn a_failed_check_is_streamed_with_expected_saw_and_hint() {
        let mut s = shared();
        let mut pages = s.changes.subscribe();
        let failure = Failure::new("GET /api/lab/status: status", "200", "404 not found")
            .hint(Some("enable <the> lab"));
        s.apply(&Event::CheckJudged {
            part: "part2".into(),
            step: "2.1".into(),
            before_solve: false,
            outcome: Outcome::failed(Phase::Check, Problem::Check(failure)),
        });
        let Ok(Change::Log(item)) = pages.try_recv() else {
            panic!("no log change")
        };
        assert_eq!(item.class, "fail");
        assert!(
            item.html.contains("<dt>expected</dt><dd><code>200</code>"),
            "{}",
            item.html
        );
        assert!(
            item.html.contains("<pre>404 not found</pre>"),
            "{}",
            item.html
        );
        assert!(
            item.html.contains("enable &lt;the&gt; lab"),
            "{}",
            item.html
        );
    }

    #[test]
    fn a_terminal_keeps_its_last_lines_and_says_how_its_command_ended() {
        let mut s = shared();
        s.apply(&Event::Output {
            part: "part2".into(),
            step: None,
            line: "before the panel".into(),
        });
        assert!(s.page.shell.is_none(), "no panel without --shell");
        s.enable_shell();
        let mut pages = s.changes.subscribe();
        s.terminal_started("2", "lab-runner tunnel\n  --port 9229");
        for n in 0..MAX_TERMINAL_LINES + 10 {
            s.terminal_printed("2", &format!("line {n}"));
        }
        s.terminal_ended("2", "interrupted (Ctrl-C)".into(), Some("^C".into()));
        let shell = s.page.shell.as_ref().unwrap();
        assert_eq!(shell.terminals[0].name, MAIN_TERMINAL);
        let other = &shell.terminals[1];
        assert_eq!(other.lines.len(), MAX_TERMINAL_LINES);
        assert_eq!(other.lines.last().unwrap(), "^C");
        assert_eq!(other.lines[0], "line 11");
        assert_eq!((other.ended, other.running.as_deref()), (1, None));
        let Ok(Change::Terminal(first)) = pages.try_recv() else {
            panic!("no terminal change")
        };
        assert_eq!(first.lines, ["$ lab-runner tunnel", ">   --port 9229"]);
        assert_eq!(
            first.running.as_deref(),
            Some("lab-runner tunnel\n  --port 9229")
        );
    }

    #[test]
    fn progress_marks_the_sidebar_and_a_menu_sets_waiting() {
        let mut s = shared();
        s.apply(&Event::ProgressSaved {
            part: "part2".into(),
            current: Some("2.1".into()),
            done: vec!["2.0".into()],
            skipped: vec![],
        });
        let states: Vec<&str> = s.page.steps.iter().map(|i| i.state).collect();
        assert_eq!(states, ["done", "current"]);
        assert!(!s.page.status.waiting);
        s.apply(&Event::Waiting {
            part: None,
            text: "choose".into(),
            choices: vec!["[c] check my work".into()],
        });
        assert!(s.page.status.waiting);
        s.chosen();
        assert!(!s.page.status.waiting);
    }
}
