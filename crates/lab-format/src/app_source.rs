//! Where things are in the lab app's source: the line of a function, or of a statement inside it.
//! The file and line a participant is told to put a breakpoint on are computed here, never typed by
//! hand (the seed's guide shipped a wrong path).

use std::path::Path;

use anyhow::{Result, bail};

/// A function's place in its file (1-based lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLocation {
    /// The line of `function name(`.
    pub declaration: usize,
    /// The first line of its body with code on it.
    pub first_statement: usize,
    /// The line of its closing brace.
    pub end: usize,
}

/// Finds `function <name>(` (also `async function`, `export function`) in `file` under `app_dir`.
pub fn locate_function(app_dir: &Path, file: &str, name: &str) -> Result<FunctionLocation> {
    let path = app_dir.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("the lab app has no file {file} ({}: {e})", path.display()))?;
    locate_in(&text, name).ok_or_else(|| {
        anyhow::anyhow!("there is no function `{name}` in {file} (looked for `function {name}(`)")
    })
}

/// The line of the first line inside function `name` that contains `needle`.
pub fn locate_line(app_dir: &Path, file: &str, name: &str, needle: &str) -> Result<usize> {
    let location = locate_function(app_dir, file, name)?;
    let text = std::fs::read_to_string(app_dir.join(file))?;
    for (i, line) in text.lines().enumerate().skip(location.declaration - 1) {
        if i + 1 > location.end {
            break;
        }
        if line.contains(needle) {
            return Ok(i + 1);
        }
    }
    bail!(
        "function `{name}` in {file} (lines {}–{}) has no line containing {needle:?}",
        location.declaration,
        location.end
    )
}

fn locate_in(text: &str, name: &str) -> Option<FunctionLocation> {
    let lines: Vec<&str> = text.lines().collect();
    let pattern = format!("function {name}(");
    let declaration = lines.iter().position(|l| {
        let code = l.trim_start();
        !code.starts_with("//") && !code.starts_with('*') && l.contains(&pattern)
    })?;
    // Count braces from the declaration, skipping strings and comments, to find the body's end.
    let mut depth = 0i32;
    let mut opened = false;
    let mut first_statement = None;
    for (i, line) in lines.iter().enumerate().skip(declaration) {
        let code = strip_comments_and_strings(line);
        if opened && first_statement.is_none() && !code.trim().is_empty() && code.trim() != "}" {
            first_statement = Some(i + 1);
        }
        for c in code.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        if opened && depth == 0 {
            return Some(FunctionLocation {
                declaration: declaration + 1,
                first_statement: first_statement.unwrap_or(i + 1),
                end: i + 1,
            });
        }
    }
    None
}

/// The code of one line with `// comments` and the contents of string literals removed.
fn strip_comments_and_strings(line: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '/' if chars.peek() == Some(&'/') => break,
                _ => out.push(c),
            },
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const JS: &str = "// function blockEventLoop(ms) is described here\n\
export function blockEventLoop(ms) {\n\
\n\
  const startedAt = performance.now(); // '{'\n\
  const deadline = startedAt + ms;\n\
  while (performance.now() < deadline) {\n\
    x += \"}\";\n\
  }\n\
  return { ms };\n\
}\n\
export function other() {}\n";

    #[test]
    fn finds_a_function_its_first_statement_and_its_end() {
        let at = locate_in(JS, "blockEventLoop").unwrap();
        assert_eq!(
            at,
            FunctionLocation {
                declaration: 2,
                first_statement: 4,
                end: 10
            }
        );
        assert_eq!(locate_in(JS, "other").unwrap().end, 11);
        assert!(locate_in(JS, "missing").is_none());
    }

    /// An app folder with one module, as a lab's `app.source` would be.
    pub(crate) fn fixture_app() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/lab")).unwrap();
        std::fs::write(
            dir.path().join("src/lab/event-loop-jam.js"),
            "// keeps the loop busy\n\
             export function blockEventLoop(ms) {\n\
             \x20 const startedAt = Date.now();\n\
             \x20 const deadline = startedAt + ms;\n\
             \x20 while (Date.now() < deadline) {}\n\
             \x20 return deadline;\n\
             }\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn finds_a_function_and_a_line_in_the_app_source() {
        let dir = fixture_app();
        let app = dir.path();
        let at = locate_function(app, "src/lab/event-loop-jam.js", "blockEventLoop").unwrap();
        let line = locate_line(
            app,
            "src/lab/event-loop-jam.js",
            "blockEventLoop",
            "const deadline",
        )
        .unwrap();
        assert_eq!((at.declaration, line, at.end), (2, 4, 7), "{at:?} {line}");
        let text = std::fs::read_to_string(app.join("src/lab/event-loop-jam.js")).unwrap();
        assert!(
            text.lines()
                .nth(line - 1)
                .unwrap()
                .contains("const deadline")
        );
    }
}
