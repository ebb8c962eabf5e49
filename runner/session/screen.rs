//! What `demo` and `start` show in the terminal, as a reporter of their events: the rendered
//! markdown, each step's heading and instructions, the narration of what the runner does, results
//! and diagnoses, the menu, spinners while the runner is busy, and the demo's live line.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::events::{Event, Reporter, Tone};
use super::report::indent;
use super::terminal::{Countdown, Terminal, diagnosis_lines};
use crate::outcome::{Outcome, Phase};

/// Which front end the screen belongs to: they show the same events a little differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// An instructor's screen: commands with their output; a result line after each step.
    Demo,
    /// A participant's screen: the result of each check as it is judged, and the menu.
    Start,
}

pub struct ScreenReporter {
    term: Terminal,
    screen: Screen,
    /// Shown while the runner is busy (bringing up the environment, ...).
    spinner: Option<ProgressBar>,
    /// The demo's live line; narration prints above it.
    live: Option<ProgressBar>,
    /// Countdowns of activities under way, by label.
    countdowns: Vec<(String, Countdown)>,
}

impl ScreenReporter {
    pub fn new(term: Terminal, screen: Screen) -> ScreenReporter {
        ScreenReporter {
            term,
            screen,
            spinner: None,
            live: None,
            countdowns: Vec::new(),
        }
    }

