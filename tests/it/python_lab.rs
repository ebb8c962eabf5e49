//! The second shipped lab, labs/python-service (a Python api and the inventory service it calls,
//! each in a container of its own): every part passes `verify` on Docker — each step's check
//! fails before its solve, rejects each of its mistakes and passes after the solve — and Part 1
//! passes when followed by hand in a real terminal, reading the commands off the screen.

use crate::by_hand::{ShellAnswers, follow_lab_by_hand};
use crate::support::*;

use std::path::PathBuf;

fn python_lab() -> PathBuf {
    repo_root().join("labs").join("python-service")
}

const PART1: &[&str] = &["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"];
const PART2: &[&str] = &["2.1", "2.2", "2.3", "2.4", "2.5"];

fn verify_part(part: &str, backend: &str) -> Run {
    let lab = python_lab();
    run(&[
        "verify",
        "--lab",
        lab.to_str().unwrap(),
        part,
        "--backend",
        backend,
    ])
}

/// `verify` of `part` on Docker: exit 0, every one of `steps` passed.
fn passes_on_docker(test: &str, part: &str, steps: &[&str]) {
    if !docker_or_skip(test) {
        return;
    }
    let _docker = docker_shared();
    let r = verify_part(part, "docker");
    assert_eq!(r.code, 0, "{}", r.all);
    assert_all_passed(&r, part, steps);
}

#[test]
fn python_lab_part1_passes_on_docker() {
    passes_on_docker("python_lab_part1_passes_on_docker", "part1", PART1);
}

#[test]
fn python_lab_part2_passes_on_docker() {
    passes_on_docker("python_lab_part2_passes_on_docker", "part2", PART2);
}

#[test]
fn python_lab_says_it_needs_docker_on_the_process_backend() {
    let r = verify_part("part1", "process");
    // Nothing could be brought up: exit 4, naming the services that need Docker.
    assert_eq!(r.code, 4, "{}", r.all);
    assert!(r.all.contains("needs Docker"), "{}", r.all);
    assert!(r.all.contains("inventory"), "{}", r.all);
}

#[test]
fn python_lab_part1_by_hand_at_80_columns() {
    if docker_or_skip("python_lab_part1_by_hand_at_80_columns") {
        follow_lab_by_hand(&python_lab(), "part1", 80, &PYTHON_ANSWERS);
    }
}

#[test]
fn python_lab_part2_by_hand_at_120_columns() {
    if docker_or_skip("python_lab_part2_by_hand_at_120_columns") {
        follow_lab_by_hand(&python_lab(), "part2", 120, &PYTHON_ANSWERS);
    }
}

/// The Python lab's questions, answered from what the participant's own commands printed.
const PYTHON_ANSWERS: ShellAnswers = ShellAnswers {
    questions: &[
        "highest mean latency?",
        "call fetch_item?",
        "send to the inventory?",
        "allocated most of what grew",
    ],
    answer: answer_from_output,
};

fn answer_from_output(question: &str, transcript: &[String]) -> Option<String> {
    let printed = || transcript.join("\n");
    if question.contains("highest mean latency?") {
        // The awk table: "<route>  <n> requests  <ms> ms", the slowest row.
        let mut slowest: Option<(f64, String)> = None;
        for row in transcript.iter().filter(|l| l.contains(" requests ")) {
            let words: Vec<&str> = row.split_whitespace().collect();
            if let [route, _, "requests", ms, "ms"] = words.as_slice()
                && let Ok(ms) = ms.parse::<f64>()
                && slowest.as_ref().is_none_or(|(best, _)| ms > *best)
            {
                slowest = Some((ms, route.to_string()));
            }
        }
        return Some(
            slowest
                .unwrap_or_else(|| panic!("no latency table in the shell:\n{}", printed()))
                .1,
        );
    }
    if question.contains("call fetch_item?") {
        // pstats' table: ncalls is the first column of a function's row.
        let ncalls = |function: &str| -> u64 {
            let row = transcript
                .iter()
                .rev()
                .find(|l| {
                    l.contains(&format!("({function})"))
                        && l.split_whitespace()
                            .next()
                            .is_some_and(|w| w.split('/').next().unwrap().parse::<u64>().is_ok())
                })
                .unwrap_or_else(|| panic!("no row for {function} in the profile:\n{}", printed()));
            let first = row.split_whitespace().next().unwrap();
            first.split('/').next().unwrap().parse().unwrap()
        };
        return Some((ncalls("fetch_item") / ncalls("list_orders")).to_string());
    }
    if question.contains("send to the inventory?") {
        // The two reads of /stats around the request: the difference of the `item` counts.
        let counts: Vec<u64> = transcript
            .iter()
            .filter(|l| l.starts_with("{\"requests\""))
            .map(|l| {
                let stats: serde_json::Value = serde_json::from_str(l).unwrap();
                stats["requests"]["item"].as_u64().unwrap()
            })
            .collect();
        let [.., before, after] = counts.as_slice() else {
            panic!(
                "fewer than two reads of /stats in the shell:\n{}",
                printed()
            );
        };
        return Some((after - before).to_string());
    }
    if question.contains("allocated most of what grew") {
        // The comparison's first row: "<file>:<line>: size=... (+...), count=...".
        let command = transcript
            .iter()
            .rposition(|l| l.starts_with("$ python3 - before.snap after.snap"))
            .unwrap_or_else(|| panic!("no comparison in the shell:\n{}", printed()));
        let row = transcript[command..]
            .iter()
            .find(|l| !l.starts_with("$ ") && l.contains(": size="))
            .unwrap_or_else(|| panic!("the comparison printed no row:\n{}", printed()));
        return Some(row.split(": size=").next().unwrap().to_string());
    }
    None
}
