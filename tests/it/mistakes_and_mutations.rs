//! Checks proven against wrong work: a step's `mistakes:` must be rejected with their hints, and
//! `verify --mutations` must see the check fail whenever a solve command or action is left out
//! (unless the step lists it under `unchecked:` with a reason).

use crate::support;

use support::*;

#[test]
fn a_mistake_the_check_accepts_fails_verify_naming_the_step_and_the_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let r = run_command(
        lab_runner()
            .args(["verify", "--backend", "process", "--lab"])
            .arg(fixture("verify/mistakes"))
            .arg("--junit")
            .arg(&junit),
    );
    assert_eq!(r.code, 1, "{}", r.all);
    // 1.1's check is too weak: a token of the participant's own passes it.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("FAIL [") && l.contains(" part1 1.1 ")),
        "{}",
        r.all
    );
    assert!(
        r.stdout.contains(
            "mistake `a token of their own instead of the session's`: the check accepted it"
        ),
        "{}",
        r.all
    );
    // Its other mistake is rejected with its hint, and not named as a failure.
    assert!(
        r.stdout.contains("rejected with its hint") && r.stdout.contains("the lab routes left off"),
        "{}",
        r.all
    );
    assert!(
        !r.stdout.contains("mistake `the lab routes left off`"),
        "{}",
        r.all
    );
    // 1.2's mistake runs in an environment of its own (1.1 replayed there) and is rejected.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("PASS [") && l.contains(" part1 1.2 ")),
        "{}",
        r.all
    );
    assert!(
        r.stdout
            .contains("a jam too short (in an environment of its own)"),
        "{}",
        r.all
    );
    assert_eq!(
        r.stdout.lines().last(),
        Some("1 passed, 1 failed"),
        "{}",
        r.all
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("the check accepted it"), "{xml}");
}

#[test]
fn a_command_the_check_does_not_need_gives_a_score_below_100_percent_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let r = run_command(
        lab_runner()
            .args(["verify", "--mutations", "--backend", "process", "--lab"])
            .arg(fixture("verify/mutations"))
            .arg("--junit")
            .arg(&junit),
    );
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(
        r.stdout.contains(
            "without solve[0] command 2 `curl -sS \"$BASE/api/health\"` the check still passes"
        ),
        "{}",
        r.all
    );
    assert!(
        r.stdout.contains("MUTATIONS part1")
            && r.stdout.contains("1/2 (50 %): 1 caught, 1 survived"),
        "{}",
        r.all
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"name="mutation-score" value="0.500""#),
        "{xml}"
    );
    assert!(xml.contains("mutant survived"), "{xml}");
    // Without --mutations the same lab passes: the step itself is fine.
    let plain = run_command(
        lab_runner()
            .args(["verify", "--backend", "process", "--lab"])
            .arg(fixture("verify/mutations")),
    );
    assert_eq!(plain.code, 0, "{}", plain.all);
}

#[test]
fn lint_rejects_an_unchecked_entry_that_names_nothing_and_a_mistake_only_the_runner_could_do() {
    let lab = copy_lab(&fixture("verify/mutations"));
    let manifest = lab.path().join("lab.yaml");
    let app = repo_root().join("lab-app");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "source: ../../../../lab-app",
        &format!("source: {}", app.display()),
    );
    std::fs::write(&manifest, text).unwrap();
    let part = lab.path().join("part.yaml");
    let text = std::fs::read_to_string(&part).unwrap();
    let text = text.replace(
        "    check:\n",
        "    unchecked:\n      - {command: curl -sS \"$BASE/api/nothing\", reason: shown}\n    mistakes:\n      - name: by the runner\n        do: [{http: {path: /api/health}}]\n        hint: x\n      - name: a long one\n        do: [{shell: 'curl -sS \"$BASE/api/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"'}]\n        hint: y\n    check:\n",
    );
    std::fs::write(&part, text).unwrap();
    let r = run_command(lab_runner().arg("lint").arg(lab.path()));
    assert_eq!(r.code, 2, "{}", r.all);
    assert!(r.all.contains("names nothing in the solve"), "{}", r.all);
    assert!(
        r.all
            .contains("solve[0] command 2 `curl -sS \"$BASE/api/health\"`"),
        "{}",
        r.all
    );
    assert!(
        r.all
            .contains("mistakes[0].do[0]: `http` is something only the runner can do"),
        "{}",
        r.all
    );
    assert!(
        r.all.contains("mistakes[1].do[0]: `") && r.all.contains("80 columns"),
        "{}",
        r.all
    );
}

/// Every step passed, and the part's mutation score is 100 %: every mutant caught or marked.
fn assert_every_mutant_caught_or_marked(r: &Run, part: &str, steps: &[&str]) {
    assert_eq!(r.code, 0, "{}", r.all);
    assert_all_passed(r, part, steps);
    let score = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("MUTATIONS {part} [")))
        .unwrap_or_else(|| panic!("no mutation score for {part}:\n{}", r.all));
    assert!(
        score.contains("(100 %)") && !score.contains("survived") && !score.contains("not judged"),
        "{score}\n{}",
        r.all
    );
}

// The shipped lab under `verify --mutations`: minutes per part (docs/PERFORMANCE.md has the
// figures), so .config/nextest.toml gives these tests a longer leash.
#[test]
fn mutations_of_the_shipped_lab_part1_are_all_caught_or_marked() {
    let r = run(&["verify", "part1", "--mutations", "--backend", "process"]);
    assert_every_mutant_caught_or_marked(
        &r,
        "part1",
        &[
            "1.1", "1.2", "1.3", "1.3.1", "1.3.2", "1.3.3", "1.3.4", "1.4", "1.5",
        ],
    );
}

#[test]
fn mutations_of_the_shipped_lab_part2_are_all_caught_or_marked() {
    let r = run(&["verify", "part2", "--mutations", "--backend", "process"]);
    assert_every_mutant_caught_or_marked(
        &r,
        "part2",
        &[
            "2.0", "2.1", "2.1.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7",
        ],
    );
}

#[test]
fn mutations_of_the_shipped_lab_part3_are_all_caught_or_marked() {
    if !docker_or_skip("mutations_of_the_shipped_lab_part3_are_all_caught_or_marked") {
        return;
    }
    let _docker = docker_shared();
    let r = run(&["verify", "part3", "--mutations", "--backend", "docker"]);
    assert_every_mutant_caught_or_marked(&r, "part3", &["3.1", "3.2", "3.3", "3.4", "3.5"]);
}
