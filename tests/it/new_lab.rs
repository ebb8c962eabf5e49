//! `lab-runner new NAME`: from an empty folder, the lab it writes lints and passes `verify` as
//! written, and its files name (and match) the lab format's schema.

use crate::support;

use support::{lab_runner, text};

#[test]
fn new_then_lint_then_verify_from_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = lab_runner()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let all = text(&out);
        (out, all)
    };
    let (out, all) = run(&["new", "my-lab"]);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let (out, all) = run(&["lint", "my-lab"]);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("ok — 1 part(s), 2 step(s)"), "{all}");
    let (out, all) = run(&["verify", "--backend", "process", "--lab", "my-lab"]);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some("2 passed, 0 failed"),
        "{all}"
    );
    // Inside the lab's folder, the commands mean that lab without being told.
    let inside = lab_runner()
        .current_dir(dir.path().join("my-lab"))
        .args(["lint"])
        .output()
        .unwrap();
    assert!(
        text(&inside).contains("ok — 1 part(s), 2 step(s)"),
        "{}",
        text(&inside)
    );
    // The schema its modeline names is written next to it, and is the runner's own.
    let lab = dir.path().join("my-lab");
    let first = std::fs::read_to_string(lab.join("part1.yaml")).unwrap();
    assert_eq!(
        first.lines().next(),
        Some("# yaml-language-server: $schema=lab-format.schema.json")
    );
    assert_eq!(
        std::fs::read_to_string(lab.join("lab-format.schema.json")).unwrap(),
        lab_runner::lab::schema::schema_text()
    );
    // A second `new` into the same folder leaves it alone.
    let (out, all) = run(&["new", "my-lab"]);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("already exists and is not empty"), "{all}");
}
