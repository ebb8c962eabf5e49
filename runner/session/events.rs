//! One event stream: the sessions (verify, demo, start) say what happens as [`Event`]s, and
//! reporters turn them into what people and tools read — the terminal, JUnit, JSON lines (and, later,
//! the browser guide and the workshop dashboard). No session prints.
//!
//! [`Events`] is the sessions' handle (cheap to clone, usable from any task): it hands each event to
//! every reporter in turn, in the order the events were emitted, and fills in the part and step an
//! action's narration belongs to. The JSON form of each event is documented in
//! `docs/events.md`; its shape is stable within a version (`"v": 1`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::actions::context::{Activity, Narrator};
use crate::outcome::Outcome;

/// The version of the events' JSON form, in every line of `--format json`.
pub const EVENTS_VERSION: u32 = 1;

/// What happened. Every event about a part carries its id; every event about a step, the step's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// verify begins: the parts it will run, and how many steps they have.
    RunStarted {
        lab: String,
        title: String,
        parts: Vec<String>,
        steps: usize,
    },
    /// A part begins: its environment is being brought up next.
    PartStarted {
        part: String,
        title: String,
        lab_title: String,
        steps: Vec<String>,
    },
    /// The runner is busy with something of unknown length (bringing up the environment,
    /// restoring a participant's state, removing the environment); `text: null` when it is done.
    Busy {
        #[serde(skip_serializing_if = "Option::is_none")]
        part: Option<String>,
        text: Option<String>,
    },
    /// Something the runner says about itself (the backend it chose, an image it built, a
    /// teardown that failed).
    Note {
        #[serde(skip_serializing_if = "Option::is_none")]
        part: Option<String>,
        text: String,
        #[serde(skip_serializing_if = "Tone::is_plain")]
        tone: Tone,
    },
    /// The part's environment is up and the app is healthy.
    EnvironmentReady {
        part: String,
        description: String,
        backend: String,
        duration_ms: u64,
    },
    /// The part's environment could not be brought up: none of `steps` runs (each still gets a
    /// `step_finished` with the outcome `environment_failed`).
    EnvironmentFailed {
        part: String,
        error: String,
        steps: Vec<String>,
    },
    /// Markdown the participant is shown that belongs to no step (the lab's description, the
    /// part's intro, its takeaways, the closing words).
    Shown { part: String, markdown: String },
    /// A step begins (before its setup).
    StepStarted {
        part: String,
        step: String,
        title: String,
        /// 1-based position in the part, of `of`.
        index: usize,
        of: usize,
    },
    /// The step's instructions, rendered with the session's live variables (demo, start).
    StepShown {
        part: String,
        step: String,
        title: String,
        index: usize,
        of: usize,
        instructions: String,
        /// The step's commands when the instructions do not show them inline.
        #[serde(skip_serializing_if = "Option::is_none")]
        commands: Option<String>,
    },
    /// A command as the participant types it, about to run (or the `curl` an HTTP check equals).
    CommandRun {
        part: String,
        step: Option<String>,
        command: String,
    },
    /// A line a command printed.
    Output {
        part: String,
        step: Option<String>,
        line: String,
    },
    /// What an action did (`POST /api/lab/event-loop-jam → 200 in 1502 ms`).
    ActionPerformed {
        part: String,
        step: Option<String>,
        text: String,
    },
    /// Something that takes about `expected_ms` began (a 30 s profile).
    ActivityStarted {
        part: String,
        step: Option<String>,
        label: String,
        expected_ms: u64,
    },
    /// ... and ended.
    ActivityFinished {
        part: String,
        step: Option<String>,
        label: String,
    },
    /// The app's key signals while a demo step runs; `None` when the line goes away. `values`:
    /// the same signals as numbers (the presenter view charts them).
    Live {
        part: String,
        step: String,
        text: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        values: Vec<LiveValue>,
    },
    /// A phase other than the check failed without ending the step (start: the setup, a "do it
    /// for me", the cleanup).
    PhaseFailed {
        part: String,
        step: String,
        #[serde(flatten)]
        outcome: Outcome,
    },
    /// A check was judged against the live system (`passed`, or the failure with its diagnosis).
    /// `before_solve`: verify's run of the check before the solve, which must not pass.
    CheckJudged {
        part: String,
        step: String,
        before_solve: bool,
        #[serde(flatten)]
        outcome: Outcome,
    },
    /// verify: a step's mistakes, each performed from the step's starting state and judged (before
    /// the step's `step_finished`).
    MistakesJudged {
        part: String,
        step: String,
        mistakes: Vec<super::mistakes::MistakeResult>,
    },
    /// verify --mutations: a step's mutants and how each fared (before the step's `step_finished`).
    MutationsJudged {
        mutations: super::mutations::StepMutations,
    },
    /// A step ended.
    StepFinished {
        part: String,
        step: String,
        title: String,
        #[serde(flatten)]
        outcome: Outcome,
        duration_ms: u64,
    },
    /// start saved the participant's progress through the part.
    ProgressSaved {
        part: String,
        current: Option<String>,
        done: Vec<String>,
        skipped: Vec<String>,
    },
    /// The session waits for the person (demo: Enter; start: a key from `choices`).
    Waiting {
        #[serde(skip_serializing_if = "Option::is_none")]
        part: Option<String>,
        text: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        choices: Vec<String>,
    },
    /// The part's environment is left running (`--keep`).
    EnvironmentKept {
        part: String,
        description: String,
        base_url: Option<String>,
        token: Option<String>,
        artifacts: String,
    },
    /// A part ended: how many of its steps passed and failed (skipped and left steps are neither).
    PartFinished {
        part: String,
        passed: usize,
        failed: usize,
        duration_ms: u64,
    },
    /// verify ended.
    RunFinished {
        passed: usize,
        failed: usize,
        duration_ms: u64,
    },
    /// The run was stopped (Ctrl-C, SIGTERM, the terminal closed) and its environments removed:
    /// the last event; a step that had started has no `step_finished`.
    Interrupted { why: String },
}

