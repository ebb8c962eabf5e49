//! Host ports on loopback.

use std::net::{Ipv4Addr, TcpListener};

/// A port that is free on 127.0.0.1 right now (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether `port` can be bound on 127.0.0.1 right now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// `preferred` when it is free; otherwise `None` (let the engine pick), saying so through `report`.
pub fn preferred_or_free(preferred: u16, report: &dyn Fn(&str)) -> Option<u16> {
    if is_free(preferred) {
        Some(preferred)
    } else {
        report(&format!(
            "port {preferred} on 127.0.0.1 is taken by another program; using another free port instead"
        ));
        None
    }
}

/// Why a port the user fixed (`--fixed-ports`) cannot be used. There is no silent fallback: they
/// asked for that port (to type its URL, say), so another one would not be what they asked for.
pub fn fixed_port_taken(port: u16) -> anyhow::Error {
    anyhow::anyhow!(
        "port {port} on 127.0.0.1 is taken by another program, and --fixed-ports asks for it: free it \
         (`ss -ltnp 'sport = :{port}'` shows who holds it), or run without --fixed-ports to use a free port"
    )
}

/// `port` when it is free; otherwise the [`fixed_port_taken`] error.
pub fn require_free(port: u16) -> anyhow::Result<u16> {
    if is_free(port) {
        Ok(port)
    } else {
        Err(fixed_port_taken(port))
    }
}
