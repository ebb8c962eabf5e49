//! What came of an action, a phase and a step, as values the actions and the sessions share.
//!
//! An action either completes or returns a [`Problem`]: a check that does not hold (yet), a command
//! the step shows that ended badly, the app found dead, or an error (the action could not be
//! performed at all). A [`Failure`] is the expected / saw / hint diagnosis of the first three. A
//! step ends with an [`Outcome`]; only the command line maps outcomes to exit codes.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// The phases of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Setup,
    CheckBeforeSolve,
    Solve,
    Check,
    Cleanup,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Setup => "setup",
            Phase::CheckBeforeSolve => "check before solve",
            Phase::Solve => "solve",
            Phase::Check => "check",
            Phase::Cleanup => "cleanup",
        })
    }
}

/// Something that was not as it should be: what was expected, what was seen, and a hint.
///
/// Deliberately neither `Display` nor `std::error::Error`: it cannot travel inside an
/// `anyhow::Error` (where it could only be found again by downcasting); it travels in a [`Problem`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// What was being judged: `GET /api/lab/status`, `nodejs_eventloop_lag_max_seconds`.
    pub what: String,
    pub expected: String,
    pub saw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What was around it, when anything was (boxed: most failures have nothing around them).
    #[serde(flatten)]
    around: Option<Box<Around>>,
}

/// What was being done around a failure, and what lay under it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Around {
    /// Outermost first (`still not true after retrying for 5.0s`).
    #[serde(rename = "while", skip_serializing_if = "Vec::is_empty")]
    context: Vec<String>,
    /// The problem a phase had when the app was found dead.
    #[serde(rename = "because", skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
}

impl Failure {
    pub fn new(
        what: impl Into<String>,
        expected: impl Into<String>,
        saw: impl Into<String>,
    ) -> Self {
        Failure {
            what: what.into(),
            expected: expected.into(),
            saw: saw.into(),
            hint: None,
            around: None,
        }
    }

    /// What was being done around the failure, outermost first.
    pub fn context(&self) -> &[String] {
        self.around.as_ref().map_or(&[], |a| &a.context)
    }

    /// What lay under it.
    pub fn cause(&self) -> Option<&str> {
        self.around.as_ref().and_then(|a| a.cause.as_deref())
    }

    /// Says what lay under the failure.
    pub fn because(mut self, cause: impl Into<String>) -> Self {
        self.around.get_or_insert_default().cause = Some(cause.into());
        self
    }

    /// Says what was being done around the failure (outside what was said before).
    pub fn within(mut self, context: impl fmt::Display) -> Self {
        self.around
            .get_or_insert_default()
            .context
            .insert(0, context.to_string());
        self
    }

    pub fn hint(mut self, hint: Option<impl Into<String>>) -> Self {
        self.hint = hint.map(Into::into);
        self
    }

    /// `what`, then expected / saw / hint on indented lines.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{}\n  expected: {}\n  saw:      {}",
            self.what, self.expected, self.saw
        );
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\n  hint:     {hint}"));
        }
        out
    }

    /// [`Failure::render`] with what was being done around it and what lay under it.
    pub fn render_in_context(&self) -> String {
        let mut out = self.render();
        if !self.context().is_empty() {
            out.push_str(&format!("\n  (while: {})", self.context().join(": ")));
        }
        if let Some(cause) = self.cause() {
            out.push_str(&format!("\n  (because: {cause})"));
        }
        out
    }
}

/// Why an action (or a phase: its actions in order) did not complete.
#[derive(Debug)]
pub enum Problem {
    /// A check that does not hold (yet): the live system is not as it expects. The only problem
    /// `eventually` retries. A probe that gets no answer (connection refused, timed out) is one:
    /// the app may be restarting or jammed, which is a state of the live system.
    Check(Failure),
    /// A command the step shows, run as a participant runs it, ended badly (a non-zero exit, a
    /// command that did not become ready, one that would not stop): never retried.
    Command(Failure),
    /// The app stopped running (out of memory, crashed, killed) while the phase ran: found by the
    /// engine, never by an action.
    AppDied(Failure),
    /// The action could not be performed: a template that does not render, a protocol error, a
    /// file that cannot be written, a phase past its budget — the runner or the lab is broken.
    Error(anyhow::Error),
}

impl From<Failure> for Problem {
    fn from(failure: Failure) -> Self {
        Problem::Check(failure)
    }
}

impl From<anyhow::Error> for Problem {
    fn from(error: anyhow::Error) -> Self {
        Problem::Error(error)
    }
}

/// What an action returns.
pub type Done<T = ()> = std::result::Result<T, Problem>;

impl Problem {
    /// Says what was being done around the problem (as `anyhow::Context` does for an error).
    pub fn context(self, context: impl fmt::Display) -> Problem {
        match self {
            Problem::Check(f) => Problem::Check(f.within(context)),
            Problem::Command(f) => Problem::Command(f.within(context)),
            Problem::AppDied(f) => Problem::AppDied(f.within(context)),
            Problem::Error(e) => Problem::Error(e.context(context.to_string())),
        }
    }

    /// The problem as one text (expected / saw / hint, or the error chain).
    pub fn text(&self) -> String {
        match self {
            Problem::Check(f) | Problem::Command(f) | Problem::AppDied(f) => f.render_in_context(),
            Problem::Error(e) => format!("{e:#}"),
        }
    }

