//! Parts 1 and 3 proven end to end (Part 2 is in tests/verify.rs), and the negative cases of Part 1:
//! a breakpoint on a line that never runs, and wrong answers to an `ask`.

use crate::support;

use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession;
use expectrl::{Expect, Session};
use support::*;

fn verify(args: &[&str]) -> Run {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    run(&all)
}

const PART1: &[&str] = &[
    "1.1", "1.2", "1.3", "1.3.1", "1.3.2", "1.3.3", "1.3.4", "1.4", "1.5",
];

#[test]
fn part1_passes_on_the_process_backend_alongside_part2_with_jobs_2() {
    // Two parts at once, each in an environment of its own; the JSON lines on stdout say each
    // event under its own part and step, the person's lines (stderr) name each part's own title.
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let r = run_command(
        lab_runner()
            .args([
                "verify",
                "part1",
                "part2",
                "--jobs",
                "2",
                "--backend",
                "process",
            ])
            .args(["--format", "json", "--junit"])
            .arg(&junit),
    );
    assert_eq!(r.code, 0, "{}", r.all);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let passed: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["outcome"] == "passed")
        .map(|e| {
            (
                e["part"].as_str().unwrap().into(),
                e["step"].as_str().unwrap().into(),
            )
        })
        .collect();
    for step in PART1 {
        assert!(
            passed.contains(&("part1".into(), step.to_string())),
            "{step}: {}",
            r.all
        );
    }
    assert_eq!(
        passed.iter().filter(|(p, _)| p == "part2").count(),
        9,
        "{}",
        r.all
    );
    // Narration is said under the part and step it belongs to, although the parts interleave.
    for e in events.iter().filter(|e| e["step"].is_string()) {
        let (part, step) = (e["part"].as_str().unwrap(), e["step"].as_str().unwrap());
        assert!(
            step.starts_with(&part["part".len()..]),
            "{step} said under {part}: {e}"
        );
    }
    let interleaved = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| e["part"].as_str().unwrap())
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] != w[1]);
    assert!(interleaved, "the parts ran one after the other:\n{}", r.all);
    assert!(
        r.all
            .contains("part1 Local debugging with the inspector (Chrome DevTools) — "),
        "part1's START line names its own title:\n{}",
        r.all
    );
    assert!(r.all.contains("18 passed, 0 failed"), "{}", r.all);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 18, "{xml}");
}

#[test]
fn part1_passes_on_docker() {
    if !docker_or_skip("part1_passes_on_docker") {
        return;
    }
    let _docker = docker_shared();
    let r = verify(&["part1", "--backend", "docker"]);
    assert_eq!(r.code, 0, "{}", r.all);
    assert!(
        r.stdout.contains("docker container lab-runner-"),
        "{}",
        r.all
    );
    assert_all_passed(&r, "part1", PART1);
}

#[test]
fn part3_passes_on_docker() {
    if !docker_or_skip("part3_passes_on_docker") {
        return;
    }
    let _docker = docker_shared();
    let r = verify(&["part3", "--backend", "docker"]);
    assert_eq!(r.code, 0, "{}", r.all);
    assert_all_passed(&r, "part3", &["3.1", "3.2", "3.3", "3.4", "3.5"]);
}

#[test]
fn part3_says_it_needs_docker_on_the_process_backend() {
    let r = verify(&["part3", "--backend", "process"]);
    // No environment could be brought up: exit 4 (nothing was checked), not 1.
    assert_eq!(r.code, 4, "{}", r.all);
    assert!(
        r.stdout
            .contains("part3 needs Docker: it execs into the container and tunnels through it"),
        "{}",
        r.all
    );
}

#[test]
fn a_breakpoint_on_a_line_that_never_runs_fails_with_a_clear_diagnosis() {
    let r = verify(&[
        "--backend",
        "process",
        "--lab",
        fixture("verify/never-runs").to_str().unwrap(),
    ]);
    let (stdout, all) = (&r.stdout, &r.all);
    assert_eq!(r.code, 1, "{all}");
    assert!(stdout.contains("solve failed: pausing at file://"), "{all}");
    assert!(stdout.contains("src/lab/event-loop-jam.js:"), "{all}");
    assert!(
        stdout.contains("the app never paused: that line did not run"),
        "{all}"
    );
}

/// `lab-runner start PART` on the process backend in a pseudo-terminal, with its own state and
/// session folders.
fn start_in_pty(part: &str, state: &std::path::Path) -> OsSession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab-runner"));
    cmd.args(["start", part, "--backend", "process"])
        .env("LAB_RUNNER_STATE_DIR", state)
        .env("XDG_RUNTIME_DIR", state)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("LAB_RUNNER_LAB");
    let mut pty: OsSession = Session::spawn(cmd).expect("a pseudo-terminal");
    pty.set_expect_timeout(Some(Duration::from_secs(60)));
    pty
}

/// Waits for `needle`; on a timeout the test fails saying what it waited for.
fn expect(pty: &mut OsSession, needle: &str) {
    if let Err(e) = pty.expect(needle) {
        panic!("expected {needle:?} on the terminal: {e}");
    }
}

/// Step 1.2 by "do it for me": its check asks what the Console printed for `process.pid`, which
/// the solve's own Console evaluation shows.
fn do_step_1_2(pty: &mut OsSession) {
    pty.send("d").unwrap();
    let found = pty
        .expect(expectrl::Regex(r"evaluate process\.pid → (\d+)"))
        .unwrap_or_else(|e| panic!("the Console's process.pid never showed: {e}"));
    let pid = String::from_utf8_lossy(found.get(1).expect("the pid")).into_owned();
    expect(pty, "What does the Console print for `process.pid`?");
    pty.send_line(&pid).unwrap();
    expect(pty, "PASS step 1.2 done");
}

