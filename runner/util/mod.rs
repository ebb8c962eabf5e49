//! Small shared helpers that belong to no single concern.

pub mod cache;
pub mod crypto;
pub mod ports;
pub mod random;
pub mod relay;
pub mod runner_pid;

// The pure ones are the crate `lab-util` (crates/lab-util), which the lab format and the
// analysers use too.
pub use lab_util::{duration, prometheus, shell_lines, text, units};
