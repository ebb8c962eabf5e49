//! Heap snapshots: summaries with retained sizes, diffs and the three-snapshot technique, on
//! hand-built snapshots with known dominator trees and on real ones written by Node; and a clear
//! error for every kind of broken file.

use crate::analyze_support;

use analyze_support::{fixture, generate_snapshot, message, node};
use lab_runner::analyze::heapsnapshot::{
    self, ARRAY_BUFFER_BACKING_STORE, ConstructorSummary, HeapSnapshot,
};

const MIB: u64 = 1024 * 1024;

fn row(name: &str, count: u64, shallow_size: u64, retained_size: u64) -> ConstructorSummary {
    ConstructorSummary {
        name: name.to_owned(),
        location: None,
        count,
        shallow_size,
        retained_size,
    }
}

/// `dominators.heapsnapshot`, drawn (→ strong, ⇢ weak; sizes in brackets):
///
/// ```text
/// (root) → Holder#3 [10] → Holder#5 [10] → "hello world" [16]
///        │              └→ Item#7 [20] ←─ Other#9 [30] ←┐
///        ├→ Other#9 ────────────────────────────────────┘
///        ⇢ Weakling#11 [40] → Item#13 [50]
///        └→ ArrayBuffer#17 [8] → system / JSArrayBufferData#15 [1000]
/// ```
///
/// Item#7 has two retainers, so only the root dominates it. Weakling is held only weakly, so it
/// hangs off the root and retains Item#13. Holder#5 is dominated by Holder#3, so the Holder row's
/// retained size counts Holder#3's subtree once.
#[test]
fn hand_built_snapshot_has_the_retained_sizes_of_its_dominator_tree() {
    let snapshot = HeapSnapshot::load(&fixture("dominators.heapsnapshot")).unwrap();
    assert_eq!(snapshot.node_count(), 10);
    assert_eq!(snapshot.edge_count(), 10);
    assert_eq!(snapshot.total_shallow_size(), 1184);
    assert_eq!(snapshot.total_retained_size(), 1184);
    let summary = snapshot.summary();
    assert_eq!(
        summary.constructors,
        vec![
            row("ArrayBuffer", 1, 8, 1008),
            row(ARRAY_BUFFER_BACKING_STORE, 1, 1000, 1000),
            row("Weakling", 1, 40, 90),
            row("Item", 2, 70, 70),
            row("Holder", 2, 20, 36),
            row("Other", 1, 30, 30),
            row("(string)", 1, 16, 16),
        ]
    );
    assert_eq!(
        summary.object_count, 9,
        "the synthetic root (size 0) is left out"
    );
    assert_eq!(summary.backing_store_bytes(), 1000);
    assert_eq!(summary.backing_store_count(), 1);
    assert_eq!(summary.constructor("Holder").unwrap().retained_size, 36);
    assert!(summary.constructor("Nothing").is_none());
}

#[test]
fn hand_built_diff_matches_objects_by_id() {
    let old = HeapSnapshot::load(&fixture("dominators.heapsnapshot")).unwrap();
    let new = HeapSnapshot::load(&fixture("dominators-later.heapsnapshot")).unwrap();
    let diff = heapsnapshot::diff(&old, &new);
    let rows: Vec<(&str, u64, u64, i64)> = diff
        .constructors
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.new_count,
                c.deleted_count,
                c.size_delta(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (ARRAY_BUFFER_BACKING_STORE, 1, 0, 4096),
            ("Other", 0, 1, -30),
            ("Item", 1, 0, 25),
            ("ArrayBuffer", 1, 0, 8),
        ],
        "objects with the same id in both are unchanged; sorted by the size of the change"
    );
    assert_eq!(diff.backing_store_delta(), 4096);
    assert_eq!(diff.size_delta(), 4096 - 30 + 25 + 8);

    // Three snapshots: what arrived between the first two and is still there in the third.
    let kept = heapsnapshot::three_snapshot(&old, &new, &new);
    assert_eq!(
        kept.constructors,
        vec![
            row("ArrayBuffer", 1, 8, 4104),
            row(ARRAY_BUFFER_BACKING_STORE, 1, 4096, 4096),
            row("Item", 1, 25, 25),
        ]
    );
    let nothing = heapsnapshot::three_snapshot(&old, &old, &new);
    assert!(nothing.constructors.is_empty());
}

