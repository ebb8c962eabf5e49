//! What each fuzz target does with one input. Shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by `tests/reliability_fuzz_seeds.rs`, which replays every committed seed and regression
//! through the same functions in the ordinary test run. A function returns normally for any input;
//! a panic (or an abort, a timeout, a runaway allocation under libFuzzer) is the bug.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use lab_runner::analyze::cpuprofile::{CpuProfile, FrameFilter};
use lab_runner::analyze::heapsnapshot::{self, HeapSnapshot};
use lab_runner::analyze::report;
use lab_runner::util::prometheus::{self as metrics, Selector};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz_targets/*.rs` and of the folders under `seeds/`).
pub const TARGETS: [(&str, Target); 4] = [
    ("lab_yaml", lab_yaml),
    ("prometheus", prometheus),
    ("cpuprofile", cpuprofile),
    ("heapsnapshot", heapsnapshot),
];

/// Separates the files of a `lab_yaml` input: `lab.yaml`, then the part files.
pub const FILE_SEPARATOR: u8 = 0;

/// The lab loader and lint: the input is `lab.yaml`, then (after each NUL byte) a part file, written
/// as `part.yaml` and `part1.yaml` (the first), `part2.yaml`, `part3.yaml`, next to `app/` (the real
/// lab app, so templates that locate functions in its source have something to read).
pub fn lab_yaml(data: &[u8]) {
    thread_local! {
        static DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
    }
    DIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dir = cell.get_or_insert_with(|| {
            let dir = tempfile::tempdir().expect("a temp dir for the lab files");
            std::os::unix::fs::symlink(lab_app_dir(), dir.path().join("app"))
                .expect("a link to the lab app");
            dir
        });
        let mut files = data.split(|b| *b == FILE_SEPARATOR);
        let manifest = files.next().unwrap_or_default();
        write(dir.path(), "lab.yaml", Some(manifest));
        let parts: Vec<&[u8]> = files.take(3).collect();
        write(dir.path(), "part.yaml", parts.first().copied());
        for i in 0..3 {
            write(
                dir.path(),
                &format!("part{}.yaml", i + 1),
                parts.get(i).copied(),
            );
        }
        if let Ok(lab) = lab_runner::lab::load(dir.path()) {
            let _ = lab_runner::lab::lint::lint(&lab);
            for part in &lab.parts {
                for step in &part.file.steps {
                    let _ = part.step_line(&step.id);
                }
            }
        }
    });
}

/// `name` in `dir` holds `content`, or does not exist.
fn write(dir: &Path, name: &str, content: Option<&[u8]>) {
    let path = dir.join(name);
    match content {
        Some(bytes) => std::fs::write(&path, bytes).expect("write a lab file"),
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The repository's `lab-app/` (found above this crate's manifest: the fuzz crate or the main one).
fn lab_app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("lab-app"))
        .find(|dir| dir.join("src/server.js").is_file())
        .expect("the lab app above the crate")
}

/// The Prometheus text parser, and selecting every series it found (as a check does).
pub fn prometheus(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Selector::parse(&text);
    let Ok(scrape) = metrics::parse(&text) else {
        return;
    };
    for sample in scrape.samples.iter().take(64) {
        let exact = Selector {
            name: sample.name.clone(),
            labels: sample.labels.clone(),
        };
        let _ = scrape.value(&exact);
        let _ = Selector::parse(&exact.to_string());
    }
}

/// The `.cpuprofile` reader and everything `lab-runner analyze` computes from a profile.
pub fn cpuprofile(data: &[u8]) {
    let Ok(profile) = CpuProfile::from_slice(data) else {
        return;
    };
    let _ = profile.sample_count();
    let _ = profile.duration();
    let _ = profile.sampled_time();
    let _ = profile.top_functions(10);
    let _ = profile.folded_stacks();
    let _ = report::cpu_profile(&profile, "fuzz.cpuprofile", 10);
    for filter in [
        FrameFilter {
            url_suffix: "event-loop-jam.js".into(),
            lines: Some((1, 40)),
            function: None,
        },
        FrameFilter {
            url_suffix: String::new(),
            lines: None,
            function: Some("spin".into()),
        },
    ] {
        let share = profile.share(&filter);
        assert!(
            share.is_nan() || (-1e-9..=1.0 + 1e-9).contains(&share),
            "a share is a fraction: {share}"
        );
    }
}

/// The streaming `.heapsnapshot` parser, the dominator tree, the summary and the diff.
pub fn heapsnapshot(data: &[u8]) {
    let Ok(snapshot) = HeapSnapshot::from_slice(data) else {
        return;
    };
    let _ = snapshot.node_count();
    let _ = snapshot.edge_count();
    let _ = snapshot.max_node_id();
    let _ = snapshot.total_shallow_size();
    let _ = snapshot.total_retained_size();
    let summary = snapshot.summary();
    let _ = report::heap_summary(&snapshot, &summary, "fuzz.heapsnapshot", 10);
    let diff = heapsnapshot::diff(&snapshot, &snapshot);
    let _ = report::heap_diff(&diff, "a", "b", 10);
    let three = heapsnapshot::three_snapshot(&snapshot, &snapshot, &snapshot);
    let _ = report::three_snapshot(&three, ["a", "b", "c"], 10);
}
