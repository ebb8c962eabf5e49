//! The browser face of a session: `start --web` (the participant's guide) and `demo --web` (the
//! presenter view). The same session as the terminal's: its events reach the page through one more
//! reporter ([`state::GuideReporter`]), and the page's buttons send the terminal menu's choices into
//! the same place the terminal's keys enter (`session::interactive`'s input). The page is rendered
//! from the same Markdown the terminal shows ([`markdown`]), every asset is embedded, and the server
//! is safe by construction ([`security`]). Chrome DevTools reaches the session's inspector through
//! the same server ([`devtools`]), so a participant who has only the page has DevTools too.

pub mod devtools;
pub mod markdown;
pub mod security;
pub mod server;
pub mod shell;
pub mod state;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

use crate::actions::context::Asker;
use crate::session::demo::PaceControl;
use crate::session::events::Reporter;
use crate::session::inspector_link::InspectorLink;
use crate::session::interactive::{Choice, OnReady};
use server::{OnAction, Refusal, Server};
use shell::PageShell;
use state::{GuideReporter, MAIN_TERMINAL, PageSetup, Shared};

pub use state::PartSummary;

/// A served page: its URL (with the token) and the state its reporter keeps.
pub struct Face {
    pub url: String,
    pub shared: Arc<Mutex<Shared>>,
    _server: Server,
    /// The terminal panel (`start --web --shell`).
    shell: Option<Arc<PageShell>>,
}

impl Face {
    /// The session is over: the panel's commands get Ctrl-C, the pages get the last change, their
    /// streams end, the server stops.
    pub async fn finish(mut self) {
        if let Some(shell) = &self.shell {
            shell.close().await;
        }
        self.shared.lock().expect("page state lock").end();
        self._server.finish().await;
    }

    /// What hands the session's context to the terminal panel once the environment is up (with
    /// `--shell`).
    pub fn on_ready(&self) -> Option<OnReady> {
        let shell = self.shell.clone()?;
        Some(Box::new(move |ctx: &crate::actions::Context| {
            shell.ready(ctx)
        }))
    }

    /// The reporter that feeds this page from the session's events.
    pub fn reporter(&self) -> Box<dyn Reporter> {
        Box::new(GuideReporter::new(self.shared.clone()))
    }
}

async fn serve(
    view: &'static str,
    setup: PageSetup,
    port: u16,
    on_action: OnAction,
    inspector: Option<InspectorLink>,
    with_shell: bool,
) -> Result<Face> {
    let token = page_token()?;
    let shared = Arc::new(Mutex::new(Shared::new(view, setup)));
    let shell = with_shell.then(|| Arc::new(PageShell::new(shared.clone())));
    let server = server::serve(
        port,
        token.clone(),
        shared.clone(),
        on_action,
        inspector,
        shell.clone(),
    )
    .await?;
    Ok(Face {
        url: format!("http://127.0.0.1:{}/?token={token}", server.addr.port()),
        shared,
        _server: server,
        shell,
    })
}

/// The environment variable a page's token may be given in, instead of a new one (a workshop's
/// seats: started again, a seat keeps its address). Not an argument: every local user sees argv.
pub const TOKEN_ENV: &str = "LAB_RUNNER_PAGE_TOKEN";

/// The page's token: the one [`TOKEN_ENV`] gives, or a new one. A given one must look like one
/// lab-runner makes (128 bits as 32 lowercase hex digits), or it is a usage error.
fn page_token() -> Result<String> {
    match std::env::var(TOKEN_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(crate::util::random::token()),
        Ok(token) if is_token(&token) => Ok(token),
        _ => Err(crate::outcome::UsageError(format!(
            "{TOKEN_ENV} is not a page token: it must be 32 lowercase hex digits (128 bits), as \
             lab-runner makes them; unset it for a new one"
        ))
        .into()),
    }
}

