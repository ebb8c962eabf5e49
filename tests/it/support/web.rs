//! `lab-runner start --web` (and `demo --web`) for the tests: the real binary with no terminal,
//! its page's URL read off stdout, and plain HTTP requests written by hand (so a test can send any
//! `Host`, `Origin` or method it likes).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A session with its browser face.
pub struct WebSession {
    child: Child,
    /// The page's URL as printed (with the token).
    pub url: String,
    pub port: u16,
    pub token: String,
    /// What the runner printed after the URL, line by line.
    pub lines: mpsc::Receiver<String>,
    _state: tempfile::TempDir,
}

impl WebSession {
    /// `lab-runner <args> --web --no-browser` with a progress store of its own; waits for the URL.
    pub fn start(args: &[&str]) -> WebSession {
        let state = tempfile::tempdir().unwrap();
        WebSession::start_with_state(args, state)
    }

    pub fn start_with_state(args: &[&str], state: tempfile::TempDir) -> WebSession {
        let mut cmd: Command = super::lab_runner();
        cmd.args(args)
            .args(["--web", "--no-browser"])
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        WebSession::spawn(cmd, state)
    }

    /// `cmd` (a `lab-runner … --web` of the caller's making) with a progress store of its own.
    pub fn spawn(mut cmd: Command, state: tempfile::TempDir) -> WebSession {
        cmd.env("LAB_RUNNER_STATE_DIR", state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("lab-runner runs");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let url = loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with("http://") => break line,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "lab-runner printed no URL on a line of its own:\n{}",
                        seen.join("\n")
                    )
                }
            }
        };
        let port = url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the URL is not on 127.0.0.1: {url}"));
        let token = url.split("token=").nth(1).unwrap_or_default().to_string();
        WebSession {
            child,
            url,
            port,
            token,
            lines,
            _state: state,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request with these `head` lines (Host is the bound address unless `head` names one).
    pub fn request(&self, method: &str, target: &str, head: &[(&str, &str)], body: &str) -> Reply {
        let host = format!("127.0.0.1:{}", self.port);
        let mut lines = vec![format!("{method} {target} HTTP/1.1")];
        if !head.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            lines.push(format!("Host: {host}"));
        }
        for (k, v) in head {
            lines.push(format!("{k}: {v}"));
        }
        lines.push("Connection: close".into());
        lines.push(format!("Content-Length: {}", body.len()));
        http(self.port, &format!("{}\r\n\r\n{body}", lines.join("\r\n")))
    }

    /// The page state as JSON (with the token).
    pub fn state(&self) -> serde_json::Value {
        let reply = self.request("GET", &format!("/state?token={}", self.token), &[], "");
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    /// The page state, or None when the page no longer answers (the session has ended).
    pub fn try_state(&self) -> Option<serde_json::Value> {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let raw = format!(
            "GET /state?token={} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.token, self.port
        );
        let reply = std::panic::catch_unwind(|| http(self.port, &raw)).ok()?;
        (reply.status == 200).then(|| serde_json::from_str(&reply.body).unwrap())
    }

    /// An action as the page sends it.
    pub fn act(&self, action: &str) -> Reply {
        let origin = self.origin();
        self.request(
            "POST",
            "/action",
            &[
                ("Origin", &origin),
                ("X-Lab-Token", &self.token),
                ("Content-Type", "application/json"),
            ],
            &format!("{{\"action\":\"{action}\"}}"),
        )
    }

    /// Waits until the page state satisfies `holds`; fails with `what` and the state.
    pub fn wait_state(
        &self,
        what: &str,
        holds: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_state_for(what, Duration::from_secs(60), holds)
    }

    /// [`WebSession::wait_state`] with a time limit of its own.
    pub fn wait_state_for(
        &self,
        what: &str,
        limit: Duration,
        holds: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            let state = self.state();
            if holds(&state) {
                return state;
            }
            assert!(
                started.elapsed() < limit,
                "the page never showed {what}; its state:\n{state:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebSession {
    fn drop(&mut self) {
        // SIGTERM: the runner removes the environment it started, then exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, headers (lowercase names), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` to 127.0.0.1:`port` and reads the answer until the server closes (or, for an event
/// stream, until its head has come).
pub fn http(port: u16, raw: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the page's port answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&bytes);
                if text.contains("text/event-stream") && text.contains("\r\n\r\n") {
                    break;
                }
            }
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut head_lines = head.lines();
    let status = head_lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let headers = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}
