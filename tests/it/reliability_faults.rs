//! Faults around the runner: Docker unreachable, the runner killed with `kill -9` mid-verify, the
//! app OOM-killed or killed from outside during a step, a wanted host port already taken, two
//! verifies at once. Every wait is bounded; the figures printed (`FIGURE ...`) go into
//! docs/RELIABILITY.md, and only generous "fails in time, does not hang" bounds are asserted.

use crate::reliability_support;
use crate::support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reliability_support::{Lines, session_of, started, wait_or_kill, watch_starts};
use support::*;

/// The `lab-runner` binary as a child whose stdout the test reads while it runs.
fn spawn(args: &[&str]) -> std::process::Child {
    let mut cmd = lab_runner();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("lab-runner starts")
}

fn fixture_arg(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// Docker unreachable.

/// A loopback port with nothing listening (connections are refused).
fn closed_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn docker_unreachable_is_one_clear_message_and_a_documented_exit_code_within_a_second() {
    // Accepts connections (the kernel does, from the backlog) and never answers: a hung daemon.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let hosts = [
        (
            "no socket",
            "unix:///nonexistent/docker.sock".to_string(),
            "Socket not found",
        ),
        (
            "connection refused",
            format!("tcp://127.0.0.1:{}", closed_port()),
            "Connection refused",
        ),
        (
            "a daemon that never answers",
            format!("tcp://127.0.0.1:{}", silent.local_addr().unwrap().port()),
            "no answer within 1000 ms",
        ),
    ];
    let quick = fixture_arg("verify/quick");
    let commands: [(&str, Vec<&str>, i32); 5] = [
        (
            "verify",
            vec!["verify", "--backend", "docker", "--lab", &quick],
            3,
        ),
        ("cleanup", vec!["cleanup"], 3),
        (
            "demo",
            vec![
                "demo",
                "part1",
                "--backend",
                "docker",
                "--yes",
                "--lab",
                &quick,
            ],
            3,
        ),
        ("pull", vec!["pull", "/tmp/heap.heapsnapshot"], 3),
        ("doctor", vec!["doctor", "--lab", &quick], 1),
    ];
    let mut slowest = Duration::ZERO;
    for (what, host, cause) in &hosts {
        for (name, args, code) in &commands {
            let started = Instant::now();
            let out = lab_runner()
                .env("DOCKER_HOST", host)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let took = started.elapsed();
            slowest = slowest.max(took);
            println!(
                "FIGURE docker-unreachable {name:<8} {what:<28} exit {:?} in {:>4} ms",
                out.status.code(),
                took.as_millis()
            );
            let all = text(&out);
            assert_eq!(out.status.code(), Some(*code), "{name} with {what}: {all}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            if *name == "doctor" {
                // One FAIL line for Docker, with the fix; the other checks still run.
                let docker_line = stdout
                    .lines()
                    .find(|l| l.starts_with("FAIL") && l.contains("docker"))
                    .unwrap_or_else(|| panic!("no FAIL line for docker: {all}"));
                assert!(
                    docker_line.contains(&format!("not reachable at {host}")),
                    "{all}"
                );
                assert!(docker_line.contains(cause), "{all}");
                assert!(docker_line.contains("--backend process"), "{all}");
            } else {
                // One message: the error and the way out, nothing else.
                let errors: Vec<&str> =
                    stderr.lines().filter(|l| l.starts_with("error:")).collect();
                assert_eq!(errors.len(), 1, "{name} with {what}: {all}");
                assert!(
                    errors[0].contains(&format!("Docker is not reachable at {host}: {cause}")),
                    "{name} with {what}: {all}"
                );
                assert!(stderr.contains("--backend process"), "{all}");
            }
            // The promise is a second (the connect timeout) plus start-up; 5 s is the "no hang" bound.
            assert!(
                took < Duration::from_secs(5),
                "{name} with {what} took {took:?}"
            );
        }
    }
    println!(
        "FIGURE docker-unreachable slowest {} ms",
        slowest.as_millis()
    );
}

