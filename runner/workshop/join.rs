//! `start PART --join URL`: the participant's session reports its progress to the instructor's
//! workshop server, and nothing else ([`super::protocol`] says what). A reporter turns events into
//! progress and hands them to a sender task that posts them in batches over HTTPS to the server
//! whose certificate the address pins. The session never waits for it: when the server does not
//! answer, the progress is kept (the most recent items, up to a bound) and sent when it answers
//! again, and the participant is told once, not at every event.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio::sync::mpsc;

use super::protocol::{Batch, Progress, StepName};
use crate::session::events::{Event, Reporter};

/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(3);
/// The most progress items kept while the server does not answer.
const KEEP: usize = 1000;
/// How often a quiet session says it is still there.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long the end of a session waits for its last progress to go out.
const FLUSH: Duration = Duration::from_secs(2);

/// A join address: `https://HOST:PORT/join/CODE?pin=SHA256`.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinAddress {
    /// `https://HOST:PORT/join/CODE/progress`.
    pub progress_url: String,
    pub pin: String,
}

impl JoinAddress {
    pub fn parse(url: &str) -> Result<JoinAddress> {
        let shape = "a join address looks like https://HOST:PORT/join/CODE?pin=… (`lab-runner workshop up` prints it)";
        let Some(rest) = url.trim().strip_prefix("https://") else {
            bail!("{url:?} is not a join address: {shape}");
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some((host, code)) = path.split_once("/join/") else {
            bail!("{url:?} has no /join/CODE: {shape}");
        };
        let code = code.trim_end_matches('/');
        if host.is_empty() || code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("{url:?} has no host or no join code: {shape}");
        }
        let pin = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("pin="))
            .with_context(|| format!("{url:?} has no pin=…: {shape}"))?;
        super::tls::pinned_client_config(pin)?;
        Ok(JoinAddress {
            progress_url: format!("https://{host}/join/{code}/progress"),
            pin: pin.to_ascii_lowercase(),
        })
    }
}

/// The environment variable a workshop's seat is given its board id in, the same at every start
/// of the seat (one participant on the board, not one per session).
pub const PARTICIPANT_ENV: &str = "LAB_RUNNER_JOIN_PARTICIPANT";

/// The id this session reports under: [`PARTICIPANT_ENV`]'s when it is one (24 lowercase hex
/// digits), else a new one.
fn participant_id() -> String {
    std::env::var(PARTICIPANT_ENV)
        .ok()
        .filter(|id| id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .unwrap_or_else(|| crate::util::random::hex(12))
}

/// Hands a session's progress to the sender task.
pub struct JoinReporter {
    steps: Vec<StepName>,
    items: mpsc::UnboundedSender<Progress>,
    sender: Option<tokio::task::JoinHandle<()>>,
}

impl JoinReporter {
    /// Starts the sender for `address`; `steps`: the part's steps with their titles.
    pub fn start(
        address: &JoinAddress,
        name: String,
        lab: String,
        steps: Vec<StepName>,
    ) -> Result<JoinReporter> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(super::tls::pinned_client_config(&address.pin)?)
            .timeout(POST_TIMEOUT)
            .connect_timeout(POST_TIMEOUT)
            .build()
            .context("Failed to make the workshop client")?;
        let (items, receive) = mpsc::unbounded_channel();
        let sender = tokio::spawn(send_progress(
            client,
            address.progress_url.clone(),
            Batch {
                participant: participant_id(),
                name,
                lab,
                progress: Vec::new(),
            },
            receive,
        ));
        Ok(JoinReporter {
            steps,
            items,
            sender: Some(sender),
        })
    }
}

impl Reporter for JoinReporter {
    fn event(&mut self, event: &Event) {
        if let Some(item) = Progress::from_event(event, &self.steps) {
            let _ = self.items.send(item);
        }
    }

    fn finish(&mut self) -> Result<()> {
        let _ = self.items.send(Progress::Left);
        // The channel closes when the reporter goes; the sender sends what is left, then ends.
        let (closed, _) = mpsc::unbounded_channel();
        self.items = closed;
        if let Some(sender) = self.sender.take() {
            let handle = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| {
                let _ = handle.block_on(tokio::time::timeout(FLUSH, sender));
            });
        }
        Ok(())
    }
}

/// Posts what comes in, a batch at a time; keeps it while the server does not answer.
async fn send_progress(
    client: reqwest::Client,
    url: String,
    mut batch: Batch,
    mut receive: mpsc::UnboundedReceiver<Progress>,
) {
    let mut pending: std::collections::VecDeque<Progress> = Default::default();
    let mut open = true;
    let mut unreachable_said = false;
    let mut retry_in = Duration::from_millis(500);
    loop {
        if pending.is_empty() {
            if !open {
                return;
            }
            // Quiet for a while (a participant thinking): an empty batch says they are still here.
            match tokio::time::timeout(HEARTBEAT, receive.recv()).await {
                Ok(Some(item)) => pending.push_back(item),
                Ok(None) => return,
                Err(_) => {}
            }
        }
        while let Ok(item) = receive.try_recv() {
            pending.push_back(item);
        }
        while pending.len() > KEEP {
            pending.pop_front();
        }
        let n = pending.len().min(super::protocol::MAX_BATCH);
        batch.progress = pending.iter().take(n).cloned().collect();
        let sent = client.post(&url).json(&batch).send().await;
        match sent {
            Ok(answer) if answer.status().is_success() => {
                pending.drain(..n);
                retry_in = Duration::from_millis(500);
                if unreachable_said {
                    eprintln!(
                        "workshop: the instructor's server answers again; your progress is sent"
                    );
                    unreachable_said = false;
                }
            }
            Ok(answer) if answer.status().is_client_error() => {
                // The server will never take these (a wrong code, a malformed batch): say so once,
                // drop them, go on.
                let status = answer.status();
                let why = answer.text().await.unwrap_or_default();
                eprintln!(
                    "workshop: the instructor's server refused the progress ({status}: {}); your session goes on",
                    why.trim()
                );
                pending.drain(..n);
            }
            other => {
                if !unreachable_said {
                    let why = match other {
                        Ok(answer) => format!("it answered {}", answer.status()),
                        Err(e) => format!("{e}"),
                    };
                    eprintln!(
                        "workshop: the instructor's server is not answering ({why}); your session goes on, and your progress is sent when it answers"
                    );
                    unreachable_said = true;
                }
                // Wait, but wake for new progress (or the end) and keep it.
                let wait = tokio::time::sleep(retry_in);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        item = receive.recv(), if open => match item {
                            Some(item) => pending.push_back(item),
                            None => open = false,
                        },
                    }
                }
                retry_in = (retry_in * 2).min(Duration::from_secs(10));
            }
        }
        if !open && pending.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_join_address_is_https_with_a_code_and_a_pin() {
        let a =
            JoinAddress::parse(&format!("https://10.0.0.5:8443/join/ABC123?pin={PIN}")).unwrap();
        assert_eq!(a.progress_url, "https://10.0.0.5:8443/join/ABC123/progress");
        for bad in [
            format!("http://10.0.0.5:8443/join/ABC?pin={PIN}"),
            "https://10.0.0.5:8443/join/ABC".to_string(),
            "https://10.0.0.5:8443/join/ABC?pin=1234".to_string(),
            format!("https://10.0.0.5:8443/dashboard?pin={PIN}"),
            format!("https://10.0.0.5:8443/join/../x?pin={PIN}"),
        ] {
            let e = JoinAddress::parse(&bad).unwrap_err().to_string();
            assert!(
                e.contains("join address") || e.contains("pin"),
                "{bad}: {e}"
            );
        }
    }
}
