//! The mutants of a step's solve: the solve with one command (of a `shell:` block) or one action
//! (nested ones included) left out, and the step's `unchecked:` entries that spare some of them.
//! Pure lab-format logic: `lint` checks the entries against these, `verify --mutations`
//! (`session/mutations.rs`) runs them.

use std::ops::Range;

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Action, InspectorAction, Step, TunnelAction, Unchecked};

/// One way to leave something out of a solve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutant {
    /// Where, as lint names actions: `solve[0]`, `solve[0] command 3`, `solve[1].pause_at.trigger[0]`.
    pub id: String,
    /// What is left out, as the step shows it: a command's first line, or the action's kind.
    pub left_out: String,
    /// The `unchecked:` reason that spares it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
    #[serde(skip)]
    place: Place,
}

#[derive(Debug, Clone, PartialEq)]
enum Place {
    /// An action, by its indices from the solve down through nested lists.
    Action(Vec<usize>),
    /// Some lines of a `shell:` block (one command).
    Command(Vec<usize>, Range<usize>),
}

/// The lists an action holds (a `pause_at`'s trigger, a `profile`'s `during`, ...), with their names.
fn children(action: &Action) -> Option<(&'static str, &Vec<Action>)> {
    match action {
        Action::Parallel(inner) => Some(("parallel", inner)),
        Action::Sequence(inner) => Some(("sequence", inner)),
        Action::Eventually(e) => Some(("eventually.do", &e.actions)),
        Action::Inspector(InspectorAction::PauseAt(p)) => Some(("pause_at.trigger", &p.trigger)),
        Action::Inspector(InspectorAction::Profile(p)) => Some(("profile.during", &p.during)),
        _ => None,
    }
}

fn children_mut(action: &mut Action) -> Option<&mut Vec<Action>> {
    match action {
        Action::Parallel(inner) | Action::Sequence(inner) => Some(inner),
        Action::Eventually(e) => Some(&mut e.actions),
        Action::Inspector(InspectorAction::PauseAt(p)) => Some(&mut p.trigger),
        Action::Inspector(InspectorAction::Profile(p)) => Some(&mut p.during),
        _ => None,
    }
}

/// A short name for what an action does (`inspector attach`, `wait 4s`).
fn kind(action: &Action) -> String {
    let kind = action.kind_name();
    match action {
        Action::Inspector(i) => format!("{kind} {}", i.kind_name()),
        Action::Container(c) => format!("{kind} {}", c.kind_name()),
        Action::Tunnel(t @ (TunnelAction::Close | TunnelAction::Closed)) => {
            format!("{kind} {}", t.kind_name())
        }
        Action::Wait(d) => format!("{kind} {d}"),
        Action::Shell(s)
            if s.terminal.is_none() && s.ready.is_none() && s.timeout.is_none() && !s.interrupt =>
        {
            format!("{kind} {}", s.run)
        }
        _ => kind.to_string(),
    }
}

/// The complete commands of a shell block, as line ranges: a command continued with `\`, a
/// `for ... done`, a function definition or a command with a here-document (up to its delimiter)
/// spans several lines. Blank lines and comments are none.
pub fn shell_commands(text: &str) -> Vec<Range<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for i in 0..lines.len() {
        let trimmed = lines[i].trim();
        if start.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        let from = *start.get_or_insert(i);
        if lines[i].trim_end().ends_with('\\') {
            continue;
        }
        if parses(&lines[from..=i].join("\n")) {
            out.push(from..i + 1);
            start = None;
        }
    }
    if let Some(from) = start {
        out.push(from..lines.len());
    }
    out
}

/// Whether bash reads `text` as complete commands (true when bash cannot be asked). A
/// here-document that the text does not close yet is incomplete too: bash accepts it, warning that
/// it is "delimited by end-of-file".
fn parses(text: &str) -> bool {
    super::bash::check(text)
        .is_none_or(|answer| answer.parses && !answer.said.contains("here-document"))
}

