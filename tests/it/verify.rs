//! `lab-runner verify`: Part 2 proven end to end on both backends, failures reported honestly,
//! JUnit written, nothing left behind.

use crate::support;

use support::*;

fn junit_counts(path: &std::path::Path) -> (usize, usize) {
    let xml = std::fs::read_to_string(path).expect("junit report written");
    (
        xml.matches("<testcase ").count(),
        xml.matches("<failure ").count(),
    )
}

#[test]
fn part2_passes_on_the_process_backend() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let r = run_command(
        lab_runner()
            .args(["verify", "part2", "--backend", "process", "--junit"])
            .arg(&junit),
    );
    assert_eq!(r.code, 0, "{}", r.all);
    assert_all_passed(
        &r,
        "part2",
        &["2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7"],
    );
    assert_eq!(junit_counts(&junit), (8, 0));
}

#[test]
fn part2_passes_on_docker_and_leaves_nothing_behind() {
    if !docker_or_skip("part2_passes_on_docker_and_leaves_nothing_behind") {
        return;
    }
    let _docker = docker_shared();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = lab_runner()
        .args(["verify", "part2", "--backend", "docker", "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("8 passed, 0 failed"), "{all}");
    assert!(stdout.contains("docker container lab-runner-"), "{all}");
    assert_eq!(junit_counts(&junit), (8, 0));
    let name = container_name(&stdout).expect("the START line names the container");
    let session = name.split('-').nth(2).unwrap().to_string();
    assert!(
        docker_ids("container", &format!("io.lab-runner.session={session}")).is_empty(),
        "container left behind"
    );
    assert!(
        docker_ids("network", &format!("io.lab-runner.session={session}")).is_empty(),
        "network left behind"
    );
}

#[test]
fn failures_are_reported_with_their_diagnosis_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = lab_runner()
        .args(["verify", "--backend", "process", "--lab"])
        .arg(fixture("verify/honest-failures"))
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("0 passed, 3 failed"), "{all}");
    // 1.1: a check that passes before its solve cannot tell solved from unsolved.
    assert!(
        stdout.contains("the check passed before the solve ran"),
        "{all}"
    );
    // 1.2: expected, saw, hint.
    assert!(
        stdout.contains("expected: 418") && stdout.contains("saw:      200"),
        "{all}"
    );
    assert!(
        stdout.contains("hint:     A jam never makes the health endpoint answer 418."),
        "{all}"
    );
    // 1.3: a failing solve, with the app's own hint for a 404 on a lab route.
    assert!(
        stdout.contains("solve failed: the commands") && stdout.contains("exit status 22"),
        "{all}"
    );
    assert!(
        stdout.contains(r#"{"error":"not_found""#),
        "the command's output: {all}"
    );
    assert!(stdout.contains("LAB_ENABLE is not `true`"), "{all}");
    assert_eq!(junit_counts(&junit), (3, 3));
}

#[test]
fn an_unknown_part_is_a_usage_error() {
    let out = lab_runner()
        .args(["verify", "part9", "--backend", "process"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no part `part9`"),
        "{}",
        text(&out)
    );
}

#[test]
fn without_docker_auto_falls_back_to_a_local_process_and_says_so() {
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["verify", "--lab"])
        .arg(fixture("verify/quick"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("Docker is not reachable") && all.contains("using the process backend"),
        "{all}"
    );
    assert!(all.contains("local process"), "{all}");
}

#[test]
fn docker_asked_for_but_unreachable_is_one_clear_error_with_exit_3() {
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["verify", "--backend", "docker", "--lab"])
        .arg(fixture("verify/quick"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Docker is not reachable at unix:///nonexistent/docker.sock"),
        "{all}"
    );
    assert!(stderr.contains("--backend process"), "{all}");
}

#[test]
fn cleanup_removes_what_keep_left_running() {
    if !docker_or_skip("cleanup_removes_what_keep_left_running") {
        return;
    }
    let _docker = docker_exclusive();
    let out = lab_runner()
        .args(["verify", "--keep", "--backend", "docker", "--lab"])
        .arg(fixture("verify/quick"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("keeping the part1 environment"), "{all}");
    assert!(
        !docker_ids("container", "io.lab-runner.managed=true").is_empty(),
        "--keep left nothing running: {all}"
    );
    let cleanup = lab_runner().arg("cleanup").output().unwrap();
    assert_eq!(cleanup.status.code(), Some(0), "{}", text(&cleanup));
    assert!(
        String::from_utf8_lossy(&cleanup.stdout).contains("removed container lab-runner-"),
        "{}",
        text(&cleanup)
    );
    assert!(docker_ids("container", "io.lab-runner.managed=true").is_empty());
    assert!(docker_ids("network", "io.lab-runner.managed=true").is_empty());
}

#[test]
fn a_lab_about_another_app_passes_with_only_what_its_lab_yaml_says() {
    // Other health, metrics and token-header paths, another entry and no src/ folder: the runner
    // knows the app only through lab.yaml, on both backends.
    let mut backends = vec!["process"];
    if crate::support::docker_or_skip("a_lab_about_another_app (docker)") {
        backends.push("docker");
    }
    for backend in backends {
        let out = lab_runner()
            .args(["verify", "--backend", backend, "--lab"])
            .arg(fixture("verify/other-app"))
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{backend}: {all}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().last(),
            Some("1 passed, 0 failed"),
            "{backend}: {all}"
        );
    }
}

#[test]
fn an_environment_that_cannot_start_is_exit_4_not_a_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = lab_runner()
        .args(["verify", "--backend", "process", "--lab"])
        .arg(fixture("verify/app-that-exits"))
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let all = text(&out);
    // 1 means a check failed; nothing was checked here: the app never started (README: exit 4).
    assert_eq!(out.status.code(), Some(4), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("could not be brought up"), "{all}");
    assert!(
        stdout.contains("cannot start: the configuration is broken"),
        "the app's own words: {all}"
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains("type=\"environment\""), "{report}");
}
