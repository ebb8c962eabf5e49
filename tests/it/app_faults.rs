//! A broken lab app must be caught: `lab-runner verify` against the shipped lab with the lab app's
//! test-only fault switch on (`LAB_FAULT`, lab-app/test-support/faults.js), one fault at a time. Each
//! fault breaks one behaviour the lab teaches and keeps the rest looking right; the test asserts the
//! step that catches it (the first step to fail, run with --fail-fast) and that the failure says
//! something about what broke. docs/FAULTS.md lists the same table.
//!
//! The lab is copied into a temp folder per fault: `app.files` gains test-support/faults.js (the
//! shipped lab's image holds package.json and src/ only, so the switch is inert there), and every
//! environment gains `LAB_FAULT=<name>`; the production-mode environments (Parts 2 and 3) also get the
//! explicit, test-only `LAB_FAULT_IN_PRODUCTION=true`, without which the app ignores the fault.
//! That the unbroken lab passes is proven by the parts' own verify tests (parts.rs, verify.rs).
//!
//! Faults run three at a time (each a verify of one part, 5–30 s); `FIGURE` lines give the times.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// One fault: the part it is run against, the step that must catch it, and words of which at least
/// one must appear in that step's diagnosis (lower case).
struct Fault {
    name: &'static str,
    part: &'static str,
    step: &'static str,
    diagnosis: &'static [&'static str],
}

const FAULTS: &[Fault] = &[
    // Part 1: the local inspector.
    Fault {
        name: "inspector-closed",
        part: "part1",
        step: "1.1",
        diagnosis: &["/json/list"],
    },
    Fault {
        name: "inspector-url-wrong",
        part: "part1",
        step: "1.1",
        diagnosis: &["/inspectorurl"],
    },
    Fault {
        name: "debugger-attached-fake",
        part: "part1",
        step: "1.2",
        diagnosis: &["the check passed before the solve ran"],
    },
    Fault {
        name: "jam-elsewhere",
        part: "part1",
        step: "1.3",
        diagnosis: &["never paused"],
    },
    Fault {
        name: "jam-not-counted",
        part: "part1",
        step: "1.3.4",
        diagnosis: &["lab_event_loop_jams_total"],
    },
    Fault {
        name: "clear-keeps-buffers",
        part: "part1",
        step: "1.5",
        diagnosis: &["backing stores"],
    },
    // Part 2: production-style, over HTTP.
    Fault {
        name: "lab-always-on",
        part: "part2",
        step: "2.0",
        diagnosis: &["404"],
    },
    Fault {
        name: "token-accepts-anything",
        part: "part2",
        step: "2.1",
        diagnosis: &["401"],
    },
    Fault {
        name: "production-gate-open",
        part: "part2",
        step: "2.1",
        diagnosis: &["403"],
    },
    Fault {
        name: "jam-yields",
        part: "part2",
        step: "2.2",
        diagnosis: &["lab_event_loop_delay_max_seconds"],
    },
    Fault {
        name: "lag-metrics-flat",
        part: "part2",
        step: "2.2",
        diagnosis: &["lab_event_loop_delay_max_seconds"],
    },
    Fault {
        name: "lag-max-flat",
        part: "part2",
        step: "2.3",
        diagnosis: &["nodejs_eventloop_lag_max_seconds"],
    },
    Fault {
        name: "profile-misses-jam",
        part: "part2",
        step: "2.3",
        diagnosis: &["time in blockeventloop"],
    },
    Fault {
        name: "leak-not-kept",
        part: "part2",
        step: "2.4",
        diagnosis: &["nodejs_external_memory_bytes"],
    },
    Fault {
        name: "external-metric-frozen",
        part: "part2",
        step: "2.4",
        diagnosis: &["nodejs_external_memory_bytes"],
    },
    Fault {
        name: "snapshot-other-heap",
        part: "part2",
        step: "2.5",
        diagnosis: &["backing stores"],
    },
    Fault {
        name: "snapshot-stale",
        part: "part2",
        step: "2.5",
        diagnosis: &["backing stores"],
    },
    Fault {
        name: "clear-keeps-buffers",
        part: "part2",
        step: "2.6",
        diagnosis: &["nodejs_external_memory_bytes"],
    },
    // Part 3: the remote inspector.
    Fault {
        name: "inspector-open-at-start",
        part: "part3",
        step: "3.1",
        diagnosis: &["inspectorurl", "inspector"],
    },
    Fault {
        name: "sigusr1-ignored",
        part: "part3",
        step: "3.2",
        diagnosis: &["debugger listening"],
    },
    Fault {
        name: "inspector-url-null",
        part: "part3",
        step: "3.2",
        diagnosis: &["/inspectorurl"],
    },
];

/// How many verifies run at once (each runs one container; the machine has 2 cores).
const AT_ONCE: usize = 3;
/// A whole part takes under a minute; a verify that hangs is a failure, not a stuck test.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(240);

