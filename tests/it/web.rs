//! `lab-runner start --web`: the same session as a page on 127.0.0.1, safe by construction. Each
//! refusal of the guard is asked for with a plain HTTP request written by hand (any Host, Origin
//! or method), against the real binary on the process backend.

use crate::support::web::WebSession;

fn start_part2() -> WebSession {
    WebSession::start(&["start", "part2", "--backend", "process"])
}

fn waiting_at(session: &WebSession, step: &str) -> serde_json::Value {
    session.wait_state(&format!("step {step} waiting for a choice"), |s| {
        s["step"]["id"] == step && s["status"]["waiting"] == true
    })
}

#[test]
fn web_every_request_needs_the_token() {
    let session = start_part2();
    let wrong = "0".repeat(session.token.len());
    for target in ["/", "/assets/icon.svg", "/state", "/events"] {
        let none = session.request("GET", target, &[], "");
        assert_eq!(none.status, 403, "{target} without a token: {}", none.body);
        assert!(none.body.contains("a token is required"), "{}", none.body);
        let bad = session.request("GET", &format!("{target}?token={wrong}"), &[], "");
        assert_eq!(bad.status, 403, "{target} with a wrong token");
        let good = session.request("GET", &format!("{target}?token={}", session.token), &[], "");
        assert_eq!(good.status, 200, "{target} with the token: {}", good.body);
    }
    // An action with the right Origin but no token.
    let origin = session.origin();
    let reply = session.request(
        "POST",
        "/action",
        &[("Origin", &origin), ("Content-Type", "application/json")],
        r#"{"action":"check"}"#,
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[test]
fn web_a_foreign_host_header_is_refused_even_with_the_token() {
    let session = start_part2();
    let target = format!("/?token={}", session.token);
    for host in [
        "rebind.attacker.example".to_string(),
        format!("rebind.attacker.example:{}", session.port),
        format!("127.0.0.1:{}", session.port + 1),
    ] {
        let reply = session.request("GET", &target, &[("Host", &host)], "");
        assert_eq!(reply.status, 421, "Host: {host}: {}", reply.body);
    }
    for host in [
        format!("127.0.0.1:{}", session.port),
        format!("localhost:{}", session.port),
    ] {
        let reply = session.request("GET", &target, &[("Host", &host)], "");
        assert_eq!(reply.status, 200, "Host: {host}");
    }
}

#[test]
fn web_changes_are_post_only_with_the_token_and_this_origin() {
    let session = start_part2();
    waiting_at(&session, "2.0");
    let token = session.token.clone();
    let json = ("Content-Type", "application/json");
    let body = r#"{"action":"check"}"#;
    // No Origin, a foreign one, and this one over another host name.
    for origin in [
        None,
        Some("http://attacker.example".to_string()),
        Some(format!("http://localhost:{}", session.port)),
    ] {
        let mut head = vec![("X-Lab-Token", token.as_str()), json];
        if let Some(origin) = &origin {
            head.push(("Origin", origin));
        }
        let reply = session.request("POST", "/action", &head, body);
        assert_eq!(reply.status, 403, "Origin {origin:?}: {}", reply.body);
    }
    // A GET never acts.
    let reply = session.request(
        "GET",
        &format!("/action?token={token}&action=check"),
        &[],
        "",
    );
    assert_eq!(reply.status, 405, "{}", reply.body);
    // Nothing was taken: the session still waits at 2.0, nothing judged.
    let state = waiting_at(&session, "2.0");
    assert!(
        state["log"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["class"] != "pass")
    );
    // The page's own request is taken, and the check it asks for passes 2.0.
    let reply = session.act("check");
    assert_eq!(reply.status, 202, "{}", reply.body);
    let state = waiting_at(&session, "2.1");
    assert_eq!(state["steps"][0]["state"], "done", "{state:#}");
}

#[test]
fn web_only_the_menus_actions_are_taken() {
    let session = start_part2();
    waiting_at(&session, "2.0");
    for action in ["quit", "shell", "rm -rf /", "redeploy", "CHECK"] {
        let reply = session.act(action);
        assert_eq!(reply.status, 400, "{action}: {}", reply.body);
    }
    let origin = session.origin();
    let reply = session.request(
        "POST",
        "/action",
        &[("Origin", &origin), ("X-Lab-Token", &session.token)],
        r#"{"command":"curl evil"}"#,
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    // An answer is taken only while a check asks a question (none does now).
    assert_eq!(session.act("answer").status, 400);
    assert_eq!(session.act("answer:x").status, 400);
    let reply = session.request(
        "POST",
        "/action",
        &[("Origin", &origin), ("X-Lab-Token", &session.token)],
        r#"{"action":"answer","answer":"blockEventLoop"}"#,
    );
    assert_eq!(reply.status, 409, "{}", reply.body);
    // Hint is a menu action: taken, and shown.
    assert_eq!(session.act("hint").status, 202);
    session.wait_state("the hint", |s| {
        s["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["html"].as_str().unwrap().contains("Hint 1/"))
    });
    waiting_at(&session, "2.0");
    assert_eq!(session.act("check").status, 202);
    waiting_at(&session, "2.1");
    // While the session is busy (recreating the app for "do it for me"), a choice is refused,
    // not queued behind it.
    assert_eq!(session.act("do").status, 202);
    let busy = session.act("check");
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert!(busy.body.contains("busy"), "{}", busy.body);
    waiting_at(&session, "2.1.1");
}

#[test]
fn web_every_answer_carries_the_csp_and_the_server_is_on_loopback_only() {
    let session = start_part2();
    assert!(
        session.url.starts_with("http://127.0.0.1:"),
        "{}",
        session.url
    );
    for target in [
        format!("/?token={}", session.token),
        format!("/assets/icon.svg?token={}", session.token),
        "/".to_string(),
    ] {
        let reply = session.request("GET", &target, &[], "");
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{target}: {csp}");
        assert!(csp.contains("script-src 'sha256-"), "{target}: {csp}");
        assert!(!csp.contains("script-src 'self'"), "{target}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{target}: {csp}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    }
    // The page's one script and one style are inline, and the CSP allows exactly them, by their
    // SHA-256 (any other inline script would not run); no style attributes; no other origin.
    let page = session.request("GET", &format!("/?token={}", session.token), &[], "");
    let csp = page.header("content-security-policy").unwrap().to_string();
    for (open, close, directive) in [
        ("<script>", "</script>", "script-src"),
        ("<style>", "</style>", "style-src"),
    ] {
        assert_eq!(page.body.matches(open).count(), 1, "{}", page.body);
        let text = page
            .body
            .split(open)
            .nth(1)
            .unwrap()
            .split(close)
            .next()
            .unwrap();
        let hash = {
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text))
        };
        assert!(
            csp.contains(&format!("{directive} 'sha256-{hash}'")),
            "{directive} does not allow the page's own: {csp}"
        );
    }
    assert!(!page.body.contains("style="), "{}", page.body);
    assert!(!page.body.contains("https://"), "{}", page.body);
    // The state the page carries (with the step's HTML in it) cannot close its data block: the
    // only `</script>`s are the page's own two.
    let state = session.wait_state("a step", |s| s["step"].is_object());
    assert!(state["step"]["html"].as_str().unwrap().contains("</"));
    let page = session.request("GET", &format!("/?token={}", session.token), &[], "");
    assert_eq!(page.body.matches("</script>").count(), 2, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<script type="application/json" id="initial-state">{"#)
    );
    // Bound to 127.0.0.1 itself: another loopback address of this machine does not reach it.
    assert!(
        std::net::TcpStream::connect(("127.0.0.2", session.port)).is_err(),
        "the page answers on 127.0.0.2: it is not bound to 127.0.0.1 alone"
    );
}

/// A `PATH` whose `xdg-open` writes the address it was given to `opened`.
fn fake_xdg_open(dir: &std::path::Path, opened: &std::path::Path) -> String {
    let script = dir.join("xdg-open");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn web_the_page_opens_in_the_browser_only_with_a_display_and_without_no_browser() {
    let bin = tempfile::tempdir().unwrap();
    let opened = bin.path().join("opened");
    let path = fake_xdg_open(bin.path(), &opened);

    // A display, and --port: the printed address is the one opened, on that port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = crate::support::lab_runner();
    cmd.args(["start", "part2", "--backend", "process", "--web"])
        .args(["--port", &port.to_string()])
        .env("DISPLAY", ":99")
        .env("PATH", &path);
    let session = WebSession::spawn(cmd, tempfile::tempdir().unwrap());
    assert_eq!(session.port, port, "{}", session.url);
    waiting_at(&session, "2.0");
    let started = std::time::Instant::now();
    while !opened.exists() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap_or_default(),
        session.url
    );
    drop(session);
    std::fs::remove_file(&opened).unwrap();

    // --no-browser, or no display: never opened.
    for (extra, display) in [(Some("--no-browser"), true), (None, false)] {
        let mut cmd = crate::support::lab_runner();
        cmd.args(["start", "part2", "--backend", "process", "--web"])
            .args(extra)
            .env("PATH", &path)
            .env_remove("WAYLAND_DISPLAY");
        if display {
            cmd.env("DISPLAY", ":99");
        } else {
            cmd.env_remove("DISPLAY");
        }
        let session = WebSession::spawn(cmd, tempfile::tempdir().unwrap());
        waiting_at(&session, "2.0");
        assert!(!opened.exists(), "opened with {extra:?}, display {display}");
    }
}

#[test]
fn web_a_connection_that_never_finishes_its_request_is_dropped() {
    use std::io::{Read, Write};
    let session = start_part2();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", session.port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    // The head never ends: the server gives up on it (after 10 s) and closes the connection.
    let mut buf = Vec::new();
    match tcp.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) => assert!(
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
            "the server kept a half-sent request open for a minute"
        ),
    }
    // And the page still answers.
    assert_eq!(session.state()["view"], "start");
}

/// Collects what the runner printed since the URL until `line` appears (or 60 s pass).
fn printed_until(session: &WebSession, line: &str) -> Vec<String> {
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        if let Ok(l) = session
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            let done = l.contains(line);
            seen.push(l);
            if done {
                return seen;
            }
        }
    }
    panic!(
        "the terminal never said {line:?}; it printed:\n{}",
        seen.join("\n")
    )
}

#[test]
fn web_the_terminal_keeps_a_short_live_log_while_the_guide_is_on_the_page() {
    let session = start_part2();
    let first = printed_until(&session, "step 2.0 — Confirm the baseline (1/9)");
    waiting_at(&session, "2.0");
    assert_eq!(session.act("check").status, 202);
    waiting_at(&session, "2.1");
    assert_eq!(session.act("do").status, 202);
    waiting_at(&session, "2.1.1");
    assert_eq!(session.act("check").status, 202);
    let rest = printed_until(&session, "step 2.1.1: ");
    let log: Vec<String> = first.into_iter().chain(rest).collect();
    let text = log.join("\n");
    // One stamped line per thing that happened, in order.
    let stamped = regex::Regex::new(r"^ +\d+:\d\d  [·+!>$] ").unwrap();
    for line in &log {
        if line.starts_with('[') {
            continue; // the menu's keys, named once
        }
        assert!(stamped.is_match(line), "not a log line: {line:?}\n{text}");
    }
    let order = [
        "environment ready in",
        "> step 2.0 — Confirm the baseline (1/9)",
        "its buttons and these keys do the same",
        "+ step 2.0 done",
        "> step 2.1 — ",
        "$ lab-runner redeploy --env LAB_ENABLE=true",
        "+ step 2.1 done",
        "> step 2.1.1 — ",
        "! step 2.1.1: GET /api/lab/status: status (expected 200, saw 403",
    ];
    let mut from = 0;
    for want in order {
        let at = text[from..]
            .find(want)
            .unwrap_or_else(|| panic!("the log lacks {want:?} after byte {from}:\n{text}"));
        from += at + want.len();
    }
    // The keys are named once, and the guide itself (instructions, fences, the commands'
    // output) stays on the page.
    assert_eq!(text.matches("[c] check my work").count(), 1, "{text}");
    assert!(!text.contains("```"), "{text}");
    assert!(!text.contains("## Step"), "{text}");
    assert!(
        log.len() < 20,
        "a short log, not the guide: {} lines\n{text}",
        log.len()
    );
}
