//! The command line.
pub mod analyze;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
