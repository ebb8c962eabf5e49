//! `verify --step ID --watch`: verify the step, then again each time a file of the lab (its YAML, its
//! app's source) changes, until Ctrl-C — as rustlings' watch mode re-checks an exercise. Changes
//! are found by polling the files' sizes and modification times (no watcher to set up, the same on
//! every system); a burst of saves is one change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(300);
/// How long the files must stay unchanged before the step runs again (an editor saves in bursts).
const SETTLE: Duration = Duration::from_millis(200);
/// Beyond this many files, a folder is not one a lab lives in: the rest are not watched.
const MAX_FILES: usize = 5_000;

/// What the watched files look like: path → (size, modification time).
pub type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

/// The files under `roots` (hidden files and folders and `node_modules` left out).
pub fn snapshot(roots: &[PathBuf]) -> Snapshot {
    let mut files = Snapshot::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(path) = stack.pop() {
        if files.len() >= MAX_FILES {
            break;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !name.starts_with('.') && name != "node_modules" {
                    stack.push(entry.path());
                }
            }
        } else {
            files.insert(path, (meta.len(), meta.modified().ok()));
        }
    }
    files
}

/// Waits until the files under `roots` differ from `before` and then stay unchanged for a moment;
/// returns the files that changed (added, removed or modified).
pub async fn changed(roots: &[PathBuf], before: &Snapshot) -> Vec<PathBuf> {
    loop {
        tokio::time::sleep(POLL).await;
        let mut now = snapshot(roots);
        if now == *before {
            continue;
        }
        // Let a burst of saves end.
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = snapshot(roots);
            if again == now {
                break;
            }
            now = again;
        }
        return difference(before, &now);
    }
}

fn difference(before: &Snapshot, now: &Snapshot) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = now
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .chain(before.keys().filter(|p| !now.contains_key(*p)).cloned())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The folders a lab's step depends on: the lab's own, and its app's source when that lies outside.
pub fn roots(lab_dir: &Path, app_dir: Option<PathBuf>) -> Vec<PathBuf> {
    let mut roots = vec![lab_dir.to_path_buf()];
    if let Some(app) = app_dir {
        let inside = match (std::fs::canonicalize(&app), std::fs::canonicalize(lab_dir)) {
            (Ok(a), Ok(l)) => a.starts_with(l),
            _ => false,
        };
        if !inside {
            roots.push(app);
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_changed_file_is_found_and_hidden_ones_are_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part.yaml"), "a").unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let roots = vec![dir.path().to_path_buf()];
        let before = snapshot(&roots);
        assert_eq!(before.len(), 1);
        std::fs::write(dir.path().join(".git").join("index"), "x").unwrap();
        assert_eq!(snapshot(&roots), before, "hidden files are not watched");
        let writer = {
            let path = dir.path().join("part.yaml");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                std::fs::write(path, "ab").unwrap();
            })
        };
        let found = tokio::time::timeout(Duration::from_secs(5), changed(&roots, &before))
            .await
            .expect("the change is seen");
        writer.await.unwrap();
        assert_eq!(found, vec![dir.path().join("part.yaml")]);
    }
}
