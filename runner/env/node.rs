//! The host's `node`: where it is, and how the runner adds options to its `NODE_OPTIONS`. Both
//! backends use it (the process backend runs it; the offline image copies it).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Finds `node` on the PATH (or `$LAB_RUNNER_NODE`), resolving symlinks.
pub fn find_node() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os("LAB_RUNNER_NODE") {
        return fs::canonicalize(&explicit).with_context(|| {
            format!(
                "LAB_RUNNER_NODE={} does not exist",
                Path::new(&explicit).display()
            )
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("node");
        if candidate.is_file() {
            return fs::canonicalize(&candidate)
                .with_context(|| format!("Failed to resolve {}", candidate.display()));
        }
    }
    bail!(
        "`node` is not on the PATH; install Node.js 20 or newer (or set LAB_RUNNER_NODE to its binary)"
    )
}

/// Puts `option` first in NODE_OPTIONS, keeping what is there.
pub fn prepend_node_option(env: &mut BTreeMap<String, String>, option: &str) {
    let value = match env.get("NODE_OPTIONS").map(|s| s.trim()) {
        Some(existing) if !existing.is_empty() => format!("{option} {existing}"),
        _ => option.to_string(),
    };
    env.insert("NODE_OPTIONS".into(), value);
}
