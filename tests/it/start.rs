//! `lab-runner start`: a participant at a real pseudo-terminal. "Do it for me" passes a step, a
//! failing check shows its diagnosis, quitting saves progress, starting again resumes at the next step.

use crate::support;

use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession as Session;
use expectrl::{Expect, Session as PtySession};
use support::{lab_runner, text};

fn start_in_pty(state_dir: &std::path::Path) -> Session {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab-runner"));
    cmd.args(["start", "part2", "--backend", "process"])
        .env("LAB_RUNNER_STATE_DIR", state_dir)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("LAB_RUNNER_LAB");
    let mut session = PtySession::spawn(cmd).expect("a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

/// Waits for `needle`; on timeout the test fails with what was on the screen.
fn expect(session: &mut Session, needle: &str) {
    if let Err(e) = session.expect(needle) {
        panic!("expected {needle:?} on the terminal: {e}");
    }
}

#[test]
fn do_it_for_me_then_quit_then_resume_at_the_next_step() {
    let state = tempfile::tempdir().unwrap();

    let mut first = start_in_pty(state.path());
    expect(&mut first, "Step 2.0 — Confirm the baseline");
    expect(&mut first, "[c] check my work");
    first.send("c").unwrap();
    expect(&mut first, "PASS step 2.0 done");

    expect(&mut first, "Step 2.1 — Enable the lab endpoints");
    expect(&mut first, "[c] check my work");
    // Not done yet: the check fails and says what it expected, what it saw, and a hint.
    first.send("c").unwrap();
    expect(&mut first, "expected: 403");
    expect(&mut first, "saw:      404");
    expect(&mut first, "hint:");
    expect(&mut first, "[c] check my work");
    first.send("h").unwrap();
    expect(&mut first, "Hint 1/2:");
    first.send("d").unwrap();
    expect(&mut first, "doing it for you:");
    expect(&mut first, "recreate the app with");
    expect(&mut first, "PASS step 2.1 done");

    expect(&mut first, "Step 2.1.1 — Allow the lab in production");
    expect(&mut first, "[c] check my work");
    first.send("d").unwrap();
    expect(&mut first, "PASS step 2.1.1 done");

    expect(&mut first, "Step 2.2 — Reproduce an event loop jam");
    expect(&mut first, "[c] check my work");
    first.send("q").unwrap();
    expect(
        &mut first,
        "progress saved: `lab-runner start part2` resumes at step 2.2",
    );
    let status = first.get_process_mut().wait().unwrap();
    assert!(
        matches!(status, expectrl::process::unix::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );

    let out = lab_runner()
        .arg("status")
        .env("LAB_RUNNER_STATE_DIR", state.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("part2  3/9 done   next: 2.2 Reproduce an event loop jam"),
        "{}",
        text(&out)
    );

    let mut second = start_in_pty(state.path());
    expect(
        &mut second,
        "welcome back: 3 of 9 steps done; resuming at step 2.2",
    );
    expect(&mut second, "Step 2.2 — Reproduce an event loop jam");
    expect(&mut second, "[c] check my work");
    second.send("q").unwrap();
    expect(&mut second, "progress saved");
    second.get_process_mut().wait().unwrap();
}

#[test]
fn start_without_a_terminal_refuses_and_points_to_verify_and_demo() {
    let out = lab_runner().args(["start", "part2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
    assert!(
        stderr.contains("lab-runner verify") && stderr.contains("demo <part> --yes"),
        "{stderr}"
    );
}

#[test]
fn start_says_how_to_reach_lab_runner_when_the_shell_would_not_find_it() {
    // `cargo run -- start part2`: the guide's `lab-runner redeploy …` would say "command not found".
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_lab-runner"))
        .parent()
        .unwrap()
        .to_path_buf();
    let without = lab_runner()
        .args(["start", "part2"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&without.stderr);
    assert!(
        said.contains(&format!("export PATH=\"{}:$PATH\"", bin.display())),
        "{said}"
    );
    let with = lab_runner()
        .args(["start", "part2"])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&with.stderr);
    assert!(!said.contains("export PATH"), "{said}");
    assert!(said.contains("needs a terminal"), "{said}");
}

#[test]
fn reset_forgets_one_step_and_start_resumes_there() {
    let state = tempfile::tempdir().unwrap();
    let progress = r#"{"version":1,"labs":{"node-profiling":{"part2":{"done":["2.0","2.1","2.1.1","2.2","2.3"]}}}}"#;
    std::fs::write(state.path().join("progress.json"), progress).unwrap();
    let run = |args: &[&str]| {
        let out = lab_runner()
            .args(args)
            .env("LAB_RUNNER_STATE_DIR", state.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(&["status"]).contains("part2  5/9 done   next: 2.4"));
    assert!(run(&["reset", "2.2"]).contains("step 2.2 of part2 is not done any more"));
    assert!(run(&["status"]).contains("part2  4/9 done   next: 2.2"));
    run(&["reset", "part2"]);
    assert!(run(&["status"]).contains("part2  0/9 done   next: 2.0"));
    let bad = lab_runner()
        .args(["reset", "9.9"])
        .env("LAB_RUNNER_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
