//! The generic checks (`command:`, `file:`, `port:`): a fixture lab on an app the runner does not
//! know passes `verify` on both backends (the in-app command through `docker exec` on Docker), a
//! check that does not hold says expected / saw / hint, and lint locates each misuse.

use crate::support;

use support::{fixture, lab_runner, text};

fn verify(lab: &std::path::Path, backend: &str) -> std::process::Output {
    lab_runner()
        .args(["verify", "--backend", backend, "--lab"])
        .arg(lab)
        .output()
        .expect("lab-runner runs")
}

#[test]
fn the_generic_checks_fixture_passes_on_the_process_backend() {
    let out = verify(&fixture("verify/generic-checks"), "process");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some("4 passed, 0 failed"),
        "{all}"
    );
}

#[test]
fn the_in_app_command_runs_inside_the_container_on_docker() {
    if !support::docker_or_skip("the_in_app_command_runs_inside_the_container_on_docker") {
        return;
    }
    let out = lab_runner()
        .args(["verify", "--backend", "docker", "--format", "json", "--lab"])
        .arg(fixture("verify/generic-checks"))
        .output()
        .expect("lab-runner runs");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The check of 1.4 read the report the app wrote into its container's /tmp, through docker exec.
    assert!(
        stdout.contains("(inside the app's environment) → exit 0"),
        "{all}"
    );
    let passed = stdout
        .lines()
        .filter(|l| {
            l.contains("\"event\":\"step_finished\"") && l.contains("\"outcome\":\"passed\"")
        })
        .count();
    assert_eq!(passed, 4, "{all}");
}

/// The fixture lab in a folder of its own, its part file changed by `edit`.
pub fn edited_fixture(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = fixture("verify/generic-checks");
    let manifest = std::fs::read_to_string(from.join("lab.yaml")).unwrap();
    let manifest = manifest.replace(
        "source: app",
        &format!("source: {}", from.join("app").display()),
    );
    std::fs::write(dir.path().join("lab.yaml"), manifest).unwrap();
    let part = std::fs::read_to_string(from.join("part.yaml")).unwrap();
    let edited = edit(part.clone());
    assert_ne!(edited, part, "the edit changed nothing");
    std::fs::write(dir.path().join("part.yaml"), edited).unwrap();
    dir
}

#[test]
fn a_generic_check_that_does_not_hold_says_expected_saw_and_hint() {
    let lab = edited_fixture(|part| {
        part.replace(
            r#"solve:
      - shell: curl -sS --fail "$BASE/version" > version.json"#,
            r#"solve:
      - shell: curl -sS --fail "$BASE/version" > ver.json"#,
        )
        .replace("/reports: 1, /by: the app", "/reports: 2, /by: the app")
    });
    let out = verify(lab.path(), "process");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("2 passed, 2 failed"), "{all}");
    // 1.1: the file the participant was told to write is not there; the step's hint.
    assert!(
        stdout.contains("the file version.json")
            && stdout.contains("expected: to exist")
            && stdout.contains("saw:      there is no such file"),
        "{all}"
    );
    assert!(
        stdout.contains("hint:     `curl -sS $BASE/version > version.json`"),
        "{all}"
    );
    // 1.4: the JSON the in-app command printed, by pointer.
    assert!(
        stdout.contains("(inside the app's environment): stdout JSON /reports")
            && stdout.contains("expected: = 2")
            && stdout.contains("saw:      1"),
        "{all}"
    );
}

#[test]
fn a_command_check_past_its_timeout_is_stopped_and_says_so() {
    let lab = edited_fixture(|part| {
        part.replace(
            "      - command: {run: cat listener.port, save: {listener_port: stdout}}",
            "      - command: {run: 'echo waiting; sleep 30', timeout: 1s}",
        )
        .replace(
            "      - port: {address: \"127.0.0.1:{{ listener_port }}\", timeout: 3s}\n",
            "",
        )
        .replace(
            "      - port: {address: \"127.0.0.1:{{ listener_port }}\", open: false, timeout: 3s}",
            "      - port: {address: \"{{ base_url | replace('http://', '') }}\", open: false, timeout: 1s}",
        )
    });
    let started = std::time::Instant::now();
    let out = verify(lab.path(), "process");
    let all = text(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("2 passed, 2 failed"), "{all}");
    // 1.2: the command was stopped at its timeout, with what it printed.
    assert!(
        stdout.contains("expected: to finish within 1.0 s")
            && stdout.contains("still running then (stopped)")
            && stdout.contains("waiting"),
        "{all}"
    );
    // 1.3: the app's port never stops accepting connections.
    assert!(
        stdout.contains("expected: to refuse connections (waited 1.0 s)")
            && stdout.contains("saw:      it accepts connections"),
        "{all}"
    );
    // Both timeouts held: a 30 s sleep did not hold verify up.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{all}"
    );
}

/// Runs lint on tests/fixtures/lint/generic-misuse; every line of its output.
fn misuse_lines() -> Vec<String> {
    let out = lab_runner()
        .arg("lint")
        .arg(fixture("lint/generic-misuse"))
        .output()
        .expect("lab-runner runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn lint_locates_each_misuse_of_the_generic_checks() {
    // Each at the key of the field that is wrong (from the YAML parser's spans).
    let lines = misuse_lines();
    let expected = [
        (
            "8:9",
            "solve[0]: `command` is something only the runner can do",
        ),
        ("10:32", "`exists: false` with `contains`"),
        (
            "19:19",
            "check[0]: a `command:` needs exactly one of `run:`",
        ),
        ("20:9", "check[1]: a `command:` needs exactly one of `run:`"),
        ("21:28", "`run:` inside the app (`in: app`) needs a shell"),
        (
            "33:22",
            "is not a regular expression: error: unclosed group",
        ),
        ("34:20", "`n` is not a JSON pointer"),
        ("35:18", "save `n: body`"),
        ("36:30", "`[unclosed` is not a regular expression"),
        ("37:16", "`localhost` is not a host:port address"),
        ("38:19", "the commands do not parse"),
        ("39:21", "`logs_contain` needs exactly one of `text:`"),
    ];
    for (at, needle) in expected {
        let location = format!("generic-misuse/part.yaml:{at}: ");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&location) && l.contains(needle)),
            "no `{needle}` at {at}:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(
        lines
            .last()
            .map(String::as_str)
            .unwrap_or_default()
            .split(' ')
            .next(),
        Some("12"),
        "{}",
        lines.join("\n")
    );
}
