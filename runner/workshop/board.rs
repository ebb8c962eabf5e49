//! The instructor's view of the room, kept from the participants' progress: where each one is,
//! since when, how many checks passed, their last failing check's diagnosis, who has been stuck
//! longest, and per step how many have passed it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::protocol::{Batch, Diagnosis, Progress, StepName, short};

/// A participant not heard from for this long (their session sends at least every 30 s) has gone
/// quiet: their machine or network went away without a word.
pub const QUIET_AFTER_S: u64 = 90;
/// The most participants one workshop keeps (a batch from one more is refused).
pub const MAX_PARTICIPANTS: usize = 2000;

#[derive(Default)]
pub struct Board {
    participants: BTreeMap<String, Participant>,
    /// Each part's title and steps, as the participants' sessions named them.
    parts: BTreeMap<String, (String, Vec<StepName>)>,
}

struct Participant {
    name: String,
    lab: String,
    part: Option<String>,
    step: Option<String>,
    on_step_since: Instant,
    checks_passed: u32,
    checks_failed: u32,
    last_failure: Option<(String, Diagnosis)>,
    /// (part, step) passed.
    passed: BTreeSet<(String, String)>,
    finished: BTreeSet<String>,
    left: bool,
    last_seen: Instant,
}

/// Why a batch was not taken.
#[derive(Debug, PartialEq)]
pub enum Refused {
    Full,
    Invalid(&'static str),
}

impl Board {
    /// Takes a participant's batch.
    pub fn take(&mut self, batch: Batch, now: Instant) -> Result<(), Refused> {
        if batch.participant.is_empty()
            || batch.participant.len() > 64
            || !batch.participant.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(Refused::Invalid(
                "participant must be 1–64 letters and digits",
            ));
        }
        if batch.progress.len() > super::protocol::MAX_BATCH {
            return Err(Refused::Invalid("too many progress items in one batch"));
        }
        if !self.participants.contains_key(&batch.participant)
            && self.participants.len() >= MAX_PARTICIPANTS
        {
            return Err(Refused::Full);
        }
        let p = self
            .participants
            .entry(batch.participant.clone())
            .or_insert_with(|| Participant {
                name: String::new(),
                lab: String::new(),
                part: None,
                step: None,
                on_step_since: now,
                checks_passed: 0,
                checks_failed: 0,
                last_failure: None,
                passed: BTreeSet::new(),
                finished: BTreeSet::new(),
                left: false,
                last_seen: now,
            });
        p.name = short(&batch.name).chars().take(60).collect();
        p.lab = short(&batch.lab).chars().take(60).collect();
        p.last_seen = now;
        for item in batch.progress {
            match item {
                Progress::PartStarted { part, title, steps } => {
                    let steps: Vec<StepName> = steps
                        .into_iter()
                        .take(200)
                        .map(|s| StepName {
                            id: short(&s.id),
                            title: short(&s.title),
                        })
                        .collect();
                    self.parts
                        .entry(short(&part))
                        .or_insert_with(|| (short(&title), steps));
                    p.part = Some(short(&part));
                    p.step = None;
                    p.left = false;
                    p.on_step_since = now;
                }
                Progress::StepShown { part, step } => {
                    if p.step.as_deref() != Some(step.as_str()) || p.left {
                        p.on_step_since = now;
                    }
                    p.part = Some(short(&part));
                    p.step = Some(short(&step));
                    p.left = false;
                }
                Progress::CheckJudged {
                    part,
                    step,
                    passed,
                    diagnosis,
                } => {
                    if passed {
                        p.checks_passed += 1;
                        p.passed.insert((short(&part), short(&step)));
                    } else {
                        p.checks_failed += 1;
                        if let Some(d) = diagnosis {
                            p.last_failure = Some((
                                short(&step),
                                Diagnosis {
                                    what: short(&d.what),
                                    expected: short(&d.expected),
                                    saw: short(&d.saw),
                                    hint: d.hint.as_deref().map(short),
                                },
                            ));
                        }
                    }
                }
                Progress::StepSkipped { .. } => {}
                Progress::PartFinished { part } => {
                    p.finished.insert(short(&part));
                    p.step = None;
                    p.on_step_since = now;
                }
                Progress::Left => {
                    p.left = true;
                }
            }
        }
        Ok(())
    }

