//! The one error type of a CDP round trip.
//!
//! Higher-level operations wrap it in `anyhow` context ("setting a breakpoint at …"), so callers
//! that need to tell a timeout from a protocol error can `err.downcast_ref::<CdpError>()`.

use std::fmt;
use std::time::Duration;

/// What went wrong with one CDP method call (or with the connection under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdpError {
    /// No reply within the call's timeout. The process may be stopped (SIGSTOP), paused in the
    /// debugger, or busy with a blocked event loop.
    Timeout { method: String, after: Duration },
    /// Node answered with a CDP error object.
    Protocol {
        method: String,
        code: i64,
        message: String,
        data: Option<String>,
    },
    /// The connection ended (or was closed by us) before the reply arrived.
    Closed { method: String, reason: String },
    /// The message could not be sent.
    Send { method: String, reason: String },
}

impl CdpError {
    /// The CDP method the failed call was for.
    pub fn method(&self) -> &str {
        match self {
            CdpError::Timeout { method, .. }
            | CdpError::Protocol { method, .. }
            | CdpError::Closed { method, .. }
            | CdpError::Send { method, .. } => method,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, CdpError::Timeout { .. })
    }
}

impl fmt::Display for CdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CdpError::Timeout { method, after } => write!(
                f,
                "{method}: timed out after {} waiting for the inspector's reply \
                 (is the process stopped, paused at a breakpoint, or its event loop blocked?)",
                human(*after)
            ),
            CdpError::Protocol {
                method,
                code,
                message,
                data,
            } => {
                write!(f, "{method} failed: {message} (CDP error {code})")?;
                if let Some(data) = data {
                    write!(f, ": {data}")?;
                }
                Ok(())
            }
            CdpError::Closed { method, reason } => {
                write!(
                    f,
                    "{method}: no reply, the inspector connection is closed ({reason})"
                )
            }
            CdpError::Send { method, reason } => {
                write!(
                    f,
                    "{method}: could not send the request to the inspector: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for CdpError {}

/// `1.5s`, `250ms` — how durations appear in messages.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(100) {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_names_the_method() {
        let e = CdpError::Timeout {
            method: "Runtime.evaluate".into(),
            after: Duration::from_millis(300),
        };
        let text = e.to_string();
        assert!(text.contains("Runtime.evaluate"), "{text}");
        assert!(text.contains("timed out after 300ms"), "{text}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(10)), "10s");
    }
}