/// Whether `text` looks like a token lab-runner makes ([`crate::util::random::token`]).
pub fn is_token(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How long the page has to answer a check's question.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The longest answer the page may send.
const MAX_ANSWER: usize = 1000;

/// Asks a check's questions on the page (`start --web` without a terminal): the question is shown
/// with a field, and the check waits for the answer the page posts.
pub struct PageAsker {
    shared: Arc<Mutex<Shared>>,
    answers: Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Asker for PageAsker {
    fn ask(&self, question: &str) -> Result<String> {
        let answers = self.answers.lock().expect("answers lock");
        // An answer left from an earlier question is not this one's.
        while answers.try_recv().is_ok() {}
        self.shared
            .lock()
            .expect("page state lock")
            .set_question(Some(question.to_string()));
        let answer = answers.recv_timeout(ANSWER_TIMEOUT);
        self.shared
            .lock()
            .expect("page state lock")
            .set_question(None);
        answer.map_err(|_| {
            anyhow::anyhow!(
                "no answer came from the page within {} minutes",
                ANSWER_TIMEOUT.as_secs() / 60
            )
        })
    }
}

/// The participant's guide for `start --web`: the page, the choices its buttons send (the
/// terminal menu's, taken only while the session offers its menu), the asker that puts a
/// check's questions on the page, and DevTools' WebSocket to wherever `inspector` says the
/// session's inspector is. With `shell` (`--shell`), the page has a terminal panel too.
pub async fn serve_start(
    setup: PageSetup,
    port: u16,
    inspector: InspectorLink,
    shell: bool,
) -> Result<(Face, mpsc::Receiver<Choice>, PageAsker)> {
    let (send, receive) = mpsc::channel(1);
    let (answer, answers) = std::sync::mpsc::channel::<String>();
    let on_action: OnAction = Arc::new(move |name, shared| {
        // An answer to the question on the page: `answer:TEXT`, only while one is asked.
        if let Some(text) = name.strip_prefix("answer:") {
            if shared.page.status.question.is_none() || text.len() > MAX_ANSWER {
                return Err(Refusal::Busy);
            }
            answer.send(text.to_string()).map_err(|_| Refusal::Busy)?;
            return Ok(());
        }
        let choice = Choice::named(name).ok_or(Refusal::Unknown)?;
        if !shared.page.status.waiting {
            return Err(Refusal::Busy);
        }
        // A check judged, or work done for the participant, while their own command still runs
        // would see its half-done state.
        if shared.terminal_running(MAIN_TERMINAL).is_some() {
            return Err(Refusal::Terminal);
        }
        send.try_send(choice).map_err(|_| Refusal::Busy)?;
        shared.chosen();
        Ok(())
    });
    let face = serve("start", setup, port, on_action, Some(inspector), shell).await?;
    let asker = PageAsker {
        shared: face.shared.clone(),
        answers: Mutex::new(answers),
    };
    Ok((face, receive, asker))
}

/// The presenter view for `demo --web`: the page, and the pace control its buttons send.
pub async fn serve_demo(
    setup: PageSetup,
    port: u16,
) -> Result<(Face, mpsc::UnboundedReceiver<PaceControl>)> {
    let (send, receive) = mpsc::unbounded_channel();
    let on_action: OnAction = Arc::new(move |name, shared| {
        let pace = match name {
            "next" => PaceControl::Next,
            "pause" => PaceControl::TogglePause,
            _ => return Err(Refusal::Unknown),
        };
        send.send(pace).map_err(|_| Refusal::Busy)?;
        if pace == PaceControl::TogglePause {
            let paused = !shared.page.status.paused;
            shared.set_paused(paused);
        }
        Ok(())
    });
    Ok((
        serve("demo", setup, port, on_action, None, false).await?,
        receive,
    ))
}

/// Opens `url` in the default browser when there is a display to show it on; says what it did.
pub fn open_in_browser(url: &str) -> Option<String> {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if display {
        "xdg-open"
    } else {
        return None;
    };
    let mut child = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Reaped when it exits, without holding the session up.
    std::thread::spawn(move || child.wait());
    Some(format!("opened it in your browser ({opener})"))
}

#[cfg(test)]
mod tests {
    use super::is_token;

    #[test]
    fn a_given_token_must_look_like_one_lab_runner_makes() {
        assert!(is_token(&crate::util::random::token()));
        assert!(is_token("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef 123456789abcdef",
            "dev-token-123",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }
}
