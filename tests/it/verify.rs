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
        &[
            "2.0", "2.1", "2.1.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7",
        ],
    );
    assert_eq!(junit_counts(&junit), (9, 0));
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
    assert_eq!(stdout.lines().last(), Some("9 passed, 0 failed"), "{all}");
    assert!(stdout.contains("docker container lab-runner-"), "{all}");
    assert_eq!(junit_counts(&junit), (9, 0));
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

/// `verify --isolated-shell` (what `workshop verify` runs for each seat): every command of Parts 2
/// and 3 — `lab-runner pull` and `analyze` within the terminal's memory, `docker kill` and `logs`
/// through its guard, the tunnel, each mistake and the close — runs in the terminal container, and
/// the checks on this machine see what it did.
#[test]
fn parts_2_and_3_pass_in_a_seats_terminal_container_and_leave_nothing_behind() {
    if !docker_or_skip("verify --isolated-shell") {
        return;
    }
    let _docker = docker_shared();
    let run = lab_runner()
        .args([
            "verify",
            "part2",
            "part3",
            "--isolated-shell",
            "--jobs",
            "2",
            "--backend",
            "docker",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The terminal containers seen while it runs (other tests' containers run beside them).
    let mut seen = std::collections::BTreeSet::new();
    let pid = run.id();
    // Its output read to the end meanwhile, so it never waits on a full pipe.
    let waiter = std::thread::spawn(move || run.wait_with_output().unwrap());
    while !waiter.is_finished() {
        let names = std::process::Command::new("docker")
            .args(["ps", "--format", "{{.Names}}", "--filter"])
            .arg(format!("label=io.lab-runner.runner-pid={pid}"))
            .output()
            .unwrap();
        seen.extend(
            String::from_utf8_lossy(&names.stdout)
                .lines()
                .filter(|n| n.ends_with("-terminal"))
                .map(str::to_string),
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = waiter.join().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("14 passed, 0 failed"), "{all}");
    let sessions: Vec<String> = stdout
        .split_whitespace()
        .filter(|w| w.starts_with("lab-runner-") && w.matches('-').count() >= 3)
        .filter_map(|w| w.split('-').nth(2).map(str::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(sessions.len() >= 2, "{sessions:?}\n{all}");
    // The commands ran in terminal containers of these sessions.
    for part in ["part2", "part3"] {
        assert!(
            seen.iter()
                .any(|n| n.ends_with(&format!("-{part}-terminal"))),
            "no terminal container of {part} was seen: {seen:?}"
        );
    }
    for session in &sessions {
        for kind in ["container", "network"] {
            assert!(
                docker_ids(kind, &format!("io.lab-runner.session={session}")).is_empty(),
                "a {kind} of {session} was left behind"
            );
        }
    }
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
fn cleanup_leaves_what_a_running_session_uses_unless_told_all() {
    if !docker_or_skip("cleanup_leaves_what_a_running_session_uses_unless_told_all") {
        return;
    }
    let _docker = docker_exclusive();
    let mut verify = lab_runner()
        .args(["verify", "--backend", "docker", "--lab"])
        .arg(fixture("verify/slow"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let label = format!("io.lab-runner.runner-pid={}", verify.id());
    let started = std::time::Instant::now();
    while docker_ids("container", &label).is_empty() {
        if let Some(status) = verify.try_wait().unwrap() {
            panic!("verify ended ({status}) before its container was seen");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "verify never started its container"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The step sleeps 10 s: cleanup runs while the session is live.
    let cleanup = lab_runner().arg("cleanup").output().unwrap();
    let said = text(&cleanup);
    assert_eq!(cleanup.status.code(), Some(0), "{said}");
    assert!(
        said.contains("left lab-runner-") && said.contains("is still running"),
        "{said}"
    );
    assert!(said.contains("lab-runner cleanup --all"), "{said}");
    assert_eq!(docker_ids("container", &label).len(), 1, "{said}");

    // --all removes it even so: the live run then fails, saying its app is gone.
    let all = lab_runner().args(["cleanup", "--all"]).output().unwrap();
    assert_eq!(all.status.code(), Some(0), "{}", text(&all));
    assert!(
        text(&all).contains("removed container lab-runner-"),
        "{}",
        text(&all)
    );
    assert!(docker_ids("container", &label).is_empty());
    let out = verify.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
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

/// `verify --format json`: the events on stdout, each line parsed (a line that is not JSON fails the
/// test), and the lines for a person on stderr.
fn json_events(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{}", text(out)))
        })
        .collect()
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The events of `step`, by name, in order.
fn of_step<'a>(events: &'a [serde_json::Value], step: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["step"] == step)
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[test]
fn json_lines_give_each_step_in_order_with_the_diagnosis_of_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = lab_runner()
        .args([
            "verify",
            "--backend",
            "process",
            "--format",
            "json",
            "--lab",
        ])
        .arg(fixture("verify/honest-failures"))
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let events = json_events(&out);
    assert!(events.iter().all(|e| e["v"] == 1), "{all}");
    assert_eq!(events.first().unwrap()["event"], "run_started", "{all}");
    assert_eq!(events.last().unwrap()["event"], "run_finished", "{all}");
    assert_eq!(events.last().unwrap()["failed"], 3, "{all}");
    // The part names its steps; each has a start and, after it, a finish, in that order.
    let part = named(&events, "part_started")[0];
    let steps: Vec<&str> = part["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(steps, ["1.1", "1.2", "1.3"], "{all}");
    let started: Vec<&str> = named(&events, "step_started")
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    let finished: Vec<&str> = named(&events, "step_finished")
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(started, steps, "{all}");
    assert_eq!(finished, steps, "{all}");
    for step in &steps {
        let names = of_step(&events, step);
        assert_eq!(names.first(), Some(&"step_started"), "{step}: {names:?}");
        assert_eq!(names.last(), Some(&"step_finished"), "{step}: {names:?}");
    }
    assert!(
        events
            .iter()
            .position(|e| e["event"] == "environment_ready")
            .unwrap()
            < events
                .iter()
                .position(|e| e["event"] == "step_started")
                .unwrap(),
        "{all}"
    );
    let finish = |step: &str| {
        *named(&events, "step_finished")
            .iter()
            .find(|e| e["step"] == step)
            .unwrap()
    };
    // 1.1: the check held before the solve ran (its judgement is an event too).
    assert_eq!(finish("1.1")["outcome"], "held_before_solve", "{all}");
    assert!(
        named(&events, "check_judged")
            .iter()
            .any(|e| e["step"] == "1.1" && e["before_solve"] == true && e["outcome"] == "passed"),
        "{all}"
    );
    // 1.2: a check that does not hold carries its diagnosis, in the judgement and in the finish.
    let failed = finish("1.2");
    assert_eq!(failed["outcome"], "check_failed", "{all}");
    assert_eq!(failed["phase"], "check", "{all}");
    assert_eq!(failed["failure"]["expected"], "418", "{all}");
    assert!(
        failed["failure"]["saw"]
            .as_str()
            .unwrap()
            .starts_with("200"),
        "{all}"
    );
    assert_eq!(
        failed["failure"]["hint"], "A jam never makes the health endpoint answer 418.",
        "{all}"
    );
    let judged = named(&events, "check_judged")
        .into_iter()
        .find(|e| e["step"] == "1.2" && e["before_solve"] == false)
        .expect("the check of 1.2 judged");
    assert_eq!(judged["failure"], failed["failure"], "{all}");
    // 1.3: the participant's command failed (not a check): what ran, its exit status, its output.
    let command = finish("1.3");
    assert_eq!(command["outcome"], "command_failed", "{all}");
    assert_eq!(command["phase"], "solve", "{all}");
    assert!(
        command["failure"]["saw"]
            .as_str()
            .unwrap()
            .contains("exit status 22"),
        "{all}"
    );
    assert!(
        named(&events, "command_run").iter().any(
            |e| e["step"] == "1.3" && e["command"].as_str().unwrap().contains("event-loop-jam")
        ),
        "the command as the participant types it: {all}"
    );
    assert!(
        named(&events, "output")
            .iter()
            .any(|e| e["step"] == "1.3" && e["line"].as_str().unwrap().contains("not_found")),
        "what it printed: {all}"
    );
    // The lines for a person went to stderr, JUnit still written.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().last(), Some("0 passed, 3 failed"), "{all}");
    assert!(stderr.contains("expected: 418"), "{all}");
    assert_eq!(junit_counts(&junit), (3, 3));
}

#[test]
fn json_lines_say_an_environment_that_cannot_start_and_exit_4() {
    let out = lab_runner()
        .args([
            "verify",
            "--backend",
            "process",
            "--format",
            "json",
            "--lab",
        ])
        .arg(fixture("verify/app-that-exits"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    let events = json_events(&out);
    let failed = named(&events, "environment_failed");
    assert_eq!(failed.len(), 1, "{all}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot start: the configuration is broken"),
        "the app's own words: {all}"
    );
    // No step ran: none started; each finished as environment_failed.
    assert!(named(&events, "step_started").is_empty(), "{all}");
    let finished = named(&events, "step_finished");
    assert!(!finished.is_empty(), "{all}");
    assert!(
        finished
            .iter()
            .all(|e| e["outcome"] == "environment_failed" && e["part"] == failed[0]["part"]),
        "{all}"
    );
    assert_eq!(
        finished.len(),
        failed[0]["steps"].as_array().unwrap().len(),
        "{all}"
    );
    assert_eq!(events.last().unwrap()["event"], "run_finished", "{all}");
}
