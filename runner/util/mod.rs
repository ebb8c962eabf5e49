//! Small shared helpers that belong to no single concern.

pub mod duration;
pub mod ports;
pub mod prometheus;
pub mod random;
pub mod shell_lines;
pub mod units;
