//! The browser guide in a real browser: headless Chromium drives `lab-runner start part2 --web`
//! as a participant does — copies a command, checks with the keyboard and with the buttons, reads a
//! failing check's expected / saw / hint, asks for a hint, has a step done for them, skips, goes
//! back, reloads the page and finds the same step, answers the checks' questions from what the page
//! printed, and does every step to the end of the part. A screenshot
//! of each state is saved under target/test-output/, and the page's console must stay free of
//! errors (a CSP violation or a failed load is one).

use std::time::Duration;

use serde_json::json;

use crate::support::chrome::{Chrome, Page, chromium_or_skip, screenshot_dir};
use crate::support::web::WebSession;

const TEST: &str = "web_browser_participant";

/// `#log` has an entry of `class` whose text contains `text`.
fn log_has(class: &str, text: &str) -> String {
    format!(
        "[...document.querySelectorAll('#log .log.{class}')].some(e => e.innerText.includes({text:?}))"
    )
}

fn on_step(id: &str) -> String {
    format!(
        "document.querySelector('#step-title') && document.querySelector('#step-title').innerText.startsWith('Step {id} ') \
         && !document.querySelector('#menu button[data-action=check]').disabled"
    )
}

fn sidebar(id: &str, state: &str) -> String {
    format!("document.querySelector('#steps li[data-step=\"{id}\"]').classList.contains('{state}')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_browser_participant_goes_through_part2() {
    if !chromium_or_skip(TEST) {
        return;
    }
    let session = WebSession::start(&["start", "part2", "--backend", "process"]);
    let chrome = Chrome::start_sized(1280, 900);
    let mut page = Page::new(chrome.tab().await, &screenshot_dir(TEST)).await;
    // The page's event stream is held back until the participant has copied a block and closed
    // the intro: on a busy machine the stream's first state (the one the page was served with,
    // again) can come after a person's first clicks, and must not undo them.
    let mut held = page.tab.subscribe_to(&["Fetch.requestPaused"]);
    let mut delivered = page
        .tab
        .subscribe_to(&["Network.eventSourceMessageReceived"]);
    page.tab
        .call(
            "Fetch.enable",
            json!({ "patterns": [{ "urlPattern": "*/events?*", "requestStage": "Request" }] }),
        )
        .await
        .unwrap();
    page.tab.call("Network.enable", json!({})).await.unwrap();
    page.navigate(&session.url).await;

    // The first step, under the part's intro (the same Markdown as the terminal, variables filled in).
    page.wait_for(&on_step("2.0"), "step 2.0 with its menu")
        .await;
    page.wait_for(
        "document.querySelector('#intro details').open && document.querySelector('#intro').innerText.includes('export BASE=http://127.0.0.1:')",
        "the intro with the session's BASE",
    )
    .await;
    assert_eq!(
        page.eval(
            "getComputedStyle(document.querySelector('#instructions pre, #intro pre')).whiteSpace"
        )
        .await,
        "pre",
        "a command must never wrap"
    );
    // Copy: the intro's first command block.
    page.click("#intro .code .copy").await;
    page.wait_for(
        // The label says Copied for 1.5 s; the count stays (a busy machine may poll past the label).
        "document.querySelector('#intro .code .copy').dataset.copies === '1'",
        "the copy button having copied",
    )
    .await;
    // A clipboard that never answers (a page without focus): the button still copies, the
    // selection way.
    page.eval("navigator.clipboard.writeText = () => new Promise(() => {}); true")
        .await;
    page.click("#intro .code .copy").await;
    page.wait_for(
        "document.querySelector('#intro .code .copy').dataset.copies === '2'",
        "the copy button having copied with a clipboard that never answers",
    )
    .await;
    // Then the participant closes the intro, and the stream comes.
    page.click("#intro summary").await;
    page.wait_for(
        "!document.querySelector('#intro details').open",
        "the intro closed by the participant",
    )
    .await;
    let paused = held
        .recv_timeout(Duration::from_secs(30))
        .await
        .expect("the page asked for its event stream");
    page.tab
        .call(
            "Fetch.continueRequest",
            json!({ "requestId": paused.params["requestId"] }),
        )
        .await
        .unwrap();
    page.tab.call("Fetch.disable", json!({})).await.unwrap();
    loop {
        let message = delivered
            .recv_timeout(Duration::from_secs(30))
            .await
            .expect("the stream's first state");
        if message.params["eventName"] == "state" {
            break;
        }
    }
    // (The state is handled in the page's next task; an evaluation runs after it.)
    page.eval("new Promise((r) => setTimeout(r, 0))").await;
    assert_eq!(
        page.eval("document.querySelector('#intro .code .copy').dataset.copies")
            .await,
        "2",
        "the stream's first state redrew the intro: its copy button forgot it had copied"
    );
    assert_eq!(
        page.eval("document.querySelector('#intro details').open")
            .await,
        false,
        "the stream's first state opened the intro the participant had closed"
    );
    page.click("#intro summary").await;
    page.screenshot("1-step-2.0").await;

    // Check with the terminal's key: 2.0 passes, the page moves on to 2.1.
    page.press("c").await;
    page.wait_for(&log_has("pass", "PASS step 2.0 done"), "2.0's PASS")
        .await;
    page.wait_for(&on_step("2.1"), "step 2.1").await;
    page.wait_for(&sidebar("2.0", "done"), "2.0 marked done")
        .await;

    // 2.1 not done yet: the check fails with what it expected, what it saw, and a hint.
    page.click("#menu button[data-action=check]").await;
    page.wait_for(&log_has("fail", "expected"), "the failed check")
        .await;
    let verdict = page
        .eval("[...document.querySelectorAll('#log .log.fail')].pop().innerText")
        .await;
    let verdict = verdict.as_str().unwrap();
    assert!(verdict.contains("403"), "{verdict}");
    assert!(verdict.contains("404"), "{verdict}");
    assert!(verdict.contains("hint"), "{verdict}");
    page.screenshot("2-check-failed-with-hint").await;

    // A hint, by its key.
    page.wait_for(&on_step("2.1"), "the menu again").await;
    page.press("h").await;
    page.wait_for(&log_has("shown", "Hint 1/"), "hint 1").await;

    // Do it for me: the runner does the step's commands, and the check passes.
    page.wait_for(&on_step("2.1"), "the menu again").await;
    page.click("#menu button[data-action=do]").await;
    page.wait_for(&log_has("command", "LAB_ENABLE"), "the commands it ran")
        .await;
    page.wait_for(&on_step("2.1.1"), "step 2.1.1").await;
    page.wait_for(&sidebar("2.1", "done"), "2.1 marked done")
        .await;
    page.screenshot("3-done-for-me").await;
    // 2.1.1 done for me too, by its key.
    page.press("d").await;
    page.wait_for(&on_step("2.2"), "step 2.2").await;
    page.wait_for(&sidebar("2.1.1", "done"), "2.1.1 marked done")
        .await;

    // Skip 2.2, then back to it.
    page.click("#menu button[data-action=skip]").await;
    page.wait_for(&on_step("2.3"), "step 2.3").await;
    page.wait_for(&sidebar("2.2", "skipped"), "2.2 marked skipped")
        .await;
    page.press("b").await;
    page.wait_for(&on_step("2.2"), "step 2.2 again").await;
    page.screenshot("4-back").await;

    // A reload finds the same session at the same step.
    page.reload().await;
    page.wait_for(&on_step("2.2"), "step 2.2 after a reload")
        .await;
    page.wait_for(&sidebar("2.0", "done"), "2.0 still done")
        .await;
    page.wait_for(&sidebar("2.1", "done"), "2.1 still done")
        .await;
    page.screenshot("5-reloaded").await;

    // On a phone's width the page does not scroll sideways (code blocks scroll inside themselves).
    page.tab
        .call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
        )
        .await
        .unwrap();
    page.wait_for(
        "document.documentElement.scrollWidth <= window.innerWidth + 1",
        "no sideways scrolling at 390 px",
    )
    .await;
    page.screenshot("6-phone").await;
    page.tab
        .call(
            "Emulation.clearDeviceMetricsOverride",
            serde_json::json!({}),
        )
        .await
        .unwrap();

    // 2.2 done for me; 2.3's check asks a question: it is asked on the page, and a wrong answer
    // fails the check with the step's hint.
    page.click("#menu button[data-action=do]").await;
    page.wait_for(&on_step("2.3"), "step 2.3").await;
    page.click("#menu button[data-action=do]").await;
    page.wait_for(
        "!document.querySelector('#question').hidden && document.querySelector('#question-text').innerText.includes('self time')",
        "2.3's question on the page",
    )
    .await;
    page.screenshot("6b-question").await;
    page.eval("document.querySelector('#answer').value = 'notTheHottest'; true")
        .await;
    page.click("#question button").await;
    page.wait_for(&log_has("fail", "notTheHottest"), "the wrong answer judged")
        .await;
    page.wait_for(
        "document.querySelector('#question').hidden",
        "the question gone",
    )
    .await;

    // Done again (the check's scrape reset the lag it reads, so the jam is needed again), and
    // answered from what the page printed (the profile's table under the commands it ran), as a
    // participant reads it: the step passes.
    page.wait_for(&on_step("2.3"), "2.3's menu again").await;
    page.press("d").await;
    answer_questions(&mut page, 1).await;
    page.wait_for(&log_has("pass", "PASS step 2.3 done"), "2.3 passed")
        .await;

    // The rest of the part done for the participant; 2.5's check asks two questions about the
    // snapshots' comparison, answered from the page as well.
    page.wait_for(&on_step("2.4"), "step 2.4").await;
    page.press("d").await;
    page.wait_for(&on_step("2.5"), "step 2.5").await;
    page.press("d").await;
    answer_questions(&mut page, 2).await;
    page.wait_for(&log_has("pass", "PASS step 2.5 done"), "2.5 passed")
        .await;
    page.screenshot("6c-heap-answered").await;
    for (id, next) in [("2.6", Some("2.7")), ("2.7", None)] {
        page.wait_for(&on_step(id), id).await;
        page.press("d").await;
        page.wait_for(&log_has("pass", &format!("PASS step {id} done")), id)
            .await;
        if let Some(next) = next {
            page.wait_for(&on_step(next), next).await;
        }
    }
    for id in ["2.0", "2.1", "2.1.1", "2.3", "2.4", "2.5", "2.6", "2.7"] {
        page.wait_for(&sidebar(id, "done"), &format!("{id} marked done"))
            .await;
    }
    page.wait_for(
        "document.querySelector('#status').innerText.includes('complete')",
        "the part complete",
    )
    .await;
    page.screenshot("7-complete").await;
    // The runner ends the page's stream as it exits: the page stops listening, without errors.
    page.wait_for(
        "document.body.dataset.stream === 'closed'",
        "the event stream closed by the runner",
    )
    .await;

    let errors = page.console_errors();
    assert!(
        errors.is_empty(),
        "the page's console has errors: {errors:#?}"
    );
}

