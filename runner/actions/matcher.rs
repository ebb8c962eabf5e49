//! Judging a value against a [`Matcher`].

use serde_json::Value;

use crate::lab::{MatchOps, Matcher, TextExpect};

/// `Ok(())` when `actual` satisfies `matcher`; otherwise the expectation in words.
pub fn judge(matcher: &Matcher, actual: Option<&Value>) -> Result<(), String> {
    match matcher {
        Matcher::Equals(expected) => match actual {
            Some(a) if equal(a, expected) => Ok(()),
            _ => Err(format!("= {}", show(expected))),
        },
        Matcher::Ops(ops) => judge_ops(ops, actual),
    }
}

fn judge_ops(ops: &MatchOps, actual: Option<&Value>) -> Result<(), String> {
    let mut expectations = Vec::new();
    let mut ok = true;
    if let Some(exists) = ops.exists {
        expectations.push(if exists {
            "present".to_string()
        } else {
            "absent".to_string()
        });
        let present = actual.is_some_and(|v| !v.is_null());
        ok &= present == exists;
    }
    let mut compare = |label: &str, expected: &Option<Value>, test: fn(f64, f64) -> bool| {
        if let Some(e) = expected {
            expectations.push(format!("{label} {}", show(e)));
            ok &= match (actual.and_then(number), number(e)) {
                (Some(a), Some(b)) => test(a, b),
                _ => false,
            };
        }
    };
    compare(">", &ops.gt, |a, b| a > b);
    compare(">=", &ops.gte, |a, b| a >= b);
    compare("<", &ops.lt, |a, b| a < b);
    compare("<=", &ops.lte, |a, b| a <= b);
    if let Some(e) = &ops.eq {
        expectations.push(format!("= {}", show(e)));
        ok &= actual.is_some_and(|a| equal(a, e));
    }
    if let Some(e) = &ops.ne {
        expectations.push(format!("≠ {}", show(e)));
        ok &= !actual.is_some_and(|a| equal(a, e));
    }
    if let Some(e) = &ops.contains {
        expectations.push(format!("containing {}", show(e)));
        ok &= match (actual, e) {
            (Some(Value::String(a)), Value::String(n)) => a.contains(n.as_str()),
            (Some(Value::Array(items)), needle) => items.iter().any(|i| equal(i, needle)),
            _ => false,
        };
    }
    if let Some(prefix) = &ops.starts_with {
        expectations.push(format!("starting with {prefix:?}"));
        ok &= matches!(actual, Some(Value::String(a)) if a.starts_with(prefix.as_str()));
    }
    if let Some(options) = &ops.one_of {
        expectations.push(format!(
            "one of {}",
            options.iter().map(show).collect::<Vec<_>>().join(", ")
        ));
        ok &= actual.is_some_and(|a| options.iter().any(|o| equal(a, o)));
    }
    if ok {
        Ok(())
    } else {
        Err(expectations.join(" and "))
    }
}

/// Numbers compare as numbers even when one side is a rendered template string ("1500").
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) if matches!(a, Value::Number(_)) || matches!(b, Value::Number(_)) => {
            x == y
        }
        _ => false,
    }
}

/// A value as it appears in messages.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => {
            let text = other.to_string();
            if text.len() > 200 {
                format!("{}…", &text[..200])
            } else {
                text
            }
        }
    }
}

/// `actual` for messages (`absent` when missing).
pub fn show_actual(v: Option<&Value>) -> String {
    v.map(show).unwrap_or_else(|| "absent".to_string())
}

/// `Ok(())` when `text` holds every condition of `expect`; otherwise the conditions in words. A
/// regular expression that does not compile is an error of its own (`Err` with `bad_regex` set).
pub fn judge_text(expect: &TextExpect, text: &str) -> Result<(), TextMismatch> {
    let mut expectations = Vec::new();
    let mut ok = true;
    if let Some(needle) = &expect.contains {
        expectations.push(format!("containing {needle:?}"));
        ok &= text.contains(needle.as_str());
    }
    if let Some(needle) = &expect.not_contains {
        expectations.push(format!("not containing {needle:?}"));
        ok &= !text.contains(needle.as_str());
    }
    if let Some(pattern) = &expect.regex {
        let re = regex::Regex::new(pattern).map_err(|e| TextMismatch {
            expected: format!("matching /{pattern}/"),
            bad_regex: Some(e.to_string()),
        })?;
        expectations.push(format!("matching /{pattern}/"));
        ok &= re.is_match(text);
    }
    if ok {
        Ok(())
    } else {
        Err(TextMismatch {
            expected: expectations.join(" and "),
            bad_regex: None,
        })
    }
}

/// Why a text did not hold its expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMismatch {
    /// The conditions in words (`containing "ok" and matching /^v\d+/`).
    pub expected: String,
    /// The regular expression did not compile: why.
    pub bad_regex: Option<String>,
}

/// The end of a long text for a diagnosis (its last `lines` lines, at most `chars` characters), or
/// `(empty)`.
pub fn show_text(text: &str, lines: usize) -> String {
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return "(empty)".to_string();
    }
    let all: Vec<&str> = trimmed.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    let mut shown = tail
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    if all.len() > lines {
        shown = format!("    … ({} lines before)\n{shown}", all.len() - lines);
    }
    format!("\n{shown}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_conditions_combine_and_explain() {
        let expect = TextExpect {
            contains: Some("ok".into()),
            not_contains: Some("error".into()),
            regex: Some(r"(?m)^v\d+$".into()),
        };
        assert!(judge_text(&expect, "all ok\nv12\n").is_ok());
        let miss = judge_text(&expect, "ok but error\nv12").unwrap_err();
        assert_eq!(
            miss.expected,
            r#"containing "ok" and not containing "error" and matching /(?m)^v\d+$/"#
        );
        let bad = TextExpect {
            regex: Some("(".into()),
            ..TextExpect::default()
        };
        assert!(judge_text(&bad, "x").unwrap_err().bad_regex.is_some());
    }

    #[test]
    fn a_long_text_is_shown_by_its_end() {
        assert_eq!(show_text("  \n", 3), "(empty)");
        let text = "1\n2\n3\n4\n";
        assert_eq!(show_text(text, 2), "\n    … (2 lines before)\n    3\n    4");
    }

    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Matcher {
        Matcher::Ops(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn literal_equality_coerces_rendered_numbers() {
        assert!(judge(&Matcher::Equals(json!(1500)), Some(&json!(1500))).is_ok());
        assert!(judge(&Matcher::Equals(json!("1500")), Some(&json!(1500))).is_ok());
        assert!(judge(&Matcher::Equals(json!(true)), Some(&json!("true"))).is_err());
        assert_eq!(
            judge(&Matcher::Equals(json!(true)), None).unwrap_err(),
            "= true"
        );
    }

    #[test]
    fn operators_combine_and_explain() {
        let m = ops(json!({"gte": 1.0, "lt": "3"}));
        assert!(judge(&m, Some(&json!(2))).is_ok());
        assert_eq!(
            judge(&m, Some(&json!(0.5))).unwrap_err(),
            ">= 1.0 and < \"3\""
        );
        assert!(judge(&ops(json!({"exists": false})), None).is_ok());
        assert!(
            judge(
                &ops(json!({"contains": "ws://"})),
                Some(&json!("ws://127.0.0.1:9229/x"))
            )
            .is_ok()
        );
        assert!(judge(&ops(json!({"one_of": [401, 403]})), Some(&json!(403))).is_ok());
    }
}
