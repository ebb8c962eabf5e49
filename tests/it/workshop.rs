//! `lab-runner workshop up / status / down` and `start --join`, over loopback: the real binary's
//! HTTPS server in the background, real participants' sessions (`start --web`, driven through their
//! page's actions) reporting to it, the dashboard read with a client that pins the server's
//! certificate as the join address says, and each refusal asked for.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{
    docker_ids, docker_or_skip, docker_shared, fixture, lab_runner, text, web::WebSession,
};

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
        Workshop::up_with(&["up"]).0
    }

    /// `workshop up` with these arguments; also what it printed.
    fn up_with(args: &[&str]) -> (Workshop, String) {
        let state = tempfile::tempdir().unwrap();
        let out = workshop_cmd(&state, args);
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
        (
            Workshop {
                state,
                dashboard,
                join,
                addr,
                pin,
                key,
            },
            all,
        )
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

/// The running seats `workshop status` lists: (number, address with its token).
fn seat_addresses(status: &str) -> Vec<(usize, String)> {
    seat_lines(status)
        .into_iter()
        .filter(|s| s.state == "running")
        .map(|s| (s.number, s.url))
        .collect()
}

/// A seat as `workshop status` lists it.
#[derive(Debug, Clone, PartialEq)]
struct SeatLine {
    number: usize,
    state: String,
    part: String,
    /// `(done/steps done)`, when the status could read it.
    progress: String,
    url: String,
}

/// The seats `workshop status` lists: `seat N  STATE  PART  (D/S done)  URL`.
fn seat_lines(status: &str) -> Vec<SeatLine> {
    status
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.first() == Some(&"seat")).then_some(())?;
            let url = words.last()?.to_string();
            url.starts_with("https://").then_some(())?;
            Some(SeatLine {
                number: words.get(1)?.parse().ok()?,
                state: words.get(2)?.to_string(),
                part: words.get(3)?.to_string(),
                progress: words.get(4..words.len() - 1).unwrap_or_default().join(" "),
                url,
            })
        })
        .collect()
}

