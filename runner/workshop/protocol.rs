//! What a joined participant's `start` sends to the instructor's workshop server: its progress, and
//! nothing else. A [`Batch`] carries [`Progress`] items made from the session's events by
//! [`Progress::from_event`], which keeps the part and step, the step's title, whether each check
//! passed, and a failed check's diagnosis (what was checked, what was expected, what was seen, the
//! hint) with anything that looks like a token or key (a run of 20 or more hex digits) blanked and
//! every text cut short. Commands, their output, tokens,
//! answers and file contents never leave the participant's machine: they are not in these types.

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::session::events::Event;

/// The longest text of a diagnosis sent, in characters.
pub const MAX_TEXT: usize = 240;
/// The most progress items in one batch.
pub const MAX_BATCH: usize = 200;

/// A participant's progress since their last batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// A random id this participant's `start` chose (a new one per session).
    pub participant: String,
    /// The name they gave (`--name`), or their login name.
    pub name: String,
    /// The lab's id.
    pub lab: String,
    pub progress: Vec<Progress>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Progress {
    /// The participant began a part (its steps, in order).
    PartStarted {
        part: String,
        title: String,
        steps: Vec<StepName>,
    },
    /// The participant is now at this step.
    StepShown { part: String, step: String },
    /// A check was judged: passed, or failed with its diagnosis.
    CheckJudged {
        part: String,
        step: String,
        passed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diagnosis: Option<Diagnosis>,
    },
    /// The participant skipped this step.
    StepSkipped { part: String, step: String },
    /// Every step of the part is done.
    PartFinished { part: String },
    /// The session ended (quit, Ctrl-C, or the part is done).
    Left,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepName {
    pub id: String,
    pub title: String,
}

/// A failed check, as the participant's screen shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    pub what: String,
    pub expected: String,
    pub saw: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Progress {
    /// The progress an event is, if any. `steps`: the part's steps with their titles (the event
    /// names only their ids).
    pub fn from_event(event: &Event, steps: &[StepName]) -> Option<Progress> {
        let clean = |text: &str| short(&blank_secrets(text));
        Some(match event {
            Event::PartStarted { part, title, .. } => Progress::PartStarted {
                part: part.clone(),
                title: short(title),
                steps: steps.to_vec(),
            },
            Event::StepShown { part, step, .. } => Progress::StepShown {
                part: part.clone(),
                step: step.clone(),
            },
            Event::CheckJudged {
                part,
                step,
                before_solve: false,
                outcome,
            } => Progress::CheckJudged {
                part: part.clone(),
                step: step.clone(),
                passed: outcome.passed(),
                diagnosis: match outcome.failure() {
                    Some(f) => Some(Diagnosis {
                        what: clean(&f.what),
                        expected: clean(&f.expected),
                        saw: clean(&f.saw),
                        hint: f.hint.as_deref().map(clean),
                    }),
                    None if !outcome.passed() => Some(Diagnosis {
                        what: clean(&outcome.problem_text().unwrap_or_default()),
                        expected: String::new(),
                        saw: String::new(),
                        hint: None,
                    }),
                    None => None,
                },
            },
            Event::ProgressSaved { .. } => return None,
            Event::StepFinished {
                part,
                step,
                outcome: Outcome::Skipped,
                ..
            } => Progress::StepSkipped {
                part: part.clone(),
                step: step.clone(),
            },
            Event::PartFinished {
                part, failed: 0, ..
            } => Progress::PartFinished { part: part.clone() },
            Event::Interrupted { .. } => Progress::Left,
            _ => return None,
        })
    }
}

/// `text` with every run of 20 or more hex digits (the session's token, keys, ids) blanked.
pub fn blank_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 20 {
            out.push_str("(hidden)");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// At most [`MAX_TEXT`] characters, on one line.
pub fn short(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_TEXT {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_TEXT - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Failure, Phase, Problem};

    fn steps() -> Vec<StepName> {
        vec![StepName {
            id: "2.1".into(),
            title: "Enable".into(),
        }]
    }

    #[test]
    fn commands_their_output_and_what_an_action_did_are_never_sent() {
        for event in [
            Event::CommandRun {
                part: "part2".into(),
                step: Some("2.1".into()),
                command: "curl -H \"x-lab-token: $LAB_TOKEN\" …".into(),
            },
            Event::Output {
                part: "part2".into(),
                step: Some("2.1".into()),
                line: "secret file contents".into(),
            },
            Event::ActionPerformed {
                part: "part2".into(),
                step: Some("2.1".into()),
                text: "GET /api/lab/status → 200".into(),
            },
            Event::EnvironmentKept {
                part: "part2".into(),
                description: "d".into(),
                base_url: Some("http://127.0.0.1:1".into()),
                token: Some("0123456789abcdef0123456789abcdef".into()),
                artifacts: "/home/x".into(),
            },
        ] {
            assert_eq!(Progress::from_event(&event, &steps()), None, "{event:?}");
        }
    }

    #[test]
    fn a_failed_checks_diagnosis_is_sent_short_with_tokens_hidden() {
        let token = "0123456789abcdef0123456789abcdef";
        let event = Event::CheckJudged {
            part: "part2".into(),
            step: "2.1".into(),
            before_solve: false,
            outcome: crate::outcome::Outcome::failed(
                Phase::Check,
                Problem::Check(
                    Failure::new(
                        "GET /api/lab/status: status",
                        "200",
                        format!("401 (sent x-lab-token: {token}) {}", "x".repeat(500)),
                    )
                    .hint(Some("send the header")),
                ),
            ),
        };
        let Some(Progress::CheckJudged {
            passed: false,
            diagnosis: Some(d),
            ..
        }) = Progress::from_event(&event, &steps())
        else {
            panic!("a failed check is progress");
        };
        assert!(!d.saw.contains(token), "{}", d.saw);
        assert!(d.saw.contains("(hidden)"), "{}", d.saw);
        assert!(d.saw.chars().count() <= MAX_TEXT, "{}", d.saw.len());
        assert_eq!(d.expected, "200");
        assert_eq!(d.hint.as_deref(), Some("send the header"));
    }

    #[test]
    fn only_long_hex_runs_are_hidden() {
        assert_eq!(
            blank_secrets("pid 4242 at 2.1, cafe"),
            "pid 4242 at 2.1, cafe"
        );
        assert_eq!(
            blank_secrets("token=0123456789abcdef0123 ok"),
            "token=(hidden) ok"
        );
    }
}
