//! JUnit XML for CI systems (quick-junit): one suite per part, one case per step.

use std::path::Path;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::report::{Outcome, StepResult};

pub fn write(path: &Path, lab_id: &str, results: &[StepResult]) -> Result<()> {
    let mut report = Report::new(format!("lab-runner verify {lab_id}"));
    let mut parts: Vec<&str> = results.iter().map(|r| r.part.as_str()).collect();
    parts.dedup();
    for part in parts {
        let mut suite = TestSuite::new(format!("{lab_id}.{part}"));
        for r in results.iter().filter(|r| r.part == part) {
            let status = match &r.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed { phase, diagnosis } => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let first = diagnosis.lines().next().unwrap_or("failed").to_string();
                    status.set_message(first);
                    status.set_description(diagnosis.clone());
                    match phase {
                        Some(phase) => status.set_type(phase.to_string()),
                        None => status.set_type("environment"),
                    };
                    status
                }
            };
            let mut case = TestCase::new(format!("{} {}", r.step, r.title), status);
            case.set_classname(format!("{lab_id}.{part}"));
            case.set_time(r.duration);
            suite.add_test_case(case);
        }
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
