//! `lab-runner analyze`: argument parsing, help, and what it prints for each kind of input.
//! (The subcommand is wired in `cli/mod.rs`; these tests drive `AnalyzeArgs` and `run_to` directly.)

use crate::analyze_support;

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
    assert!(help.contains("--convention <RULES>"), "{help}");
    assert!(
        help.contains("what Chrome DevTools' Memory panel shows"),
        "{help}"
    );
}

#[test]
fn the_convention_is_chosen_and_said() {
    let snapshot = path("dominators.heapsnapshot");
    let devtools = output(&[&snapshot]);
    assert!(
        devtools
            .contains("Sizes as Chrome DevTools' Memory panel shows them (--convention devtools).")
    );
    let v8 = output(&[&snapshot, "--convention", "v8"]);
    assert!(
        v8.contains("Sizes of V8's raw graph (--convention v8), not what Chrome DevTools shows.")
    );
    let json: serde_json::Value =
        serde_json::from_str(&output(&[&snapshot, "--json", "--convention", "v8"])).unwrap();
    assert_eq!(json["convention"], "v8");
    assert!(parse(&[&snapshot, "--convention", "chrome"]).is_err());
}

#[test]
fn files_of_the_wrong_kind_say_what_they_are_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    // A heap snapshot without the extension is read as one.
    let snapshot = dir.path().join("capture");
    std::fs::copy(fixture("dominators.heapsnapshot"), &snapshot).unwrap();
    assert!(output(&[snapshot.to_str().unwrap()]).contains("Top 7 of 7 constructors"));
    // Even named like a CPU profile.
    let misnamed = dir.path().join("really-a-snapshot.cpuprofile");
    std::fs::copy(fixture("dominators.heapsnapshot"), &misnamed).unwrap();
    assert!(output(&[misnamed.to_str().unwrap()]).contains("Top 7 of 7 constructors"));

    let profile = dir.path().join("jam.cpuprofile");
    std::fs::copy(fixture("small.cpuprofile"), &profile).unwrap();
    let run = |args: &[&str]| message(&run_to(&parse(args).unwrap(), &mut Vec::new()).unwrap_err());
    let err = run(&[
        "--diff",
        profile.to_str().unwrap(),
        snapshot.to_str().unwrap(),
    ]);
    assert!(
        err.contains(&format!(
            "--diff compares heap snapshots, but {} is a CPU profile: expected a heap snapshot",
            profile.display()
        )),
        "{err}"
    );
    let err = run(&[
        "--three",
        snapshot.to_str().unwrap(),
        snapshot.to_str().unwrap(),
        profile.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--three compares heap snapshots, but") && err.contains("is a CPU profile"),
        "{err}"
    );

    let other = dir.path().join("package.json");
    std::fs::write(&other, r#"{"name": "x", "version": "1.0.0"}"#).unwrap();
    let err = run(&[other.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "{} is a JSON object whose first key is \"name\": expected a heap snapshot",
            other.display()
        )),
        "{err}"
    );
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let err = run(&[text.to_str().unwrap()]);
    assert!(
        err.contains("starts with 'h', not a JSON object: expected a heap snapshot"),
        "{err}"
    );
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
    assert_eq!(
        lines[1],
        "Sizes as Chrome DevTools' Memory panel shows them (--convention devtools)."
    );
    assert_eq!(lines[2], "Top 3 of 7 constructors by retained size:");
    assert_eq!(
        &lines[4..8],
        [
            "Constructor                 Count  Shallow size  Retained size",
            "ArrayBuffer                     1           8 B         1008 B",
            "system / JSArrayBufferData      1        1000 B         1000 B",
            "Weakling                        1          40 B           90 B",
        ]
    );
    assert!(text.replace('\n', " ").contains(
        "Buffer data (ArrayBuffer backing stores, \"system / JSArrayBufferData\"): 1000 B in 1 store"
    ));
    let prose = text.split("Buffer data").nth(1).unwrap();
    assert!(
        prose.lines().all(|l| l.chars().count() <= 80),
        "the text under the table fits 80 columns: {text}"
    );
    assert!(
        text.contains("Sizes: Chrome DevTools' convention"),
        "{text}"
    );
    assert!(
        text.replace('\n', " ")
            .contains("a WeakMap's edge to a value"),
        "{text}"
    );
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
    assert!(text.replace('\n', " ").contains(
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
    assert!(text.contains(
        "Top 2 functions by self time. Self % and Total % are shares of the 10.0 ms of sampled time"
    ), "{text}");
    assert!(
        text.contains("file:///app/src/lab/event-loop-jam.js:4:"),
        "locations show line and column: {text}"
    );
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
    assert!(
        message(&err).contains("Failed to read /nonexistent/dir/x.heapsnapshot"),
        "{}",
        message(&err)
    );

    let args = parse(&[&path("dominators.heapsnapshot"), "--flamegraph", "x.svg"]).unwrap();
    let err = run_to(&args, &mut Vec::new()).unwrap_err();
    assert!(message(&err).contains("--flamegraph draws CPU profiles"));
}

/// A real Node heap with a leak in a module variable: `--retainers` names the variable and what
/// its value retains, as the Retainers pane of DevTools would lead a person to it.
#[test]
fn retainers_name_the_variable_that_keeps_the_largest_object() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("leak.heapsnapshot");
    let script = format!(
        "import v8 from 'node:v8';\n\
         const keptForever = [];\n\
         export function keep() {{ keptForever.push(Buffer.alloc(3 * 1048576, 1)); }}\n\
         keep(); keep();\n\
         v8.writeHeapSnapshot({:?});\n",
        snapshot.display().to_string()
    );
    let module = dir.path().join("leak.mjs");
    std::fs::write(&module, script).unwrap();
    let status = std::process::Command::new("node")
        .arg(&module)
        .status()
        .expect("node (20 or newer) must be on the PATH");
    assert!(status.success());
    let file = snapshot.display().to_string();
    let text = output(&[&file, "--retainers", "2", "--top", "1"]);
    assert!(
        text.contains("1. system / JSArrayBufferData @") && text.contains(", 3.0 MiB"),
        "{text}"
    );
    assert!(
        text.contains("     backing_store in ArrayBuffer @"),
        "{text}"
    );
    assert!(text.contains("     buffer in Buffer @"), "{text}");
    let held = text
        .split("Held by `")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        held.starts_with("keptForever` (a variable of a module or function scope)"),
        "{text}"
    );
    let retains: f64 = held
        .split(" retains ")
        .nth(1)
        .and_then(|r| r.split(" MiB").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        (6.0..6.5).contains(&retains),
        "the Array retains both Buffers: {text}"
    );
    let section = &text[text.find("What keeps the 2 largest").unwrap()..];
    assert!(
        section.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns: {section}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&output(&[&file, "--retainers", "1", "--json"])).unwrap();
    let holder = &json["retainers"][0]["holder"];
    assert_eq!(holder["name"], "keptForever");
    assert_eq!(holder["edge_type"], "context");
    assert_eq!(holder["value"]["class"], "Array");
    assert!(holder["retained_size"].as_u64().unwrap() >= 6 * 1048576);
    assert!(
        json["constructors"].is_array(),
        "the summary is still there"
    );
}
