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

#[cfg(test)]
mod tests {
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

/// Where each node of a YAML file is: its path (`steps[2].check[0].http.path`, as lint and the
/// templates name it) → the 1-based line and column of its key (of the item, in a list), read from
/// the event parser's spans rather than by searching the text, so two fields of the same name in two
/// places are told apart.
#[derive(Debug, Default, Clone)]
pub struct Positions(std::collections::BTreeMap<String, (usize, usize)>);

impl Positions {
    /// The positions of `text`; empty when it is not YAML (its parse error is reported elsewhere).
    pub fn of(text: &str) -> Positions {
        use saphyr_parser::{Event, Parser};
        enum Frame {
            Map { path: String, key: Option<String> },
            Seq { path: String, next: usize },
        }
        let mut found = std::collections::BTreeMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else {
                break;
            };
            let at = (span.start.line(), span.start.col() + 1);
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::Alias(_)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
            );
            let mut path = None;
            if is_node {
                match stack.last_mut() {
                    Some(Frame::Map {
                        key: key @ None,
                        path: map,
                    }) => {
                        if let Event::Scalar(name, ..) = &event {
                            let p = join(map, name);
                            found.insert(p.clone(), at);
                            *key = Some(p);
                        }
                        continue;
                    }
                    Some(Frame::Map { key, .. }) => path = key.take(),
                    Some(Frame::Seq { path: seq, next }) => {
                        let p = format!("{seq}[{next}]");
                        *next += 1;
                        found.insert(p.clone(), at);
                        path = Some(p);
                    }
                    None => path = Some(String::new()),
                }
            }
            match event {
                Event::MappingStart(..) => stack.push(Frame::Map {
                    path: path.unwrap_or_default(),
                    key: None,
                }),
                Event::SequenceStart(..) => stack.push(Frame::Seq {
                    path: path.unwrap_or_default(),
                    next: 0,
                }),
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Positions(found)
    }

    /// The position of `path`, or of the nearest enclosing node the file has (a `shell:` written as
    /// one string has no `run` key: its position is the `shell:` key's).
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(at) = self.0.get(path) {
                return Some(*at);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

#[cfg(test)]
mod positions_tests {
    use super::Positions;

    #[test]
    fn each_field_is_found_at_its_own_key_not_at_the_first_of_its_name() {
        let text = "environments:\n  a:\n    env:\n      X: one\n  b:\n    env:\n      X: \"{{ nope }}\"\nsteps:\n  - id: \"1\"\n    check:\n      - http: {path: /a}\n      - shell: |\n          echo hi\n";
        let p = Positions::of(text);
        assert_eq!(p.get("environments.a.env.X"), Some((4, 7)));
        assert_eq!(p.get("environments.b.env.X"), Some((7, 7)));
        assert_eq!(p.get("steps[0]"), Some((9, 5)));
        assert_eq!(p.get("steps[0].check[0].http.path"), Some((11, 16)));
        assert_eq!(p.get("steps[0].check[1].shell.run"), Some((12, 9)));
        assert_eq!(Positions::of("a: [").get("a"), Some((1, 1)));
    }
}