/// One of the app's signals, as a number: `health` (how long the health request took, in ms: a
/// jammed event loop holds it) and each of `app.live`'s fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveValue {
    pub label: String,
    pub value: f64,
    /// `ms`, `bytes`, or empty.
    pub unit: String,
}

/// How a note is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Plain,
    Good,
    Bad,
}

impl Tone {
    fn is_plain(&self) -> bool {
        *self == Tone::Plain
    }
}

impl Event {
    /// `part` of `lab` starting: its title, the lab's, and its steps' ids.
    pub fn part_started(lab: &crate::lab::Lab, part: &crate::lab::Part) -> Event {
        Event::PartStarted {
            part: part.id().to_string(),
            title: part.file.title.clone(),
            lab_title: lab.manifest.title.clone(),
            steps: part.file.steps.iter().map(|s| s.id.clone()).collect(),
        }
    }
}

/// Turns events into something people or tools read.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
    /// After the last event: write what was collected (a JUnit file), print the last line.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

struct Inner {
    /// Each with the id [`Events::attach`] gave it.
    reporters: Vec<(usize, Box<dyn Reporter>)>,
    next_id: usize,
}

/// The part and step that narration belongs to now.
#[derive(Default)]
struct Place {
    part: String,
    step: Option<String>,
}

/// The sessions' end of the stream.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Mutex<Inner>>,
    place: Arc<Mutex<Place>>,
}

impl Events {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Events {
        Events {
            inner: Arc::new(Mutex::new(Inner {
                next_id: reporters.len(),
                reporters: reporters.into_iter().enumerate().collect(),
            })),
            place: Arc::default(),
        }
    }

    /// A handle to the same reporters that keeps its own place: for a part run at the same time as
    /// others (`verify --jobs`), so its narration is said under its own part and step.
    pub fn scoped(&self) -> Events {
        Events {
            inner: self.inner.clone(),
            place: Arc::default(),
        }
    }

    /// Hands `event` to every reporter, in order.
    pub fn emit(&self, event: Event) {
        {
            let mut place = self.place.lock().expect("events place lock");
            match &event {
                Event::PartStarted { part, .. } => {
                    place.part = part.clone();
                    place.step = None;
                }
                Event::StepStarted { step, .. } => place.step = Some(step.clone()),
                Event::StepFinished { .. } => place.step = None,
                _ => {}
            }
        }
        let mut inner = self.inner.lock().expect("events lock");
        for (_, reporter) in inner.reporters.iter_mut() {
            reporter.event(&event);
        }
    }

    /// Adds a reporter for a while (start: the client of a `lab-runner check` while its check
    /// runs); [`Events::detach`] removes it.
    pub fn attach(&self, reporter: Box<dyn Reporter>) -> usize {
        let mut inner = self.inner.lock().expect("events lock");
        let id = inner.next_id;
        inner.next_id += 1;
        inner.reporters.push((id, reporter));
        id
    }

