//! Shell commands as a participant sees them: a line too long for a terminal is broken at word
//! boundaries with ` \\` continuations, which the shell reads as the same command.

/// `word` as one word for a POSIX shell: as it is when nothing in it is special to the shell,
/// else in single quotes (a `'` inside becomes `'\''`). The runner's only shell quoting: the
/// `shell_quote` template filter, the commands it prints, the `curl` a step shows.
pub fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,%+".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The width every lab's commands must fit without wrapping: the narrowest terminal we support.
pub const NARROWEST_TERMINAL: usize = 80;

/// A shell line broken into pieces of at most `width` columns where it can be: at spaces outside
/// quotes, each piece but the last ending in ` \` (the shell joins them back into one command),
/// the continuations indented. A word longer than the width stays whole: wrapping inside it would
/// change the command.
pub fn fit(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width || line.trim_start().starts_with('#') {
        return vec![line.to_string()];
    }
    // Byte offsets of spaces where the shell would split words (outside quotes, not escaped).
    let mut breaks = Vec::new();
    let (mut single, mut double, mut escaped) = (false, false, false);
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ' ' if !single && !double && i > 0 && !line[..i].trim().is_empty() => breaks.push(i),
            _ => {}
        }
    }
    let indent = "    ";
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut first = true;
    loop {
        let prefix = if first { "" } else { indent };
        let rest = &line[start..];
        if prefix.len() + rest.chars().count() <= width {
            pieces.push(format!("{prefix}{rest}"));
            break;
        }
        // The last break that leaves room for " \".
        let limit = start + width.saturating_sub(prefix.len() + 2);
        let cut = breaks
            .iter()
            .copied()
            .rfind(|&b| b > start && b <= limit)
            .or_else(|| breaks.iter().copied().find(|&b| b > start));
        let Some(cut) = cut else {
            pieces.push(format!("{prefix}{rest}"));
            break;
        };
        pieces.push(format!("{prefix}{} \\", line[start..cut].trim_end()));
        start = cut + 1;
        while line[start..].starts_with(' ') {
            start += 1;
        }
        first = false;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_break_at_spaces_outside_quotes_with_continuations() {
        let line = r#"curl -sS -w ' <- %{http_code}\n' -H "x-lab-token: $LAB_TOKEN" "$BASE/api/lab/status" --retry 10"#;
        let pieces = fit(line, 40);
        assert!(pieces.len() > 1, "{pieces:?}");
        for p in &pieces[..pieces.len() - 1] {
            assert!(p.ends_with(" \\"), "{p}");
            assert!(p.chars().count() <= 40, "{p}");
        }
        // Joined as the shell joins them, the command is the same words.
        let joined: Vec<String> = pieces
            .iter()
            .map(|p| p.trim_end_matches('\\').trim().to_string())
            .collect();
        assert_eq!(joined.join(" "), line);
        assert!(
            pieces.iter().any(|p| p.contains("' <- %{http_code}\\n'")),
            "quotes kept whole: {pieces:?}"
        );
        assert_eq!(fit("echo short", 40), vec!["echo short"]);
    }
}
