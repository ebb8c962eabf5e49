//! Progress: one small JSON file under the XDG state directory, keyed by lab id, part id and stable
//! step ids — so reordering or adding steps never corrupts it. Written atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::lab::{Lab, Part};

const FILE_NAME: &str = "progress.json";
const VERSION: u32 = 1;

/// Everything the file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub version: u32,
    /// lab id → part id → that part's progress.
    #[serde(default)]
    pub labs: BTreeMap<String, BTreeMap<String, PartProgress>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PartProgress {
    /// Steps whose check passed.
    #[serde(default)]
    pub done: BTreeSet<String>,
    /// Steps skipped without passing.
    #[serde(default)]
    pub skipped: BTreeSet<String>,
    /// The step the participant was on when they left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

impl PartProgress {
    /// Where to resume: the step the participant left on if it still exists, else the first step
    /// (in the part's current order) that is not done.
    pub fn resume_index(&self, part: &Part) -> usize {
        let steps = &part.file.steps;
        if let Some(i) = self
            .current
            .as_ref()
            .and_then(|c| steps.iter().position(|s| &s.id == c))
        {
            return i;
        }
        steps
            .iter()
            .position(|s| !self.done.contains(&s.id))
            .unwrap_or(steps.len())
    }

    /// Done steps that the part still has (ids of removed steps are kept but not counted).
    pub fn done_count(&self, part: &Part) -> usize {
        part.file
            .steps
            .iter()
            .filter(|s| self.done.contains(&s.id))
            .count()
    }
}

/// Where the file lives: `$LAB_RUNNER_STATE_DIR`, else `$XDG_STATE_HOME/lab-runner`, else
/// `~/.local/state/lab-runner`.
pub fn state_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LAB_RUNNER_STATE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("lab-runner"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_STATE_HOME nor HOME is set, so there is nowhere to keep progress")?;
    Ok(PathBuf::from(home)
        .join(".local")
        .join("state")
        .join("lab-runner"))
}

/// The progress file, read and written as a whole.
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn open_default() -> Result<Store> {
        Ok(Store::in_dir(&state_dir()?))
    }

    /// The store of the state folder `dir` (what `LAB_RUNNER_STATE_DIR=dir` opens).
    pub fn in_dir(dir: &Path) -> Store {
        Store::at(&dir.join(FILE_NAME))
    }

    pub fn at(path: &Path) -> Store {
        Store {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file (empty progress when there is none). A file that cannot be read is an error
    /// that says where it is and how to start over — never silently replaced.
    pub fn load(&self) -> Result<Progress> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Progress {
                    version: VERSION,
                    ..Default::default()
                });
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("Failed to read the progress file {}", self.path.display())
                });
            }
        };
        let progress: Progress = serde_json::from_str(&text).with_context(|| {
            format!(
                "the progress file {} is not valid ({}); move it away or run `lab-runner reset` to start over",
                self.path.display(),
                text.chars().take(60).collect::<String>()
            )
        })?;
        if progress.version > VERSION {
            bail!(
                "the progress file {} was written by a newer lab-runner (version {}); update lab-runner",
                self.path.display(),
                progress.version
            );
        }
        Ok(progress)
    }

    /// Writes the whole file atomically: a temporary file in the same folder, then a rename.
    pub fn save(&self, progress: &Progress) -> Result<()> {
        let dir = self
            .path
            .parent()
            .context("the progress file has no folder")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
        let mut temp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("Failed to write in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut temp, progress)?;
        use std::io::Write;
        temp.write_all(b"\n")?;
        temp.as_file().sync_all().ok();
        temp.persist(&self.path)
            .with_context(|| format!("Failed to replace {}", self.path.display()))?;
        Ok(())
    }

    /// Loads, changes and saves the progress of one part.
    pub fn update(
        &self,
        lab: &Lab,
        part: &Part,
        change: impl FnOnce(&mut PartProgress),
    ) -> Result<()> {
        let mut progress = self.load()?;
        progress.version = VERSION;
        let entry = progress
            .labs
            .entry(lab.id().to_string())
            .or_default()
            .entry(part.id().to_string())
            .or_default();
        change(entry);
        self.save(&progress)
    }

    pub fn part(&self, lab: &Lab, part: &Part) -> Result<PartProgress> {
        Ok(self
            .load()?
            .labs
            .get(lab.id())
            .and_then(|parts| parts.get(part.id()))
            .cloned()
            .unwrap_or_default())
    }
}

/// What `lab-runner reset` forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetScope {
    All,
    Part(String),
    Step { part: String, step: String },
}

/// Resolves `PART` or `STEP` as a user types it (`part2`, `2`, `2.3`).
pub fn reset_scope(lab: &Lab, what: Option<&str>) -> Result<ResetScope> {
    let Some(what) = what else {
        return Ok(ResetScope::All);
    };
    if let Ok(parts) = lab.select_parts(&[what.to_string()]) {
        return Ok(ResetScope::Part(parts[0].id().to_string()));
    }
    for part in &lab.parts {
        if part.step(what).is_some() {
            return Ok(ResetScope::Step {
                part: part.id().to_string(),
                step: what.to_string(),
            });
        }
    }
    bail!(
        "`{what}` is neither a part nor a step of lab `{}` (see `lab-runner list`)",
        lab.id()
    )
}

/// Forgets progress in `scope`; returns what it said it did.
pub fn reset(store: &Store, lab: &Lab, scope: &ResetScope) -> Result<String> {
    let mut progress = store.load()?;
    let parts = progress.labs.entry(lab.id().to_string()).or_default();
    let said = match scope {
        ResetScope::All => {
            parts.clear();
            format!("forgot all progress in lab {}", lab.id())
        }
        ResetScope::Part(part) => {
            parts.remove(part);
            format!("forgot the progress of {part}")
        }
        ResetScope::Step { part, step } => {
            let entry = parts.entry(part.clone()).or_default();
            entry.done.remove(step);
            entry.skipped.remove(step);
            entry.current = Some(step.clone());
            format!(
                "step {step} of {part} is not done any more; `lab-runner start {part}` resumes there"
            )
        }
    };
    store.save(&progress)?;
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(&dir.path().join("nested/progress.json"));
        assert_eq!(store.load().unwrap().labs.len(), 0);
        let mut p = Progress {
            version: VERSION,
            ..Default::default()
        };
        p.labs
            .entry("lab".into())
            .or_default()
            .entry("part2".into())
            .or_default()
            .done
            .insert("2.1".into());
        store.save(&p).unwrap();
        assert_eq!(store.load().unwrap(), p);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_corrupt_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = Store::at(&path).load().unwrap_err();
        assert!(format!("{err:#}").contains("lab-runner reset"), "{err:#}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{not json",
            "the file is left as it was"
        );
    }
}
