//! The integration tests: one binary (linking the crate once, not once per file), a module per
//! concern. They run the real `lab-runner` binary against a real Node process and a real Docker
//! engine; `support` holds the policy for tests that need Docker (fail in CI, skip with a word
//! elsewhere).

mod analyze_support;
mod reliability_support;
mod support;

mod analyze_cli;
mod analyze_cpuprofile;
mod analyze_devtools;
mod analyze_heapsnapshot;
mod app_faults;
mod by_hand;
mod completions;
mod control;
mod demo;
mod doctor;
mod export;
mod generic_checks;
mod inspector_live;
mod lab_app;
mod lab_format_doc;
mod lint;
mod mistakes_and_mutations;
mod new_lab;
mod parts;
mod pull;
mod python_lab;
mod reliability_exposure;
mod reliability_faults;
mod reliability_fuzz_seeds;
mod reliability_input;
mod schema;
mod services;
mod start;
mod tunnel_live;
mod verify;
mod verify_step;
mod web;
mod web_browser;
mod web_devtools;
mod web_shell;
mod workshop;
