//! `lab-runner schema`: the committed JSON Schema is what the runner generates, the shipped lab's
//! files name it in their `yaml-language-server` modeline and validate against it, and it rejects
//! what `load` rejects (a misspelt field).

use std::path::Path;

use crate::support;

use lab_runner::lab::schema::COMMITTED_PATH;
use serde_json::Value;
use support::{fixture, lab_runner, repo_root, shipped_lab, text};

const MODELINE: &str = "# yaml-language-server: $schema=";

fn committed() -> Value {
    let text = std::fs::read_to_string(repo_root().join(COMMITTED_PATH)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&committed()).expect("the committed schema compiles")
}

/// A YAML file of a lab as JSON, read by the runner's own YAML reader.
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    lab_runner::lab::yaml::parse::<Value>(&text, path).unwrap()
}

/// Every problem the schema finds in `path`, one line each.
fn problems(validator: &jsonschema::Validator, path: &Path) -> Vec<String> {
    let instance = yaml(path);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {} at {}", path.display(), e, e.instance_path()))
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_committed_schema_is_what_lab_runner_schema_prints() {
    let out = lab_runner().arg("schema").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    let file = std::fs::read_to_string(repo_root().join(COMMITTED_PATH)).unwrap();
    assert!(
        printed == file,
        "{COMMITTED_PATH} is out of date: run `cargo run -- schema --out {COMMITTED_PATH}`"
    );
}

#[test]
fn the_shipped_lab_names_the_schema_and_validates_against_it() {
    names_the_schema_and_validates(&shipped_lab(), 4);
}

#[test]
fn the_python_lab_names_the_schema_and_validates_against_it() {
    names_the_schema_and_validates(&repo_root().join("labs").join("python-service"), 3);
}

/// Every YAML file of `lab` (at least `at_least`) starts with the modeline naming the committed
/// schema, and validates against it.
fn names_the_schema_and_validates(lab: &Path, at_least: usize) {
    let validator = validator();
    let files = yaml_files(lab);
    assert!(files.len() >= at_least, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix(MODELINE)
            .unwrap_or_else(|| panic!("{} does not start with `{MODELINE}...`", file.display()));
        let named = file.parent().unwrap().join(target);
        assert_eq!(
            std::fs::canonicalize(&named).unwrap(),
            std::fs::canonicalize(repo_root().join(COMMITTED_PATH)).unwrap(),
            "{}: the modeline names {target}",
            file.display()
        );
        let found = problems(&validator, &file);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

#[test]
fn the_fixture_labs_of_the_generic_checks_validate_too() {
    let validator = validator();
    for file in yaml_files(&fixture("verify/generic-checks")) {
        let found = problems(&validator, &file);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

#[test]
fn the_lab_that_new_writes_validates_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = lab_runner()
        .current_dir(dir.path())
        .args(["new", "fresh"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let validator = validator();
    let files = yaml_files(&dir.path().join("fresh"));
    assert_eq!(files.len(), 2, "{files:?}");
    for file in files {
        let found = problems(&validator, &file);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

#[test]
fn the_schema_rejects_a_misspelt_field_and_a_bad_duration() {
    let validator = validator();
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part.yaml");
    let good = "title: t\nsteps:\n  - id: \"1.1\"\n    title: s\n    instructions: x\n    check:\n      - command: {run: 'true', timeout: 2s}\n";
    std::fs::write(&part, good).unwrap();
    assert!(problems(&validator, &part).is_empty());
    for bad in [
        good.replace("timeout: 2s", "timeot: 2s"),
        good.replace("timeout: 2s", "timeout: 2"),
        good.replace("command:", "comand:"),
    ] {
        std::fs::write(&part, &bad).unwrap();
        assert!(!problems(&validator, &part).is_empty(), "accepted:\n{bad}");
    }
}
