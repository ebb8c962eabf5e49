//! `lab-runner tunnel`: forward a local loopback port into a lab container through Docker exec
//! (the `AWS-StartPortForwardingSession` of this lab), and keep it open until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use tokio::sync::broadcast;

use super::exit;
use super::run::UsageError;
use crate::env::docker::running::{self, LabContainer, Preference};
use crate::env::docker::{DockerClient, DockerError, INSPECTOR_PORT, connect};
use crate::lab::InspectorMode;
use crate::probe::tunnel::{Origin, Tunnel, TunnelEvent};
use crate::util::units;

const AFTER_HELP: &str = "\
Each connection to the local port gets its own `docker exec` of a tiny Node forwarder inside the \
container, which connects to the container's own --remote address: nothing is published, and the \
inspector keeps listening on 127.0.0.1 inside the container.

The AWS analogue (an ECS task, through SSM):
  aws ssm start-session --target ecs:<cluster>_<task-id>_<runtime-id> \\
    --document-name AWS-StartPortForwardingSessionToRemoteHost \\
    --parameters '{\"host\":[\"127.0.0.1\"],\"portNumber\":[\"9229\"],\"localPortNumber\":[\"9229\"]}'

Examples:
  docker kill --signal USR1 <container>   # open the inspector inside (ECS: aws ecs execute-command ... --command \"kill -USR1 1\")
  lab-runner tunnel                       # the lab's container, 127.0.0.1:9229 -> its 127.0.0.1:9229
  lab-runner tunnel --container lab-runner-1a2b3c4d-part3 --local 127.0.0.1:9300";

/// Forward a local port to the Node inspector inside a lab container, through Docker exec
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct TunnelArgs {
    /// The container to forward into [default: the one running lab container whose part opens
    /// the inspector on SIGUSR1, else the only running lab container]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Where to listen; loopback only [default: 127.0.0.1:9229, or a free port when 9229 is
    /// taken]
    #[arg(long, value_name = "127.0.0.1:PORT")]
    pub local: Option<SocketAddr>,
    /// Where to connect, as seen from inside the container
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9229")]
    pub remote: SocketAddr,
}

/// How often the inspector is probed until it answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the tunnel, says what it forwards, prints the DevTools URL once the inspector answers,
/// logs each connection, and closes everything on Ctrl-C (or SIGTERM), returning 0 — or when the
/// container is removed, returning 1.
pub async fn run(args: &TunnelArgs) -> Result<u8> {
    let docker = connect::connect().await?;
    let container = match &args.container {
        Some(name) => {
            running::require_running(&docker, name)
                .await
                .map_err(|e| UsageError(format!("the container {name:?} cannot be used: {e:#}")))?;
            name.clone()
        }
        None => default_container(&docker).await?,
    };
    let local = match args.local {
        Some(local) => local,
        None => default_local().await,
    };
    let docker = Arc::new(docker);
    let tunnel = Tunnel::open(docker.clone(), container.clone(), local, args.remote)
        .await
        .map_err(|e| {
            if local.ip().is_loopback() {
                e.context(format!(
                    "Failed to open the tunnel (is {local} taken? choose another --local)"
                ))
            } else {
                UsageError(format!("{e:#}")).into()
            }
        })?;
    let local = tunnel.local_addr();
    say(&format!(
        "Forwarding {local} → {} inside the container {container} (one `docker exec` per \
         connection; nothing is published).",
        args.remote
    ));
    say("Press Ctrl-C to close the tunnel.");

    let started = Instant::now();
    let log = tokio::spawn(log_connections(tunnel.subscribe(), started));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("Failed to listen for SIGTERM")?;
    let gone = container_removed(&docker, &container);
    tokio::pin!(gone);
    let mut removed = false;
    tokio::select! {
        _ = announce_when_ready(&tunnel) => {
            // Announced; keep forwarding until told to stop or the container goes.
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = &mut gone => removed = true,
            }
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = &mut gone => removed = true,
    }
    if removed {
        say(&format!(
            "\nThe container {container} was removed (its lab session ended?): nothing is left \
             to forward to."
        ));
    }
    let open = tunnel.connections();
    say(&format!(
        "\nClosing the tunnel ({open} open connection(s))…"
    ));
    let closed = tunnel.close().await;
    // Let the last close events print.
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.abort();
    closed?;
    say(&format!(
        "Tunnel closed: nothing listens on {local}, no forwarder runs in {container}."
    ));
    Ok(if removed { exit::FAILED } else { exit::SUCCESS })
}

