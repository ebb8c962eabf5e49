//! Running a lab: bringing a part's environment up, executing its steps in order (the engine), and
//! the front ends — `verify` for CI (with JUnit), and the interactive and demo modes.

pub mod control;
pub mod demo;
pub mod engine;
pub mod fresh;
pub mod interactive;
pub mod junit;
pub mod mistakes;
pub mod mutations;
pub mod progress;
pub mod report;
pub mod terminal;
pub mod verify;
