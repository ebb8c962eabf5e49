//! What a person sees in the terminal: markdown rendered with termimad (plain text when the output is
//! not a terminal or NO_COLOR is set), results, diagnoses, and narration of what the runner does.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use termimad::MadSkin;

use crate::outcome::Outcome;

/// How to print: styled for a terminal, plain otherwise.
pub struct Terminal {
    styled: bool,
    skin: MadSkin,
}

impl Terminal {
    /// Styled when stdout is a terminal and `NO_COLOR` is not set.
    pub fn detect() -> Terminal {
        let styled = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Terminal {
            styled,
            skin: MadSkin::default(),
        }
    }

    pub fn styled(&self) -> bool {
        self.styled
    }

    /// Markdown: rendered (headings, tables) or as written. Code blocks are printed by hand between
    /// their fences, never wrapped by the renderer: a command wrapped mid-word runs as two broken
    /// commands when copied. On a terminal, a shell line too long for it is broken at a word
    /// boundary with a ` \` continuation, which the shell reads as the same command.
    pub fn markdown(&self, text: &str) {
        let width = self.width();
        for segment in split_code_blocks(text) {
            match segment {
                Segment::Prose(prose) => {
                    if prose.trim().is_empty() {
                        continue;
                    }
                    if self.styled {
                        self.skin.print_text(&reflow(&prose));
                    } else {
                        // As written, blank lines included.
                        print!("{prose}");
                    }
                }
                Segment::Code { info, lines } => {
                    let shell = matches!(
                        info.split_whitespace().next(),
                        Some("sh" | "bash" | "shell")
                    );
                    let fence = |text: &str| {
                        if self.styled {
                            println!("\x1b[2m{text}\x1b[0m");
                        } else {
                            println!("{text}");
                        }
                    };
                    fence(&format!("```{info}"));
                    for line in lines {
                        let pieces = match width {
                            Some(width) if shell => crate::util::shell_lines::fit(&line, width),
                            _ => vec![line],
                        };
                        for piece in pieces {
                            if self.styled {
                                println!("\x1b[36m{piece}\x1b[0m");
                            } else {
                                println!("{piece}");
                            }
                        }
                    }
                    fence("```");
                }
            }
        }
    }

    /// The terminal's width, when stdout is one.
    pub fn width(&self) -> Option<usize> {
        std::io::stdout()
            .is_terminal()
            .then(|| usize::from(termimad::terminal_size().0).max(40))
    }

    pub fn heading(&self, text: &str) {
        self.markdown(&format!("## {text}"));
    }

    pub fn good(&self, text: &str) {
        if self.styled {
            println!("\x1b[32m✓ {text}\x1b[0m");
        } else {
            println!("PASS {text}");
        }
    }

    pub fn bad(&self, text: &str) {
        if self.styled {
            println!("\x1b[31m✗ {text}\x1b[0m");
        } else {
            println!("FAIL {text}");
        }
    }

    /// Choices joined by ` · `, on as many lines as the terminal needs, never cut inside one.
    pub fn choices(&self, items: &[&str]) {
        let width = self.width().unwrap_or(usize::MAX);
        let mut line = String::new();
        for item in items {
            if !line.is_empty() && line.chars().count() + 3 + item.chars().count() > width {
                self.note(&line);
                line.clear();
            }
            if !line.is_empty() {
                line.push_str(" · ");
            }
            line.push_str(item);
        }
        if !line.is_empty() {
            self.note(&line);
        }
    }

    pub fn note(&self, text: &str) {
        if self.styled {
            println!("\x1b[2m{text}\x1b[0m");
        } else {
            println!("{text}");
        }
    }

    /// A spinner for a wait of unknown length (hidden when not a terminal).
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if !self.styled {
            println!("{message}");
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message(message.to_string());
        bar
    }
}

/// The part's "what you can now explain" list as markdown, if it has one.
pub fn takeaways(part: &crate::lab::Part) -> Option<String> {
    if part.file.takeaways.is_empty() {
        return None;
    }
    let items: Vec<String> = part
        .file
        .takeaways
        .iter()
        .map(|t| format!("- {t}"))
        .collect();
    Some(format!(
        "### What you can now explain\n\n{}",
        items.join("\n")
    ))
}

/// A failed phase as the screen shows it: what failed (printed as bad), then expected / saw /
/// hint, indented; or the error alone.
pub fn diagnosis_lines(outcome: &Outcome) -> Vec<String> {
    match outcome.failure() {
        Some(f) => {
            let mut lines = vec![
                f.what.clone(),
                format!("    expected: {}", f.expected),
                format!("    saw:      {}", f.saw.replace('\n', "\n              ")),
            ];
            if let Some(hint) = &f.hint {
                lines.push(format!("    hint:     {hint}"));
            }
            lines
        }
        None => vec![outcome.problem_text().unwrap_or_default()],
    }
}

