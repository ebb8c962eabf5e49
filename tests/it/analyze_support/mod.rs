//! Helpers shared by the `analyze_*` integration tests.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// A committed fixture under `tests/fixtures/analyze/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/analyze")
        .join(name)
}

/// Runs `node` with these arguments and fails the test, saying why, if it does not succeed.
pub fn node(args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new("node")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("these tests need Node.js (>= 20) on PATH: {e}"));
    assert!(
        output.status.success(),
        "node {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes a heap snapshot with the generator script (see its header for the options).
pub fn generate_snapshot(dir: &Path, name: &str, options: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let script = fixture("gen-heapsnapshot.mjs");
    let mut args = vec![script.as_os_str(), out.as_os_str()];
    args.extend(options.iter().map(std::ffi::OsStr::new));
    node(&args);
    out
}

/// `{err:#}`: the error with its whole chain of context, as the CLI prints it.
pub fn message(err: &anyhow::Error) -> String {
    format!("{err:#}")
}