/// A Node process retaining 10,000 `LeakyThing` and 3 Buffers of 4 MiB.
#[test]
fn generated_snapshot_counts_a_named_class_and_buffer_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate_snapshot(
        dir.path(),
        "leaky.heapsnapshot",
        &[
            "--leaky",
            "10000",
            "--buffers",
            "3",
            "--buffer-bytes",
            "4194304",
        ],
    );
    let snapshot = HeapSnapshot::load(&path).unwrap();
    let summary = snapshot.summary();

    let leaky = summary.constructor("LeakyThing").expect("a LeakyThing row");
    assert_eq!(leaky.count, 10_000);
    let per_object = leaky.shallow_size / leaky.count;
    assert!(
        (12..=64).contains(&per_object),
        "a LeakyThing with two fields is a small object, got {per_object} bytes"
    );
    assert!(
        leaky.retained_size > leaky.shallow_size,
        "each LeakyThing retains its own label string"
    );

    // The Buffers' bytes are 3 backing stores of exactly 4 MiB; Node itself holds a few KiB more
    // (about 10 KiB on Node 20). Tolerance: 64 KiB above the known total, nothing below it.
    let buffer_bytes = 3 * 4 * MIB;
    let backing = summary.backing_store_bytes();
    assert!(
        (buffer_bytes..=buffer_bytes + 64 * 1024).contains(&backing),
        "backing stores hold {backing} bytes, expected {buffer_bytes} + at most 64 KiB"
    );
    let buffers = summary.constructor("Buffer").expect("a Buffer row");
    assert!(
        buffers.retained_size >= buffer_bytes,
        "the Buffer objects retain their data: {} < {buffer_bytes}",
        buffers.retained_size
    );
    assert!(summary.constructors[0].retained_size >= buffer_bytes);
}

/// One process, three snapshots (see `gen-heapsnapshot-sequence.mjs`).
#[test]
fn generated_sequence_diffs_and_three_snapshot_technique() {
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("gen-heapsnapshot-sequence.mjs");
    node(&[script.as_os_str(), dir.path().as_os_str()]);
    let load = |name: &str| HeapSnapshot::load(&dir.path().join(name)).unwrap();
    let (a, b, c) = (
        load("a.heapsnapshot"),
        load("b.heapsnapshot"),
        load("c.heapsnapshot"),
    );

    let a_to_b = heapsnapshot::diff(&a, &b);
    let leaky = a_to_b.constructor("LeakyThing").unwrap();
    assert_eq!((leaky.new_count, leaky.deleted_count), (1000, 0));
    let delta = a_to_b.backing_store_delta();
    assert!(
        (2 * MIB as i64..=2 * MIB as i64 + 64 * 1024).contains(&delta),
        "2 MiB of Buffer data arrived, got {delta}"
    );

    let b_to_c = heapsnapshot::diff(&b, &c);
    let leaky = b_to_c.constructor("LeakyThing").unwrap();
    assert_eq!(
        (leaky.new_count, leaky.deleted_count),
        (500, 0),
        "the 300 dropped ones were collected before C"
    );
    let delta = b_to_c.backing_store_delta();
    assert!(
        (-(MIB as i64) - 64 * 1024..=-(MIB as i64) + 64 * 1024).contains(&delta),
        "one 1 MiB Buffer was freed, got {delta}"
    );

    let kept = heapsnapshot::three_snapshot(&a, &b, &c);
    assert_eq!(kept.constructor("LeakyThing").unwrap().count, 1000);
    let backing = kept.backing_store_bytes();
    assert!(
        (MIB..=MIB + 64 * 1024).contains(&backing),
        "one of the two Buffers from between A and B survives into C, got {backing}"
    );
}