#[test]
fn start_with_docker_unreachable_says_so_and_exits_3() {
    use expectrl::{Expect, Session};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab-runner"));
    cmd.args(["start", "part2", "--backend", "docker"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("LAB_RUNNER_LAB");
    let state = tempfile::tempdir().unwrap();
    cmd.env("LAB_RUNNER_STATE_DIR", state.path());
    let started = Instant::now();
    let mut session = Session::spawn(cmd).expect("a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(10)));
    session
        .expect("Docker is not reachable at unix:///nonexistent/docker.sock")
        .expect("the message on the terminal");
    let status = session.get_process_mut().wait().expect("start exits");
    let took = started.elapsed();
    println!(
        "FIGURE docker-unreachable start    (pty) {status:?} in {} ms",
        took.as_millis()
    );
    assert!(
        matches!(status, expectrl::process::unix::WaitStatus::Exited(_, 3)),
        "{status:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

// ---------------------------------------------------------------------------------------------
// kill -9 mid-verify, then cleanup.

#[test]
fn a_runner_killed_mid_verify_leaves_what_cleanup_removes_and_the_next_verify_passes() {
    if !docker_or_skip("a_runner_killed_mid_verify") {
        return;
    }
    let exclusive = docker_exclusive();
    let mut runner = spawn(&["verify", "part2", "--backend", "docker"]);
    let mut lines = Lines::of(runner.stdout.take().unwrap());
    let start = lines.wait_for("START [", Duration::from_secs(120));
    // SIGKILL: no handler runs, nothing is removed.
    runner.kill().unwrap();
    runner.wait().unwrap();
    let (_, start) = start.unwrap_or_else(|| panic!("no START line:\n{}", lines.text()));
    let container = started(&start)
        .first()
        .map(|(_, c)| c.clone())
        .expect("the START line names the container");
    let session = session_of(&container);
    let label = format!("io.lab-runner.session={session}");
    assert_eq!(
        docker_ids("container", &label).len(),
        1,
        "the killed runner's container is left"
    );
    assert_eq!(
        docker_ids("network", &label).len(),
        1,
        "the killed runner's network is left"
    );

    let started_at = Instant::now();
    let cleanup = lab_runner().arg("cleanup").output().unwrap();
    let took = started_at.elapsed();
    println!(
        "FIGURE kill-9 cleanup removed the orphans in {} ms",
        took.as_millis()
    );
    let all = text(&cleanup);
    assert_eq!(cleanup.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!("removed container {container}")),
        "{all}"
    );
    assert!(
        all.contains(&format!("removed network {container}")),
        "{all}"
    );
    assert!(
        docker_ids("container", "io.lab-runner.managed=true").is_empty(),
        "{all}"
    );
    assert!(
        docker_ids("network", "io.lab-runner.managed=true").is_empty(),
        "{all}"
    );
    drop(exclusive);

    let _shared = docker_shared();
    let again = lab_runner()
        .args(["verify", "part2", "--backend", "docker"])
        .output()
        .unwrap();
    let all = text(&again);
    assert_eq!(again.status.code(), Some(0), "{all}");
    assert!(all.contains("9 passed, 0 failed"), "{all}");
}

// ---------------------------------------------------------------------------------------------
// The app dies during a step.

/// Runs `verify` on `lab` and, once the step is under way, `kill`s the app; returns the output
/// and how long the failure took to be reported after the kill.
fn kill_during_step(backend: &str, kill: impl FnOnce(&str)) -> (String, Duration, Option<i32>) {
    let lab = fixture_arg("reliability/killed-mid-step");
    let mut runner = spawn(&["verify", "--backend", backend, "--lab", &lab]);
    let mut lines = Lines::of(runner.stdout.take().unwrap());
    let (_, start) = lines
        .wait_for("START [", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no START line:\n{}", lines.text()));
    // The step's solve is a 60 s jam; give it a moment to be under way.
    std::thread::sleep(Duration::from_millis(1500));
    let killed_at = Instant::now();
    kill(&start);
    let failed = lines.wait_for(" FAIL [", Duration::from_secs(60));
    let status = wait_or_kill(&mut runner, Duration::from_secs(30));
    lines.drain(Duration::from_secs(2));
    let took = failed
        .map(|(at, _)| at.duration_since(killed_at))
        .unwrap_or(Duration::MAX);
    (lines.text(), took, status.and_then(|s| s.code()))
}

#[test]
fn a_container_killed_mid_step_fails_the_step_at_once_saying_so() {
    if !docker_or_skip("a_container_killed_mid_step") {
        return;
    }
    let _docker = docker_shared();
    let (out, took, code) = kill_during_step("docker", |start| {
        let container = &started(start)[0].1;
        let kill = Command::new("docker")
            .args(["kill", container])
            .output()
            .unwrap();
        assert!(kill.status.success(), "{}", text(&kill));
    });
    println!(
        "FIGURE killed-mid-step docker: reported {} ms after docker kill",
        took.as_millis()
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the app (lab-runner-"), "{out}");
    assert!(
        out.contains("it was killed by SIGKILL (exit code 137)"),
        "{out}"
    );
    assert!(
        out.contains("the signal came from outside the app"),
        "{out}"
    );
    // Its budget is 90 s and its request's 80 s: the kill must be what ended it.
    assert!(
        took < Duration::from_secs(20),
        "reported {took:?} after the kill:\n{out}"
    );
}

#[test]
fn a_process_killed_mid_step_fails_the_step_at_once_saying_so() {
    let (out, took, code) = kill_during_step("process", |start| {
        let pid: i32 = start
            .split("(pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {start}"));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    });
    println!(
        "FIGURE killed-mid-step process: reported {} ms after kill -9",
        took.as_millis()
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("it was killed by SIGKILL (exit code 137)"),
        "{out}"
    );
    assert!(
        took < Duration::from_secs(20),
        "reported {took:?} after the kill:\n{out}"
    );
}

#[test]
fn an_app_oom_killed_mid_step_fails_the_step_with_that_diagnosis_well_within_its_wait() {
    if !docker_or_skip("an_app_oom_killed_mid_step") {
        return;
    }
    let _docker = docker_shared();
    let started_at = Instant::now();
    let out = lab_runner()
        .args(["verify", "--backend", "docker", "--lab"])
        .arg(fixture("verify/oom"))
        .output()
        .unwrap();
    let wall = started_at.elapsed();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fail = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("FAIL ["))
        .unwrap_or_else(|| panic!("no FAIL line:\n{all}"));
    let step: f64 = fail
        .split('[')
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no duration in {fail}"));
    println!(
        "FIGURE oom step failed after {step:.3} s (verify {:.1} s in all)",
        wall.as_secs_f64()
    );
    assert!(
        stdout.contains("was killed by the kernel's OOM killer (out of memory)"),
        "{all}"
    );
    assert!(
        stdout.contains("the container's memory limit is 128 MiB"),
        "{all}"
    );
    // The solve would wait 30 s after its leaks: the OOM kill must end the step long before.
    assert!(step < 20.0, "the step took {step} s:\n{all}");
    assert!(wall < Duration::from_secs(60), "{all}");
}

// ---------------------------------------------------------------------------------------------
// Ports.

/// Holds 127.0.0.1:`port` for the test. Another test's environment may hold it for a while (a
/// Part 1 verify publishes 9229): wait for it, so that it cannot be released between the check
/// and the run. A port some other program keeps (past a minute) is taken either way.
fn hold(port: u16) -> Option<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(listener) => return Some(listener),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                eprintln!(
                    "127.0.0.1:{port} stays taken by another program ({e}); testing with that"
                );
                return None;
            }
        }
    }
}

#[test]
fn the_inspector_port_taken_is_said_and_another_free_one_used() {
    let docker = docker_or_skip("the_inspector_port_taken");
    let _lock = docker.then(docker_shared);
    let _held = hold(9229);
    let lab = fixture_arg("reliability/inspector-port");
    let backends: &[&str] = if docker {
        &["process", "docker"]
    } else {
        &["process"]
    };
    for backend in backends {
        let out = lab_runner()
            .args(["verify", "--verbose", "--backend", backend, "--lab", &lab])
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{backend}: {all}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(
                "port 9229 on 127.0.0.1 is taken by another program; using another free port instead"
            ),
            "{backend}: {all}"
        );
        let inspector = stdout
            .split("the inspector at 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{backend}: no inspector address:\n{all}"));
        assert_ne!(inspector, "9229", "{backend}: {all}");
    }
}

