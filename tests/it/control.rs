//! `lab-runner redeploy` and `lab-runner check` from another terminal, against a `lab-runner start`
//! running in a real pseudo-terminal: what a participant working in their own shell does.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::session::OsSession as Session;
use expectrl::{Expect, Regex, Session as PtySession};
use support::{Run, lab_runner, run_command};

/// Every command of a test shares its own state and socket folders, so no other session on the
/// machine (another test's, a person's) is ever found.
struct Dirs {
    state: tempfile::TempDir,
    runtime: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            state: tempfile::tempdir().unwrap(),
            runtime: tempfile::tempdir().unwrap(),
        }
    }

    fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("LAB_RUNNER_STATE_DIR", self.state.path())
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("NO_COLOR", "1")
            .env_remove("LAB_RUNNER_SESSION")
            .env_remove("LAB_RUNNER_LAB")
    }

    /// `lab-runner ARGS` from "another terminal".
    fn run(&self, args: &[&str]) -> Run {
        run_command(self.apply(&mut lab_runner()).args(args))
    }

    fn sockets(&self) -> Vec<String> {
        match std::fs::read_dir(self.runtime.path().join("lab-runner")) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sock"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A `lab-runner` in a pseudo-terminal, stopped with SIGTERM (which removes its environment) if the
/// test ends before it does.
struct Pty(Session);

impl Pty {
    fn spawn(dirs: &Dirs, args: &[&str]) -> Pty {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab-runner"));
        dirs.apply(cmd.args(args).env("TERM", "xterm"));
        let mut session = PtySession::spawn(cmd).expect("a pseudo-terminal");
        session.set_expect_timeout(Some(Duration::from_secs(45)));
        Pty(session)
    }

    /// Waits for `needle`; on timeout the test fails saying what it waited for.
    fn expect(&mut self, needle: &str) {
        if let Err(e) = self.0.expect(needle) {
            panic!("expected {needle:?} on the terminal: {e}");
        }
    }

    /// The first group of `pattern` on the screen.
    fn capture(&mut self, pattern: &str) -> String {
        let found = match self.0.expect(Regex(pattern)) {
            Ok(found) => found,
            Err(e) => panic!("expected /{pattern}/ on the terminal: {e}"),
        };
        String::from_utf8_lossy(found.get(1).expect("a group")).into_owned()
    }

    fn send(&mut self, keys: &str) {
        self.0.send(keys).expect("keys sent");
    }

    fn wait_exit(&mut self) -> i32 {
        match self.0.get_process_mut().wait().expect("wait") {
            expectrl::process::unix::WaitStatus::Exited(_, code) => code,
            other => panic!("lab-runner ended with {other:?}"),
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let alive = |s: &mut Session| s.get_process_mut().is_alive().unwrap_or(false);
        if !alive(&mut self.0) {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.0.get_process().pid().as_raw());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive(&mut self.0) && Instant::now() < deadline {
            // Keep reading so its goodbye lines never block on a full terminal.
            let _ = self.0.check(expectrl::Eof);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The status of `GET base+path` (with the token in `x-lab-token` when given).
fn status(base: &str, path: &str, token: Option<&str>) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let header = token
        .map(|t| format!("x-lab-token: {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// Start's intro: the app's address and the session's token, as the participant copies them.
fn base_and_token(pty: &mut Pty) -> (String, String) {
    let base = pty.capture(r"export BASE=(http://127\.0\.0\.1:\d+)");
    let token = pty.capture(r"export LAB_TOKEN=([0-9a-f]{32})");
    (base, token)
}

#[test]
fn a_participant_enables_the_routes_and_checks_from_another_terminal() {
    if !support::docker_or_skip("a_participant_enables_the_routes_and_checks_from_another_terminal")
    {
        return;
    }
    let _docker = support::docker_shared();
    let dirs = Dirs::new();
    let mut start = Pty::spawn(&dirs, &["start", "part2", "--backend", "docker"]);
    let (base, token) = base_and_token(&mut start);
    start.expect("Step 2.0 — Confirm the baseline");
    start.expect("[c] check my work");
    start.send("c");
    start.expect("PASS step 2.0 done");
    start.expect("Step 2.1 — Enable the lab endpoints");
    start.expect("[c] check my work");
    assert_eq!(
        dirs.sockets().len(),
        1,
        "one control socket while start runs"
    );

    // Not done yet: the same diagnosis as `c`, here and there, exit code 1.
    let not_yet = dirs.run(&["check"]);
    assert_eq!(not_yet.code, 1, "{}", not_yet.all);
    for line in [
        "checking…",
        "FAIL ",
        "expected: 403",
        "saw:      404",
        "hint:",
    ] {
        assert!(
            not_yet.stdout.contains(line),
            "{line:?} in:\n{}",
            not_yet.all
        );
    }
    start.expect("`lab-runner check` from another terminal:");
    start.expect("saw:      404");
    start.expect("[c] check my work");

    let enable = format!("LAB_TOKEN={token}");
    let redeploy = dirs.run(&["redeploy", "--env", "LAB_ENABLE=true", "--env", &enable]);
    assert_eq!(redeploy.code, 0, "{}", redeploy.all);
    assert!(
        redeploy.stdout.contains("redeployed the app (lab-runner-")
            && redeploy.stdout.contains("LAB_ENABLE=true")
            && redeploy.stdout.contains("LAB_TOKEN=(32 chars, hidden)")
            && redeploy.stdout.contains("$BASE still holds"),
        "{}",
        redeploy.all
    );
    assert!(
        !redeploy.all.contains(&token),
        "the token was printed:\n{}",
        redeploy.all
    );
    // Production without LAB_ALLOW_PROD: the guard refuses, which is what 2.1 asks to see.
    assert_eq!(status(&base, "/api/lab/status", Some(&token)), 403);
    start.expect("recreate the app with");

    let unknown = dirs.run(&["check", "9.9"]);
    assert_eq!(unknown.code, 2, "{}", unknown.all);
    assert!(
        unknown.all.contains("part2 has no step 9.9"),
        "{}",
        unknown.all
    );

    let done = dirs.run(&["check"]);
    assert_eq!(done.code, 0, "{}", done.all);
    assert!(done.stdout.contains("PASS step 2.1 done"), "{}", done.all);
    start.expect("PASS step 2.1 done");
    start.expect("Step 2.1.1 — Allow the lab in production");
    start.expect("[c] check my work");

    let allow = dirs.run(&["redeploy", "--env", "LAB_ALLOW_PROD=true"]);
    assert_eq!(allow.code, 0, "{}", allow.all);
    assert_eq!(status(&base, "/api/lab/status", Some(&token)), 200);
    let allowed = dirs.run(&["check"]);
    assert_eq!(allowed.code, 0, "{}", allowed.all);
    start.expect("PASS step 2.1.1 done");
    start.expect("Step 2.2 — Reproduce an event loop jam");
    start.expect("[c] check my work");

    let original = dirs.run(&["redeploy", "--original"]);
    assert_eq!(original.code, 0, "{}", original.all);
    assert!(
        original
            .stdout
            .contains("with the environment the part started with")
            && original.stdout.contains("LAB_ENABLE removed"),
        "{}",
        original.all
    );
    assert_eq!(status(&base, "/api/lab/status", Some(&token)), 404);

    start.send("q");
    start.expect("progress saved: `lab-runner start part2` resumes at step 2.2");
    assert_eq!(start.wait_exit(), 0);
    assert!(dirs.sockets().is_empty(), "the socket outlived its session");

    let after = dirs.run(&["check"]);
    assert_ne!(after.code, 0, "{}", after.all);
    assert!(
        after.all.contains("no lab session is running")
            && after.all.contains("lab-runner start part2"),
        "{}",
        after.all
    );
}

#[test]
fn redeploy_keeps_the_port_on_the_process_backend_and_other_sessions_refuse_check() {
    let dirs = Dirs::new();
    let mut start = Pty::spawn(&dirs, &["start", "part2", "--backend", "process"]);
    let (base, token) = base_and_token(&mut start);
    start.expect("[c] check my work");
    assert_eq!(status(&base, "/api/lab/status", None), 404);

    let enable = format!("LAB_TOKEN={token}");
    let redeploy = dirs.run(&[
        "redeploy",
        "--part",
        "2",
        "--env",
        "LAB_ENABLE=true",
        "--env",
        &enable,
        "--env",
        "LAB_ALLOW_PROD=true",
    ]);
    assert_eq!(redeploy.code, 0, "{}", redeploy.all);
    assert!(
        redeploy.stdout.contains("redeployed the app (pid ")
            && redeploy
                .stdout
                .contains(&format!("answers at {base} as before")),
        "{}",
        redeploy.all
    );
    assert_eq!(status(&base, "/api/lab/status", Some(&token)), 200);

    // A second session (demo) is running too: a client must choose, and only start answers check.
    let mut demo = Pty::spawn(
        &dirs,
        &[
            "demo",
            "part2",
            "--backend",
            "process",
            "--yes",
            "--pace",
            "60",
        ],
    );
    demo.expect("step 2.0 checked");
    let ambiguous = dirs.run(&["check"]);
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.all);
    assert!(
        ambiguous
            .all
            .contains("2 lab sessions are running; choose one with --part")
            && ambiguous.all.contains("(lab-runner start, pid")
            && ambiguous.all.contains("(lab-runner demo, pid"),
        "{}",
        ambiguous.all
    );
    let demo_socket = dirs
        .sockets()
        .into_iter()
        .map(|s| dirs.runtime.path().join("lab-runner").join(s))
        .find(|s| {
            std::fs::read_to_string(s.with_extension("json")).is_ok_and(|j| j.contains("\"demo\""))
        })
        .expect("the demo session's socket");
    let refused = run_command(
        dirs.apply(&mut lab_runner())
            .args(["check"])
            .env("LAB_RUNNER_SESSION", &demo_socket),
    );
    assert_eq!(refused.code, 2, "{}", refused.all);
    assert!(
        refused
            .all
            .contains("check works with a `lab-runner start` session; this is a demo session"),
        "{}",
        refused.all
    );
    drop(demo);

    let original = dirs.run(&["redeploy", "--original"]);
    assert_eq!(original.code, 0, "{}", original.all);
    assert_eq!(status(&base, "/api/lab/status", Some(&token)), 404);
    start.send("q");
    assert_eq!(start.wait_exit(), 0);
}

#[test]
fn without_a_session_the_clients_say_how_to_start_one_and_bad_input_is_a_usage_error() {
    let dirs = Dirs::new();
    // A socket left by a killed session: found, refused, removed.
    let folder = dirs.runtime.path().join("lab-runner");
    std::fs::create_dir_all(&folder).unwrap();
    let stale = folder.join("dead0000.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    std::fs::write(folder.join("dead0000.json"), "{}").unwrap();

    for args in [&["check"][..], &["redeploy", "--original"]] {
        let out = dirs.run(args);
        assert_eq!(out.code, 4, "{args:?}: {}", out.all);
        assert!(
            out.all.contains("no lab session is running")
                && out.all.contains("`lab-runner start part2`"),
            "{args:?}: {}",
            out.all
        );
    }
    assert!(!stale.exists() && !folder.join("dead0000.json").exists());

    let gone = run_command(
        dirs.apply(&mut lab_runner())
            .args(["check"])
            .env("LAB_RUNNER_SESSION", folder.join("nothing.sock")),
    );
    assert_eq!(gone.code, 4, "{}", gone.all);
    assert!(
        gone.all.contains("named by LAB_RUNNER_SESSION"),
        "{}",
        gone.all
    );

    for (args, says) in [
        (&["redeploy", "--env", "FOO"][..], "has no `=`"),
        (&["redeploy", "--env", "=x"], "cannot be empty"),
        (
            &["redeploy", "--unset", "A-B"],
            "not an environment variable's name",
        ),
    ] {
        let out = dirs.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.all);
        assert!(out.all.contains(says), "{args:?}: {}", out.all);
    }
    assert!(Path::new(&folder).exists());
}