/// Markdown prose with its soft line breaks joined, so the renderer wraps paragraphs to the
/// terminal instead of keeping the source's line ends (which leave ragged half-lines). List
/// items, headings, table rows and indented lines keep their lines; a quote's paragraph is joined
/// the same way, inside the quote.
fn reflow(prose: &str) -> String {
    let starts_block = |line: &str| {
        let t = line.trim_start();
        // A list marker or heading is followed by a space: `*Comparison* against` is emphasis
        // in a paragraph, not a list item.
        let marker = |m: char| t.strip_prefix(m).is_some_and(|rest| rest.starts_with(' '));
        ['-', '*', '+'].into_iter().any(marker)
            || t.starts_with(['#', '>', '|'])
            || line.starts_with("    ")
            || t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let mut out = String::new();
    let mut previous = "";
    for line in prose.lines() {
        if let (Some(before), Some(text)) = (quoted(previous), quoted(line))
            && !starts_block(text)
            && !before.starts_with(['#', '|'])
            && !previous.ends_with("  ")
        {
            out.pop();
            out.push(' ');
            out.push_str(text);
            out.push('\n');
            previous = line;
            continue;
        }
        let joins = !previous.trim().is_empty()
            && !line.trim().is_empty()
            && !starts_block(line)
            && !previous.trim_start().starts_with(['#', '|'])
            && !previous.ends_with("  ");
        if joins {
            out.pop();
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
        out.push('\n');
        previous = line;
    }
    out
}

/// The text of a quote's line, when it has any: `> text` → `text`.
fn quoted(line: &str) -> Option<&str> {
    line.trim_start()
        .strip_prefix('>')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

enum Segment {
    Prose(String),
    /// A fenced block: its info string (`sh`, `sh no-run`, `json`) and lines.
    Code {
        info: String,
        lines: Vec<String>,
    },
}

/// Markdown cut into prose and fenced code blocks (``` or ~~~), in order, by the lab format's own
/// reading of fences.
fn split_code_blocks(text: &str) -> Vec<Segment> {
    let lines: Vec<&str> = text.lines().collect();
    let prose = |range: &[&str]| -> String { range.iter().map(|l| format!("{l}\n")).collect() };
    let mut out = Vec::new();
    let mut at = 0;
    for block in crate::lab::fenced::fenced_blocks(text) {
        out.push(Segment::Prose(prose(&lines[at..block.line])));
        out.push(Segment::Code {
            info: block.info,
            lines: if block.text.is_empty() {
                Vec::new()
            } else {
                block.text.split('\n').map(str::to_string).collect()
            },
        });
        at = (block.end + 1).min(lines.len());
    }
    out.push(Segment::Prose(prose(&lines[at..])));
    out
}

/// A bar counting down an action's expected duration; dropping it clears it.
pub struct Countdown {
    bar: ProgressBar,
    ticker: Option<std::thread::JoinHandle<()>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Countdown {
    pub fn start(label: &str, expected: Duration) -> Countdown {
        let total = expected.as_millis().max(1) as u64;
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("  {msg} [{bar:30}] {prefix}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, s) = (bar.clone(), stop.clone());
        let started = std::time::Instant::now();
        let ticker = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let elapsed = started.elapsed().as_millis() as u64;
                b.set_position(elapsed.min(total));
                let left = total.saturating_sub(elapsed) as f64 / 1000.0;
                b.set_prefix(if left > 0.0 {
                    format!("{left:.0} s left")
                } else {
                    "finishing…".into()
                });
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Countdown {
            bar,
            ticker: Some(ticker),
            stop,
        }
    }
}

impl Drop for Countdown {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_is_reflowed_but_lists_and_tables_keep_their_lines() {
        let text = "A sentence that\ngoes on.\n\n- item one\n- item two\n| a | b |\n|---|---|\n";
        assert_eq!(
            reflow(text),
            "A sentence that goes on.\n\n- item one\n- item two\n| a | b |\n|---|---|\n"
        );
        // Emphasis at the start of a source line is part of the paragraph.
        assert_eq!(
            reflow("switch the view to\n*Comparison* against the first\n* a list item\n"),
            "switch the view to *Comparison* against the first\n* a list item\n"
        );
        // A quote's paragraph is one quoted line; a blank quote line ends it, a list inside
        // keeps its lines.
        assert_eq!(
            reflow("> **Warning.** The inspector\n> is open.\n>\n> Next\n> - a\n> - b\n\nAfter\n"),
            "> **Warning.** The inspector is open.\n>\n> Next\n> - a\n> - b\n\nAfter\n"
        );
    }

    #[test]
    fn code_blocks_are_cut_out_of_prose() {
        let segments = split_code_blocks("Hello\n\n```sh\necho a\n```\nBye\n");
        assert!(
            matches!(&segments[1], Segment::Code { info, lines } if info == "sh" && lines == &vec!["echo a".to_string()])
        );
    }
}
