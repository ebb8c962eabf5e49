//! The runner's cache folder: answers that are costly to get and can always be got again.

use std::path::PathBuf;

/// `$XDG_CACHE_HOME/lab-runner`, else `~/.cache/lab-runner`; `None` when neither is set.
pub fn dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("lab-runner"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".cache").join("lab-runner"))
}

/// Lets lint keep bash's answers about the lab's shell blocks there (see `lab::bash`).
pub fn remember_shell_syntax() {
    if let Some(dir) = dir() {
        crate::lab::bash::remember_in(dir.join("bash-n"));
    }
}
