//! Asking bash whether a text parses (`bash -n`), remembered across runs.
//!
//! Lint asks bash about every shell block of a lab, and the mutation list splits each block into
//! whole commands the same way: about a hundred `bash` processes for the shipped lab, on every
//! `start` and `verify`. Bash's answer depends only on the text and on which bash answers, so it is
//! kept in a folder the runner names ([`remember_in`]), one small file per question, and read back
//! instead of asking again. Without that folder, or when bash is not there, every question goes to
//! bash as before.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// Where answers are kept (set once by the program; tests leave it unset unless they test it).
static FOLDER: OnceLock<PathBuf> = OnceLock::new();

/// Keeps bash's answers in `dir` from now on, for this process. The first call wins.
pub fn remember_in(dir: PathBuf) {
    let _ = FOLDER.set(dir);
}

/// What `bash -n` said about a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Whether bash exited 0.
    pub parses: bool,
    /// What bash wrote to stderr (a warning such as "here-document delimited by end-of-file" can
    /// come with success).
    pub said: String,
}

/// `bash --noprofile --norc -n -c text`: read, not run. `None` when bash cannot be asked.
pub fn check(text: &str) -> Option<Answer> {
    check_in(FOLDER.get().map(PathBuf::as_path), text)
}

fn check_in(folder: Option<&Path>, text: &str) -> Option<Answer> {
    let bash = which_bash()?;
    let key = folder.map(|dir| (dir, key(&bash, text)));
    if let Some(answer) = key.as_ref().and_then(|(dir, key)| recall(dir, key)) {
        return Some(answer);
    }
    let out = std::process::Command::new(&bash)
        .args(["--noprofile", "--norc", "-n", "-c", text])
        .env_remove("BASH_ENV")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .ok()?;
    let answer = Answer {
        parses: out.status.success(),
        said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    };
    if let Some((dir, key)) = key {
        keep(dir, &key, &answer);
    }
    Some(answer)
}

/// The first `bash` on PATH.
fn which_bash() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bash"))
        .find(|candidate| candidate.is_file())
}

/// The question's name: the text and which bash (its path, size and modification time: another
/// bash may answer otherwise).
fn key(bash: &Path, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"bash -n v1\0");
    hasher.update(bash.to_string_lossy().as_bytes());
    if let Ok(meta) = std::fs::metadata(bash) {
        hasher.update(meta.len().to_le_bytes());
        if let Ok(modified) = meta.modified()
            && let Ok(since) = modified.duration_since(std::time::UNIX_EPOCH)
        {
            hasher.update(since.as_nanos().to_le_bytes());
        }
    }
    hasher.update(b"\0");
    hasher.update(text.as_bytes());
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A kept answer: `parses` or `fails` on the first line, then what bash said. Anything else (a
/// file cut short, say) is not an answer.
fn recall(dir: &Path, key: &str) -> Option<Answer> {
    let text = std::fs::read_to_string(dir.join(key)).ok()?;
    let (verdict, said) = text.split_once('\n')?;
    let parses = match verdict {
        "parses" => true,
        "fails" => false,
        _ => return None,
    };
    Some(Answer {
        parses,
        said: said.to_string(),
    })
}

/// Keeps an answer (written aside, then renamed: runs starting together never read half a file).
/// A folder that cannot be written only means asking bash again next time.
fn keep(dir: &Path, key: &str, answer: &Answer) {
    let verdict = if answer.parses { "parses" } else { "fails" };
    let aside = dir.join(format!(".{key}.{}", std::process::id()));
    let written = std::fs::create_dir_all(dir).is_ok()
        && std::fs::File::create(&aside)
            .and_then(|mut f| write!(f, "{verdict}\n{}", answer.said))
            .is_ok();
    if !written || std::fs::rename(&aside, dir.join(key)).is_err() {
        let _ = std::fs::remove_file(&aside);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_and_read_back_and_a_damaged_one_is_asked_again() {
        let Some(bash) = which_bash() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let folder = Some(dir.path());
        let good = "echo hi | wc -c";
        let bad = "if true; then echo";
        // Asked, then kept under the question's name.
        for (text, parses) in [(good, true), (bad, false)] {
            let answer = check_in(folder, text).unwrap();
            assert_eq!(answer.parses, parses, "{text}: {answer:?}");
            assert_eq!(recall(dir.path(), &key(&bash, text)), Some(answer));
        }
        assert!(check_in(folder, bad).unwrap().said.contains("syntax error"));
        assert_ne!(key(&bash, good), key(&bash, bad));
        // The kept answer is what is read back, not bash's: shown by keeping a false one.
        let lie = Answer {
            parses: false,
            said: "kept".into(),
        };
        keep(dir.path(), &key(&bash, good), &lie);
        assert_eq!(check_in(folder, good), Some(lie));
        // A damaged file is not an answer: bash is asked again, and the file mended.
        std::fs::write(dir.path().join(key(&bash, good)), "maybe").unwrap();
        assert!(check_in(folder, good).unwrap().parses);
        assert!(recall(dir.path(), &key(&bash, good)).unwrap().parses);
        // Nothing left aside; without a folder nothing is kept.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(check_in(None, good).unwrap().parses);
    }
}