/// Every kind of broken file gives an error naming the file and the problem.
#[test]
fn broken_snapshots_are_clear_errors() {
    let good = std::fs::read_to_string(fixture("dominators.heapsnapshot")).unwrap();
    let nodes_at = good.find("\"nodes\":[").unwrap() + 40;
    let strings_at = good.find("\"strings\":[").unwrap() + 30;
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "the file is empty"),
        ("blank", "  \n".into(), "the file is empty"),
        (
            "not-json",
            "Hello, I am not JSON".into(),
            "this is not a heap snapshot: it should start with '{', found 'H'",
        ),
        (
            "a-cpu-profile",
            r#"{"nodes":[{"id":1}],"startTime":0}"#.into(),
            "this is a CPU profile (its \"nodes\" array holds call-tree objects), not a heap snapshot: \
             expected a V8 heap snapshot",
        ),
        (
            "nodes-before-header",
            r#"{"nodes":[1,2],"snapshot":{}}"#.into(),
            "the \"nodes\" array comes before the \"snapshot\" header",
        ),
        (
            "edge-name-outside-strings",
            good.replacen("\"edges\":[2,8,7", "\"edges\":[2,800,7", 1),
            "edge 0 is named by string 800, but the \"strings\" array holds only 15",
        ),
        (
            "truncated-mid-nodes",
            good[..nodes_at].into(),
            "the file ends inside the \"nodes\" array, after",
        ),
        (
            "truncated-mid-strings",
            good[..strings_at].into(),
            "the \"strings\" array",
        ),
        (
            "truncated-before-the-end",
            good.trim_end().trim_end_matches('}').into(),
            "truncated",
        ),
        (
            "wrong-meta-field-name",
            good.replacen("\"self_size\"", "\"shallow_size\"", 1),
            "snapshot.meta.node_fields has no \"self_size\" field",
        ),
        (
            "meta-missing",
            good.replacen("\"node_fields\"", "\"node_fieldz\"", 1),
            "the \"snapshot\" header is not the one V8 writes: missing field `node_fields`",
        ),
        (
            "node-count-mismatch",
            good.replacen("\"node_count\":10", "\"node_count\":11", 1),
            "snapshot.node_count says 11 nodes, but the \"nodes\" array holds 10",
        ),
        (
            "edge-count-mismatch",
            good.replacen("\"edge_count\":10", "\"edge_count\":12", 1),
            "snapshot.edge_count says 12 edges, but the \"edges\" array holds 10",
        ),
        (
            "edge-counts-do-not-add-up",
            good.replacen("\"nodes\":[9,1,1,0,4,", "\"nodes\":[9,1,1,0,5,", 1),
            "the nodes' edge_count fields add up to 11 edges, but the \"edges\" array holds 10",
        ),
        (
            "more-edges-than-counted",
            good.replacen("\"nodes\":[9,1,1,0,4,", "\"nodes\":[9,1,1,0,3,", 1),
            "the \"edges\" array holds more than the 9 edges that the nodes' edge_count fields add up to",
        ),
        (
            "edge-to-nowhere",
            good.replacen("\"edges\":[2,8,7", "\"edges\":[2,8,700", 1),
            "edge 0 points to 700, which is not the start of one of the 10 nodes",
        ),
        (
            "edge-into-the-middle-of-a-node",
            good.replacen("\"edges\":[2,8,7", "\"edges\":[2,8,8", 1),
            "edge 0 points to 8",
        ),
        (
            "partial-node",
            good.replacen(",2,11,19,16,0,0,0]", ",2,11,19,16,0,0]", 1),
            "not a whole number of nodes of 7 fields",
        ),
        (
            "negative-number",
            good.replacen(",3,3,7,20,", ",3,3,7,-20,", 1),
            "found '-' where only non-negative integers belong in the \"nodes\" array",
        ),
        (
            "unknown-node-type",
            good.replacen(",3,3,7,20,", ",99,3,7,20,", 1),
            "node 3 has type 99, but snapshot.meta.node_types names only 15 types",
        ),
        (
            "name-outside-strings",
            good.replacen(",3,3,7,20,", ",3,300,7,20,", 1),
            "a node's name is string 300, but the \"strings\" array holds only 15",
        ),
        (
            "no-strings",
            good.replacen("\"strings\":[", "\"strangs\":[", 1),
            "the file has no \"strings\" array",
        ),
        (
            "trailing-garbage",
            format!("{good}xyz"),
            "unexpected 'x' after the snapshot's closing '}'",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, text, expected) in cases {
        let path = dir.path().join(format!("{name}.heapsnapshot"));
        std::fs::write(&path, &text).unwrap();
        let err = HeapSnapshot::load(&path).expect_err(name);
        let shown = message(&err);
        assert!(
            shown.contains(&path.display().to_string()),
            "{name}: the error should name the file: {shown}"
        );
        assert!(
            shown.contains(expected),
            "{name}: {shown}\nshould say: {expected}"
        );
    }
    let missing = dir.path().join("missing.heapsnapshot");
    let shown = message(&HeapSnapshot::load(&missing).unwrap_err());
    assert!(shown.contains("missing.heapsnapshot") && shown.contains("cannot open the file"));
}

/// Every truncation and many single-byte corruptions of a valid snapshot: an error or a
/// consistent summary, never a panic.
#[test]
fn no_truncation_or_corruption_panics() {
    let good = std::fs::read(fixture("dominators.heapsnapshot")).unwrap();
    let complete = good.len()
        - good
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    for len in 0..good.len() {
        let result = HeapSnapshot::from_slice(&good[..len]);
        if len < complete {
            let err = result.expect_err("a truncated snapshot is an error");
            assert!(!message(&err).is_empty());
        } else {
            assert_eq!(result.unwrap().summary().object_count, 9);
        }
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"0123456789,[]{}\":\\ -.eE\nxu";
    for _ in 0..3000 {
        let mut bytes = good.clone();
        let at = (next() % bytes.len() as u64) as usize;
        bytes[at] = alphabet[(next() % alphabet.len() as u64) as usize];
        if let Ok(snapshot) = HeapSnapshot::from_slice(&bytes) {
            let summary = snapshot.summary();
            assert!(summary.shallow_size <= snapshot.total_shallow_size());
            let _ = heapsnapshot::diff(&snapshot, &snapshot);
        }
    }
}
