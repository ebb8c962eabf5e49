//! Small Markdown helpers for the exported guide: reading a pipe table out of a document, writing one,
//! and GitHub's heading anchors.

/// A pipe table: header cells and rows of cells, as written (inline markup kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The index of the column whose header, without backticks, is `name` (case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.trim_matches('`').eq_ignore_ascii_case(name))
    }

    /// The table as Markdown.
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// The first pipe table in the section under the heading `heading` (any level, text compared
/// case-insensitively), before the next heading of the same or a higher level.
pub fn table_under_heading(document: &str, heading: &str) -> Option<Table> {
    let mut lines = document.lines();
    let level = loop {
        let line = lines.next()?;
        if let Some((level, text)) = parse_heading(line)
            && text.eq_ignore_ascii_case(heading)
        {
            break level;
        }
    };
    let mut table: Vec<&str> = Vec::new();
    for line in lines {
        if let Some((l, _)) = parse_heading(line)
            && l <= level
        {
            break;
        }
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            table.push(trimmed);
        } else if !table.is_empty() {
            break;
        }
    }
    if table.len() < 2 || !is_delimiter_row(table[1]) {
        return None;
    }
    Some(Table {
        header: cells(table[0]),
        rows: table[2..].iter().map(|l| cells(l)).collect(),
    })
}

fn parse_heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    rest.starts_with(' ').then(|| (level, rest.trim()))
}

fn is_delimiter_row(line: &str) -> bool {
    cells(line).iter().all(|c| {
        let c = c.trim_matches(':');
        !c.is_empty() && c.chars().all(|ch| ch == '-')
    })
}

/// The cells of a table row; `\|` stays inside a cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push_str("\\|");
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_string()),
            other => cell.push(other),
        }
    }
    out.push(cell.trim().to_string());
    out
}

/// The anchor GitHub gives a heading: lower case, spaces to `-`, punctuation other than `-` and `_`
/// dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// `text` with characters that would end a table cell escaped, on one line.
pub fn cell_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# app\n\n## Environment\n\ntext\n\n| variable | default |\n| --- | --- |\n| `PORT` | `3001` |\n| `A\\|B` | x |\n\nafter\n\n## Routes\n\n| method | path |\n|---|:---:|\n| GET | `/api/health` |\n";

    #[test]
    fn reads_the_table_of_a_section() {
        let t = table_under_heading(DOC, "environment").unwrap();
        assert_eq!(t.header, vec!["variable", "default"]);
        assert_eq!(t.rows, vec![vec!["`PORT`", "`3001`"], vec!["`A\\|B`", "x"]]);
        let t = table_under_heading(DOC, "Routes").unwrap();
        assert_eq!(t.column("path"), Some(1));
        assert_eq!(t.rows[0][1], "`/api/health`");
        assert_eq!(table_under_heading(DOC, "Metrics"), None);
    }

    #[test]
    fn a_section_without_a_table_has_none() {
        assert_eq!(
            table_under_heading("## A\ntext\n## B\n| a |\n| - |\n", "A"),
            None
        );
    }

    #[test]
    fn anchors_follow_github() {
        assert_eq!(
            anchor("Part 1 — Local debugging with the inspector (Chrome DevTools)"),
            "part-1--local-debugging-with-the-inspector-chrome-devtools"
        );
        assert_eq!(
            anchor("2.1 Enable the lab endpoints"),
            "21-enable-the-lab-endpoints"
        );
    }

    #[test]
    fn tables_round_trip() {
        let t = table_under_heading(DOC, "environment").unwrap();
        assert_eq!(
            t.to_markdown(),
            "| variable | default |\n| --- | --- |\n| `PORT` | `3001` |\n| `A\\|B` | x |\n"
        );
    }
}
