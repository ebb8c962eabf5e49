//! The one place YAML is parsed. serde_norway is the maintained fork of the archived serde_yaml;
//! keeping it behind this module means a future swap touches one file.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::diagnostic::Diagnostic;

/// Parses `text` (read from `file`) into `T`. On error the diagnostic names the file, line and column,
/// the path of the offending field (`steps[2].check[0]`), and the id of the step around that line.
///
/// Enums are written the way people write YAML — `- http: {path: /x}`, `container: restart` — rather
/// than with YAML tags (`!http`), hence the singleton-map reading.
pub fn parse<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, Box<Diagnostic>> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_norway::with::singleton_map_recursive::deserialize(deserializer).map_err(
        |err: serde_norway::Error| {
            let (line, column) = err
                .location()
                .map(|loc| (loc.line(), loc.column()))
                .unwrap_or((1, 1));
            let message = strip_location(&err.to_string());
            Box::new(Diagnostic::new(file, line, column, message).in_step(step_at_line(text, line)))
        },
    )
}

/// serde_norway appends " at line L column C" to its messages; the diagnostic says that itself.
fn strip_location(message: &str) -> String {
    let Some(start) = message.find(" at line ") else {
        return message.to_string();
    };
    let rest = &message[start + " at line ".len()..];
    let Some(column) = rest.find(" column ") else {
        return message.to_string();
    };
    let after = &rest[column + " column ".len()..];
    let digits = after.chars().take_while(char::is_ascii_digit).count();
    format!("{}{}", &message[..start], &after[digits..])
}

/// The id of the step whose list item starts at or before `line` (1-based), if the file is a part file.
pub fn step_at_line(text: &str, line: usize) -> Option<String> {
    step_id_lines(text)
        .into_iter()
        .take_while(|(at, _)| *at <= line)
        .last()
        .map(|(_, id)| id)
}

/// Every `- id: "x"` list item under `steps:` with its 1-based line, in file order.
pub fn step_id_lines(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_steps = false;
    let mut item_indent = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_steps = trimmed.starts_with("steps:");
            item_indent = None;
            continue;
        }
        if !in_steps {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("- ") {
            let first = *item_indent.get_or_insert(indent);
            if indent == first {
                if let Some(id) = rest.trim_start().strip_prefix("id:") {
                    found.push((i + 1, unquote(id)));
                } else {
                    // An item whose id is on a later line: find it below, at the item's key indent.
                    let key_indent = indent + 2;
                    let id = text.lines().skip(i + 1).find_map(|l| {
                        let t = l.trim_start();
                        (l.len() - t.len() == key_indent)
                            .then(|| t.strip_prefix("id:").map(unquote))
                            .flatten()
                    });
                    if let Some(id) = id {
                        found.push((i + 1, id));
                    }
                }
            }
        }
    }
    found
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    let s = s.split(" #").next().unwrap_or(s).trim();
    s.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// Line (1-based) of the first line at or after `from_line` whose text contains `needle`.
pub fn find_line(text: &str, from_line: usize, needle: &str) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find_map(|(i, l)| l.find(needle).map(|col| (i + 1, col + 1)))
}

/// The line where the item `path` (`check[1]`, `mistakes[0].do[2]`, or the outer item of a nested
/// path such as `solve[0].parallel[1]`) of the step at `step_line` starts, when it is written as a
/// block list (`- ` items under `check:`); None otherwise (a flow list `[...]`).
pub fn item_line(text: &str, step_line: usize, path: &str) -> Option<usize> {
    let (phase, rest) = path.split_once('[')?;
    let index: usize = rest.split(']').next()?.parse().ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let step_indent = indent(lines.get(step_line.checked_sub(1)?)?);
    let key = format!("{phase}:");
    let (phase_at, phase_indent) = lines
        .iter()
        .enumerate()
        .skip(step_line)
        // The step ends where the next item at its own indentation (the next step) starts.
        .take_while(|(_, l)| !(l.trim_start().starts_with("- ") && indent(l) <= step_indent))
        .find(|(_, l)| l.trim_start().starts_with(&key))
        .map(|(i, l)| (i, indent(l)))?;
    let mut seen = 0;
    let mut item_indent = None;
    for (i, l) in lines.iter().enumerate().skip(phase_at + 1) {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let at = indent(l);
        if at <= phase_indent && !(at == phase_indent && l.trim_start().starts_with("- ")) {
            return None;
        }
        if l.trim_start().starts_with("- ") && *item_indent.get_or_insert(at) == at {
            if seen == index {
                return Some(i + 1);
            }
            seen += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_line_of_an_action_by_its_path() {
        let part = "steps:\n  - id: a\n    check:\n      - command: {run: x}\n      - command:\n          run: y\n    solve:\n    - shell: z\n  - id: b\n    check:\n      - file: {path: q}\n";
        assert_eq!(item_line(part, 2, "check[0]"), Some(4));
        assert_eq!(item_line(part, 2, "check[1].eventually.do[0]"), Some(5));
        assert_eq!(item_line(part, 2, "solve[0]"), Some(8));
        assert_eq!(item_line(part, 2, "check[2]"), None);
        assert_eq!(item_line(part, 2, "setup[0]"), None);
        assert_eq!(item_line(part, 9, "check[0]"), Some(11));
    }

    use super::*;

    const PART: &str = "title: t\nsteps:\n  - id: \"2.0\"\n    title: a\n  - id: '2.1'\n    title: b\n    check:\n      - http: {path: /x}\n";

    #[test]
    fn finds_the_step_around_a_line() {
        assert_eq!(step_at_line(PART, 1), None);
        assert_eq!(step_at_line(PART, 4).as_deref(), Some("2.0"));
        assert_eq!(step_at_line(PART, 8).as_deref(), Some("2.1"));
    }

    #[test]
    fn strips_serde_location_suffix() {
        assert_eq!(
            strip_location("steps[0]: unknown field `x` at line 3 column 5"),
            "steps[0]: unknown field `x`"
        );
    }
}