    /// What the dashboard shows, as of `now`.
    pub fn view(&self, now: Instant) -> BoardView {
        let mut participants: Vec<ParticipantView> = self
            .participants
            .iter()
            .map(|(id, p)| {
                let step_title = match (&p.part, &p.step) {
                    (Some(part), Some(step)) => self.parts.get(part).and_then(|(_, steps)| {
                        steps
                            .iter()
                            .find(|s| &s.id == step)
                            .map(|s| s.title.clone())
                    }),
                    _ => None,
                };
                ParticipantView {
                    id: id.chars().take(8).collect(),
                    name: p.name.clone(),
                    lab: p.lab.clone(),
                    part: p.part.clone(),
                    step: p.step.clone(),
                    step_title,
                    on_step_s: now.saturating_duration_since(p.on_step_since).as_secs(),
                    checks_passed: p.checks_passed,
                    checks_failed: p.checks_failed,
                    steps_passed: p.passed.len(),
                    last_failure: p.last_failure.as_ref().map(|(step, d)| FailureView {
                        step: step.clone(),
                        diagnosis: d.clone(),
                    }),
                    finished: p.finished.iter().cloned().collect(),
                    left: p.left,
                    seen_s_ago: now.saturating_duration_since(p.last_seen).as_secs(),
                }
            })
            .collect();
        // Those working now first, the one stuck longest on their step at the top.
        participants.sort_by(|a, b| {
            let working =
                |p: &ParticipantView| !p.left && p.step.is_some() && p.seen_s_ago < QUIET_AFTER_S;
            working(b)
                .cmp(&working(a))
                .then(b.on_step_s.cmp(&a.on_step_s))
                .then(a.name.cmp(&b.name))
        });
        let mut steps = Vec::new();
        for (part, (title, part_steps)) in &self.parts {
            for s in part_steps {
                let key = (part.clone(), s.id.clone());
                steps.push(StepCount {
                    part: part.clone(),
                    part_title: title.clone(),
                    step: s.id.clone(),
                    title: s.title.clone(),
                    passed: self
                        .participants
                        .values()
                        .filter(|p| p.passed.contains(&key))
                        .count(),
                    here: self
                        .participants
                        .values()
                        .filter(|p| {
                            !p.left
                                && p.part.as_deref() == Some(part)
                                && p.step.as_deref() == Some(&s.id)
                        })
                        .count(),
                });
            }
        }
        BoardView {
            participants,
            steps,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoardView {
    pub participants: Vec<ParticipantView>,
    pub steps: Vec<StepCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParticipantView {
    /// The first characters of the participant's random id (two with one name stay apart).
    pub id: String,
    pub name: String,
    pub lab: String,
    pub part: Option<String>,
    pub step: Option<String>,
    pub step_title: Option<String>,
    pub on_step_s: u64,
    pub checks_passed: u32,
    pub checks_failed: u32,
    pub steps_passed: usize,
    pub last_failure: Option<FailureView>,
    pub finished: Vec<String>,
    pub left: bool,
    pub seen_s_ago: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureView {
    pub step: String,
    #[serde(flatten)]
    pub diagnosis: Diagnosis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepCount {
    pub part: String,
    pub part_title: String,
    pub step: String,
    pub title: String,
    /// Participants who have passed it.
    pub passed: usize,
    /// Participants at it now.
    pub here: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn batch(id: &str, progress: Vec<Progress>) -> Batch {
        Batch {
            participant: id.into(),
            name: format!("name-{id}"),
            lab: "lab".into(),
            progress,
        }
    }

    fn started() -> Progress {
        Progress::PartStarted {
            part: "part2".into(),
            title: "Part two".into(),
            steps: ["2.0", "2.1"]
                .iter()
                .map(|s| StepName {
                    id: s.to_string(),
                    title: format!("title {s}"),
                })
                .collect(),
        }
    }

    fn at(part: &str, step: &str) -> Progress {
        Progress::StepShown {
            part: part.into(),
            step: step.into(),
        }
    }

    #[test]
    fn the_one_stuck_longest_is_first_and_each_step_counts_who_passed() {
        let t0 = Instant::now();
        let mut board = Board::default();
        board
            .take(batch("a1", vec![started(), at("part2", "2.0")]), t0)
            .unwrap();
        board
            .take(
                batch(
                    "b2",
                    vec![
                        started(),
                        at("part2", "2.0"),
                        Progress::CheckJudged {
                            part: "part2".into(),
                            step: "2.0".into(),
                            passed: true,
                            diagnosis: None,
                        },
                        at("part2", "2.1"),
                    ],
                ),
                t0 + Duration::from_secs(30),
            )
            .unwrap();
        board
            .take(
                batch(
                    "a1",
                    vec![Progress::CheckJudged {
                        part: "part2".into(),
                        step: "2.0".into(),
                        passed: false,
                        diagnosis: Some(Diagnosis {
                            what: "GET /x: status".into(),
                            expected: "200".into(),
                            saw: "404".into(),
                            hint: Some("enable it".into()),
                        }),
                    }],
                ),
                t0 + Duration::from_secs(40),
            )
            .unwrap();
        let view = board.view(t0 + Duration::from_secs(100));
        assert_eq!(view.participants[0].name, "name-a1");
        assert_eq!(view.participants[0].on_step_s, 100);
        assert_eq!(
            view.participants[0].step_title.as_deref(),
            Some("title 2.0")
        );
        let failure = view.participants[0].last_failure.as_ref().unwrap();
        assert_eq!(
            (failure.step.as_str(), failure.diagnosis.saw.as_str()),
            ("2.0", "404")
        );
        assert_eq!(view.participants[1].on_step_s, 70);
        let count = |step: &str| view.steps.iter().find(|s| s.step == step).unwrap().passed;
        assert_eq!((count("2.0"), count("2.1")), (1, 0));
    }

    #[test]
    fn a_bad_participant_id_and_too_many_participants_are_refused() {
        let now = Instant::now();
        let mut board = Board::default();
        assert!(matches!(
            board.take(batch("../x", vec![]), now),
            Err(Refused::Invalid(_))
        ));
        for i in 0..MAX_PARTICIPANTS {
            board.take(batch(&format!("p{i}"), vec![]), now).unwrap();
        }
        assert_eq!(
            board.take(batch("one0more", vec![]), now),
            Err(Refused::Full)
        );
        // One already known is still heard.
        board.take(batch("p7", vec![]), now).unwrap();
    }
}
