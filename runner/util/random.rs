//! Random identifiers: per-session tokens and session ids.

/// `n_bytes` random bytes from the OS, as lowercase hex.
pub fn hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh lab token: 32 hex characters (128 bits). Never a fixed `dev-token-123`.
pub fn token() -> String {
    hex(16)
}

/// A short session id, used in container, network and label names.
pub fn session_id() -> String {
    hex(4)
}
