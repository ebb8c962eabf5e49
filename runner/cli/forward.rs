//! `lab-runner forward` (hidden): the first process of a participant's terminal container
//! (`env::docker::terminal`). It makes the addresses the guide shows work inside that container as
//! they do on the host: `127.0.0.1:<the app's host port>` reaches the app on the environment's
//! network, and the port the guide's tunnel listens on is reachable from the host, where the
//! step's check looks for it. Each `LISTEN=TARGET` pair listens on `LISTEN` and carries every
//! connection to `TARGET` (a name on the environment's network, resolved per connection, so a
//! recreated app is found again). It runs until SIGTERM.

use anyhow::{Context as _, Result, anyhow};
use clap::Args;
use tokio::net::TcpListener;

use super::exit;

/// Carry connections from local addresses to others (the terminal container's own first process)
#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// LISTEN=TARGET pairs, such as 127.0.0.1:41234=app:3000
    #[arg(required = true, value_name = "LISTEN=TARGET")]
    pub pairs: Vec<String>,
}

/// One pair of [`ForwardArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub listen: String,
    pub target: String,
}

impl Pair {
    pub fn parse(text: &str) -> Result<Pair> {
        let (listen, target) = text.split_once('=').ok_or_else(|| {
            anyhow!("`{text}` is not LISTEN=TARGET (such as 127.0.0.1:41234=app:3000)")
        })?;
        for (what, addr) in [("listen on", listen), ("carry to", target)] {
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("`{addr}` (to {what}) has no :PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(anyhow!("`{addr}` (to {what}) is not HOST:PORT"));
            }
        }
        Ok(Pair {
            listen: listen.to_string(),
            target: target.to_string(),
        })
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.listen, self.target)
    }
}

pub async fn run(args: ForwardArgs) -> Result<u8> {
    let pairs = args
        .pairs
        .iter()
        .map(|p| Pair::parse(p))
        .collect::<Result<Vec<_>>>()?;
    let mut listeners = Vec::new();
    for pair in pairs {
        let listener = TcpListener::bind(&pair.listen)
            .await
            .with_context(|| format!("Failed to listen on {} (for {pair})", pair.listen))?;
        listeners.push((listener, pair));
    }
    for (listener, pair) in listeners {
        tokio::spawn(crate::util::relay::carry(listener, pair.target));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("Failed to wait for SIGTERM")?;
    term.recv().await;
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_listen_equals_target_with_ports() {
        assert_eq!(
            Pair::parse("127.0.0.1:41234=app:3000").unwrap(),
            Pair {
                listen: "127.0.0.1:41234".into(),
                target: "app:3000".into()
            }
        );
        for bad in [
            "127.0.0.1:41234",
            "127.0.0.1=app:3000",
            "127.0.0.1:1=app:x",
            ":1=app:2",
        ] {
            assert!(Pair::parse(bad).is_err(), "{bad} was taken");
        }
    }
}
