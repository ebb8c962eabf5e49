//! `lab-runner new NAME`: a small lab to start from, which lints and passes `verify` as written
//! (on the process backend too: its app is a few lines of Node with no dependencies).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use super::exit;

/// The lab's files: path inside the new folder → text (`__LAB_ID__` becomes the lab's id).
const FILES: &[(&str, &str)] = &[
    ("lab.yaml", include_str!("new/lab.yaml")),
    ("part1.yaml", include_str!("new/part1.yaml")),
    ("app/package.json", include_str!("new/app/package.json")),
    ("app/server.js", include_str!("new/app/server.js")),
];

/// Write a small lab to start from into a new folder NAME
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  lab-runner new my-lab\n  lab-runner lint my-lab && lab-runner verify --lab my-lab --backend process\n\nThe lab's files name the format's JSON Schema (written next to them as lab-format.schema.json)\non their first line, for editors that complete and validate YAML."
)]
pub struct NewArgs {
    /// The folder to create (its name is the lab's id)
    pub name: PathBuf,
}

pub async fn run(args: NewArgs) -> anyhow::Result<u8> {
    let written = write_lab(&args.name)?;
    println!(
        "wrote the lab {} ({} files) in {}\nnext: lab-runner lint {dir} && lab-runner verify --lab {dir}",
        lab_id(&args.name)?,
        written,
        args.name.display(),
        dir = args.name.display()
    );
    Ok(exit::SUCCESS)
}

/// The lab's id: the folder's name, which must be a plain word (letters, digits, `-`, `_`).
fn lab_id(dir: &Path) -> anyhow::Result<String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` does not end in a folder name", dir.display()))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "`{name}` cannot be a lab id: use letters, digits, `-` and `_` only (the id keys progress)"
        );
    }
    Ok(name.to_string())
}

/// Writes the lab into `dir` (which must not exist, or be empty); returns how many files.
pub fn write_lab(dir: &Path) -> anyhow::Result<usize> {
    let id = lab_id(dir)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("Failed to read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty: name a new folder",
            dir.display()
        );
    }
    let mut files: Vec<(String, String)> = FILES
        .iter()
        .map(|(path, text)| (path.to_string(), text.replace("__LAB_ID__", &id)))
        .collect();
    files.push((
        "lab-format.schema.json".into(),
        crate::lab::schema::schema_text(),
    ));
    for (path, text) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("Failed to create {}", parent.display()))?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("Failed to write {}", target.display()))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_id_is_a_plain_word() {
        assert_eq!(lab_id(Path::new("labs/my-lab_2")).unwrap(), "my-lab_2");
        assert!(lab_id(Path::new("my lab")).is_err());
        assert!(lab_id(Path::new("..")).is_err());
    }

    #[test]
    fn a_folder_with_files_in_it_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("busy");
        std::fs::create_dir(&lab).unwrap();
        std::fs::write(lab.join("keep.txt"), "mine").unwrap();
        assert!(
            write_lab(&lab)
                .unwrap_err()
                .to_string()
                .contains("not empty")
        );
        assert_eq!(
            std::fs::read_to_string(lab.join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