/// Every mutant of `step`'s solve, marked with the `unchecked:` reason that spares it.
pub fn mutants(step: &Step) -> Vec<Mutant> {
    let mut out = Vec::new();
    collect(&step.solve, "solve", &mut Vec::new(), &mut out);
    for m in &mut out {
        m.unchecked = sparing(step, m).map(str::to_string);
    }
    out
}

fn collect(actions: &[Action], prefix: &str, at: &mut Vec<usize>, out: &mut Vec<Mutant>) {
    for (i, action) in actions.iter().enumerate() {
        at.push(i);
        let id = format!("{prefix}[{i}]");
        match action {
            Action::Shell(shell) if shell.terminal.is_none() && !shell.run.trim().is_empty() => {
                let commands = shell_commands(&shell.run);
                let lines: Vec<&str> = shell.run.lines().collect();
                if commands.len() <= 1 {
                    out.push(Mutant {
                        left_out: first_line(&shell.run),
                        id,
                        unchecked: None,
                        place: Place::Action(at.clone()),
                    });
                } else {
                    for (n, range) in commands.into_iter().enumerate() {
                        out.push(Mutant {
                            id: format!("{id} command {}", n + 1),
                            left_out: first_line(lines[range.start]),
                            unchecked: None,
                            place: Place::Command(at.clone(), range),
                        });
                    }
                }
            }
            Action::Shell(shell) => out.push(Mutant {
                id: id.clone(),
                left_out: if shell.interrupt {
                    format!(
                        "Ctrl-C in {}",
                        shell.terminal.as_deref().unwrap_or("the terminal")
                    )
                } else {
                    first_line(&shell.run)
                },
                unchecked: None,
                place: Place::Action(at.clone()),
            }),
            other => {
                out.push(Mutant {
                    id: id.clone(),
                    left_out: kind(other),
                    unchecked: None,
                    place: Place::Action(at.clone()),
                });
                if let Some((name, inner)) = children(other) {
                    collect(inner, &format!("{id}.{name}"), at, out);
                }
            }
        }
        at.pop();
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim().trim_end_matches('\\').trim_end();
    if line.chars().count() > 72 {
        format!("{}…", line.chars().take(71).collect::<String>())
    } else {
        line.to_string()
    }
}

/// The reason in `step.unchecked` that spares `m`.
fn sparing<'a>(step: &'a Step, m: &Mutant) -> Option<&'a str> {
    step.unchecked
        .iter()
        .find(|u| matches_unchecked(step, u, m))
        .map(|u| u.reason.as_str())
}

/// Whether an `unchecked:` entry names mutant `m` of `step`.
pub fn matches_unchecked(step: &Step, u: &Unchecked, m: &Mutant) -> bool {
    if let Some(path) = &u.action {
        let action_id = m.id.split(' ').next().unwrap_or_default();
        if m.id == *path || action_id == path {
            return true;
        }
    }
    if let Some(prefix) = &u.command {
        let prefix = prefix.trim();
        let first = match &m.place {
            Place::Command(at, range) => shell_text(&step.solve, at)
                .and_then(|t| t.lines().nth(range.start).map(str::to_string)),
            Place::Action(at) => shell_text(&step.solve, at)
                .and_then(|t| t.lines().find(|l| !l.trim().is_empty()).map(str::to_string)),
        };
        if first.is_some_and(|l| !prefix.is_empty() && l.trim().starts_with(prefix)) {
            return true;
        }
    }
    false
}

fn action_at<'a>(actions: &'a [Action], at: &[usize]) -> Option<&'a Action> {
    let (first, rest) = at.split_first()?;
    let action = actions.get(*first)?;
    if rest.is_empty() {
        Some(action)
    } else {
        action_at(children(action)?.1, rest)
    }
}