/// Prints `text`, each of its lines fitted to the terminal when stdout is one (broken between
/// words, so an address or a URL stays whole and can be copied).
fn say(text: &str) {
    let width = crate::session::terminal::Terminal::detect().width();
    for line in fit(text, width) {
        println!("{line}");
    }
}

/// `text`'s lines, each one longer than `width` characters broken between words into pieces of at
/// most that, the pieces of an indented line indented as it is; unchanged without a width.
fn fit(text: &str, width: Option<usize>) -> Vec<String> {
    let Some(width) = width else {
        return text.lines().map(str::to_string).collect();
    };
    text.lines()
        .flat_map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            if line.chars().count() <= width {
                return vec![line.to_string()];
            }
            let room = width.saturating_sub(indent.chars().count()).max(20);
            crate::util::text::wrap(line, room)
                .into_iter()
                .map(|piece| format!("{indent}{piece}"))
                .collect()
        })
        .collect()
}

/// How often the tunnel asks whether its container still exists.
const CONTAINER_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Returns once the engine says `container` no longer exists. A stopped or restarting container
/// keeps the tunnel open (a restart keeps its name); an engine that does not answer is asked
/// again, each call within the client's own time limit.
async fn container_removed(docker: &DockerClient, container: &str) {
    loop {
        tokio::time::sleep(CONTAINER_CHECK_EVERY).await;
        if let Err(DockerError::NotFound { .. }) = docker.inspect_container(container).await {
            return;
        }
    }
}