#[test]
fn a_wrong_answer_to_the_breakpoint_question_fails_without_revealing_the_answer() {
    let state = tempfile::tempdir().unwrap();
    let mut pty = start_in_pty("part1", state.path());
    expect(&mut pty, "Step 1.1");
    expect(&mut pty, "[c] check my work");
    pty.send("d").unwrap();
    expect(&mut pty, "PASS step 1.1 done");
    expect(&mut pty, "Step 1.2");
    expect(&mut pty, "[c] check my work");
    do_step_1_2(&mut pty);
    expect(&mut pty, "Step 1.3");
    // The line shown is computed from the app's source.
    expect(&mut pty, "set a breakpoint on **line");
    expect(&mut pty, "[c] check my work");
    pty.send("d").unwrap();
    expect(&mut pty, "paused in blockEventLoop");
    expect(&mut pty, "What is the value of `startedAt`");
    pty.send_line("12").unwrap();
    expect(&mut pty, "not revealed");
    expect(&mut pty, "saw:      \"12\"");
    expect(&mut pty, "[c] check my work");
    pty.send("q").unwrap();
    expect(
        &mut pty,
        "progress saved: `lab-runner start part1` resumes at step 1.3",
    );
    pty.get_process_mut().wait().unwrap();
}

#[test]
fn a_wrong_answer_to_the_comparison_question_fails_without_revealing_the_answer() {
    let state = tempfile::tempdir().unwrap();
    let mut pty = start_in_pty("part2", state.path());
    for step in ["2.0", "2.1", "2.1.1", "2.2", "2.3", "2.4"] {
        expect(&mut pty, &format!("Step {step}"));
        expect(&mut pty, "[c] check my work");
        pty.send("d").unwrap();
        if step == "2.3" {
            // 2.3 asks for the busiest function, which its check has just named.
            let found = pty
                .expect(expectrl::Regex(
                    r"most self time, not counting \(idle\): (\S+)",
                ))
                .expect("the busiest function named");
            let function = String::from_utf8_lossy(found.get(1).unwrap()).into_owned();
            expect(&mut pty, "has the most self time");
            pty.send_line(&function).unwrap();
        }
        expect(&mut pty, &format!("PASS step {step} done"));
    }
    expect(&mut pty, "Step 2.5");
    expect(&mut pty, "[c] check my work");
    pty.send("d").unwrap();
    // The comparison the participant reads, then the question answered from it.
    expect(&mut pty, "system / JSArrayBufferData");
    expect(&mut pty, "which constructor grew the most");
    pty.send_line("Object").unwrap();
    expect(&mut pty, "not revealed");
    expect(&mut pty, "saw:      \"Object\"");
    expect(&mut pty, "[c] check my work");
    pty.send("q").unwrap();
    expect(
        &mut pty,
        "progress saved: `lab-runner start part2` resumes at step 2.5",
    );
    pty.get_process_mut().wait().unwrap();
}

#[test]
fn a_wrong_answer_to_the_call_stack_question_fails_without_revealing_the_answer() {
    let state = tempfile::tempdir().unwrap();
    let mut pty = start_in_pty("part1", state.path());
    expect(&mut pty, "Step 1.1");
    expect(&mut pty, "[c] check my work");
    pty.send("d").unwrap();
    expect(&mut pty, "PASS step 1.1 done");
    expect(&mut pty, "Step 1.2");
    expect(&mut pty, "[c] check my work");
    do_step_1_2(&mut pty);
    for next in ["Step 1.3 ", "Step 1.3.1 "] {
        expect(&mut pty, next);
        expect(&mut pty, "[c] check my work");
        pty.send("n").unwrap();
    }
    expect(&mut pty, "Step 1.3.2 ");
    expect(&mut pty, "[c] check my work");
    pty.send("d").unwrap();
    expect(&mut pty, "Step into → paused in blockEventLoop");
    expect(&mut pty, "which function called `eventLoopJam`?");
    // The function eventLoopJam calls, not the one that called it.
    pty.send_line("blockEventLoop").unwrap();
    expect(&mut pty, "not revealed");
    expect(&mut pty, "saw:      \"blockEventLoop\"");
    expect(&mut pty, "[c] check my work");
    pty.send("q").unwrap();
    expect(
        &mut pty,
        "progress saved: `lab-runner start part1` resumes at step 1.3.2",
    );
    pty.get_process_mut().wait().unwrap();
}

#[test]
fn a_step_that_stops_on_another_line_than_expected_fails_showing_both_lines() {
    let r = verify(&[
        "--backend",
        "process",
        "--lab",
        fixture("verify/wrong-step").to_str().unwrap(),
    ]);
    let (stdout, all) = (&r.stdout, &r.all);
    assert_eq!(r.code, 1, "{all}");
    assert!(
        stdout.contains("check failed: the paused line in blockEventLoop"),
        "{all}"
    );
    // Both lines come from the app's source: where the check expected the pause, and where it is.
    assert!(
        stdout.contains("expected: src/lab/event-loop-jam.js:"),
        "{all}"
    );
    assert!(stdout.contains(" (`let accumulator`)"), "{all}");
    assert!(stdout.contains(" (`let iterations = 0;`)"), "{all}");
}
