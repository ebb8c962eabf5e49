//! A check that did not hold: what was expected, what was seen, and a hint.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What was being judged: `GET /api/lab/status`, `nodejs_eventloop_lag_max_seconds`.
    pub what: String,
    pub expected: String,
    pub saw: String,
    pub hint: Option<String>,
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
        }
    }

    pub fn hint(mut self, hint: Option<impl Into<String>>) -> Self {
        self.hint = hint.map(Into::into);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n  expected: {}\n  saw:      {}",
            self.what, self.expected, self.saw
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint:     {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// The [`Failure`] inside an error, if the error is a judgement (rather than, say, a broken network).
pub fn as_failure(err: &anyhow::Error) -> Option<&Failure> {
    // A Failure added as context is found by anyhow's own downcast, not by walking the chain.
    err.downcast_ref::<Failure>()
        .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Failure>()))
}
