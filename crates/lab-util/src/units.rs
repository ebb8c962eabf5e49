//! Human-readable sizes.

pub const MIB: u64 = 1024 * 1024;

/// `134217728` → `128.0 MiB`.
pub fn bytes(n: f64) -> String {
    let abs = n.abs();
    if abs >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else if abs >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if abs >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n:.0} B")
    }
}