#[test]
fn fixed_ports_with_the_app_port_taken_is_a_clear_error_on_both_backends() {
    let docker = docker_or_skip("fixed_ports_with_the_app_port_taken");
    let _lock = docker.then(docker_shared);
    let _held = hold(3001);
    let lab = fixture_arg("verify/quick");
    let backends: &[&str] = if docker {
        &["process", "docker"]
    } else {
        &["process"]
    };
    for backend in backends {
        let started_at = Instant::now();
        let out = lab_runner()
            .args([
                "verify",
                "--fixed-ports",
                "--backend",
                backend,
                "--lab",
                &lab,
            ])
            .output()
            .unwrap();
        let all = text(&out);
        // The environment could not start: exit 4, as documented.
        assert_eq!(out.status.code(), Some(4), "{backend}: {all}");
        assert!(
            all.contains(
                "port 3001 on 127.0.0.1 is taken by another program, and --fixed-ports asks for it"
            ),
            "{backend}: {all}"
        );
        assert!(
            all.contains("run without --fixed-ports"),
            "{backend}: {all}"
        );
        assert!(
            started_at.elapsed() < Duration::from_secs(10),
            "{backend}: {all}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Two verifies at once.

#[tokio::test(flavor = "multi_thread")]
async fn two_verifies_at_once_do_not_collide() {
    let Some(docker) = docker_client_or_skip("two_verifies_at_once").await else {
        return;
    };
    let _lock = docker_shared();
    let watch = watch_starts(docker);
    // Part 1 twice: both want host port 9229 for the inspector.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            tokio::task::spawn_blocking(|| {
                lab_runner()
                    .args(["verify", "part1", "--backend", "docker"])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let mut outputs = Vec::new();
    for run in runs {
        outputs.push(run.await.unwrap());
    }
    let seen = watch.stop().await;
    let mut sessions = Vec::new();
    for out in &outputs {
        let all = text(out);
        assert_eq!(out.status.code(), Some(0), "{all}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Every step of Part 1 (1.1 … 1.5 with the debugger steps 1.3.1 … 1.3.4).
        assert!(stdout.contains("9 passed, 0 failed"), "{all}");
        let (_, container) = started(&stdout)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no START line:\n{all}"));
        sessions.push((session_of(&container), container, stdout.to_string()));
    }
    assert_ne!(sessions[0].0, sessions[1].0, "the same session id twice");
    let mut networks = BTreeSet::new();
    let mut app_ports = BTreeSet::new();
    let mut inspector_ports = BTreeSet::new();
    for (session, container, stdout) in &sessions {
        let mine: Vec<_> = seen.iter().filter(|s| &s.session == session).collect();
        assert!(
            !mine.is_empty(),
            "no container start seen for session {session}"
        );
        for s in &mine {
            assert!(s.missed.is_none(), "{s:?}");
            assert_eq!(&s.name, container);
            networks.insert(s.network_mode.clone());
            app_ports.insert(s.host_port("3001/tcp").expect("the app port is published"));
            let inspector = s.host_port("9229/tcp").expect("the inspector is published");
            inspector_ports.insert(inspector);
            if inspector != 9229 {
                assert!(
                    stdout.contains("port 9229 on 127.0.0.1"),
                    "took {inspector} without saying why:\n{stdout}"
                );
            }
        }
        assert!(
            docker_ids("container", &format!("io.lab-runner.session={session}")).is_empty(),
            "session {session} left a container"
        );
        assert!(
            docker_ids("network", &format!("io.lab-runner.session={session}")).is_empty(),
            "session {session} left a network"
        );
    }
    println!(
        "FIGURE two-verifies: networks {networks:?}, app ports {app_ports:?}, inspector ports {inspector_ports:?}"
    );
    assert_eq!(networks.len(), 2, "{networks:?}");
    assert_eq!(app_ports.len(), 2, "{app_ports:?}");
    assert_eq!(inspector_ports.len(), 2, "{inspector_ports:?}");
}
