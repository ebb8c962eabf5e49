//! Exit codes. Documented in README.md ("Exit codes"); scripts may rely on them.

use std::process::ExitCode;

/// Everything asked for was done and every check passed.
pub const SUCCESS: u8 = 0;
/// At least one step or check failed (the diagnosis was printed).
pub const FAILED: u8 = 1;
/// The command line or the lab's files are wrong (lint errors, unknown part, bad arguments).
pub const USAGE: u8 = 2;
/// Docker was needed and is not reachable.
pub const DOCKER_UNAVAILABLE: u8 = 3;
/// Something else went wrong (an environment could not start, a file could not be written).
pub const ERROR: u8 = 4;
/// Stopped by Ctrl-C or SIGTERM (after cleaning up).
pub const INTERRUPTED: u8 = 130;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
