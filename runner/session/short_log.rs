//! What `start --web` shows in its terminal while the guide is in the browser: a short live log,
//! one line per thing that happened (the environment, each step reached, each command run for the
//! participant, each check's verdict with the first line of its diagnosis), each line stamped with
//! the time since the session began. The instructions, the commands' output and the hints are on
//! the page; the menu's keys still work here, and the log says so once.

use std::time::Instant;

use super::events::{Event, Reporter, Tone};
use super::terminal::Terminal;
use crate::outcome::Phase;

pub struct ShortLogReporter {
    term: Terminal,
    began: Instant,
    /// The menu's keys were named once (they are the same at every step).
    keys_said: bool,
    /// The last `busy` text, so a repeated one is not logged twice.
    busy: Option<String>,
}

/// A line of the log: its width is the terminal's, a longer one ends in `…` (the page has all).
const ELLIPSIS: char = '…';

impl ShortLogReporter {
    pub fn new(term: Terminal) -> ShortLogReporter {
        ShortLogReporter {
            term,
            began: Instant::now(),
            keys_said: false,
            busy: None,
        }
    }

    /// `  m:ss  text`, cut to the terminal's width.
    fn line(&self, mark: Mark, text: &str) {
        let secs = self.began.elapsed().as_secs();
        let stamp = format!("{:>3}:{:02}", secs / 60, secs % 60);
        let text = text.lines().next().unwrap_or_default();
        let width = self.term.width().unwrap_or(usize::MAX);
        // stamp, two spaces, the mark and a space.
        let room = width.saturating_sub(stamp.chars().count() + 4).max(20);
        let text: String = if text.chars().count() > room {
            let mut cut: String = text.chars().take(room - 1).collect();
            cut.push(ELLIPSIS);
            cut
        } else {
            text.to_string()
        };
        let (symbol, plain, color) = match mark {
            Mark::Info => ("·", "·", "2"),
            Mark::Good => ("✓", "+", "32"),
            Mark::Bad => ("✗", "!", "31"),
            Mark::Step => ("▸", ">", "1"),
            Mark::Command => ("$", "$", "36"),
        };
        if self.term.styled() {
            println!("\x1b[2m{stamp}\x1b[0m  \x1b[{color}m{symbol} {text}\x1b[0m");
        } else {
            println!("{stamp}  {plain} {text}");
        }
    }
}

#[derive(Clone, Copy)]
enum Mark {
    Info,
    Good,
    Bad,
    Step,
    Command,
}

impl Reporter for ShortLogReporter {
    fn event(&mut self, event: &Event) {
        match event {
            Event::PartStarted {
                title, lab_title, ..
            } => self.line(Mark::Info, &format!("{lab_title} — {title}")),
            Event::Busy {
                text: Some(text), ..
            } if self.busy.as_ref() != Some(text) => {
                self.line(Mark::Info, &format!("{text}…"));
                self.busy = Some(text.clone());
            }
            Event::Busy { text: None, .. } => self.busy = None,
            Event::Note { text, tone, .. } => match tone {
                // "checking…", "doing it for you:": the page shows them; the verdict is logged.
                Tone::Plain => {}
                Tone::Good => self.line(Mark::Good, text),
                Tone::Bad => self.line(Mark::Bad, text),
            },
            Event::EnvironmentReady {
                description,
                duration_ms,
                ..
            } => self.line(
                Mark::Good,
                &format!(
                    "environment ready in {:.1} s: {description}",
                    *duration_ms as f64 / 1000.0
                ),
            ),
            Event::EnvironmentFailed { error, .. } => self.line(
                Mark::Bad,
                &format!("the environment did not start: {error}"),
            ),
            Event::StepShown {
                step,
                title,
                index,
                of,
                ..
            } => self.line(Mark::Step, &format!("step {step} — {title} ({index}/{of})")),
            Event::CommandRun { command, .. } => self.line(Mark::Command, command),
            Event::PhaseFailed { step, outcome, .. } => {
                let what = match outcome.phase() {
                    Some(Phase::Setup) => "the setup",
                    Some(Phase::Cleanup) => "the cleanup",
                    _ => "doing it for you",
                };
                let why = outcome.problem_text().unwrap_or_default();
                self.line(Mark::Bad, &format!("step {step}: {what} failed: {why}"));
            }
            Event::CheckJudged { step, outcome, .. } => match outcome.failure() {
                None if outcome.passed() => self.line(Mark::Good, &format!("step {step} done")),
                Some(failure) => self.line(
                    Mark::Bad,
                    &format!(
                        "step {step}: {} (expected {}, saw {})",
                        failure.what, failure.expected, failure.saw
                    ),
                ),
                None => self.line(
                    Mark::Bad,
                    &format!(
                        "step {step}: {}",
                        outcome.problem_text().unwrap_or_default()
                    ),
                ),
            },
            Event::Waiting { choices, .. } if !choices.is_empty() && !self.keys_said => {
                self.keys_said = true;
                let keys: Vec<&str> = choices.iter().map(String::as_str).collect();
                self.line(
                    Mark::Info,
                    "the guide is in your browser; its buttons and these keys do the same:",
                );
                self.term.choices(&keys);
            }
            Event::EnvironmentKept { base_url, .. } => self.line(
                Mark::Info,
                &format!(
                    "keeping the environment (app at {}); `lab-runner cleanup` removes it",
                    base_url.as_deref().unwrap_or_default()
                ),
            ),
            Event::Interrupted { why } => self.line(Mark::Bad, &format!("stopped: {why}")),
            _ => {}
        }
    }
}
