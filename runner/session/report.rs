//! What `verify` prints, as a reporter of its events: one line per step with its duration, the
//! diagnosis of a failure, and a summary line whose counts never lie.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use super::events::{Event, Reporter};
use crate::outcome::Outcome;

/// Where human output goes: stdout, or stderr when stdout carries JSON lines.
pub type Output = Box<dyn Write + Send>;

/// verify's terminal lines.
pub struct VerifyReporter {
    out: Output,
    /// With `--verbose`: what each action does, the commands and their output.
    verbose: bool,
    /// The title of each part (parts may run at once: `verify --jobs`).
    titles: BTreeMap<String, String>,
    /// Why a part's environment could not be brought up, until its part finishes.
    environment_failed: BTreeMap<String, String>,
    /// Failed steps, for the summary: (part, step, title).
    failed: Vec<(String, String, String)>,
    /// The counts of the run, once it finished.
    summary: Option<(usize, usize)>,
    /// Lines about a part's running step's mistakes and mutants, shown under its line.
    pending: BTreeMap<String, Vec<String>>,
    /// Every step's mutants (`--mutations`), for the scores in the summary.
    mutated: Vec<super::mutations::StepMutations>,
}

impl VerifyReporter {
    pub fn new(out: Output, verbose: bool) -> VerifyReporter {
        VerifyReporter {
            out,
            verbose,
            titles: BTreeMap::new(),
            environment_failed: BTreeMap::new(),
            failed: Vec::new(),
            summary: None,
            pending: BTreeMap::new(),
            mutated: Vec::new(),
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

impl Reporter for VerifyReporter {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                lab,
                title,
                parts,
                steps,
            } => self.line(&format!(
                "Verifying lab {lab} ({title}): {} part(s), {steps} step(s)",
                parts.len()
            )),
            Event::PartStarted { part, title, .. } => {
                self.titles.insert(part.clone(), title.clone());
                self.environment_failed.remove(part);
            }
            Event::Note { text, .. } => self.line(&format!("       · {text}")),
            Event::EnvironmentReady {
                part,
                description,
                duration_ms,
                ..
            } => {
                let title = self.titles.get(part).cloned().unwrap_or_default();
                self.line(&format!(
                    "   START [{:>8.3}s] {part} {title} — {description}",
                    *duration_ms as f64 / 1000.0
                ))
            }
            Event::EnvironmentFailed { part, error, .. } => {
                self.environment_failed.insert(
                    part.clone(),
                    Outcome::EnvironmentFailed {
                        error: error.clone(),
                    }
                    .diagnosis(part)
                    .unwrap_or_default(),
                );
            }
            Event::StepFinished {
                part,
                step,
                title,
                outcome,
                duration_ms,
            } => {
                self.line(&step_line(
                    part,
                    step,
                    title,
                    outcome,
                    Duration::from_millis(*duration_ms),
                ));
                for line in self.pending.remove(part).unwrap_or_default() {
                    self.line(&line);
                }
                if !outcome.passed() {
                    self.failed
                        .push((part.clone(), step.clone(), title.clone()));
                }
                if !matches!(outcome, Outcome::EnvironmentFailed { .. })
                    && let Some(diagnosis) = outcome.diagnosis(part)
                {
                    self.line(&indent(&diagnosis, 6));
                }
            }
            Event::MistakesJudged { part, mistakes, .. } => {
                let rejected: Vec<&str> = mistakes
                    .iter()
                    .filter(|m| m.rejected())
                    .map(|m| m.name.as_str())
                    .collect();
                if !rejected.is_empty() {
                    let seconds: f64 = mistakes.iter().map(|m| m.seconds).sum();
                    self.pending.entry(part.clone()).or_default().push(format!(
                        "           · rejected with its hint [{seconds:.1}s]: {}",
                        rejected.join("; ")
                    ));
                }
            }
            Event::MutationsJudged { mutations } => {
                let pending = self.pending.entry(mutations.part.clone()).or_default();
                pending.push(match &mutations.skipped {
                    Some(why) => format!("           · mutations: none ({why})"),
                    None => format!(
                        "           · mutations [{:.1}s]: {}",
                        mutations.seconds,
                        mutations.score().text()
                    ),
                });
                self.mutated.push(mutations.clone());
            }
            Event::PartFinished { part, .. } => {
                if let Some(diagnosis) = self.environment_failed.remove(part) {
                    self.line(&indent(&diagnosis, 6));
                }
            }
            Event::ActionPerformed { text, .. } if self.verbose => {
                self.line(&format!("           · {text}"))
            }
            Event::CommandRun { command, .. } if self.verbose => {
                for (i, line) in command.lines().enumerate() {
                    self.line(&format!(
                        "           {} {line}",
                        if i == 0 { "$" } else { " " }
                    ));
                }
            }
            Event::Output { line, .. } if self.verbose => {
                self.line(&format!("             {line}"))
            }
            Event::EnvironmentKept {
                part,
                description,
                base_url,
                token,
                artifacts,
            } => {
                self.line(&format!(
                    "       · keeping the {part} environment: {description} (remove it with `lab-runner cleanup`)"
                ));
                if let Some(url) = base_url {
                    self.line(&format!(
                        "       · app: {url}  token: {}",
                        token.as_deref().unwrap_or_default()
                    ));
                }
                self.line(&format!("       · artifacts: {artifacts}"));
            }
            Event::RunFinished {
                passed,
                failed,
                duration_ms,
            } => {
                self.line(&format!(
                    "------------\n     Summary [{:>8.3}s] {} step(s) run",
                    *duration_ms as f64 / 1000.0,
                    passed + failed
                ));
                for (part, step, title) in std::mem::take(&mut self.failed) {
                    self.line(&format!("        FAIL {part} {step:<4} {title}"));
                }
                if !self.mutated.is_empty() {
                    for line in super::mutations::summary(&self.mutated) {
                        self.line(&line);
                    }
                }
                self.summary = Some((*passed, *failed));
            }
            _ => {}
        }
    }

    /// The last line: `7 passed, 0 failed` (after the JUnit reporter said where its report is).
    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some((passed, failed)) = self.summary.take() {
            self.line(&format!("{passed} passed, {failed} failed"));
        }
        Ok(())
    }
}

/// `    PASS [   0.412s] part2 2.0  Confirm the baseline`
pub fn step_line(part: &str, step: &str, title: &str, outcome: &Outcome, took: Duration) -> String {
    let status = if outcome.passed() { "PASS" } else { "FAIL" };
    format!(
        "{:>8} [{:>8.3}s] {} {:<4} {}",
        status,
        took.as_secs_f64(),
        part,
        step,
        title
    )
}

pub fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
