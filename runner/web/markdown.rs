//! The browser's rendering of the Markdown the terminal shows (the same text, with the session's
//! variables already filled in): pulldown-cmark, with three changes a participant's page needs.
//!
//! - A code block is a `<pre>` that never wraps (a command is never broken mid-word) with a copy
//!   button; a block marked `no-run` keeps its mark as a class.
//! - A `devtools://` or `chrome://` address is shown with a copy button and one line on why a page
//!   cannot open it: browsers refuse links to them from a web page.
//! - Raw HTML in the Markdown is shown as text, never passed through (the page's CSP forbids inline
//!   scripts anyway; this keeps a lab's text from changing the page).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// The line under a DevTools address.
pub const DEVTOOLS_NOTE: &str = "A web page cannot open devtools:// or chrome:// addresses \
(the browser refuses them as links): copy it and paste it into Chrome's address bar.";

/// `markdown` as HTML for the participant's page.
pub fn to_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut events: Vec<Event> = Vec::new();
    let mut code: Option<(String, String)> = None; // info, text
    let mut devtools_note = false;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((info, String::new()));
            }
            Event::Text(text) if code.is_some() => {
                if let Some((_, body)) = code.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((info, body)) = code.take() {
                    events.push(Event::Html(CowStr::from(code_block(&info, &body))));
                }
            }
            Event::Code(text) if is_devtools_address(&text) => {
                devtools_note = true;
                events.push(Event::InlineHtml(CowStr::from(format!(
                    "<span class=\"devtools\"><code>{}</code><button type=\"button\" class=\"copy\" \
                     data-copy=\"{}\" title=\"Copy\">Copy</button></span>",
                    escape(&text),
                    escape(&text)
                ))));
            }
            Event::End(TagEnd::Paragraph) if devtools_note => {
                devtools_note = false;
                events.push(Event::End(TagEnd::Paragraph));
                events.push(Event::Html(CowStr::from(format!(
                    "<p class=\"why\">{}</p>\n",
                    escape(DEVTOOLS_NOTE)
                ))));
            }
            // A lab's raw HTML is shown as the text it is.
            Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, events.into_iter());
    out
}

fn is_devtools_address(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("devtools://") || t.starts_with("chrome://")
}

/// A code block: never wrapped, with a copy button for what a person copies.
fn code_block(info: &str, body: &str) -> String {
    let language = info.split_whitespace().next().unwrap_or("");
    let no_run = info.split_whitespace().skip(1).any(|w| w == "no-run");
    let body = body.strip_suffix('\n').unwrap_or(body);
    let mut class = String::from("code");
    if !language.is_empty() {
        class.push_str(" lang-");
        class.push_str(&language.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    }
    if no_run {
        class.push_str(" no-run");
    }
    let devtools = body.lines().any(|l| l.contains("devtools://"));
    format!(
        "<div class=\"{class}\"><button type=\"button\" class=\"copy\" title=\"Copy\">Copy</button>\
         <pre><code>{}</code></pre></div>\n{}",
        escape(body),
        if devtools {
            format!("<p class=\"why\">{}</p>\n", escape(DEVTOOLS_NOTE))
        } else {
            String::new()
        }
    )
}

/// Text safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_block_keeps_its_text_and_gets_a_copy_button() {
        let html = to_html("Run:\n\n```sh\ncurl -s \"$BASE/api/health\" | jq .\n```\n");
        assert!(
            html.contains("<div class=\"code lang-sh\"><button"),
            "{html}"
        );
        assert!(
            html.contains("<pre><code>curl -s &quot;$BASE/api/health&quot; | jq .</code></pre>"),
            "{html}"
        );
    }

    #[test]
    fn a_no_run_block_is_marked() {
        let html = to_html("```sh no-run\naws ecs execute-command\n```\n");
        assert!(html.contains("class=\"code lang-sh no-run\""), "{html}");
    }

    #[test]
    fn devtools_addresses_get_a_copy_button_and_the_reason() {
        let html = to_html("Open `chrome://inspect` in Chrome.\n");
        assert!(html.contains("data-copy=\"chrome://inspect\""), "{html}");
        assert!(
            html.contains("<p class=\"why\">A web page cannot open"),
            "{html}"
        );
        let html =
            to_html("```\ndevtools://devtools/bundled/inspector.html?ws=127.0.0.1:9229/x\n```\n");
        assert!(html.contains("<p class=\"why\">"), "{html}");
        assert!(!to_html("Open `/json/list`.").contains("why"));
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = to_html("a <script>alert(1)</script> b\n\n<img src=x onerror=alert(1)>\n");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn prose_lists_and_emphasis_are_html() {
        let html = to_html("Some *words*.\n\n- one\n- two\n");
        assert!(html.contains("<em>words</em>"));
        assert!(html.contains("<li>one</li>"));
    }
}
