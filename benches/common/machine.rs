//! What a bench says about the machine it ran on (shared by the benches that need Docker).

/// The load averages over 1, 5 and 15 minutes, as `/proc/loadavg` gives them.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
