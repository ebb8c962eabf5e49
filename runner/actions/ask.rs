//! `ask:` — a question whose right answer comes from live state, so a participant cannot pass by
//! guessing. verify and demo answer it from that same state (which proves the answer can be derived).

use super::Context;
use crate::lab::AskAction;
use crate::outcome::{Done, Failure};

pub async fn perform(ctx: &Context, ask: &AskAction) -> Done {
    let expected = ask.answer.trim().to_string();
    if expected.is_empty() {
        return Err(anyhow::anyhow!(
            "the answer to {:?} came out empty; the state it is derived from was not saved",
            ask.question
        )
        .into());
    }
    let Some(asker) = ctx.asker() else {
        ctx.narrate(&format!(
            "ask: {} → {expected} (from the live state)",
            ask.question
        ));
        return Ok(());
    };
    let given = tokio::task::block_in_place(|| asker.ask(&ask.question))?;
    if answers_match(&given, &expected, ask.tolerance.unwrap_or(0.0)) {
        ctx.narrate(&format!("{given} — right"));
        Ok(())
    } else {
        Err(Failure::new(
            ask.question.clone(),
            "the value the app shows right now (not revealed: look again)",
            format!("{given:?}"),
        )
        .hint(ctx.step_hint())
        .into())
    }
}

/// Numbers within `tolerance`; otherwise the same text, ignoring case and surrounding space/quotes.
pub fn answers_match(given: &str, expected: &str, tolerance: f64) -> bool {
    let clean = |s: &str| {
        s.trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == '`')
            .trim()
            .to_lowercase()
    };
    let (given, expected) = (clean(given), clean(expected));
    match (given.parse::<f64>(), expected.parse::<f64>()) {
        (Ok(g), Ok(e)) => (g - e).abs() <= tolerance.max(0.0),
        _ => !given.is_empty() && given == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::answers_match;

    #[test]
    fn numbers_within_tolerance_and_text_ignoring_case() {
        assert!(answers_match("1500", "1500", 0.0));
        assert!(answers_match(" 12345.9 ", "12345.123", 1.0));
        assert!(!answers_match("12347", "12345.123", 1.0));
        assert!(answers_match("'BlockEventLoop'", "blockEventLoop", 0.0));
        assert!(!answers_match("", "x", 0.0));
        assert!(!answers_match("1501", "1500", 0.0));
    }
}
