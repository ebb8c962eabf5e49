//! Fenced code blocks of a step's Markdown: which are commands a participant runs (```sh), which
//! are for reading only (```sh no-run, ```json, ...).

/// The runnable shell blocks of rendered Markdown: fenced blocks whose info string is `sh`, `bash`
/// or `shell` and does not say `no-run`.
pub fn runnable_blocks(markdown: &str) -> Vec<String> {
    fenced_blocks(markdown)
        .into_iter()
        .filter(|b| b.is_shell() && !b.no_run())
        .map(|b| b.text)
        .collect()
}

/// A fenced code block of Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Fenced {
    pub info: String,
    pub text: String,
    /// 0-based line of the opening fence.
    pub line: usize,
    /// 0-based line of the closing fence (the number of lines when the block is never closed:
    /// it then runs to the end, as in CommonMark).
    pub end: usize,
}

impl Fenced {
    pub fn language(&self) -> &str {
        self.info.split_whitespace().next().unwrap_or("")
    }
    pub fn is_shell(&self) -> bool {
        matches!(self.language(), "sh" | "bash" | "shell")
    }
    /// Marked for reading only (`sh no-run`): commands for another system (AWS), sample output.
    pub fn no_run(&self) -> bool {
        self.info.split_whitespace().skip(1).any(|w| w == "no-run")
    }
}

/// Every fenced code block (``` or ~~~) of `markdown`, in order.
pub fn fenced_blocks(markdown: &str) -> Vec<Fenced> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String, usize)> = None; // fence, indent, info, line
    let mut body: Vec<&str> = Vec::new();
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &open {
            None => {
                let fence: String = trimmed
                    .chars()
                    .take_while(|c| *c == '`' || *c == '~')
                    .collect();
                if indent < 4
                    && fence.len() >= 3
                    && fence
                        .chars()
                        .all(|c| c == fence.chars().next().unwrap_or('`'))
                {
                    let info = trimmed[fence.len()..].trim().to_string();
                    open = Some((fence, indent, info, n));
                    body.clear();
                }
            }
            Some((fence, fence_indent, info, start)) => {
                if trimmed.starts_with(fence.as_str())
                    && trimmed
                        .trim_end()
                        .chars()
                        .all(|c| c == fence.chars().next().unwrap_or('`'))
                {
                    blocks.push(Fenced {
                        info: info.clone(),
                        text: body.join("\n"),
                        line: *start,
                        end: n,
                    });
                    open = None;
                } else {
                    let strip = (*fence_indent).min(line.len() - line.trim_start().len());
                    body.push(&line[strip..]);
                }
            }
        }
    }
    if let Some((_, _, info, start)) = open {
        blocks.push(Fenced {
            info,
            text: body.join("\n"),
            line: start,
            end: markdown.lines().count(),
        });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_shell_blocks_and_honours_no_run() {
        let md = "Intro\n\n```sh\nexport BASE=http://x\n```\n\n```sh no-run\naws ecs list-tasks\n```\n\n```\nplain\n```\n\n  ~~~bash\n  echo hi\n  ~~~\n";
        let blocks = fenced_blocks(md);
        assert_eq!(blocks.len(), 4);
        assert!(blocks[1].no_run());
        assert_eq!(blocks[3].text, "echo hi");
        assert_eq!(
            runnable_blocks(md),
            vec!["export BASE=http://x".to_string(), "echo hi".to_string()]
        );
    }
}
