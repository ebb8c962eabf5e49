//! `port:` — wait until a TCP port accepts connections (or refuses them), from the participant's side.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Context;
use crate::lab::PortWait;
use crate::outcome::{Done, Failure, Problem};

/// How long to wait unless the action says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_millis(100);

pub async fn perform(ctx: &Context, wait: &PortWait) -> Done {
    let timeout = ctx.patience(
        wait.timeout
            .as_ref()
            .map(|d| d.get())
            .unwrap_or(DEFAULT_TIMEOUT),
    );
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::lookup_host(wait.address.as_str()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("looking up {} took over a second", wait.address))?
    .with_context(|| format!("`{}` is not a host:port address", wait.address))?
    .collect();
    let started = Instant::now();
    let last = loop {
        let answer = attempt(&addrs).await;
        let open = answer.is_ok();
        if open == wait.open {
            ctx.narrate(&format!(
                "{} {} ({} ms)",
                wait.address,
                if open {
                    "accepts connections"
                } else {
                    "refuses connections"
                },
                started.elapsed().as_millis()
            ));
            return Ok(());
        }
        if started.elapsed() + INTERVAL >= timeout {
            break match answer {
                Ok(()) => "it accepts connections".to_string(),
                Err(e) => e,
            };
        }
        tokio::time::sleep(INTERVAL).await;
    };
    Err(Problem::Check(
        Failure::new(
            format!("the TCP port {}", wait.address),
            format!(
                "{} (waited {:.1} s)",
                if wait.open {
                    "to accept connections"
                } else {
                    "to refuse connections"
                },
                timeout.as_secs_f64()
            ),
            last,
        )
        .hint(ctx.step_hint()),
    ))
}

/// One connection to the first address that answers; what went wrong otherwise.
async fn attempt(addrs: &[std::net::SocketAddr]) -> Result<(), String> {
    let mut why = "no address".to_string();
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => why = format!("{addr}: {e}"),
            Err(_) => why = format!("{addr}: no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        }
    }
    Err(why)
}
