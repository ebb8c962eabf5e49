//! `lab-runner lint`: one broken fixture per error class; each message names file:line:column.

use crate::support;

use support::{fixture, lab_runner, text};

/// Runs lint on tests/fixtures/lint/<case> and returns (exit code, stdout).
fn lint(case: &str) -> (i32, String) {
    let out = lab_runner()
        .arg("lint")
        .arg(fixture(&format!("lint/{case}")))
        .output()
        .expect("lab-runner runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Asserts that lint fails with exit code 2 and a line `<file>:<line>:<col>: ...<needle>...`.
fn assert_problem(case: &str, file: &str, line: usize, column: usize, needle: &str) {
    let (code, out) = lint(case);
    assert_eq!(code, 2, "lint {case} should exit 2:\n{out}");
    let location = format!("{file}:{line}:{column}: ");
    let hit = out.lines().find(|l| l.contains(&location));
    let hit = hit.unwrap_or_else(|| panic!("lint {case}: no problem at {location}\n{out}"));
    assert!(
        hit.contains(needle),
        "lint {case}: expected {needle:?} in\n{hit}"
    );
}

#[test]
fn the_valid_fixture_and_the_shipped_lab_pass() {
    let (code, out) = lint("valid");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok — 1 part(s), 2 step(s)"), "{out}");
    let shipped = lab_runner()
        .arg("lint")
        .arg(support::shipped_lab())
        .output()
        .unwrap();
    assert!(shipped.status.success(), "{}", text(&shipped));
}

#[test]
fn yaml_syntax_error() {
    assert_problem(
        "yaml-syntax",
        "yaml-syntax/part.yaml",
        20,
        24,
        "did not find expected key",
    );
}

#[test]
fn unknown_field_names_the_field_and_the_valid_ones() {
    assert_problem(
        "unknown-field",
        "unknown-field/part.yaml",
        22,
        11,
        "unknown field `methd`, expected one of `method`",
    );
}

#[test]
fn wrong_type() {
    assert_problem(
        "wrong-type",
        "wrong-type/part.yaml",
        21,
        18,
        "http.token: invalid type: string \"yes please\", expected a boolean (step 1.1)",
    );
}

#[test]
fn missing_field_names_the_step() {
    assert_problem(
        "missing-field",
        "missing-field/part.yaml",
        3,
        5,
        "steps[0]: missing field `title` (step 1.0)",
    );
}

#[test]
fn duplicate_step_id() {
    assert_problem(
        "duplicate-step-id",
        "duplicate-step-id/part.yaml",
        12,
        5,
        "step id `1.0` is used twice",
    );
}

#[test]
fn undefined_variable_suggests_the_close_one() {
    assert_problem(
        "undefined-variable",
        "undefined-variable/part.yaml",
        15,
        15,
        "uses {{ jam_mss }}, which is not defined; did you mean `jam_ms`?",
    );
}

#[test]
fn template_syntax_error() {
    assert_problem(
        "template-syntax",
        "template-syntax/part.yaml",
        7,
        7,
        "template error: syntax error",
    );
}

#[test]
fn check_without_solve() {
    assert_problem(
        "check-without-solve",
        "check-without-solve/part.yaml",
        22,
        5,
        "has a check but no solve",
    );
}

#[test]
fn unknown_environment() {
    assert_problem(
        "unknown-environment",
        "unknown-environment/lab.yaml",
        18,
        5,
        "names environment `staging`, which is not defined",
    );
}

#[test]
fn missing_part_file() {
    assert_problem(
        "missing-part-file",
        "missing-part-file/lab.yaml",
        16,
        5,
        "part-two.yaml`, which cannot be read",
    );
}

#[test]
fn duration_without_unit() {
    assert_problem(
        "bad-duration",
        "bad-duration/part.yaml",
        22,
        20,
        "invalid duration '15': write a number with a unit",
    );
}

#[test]
fn misspelt_matcher_operator() {
    assert_problem(
        "unknown-matcher",
        "unknown-matcher/part.yaml",
        25,
        13,
        "unknown matcher operator `gtee`",
    );
}

#[test]
fn malformed_metric_selector() {
    assert_problem(
        "bad-selector",
        "bad-selector/part.yaml",
        25,
        13,
        "metric selector `lab_event_loop_jams_total{kind=}`",
    );
}

#[test]
fn a_check_must_not_read_what_only_the_solve_saves() {
    assert_problem(
        "solve-variable-in-check",
        "solve-variable-in-check/part.yaml",
        26,
        47,
        "uses {{ took }}, which only a solve saves",
    );
}

#[test]
fn commands_that_load_a_lab_refuse_a_broken_one_with_exit_2() {
    let out = lab_runner()
        .args(["verify", "--backend", "process", "--lab"])
        .arg(fixture("lint/unknown-field"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown-field/part.yaml:22:11: "),
        "{stderr}"
    );
    assert!(stderr.contains("run `lab-runner lint`"), "{stderr}");
}

#[test]
fn a_breakpoint_that_does_not_resolve_in_the_app_source() {
    assert_problem(
        "bad-breakpoint",
        "bad-breakpoint/part.yaml",
        10,
        51,
        "the breakpoint does not resolve in the lab app's source: there is no function `blockEventLop`",
    );
}

#[test]
fn the_lab_format_is_checked_first_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        for name in ["lab.yaml", "part.yaml"] {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    };
    let valid = fixture("lint/valid");
    copy(&valid, dir.path());
    let manifest = dir.path().join("lab.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // The app folder is relative to the lab: point it back at the repository's.
    let text = text.replace(
        "../../../../lab-app",
        &crate::support::repo_root()
            .join("lab-app")
            .display()
            .to_string(),
    );
    let run = |text: &str| {
        std::fs::write(&manifest, text).unwrap();
        let out = lab_runner().arg("lint").arg(dir.path()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&text);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&text.replace("format: 1\n", ""));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("add `format: 1`"), "{out}");
    // A newer format with a field this version does not know: the format is the diagnosis.
    let (code, out) = run(&text.replace("format: 1\n", "format: 2\nsomething_new: true\n"));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("lab format 2") && out.contains("update lab-runner"),
        "{out}"
    );
    assert!(!out.contains("unknown field"), "{out}");
}

#[test]
fn a_paused_line_that_does_not_resolve_in_the_app_source() {
    let out = lab_runner()
        .arg("lint")
        .arg(fixture("lint/bad-paused-line"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("the paused line does not resolve in the lab app's source")
            && all.contains("let iteratons"),
        "{all}"
    );
    assert!(
        all.contains(
            "the Call Stack starts with the paused function `blockEventLoop`, not `eventLoopJam`"
        ),
        "{all}"
    );
}

#[test]
fn a_code_block_line_wider_than_80_columns() {
    // A JSON line an 80-column terminal would break inside the ARN.
    assert_problem(
        "wide-block",
        "wide-block/part.yaml",
        10,
        1,
        "a line of a ```json block is 100 columns wide",
    );
}

#[test]
fn a_template_problem_is_reported_where_it_is_not_where_its_key_first_appears() {
    // LAB_TOKEN is set in two environments; only the second one's template is wrong, and the
    // position comes from the YAML parser, not from a search for the first `LAB_TOKEN:`.
    assert_problem(
        "env-variable",
        "env-variable/lab.yaml",
        15,
        7,
        "environment `production`, LAB_TOKEN: uses {{ tokn }}, which is not defined; did you mean `token`?",
    );
    // The second of two checks with the same keys: its own line.
    assert_problem(
        "env-variable",
        "env-variable/part.yaml",
        16,
        39,
        "check[1].http.expect.json./pid.gt: uses {{ pidd }}, which is not defined",
    );
}
