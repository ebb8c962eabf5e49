//! `lab-runner start PART --web --shell`: a participant without a terminal of their own (a workshop
//! seat) follows a part on the page alone. The commands are read off the page (the rendered
//! guide), typed into the page's terminal, their output read back from it, the checks' questions
//! answered from it, over the page's HTTP API only; then the route's refusals. The process backend,
//! as the other web tests.

use std::time::{Duration, Instant};

use crate::by_hand::answer_from_printed;
use crate::support::web::{Reply, WebSession};

fn start_with_shell() -> WebSession {
    WebSession::start(&["start", "part2", "--backend", "process", "--shell"])
}

/// A request to the page's terminal, as the page sends it.
fn shell(session: &WebSession, body: &serde_json::Value) -> Reply {
    let origin = session.origin();
    session.request(
        "POST",
        "/shell",
        &[
            ("Origin", &origin),
            ("X-Lab-Token", &session.token),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    )
}

pub(crate) fn terminal(state: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    state["shell"]["terminals"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
}

pub(crate) fn ended(state: &serde_json::Value, name: &str) -> u64 {
    terminal(state, name).map_or(0, |t| t["ended"].as_u64().unwrap_or(0))
}

pub(crate) fn lines(state: &serde_json::Value, name: &str) -> Vec<String> {
    terminal(state, name)
        .map(|t| {
            t["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Types `commands` into the main terminal and waits for them to end; what they printed (without
/// the echoed command) and how they ended.
fn type_and_wait(session: &WebSession, commands: &str) -> (Vec<String>, String) {
    let before = session.state();
    let count = ended(&before, "main");
    let reply = shell(session, &serde_json::json!({ "run": commands }));
    assert_eq!(reply.status, 202, "{commands}: {}", reply.body);
    let after = session.wait_state_for(
        &format!("the end of {commands:?} in the main terminal"),
        Duration::from_secs(300),
        |s| ended(s, "main") > count,
    );
    let all = lines(&after, "main");
    let echo = commands.lines().next().map(|l| format!("$ {l}")).unwrap();
    let at = all
        .iter()
        .rposition(|l| *l == echo)
        .unwrap_or_else(|| panic!("the terminal does not show {echo:?}:\n{}", all.join("\n")));
    let echoed = commands.trim_end().lines().count();
    let printed = all[at + echoed..].to_vec();
    let how = terminal(&after, "main").unwrap()["last"]
        .as_str()
        .unwrap()
        .to_string();
    (printed, how)
}

/// The runnable shell blocks of the part's intro, as the page state shows it.
pub(crate) fn intro_blocks(state: &serde_json::Value) -> Vec<String> {
    let intro: String = state["intro"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    blocks(&intro)
}

/// The runnable shell blocks of a rendered part of the guide (what the page shows with a copy
/// button, `no-run` blocks left out), as text.
pub(crate) fn blocks(html: &str) -> Vec<String> {
    let block = regex::Regex::new(
        r#"(?s)<div class="code lang-sh"><button[^>]*>Copy</button><pre><code>(.*?)</code></pre></div>"#,
    )
    .unwrap();
    block
        .captures_iter(html)
        .map(|c| {
            c[1].replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn web_shell_a_participant_follows_part2_on_the_page_alone() {
    let session = start_with_shell();
    let started = Instant::now();
    let first = session.wait_state("step 2.0 waiting for a choice", |s| {
        s["step"]["id"] == "2.0" && s["status"]["waiting"] == true
    });
    // The participant's terminal starts clean: nothing of the runner's own environment.
    let (env, how) = type_and_wait(&session, "env");
    assert_eq!(how, "exit status 0");
    assert!(env.iter().any(|l| l == "TERM=dumb"), "{env:#?}");
    // (The test harness's variables stand for the instructor's; how lab-runner reaches its state
    // and Docker is kept, so `lab-runner check`, `pull` and `tunnel` typed there work.)
    assert!(
        !env.iter()
            .any(|l| l.starts_with("CARGO") || l.starts_with("NEXTEST") || l.starts_with("RUST")),
        "the runner's own variables reached the participant: {env:#?}"
    );
    assert!(std::env::vars().any(|(k, _)| k.starts_with("CARGO")));
    // The intro's commands, as the page shows them (cd, exports), are the first a person types.
    let intro_blocks = intro_blocks(&first);
    assert!(!intro_blocks.is_empty(), "the intro shows no commands");
    for block in &intro_blocks {
        let (printed, how) = type_and_wait(&session, block);
        assert_eq!(how, "exit status 0", "{block}\n{}", printed.join("\n"));
    }
    let steps: Vec<String> = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let mut printed_all: Vec<String> = Vec::new();
    let mut printed_by_runner: Vec<String> = Vec::new();
    let mut passed = Vec::new();
    // The session ends with the part (and its page with it): the last step's pass is the end.
    while passed.len() < steps.len() {
        let state = session.wait_state("a step waiting for a choice", |s| {
            s["status"]["waiting"] == true
        });
        let id = state["step"]["id"].as_str().unwrap().to_string();
        let html = state["step"]["html"].as_str().unwrap();
        assert!(
            !html.contains("another terminal"),
            "step {id} needs a second terminal: this test follows one"
        );
        for block in blocks(html) {
            let (printed, how) = type_and_wait(&session, &block);
            assert_eq!(
                how,
                "exit status 0",
                "step {id}: the commands shown failed:\n{block}\n{}",
                printed.join("\n")
            );
            printed_all.extend(printed);
        }
        assert_eq!(session.act("check").status, 202);
        let done = format!("step {id} done");
        let last = passed.len() + 1 == steps.len();
        loop {
            let judged = |s: &serde_json::Value| {
                s["status"]["question"].is_string()
                    || s["log"].as_array().unwrap().iter().any(|l| {
                        l["class"] == "fail"
                            || (l["class"] == "pass" && l["html"].as_str().unwrap().contains(&done))
                    })
            };
            let s = if last {
                // The session ends with the part, its page with it: the runner's own terminal says
                // the part is complete just before.
                match wait_judged_or_complete(&session, &judged, &mut printed_by_runner) {
                    Some(s) => s,
                    None => break,
                }
            } else {
                session.wait_state(&format!("step {id} judged, or a question"), judged)
            };
            if let Some(question) = s["status"]["question"].as_str() {
                let answer = answer_from_printed(question, &printed_all)
                    .unwrap_or_else(|| panic!("a question not about the commands: {question}"));
                eprintln!("asked: {question} → {answer}");
                let origin = session.origin();
                let reply = session.request(
                    "POST",
                    "/action",
                    &[
                        ("Origin", &origin),
                        ("X-Lab-Token", &session.token),
                        ("Content-Type", "application/json"),
                    ],
                    &serde_json::json!({"action": "answer", "answer": answer}).to_string(),
                );
                assert_eq!(reply.status, 202, "{}", reply.body);
                session.wait_state("the question answered", |s| {
                    s["status"]["question"] != question
                });
                continue;
            }
            let fail = s["log"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["class"] == "fail");
            assert!(
                fail.is_none(),
                "step {id} did not pass when followed on the page: {}\n--- the page's terminal ---\n{}",
                fail.unwrap()["html"],
                lines(&s, "main").join("\n")
            );
            break;
        }
        passed.push(id);
    }
    assert_eq!(passed, steps, "every step, in order, passed its check");
    let complete = format!("part2 complete: {n} of {n} steps checked", n = steps.len());
    assert!(
        printed_by_runner.iter().any(|l| l.contains(&complete)),
        "the runner did not say {complete:?}:\n{}",
        printed_by_runner.join("\n")
    );
    eprintln!(
        "part2 followed on the page's terminal: {} steps in {:.1} s",
        passed.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The page state once `judged` holds, or None once the runner has said the part is complete
/// (collecting what it printed into `printed`).
fn wait_judged_or_complete(
    session: &WebSession,
    judged: &dyn Fn(&serde_json::Value) -> bool,
    printed: &mut Vec<String>,
) -> Option<serde_json::Value> {
    let started = Instant::now();
    loop {
        printed.extend(session.lines.try_iter());
        if printed.iter().any(|l| l.contains("part2 complete:")) {
            return None;
        }
        if let Some(state) = session.try_state()
            && judged(&state)
        {
            return Some(state);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the last step was never judged; the runner printed:\n{}",
            printed.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn web_shell_without_shell_the_route_refuses() {
    let session = WebSession::start(&["start", "part2", "--backend", "process"]);
    session.wait_state("step 2.0 waiting", |s| s["status"]["waiting"] == true);
    let reply = shell(&session, &serde_json::json!({"run": "id"}));
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(reply.body.contains("--shell"), "{}", reply.body);
    // The page state says nothing of a terminal.
    assert!(session.state().get("shell").is_none());
}

#[test]
fn web_shell_refuses_what_the_page_would_not_send() {
    let session = start_with_shell();
    session.wait_state("step 2.0 waiting", |s| {
        s["step"]["id"] == "2.0" && s["status"]["waiting"] == true
    });
    let origin = session.origin();
    let body = r#"{"run":"id"}"#;
    // No token; a foreign Origin; no Origin.
    let no_token = session.request(
        "POST",
        "/shell",
        &[("Origin", &origin), ("Content-Type", "application/json")],
        body,
    );
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    for head in [
        vec![
            ("Origin", "http://attacker.example"),
            ("X-Lab-Token", session.token.as_str()),
        ],
        vec![("X-Lab-Token", session.token.as_str())],
    ] {
        let reply = session.request("POST", "/shell", &head, body);
        assert_eq!(reply.status, 403, "{head:?}: {}", reply.body);
    }
    // GET never runs anything.
    let get = session.request(
        "GET",
        &format!("/shell?token={}&run=id", session.token),
        &[],
        "",
    );
    assert_eq!(get.status, 405, "{}", get.body);
    // Over 16 KiB: 413, saying the limit.
    let big = serde_json::json!({"run": format!("echo {}", "x".repeat(17 * 1024))});
    let reply = shell(&session, &big);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body.contains("16 KiB"), "{}", reply.body);
    // Not a request of the panel: 400, saying what to send.
    let reply = shell(&session, &serde_json::json!({"command": "id"}));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("\"run\""), "{}", reply.body);
    // Nothing of that ran.
    assert_eq!(ended(&session.state(), "main"), 0);

    // One command at a time in the main terminal; the menu waits for it too.
    let reply = shell(
        &session,
        &serde_json::json!({"run": "echo started; sleep 600"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    session.wait_state("the first command's output", |s| {
        lines(s, "main").iter().any(|l| l == "started")
    });
    let second = shell(&session, &serde_json::json!({"run": "echo second"}));
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(second.body.contains("still runs"), "{}", second.body);
    let check = session.act("check");
    assert_eq!(check.status, 409, "{}", check.body);
    // Ctrl-C ends it, and says so.
    let reply = shell(&session, &serde_json::json!({"interrupt": "main"}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    let state = session.wait_state("the command interrupted", |s| ended(s, "main") == 1);
    assert_eq!(
        terminal(&state, "main").unwrap()["last"],
        "interrupted (Ctrl-C)"
    );
    assert_eq!(lines(&state, "main").last().unwrap(), "^C");
    let (printed, how) = type_and_wait(&session, "echo second");
    assert_eq!(
        (printed, how.as_str()),
        (vec!["second".to_string()], "exit status 0")
    );

    // A command left running in a terminal of its own: the main terminal stays free, Ctrl-C ends it.
    let reply = shell(
        &session,
        &serde_json::json!({"run": "echo listening; sleep 600", "terminal": "new"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.body.contains("terminal `2`"), "{}", reply.body);
    session.wait_state("the other terminal's output", |s| {
        lines(s, "2").iter().any(|l| l == "listening")
    });
    let (printed, how) = type_and_wait(&session, "cd / && export SEEN=yes");
    assert_eq!(how, "exit status 0", "{printed:?}");
    let (printed, _) = type_and_wait(&session, "echo \"$PWD $SEEN\"");
    assert_eq!(printed, ["/ yes"], "exports and cd carry over");
    assert_eq!(
        terminal(&session.state(), "2").unwrap()["running"],
        "echo listening; sleep 600"
    );
    let reply = shell(&session, &serde_json::json!({"interrupt": "2"}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    session.wait_state("terminal 2 interrupted", |s| ended(s, "2") == 1);
    let again = shell(&session, &serde_json::json!({"interrupt": "2"}));
    assert_eq!(again.status, 409, "{}", again.body);

    // "Do it for me" types in the same terminal: its commands and their output show there.
    assert_eq!(session.act("do").status, 202);
    let state = session.wait_state("2.0 done for the participant", |s| {
        s["step"]["id"] == "2.1" && s["status"]["waiting"] == true
    });
    let main = lines(&state, "main");
    let at = main
        .iter()
        .position(|l| l.starts_with("$ curl -sS -w '\\n' \"$BASE/api/health\""))
        .unwrap_or_else(|| {
            panic!(
                "\"do it for me\" is not in the terminal:\n{}",
                main.join("\n")
            )
        });
    assert!(
        main[at..].iter().any(|l| l.contains("\"status\":\"ok\"")),
        "{}",
        main.join("\n")
    );
    // `lab-runner check` typed in the page's terminal reaches this session (2.1 is not done yet).
    let (printed, how) = type_and_wait(&session, "lab-runner check");
    assert_ne!(how, "exit status 0", "{}", printed.join("\n"));
    assert!(
        printed.iter().any(|l| l.contains("expected: 403")),
        "{}",
        printed.join("\n")
    );
}

/// The Enter key, as a keyboard sends it.
async fn enter(page: &crate::support::chrome::Page) {
    for kind in ["keyDown", "keyUp"] {
        page.tab
            .call(
                "Input.dispatchKeyEvent",
                serde_json::json!({
                    "type": kind, "key": "Enter", "code": "Enter",
                    "windowsVirtualKeyCode": 13, "text": if kind == "keyDown" { "\r" } else { "" },
                }),
            )
            .await
            .unwrap();
    }
}

/// The panel in headless Chromium, as a participant uses it: a guide's block put in the terminal
/// with its button and run with Enter, a command of their own typed and run, one started in a new
/// terminal and ended with the Ctrl-C button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_shell_in_a_browser_runs_what_is_typed_and_shows_its_output() {
    use crate::support::chrome::{Chrome, Page, chromium_or_skip, screenshot_dir};
    const TEST: &str = "web_shell_in_a_browser";
    if !chromium_or_skip(TEST) {
        return;
    }
    let session = start_with_shell();
    let chrome = Chrome::start_sized(1280, 1000);
    let mut page = Page::new(chrome.tab().await, &screenshot_dir(TEST)).await;
    page.navigate(&session.url).await;
    page.wait_for(
        "document.querySelector('#step-title') && document.querySelector('#step-title').innerText.startsWith('Step 2.0 ') \
         && !document.querySelector('#menu button[data-action=check]').disabled && !!document.querySelector('#terminal')",
        "step 2.0 with the terminal panel",
    )
    .await;
    // The intro's block, into the input with its button; the participant presses Enter.
    page.click("#intro .code:not(.no-run) .to-term").await;
    page.wait_for(
        "document.querySelector('#term-input').value.includes('export BASE=http://127.0.0.1:')",
        "the intro's commands in the terminal's input",
    )
    .await;
    enter(&page).await;
    page.wait_for(
        "document.querySelector('#term-out').innerText.includes('> export BASE=') \
         && document.querySelector('#term-note').innerText.includes('exit status 0')",
        "the block run in the main terminal",
    )
    .await;
    // A command of their own, typed: the export of the block before carried over.
    page.tab
        .call(
            "Input.insertText",
            serde_json::json!({"text": "echo \"the app is at $BASE\""}),
        )
        .await
        .unwrap();
    enter(&page).await;
    page.wait_for(
        "document.querySelector('#term-out').innerText.includes('the app is at http://127.0.0.1:')",
        "the typed command's output",
    )
    .await;
    // A command that keeps running, in a new terminal; Ctrl-C ends it.
    page.tab
        .call(
            "Input.insertText",
            serde_json::json!({"text": "echo listening; sleep 600"}),
        )
        .await
        .unwrap();
    page.click("#term-new").await;
    page.wait_for(
        "document.querySelector('#term-tabs [data-terminal=\"2\"][aria-selected=true]').innerText.includes('●') \
         && document.querySelector('#term-out').innerText.includes('listening')",
        "terminal 2 running, shown",
    )
    .await;
    page.screenshot("1-terminal-2-running").await;
    page.click("#term-ctrlc").await;
    page.wait_for(
        "document.querySelector('#term-out').innerText.endsWith('^C') \
         && !document.querySelector('#term-tabs [data-terminal=\"2\"]').innerText.includes('●')",
        "terminal 2 ended by Ctrl-C",
    )
    .await;
    page.click("#term-tabs [data-terminal=\"main\"]").await;
    page.wait_for(
        "document.querySelector('#term-out').innerText.includes('the app is at')",
        "the main terminal's output again",
    )
    .await;
    page.screenshot("2-main-terminal").await;
    let errors = page.console_errors();
    assert!(
        errors.is_empty(),
        "the page's console has errors: {errors:#?}"
    );
}