    /// A line of narration, through the live line when one is shown (so it does not tear it).
    fn print(&self, line: String) {
        match &self.live {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// One line of what the runner did, as `  · text`, its continuation lines under the text so a
    /// line never wraps at the terminal's edge.
    fn narrate(&self, line: &str) {
        let bullet = if self.term.styled() {
            "  \x1b[2m·\x1b[0m "
        } else {
            "  · "
        };
        let width = self
            .term
            .width()
            .map_or(usize::MAX, |w| w.saturating_sub(4).max(20));
        if line.chars().count() <= width {
            return self.print(format!("{bullet}{line}"));
        }
        for (i, piece) in lab_util::text::wrap(line, width).into_iter().enumerate() {
            let lead = if i == 0 { bullet } else { "    " };
            self.print(format!("{lead}{piece}"));
        }
    }

    fn diagnosis(&self, outcome: &Outcome) {
        let lines = diagnosis_lines(outcome);
        if let Some((what, details)) = lines.split_first() {
            self.term.bad(what);
            for line in details {
                println!("{line}");
            }
        }
    }

    fn note(&self, text: &str, tone: Tone) {
        match tone {
            Tone::Plain => self.term.note(text),
            Tone::Good => self.term.good(text),
            Tone::Bad => self.term.bad(text),
        }
    }
}

impl Reporter for ScreenReporter {
    fn event(&mut self, event: &Event) {
        match event {
            Event::PartStarted {
                title, lab_title, ..
            } => self.term.markdown(&format!("# {lab_title} — {title}\n")),
            Event::Busy { text: Some(text), .. } => {
                if let Some(old) = self.spinner.take() {
                    old.finish_and_clear();
                }
                self.spinner = Some(self.term.spinner(text));
            }
            Event::Busy { text: None, .. } => {
                if let Some(spinner) = self.spinner.take() {
                    spinner.finish_and_clear();
                }
            }
            Event::Note { text, tone, .. } => match &self.spinner {
                Some(spinner) => spinner.set_message(text.clone()),
                None => self.note(text, *tone),
            },
            Event::EnvironmentReady { description, .. } => {
                self.term.note(&format!("environment: {description}"))
            }
            Event::Shown { markdown, .. } => self.term.markdown(markdown),
            Event::StepShown {
                step,
                title,
                index,
                of,
                instructions,
                commands,
                ..
            } => {
                self.term
                    .markdown(&format!("\n## Step {step} — {title}  ({index}/{of})\n"));
                self.term.markdown(instructions);
                if let Some(commands) = commands {
                    self.term.markdown(commands);
                }
            }
            Event::CommandRun { command, .. } => {
                for (i, line) in command.lines().enumerate() {
                    let prompt = if i == 0 { "$" } else { " " };
                    if self.term.styled() {
                        self.print(format!("  \x1b[36m{prompt} {line}\x1b[0m"));
                    } else {
                        self.print(format!("  {prompt} {line}"));
                    }
                }
            }
            // A participant sees their own commands' output in their own terminal.
            Event::Output { line, .. } if self.screen == Screen::Demo => {
                if self.term.styled() {
                    self.print(format!("    \x1b[2m{line}\x1b[0m"));
                } else {
                    self.print(format!("    {line}"));
                }
            }
            Event::ActionPerformed { text, .. } => self.narrate(text),
            Event::ActivityStarted {
                label, expected_ms, ..
            } => {
                let expected = Duration::from_millis(*expected_ms);
                if self.term.styled() {
                    self.countdowns
                        .push((label.clone(), Countdown::start(label, expected)));
                } else {
                    self.print(format!(
                        "  · {label} (about {:.0} s)",
                        expected.as_secs_f64()
                    ));
                }
            }
            Event::ActivityFinished { label, .. } => {
                if let Some(at) = self.countdowns.iter().rposition(|(l, _)| l == label) {
                    self.countdowns.remove(at);
                }
            }
            Event::Live { text: Some(text), .. } if self.term.styled() => {
                let bar = self.live.get_or_insert_with(|| {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(text.clone());
            }
            // No text but values: a sample for the presenter's charts only.
            Event::Live {
                text: None, values, ..
            } if values.is_empty() => {
                if let Some(bar) = self.live.take() {
                    bar.finish_and_clear();
                }
            }
            Event::PhaseFailed { step, outcome, .. } => match outcome.phase() {
                Some(Phase::Cleanup) => self.term.note(&format!(
                    "the cleanup of step {step} failed: {}",
                    outcome.problem_text().unwrap_or_default()
                )),
                Some(Phase::Setup) => {
                    self.term.bad(&format!("the setup of step {step} failed"));
                    self.diagnosis(outcome);
                }
                _ => {
                    self.term.bad("the solve failed");
                    self.diagnosis(outcome);
                }
            },
            Event::CheckJudged { step, outcome, .. } if self.screen == Screen::Start => {
                if outcome.passed() {
                    self.term.good(&format!("step {step} done"));
                } else {
                    self.diagnosis(outcome);
                }
            }
            Event::StepFinished {
                part,
                step,
                outcome,
                ..
            } if self.screen == Screen::Demo => match outcome.diagnosis(part) {
                None => self.term.good(&format!("step {step} checked")),
                Some(diagnosis) => {
                    self.term.bad(&format!("step {step} did not check out"));
                    println!("{}", indent(&diagnosis, 4));
                }
            },
            Event::Waiting { text, choices, .. } => {
                if choices.is_empty() {
                    self.term.note(text);
                } else {
                    let items: Vec<&str> = choices.iter().map(String::as_str).collect();
                    self.term.choices(&items);
                }
            }
            Event::EnvironmentKept {
                description,
                base_url,
                ..
            } => self.term.note(&match self.screen {
                Screen::Demo => {
                    format!("keeping the environment: {description} (lab-runner cleanup removes it)")
                }
                Screen::Start => format!(
                    "keeping the environment ({description}); app at {}; remove it with `lab-runner cleanup`",
                    base_url.as_deref().unwrap_or_default()
                ),
            }),
            Event::PartFinished { passed, failed, .. } if self.screen == Screen::Demo => {
                println!("{passed} passed, {failed} failed")
            }
            _ => {}
        }
    }
}

impl Drop for ScreenReporter {
    fn drop(&mut self) {
        for bar in [self.spinner.take(), self.live.take()]
            .into_iter()
            .flatten()
        {
            bar.finish_and_clear();
        }
    }
}

/// The lines a `lab-runner check` from another terminal prints while `start` judges its check:
/// what this screen shows of it, plain.
pub struct RemoteCheckReporter {
    lines: tokio::sync::mpsc::UnboundedSender<String>,
}

impl RemoteCheckReporter {
    pub fn new(lines: tokio::sync::mpsc::UnboundedSender<String>) -> RemoteCheckReporter {
        RemoteCheckReporter { lines }
    }

    fn send(&self, line: String) {
        let _ = self.lines.send(line);
    }
}

impl Reporter for RemoteCheckReporter {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Note { text, tone, .. } => self.send(match tone {
                Tone::Plain => text.clone(),
                Tone::Good => format!("PASS {text}"),
                Tone::Bad => format!("FAIL {text}"),
            }),
            Event::ActionPerformed { text, .. } => self.send(format!("  · {text}")),
            Event::ActivityStarted {
                label, expected_ms, ..
            } => self.send(format!(
                "  · {label} (about {:.0} s)",
                *expected_ms as f64 / 1000.0
            )),
            Event::CheckJudged { step, outcome, .. } => {
                if outcome.passed() {
                    self.send(format!("PASS step {step} done"));
                } else {
                    for (i, line) in diagnosis_lines(outcome).into_iter().enumerate() {
                        self.send(if i == 0 { format!("FAIL {line}") } else { line });
                    }
                }
            }
            _ => {}
        }
    }
}