    pub fn detach(&self, id: usize) {
        self.inner
            .lock()
            .expect("events lock")
            .reporters
            .retain(|(i, _)| *i != id);
    }

    /// A note about the current part.
    pub fn note(&self, text: impl Into<String>, tone: Tone) {
        let part = self.part();
        self.emit(Event::Note {
            part: (!part.is_empty()).then_some(part),
            text: text.into(),
            tone,
        });
    }

    /// Tells every reporter the stream has ended; the first error is returned once all finished.
    pub fn finish(&self) -> Result<()> {
        let mut inner = self.inner.lock().expect("events lock");
        let mut first = None;
        for (_, reporter) in inner.reporters.iter_mut() {
            if let Err(e) = reporter.finish() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn part(&self) -> String {
        self.place.lock().expect("events place lock").part.clone()
    }

    fn place(&self) -> (String, Option<String>) {
        let place = self.place.lock().expect("events place lock");
        (place.part.clone(), place.step.clone())
    }

    /// What the actions of a session narrate, as events.
    pub fn narrator(&self) -> Box<dyn Narrator> {
        Box::new(EventNarrator(self.clone()))
    }
}

/// The actions' narration as events of the current part and step.
struct EventNarrator(Events);

impl Narrator for EventNarrator {
    fn say(&self, line: &str) {
        let (part, step) = self.0.place();
        self.0.emit(Event::ActionPerformed {
            part,
            step,
            text: line.to_string(),
        });
    }

    fn command(&self, shell: &str) {
        let (part, step) = self.0.place();
        self.0.emit(Event::CommandRun {
            part,
            step,
            command: shell.to_string(),
        });
    }

    fn output(&self, line: &str) {
        let (part, step) = self.0.place();
        self.0.emit(Event::Output {
            part,
            step,
            line: line.to_string(),
        });
    }

    fn activity(&self, label: &str, expected: Duration) -> Box<dyn Activity> {
        let (part, step) = self.0.place();
        self.0.emit(Event::ActivityStarted {
            part: part.clone(),
            step: step.clone(),
            label: label.to_string(),
            expected_ms: expected.as_millis() as u64,
        });
        Box::new(Running {
            events: self.0.clone(),
            finished: Some(Event::ActivityFinished {
                part,
                step,
                label: label.to_string(),
            }),
        })
    }
}

/// An activity under way: its end is an event when it is dropped.
struct Running {
    events: Events,
    finished: Option<Event>,
}

impl Activity for Running {}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(event) = self.finished.take() {
            self.events.emit(event);
        }
    }
}

/// Milliseconds, as events carry durations.
pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Arc<Mutex<Vec<Event>>>);
    impl Reporter for Collect {
        fn event(&mut self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn narration_belongs_to_the_step_that_runs() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let events = Events::new(vec![Box::new(Collect(seen.clone()))]);
        events.emit(Event::PartStarted {
            part: "part2".into(),
            title: "t".into(),
            lab_title: "l".into(),
            steps: vec!["2.1".into()],
        });
        events.emit(Event::StepStarted {
            part: "part2".into(),
            step: "2.1".into(),
            title: "t".into(),
            index: 1,
            of: 1,
        });
        let narrator = events.narrator();
        narrator.command("curl -sS \"$BASE/api/health\"");
        drop(narrator.activity("profile", Duration::from_secs(1)));
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[2],
            Event::CommandRun {
                part: "part2".into(),
                step: Some("2.1".into()),
                command: "curl -sS \"$BASE/api/health\"".into()
            }
        );
        assert!(
            matches!(&seen[3], Event::ActivityStarted { label, expected_ms: 1000, .. } if label == "profile")
        );
        assert!(matches!(&seen[4], Event::ActivityFinished { .. }));
    }

    #[test]
    fn an_outcome_is_flattened_into_its_event() {
        let event = Event::StepFinished {
            part: "part1".into(),
            step: "1.2".into(),
            title: "t".into(),
            outcome: Outcome::CheckFailed {
                phase: crate::outcome::Phase::Check,
                failure: crate::outcome::Failure::new("GET /x: status", "418", "200"),
            },
            duration_ms: 12,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "step_finished");
        assert_eq!(json["outcome"], "check_failed");
        assert_eq!(json["phase"], "check");
        assert_eq!(json["failure"]["saw"], "200");
        assert_eq!(json["duration_ms"], 12);
    }
}
