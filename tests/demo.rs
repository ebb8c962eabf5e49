//! `lab-runner demo --pace 0 --yes`: a whole part performed and narrated without a terminal (CI).

mod support;

use support::{lab_runner, text};

#[test]
fn demo_runs_a_whole_part_narrated_with_the_curl_commands() {
    let out = lab_runner()
        .args([
            "demo",
            "part2",
            "--pace",
            "0",
            "--yes",
            "--backend",
            "process",
        ])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("7 passed, 0 failed"), "{all}");
    // Each HTTP call shown as the curl a participant would type, then what happened.
    assert!(
        stdout.contains("  $ curl -sS -X POST -H 'x-lab-token: "),
        "{all}"
    );
    assert!(
        stdout.contains("/api/lab/event-loop-jam?ms=1500\""),
        "{all}"
    );
    assert!(
        stdout.contains("  · POST /api/lab/event-loop-jam?ms=1500 → 200 in "),
        "{all}"
    );
    // The part ends with what the participant can now explain.
    assert!(stdout.contains("What you can now explain"), "{all}");
}

#[test]
fn demo_without_a_terminal_and_without_yes_refuses() {
    let out = lab_runner()
        .args(["demo", "part2", "--backend", "process"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out)
    );
}
