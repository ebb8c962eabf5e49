//! The lab app's own test suite (node:test, over real HTTP), run as part of the project's one test
//! command so CI runs it too.

use crate::support;

use std::process::Command;

#[test]
fn the_lab_app_node_test_suite_passes() {
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "lab-app/test/"])
        .current_dir(support::repo_root())
        .env_remove("NODE_OPTIONS")
        .output()
        .expect("`node` (20 or newer) must be on the PATH to run the lab app's tests");
    let report = support::text(&out);
    assert!(
        out.status.success(),
        "the lab app's tests failed:\n{report}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ℹ fail 0"), "{report}");
    assert!(
        !stdout.contains("ℹ pass 0"),
        "no lab app test ran:\n{report}"
    );
}
