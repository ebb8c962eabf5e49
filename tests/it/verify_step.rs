//! `verify --step ID`: one step, after the steps before it in its part are solved (setup, solve,
//! check, cleanup); a step before it that does not pass as solved is the step's failure, saying
//! which; an unknown step is a usage error.

use crate::generic_checks::edited_fixture;
use crate::support;

use support::{fixture, lab_runner, text};

fn verify_step(lab: &std::path::Path, step: &str) -> std::process::Output {
    lab_runner()
        .args(["verify", "--backend", "process", "--step", step, "--lab"])
        .arg(lab)
        .output()
        .expect("lab-runner runs")
}

#[test]
fn one_step_runs_after_the_steps_before_it_are_solved() {
    // 1.3 stops the listener 1.2 starts, on the port 1.2's check saved: it needs 1.1 and 1.2 done.
    let out = verify_step(&fixture("verify/generic-checks"), "1.3");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "solving 1.1, 1.2 first (setup, solve, check, cleanup), to reach the start of step 1.3"
        ),
        "{all}"
    );
    assert!(
        stdout.contains("PASS") && stdout.contains("1.3  Stop the listener"),
        "{all}"
    );
    assert!(
        !stdout.contains("1.2  Open a listener"),
        "only 1.3 is reported: {all}"
    );
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"), "{all}");
}

#[test]
fn a_step_before_it_that_fails_is_the_steps_failure() {
    let lab = edited_fixture(|part| {
        part.replace(
            r#"curl -sS --fail "$BASE/version" > version.json"#,
            r#"curl -sS --fail "$BASE/version" > ver.json"#,
        )
    });
    let out = verify_step(lab.path(), "1.2");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("replaying step 1.1 (check) to reach the start of step 1.2")
            && stdout.contains("the file version.json"),
        "{all}"
    );
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"), "{all}");
}

#[test]
fn an_unknown_step_is_a_usage_error() {
    let out = verify_step(&fixture("verify/generic-checks"), "9.9");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("there is no step `9.9` in the lab"), "{all}");
}
