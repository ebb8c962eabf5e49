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

/// Lines of a child's stream, read in a thread, as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most 60 s) for a line containing `needle`; returns every line seen meanwhile.
fn wait_for(rx: &std::sync::mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return;
            }
        }
    }
    panic!("no `{needle}` within 60 s:\n{}", seen.join("\n"));
}

#[test]
fn watch_verifies_the_step_again_when_a_file_of_the_lab_changes() {
    // A copy of the fixture that the test may edit (its title changed only to tell it apart).
    let lab =
        edited_fixture(|part| part.replace("title: Save the app's version", "title: Save it"));
    let mut child = lab_runner()
        .args([
            "verify",
            "--backend",
            "process",
            "--step",
            "1.1",
            "--watch",
            "--lab",
        ])
        .arg(lab.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let (mut seen, mut seen_err) = (Vec::new(), Vec::new());
    wait_for(&out, "1 passed, 0 failed", &mut seen);
    wait_for(&err, "watching", &mut seen_err);
    // The author breaks the check: the step runs again, and fails with its diagnosis.
    let part = lab.path().join("part.yaml");
    let text = std::fs::read_to_string(&part).unwrap();
    std::fs::write(
        &part,
        text.replace(
            "json: {/name: generic-checks}",
            "json: {/name: another-app}",
        ),
    )
    .unwrap();
    wait_for(&out, "0 passed, 1 failed", &mut seen);
    assert!(
        seen.iter()
            .any(|l| l.contains("expected: = \"another-app\"")),
        "{}",
        seen.join("\n")
    );
    wait_for(&err, "verifying step 1.1 again", &mut seen_err);
    wait_for(&err, "watching", &mut seen_err);
    // Ctrl-C ends the watch.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("verify --watch did not end on Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "{}", seen_err.join("\n"));
}
