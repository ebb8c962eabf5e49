//! `lab-runner demo --pace 0 --yes`: a whole part performed and narrated without a terminal (CI).

use crate::support;

use support::{lab_runner, text};

#[test]
fn demo_runs_a_whole_part_showing_each_command_and_its_output() {
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
    assert_eq!(stdout.lines().last(), Some("9 passed, 0 failed"), "{all}");
    // Each command shown as the participant types it (exactly as the step shows it), then what
    // it printed.
    assert!(
        stdout.contains("  $ curl -sS -w '\\n' -X POST -H \"x-lab-token: $LAB_TOKEN\" \\"),
        "{all}"
    );
    assert!(
        stdout.contains("\"$BASE/api/lab/event-loop-jam?ms=1500\" &"),
        "{all}"
    );
    assert!(
        stdout.contains("health answered in "),
        "the command's output: {all}"
    );
    assert!(
        stdout.contains("  $ lab-runner redeploy --env LAB_ENABLE=true"),
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
