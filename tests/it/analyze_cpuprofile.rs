//! CPU profiles: the top-functions table, the share of a function found by URL and line range,
//! flame graphs, and clear errors for broken files.

use crate::analyze_support;

use std::ffi::OsStr;
use std::time::Duration;

use analyze_support::{fixture, message, node};
use lab_runner::analyze::cpuprofile::{CpuProfile, FrameFilter};
use lab_runner::analyze::report;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// `small.cpuprofile`: 10 samples 1 ms apart; `spin` (line 4) is the leaf of 6, `now` of 2, both
/// under `handleJam` (line 12); one `(idle)`, one `(garbage collector)`.
#[test]
fn hand_built_profile_top_functions_and_shares() {
    let profile = CpuProfile::load(&fixture("small.cpuprofile")).unwrap();
    assert_eq!(profile.sample_count(), 10);
    assert_eq!(profile.duration(), Duration::from_millis(11));
    assert_eq!(profile.sampled_time(), Duration::from_millis(10));

    let top = profile.top_functions(10);
    let rows: Vec<(&str, u32, u128, u128)> = top
        .iter()
        .map(|f| {
            (
                f.function.as_str(),
                f.line,
                f.self_time.as_millis(),
                f.total_time.as_millis(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("spin", 4, 6, 6),
            ("now", 0, 2, 2),
            ("(garbage collector)", 0, 1, 1),
            ("(idle)", 0, 1, 1),
            ("handleJam", 12, 0, 8),
        ]
    );
    assert!(close(top[0].self_share, 0.6));
    assert!(close(top[4].total_share, 0.8));
    assert_eq!(
        top[0].location(),
        "file:///app/src/lab/event-loop-jam.js:4:14"
    );
    assert_eq!(profile.top_functions(2).len(), 2);

    let jam_file = |lines| FrameFilter {
        url_suffix: "src/lab/event-loop-jam.js".into(),
        lines,
        function: None,
    };
    assert!(close(profile.share(&jam_file(Some((4, 9)))), 0.6));
    assert!(
        close(profile.share(&jam_file(Some((6, 6)))), 0.6),
        "positionTicks line 6 lies inside spin"
    );
    assert!(
        close(profile.share(&jam_file(Some((12, 30)))), 0.8),
        "handleJam's samples include its callees'"
    );
    assert!(close(profile.share(&jam_file(Some((100, 200)))), 0.0));
    assert!(close(profile.share(&jam_file(None)), 0.8));
    let by_name = FrameFilter {
        url_suffix: "event-loop-jam.js".into(),
        lines: None,
        function: Some("spin".into()),
    };
    assert!(close(profile.share(&by_name), 0.6));
}

#[test]
fn hand_built_profile_report_and_flame_graph() {
    let profile = CpuProfile::load(&fixture("small.cpuprofile")).unwrap();
    let text = report::cpu_profile(&profile, "small.cpuprofile", 3);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "CPU profile small.cpuprofile: 0.011s, 10 samples (one every 1.00 ms on average)"
    );
    assert_eq!(
        lines[1],
        "Top 3 functions by self time. Self % and Total % are shares of the 10.0 ms of sampled \
         time (all samples, idle included); Location is url:line:column."
    );
    assert_eq!(
        lines[3],
        "  Self  Self %   Total  Total %  Function             Location"
    );
    assert_eq!(
        lines[4],
        "6.0 ms   60.0%  6.0 ms    60.0%  spin                 \
         file:///app/src/lab/event-loop-jam.js:4:14"
    );
    assert_eq!(lines.len(), 7, "header lines and three rows:\n{text}");

    assert_eq!(
        profile.folded_stacks(),
        "(garbage collector) 1000\n\
         (idle) 1000\n\
         handleJam (file:///app/src/lab/event-loop-jam.js:12:26);now 2000\n\
         handleJam (file:///app/src/lab/event-loop-jam.js:12:26);spin (file:///app/src/lab/event-loop-jam.js:4:14) 6000\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("flame.svg");
    profile.write_flamegraph(&svg, "Jam profile").unwrap();
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<?xml"), "an SVG document");
    assert!(drawn.contains("Jam profile"), "the title is drawn");
    assert!(drawn.contains("spin (file:///app/src/lab/event-loop-jam.js:4:14)"));
    assert!(drawn.contains("handleJam"));
}

/// A real profile from `node --cpu-prof` of `jam.mjs`: the jam dominates.
#[test]
fn real_node_profile_is_dominated_by_the_jam() {
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("jam.mjs");
    node(&[
        OsStr::new("--cpu-prof"),
        OsStr::new("--cpu-prof-interval"),
        OsStr::new("200"),
        OsStr::new("--cpu-prof-dir"),
        dir.path().as_os_str(),
        script.as_os_str(),
    ]);
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cpuprofile"))
        .expect("node wrote a .cpuprofile");
    let profile = CpuProfile::load(&path).unwrap();
    assert!(
        profile.sample_count() > 100,
        "{} samples",
        profile.sample_count()
    );

    let top = profile.top_functions(5);
    assert_eq!(top[0].function, "jam", "top functions: {top:#?}");
    assert!(top[0].url.ends_with("/tests/fixtures/analyze/jam.mjs"));
    assert_eq!(top[0].line, 5, "1-based line of `function jam`");
    // 8 × 40 ms of jam against a little sorting and Node's start-up.
    let share = profile.share(&FrameFilter {
        url_suffix: "fixtures/analyze/jam.mjs".into(),
        lines: Some((5, 12)),
        function: None,
    });
    assert!(share > 0.5, "jam's share of sampled time is {share}");

    let svg = dir.path().join("jam.svg");
    profile.write_flamegraph(&svg, "jam.mjs").unwrap();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("jam ("));
}

#[test]
fn broken_profiles_are_clear_errors() {
    let good = std::fs::read_to_string(fixture("small.cpuprofile")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, text, expected) in [
        ("empty", String::new(), "the file is empty"),
        ("not-json", "{nodes".into(), "this is not a CPU profile"),
        (
            "truncated",
            good[..good.len() / 2].into(),
            "this is not a CPU profile",
        ),
        (
            "a-heap-snapshot",
            std::fs::read_to_string(fixture("dominators.heapsnapshot")).unwrap(),
            "this is a heap snapshot (it starts with a \"snapshot\" header), not a CPU profile: \
             expected a CPU profile",
        ),
        (
            "unpaired-deltas",
            good.replacen("[1000, 1000, 1000,", "[1000, 1000,", 1),
            "10 samples but 9 timeDeltas",
        ),
        (
            "unknown-sample-node",
            good.replacen("\"samples\": [3,", "\"samples\": [42,", 1),
            "sample 0 is in node 42, which the profile does not have",
        ),
    ] {
        let path = dir.path().join(format!("{name}.cpuprofile"));
        std::fs::write(&path, text).unwrap();
        let shown = message(&CpuProfile::load(&path).expect_err(name));
        assert!(
            shown.contains(&path.display().to_string()),
            "{name}: {shown}"
        );
        assert!(
            shown.contains(expected),
            "{name}: {shown}\nshould say: {expected}"
        );
    }
    let svg_dir = dir.path().join("no-such-dir").join("out.svg");
    let profile = CpuProfile::load(&fixture("small.cpuprofile")).unwrap();
    let shown = message(&profile.write_flamegraph(&svg_dir, "x").unwrap_err());
    assert!(shown.contains("Failed to write flame graph") && shown.contains("out.svg"));
}

/// Every truncation and many single-byte corruptions: an error or a usable profile, never a panic.
#[test]
fn no_truncation_or_corruption_panics() {
    let good = std::fs::read(fixture("small.cpuprofile")).unwrap();
    for len in 0..good.len() {
        if let Ok(profile) = CpuProfile::from_slice(&good[..len]) {
            let _ = profile.top_functions(5);
        }
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"0123456789-.eE,[]{}\": ";
    for _ in 0..3000 {
        let mut bytes = good.clone();
        let at = (next() % bytes.len() as u64) as usize;
        bytes[at] = alphabet[(next() % alphabet.len() as u64) as usize];
        if let Ok(profile) = CpuProfile::from_slice(&bytes) {
            let top = profile.top_functions(5);
            assert!(top.iter().all(|f| f.self_share <= 1.0 + 1e-9));
            let _ = profile.folded_stacks();
            let _ = profile.share(&FrameFilter::default());
        }
    }
}
