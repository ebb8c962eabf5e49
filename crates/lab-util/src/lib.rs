//! Small pure helpers shared by lab-runner's crates: durations (`90s`, `1m30s`), byte and time
//! units for tables, shell words (fitting a command to the terminal, the one shell quoting), and
//! the Prometheus text format (scrapes and selectors). No I/O, no runtime.

pub mod duration;
pub mod prometheus;
pub mod shell_lines;
pub mod text;
pub mod units;