fn shell_text(actions: &[Action], at: &[usize]) -> Option<String> {
    match action_at(actions, at)? {
        Action::Shell(s) => Some(s.run.clone()),
        _ => None,
    }
}

/// `solve` with `m` left out.
pub fn without(solve: &[Action], m: &Mutant) -> Result<Vec<Action>> {
    let mut solve = solve.to_vec();
    let (at, lines) = match &m.place {
        Place::Action(at) => (at, None),
        Place::Command(at, range) => (at, Some(range.clone())),
    };
    let Some((last, parents)) = at.split_last() else {
        bail!("mutant {} has no place", m.id);
    };
    let mut list = &mut solve;
    for i in parents {
        let Some(inner) = list.get_mut(*i).and_then(children_mut) else {
            bail!("mutant {} does not lead to an action", m.id);
        };
        list = inner;
    }
    match lines {
        None => {
            if *last >= list.len() {
                bail!("mutant {} does not lead to an action", m.id);
            }
            list.remove(*last);
        }
        Some(range) => {
            let Some(Action::Shell(shell)) = list.get_mut(*last) else {
                bail!("mutant {} is not in a shell block", m.id);
            };
            let kept: Vec<&str> = shell
                .run
                .lines()
                .enumerate()
                .filter(|(n, _)| !range.contains(n))
                .map(|(_, l)| l)
                .collect();
            shell.run = format!("{}\n", kept.join("\n"));
        }
    }
    Ok(solve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(yaml: &str) -> Step {
        crate::yaml::parse(yaml, std::path::Path::new("step.yaml")).expect("a step")
    }

    #[test]
    fn commands_span_continuations_loops_and_functions() {
        let text = "curl -sS \\\n  \"$BASE/x\" &\nsleep 0.2\n\n# a note\nfor i in 1 2; do\n  echo $i\ndone\nf() {\n  echo\n}\nwait\n";
        assert_eq!(shell_commands(text), vec![0..2, 2..3, 5..8, 8..11, 11..12]);
    }

    #[test]
    fn a_here_document_is_one_command_with_its_body() {
        let text = "curl -sS -o a.prof \"$BASE/p\"\npython3 - a.prof <<'EOF'\nimport sys\nprint(sys.argv[1])\nEOF\nwait\n";
        assert_eq!(shell_commands(text), vec![0..1, 1..5, 5..6]);
    }

    #[test]
    fn every_command_and_nested_action_is_a_mutant_and_unchecked_spares_by_prefix_or_path() {
        let s = step(
            r#"
id: "1"
title: t
instructions: i
solve:
  - shell: |
      curl -X POST "$BASE/jam" &
      curl "$BASE/health"
      wait
  - inspector:
      profile:
        to: p.cpuprofile
        during:
          - wait: 1s
          - shell: curl "$BASE/jam"
check: []
unchecked:
  - {command: 'curl "$BASE/health"', reason: shown only}
  - {action: "solve[1].profile.during[0]", reason: pace}
"#,
        );
        let ms = mutants(&s);
        let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "solve[0] command 1",
                "solve[0] command 2",
                "solve[0] command 3",
                "solve[1]",
                "solve[1].profile.during[0]",
                "solve[1].profile.during[1]"
            ]
        );
        let spared: Vec<bool> = ms.iter().map(|m| m.unchecked.is_some()).collect();
        assert_eq!(spared, [false, true, false, false, true, false]);
        let without_health = without(&s.solve, &ms[1]).unwrap();
        let Action::Shell(shell) = &without_health[0] else {
            panic!()
        };
        assert_eq!(shell.run, "curl -X POST \"$BASE/jam\" &\nwait\n");
        let without_jam = without(&s.solve, &ms[5]).unwrap();
        let Action::Inspector(InspectorAction::Profile(p)) = &without_jam[1] else {
            panic!()
        };
        assert_eq!(p.during.len(), 1);
        assert_eq!(without(&s.solve, &ms[3]).unwrap().len(), 1);
    }
}
