//! `file:` — a file in the participant's workspace: there (or not), holding some text.

use std::path::{Path, PathBuf};

use super::Context;
use super::matcher::{judge_text, show_text};
use crate::lab::{FileCheck, TextExpect};
use crate::outcome::{Done, Failure, Problem};

/// How much of a file is read (a check looks for text in notes and configs, not in dumps).
const READ_LIMIT: u64 = 4 * 1024 * 1024;

pub async fn perform(ctx: &Context, check: &FileCheck) -> Done {
    let path = resolve(ctx.artifacts_dir(), &check.path);
    let what = format!("the file {}", check.path);
    judge_file(&what, &path, check).map_err(|f| Problem::Check(f.hint(ctx.step_hint())))?;
    ctx.narrate(&format!(
        "{what} {}",
        if check.exists {
            "is there"
        } else {
            "is not there"
        }
    ));
    Ok(())
}

/// `path` as the participant means it: relative to their workspace unless absolute.
pub fn resolve(workspace: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        workspace.join(p)
    }
}

fn judge_file(what: &str, path: &Path, check: &FileCheck) -> Result<(), Failure> {
    let meta = std::fs::metadata(path);
    let text_wanted = TextExpect {
        contains: check.contains.clone(),
        not_contains: check.not_contains.clone(),
        regex: check.regex.clone(),
    };
    let judges_text =
        check.contains.is_some() || check.not_contains.is_some() || check.regex.is_some();
    match (check.exists, meta) {
        (false, Err(_)) => Ok(()),
        (false, Ok(_)) => Err(Failure::new(
            what,
            "not to exist",
            format!("it exists ({})", path.display()),
        )),
        (true, Err(e)) => Err(Failure::new(
            what,
            "to exist",
            format!("{} ({})", missing(&e), path.display()),
        )),
        (true, Ok(meta)) if !judges_text => {
            let _ = meta;
            Ok(())
        }
        (true, Ok(meta)) if meta.is_dir() => Err(Failure::new(
            what,
            "a file with text in it",
            format!("a folder ({})", path.display()),
        )),
        (true, Ok(_)) => {
            use std::io::Read;
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(READ_LIMIT).read_to_end(&mut bytes))
                .map_err(|e| {
                    Failure::new(
                        what,
                        "a file it can read",
                        format!("{e} ({})", path.display()),
                    )
                })?;
            let text = String::from_utf8_lossy(&bytes);
            judge_text(&text_wanted, &text).map_err(|miss| {
                Failure::new(
                    what,
                    match miss.bad_regex {
                        Some(why) => {
                            format!(
                                "{} (which is not a regular expression: {why})",
                                miss.expected
                            )
                        }
                        None => miss.expected,
                    },
                    show_text(&text, 15),
                )
            })
        }
    }
}

fn missing(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "there is no such file".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> FileCheck {
        crate::lab::yaml::parse(yaml, std::path::Path::new("check.yaml")).unwrap()
    }

    #[test]
    fn a_file_is_judged_by_being_there_and_its_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.md"), "the slow query is #3\n").unwrap();
        let at = |p: &str| resolve(dir.path(), p);
        assert!(judge_file("f", &at("notes.md"), &check("path: notes.md")).is_ok());
        assert!(
            judge_file(
                "f",
                &at("notes.md"),
                &check("{path: notes.md, regex: '#\\d'}")
            )
            .is_ok()
        );
        let f = judge_file(
            "f",
            &at("notes.md"),
            &check("{path: notes.md, contains: '#4'}"),
        )
        .unwrap_err();
        assert_eq!(f.expected, "containing \"#4\"");
        assert!(f.saw.contains("slow query"), "{f:?}");
        let f = judge_file("f", &at("gone.md"), &check("path: gone.md")).unwrap_err();
        assert!(f.saw.starts_with("there is no such file"), "{f:?}");
        assert!(
            judge_file(
                "f",
                &at("gone.md"),
                &check("{path: gone.md, exists: false}")
            )
            .is_ok()
        );
        let f = judge_file(
            "f",
            &at("notes.md"),
            &check("{path: notes.md, exists: false}"),
        )
        .unwrap_err();
        assert_eq!(f.expected, "not to exist");
        let f = judge_file("f", dir.path(), &check("{path: x, contains: a}")).unwrap_err();
        assert!(f.saw.starts_with("a folder"), "{f:?}");
    }
}
