//! lab-runner: runs guided, hands-on technical labs from declarative YAML and proves every step
//! against the live system.
//!
//! Where things live:
//! - [`cli`]: the command line (clap definitions and dispatch to the concerns below).
//! - [`lab`]: the lab format — model, loading with precise errors, template rendering, lint.
//! - [`env`]: where the lab app runs — one trait, a Docker backend and a local-process backend.
//! - [`probe`]: how the runner touches the running app — HTTP, Prometheus metrics, the inspector, tunnels.
//! - [`actions`]: performing a step's actions and judging its checks against the live system.
//! - [`analyze`]: reading what the lab captures — CPU profiles and heap snapshots.
//! - [`outcome`]: what came of an action, a phase and a step (a value, never an error found by downcast).
//! - [`session`]: running steps in order (the engine) and the front ends: verify, start, demo.

pub mod actions;
pub mod cli;
pub mod env;
pub mod outcome;
pub mod probe;
pub mod session;
pub mod util;
pub mod web;
pub mod workshop;

// The layers below the runner are crates of their own (crates/), so the compiler keeps them apart:
// none of them can name the runner. They keep their module names here.
pub use lab_format as lab;
pub use v8_analyze as analyze;
