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
