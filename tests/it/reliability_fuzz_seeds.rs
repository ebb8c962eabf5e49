//! The fuzz targets' committed seeds (fuzz/seeds/<target>/) and regressions
//! (fuzz/regressions/<target>/: inputs that once crashed a target) replayed through the same
//! harness the fuzzers run (fuzz/harness.rs), with a bounded, deterministic set of mutations of
//! each seed: every truncation point of a sample and single-byte changes. This runs in the
//! ordinary test suite, so CI needs neither cargo-fuzz nor a fuzzing run to keep the parsers from
//! panicking on what was once found.

#[path = "../../fuzz/harness.rs"]
mod harness;
use crate::support;

use std::path::Path;

/// The files in `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).expect("read an input"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Deterministic variations of `seed`: 24 truncations and 24 single-byte changes spread over it.
fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if seed.is_empty() {
        return out;
    }
    let points: Vec<usize> = (0..24).map(|i| i * seed.len() / 24).collect();
    for &at in &points {
        out.push(seed[..at].to_vec());
    }
    for (i, &at) in points.iter().enumerate() {
        let mut changed = seed.to_vec();
        changed[at] = [b'"', b'{', b']', b'-', b'9', b'\n', 0, 0xff][i % 8];
        out.push(changed);
    }
    out
}

#[test]
fn every_seed_regression_and_mutation_runs_without_a_panic() {
    let fuzz = support::repo_root().join("fuzz");
    let mut ran = 0;
    for (target, run) in harness::TARGETS {
        let seeds = inputs(&fuzz.join("seeds").join(target));
        assert!(!seeds.is_empty(), "no seeds for {target}");
        let regressions = inputs(&fuzz.join("regressions").join(target));
        for (name, bytes) in seeds.iter().chain(&regressions) {
            let outcome = std::panic::catch_unwind(|| {
                run(bytes);
                for variant in mutations(bytes) {
                    run(&variant);
                }
            });
            assert!(
                outcome.is_ok(),
                "{target} panicked on {name} or a variation of it"
            );
            ran += 1 + mutations(bytes).len();
        }
    }
    println!("replayed {ran} inputs through the fuzz targets");
}