/// Answers the next `count` questions the page asks, each from the lines the page printed (the
/// commands' output), as a participant reads them.
async fn answer_questions(page: &mut Page, count: usize) {
    for n in 1..=count {
        page.wait_for(
            "!document.querySelector('#question').hidden",
            &format!("question {n} of {count} on the page"),
        )
        .await;
        let question = page
            .eval("document.querySelector('#question-text').innerText")
            .await;
        let question = question.as_str().unwrap().to_string();
        let printed = page
            .eval("[...document.querySelectorAll('#log .log.output')].map(e => e.innerText)")
            .await;
        let printed: Vec<String> = printed
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let answer = crate::by_hand::answer_from_printed(&question, &printed)
            .unwrap_or_else(|| panic!("no answer on the page for {question:?}"));
        page.eval(&format!(
            "document.querySelector('#answer').value = {answer:?}; true"
        ))
        .await;
        page.click("#question button").await;
        // Answered: the question goes, or the next one takes its place.
        page.wait_for(
            &format!(
                "document.querySelector('#question').hidden || \
                 document.querySelector('#question-text').innerText !== {question:?}"
            ),
            "the question answered",
        )
        .await;
    }
}

/// The presenter view: `lab-runner demo part2 --web` with a long pace, paused and resumed from the
/// page, and sent on with Next (both by key); each step's commands with their output, the live
/// charts of the app's signals (the jam and the leak), and the demo's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_browser_presenter_view_of_part2() {
    const TEST: &str = "web_browser_presenter";
    if !chromium_or_skip(TEST) {
        return;
    }
    // 300 s between steps: only Next moves the demo on.
    let session = WebSession::start(&["demo", "part2", "--backend", "process", "--pace", "300"]);
    let chrome = Chrome::start_sized(1600, 1000);
    let mut page = Page::new(chrome.tab().await, &screenshot_dir(TEST)).await;
    page.navigate(&session.url).await;
    page.wait_for(
        "document.body.classList.contains('view-demo') && document.querySelector('#menu button[data-action=pause]')",
        "the presenter's menu",
    )
    .await;
    page.wait_for(&sidebar("2.0", "done"), "2.0 performed and checked")
        .await;
    page.wait_for(&log_has("pass", "PASS step 2.0 done"), "2.0's verdict")
        .await;
    // Pause, then resume, the pace.
    page.press("p").await;
    page.wait_for(
        "document.querySelector('#status').innerText.includes('paused')",
        "the pace paused",
    )
    .await;
    page.wait_for(
        &log_has("note", "paused: Next (Enter) goes on"),
        "the demo paused",
    )
    .await;
    page.screenshot("1-paused-after-2.0").await;
    page.press("p").await;
    page.wait_for(
        "!document.querySelector('#status').innerText.includes('paused')",
        "the pace resumed",
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('#step-title').innerText.startsWith('Step 2.0 ')")
            .await,
        true,
        "the demo went on by itself"
    );

    // Next, step by step; 2.2 jams the event loop, 2.4 leaks.
    for (id, next) in [
        ("2.1", "2.0"),
        ("2.1.1", "2.1"),
        ("2.2", "2.1.1"),
        ("2.3", "2.2"),
        ("2.4", "2.3"),
        ("2.5", "2.4"),
        ("2.6", "2.5"),
        ("2.7", "2.6"),
    ] {
        page.wait_for(&sidebar(next, "done"), next).await;
        if next == "2.2" {
            page.wait_for(&log_has("command", "event-loop-jam"), "the jam's command")
                .await;
            page.wait_for(
                "[...document.querySelectorAll('.chart h3')].some(h => h.innerText.includes('event-loop lag'))",
                "the event-loop lag chart",
            )
            .await;
            page.screenshot("2-jam").await;
        }
        if next == "2.4" {
            page.wait_for(
                &log_has("output", "lab_retained_bytes"),
                "the leak's output",
            )
            .await;
            page.wait_for(
                "['heap used', 'external memory', 'RSS'].every(t => [...document.querySelectorAll('.chart h3')].some(h => h.innerText.includes(t)))",
                "the heap, external and RSS charts",
            )
            .await;
            // The leak (2 × 64 MB of Buffers) shows in the external memory chart.
            page.wait_for(
                "Number(document.querySelector('.chart[data-name=external]').dataset.value) > 100 * 1048576",
                "the leak in the external memory chart",
            )
            .await;
            page.screenshot("3-leak").await;
        }
        page.press("n").await;
        page.wait_for(
            &format!("document.querySelector('#step-title').innerText.startsWith('Step {id} ')"),
            id,
        )
        .await;
    }
    page.wait_for(&sidebar("2.7", "done"), "2.7").await;
    page.wait_for(
        "document.querySelector('#status').innerText.includes('the demo is over: 9 passed, 0 failed')",
        "the demo's end",
    )
    .await;
    page.screenshot("4-over").await;
    page.wait_for(
        "document.body.dataset.stream === 'closed'",
        "the event stream closed by the runner",
    )
    .await;
    let errors = page.console_errors();
    assert!(
        errors.is_empty(),
        "the page's console has errors: {errors:#?}"
    );
}
