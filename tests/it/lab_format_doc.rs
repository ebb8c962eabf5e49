//! docs/LAB-FORMAT.md cannot drift from the format: each ```yaml <Type> example validates against
//! that type in the committed schema, every action (and every kind of inspector, container, tunnel
//! and analyze action) has an example, every matcher operator has one, and every field of every
//! type of the format appears in some example.

use std::collections::BTreeSet;

use crate::support;

use lab_runner::lab::schema::COMMITTED_PATH;
use serde_json::{Value, json};
use support::repo_root;

const DOC: &str = "docs/LAB-FORMAT.md";

/// The doc's examples: (type, line of the opening fence, text).
fn examples() -> Vec<(String, usize, String)> {
    let text = std::fs::read_to_string(repo_root().join(DOC)).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, String, usize, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let ticks = line.chars().take_while(|c| *c == '`').count();
        match &mut open {
            Some((n, kind, at, body)) => {
                if ticks >= *n && line.trim() == "`".repeat(ticks) {
                    if !kind.is_empty() {
                        out.push((kind.clone(), *at, body.join("\n")));
                    }
                    open = None;
                } else {
                    body.push(line);
                }
            }
            None if ticks >= 3 => {
                let info = line[ticks..].trim();
                let kind = info.strip_prefix("yaml ").unwrap_or_default().trim();
                open = Some((ticks, kind.to_string(), i + 1, Vec::new()));
            }
            None => {}
        }
    }
    assert!(open.is_none(), "{DOC}: a code block is never closed");
    out
}

fn schema() -> Value {
    let text = std::fs::read_to_string(repo_root().join(COMMITTED_PATH)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn yaml(text: &str) -> Value {
    lab_runner::lab::yaml::parse::<Value>(text, std::path::Path::new(DOC)).unwrap()
}

/// The names of an externally tagged enum's variants in the schema (`Action` → http, shell, ...).
fn variants(schema: &Value, def: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for choice in schema["$defs"][def]["oneOf"].as_array().unwrap() {
        if let Some(values) = choice["enum"].as_array() {
            names.extend(values.iter().filter_map(|v| v.as_str().map(String::from)));
        } else if let Some(value) = choice["const"].as_str() {
            names.insert(value.to_string());
        } else if let Some(required) = choice["required"].as_array() {
            names.extend(required.iter().filter_map(|v| v.as_str().map(String::from)));
        }
    }
    assert!(!names.is_empty(), "no variants found for {def}");
    names
}

/// A tagged value's tag: the string itself, or the one key of a map.
fn tag(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) if map.len() == 1 => map.keys().next().cloned(),
        _ => None,
    }
}

#[test]
fn every_example_validates_against_its_type() {
    let schema = schema();
    let examples = examples();
    assert!(examples.len() > 40, "{} examples", examples.len());
    let mut problems = Vec::new();
    for (kind, line, text) in &examples {
        assert!(
            schema["$defs"].get(kind).is_some(),
            "{DOC}:{line}: ```yaml {kind}: the schema has no type {kind}"
        );
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/$defs/{kind}"),
            "$defs": schema["$defs"].clone(),
        });
        let validator = jsonschema::validator_for(&root).unwrap();
        let instance = yaml(text);
        for error in validator.iter_errors(&instance) {
            problems.push(format!(
                "{DOC}:{line}: {kind}: {error} at {}",
                error.instance_path()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_action_and_matcher_operator_has_an_example() {
    let schema = schema();
    let actions: Vec<Value> = examples()
        .into_iter()
        .filter(|(kind, _, _)| kind == "Action")
        .map(|(_, _, text)| yaml(&text))
        .collect();
    // Actions written anywhere in an example, nested ones included.
    fn walk(value: &Value, out: &mut Vec<(String, Value)>) {
        if let Value::Object(map) = value {
            for (k, v) in map {
                out.push((k.clone(), v.clone()));
                walk(v, out);
            }
        } else if let Value::Array(items) = value {
            for item in items {
                walk(item, out);
            }
        }
    }
    let mut keyed = Vec::new();
    for action in &actions {
        walk(action, &mut keyed);
    }
    let shown: BTreeSet<String> = actions.iter().filter_map(tag).collect();
    let missing: Vec<String> = variants(&schema, "Action")
        .difference(&shown)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "{DOC} has no example of: {missing:?}");
    for (key, def) in [
        ("inspector", "InspectorAction"),
        ("container", "ContainerAction"),
        ("tunnel", "TunnelAction"),
        ("analyze", "AnalyzeAction"),
    ] {
        let shown: BTreeSet<String> = keyed
            .iter()
            .filter(|(k, _)| k == key)
            .filter_map(|(_, v)| tag(v))
            .collect();
        let missing: Vec<String> = variants(&schema, def).difference(&shown).cloned().collect();
        assert!(
            missing.is_empty(),
            "{DOC} has no example of {key}: {missing:?}"
        );
    }
    let operators: BTreeSet<String> = examples()
        .into_iter()
        .filter(|(kind, _, _)| kind == "Matcher")
        .filter_map(|(_, _, text)| match yaml(&text) {
            Value::Object(map) => Some(map.keys().cloned().collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    for op in lab_runner::lab::MATCH_OPERATORS {
        assert!(
            operators.contains(*op),
            "{DOC} has no Matcher example of `{op}`"
        );
    }
}

#[test]
fn every_field_of_the_format_appears_in_an_example() {
    let schema = schema();
    let mut keys = BTreeSet::new();
    fn walk(value: &Value, keys: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    keys.insert(k.clone());
                    walk(v, keys);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, keys)),
            _ => {}
        }
    }
    for (_, _, text) in examples() {
        walk(&yaml(&text), &mut keys);
    }
    let mut missing = Vec::new();
    for (def, body) in schema["$defs"].as_object().unwrap() {
        if let Some(properties) = body["properties"].as_object() {
            for field in properties.keys() {
                if !keys.contains(field) {
                    missing.push(format!("{def}.{field}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{DOC} shows no example of: {missing:?}");
}