/// The shipped lab, copied, with `fault` switched on in every environment.
fn lab_with_fault(fault: &str) -> tempfile::TempDir {
    let dir = copy_lab(&shipped_lab());
    let path = dir.path().join("lab.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let files = "  files: [package.json, src]\n";
    assert!(
        text.contains(files),
        "lab.yaml's app.files changed: {files:?}"
    );
    let mut text = text.replace(
        files,
        "  files: [package.json, src, test-support/faults.js]\n",
    );
    for (node_env, in_production) in [("development", false), ("production", true)] {
        let env = format!("    env:\n      NODE_ENV: {node_env}\n");
        assert!(text.contains(&env), "no environment with {env:?}");
        let relax = if in_production {
            "      LAB_FAULT_IN_PRODUCTION: \"true\"\n"
        } else {
            ""
        };
        text = text.replace(&env, &format!("{env}      LAB_FAULT: {fault}\n{relax}"));
    }
    std::fs::write(&path, text).unwrap();
    dir
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    all: String,
    took: Duration,
}

fn verify(lab: &Path, part: &str) -> std::process::Child {
    let mut cmd: Command = lab_runner();
    cmd.args([
        "verify",
        part,
        "--fail-fast",
        "--backend",
        "docker",
        "--lab",
    ])
    .arg(lab)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd.spawn().expect("lab-runner starts")
}

fn finish(child: std::process::Child, started: Instant) -> Outcome {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(VERIFY_TIMEOUT) {
        Ok(out) => out.expect("lab-runner ran"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!(
                "verify did not finish within {} s",
                VERIFY_TIMEOUT.as_secs()
            );
        }
    };
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        all: text(&out),
        took: started.elapsed(),
    }
}

/// The steps that failed, in order, from the step lines (`    FAIL [  1.234s] part2 2.2  title`).
fn failed_steps(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("FAIL [")?;
            let after_time = rest.split_once(']')?.1;
            let mut words = after_time.split_whitespace();
            let _part = words.next()?;
            words.next().map(str::to_string)
        })
        .collect()
}

/// What verify said under the failed step's line (its indented diagnosis).
fn diagnosis_of(stdout: &str, step: &str) -> String {
    let mut lines = stdout.lines().skip_while(|l| {
        !(l.trim_start().starts_with("FAIL [") && l.split_whitespace().any(|w| w == step))
    });
    lines.next();
    lines
        .take_while(|l| l.starts_with("      "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs verify against `fault`; a description of what went wrong, or None when the right step
/// caught it with a diagnosis naming what broke.
fn run_fault(fault: &Fault) -> Option<String> {
    let lab = lab_with_fault(fault.name);
    let began = Instant::now();
    let outcome = finish(verify(lab.path(), fault.part), began);
    eprintln!(
        "FIGURE fault {} ({}) took {:.1} s",
        fault.name,
        fault.part,
        outcome.took.as_secs_f64()
    );
    let failed = failed_steps(&outcome.stdout);
    let what = format!("LAB_FAULT={} in {}", fault.name, fault.part);
    if outcome.code != Some(1) {
        return Some(format!(
            "{what}: verify exited {:?}, not 1 (a check failed):\n{}",
            outcome.code, outcome.all
        ));
    }
    if failed.first().map(String::as_str) != Some(fault.step) {
        return Some(format!(
            "{what}: expected step {} to catch it first, failed: {failed:?}\n{}",
            fault.step, outcome.all
        ));
    }
    let diagnosis = diagnosis_of(&outcome.stdout, fault.step).to_lowercase();
    if !fault.diagnosis.iter().any(|w| diagnosis.contains(w)) {
        return Some(format!(
            "{what}: step {}'s diagnosis names none of {:?}:\n{diagnosis}",
            fault.step, fault.diagnosis
        ));
    }
    None
}

#[test]
fn verify_catches_every_fault_of_the_lab_app_at_the_step_that_teaches_it() {
    if !docker_or_skip("verify_catches_every_fault_of_the_lab_app") {
        return;
    }
    let _docker = docker_shared();
    let started = Instant::now();
    // A pool of AT_ONCE workers, each taking the next fault as soon as its verify ends.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..AT_ONCE {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(fault) = FAULTS.get(i) else { break };
                    if let Some(problem) = run_fault(fault) {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    eprintln!(
        "FIGURE {} faults in {:.0} s",
        FAULTS.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} of {} faults not caught as expected:\n\n{}",
        problems.len(),
        FAULTS.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_fault_table_names_every_fault_of_the_lab_app_and_docs_list_them() {
    let faults =
        std::fs::read_to_string(repo_root().join("lab-app/test-support/faults.js")).unwrap();
    let docs = std::fs::read_to_string(repo_root().join("docs/FAULTS.md")).unwrap();
    let defined: Vec<&str> = faults
        .lines()
        .filter_map(|l| l.strip_prefix("  '")?.split_once("': {").map(|(n, _)| n))
        .collect();
    assert!(defined.len() >= 15, "{defined:?}");
    for name in &defined {
        assert!(
            FAULTS.iter().any(|f| f.name == *name),
            "fault {name} is never run by verify"
        );
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/FAULTS.md does not list {name}"
        );
    }
    for fault in FAULTS {
        assert!(
            defined.contains(&fault.name),
            "{} is not a fault of faults.js",
            fault.name
        );
        assert!(
            docs.contains(&format!("| `{}` | {} |", fault.name, fault.step)),
            "docs/FAULTS.md does not say that {} catches {}",
            fault.step,
            fault.name
        );
    }
}