/// Probes the inspector through the tunnel until it answers, then prints how to attach.
async fn announce_when_ready(tunnel: &Tunnel) {
    let mut last_failure = String::new();
    loop {
        match tunnel.inspector_targets(PROBE_TIMEOUT).await {
            Ok(targets) if !targets.is_empty() => {
                let local = tunnel.local_addr();
                println!("The inspector answers through the tunnel:");
                for target in &targets {
                    println!(
                        "  {}  {}\n  DevTools: {}",
                        target.title,
                        target.url,
                        devtools_url(local, &target.id)
                    );
                }
                say(&format!(
                    "  (or chrome://inspect → Configure… → add {local}; the id changes each time \
                     the inspector opens)"
                ));
                return;
            }
            Ok(_) => {
                let text = "the inspector answers but lists no target".to_string();
                if text != last_failure {
                    println!("Waiting: {text}.");
                    last_failure = text;
                }
            }
            Err(e) => {
                let text = without_connection_id(&format!("{e:#}"));
                if text != last_failure {
                    say(&format!("Waiting for the inspector: {text}"));
                    last_failure = text;
                }
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// `devtools://…&ws=127.0.0.1:PORT/<id>`: what to paste into Chrome's address bar.
pub fn devtools_url(local: SocketAddr, target_id: &str) -> String {
    crate::probe::inspector::devtools_url(&format!("{local}/{target_id}"))
}

/// Diagnoses start with `connection N: `; the same failure on the next probe is not news.
fn without_connection_id(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("connection ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "connection ".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(": ") {
            rest = &after[digits + 2..];
        } else {
            out.push_str("connection ");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Prints one line when a client's connection opens and one when it closes (the runner's own
/// probes are not shown).
async fn log_connections(mut events: broadcast::Receiver<TunnelEvent>, started: Instant) {
    loop {
        let at = || format!("[{:>7.1}s]", started.elapsed().as_secs_f64());
        match events.recv().await {
            Ok(TunnelEvent::Opened {
                id,
                origin: Origin::Client(peer),
            }) => println!("{} #{id} opened from {peer}", at()),
            Ok(TunnelEvent::Closed(summary)) if summary.origin != Origin::Dial => {
                say(&format!(
                    "{} #{} closed after {:.1}s: {} to the container, {} back{}",
                    at(),
                    summary.id,
                    summary.duration.as_secs_f64(),
                    units::bytes(summary.to_remote as f64),
                    units::bytes(summary.to_client as f64),
                    match &summary.diagnosis {
                        Some(d) => format!("\n           {}", without_connection_id(&d.message)),
                        None => String::new(),
                    }
                ));
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                println!("{} ({n} connection events not shown)", at())
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// 127.0.0.1:9229 when it is free; otherwise a free port, said.
async fn default_local() -> SocketAddr {
    let preferred = SocketAddr::from((Ipv4Addr::LOCALHOST, INSPECTOR_PORT));
    match tokio::net::TcpListener::bind(preferred).await {
        Ok(probe) => {
            drop(probe);
            preferred
        }
        Err(e) => {
            say(&format!(
                "{preferred} is not available ({e}; a local `node --inspect`?): listening on a \
                 free port instead."
            ));
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
        }
    }
}

/// The running lab container whose part opens the inspector on SIGUSR1, else the only one.
async fn default_container(docker: &DockerClient) -> Result<String> {
    let candidates = running::lab_containers(docker).await?;
    // The lab says which parts open the inspector on a signal; without it, that is unknown.
    let lab = crate::lab::load(&super::run::default_lab_dir()).ok();
    let on_signal = |c: &LabContainer| {
        lab.as_ref()
            .filter(|l| l.id() == c.lab)
            .and_then(|l| l.part(&c.part).map(|p| l.environment(p).inspector))
            == Some(InspectorMode::OnSignal)
    };
    let preference = Preference {
        what: "open their inspector on SIGUSR1",
        holds: &on_signal,
    };
    running::the_one(candidates, Some(&preference))
        .map(|c| c.name)
        .map_err(|e| UsageError(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        tunnel: TunnelArgs,
    }

    #[test]
    fn arguments_and_help() {
        let cli = Cli::try_parse_from(["tunnel"]).expect("no arguments needed");
        assert_eq!(cli.tunnel.container, None);
        assert_eq!(cli.tunnel.local, None);
        assert_eq!(cli.tunnel.remote, "127.0.0.1:9229".parse().expect("addr"));
        let cli = Cli::try_parse_from(["tunnel", "--container", "c", "--local", "127.0.0.1:9300"])
            .expect("valid");
        assert_eq!(
            cli.tunnel.local,
            Some("127.0.0.1:9300".parse().expect("addr"))
        );
        assert!(Cli::try_parse_from(["tunnel", "--local", "localhost:9"]).is_err());

        let help = TunnelArgs::augment_args(clap::Command::new("tunnel"))
            .render_long_help()
            .to_string();
        for needle in [
            "AWS-StartPortForwardingSessionToRemoteHost",
            "ecs:<cluster>_<task-id>_<runtime-id>",
            "\"localPortNumber\":[\"9229\"]",
            "lab-runner tunnel --container",
        ] {
            assert!(help.contains(needle), "{needle:?} not in:\n{help}");
        }
        let _ = Cli::command();
    }

    #[test]
    fn devtools_url_and_repeated_failures() {
        assert_eq!(
            devtools_url("127.0.0.1:9229".parse().expect("addr"), "abc-1"),
            "devtools://devtools/bundled/inspector.html?ws=127.0.0.1:9229/abc-1"
        );
        assert_eq!(
            without_connection_id("GET x: connection 12: nothing listens (connection reset)"),
            "GET x: nothing listens (connection reset)"
        );
    }

    #[test]
    fn prose_is_fitted_to_the_terminal_between_words() {
        let said = "\nThe container lab-runner-1a2b3c4d-part3 was removed (its lab session ended?): \
                    nothing is left to forward to.";
        let fitted = fit(said, Some(40));
        assert_eq!(
            fitted,
            [
                "",
                "The container lab-runner-1a2b3c4d-part3",
                "was removed (its lab session ended?):",
                "nothing is left to forward to.",
            ]
        );
        // An indented line keeps its indent on every piece; a URL longer than the width stays whole.
        let url = devtools_url("127.0.0.1:9229".parse().expect("addr"), "abc-1");
        assert_eq!(
            fit(&format!("  (or open {url} in Chrome)"), Some(30)),
            ["  (or open", &format!("  {url}"), "  in Chrome)"]
        );
        // A line that fits is left as it is, its spaces too (the connections' aligned times).
        assert_eq!(
            fit("[    4.1s] #2 opened", Some(40)),
            ["[    4.1s] #2 opened"]
        );
        // Not a terminal: lines as they are.
        assert_eq!(fit("a b\nc", None), ["a b", "c"]);
    }
}