/// `docker inspect` of a container, as JSON.
fn inspect(container: &str) -> serde_json::Value {
    let out = std::process::Command::new("docker")
        .args(["inspect", container])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

#[test]
fn workshop_seats_are_warm_private_reached_only_through_the_server_and_gone_after_down() {
    if !docker_or_skip("workshop seats") {
        return;
    }
    let _docker = docker_shared();
    let (workshop, said) = Workshop::up_with(&["up", "--seats", "2", "--part", "part2"]);
    // The limits are said before anything starts; `up` returns with every seat ready.
    assert!(
        said.contains("seats: 2 seat(s), each: app 1024 MiB") && said.contains("of 2 cores"),
        "{said}"
    );
    assert!(said.contains("2 seat(s) ready"), "{said}");
    let sheet = said
        .lines()
        .find(|l| l.contains("/seats?key="))
        .unwrap_or_else(|| panic!("no sheet address:\n{said}"))
        .to_string();
    let status = text(&workshop.run(&["status"]));
    let seats = seat_addresses(&status);
    assert_eq!(
        seats.iter().map(|s| s.0).collect::<Vec<_>>(),
        [1, 2],
        "{status}"
    );
    let token = |url: &str| url.split("token=").nth(1).unwrap().to_string();
    let (one, two) = (&seats[0].1, &seats[1].1);
    assert!(one.starts_with(&format!("https://{}/seat/1/?token=", workshop.addr)));
    assert_ne!(token(one), token(two), "each seat has its own secret");

    // Warm: each seat's guide is at its first step, waiting, when its participant arrives.
    let client = workshop.client();
    for (n, url) in &seats {
        let page = client.get(url).unwrap();
        assert_eq!(page.status, 200, "seat {n}: {}", page.body);
        assert!(page.body.contains("Confirm the baseline"), "seat {n}");
        // The seat's page keeps its own policy (its script, by hash), not the dashboard's.
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'sha256-") && csp.contains("connect-src 'self'"));
        let state = client
            .get(&url.replace("/?token=", "/state?token="))
            .unwrap();
        let state: serde_json::Value = serde_json::from_str(&state.body).unwrap();
        assert_eq!(state["step"]["id"], "2.0", "seat {n}");
        assert_eq!(state["status"]["waiting"], true, "seat {n}");
    }

    // Only with its own secret; nothing else reaches a seat.
    let base = format!("https://{}", workshop.addr);
    let status_of = |url: String| client.get(&url).unwrap().status;
    // Refused by the workshop itself, before anything reaches the seat (which would refuse too).
    for url in [
        format!("{base}/seat/1/state"),
        format!("{base}/seat/1/state?token={}", token(two)),
    ] {
        let refused = client.get(&url).unwrap();
        assert_eq!(refused.status, 403, "{url}");
        assert!(
            refused.body.contains("your seat's card"),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        status_of(format!("{base}/seat/3/?token={}", token(one))),
        404
    );
    let rebound = client
        .send(
            client
                .client
                .get(format!("{base}/seat/1/state?token={}", token(one)))
                .header("Host", "rebind.attacker.example"),
        )
        .unwrap();
    assert_eq!(rebound.status, 421);
    // Without the trailing slash, the page's relative addresses would miss the seat: redirected.
    let bare = client
        .get(&format!("{base}/seat/1?token={}", token(one)))
        .unwrap();
    assert!(bare.body.contains("Confirm the baseline"), "{}", bare.body);

    // The page's actions go through from the page's own origin (the workshop's), not another.
    let act = |origin: &str| {
        client
            .send(
                client
                    .client
                    .post(format!("{base}/seat/1/action"))
                    .header("x-lab-token", token(one))
                    .header("Origin", origin)
                    .header("Content-Type", "application/json")
                    .body(r#"{"action":"check"}"#),
            )
            .unwrap()
            .status
    };
    assert_eq!(act("https://elsewhere.example"), 403);
    assert_eq!(act(&base), 202);
    // Seat 1's check reached the dashboard (the seats join the workshop as "seat N").
    workshop.wait_board("seat 1 past 2.0", |b| {
        participant(b, "seat 1").is_some_and(|p| p["checks_passed"] == 1)
            && participant(b, "seat 2").is_some_and(|p| p["step"] == "2.0")
    });
    client.stream_until(
        &format!("{base}/seat/1/events?token={}", token(one)),
        |seen| seen.contains("event: state") && seen.contains("\"2.1\""),
    );

    // Each seat's environment: its own containers, with the plan's limits, published on loopback.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workshop.state.path().join("workshop.json")).unwrap(),
    )
    .unwrap();
    let seat_pids: Vec<u64> = state["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap())
        .collect();
    let mut containers = Vec::new();
    for pid in &seat_pids {
        // Its app's container, and its terminal's since its page was opened.
        let ids = docker_ids("container", &format!("io.lab-runner.runner-pid={pid}"));
        let (terminal, app): (Vec<serde_json::Value>, Vec<serde_json::Value>) = ids
            .iter()
            .map(|id| inspect(id))
            .partition(|c| c["Name"].as_str().unwrap().ends_with("-terminal"));
        assert_eq!(app.len(), 1, "seat (pid {pid}) has its app's container");
        assert_eq!(terminal.len(), 1, "seat (pid {pid}) has its terminal's");
        assert_eq!(terminal[0]["HostConfig"]["Memory"], 64 * 1024 * 1024);
        assert_eq!(
            terminal[0]["HostConfig"]["NetworkMode"],
            app[0]["HostConfig"]["NetworkMode"]
        );
        let c = &app[0];
        assert_eq!(c["HostConfig"]["Memory"], 1024 * 1024 * 1024);
        assert_eq!(c["HostConfig"]["NanoCpus"], 1_000_000_000);
        for bindings in c["HostConfig"]["PortBindings"]
            .as_object()
            .unwrap()
            .values()
        {
            for b in bindings.as_array().unwrap() {
                assert_eq!(b["HostIp"], "127.0.0.1", "{bindings}");
            }
        }
        containers.push(c["Id"].as_str().unwrap().to_string());
    }
    assert_ne!(
        inspect(&containers[0])["HostConfig"]["NetworkMode"],
        inspect(&containers[1])["HostConfig"]["NetworkMode"],
        "each seat has its own network"
    );

    // The printable sheet: the instructor's key; a card with a QR code per seat.
    assert_eq!(status_of(sheet.split('?').next().unwrap().to_string()), 403);
    let printed = client.get(&sheet).unwrap();
    assert_eq!(printed.status, 200);
    assert_eq!(printed.body.matches("<svg").count(), 2, "{}", printed.body);
    assert!(printed.body.contains(one.as_str()) && printed.body.contains(two.as_str()));

    // `down` stops the seats, and their environments go with them.
    let down = workshop.run(&["down"]);
    assert!(
        text(&down).contains("workshop server stopped"),
        "{}",
        text(&down)
    );
    for pid in &seat_pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "seat (pid {pid}) still runs after down"
        );
        assert!(
            docker_ids("container", &format!("io.lab-runner.runner-pid={pid}")).is_empty(),
            "seat (pid {pid}) left its containers"
        );
    }
}

#[test]
fn workshop_refuses_seats_that_do_not_fit_with_the_numbers() {
    let state = tempfile::tempdir().unwrap();
    let out = workshop_cmd(&state, &["up", "--seats", "500", "--part", "part2"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    // 500 × (the lab's memory_min_mb 256 + 64 for the terminal + 32 for the session) is far over
    // any test machine's memory.
    assert!(said.contains("500 seats do not fit this machine"), "{said}");
    assert!(said.contains("each needs at least 352 MiB"), "{said}");
    assert!(said.contains("176000 MiB in all"), "{said}");
    assert!(said.contains("fit"), "{said}");
    // Nothing was started.
    let status = workshop_cmd(&state, &["status"]);
    assert!(text(&status).contains("no workshop server is running"));
    let no_part = workshop_cmd(&state, &["up", "--seats", "2"]);
    assert_eq!(no_part.status.code(), Some(2), "{}", text(&no_part));
    assert!(text(&no_part).contains("--part"), "{}", text(&no_part));
}

#[test]
fn workshop_verify_runs_the_part_once_per_seat_at_once_and_reports_each() {
    if !docker_or_skip("workshop verify") {
        return;
    }
    let _docker = docker_shared();
    let state = tempfile::tempdir().unwrap();
    let run = |lab: &str| {
        let lab = crate::support::fixture(lab);
        workshop_cmd(
            &state,
            &[
                "verify",
                "part1",
                "--seats",
                "2",
                "--lab",
                lab.to_str().unwrap(),
            ],
        )
    };
    let quick = run("verify/quick");
    let said = text(&quick);
    assert_eq!(quick.status.code(), Some(0), "{said}");
    assert!(said.contains("seats: 2 seat(s)"), "{said}");
    assert!(
        said.contains("verifying part1 on 2 seat(s) at once"),
        "{said}"
    );
    for n in [1, 2] {
        assert!(
            said.lines()
                .any(|l| l.trim_start().starts_with(&format!("seat {n} ")) && l.contains("PASS")),
            "seat {n}: {said}"
        );
    }
    assert!(said.contains("2 of 2 seat(s) passed"), "{said}");

    // A part that cannot pass within its limit (128 MiB, 192 MB retained): every seat says where
    // and why, and the whole is a failure.
    let oom = run("verify/oom");
    let said = text(&oom);
    assert_eq!(oom.status.code(), Some(1), "{said}");
    assert_eq!(said.matches("FAIL").count(), 2, "{said}");
    assert_eq!(
        said.matches("1.1 Retain more than fits (app_died").count(),
        2,
        "{said}"
    );
    assert!(said.contains("0 of 2 seat(s) passed"), "{said}");

    // Without --seats and without a running workshop: what to do.
    let none = workshop_cmd(&state, &["verify", "part1"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(text(&none).contains("--seats N"), "{}", text(&none));
}

/// A WebSocket to `path` on the workshop over TLS that trusts only the workshop's certificate.
async fn workshop_socket(
    workshop: &Workshop,
    path: &str,
    origin: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    String,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    lab_runner::util::crypto::ensure_provider();
    let config = lab_runner::workshop::tls::pinned_client_config(&workshop.pin).unwrap();
    let tcp = tokio::net::TcpStream::connect(&workshop.addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = format!("wss://{}{path}", workshop.addr)
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::client_async(request, tls),
    )
    .await
    {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(answer))) => {
            Err(format!("HTTP {}", answer.status()))
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 15 s".into()),
    }
}

#[test]
fn workshop_a_seats_devtools_reach_its_inspector_only_through_the_workshop() {
    use futures_util::{SinkExt as _, StreamExt as _};
    if !docker_or_skip("a seat's DevTools") {
        return;
    }
    let _docker = docker_shared();
    let (workshop, said) = Workshop::up_with(&["up", "--seats", "1", "--part", "part1"]);
    assert!(said.contains("1 seat(s) ready"), "{said}");
    let status = text(&workshop.run(&["status"]));
    let seats = seat_addresses(&status);
    let token = seats[0].1.split("token=").nth(1).unwrap().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // What Chrome DevTools opens from the address the seat's page shows.
        let path = format!("/seat/1/inspector?token={token}");
        let mut socket = workshop_socket(&workshop, &path, Some("devtools://devtools"))
            .await
            .expect("DevTools reaches the seat's inspector through the workshop");
        let call = serde_json::json!({
            "id": 1,
            "method": "Runtime.evaluate",
            "params": {"expression": "1+1", "returnByValue": true}
        });
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(
                call.to_string(),
            ))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(message) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message.unwrap() {
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if value["id"] == 1 {
                        return value;
                    }
                }
            }
            panic!("the connection ended before the reply")
        })
        .await
        .expect("a reply within 15 s");
        assert_eq!(reply["result"]["result"]["value"], 2, "{reply}");

        // Without the seat's secret, or from a page that is not DevTools nor the seat's: refused.
        let none = workshop_socket(&workshop, "/seat/1/inspector", Some("devtools://devtools"));
        assert_eq!(none.await.err().as_deref(), Some("HTTP 403 Forbidden"));
        let foreign = workshop_socket(&workshop, &path, Some("https://elsewhere.example"));
        assert_eq!(foreign.await.err().as_deref(), Some("HTTP 403 Forbidden"));
    });
}

