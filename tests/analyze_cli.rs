//! `lab-runner analyze`: argument parsing, help, and what it prints for each kind of input.
//! (The subcommand is wired in `cli/mod.rs`; these tests drive `AnalyzeArgs` and `run_to` directly.)

mod analyze_support;

use analyze_support::{fixture, message};
use clap::{CommandFactory, Parser};
use lab_runner::cli::analyze::{AnalyzeArgs, FileKind, file_kind, run_to};

#[derive(Parser)]
#[command(name = "analyze")]
struct Cli {
    #[command(flatten)]
    args: AnalyzeArgs,
}

fn parse(args: &[&str]) -> Result<AnalyzeArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("analyze").chain(args.iter().copied())).map(|c| c.args)
}

fn output(args: &[&str]) -> String {
    let args = parse(args).unwrap();
    let mut out = Vec::new();
    run_to(&args, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

#[test]
fn help_has_examples() {
    let help = Cli::command().render_long_help().to_string();
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("lab-runner analyze --diff before.heapsnapshot after.heapsnapshot"));
    assert!(help.contains("--flamegraph <OUT.svg>"));
    assert!(help.contains("system / JSArrayBufferData"));
}

#[test]
fn arguments_are_checked() {
    let args = parse(&["x.heapsnapshot"]).unwrap();
    assert_eq!(args.top, 20, "default --top");
    let args = parse(&["--diff", "a", "b", "--top", "5"]).unwrap();
    assert_eq!(args.diff.unwrap().len(), 2);
    assert!(parse(&[]).is_err(), "a file, --diff or --three is needed");
    assert!(parse(&["--diff", "a"]).is_err(), "--diff takes two files");
    assert!(
        parse(&["--three", "a", "b"]).is_err(),
        "--three takes three files"
    );
    assert!(
        parse(&["x", "--diff", "a", "b"]).is_err(),
        "a file or --diff, not both"
    );
    assert!(parse(&["--top", "many", "x"]).is_err());
}

#[test]
fn heap_snapshot_summary_table() {
    let text = output(&[&path("dominators.heapsnapshot"), "--top", "3"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("dominators.heapsnapshot: 10 nodes, 10 edges, 1.2 KiB in all (shallow)")
    );
    assert_eq!(lines[1], "Top 3 of 7 constructors by retained size:");
    assert_eq!(
        &lines[3..7],
        [
            "Constructor                 Count  Shallow size  Retained size",
            "ArrayBuffer                     1           8 B         1008 B",
            "system / JSArrayBufferData      1        1000 B         1000 B",
            "Weakling                        1          40 B           90 B",
        ]
    );
    assert!(text.contains(
        "Buffer data (ArrayBuffer backing stores, \"system / JSArrayBufferData\"): 1000 B in 1 store\n"
    ));
    assert!(text.contains("Sizes: shallow size = the bytes V8 reports"));
    assert!(text.contains("weak edges ignored"));
}

#[test]
fn heap_snapshot_json() {
    let text = output(&[&path("dominators.heapsnapshot"), "--json"]);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["constructors"][0]["name"], "ArrayBuffer");
    assert_eq!(value["constructors"][0]["retained_size"], 1008);
    assert_eq!(value["object_count"], 9);
    assert!(
        value["size_convention"]
            .as_str()
            .unwrap()
            .contains("dominates")
    );
}

#[test]
fn diff_and_three_snapshot_tables() {
    let text = output(&[
        "--diff",
        &path("dominators.heapsnapshot"),
        &path("dominators-later.heapsnapshot"),
    ]);
    assert!(
        text.contains("by object id: +4.0 KiB (4 constructors changed)"),
        "{text}"
    );
    assert!(text.contains(
        "system / JSArrayBufferData      1          0       +1      4.0 KiB         0 B    +4.0 KiB"
    ), "{text}");
    assert!(text.contains(
        "Other                           0          1       -1          0 B        30 B       -30 B"
    ), "{text}");
    assert!(text.contains(
        "Buffer data (ArrayBuffer backing stores, \"system / JSArrayBufferData\"): +4.0 KiB"
    ));

    let later = path("dominators-later.heapsnapshot");
    let text = output(&["--three", &path("dominators.heapsnapshot"), &later, &later]);
    assert!(text.contains("and still alive in"), "{text}");
    assert!(text.contains(": 3 objects, 4.0 KiB (shallow)"), "{text}");
    assert!(
        text.contains("Item                            1          25 B           25 B"),
        "{text}"
    );
}

#[test]
fn cpu_profile_table_json_and_flame_graph() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("jam.svg");
    let text = output(&[
        &path("small.cpuprofile"),
        "--top",
        "2",
        "--flamegraph",
        svg.to_str().unwrap(),
    ]);
    assert!(text.contains("Top 2 functions by self time:"));
    assert!(text.contains("spin"));
    assert!(text.contains(&format!("Flame graph written to {}", svg.display())));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("spin ("));

    let text = output(&[&path("small.cpuprofile"), "--json", "--top", "1"]);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["sample_count"], 10);
    assert_eq!(value["top_functions"][0]["function"], "spin");
    assert_eq!(value["top_functions"][0]["self_ms"], 6.0);
    assert_eq!(value["top_functions"][0]["line"], 4);
}

#[test]
fn file_kind_comes_from_the_extension_or_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("capture.json");
    std::fs::copy(fixture("dominators.heapsnapshot"), &snapshot).unwrap();
    assert_eq!(file_kind(&snapshot).unwrap(), FileKind::HeapSnapshot);
    let profile = dir.path().join("capture2.json");
    std::fs::copy(fixture("small.cpuprofile"), &profile).unwrap();
    assert_eq!(file_kind(&profile).unwrap(), FileKind::CpuProfile);
    let text = output(&[snapshot.to_str().unwrap()]);
    assert!(text.contains("Top 7 of 7 constructors"));
}

#[test]
fn errors_name_the_file() {
    let args = parse(&["/nonexistent/dir/x.heapsnapshot"]).unwrap();
    let err = run_to(&args, &mut Vec::new()).unwrap_err();
    assert!(message(&err).contains("Failed to read heap snapshot /nonexistent/dir/x.heapsnapshot"));

    let args = parse(&[&path("dominators.heapsnapshot"), "--flamegraph", "x.svg"]).unwrap();
    let err = run_to(&args, &mut Vec::new()).unwrap_err();
    assert!(message(&err).contains("--flamegraph draws CPU profiles"));
}