    /// The diagnosis, when the problem is a judgement of the live system or of a command.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Problem::Check(f) | Problem::Command(f) | Problem::AppDied(f) => Some(f),
            Problem::Error(_) => None,
        }
    }
}

/// How a step ended (and how a check was judged: [`Outcome::Passed`] or one of the failures).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Every phase completed and the check held.
    Passed,
    /// A check did not hold.
    CheckFailed { phase: Phase, failure: Failure },
    /// A command the step shows ended badly.
    CommandFailed { phase: Phase, failure: Failure },
    /// The app stopped running during the phase.
    AppDied { phase: Phase, failure: Failure },
    /// An action could not be performed (or the phase ran past its budget): the error chain.
    ActionFailed { phase: Phase, error: String },
    /// verify: the check held before the solve ran, so it cannot tell solved from unsolved.
    HeldBeforeSolve,
    /// The part's environment could not be brought up: the step never ran.
    EnvironmentFailed { error: String },
    /// The participant skipped the step (`start`).
    Skipped,
    /// The step was left before it finished: the participant quit or went back (`start`).
    Interrupted,
}

/// What verify says when a check holds before its solve ran.
pub const HELD_BEFORE_SOLVE: &str = "the check passed before the solve ran, so it cannot tell a solved step from an \
unsolved one; make the check stricter, or set `check_fails_before_solve: false` for an observation step";

impl Outcome {
    /// The outcome of a phase that had `problem`.
    pub fn failed(phase: Phase, problem: Problem) -> Outcome {
        match problem {
            Problem::Check(failure) => Outcome::CheckFailed { phase, failure },
            Problem::Command(failure) => Outcome::CommandFailed { phase, failure },
            Problem::AppDied(failure) => Outcome::AppDied { phase, failure },
            Problem::Error(e) => Outcome::ActionFailed {
                phase,
                error: format!("{e:#}"),
            },
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }

    /// The phase the step failed in (None when no phase ran, or when it did not fail).
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Outcome::CheckFailed { phase, .. }
            | Outcome::CommandFailed { phase, .. }
            | Outcome::AppDied { phase, .. }
            | Outcome::ActionFailed { phase, .. } => Some(*phase),
            Outcome::HeldBeforeSolve => Some(Phase::CheckBeforeSolve),
            _ => None,
        }
    }

    /// The expected / saw / hint diagnosis, when there is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::CheckFailed { failure, .. }
            | Outcome::CommandFailed { failure, .. }
            | Outcome::AppDied { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// The problem of a failed outcome as one text, without its phase: expected / saw / hint, or
    /// the error chain.
    pub fn problem_text(&self) -> Option<String> {
        match self {
            Outcome::ActionFailed { error, .. } | Outcome::EnvironmentFailed { error } => {
                Some(error.clone())
            }
            Outcome::HeldBeforeSolve => Some(HELD_BEFORE_SOLVE.to_string()),
            _ => self.failure().map(Failure::render_in_context),
        }
    }

    /// What a person reads about a failure (`check failed: GET /x` + expected / saw / hint);
    /// None for a step that passed, was skipped or was left.
    pub fn diagnosis(&self, part: &str) -> Option<String> {
        match self {
            Outcome::CheckFailed { phase, failure }
            | Outcome::CommandFailed { phase, failure }
            | Outcome::AppDied { phase, failure } => {
                Some(format!("{phase} failed: {}", failure.render_in_context()))
            }
            Outcome::ActionFailed { phase, error } => Some(format!("{phase} failed: {error}")),
            Outcome::HeldBeforeSolve => Some(HELD_BEFORE_SOLVE.to_string()),
            Outcome::EnvironmentFailed { error } => Some(format!(
                "the environment of {part} could not be brought up: {error}"
            )),
            Outcome::Passed | Outcome::Skipped | Outcome::Interrupted => None,
        }
    }
}

/// The user asked for something wrong (an unknown part, an interactive command without a
/// terminal): said as it is, and the command line exits with its usage code.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub part: String,
    pub step: String,
    pub title: String,
    #[serde(skip)]
    pub duration: Duration,
    pub outcome: Outcome,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }

    /// Not run at all: its part's environment could not be brought up.
    pub fn environment_failed(&self) -> bool {
        matches!(self.outcome, Outcome::EnvironmentFailed { .. })
    }

    pub fn diagnosis(&self) -> Option<String> {
        self.outcome.diagnosis(&self.part)
    }
}

/// `7 passed, 0 failed`.
pub fn summary(results: &[StepResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_what_was_being_done_around_it() {
        let problem = Problem::Check(Failure::new("GET /x: status", "200", "404"))
            .context("still not true after retrying for 1.0s");
        let outcome = Outcome::failed(Phase::Check, problem);
        assert_eq!(
            outcome.diagnosis("part1").unwrap(),
            "check failed: GET /x: status\n  expected: 200\n  saw:      404\n  (while: still not true after retrying for 1.0s)"
        );
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["outcome"], "check_failed");
        assert_eq!(json["phase"], "check");
        assert_eq!(json["failure"]["expected"], "200");
        assert_eq!(
            json["failure"]["while"][0],
            "still not true after retrying for 1.0s"
        );
    }

    #[test]
    fn an_error_is_not_a_judgement() {
        let outcome = Outcome::failed(
            Phase::Setup,
            Problem::from(anyhow::anyhow!("bad template")).context("rendering"),
        );
        assert_eq!(outcome.failure(), None);
        assert_eq!(
            outcome.diagnosis("p").unwrap(),
            "setup failed: rendering: bad template"
        );
    }
}