#[test]
fn workshop_a_participant_on_another_machine_follows_a_seat_through_the_workshop() {
    if !docker_or_skip("a seat followed through the workshop") {
        return;
    }
    let _docker = docker_shared();
    let (workshop, _) = Workshop::up_with(&["up", "--seats", "1", "--part", "part2"]);
    let seat = SeatPage::of(&workshop, 1);
    let first = seat.waiting_at("2.0");
    // The intro's `cd` and exports name this machine's folder and the seat's app: true in the seat's
    // terminal, where they run.
    let intro_blocks = crate::web_shell::intro_blocks(&first);
    assert!(
        intro_blocks
            .iter()
            .any(|b| b.contains("export BASE=http://127.0.0.1:"))
    );
    for block in &intro_blocks {
        seat.type_ok(block);
    }
    for (step, next) in [("2.0", "2.1"), ("2.1", "2.1.1")] {
        seat.follow(step);
        seat.check_until(next);
    }
    // The instructor sees it.
    workshop.wait_board("seat 1 at 2.1.1", |b| {
        participant(b, "seat 1").is_some_and(|p| p["step"] == "2.1.1" && p["checks_passed"] == 2)
    });
}

/// A seat's page as its participant uses it, through the workshop: its state, its buttons, its
/// terminal.
struct SeatPage {
    client: Https,
    /// `https://host:port/seat/N`.
    seat: String,
    token: String,
    origin: String,
}

