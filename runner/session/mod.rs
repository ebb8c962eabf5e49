//! Running a lab: bringing a part's environment up, executing its steps in order (the engine), and
//! the front ends — `verify` for CI, and the interactive and demo modes. The front ends emit what
//! happens as events ([`events`]); reporters print them: the terminal ([`report`] for verify,
//! [`screen`] for demo and start, [`short_log`] for start's terminal beside its page), JUnit ([`junit`]) and JSON lines ([`json`]).

pub mod control;
pub mod demo;
pub mod engine;
pub mod events;
pub mod fresh;
pub mod inspector_link;
pub mod interactive;
pub mod isolated_shell;
pub mod json;
pub mod junit;
pub mod mistakes;
pub mod mutations;
pub mod progress;
pub mod report;
pub mod screen;
pub mod short_log;
pub mod terminal;
pub mod verify;
