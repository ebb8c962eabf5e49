//! Where a running session's inspector is, for another face of the same session: the browser
//! guide's DevTools proxy (`web::devtools`) asks on every connection, so it always reaches the
//! session's *current* inspector (the address the session's `{{ inspector_addr }}` names now: the
//! published port, or the tunnel's local port once the participant forwards it).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow, bail};

use crate::actions::Context;
use crate::lab::Builtin;

/// A handle on the running session's variables, set while its environment is up. Cheap to clone.
#[derive(Clone, Default)]
pub struct InspectorLink {
    session: Arc<Mutex<Option<Context>>>,
}

impl InspectorLink {
    pub fn new() -> InspectorLink {
        InspectorLink::default()
    }

    /// The part's environment is up: its variables say where the inspector is from now on.
    pub fn attach(&self, ctx: &Context) {
        *self.session.lock().expect("inspector link lock") = Some(ctx.clone());
    }

    /// The environment is going: no inspector any more.
    pub fn detach(&self) {
        *self.session.lock().expect("inspector link lock") = None;
    }

    /// Where the session's inspector is reached on this host now; an error that says why there is
    /// none (no environment up, a part without an inspector). Only a loopback address is ever
    /// given: the inspector runs any code it is sent, so nothing else is reached through it.
    pub fn addr(&self) -> Result<SocketAddr> {
        let session = self.session.lock().expect("inspector link lock");
        let Some(ctx) = session.as_ref() else {
            bail!("the session's environment is not up (yet, or any more)");
        };
        let text = ctx.builtin(Builtin::InspectorAddr).map_err(|_| {
            anyhow!("this part's environment has no inspector (it runs without --inspect)")
        })?;
        let addr: SocketAddr = text
            .parse()
            .map_err(|_| anyhow!("the session's inspector_addr `{text}` is not an ip:port"))?;
        if !addr.ip().is_loopback() {
            bail!("the session's inspector_addr {addr} is not on this host's loopback");
        }
        Ok(addr)
    }
}
