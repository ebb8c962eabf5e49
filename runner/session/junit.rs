//! JUnit XML for CI systems (quick-junit), as a reporter of verify's events: one suite per part,
//! one case per step, written when the run ends; with `--mutations`, one case per mutant too (a
//! survivor fails, an `unchecked:` one is skipped with its reason) and the mutation scores as the
//! suite's properties.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::events::{Event, Reporter};
use super::mutations::{MutantOutcome, Score, StepMutations};
use super::report::Output;
use crate::outcome::{Outcome, StepResult};

/// Collects the steps' results and writes the report at the end.
pub struct JunitReporter {
    path: PathBuf,
    lab: String,
    results: Vec<StepResult>,
    mutated: Vec<StepMutations>,
    /// Where it says that the report was written.
    out: Output,
}

impl JunitReporter {
    pub fn new(path: PathBuf, out: Output) -> JunitReporter {
        JunitReporter {
            path,
            lab: String::new(),
            results: Vec::new(),
            mutated: Vec::new(),
            out,
        }
    }
}

impl Reporter for JunitReporter {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted { lab, .. } => self.lab = lab.clone(),
            Event::StepFinished {
                part,
                step,
                title,
                outcome,
                duration_ms,
            } => self.results.push(StepResult {
                part: part.clone(),
                step: step.clone(),
                title: title.clone(),
                duration: std::time::Duration::from_millis(*duration_ms),
                outcome: outcome.clone(),
            }),
            Event::MutationsJudged { mutations } => self.mutated.push(mutations.clone()),
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<()> {
        write(&self.path, &self.lab, &self.results, &self.mutated)?;
        let _ = writeln!(self.out, "JUnit report written to {}", self.path.display());
        Ok(())
    }
}

pub fn write(
    path: &Path,
    lab_id: &str,
    results: &[StepResult],
    mutated: &[StepMutations],
) -> Result<()> {
    let mut report = Report::new(format!("lab-runner verify {lab_id}"));
    // Each part once, in the order it first finished a step (parts run at once interleave).
    let mut parts: Vec<&str> = Vec::new();
    for r in results {
        if !parts.contains(&r.part.as_str()) {
            parts.push(&r.part);
        }
    }
    for part in parts {
        let mut suite = TestSuite::new(format!("{lab_id}.{part}"));
        for r in results.iter().filter(|r| r.part == part) {
            let status = match r.diagnosis() {
                None => TestCaseStatus::success(),
                Some(diagnosis) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let first = diagnosis.lines().next().unwrap_or("failed").to_string();
                    status.set_message(first);
                    status.set_description(diagnosis);
                    match (&r.outcome, r.outcome.phase()) {
                        (Outcome::EnvironmentFailed { .. }, _) => status.set_type("environment"),
                        (_, Some(phase)) => status.set_type(phase.to_string()),
                        (_, None) => status.set_type("failure"),
                    };
                    status
                }
            };
            let mut case = TestCase::new(format!("{} {}", r.step, r.title), status);
            case.set_classname(format!("{lab_id}.{part}"));
            case.set_time(r.duration);
            suite.add_test_case(case);
        }
        add_mutants(&mut suite, lab_id, part, mutated);
        report.add_test_suite(suite);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("Failed to create {}", parent.display()))?;
    }
    let file = std::fs::File::create(path)
        .with_context(|| format!("Failed to create the JUnit report {}", path.display()))?;
    report
        .serialize(file)
        .with_context(|| format!("Failed to write the JUnit report {}", path.display()))
}

/// The part's mutants as cases, and its mutation score as properties.
fn add_mutants(suite: &mut TestSuite, lab_id: &str, part: &str, mutated: &[StepMutations]) {
    let of_part: Vec<&StepMutations> = mutated.iter().filter(|m| m.part == part).collect();
    if of_part.is_empty() {
        return;
    }
    for m in &of_part {
        if m.skipped.is_some() {
            continue;
        }
        let score = m.score();
        suite.add_property((
            format!("mutation-score.{}", m.step),
            format!("{:.3}", score.ratio()),
        ));
        for r in &m.mutants {
            let status = match &r.outcome {
                MutantOutcome::Caught { .. } => TestCaseStatus::success(),
                MutantOutcome::Unchecked { reason } => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("unchecked: {reason}"));
                    status
                }
                MutantOutcome::Survived => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message("the check still passes without it");
                    status.set_type("mutant survived");
                    status
                }
                MutantOutcome::Error { message } => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                    status.set_message(message.lines().next().unwrap_or("not judged").to_string());
                    status.set_description(message.clone());
                    status.set_type("mutant not judged");
                    status
                }
            };
            let mut case = TestCase::new(
                format!("{} without {} `{}`", m.step, r.mutant.id, r.mutant.left_out),
                status,
            );
            case.set_classname(format!("{lab_id}.{part}.mutants"));
            case.set_time(std::time::Duration::from_secs_f64(r.seconds));
            suite.add_test_case(case);
        }
    }
    let score = Score::of(of_part.iter().flat_map(|m| &m.mutants));
    suite.add_property(("mutation-score", format!("{:.3}", score.ratio()).as_str()));
    suite.add_property(("mutants-caught", score.caught.to_string().as_str()));
    suite.add_property(("mutants-unchecked", score.unchecked.to_string().as_str()));
    suite.add_property(("mutants-survived", score.survived.to_string().as_str()));
}
