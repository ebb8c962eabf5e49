//! `tunnel:` — the session's port-forward into the container through Docker exec, and what can be
//! seen through it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use serde_json::json;

use super::Context;
use crate::lab::{Builtin, TunnelAction};
use crate::outcome::{Done, Failure};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

fn addr(text: &str, what: &str) -> Result<SocketAddr> {
    text.parse()
        .map_err(|_| anyhow!("{what} `{text}` is not ip:port"))
}

pub async fn perform(ctx: &Context, action: &TunnelAction) -> Done {
    match action {
        TunnelAction::Open(open) => {
            let local = addr(&open.local, "tunnel local")?;
            let remote = addr(&open.remote, "tunnel remote")?;
            let env = ctx.env().read().await;
            let container = env.facts().name;
            ctx.show_command(&format!(
                "lab-runner tunnel --container {container} --local {local} --remote {remote}"
            ));
            let tunnel = env.open_tunnel(local, remote).await?;
            drop(env);
            let at = tunnel.local_addr();
            if let Some(old) = ctx.tunnel().lock().await.replace(tunnel) {
                old.close().await.ok();
            }
            ctx.set_var(Builtin::TunnelAddr.name(), json!(at.to_string()));
            ctx.set_var(Builtin::InspectorAddr.name(), json!(at.to_string()));
            ctx.narrate(&format!(
                "tunnel: {at} → {remote} inside {container} (one docker exec per connection)"
            ));
            Ok(())
        }
        TunnelAction::Close => {
            if let Some(tunnel) = ctx.tunnel().lock().await.take() {
                let at = tunnel.local_addr();
                tunnel.close().await.context("Failed to close the tunnel")?;
                ctx.narrate(&format!("tunnel on {at} closed"));
            }
            Ok(())
        }
        TunnelAction::Closed => {
            if let Some(tunnel) = ctx
                .tunnel()
                .lock()
                .await
                .as_ref()
                .filter(|t| !t.is_closed())
            {
                return Err(Failure::new(
                    "the tunnel",
                    "closed",
                    format!("still listening on {}", tunnel.local_addr()),
                )
                .hint(ctx.step_hint())
                .into());
            }
            if let Ok(at) = ctx.builtin(Builtin::TunnelAddr) {
                let at = addr(&at, "tunnel_addr")?;
                if tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(at))
                    .await
                    .is_ok_and(|c| c.is_ok())
                {
                    return Err(Failure::new(
                        format!("{at}"),
                        "nothing listening (the tunnel closed)",
                        "a listener accepted a connection",
                    )
                    .hint(Some("stop `lab-runner tunnel` with Ctrl-C"))
                    .into());
                }
            }
            ctx.narrate("no tunnel listening");
            Ok(())
        }
        TunnelAction::InspectorReachable(expected) => {
            let remote = ctx.builtin(Builtin::InspectorInside)?;
            let remote = addr(&remote, "inspector_inside")?;
            let (probe, container) = {
                let env = ctx.env().read().await;
                let probe = env
                    .open_tunnel(addr("127.0.0.1:0", "the probe's address")?, remote)
                    .await?;
                (probe, env.facts().name)
            };
            let seen = probe.inspector_targets(ctx.patience(PROBE_TIMEOUT)).await;
            probe.close().await.ok();
            let reachable = seen.as_ref().is_ok_and(|targets| !targets.is_empty());
            ctx.narrate(&format!(
                "the inspector at {remote} inside {container} is {}",
                if reachable { "open" } else { "closed" }
            ));
            if reachable == *expected {
                return Ok(());
            }
            let saw = match seen {
                Ok(targets) => format!("it answers /json/list ({} target(s))", targets.len()),
                Err(e) => format!("{e:#}"),
            };
            Err(Failure::new(
                format!("the inspector at {remote} inside {container}"),
                if *expected {
                    "open (answering /json/list)"
                } else {
                    "closed (nothing listening)"
                },
                saw,
            )
            .hint(ctx.step_hint())
            .into())
        }
    }
}
