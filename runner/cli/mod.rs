//! The command line: clap definitions ([`args`]), one file per command that needs more than a few
//! lines of glue, and the dispatch of each command to the concern that does the work ([`run`]).

pub mod analyze;
pub mod args;
pub mod completions;
pub mod control;
pub mod doctor;
pub mod exit;
pub mod export;
pub mod forward;
pub mod new;
pub mod pull;
pub mod run;
pub mod schema;
pub mod tunnel;
pub mod watch;
pub mod workshop;

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line once and runs the command.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    crate::util::cache::remember_shell_syntax();
    run::run(cli)
}