impl SeatPage {
    fn of(workshop: &Workshop, number: usize) -> SeatPage {
        let status = text(&workshop.run(&["status"]));
        let (_, page) = seat_addresses(&status)
            .into_iter()
            .find(|(n, _)| *n == number)
            .unwrap_or_else(|| panic!("no seat {number} running:\n{status}"));
        SeatPage {
            client: workshop.client(),
            seat: format!("https://{}/seat/{number}", workshop.addr),
            token: page.split("token=").nth(1).unwrap().to_string(),
            origin: format!("https://{}", workshop.addr),
        }
    }

    fn state(&self) -> serde_json::Value {
        let answer = self
            .client
            .get(&format!("{}/state?token={}", self.seat, self.token))
            .unwrap();
        serde_json::from_str(&answer.body).unwrap()
    }

    fn wait(&self, what: &str, holds: &dyn Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let s = self.state();
            if holds(&s) {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the seat never showed {what}:\n{s:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the page sends: the seat's secret, and the page's own origin (the workshop's).
    fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.client
            .send(
                self.client
                    .client
                    .post(format!("{}/{path}", self.seat))
                    .header("x-lab-token", &self.token)
                    .header("Origin", &self.origin)
                    .header("Content-Type", "application/json")
                    .body(body.to_string()),
            )
            .unwrap()
    }

    /// Types `block` into the main terminal and waits for it to end: what the terminal shows after
    /// it started, and how it ended.
    fn type_in_main(&self, block: &str) -> (String, String) {
        let before = self.state();
        let count = crate::web_shell::ended(&before, "main");
        let shown = crate::web_shell::lines(&before, "main").len();
        let reply = self.post("shell", serde_json::json!({ "run": block }));
        assert_eq!(reply.status, 202, "{block}: {}", reply.body);
        let after = self.wait("the block's end", &|s| {
            crate::web_shell::ended(s, "main") > count
        });
        let lines = crate::web_shell::lines(&after, "main");
        let printed = lines[shown.min(lines.len())..].join("\n");
        let main = crate::web_shell::terminal(&after, "main").unwrap();
        (printed, main["last"].as_str().unwrap().to_string())
    }

    /// Types `block` and expects it to succeed.
    fn type_ok(&self, block: &str) -> String {
        let (printed, how) = self.type_in_main(block);
        assert_eq!(how, "exit status 0", "{block}\n{printed}");
        printed
    }

    /// Waits for `step` to be offered (its menu waiting); its state then.
    fn waiting_at(&self, step: &str) -> serde_json::Value {
        self.wait(&format!("step {step} waiting"), &|s| {
            s["step"]["id"] == step && s["status"]["waiting"] == true
        })
    }

    /// Waits for `step` to be offered, then types each block it shows into the main terminal.
    fn follow(&self, step: &str) -> serde_json::Value {
        let shown = self.waiting_at(step);
        let blocks = crate::web_shell::blocks(shown["step"]["html"].as_str().unwrap());
        assert!(!blocks.is_empty(), "step {step} shows no commands");
        for block in &blocks {
            self.type_ok(block);
        }
        shown
    }

    /// Presses "Check my work" and waits for step `next`.
    fn check_until(&self, next: &str) {
        assert_eq!(
            self.post("action", serde_json::json!({"action": "check"}))
                .status,
            202
        );
        self.wait(&format!("step {next} after a passed check"), &|s| {
            s["step"]["id"] == next
        });
    }
}

/// The running containers of seat `number` of `workshop` (by its session's pid label: other tests'
/// containers run beside them), sorted by name.
fn seat_containers(workshop: &Workshop, number: u64) -> Vec<String> {
    let running: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workshop.state.path().join("workshop.json")).unwrap(),
    )
    .unwrap();
    let pid = running["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["number"] == number)
        .and_then(|s| s["pid"].as_u64())
        .unwrap_or_else(|| panic!("no seat {number} in {running}"));
    let names = String::from_utf8(
        std::process::Command::new("docker")
            .args(["ps", "--format", "{{.Names}}", "--filter"])
            .arg(format!("label=io.lab-runner.runner-pid={pid}"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut names: Vec<String> = names.lines().map(str::to_string).collect();
    names.sort();
    names
}

fn has_terminal(names: &[String]) -> bool {
    names.iter().any(|n| n.ends_with("-terminal"))
}

#[test]
fn workshop_a_seats_terminal_is_a_container_that_reaches_only_its_own_seat() {
    if !docker_or_skip("a seat's terminal container") {
        return;
    }
    let _docker = docker_shared();
    let (workshop, _) = Workshop::up_with(&["up", "--seats", "2", "--part", "part3"]);
    let seat = SeatPage::of(&workshop, 1);
    let first = seat.waiting_at("3.1");
    // A terminal container is made when its participant arrives (the page opened), not before: a
    // seat nobody uses costs one container, not two.
    assert!(!has_terminal(&seat_containers(&workshop, 1)));
    assert!(!has_terminal(&seat_containers(&workshop, 2)));
    let page = seat
        .client
        .get(&format!("{}/?token={}", seat.seat, seat.token))
        .unwrap();
    assert_eq!(page.status, 200);
    let started = Instant::now();
    while !has_terminal(&seat_containers(&workshop, 1)) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no terminal container after the page was opened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for block in crate::web_shell::intro_blocks(&first) {
        seat.type_ok(&block);
    }
    // Its Docker lists only its own seat's containers: the app and the terminal itself.
    let own = seat.type_ok("docker ps --format '{{.Names}}'");
    let mut listed: Vec<String> = own.lines().skip(1).map(str::to_string).collect();
    listed.sort();
    let seat_one = seat_containers(&workshop, 1);
    assert_eq!(listed, seat_one, "{own}");
    assert_eq!(seat_one.len(), 2, "{seat_one:?}");
    let own_app = seat_one
        .iter()
        .find(|n| !n.ends_with("-terminal"))
        .unwrap()
        .clone();
    let other_app = seat_containers(&workshop, 2)[0].clone();
    assert!(!own.contains(&other_app), "{own}");

    // Another seat's app: not there for it, and left running.
    let (said, how) = seat.type_in_main(&format!("docker kill {other_app}"));
    assert_ne!(how, "exit status 0", "{said}");
    assert!(said.contains("No such container"), "{said}");
    assert_eq!(inspect(&other_app)["State"]["Running"], true);
    // Nothing is created or removed through it, not even its own.
    let (said, how) = seat.type_in_main(&format!("docker rm -f {own_app}"));
    assert_ne!(how, "exit status 0", "{said}");
    assert!(said.contains("is not allowed"), "{said}");
    // Nor does it stop the terminal it runs in.
    let (said, how) = seat.type_in_main(&format!("docker stop {own_app}-terminal"));
    assert_ne!(how, "exit status 0", "{said}");
    assert!(said.contains("No such container"), "{said}");
    let (said, how) = seat.type_in_main("docker run --rm lab-runner/anything true");
    assert_ne!(how, "exit status 0", "{said}");
    assert!(said.contains("is not allowed"), "{said}");
    // The other seat's app port on the host's loopback is not reachable from here, its own is.
    let other_port = inspect(&other_app)["NetworkSettings"]["Ports"]
        .as_object()
        .unwrap()
        .values()
        .find_map(|b| b[0]["HostPort"].as_str().map(str::to_string))
        .unwrap();
    let (said, how) = seat.type_in_main(&format!(
        "curl -sS --max-time 3 http://127.0.0.1:{other_port}/api/health"
    ));
    assert_ne!(how, "exit status 0", "{said}");
    seat.type_ok("curl -sS --max-time 3 \"$BASE/api/health\"");
    // Its own folder is there; the other seat's is not, nor the workshop's record of every seat's
    // secret.
    let state = workshop.state.path();
    assert!(state.join("seats/seat-2").is_dir() && state.join("workshop.json").is_file());
    let folders = seat.type_ok(&format!("ls {}", state.join("seats").display()));
    assert!(
        folders.contains("seat-1") && !folders.contains("seat-2"),
        "{folders}"
    );
    let (said, how) = seat.type_in_main(&format!("cat {}", state.join("workshop.json").display()));
    assert_ne!(how, "exit status 0", "{said}");

    // Part 3 as the guide shows it: its Docker signals and reads its own app, and the tunnel typed
    // in a terminal of its own listens where the host's check looks for it.
    seat.follow("3.1");
    seat.check_until("3.2");
    seat.follow("3.2");
    seat.check_until("3.3");
    let shown = seat.waiting_at("3.3");
    let blocks = crate::web_shell::blocks(shown["step"]["html"].as_str().unwrap());
    let (tunnel, rest): (Vec<&String>, Vec<&String>) =
        blocks.iter().partition(|b| b.contains("lab-runner tunnel"));
    assert_eq!(tunnel.len(), 1, "{blocks:?}");
    let reply = seat.post(
        "shell",
        serde_json::json!({ "run": tunnel[0], "terminal": "new" }),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    seat.wait("the tunnel listening", &|s| {
        crate::web_shell::lines(s, "2")
            .iter()
            .any(|l| l.contains("Press Ctrl-C to close the tunnel."))
    });
    for block in rest {
        let printed = seat.type_ok(block);
        assert!(printed.contains("webSocketDebuggerUrl"), "{printed}");
    }
    seat.check_until("3.4");
    // The other seat, never opened, still has no terminal.
    assert_eq!(seat_containers(&workshop, 2), [other_app]);
}

/// Networks made to use up Docker's default address pools, removed however the test ends.
struct PoolsUsedUp {
    label: String,
}

impl PoolsUsedUp {
    /// Creates networks until the engine has no default pool left (at most 64).
    fn make() -> PoolsUsedUp {
        let label = format!("io.lab-runner.test-pools={}", std::process::id());
        let pools = PoolsUsedUp { label };
        for i in 0..64 {
            let out = std::process::Command::new("docker")
                .args(["network", "create", "--label", &pools.label])
                .arg(format!("lab-runner-test-pool-{}-{i}", std::process::id()))
                .output()
                .expect("docker runs");
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("address pool"), "docker network create: {err}");
                return pools;
            }
        }
        panic!(
            "64 networks and the engine's pools are not used up: this test cannot show the fallback"
        );
    }
}

impl Drop for PoolsUsedUp {
    fn drop(&mut self) {
        let ids = docker_ids("network", &self.label);
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm"])
                .args(&ids)
                .output();
        }
    }
}

/// Past Docker's default address pools (about 30 networks, fewer than a workshop's seats), each
/// environment still starts, on a /24 of the runner's own range: two at once get two different
/// ones, and say so.
#[test]
fn environments_past_dockers_address_pools_get_subnets_of_the_runners_own_range() {
    if !docker_or_skip("address pools") {
        return;
    }
    // Using up the pools would fail every other test's network meanwhile.
    let _docker = crate::support::docker_exclusive();
    let pools = PoolsUsedUp::make();
    let lab = crate::support::fixture("verify/quick");
    let verify = || {
        lab_runner()
            .args(["verify", "part1", "--lab", lab.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("lab-runner runs")
    };
    let (first, second) = (verify(), verify());
    let mut subnets = Vec::new();
    for run in [first, second] {
        let out = run.wait_with_output().unwrap();
        let said = text(&out);
        assert_eq!(out.status.code(), Some(0), "{said}");
        let line = said
            .lines()
            .find(|l| l.contains("Docker's address pools are used up"))
            .unwrap_or_else(|| panic!("no word of the runner's own subnet:\n{said}"));
        let subnet = line
            .split_whitespace()
            .find(|w| w.starts_with("10.201.") && w.ends_with("/24"))
            .unwrap_or_else(|| panic!("no /24 of 10.201.0.0/16 in {line:?}"));
        subnets.push(subnet.to_string());
        // Its network is removed with the environment, as any other.
        let network = crate::support::container_name(&said).expect("a START line");
        let left = std::process::Command::new("docker")
            .args(["network", "ls", "-q", "--filter"])
            .arg(format!("name=^{network}$"))
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "{network} is left after the run");
    }
    assert_ne!(subnets[0], subnets[1], "two environments on one subnet");
    drop(pools);
}

/// A process's argv, as every local user can read it.
fn argv(pid: u64) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The seats' pids in `workshop.json`.
fn seat_pids(workshop: &Workshop) -> Vec<u64> {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workshop.state.path().join("workshop.json")).unwrap(),
    )
    .unwrap();
    state["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap())
        .collect()
}

/// A workshop with one seat on part1 of the two-part fixture.
fn one_seat_of_two_parts() -> Workshop {
    let lab = fixture("workshop/two-parts");
    Workshop::up_with(&[
        "up",
        "--seats",
        "1",
        "--part",
        "part1",
        "--lab",
        lab.to_str().unwrap(),
    ])
    .0
}

#[test]
fn workshop_a_seat_whose_participant_finishes_a_part_comes_back_on_the_next_at_the_same_address() {
    if !docker_or_skip("a seat that goes on to the next part") {
        return;
    }
    let _docker = docker_shared();
    let workshop = one_seat_of_two_parts();
    let status = text(&workshop.run(&["status"]));
    let seats = seat_lines(&status);
    assert_eq!(seats.len(), 1, "{status}");
    assert_eq!(
        (seats[0].state.as_str(), seats[0].part.as_str()),
        ("running", "part1"),
        "{status}"
    );
    assert_eq!(seats[0].progress, "(0/1 done)", "{status}");
    let url = seats[0].url.clone();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let first_pid = seat_pids(&workshop)[0];
    // The seat's token is not in its argv (every local user reads argv); its port is.
    let args = argv(first_pid);
    assert!(
        args.contains(" start part1 ") && args.contains("--port"),
        "{args}"
    );
    assert!(
        !args.contains(&token),
        "the token is in the seat's argv: {args}"
    );

    let seat = format!("https://{}/seat/1", workshop.addr);
    let client = workshop.client();
    // The seat's state through the workshop; None while it does not answer (being started again).
    let state = || -> Option<serde_json::Value> {
        let answer = client.get(&format!("{seat}/state?token={token}")).ok()?;
        (answer.status == 200).then(|| serde_json::from_str(&answer.body).unwrap())
    };
    let wait = |what: &str, holds: &dyn Fn(&serde_json::Value) -> bool| {
        let started = Instant::now();
        loop {
            let s = state();
            if let Some(s) = s.filter(|s| holds(s)) {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the seat never showed {what}; its log:\n{}",
                std::fs::read_to_string(workshop.state.path().join("seats/seat-1/seat.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let waiting_at = |step: &'static str| {
        move |s: &serde_json::Value| s["step"]["id"] == step && s["status"]["waiting"] == true
    };
    let before = wait("step 1.1 waiting", &waiting_at("1.1"));
    // The participant checks the part's only step on the page: the part is complete, its session
    // ends.
    let act = client
        .send(
            client
                .client
                .post(format!("{seat}/action"))
                .header("x-lab-token", &token)
                .header("Origin", format!("https://{}", workshop.addr))
                .header("Content-Type", "application/json")
                .body(r#"{"action":"check"}"#),
        )
        .unwrap();
    assert_eq!(act.status, 202, "{}", act.body);
    // Back at the same address with the same token: a new session, on the next part.
    let after = wait("part2's step 2.1 waiting", &waiting_at("2.1"));
    assert_eq!(after["part"], "part2");
    assert_ne!(after["session"], before["session"], "a new session");
    assert!(before["session"].as_str().is_some_and(|s| !s.is_empty()));
    let page = client.get(&url).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Part 2, one step"), "{}", page.body);
    // A wrong secret is still refused.
    let wrong = client
        .get(&format!("{seat}/state?token={}", "0".repeat(32)))
        .unwrap();
    assert_eq!(wrong.status, 403);
    let status = text(&workshop.run(&["status"]));
    let seats = seat_lines(&status);
    assert_eq!(
        seats,
        [SeatLine {
            number: 1,
            state: "running".into(),
            part: "part2".into(),
            progress: "(0/1 done)".into(),
            url: url.clone(),
        }],
        "{status}"
    );
    let second_pid = seat_pids(&workshop)[0];
    assert_ne!(first_pid, second_pid, "{status}");
    assert!(!argv(second_pid).contains(&token));
    // The instructor sees one seat 1 that finished part1 and is on part2.
    workshop.wait_board("seat 1 on part2, once", |b| {
        let ones: Vec<_> = b["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "seat 1")
            .collect();
        ones.len() == 1 && ones[0]["part"] == "part2" && ones[0]["step"] == "2.1"
    });

    // `down` stops it (it is not started again while stopping) and nothing of it is left.
    let down = workshop.run(&["down"]);
    assert!(
        text(&down).contains("workshop server stopped"),
        "{}",
        text(&down)
    );
    for pid in [first_pid, second_pid] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "seat (pid {pid}) still runs after down"
        );
        assert!(
            docker_ids("container", &format!("io.lab-runner.runner-pid={pid}")).is_empty(),
            "seat (pid {pid}) left its containers"
        );
    }
    let log = std::fs::read_to_string(workshop.state.path().join("workshop.log")).unwrap();
    assert_eq!(log.matches("starting it again").count(), 1, "{log}");
}

#[test]
fn workshop_a_page_token_given_in_the_environment_must_be_one() {
    let lab = fixture("workshop/two-parts");
    let state = tempfile::tempdir().unwrap();
    for bad in ["", "dev-token-123", "0123456789ABCDEF0123456789abcdef"] {
        let out = lab_runner()
            .args([
                "start",
                "part1",
                "--web",
                "--no-browser",
                "--backend",
                "process",
            ])
            .arg("--lab")
            .arg(&lab)
            .env("LAB_RUNNER_STATE_DIR", state.path())
            .env("LAB_RUNNER_PAGE_TOKEN", bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out));
        assert!(
            text(&out).contains("LAB_RUNNER_PAGE_TOKEN is not a page token"),
            "{bad:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn workshop_a_seats_open_page_follows_it_into_its_next_session() {
    // The page's script in node, against a stand-in for the browser (`support/page_follow.js`).
    let node_runs = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_runs {
        assert!(
            std::env::var_os("CI").is_none(),
            "the page's follow test needs node, and CI is set"
        );
        eprintln!("skipping the page's follow test: node is not installed");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("node")
        .arg(root.join("tests/it/support/page_follow.js"))
        .arg(root.join("runner/web/assets/page.js"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let reloads: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        reloads,
        serde_json::json!({
            // Ended, then the seat's next session answers at the same address: reloaded into it.
            "ended_then_next": 1,
            // Ended, and the same session (or nothing) answers: the page stays.
            "ended_for_good": 0,
            // The stream refused (the workshop's 502 while the seat starts again): reloaded once
            // a session answers.
            "refused_then_answers": 1,
            // The stream reconnected by itself to another session.
            "reconnected_to_another": 1,
        }),
        "{}",
        text(&out)
    );
}

#[test]
fn workshop_a_seat_that_keeps_ending_at_once_is_left_stopped_and_status_says_so() {
    if !docker_or_skip("a seat that keeps ending") {
        return;
    }
    let _docker = docker_shared();
    let workshop = one_seat_of_two_parts();
    // Killed as soon as each start of it runs: its ends come within 10 s of its starts.
    let mut killed = Vec::new();
    let started = Instant::now();
    let status = loop {
        let status = text(&workshop.run(&["status"]));
        if status.contains("left stopped") {
            break status;
        }
        let pid = seat_pids(&workshop)[0];
        if !killed.contains(&pid) && std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let kill = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(kill.success());
            killed.push(pid);
        }
        assert!(
            killed.len() <= 4 && started.elapsed() < Duration::from_secs(120),
            "the seat was started again after {} quick ends:\n{status}",
            killed.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let seats = seat_lines(&status);
    assert_eq!(seats.len(), 1, "{status}");
    assert_eq!(seats[0].state, "STOPPED", "{status}");
    assert!(
        status.contains("ended 3 times in a row within 10 s of starting")
            && status.contains("seats/seat-1/seat.log"),
        "{status}"
    );
    // Left stopped: not started again.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(seat_pids(&workshop)[0], *killed.last().unwrap());
    let url = &seats[0].url;
    assert_eq!(workshop.client().get(url).unwrap().status, 502);
    // What the killed starts left in Docker was removed (the last one's by `down`).
    workshop.run(&["down"]);
    for pid in &killed {
        assert!(
            docker_ids("container", &format!("io.lab-runner.runner-pid={pid}")).is_empty(),
            "seat (pid {pid}) left its containers"
        );
    }
}
