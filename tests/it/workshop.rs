//! `lab-runner workshop up / status / down` and `start --join`, over loopback: the real binary's
//! HTTPS server in the background, real participants' sessions (`start --web`, driven through their
//! page's actions) reporting to it, the dashboard read with a client that pins the server's
//! certificate as the join address says, and each refusal asked for.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{lab_runner, text, web::WebSession};

/// A workshop server of the test's own (its state folder), stopped when dropped.
struct Workshop {
    state: tempfile::TempDir,
    dashboard: String,
    join: String,
    /// `host:port`.
    addr: String,
    pin: String,
    key: String,
}

impl Workshop {
    fn up() -> Workshop {
        let state = tempfile::tempdir().unwrap();
        let out = workshop_cmd(&state, &["up"]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{all}");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let dashboard = stdout
            .lines()
            .find(|l| l.starts_with("https://") && l.contains("/dashboard?key="))
            .unwrap_or_else(|| panic!("no dashboard address on a line of its own:\n{all}"))
            .to_string();
        let join = stdout
            .lines()
            .find_map(|l| l.strip_prefix("lab-runner start PART --join '"))
            .and_then(|l| l.strip_suffix('\''))
            .unwrap_or_else(|| panic!("no join command:\n{all}"))
            .to_string();
        let addr = dashboard
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "loopback unless told: {addr}"
        );
        let pin = join.split("pin=").nth(1).unwrap().to_string();
        let key = dashboard.split("key=").nth(1).unwrap().to_string();
        Workshop {
            state,
            dashboard,
            join,
            addr,
            pin,
            key,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        workshop_cmd(&self.state, args)
    }

    fn client(&self) -> Https {
        pinned_client(&self.pin)
    }

    fn board(&self) -> serde_json::Value {
        let answer = self
            .client()
            .get(&format!(
                "https://{}/dashboard/state?key={}",
                self.addr, self.key
            ))
            .expect("the workshop answers");
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_str(&answer.body).unwrap()
    }

    fn wait_board(
        &self,
        what: &str,
        holds: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let board = self.board();
            if holds(&board) {
                return board;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the dashboard never showed {what}:\n{board:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Workshop {
    fn drop(&mut self) {
        let _ = workshop_cmd(&self.state, &["down"]);
    }
}

fn workshop_cmd(state: &tempfile::TempDir, args: &[&str]) -> Output {
    lab_runner()
        .arg("workshop")
        .args(args)
        .env("LAB_RUNNER_STATE_DIR", state.path())
        .output()
        .unwrap()
}

/// An HTTPS client that trusts only the certificate `pin` names, used from sync tests.
struct Https {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Https {
    fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
        self.runtime.block_on(async {
            let answer = request.send().await?;
            let status = answer.status().as_u16();
            let headers = answer.headers().clone();
            let body = answer.text().await?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
    }

    fn get(&self, url: &str) -> reqwest::Result<Answer> {
        self.send(self.client.get(url))
    }

    fn post(&self, url: &str, body: String) -> reqwest::Result<Answer> {
        self.send(
            self.client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body),
        )
    }

    /// Reads an event stream until `done` holds of what came.
    fn stream_until(&self, url: &str, done: impl Fn(&str) -> bool) -> String {
        self.runtime.block_on(async {
            let mut answer = self
                .client
                .get(url)
                .send()
                .await
                .expect("the stream answers");
            let mut seen = String::new();
            while !done(&seen) {
                let chunk = tokio::time::timeout(Duration::from_secs(10), answer.chunk())
                    .await
                    .unwrap_or_else(|_| panic!("nothing more came: {seen}"))
                    .expect("the stream");
                let Some(chunk) = chunk else {
                    panic!("the stream ended: {seen}")
                };
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            seen
        })
    }
}

fn https(config: Option<rustls::ClientConfig>) -> Https {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    lab_runner::util::crypto::ensure_provider();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(config) = config {
        builder = builder.tls_backend_preconfigured(config);
    }
    Https {
        client: builder.build().unwrap(),
        runtime,
    }
}

fn pinned_client(pin: &str) -> Https {
    https(Some(
        lab_runner::workshop::tls::pinned_client_config(pin).unwrap(),
    ))
}

fn joined(workshop: &Workshop, name: &str) -> WebSession {
    WebSession::start(&[
        "start",
        "part2",
        "--backend",
        "process",
        "--join",
        &workshop.join,
        "--name",
        name,
    ])
}

fn waiting_at(session: &WebSession, step: &str) {
    session.wait_state(&format!("step {step} waiting"), |s| {
        s["step"]["id"] == step && s["status"]["waiting"] == true
    });
}

fn participant<'a>(board: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    board["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

#[test]
fn workshop_a_joined_participant_is_on_the_dashboard_and_in_status_and_leaves() {
    let workshop = Workshop::up();
    // A second `up` while one runs says so.
    let again = workshop.run(&["up"]);
    assert_ne!(again.status.code(), Some(0));
    assert!(text(&again).contains("already running"), "{}", text(&again));

    let session = joined(&workshop, "Bea");
    waiting_at(&session, "2.0");
    assert_eq!(session.act("check").status, 202);
    waiting_at(&session, "2.1");
    assert_eq!(session.act("check").status, 202);
    let board = workshop.wait_board("Bea failing at 2.1", |b| {
        participant(b, "Bea").is_some_and(|p| p["step"] == "2.1" && p["last_failure"].is_object())
    });
    let bea = participant(&board, "Bea").unwrap();
    assert_eq!(bea["part"], "part2");
    assert_eq!(bea["checks_passed"], 1);
    let failure = &bea["last_failure"];
    assert_eq!(failure["step"], "2.1");
    assert_eq!(failure["expected"], "403");
    assert!(
        failure["saw"].as_str().unwrap().starts_with("404"),
        "{failure}"
    );
    assert!(failure["hint"].is_string(), "{failure}");
    let step = |id: &str| {
        board["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == id)
            .unwrap_or_else(|| panic!("no step {id} on the dashboard: {board:#}"))
            .clone()
    };
    assert_eq!(
        (step("2.0")["passed"].as_u64(), step("2.0")["here"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (step("2.1")["passed"].as_u64(), step("2.1")["here"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(
        step("2.1")["title"]
            .as_str()
            .unwrap()
            .starts_with("Enable the lab endpoints")
    );

    // The dashboard page and its live stream.
    let client = workshop.client();
    let page = client.get(&workshop.dashboard).unwrap();
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.body.contains("\"name\":\"Bea\""), "{}", page.body);
    client.stream_until(
        &format!(
            "https://{}/dashboard/events?key={}",
            workshop.addr, workshop.key
        ),
        |seen| seen.contains("event: board") && seen.contains("\"Bea\""),
    );

    // The instructor's terminal.
    let status = workshop.run(&["status"]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(0), "{said}");
    assert!(said.contains("1 joined"), "{said}");
    assert!(said.contains("Bea") && said.contains("part2 2.1"), "{said}");
    assert!(said.contains("expected 403, saw 404"), "{said}");

    // The participant's session ends: the dashboard says they left.
    drop(session);
    workshop.wait_board("Bea gone", |b| {
        participant(b, "Bea").is_some_and(|p| p["left"] == true)
    });

    let down = workshop.run(&["down"]);
    assert!(
        text(&down).contains("workshop server stopped"),
        "{}",
        text(&down)
    );
    let status = workshop.run(&["status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(text(&status).contains("no workshop server is running"));
    assert!(
        client
            .get(&format!("https://{}/health", workshop.addr))
            .is_err(),
        "the server still answers after down"
    );
}

#[test]
fn workshop_the_server_refuses_what_does_not_belong_to_the_room() {
    let workshop = Workshop::up();
    let client = workshop.client();
    let code = workshop
        .join
        .split("/join/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let base = format!("https://{}", workshop.addr);
    let batch = r#"{"participant":"abc123","name":"x","lab":"l","progress":[]}"#;
    let post =
        |path: &str, body: String| client.post(&format!("{base}{path}"), body).unwrap().status;
    assert_eq!(post(&format!("/join/{code}/progress"), batch.into()), 204);
    // Another code.
    let wrong = "0".repeat(code.len());
    assert_eq!(post(&format!("/join/{wrong}/progress"), batch.into()), 403);
    // Not a batch; a batch that is too big; a participant id that is not one.
    assert_eq!(
        post(&format!("/join/{code}/progress"), "{\"x\":1}".into()),
        400
    );
    let big = format!(
        r#"{{"participant":"abc123","name":"{}","lab":"l","progress":[]}}"#,
        "x".repeat(70 * 1024)
    );
    assert_eq!(post(&format!("/join/{code}/progress"), big), 413);
    let bad_id = batch.replace("abc123", "../etc");
    assert_eq!(post(&format!("/join/{code}/progress"), bad_id), 400);
    // The dashboard without the key, with another.
    for target in ["/dashboard", "/dashboard/state", "/dashboard/events"] {
        let none = client.get(&format!("{base}{target}")).unwrap();
        assert_eq!(none.status, 403, "{target}");
        let other = client
            .get(&format!(
                "{base}{target}?key={}",
                "0".repeat(workshop.key.len())
            ))
            .unwrap();
        assert_eq!(other.status, 403, "{target}");
    }
    // Another host name (DNS rebinding).
    let rebound = client
        .send(
            client
                .client
                .get(format!("{base}/dashboard/state?key={}", workshop.key))
                .header("Host", "rebind.attacker.example"),
        )
        .unwrap();
    assert_eq!(rebound.status, 421, "{}", rebound.body);
    // A client that expects another certificate does not talk to it; nor does plain HTTP.
    let refused = pinned_client(&"ab".repeat(32)).get(&format!("{base}/health"));
    assert!(
        refused.is_err(),
        "a client pinned to another certificate got in"
    );
    let plain = https(None).get(&format!("http://{}/health", workshop.addr));
    assert!(
        plain.map(|r| r.status != 200).unwrap_or(true),
        "the server answered plain HTTP"
    );
}

#[test]
fn workshop_a_participants_session_goes_on_when_the_workshop_goes_away() {
    let workshop = Workshop::up();
    let session = joined(&workshop, "Cy");
    waiting_at(&session, "2.0");
    workshop.wait_board("Cy", |b| participant(b, "Cy").is_some());
    assert!(text(&workshop.run(&["down"])).contains("stopped"));
    // The server is gone: the session answers and moves on as before.
    assert_eq!(session.act("check").status, 202);
    waiting_at(&session, "2.1");
    assert_eq!(session.act("do").status, 202);
    waiting_at(&session, "2.1.1");
}

#[test]
fn workshop_a_join_address_that_is_not_one_is_a_usage_error() {
    for (url, says) in [
        (
            "http://10.0.0.5:8443/join/abc?pin=00",
            "is not a join address",
        ),
        ("https://10.0.0.5:8443/join/abc", "has no pin"),
        ("https://10.0.0.5:8443/join/abc?pin=1234", "not a SHA-256"),
    ] {
        let out = lab_runner()
            .args(["start", "part2", "--backend", "process", "--join", url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out));
        assert!(text(&out).contains(says), "{url}: {}", text(&out));
    }
}
