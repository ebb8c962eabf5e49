//! `lab-runner analyze`: read a CPU profile or heap snapshot and print what it shows.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::analyze::cpuprofile::CpuProfile;
use crate::analyze::heapsnapshot::{self, Convention, HeapSnapshot, RetainerGraph};
use crate::analyze::report;

const AFTER_HELP: &str = "\
Examples:
  lab-runner analyze lab-artifacts/jam.cpuprofile --top 10 --flamegraph jam.svg
  lab-runner analyze lab-artifacts/after-leak.heapsnapshot
  lab-runner analyze --diff before.heapsnapshot after.heapsnapshot
  lab-runner analyze after-leak.heapsnapshot --retainers
  lab-runner analyze --three a.heapsnapshot b.heapsnapshot c.heapsnapshot --json

The file kind is taken from its content (a heap snapshot starts with a \"snapshot\" header, a CPU
profile with call-tree \"nodes\"), whatever its name.
Heap snapshot sizes follow --convention:
  devtools (default)  what Chrome DevTools' Memory panel shows for the same file: shallow = the
                      object's own bytes plus the internal arrays it alone owns; retained = what
                      would be freed with it (dominator tree; weak edges, WeakMap table -> value
                      edges and edges into what the global object reaches from outside it ignored);
                      classes by constructor name and place (Function, RegExp, {a, b} for plain
                      objects)
  v8                  V8's raw graph: sizes as written, weak edges ignored, classes by name alone
Buffer data is the \"system / JSArrayBufferData\" row.";

/// Read a CPU profile or heap snapshot and print what it shows.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct AnalyzeArgs {
    /// A .cpuprofile (top functions, flame graph) or .heapsnapshot (per-constructor sizes)
    #[arg(value_name = "FILE", required_unless_present_any = ["diff", "three"])]
    pub file: Option<PathBuf>,

    /// How many rows the tables show
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,

    /// Also write a flame graph (SVG) of the CPU profile here
    #[arg(long, value_name = "OUT.svg", requires = "file")]
    pub flamegraph: Option<PathBuf>,

    /// Compare two heap snapshots of one process: objects allocated and freed, per constructor
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with_all = ["file", "three"])]
    pub diff: Option<Vec<PathBuf>>,

    /// Three-snapshot technique: objects allocated between A and B that are still alive in C
    #[arg(long, num_args = 3, value_names = ["A", "B", "C"], conflicts_with_all = ["file", "diff"])]
    pub three: Option<Vec<PathBuf>>,

    /// Also show what keeps the N largest objects of a heap snapshot alive: each one's retainer
    /// path, and the variable or property that holds it with its retained size
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3", requires = "file")]
    pub retainers: Option<usize>,

    /// Whose rules heap snapshot sizes and classes follow (see below)
    #[arg(long, value_enum, value_name = "RULES", default_value_t = ConventionArg::Devtools)]
    pub convention: ConventionArg,

    /// Print the result as JSON instead of tables
    #[arg(long)]
    pub json: bool,

    /// Print how long each phase took and the peak memory of the process (to stderr)
    #[arg(long)]
    pub timings: bool,

    /// Threads for reading a heap snapshot: with 2, the nodes and the edges of a big one
    /// (262,144 nodes, a million edges or more) are each read in two halves at once. Same result;
    /// faster only when a second core is free
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: u8,
}

/// What kind of capture a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    CpuProfile,
    HeapSnapshot,
}

impl FileKind {
    fn describe(self) -> &'static str {
        match self {
            FileKind::CpuProfile => "a CPU profile",
            FileKind::HeapSnapshot => "a heap snapshot",
        }
    }
}

/// What a file holds, from its content: a heap snapshot's JSON starts with its `"snapshot"` header
/// (V8 writes it first), a CPU profile's with `"nodes"` holding call-tree objects (or with one of
/// its other fields). Anything else is an error that says what the file starts with.
pub fn file_kind(path: &Path) -> Result<FileKind> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .with_context(|| format!("Failed to read {}", path.display()))?;
    let expected = "expected a heap snapshot (.heapsnapshot: JSON starting with a \"snapshot\" \
                    header) or a CPU profile (.cpuprofile: JSON with nodes, startTime, endTime, \
                    samples and timeDeltas)";
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    let mut rest = text.iter().copied().filter(|b| !b.is_ascii_whitespace());
    let what = match rest.next() {
        None => "is empty".to_owned(),
        Some(b'{') => {
            let tail: Vec<u8> = rest.collect();
            let key_end = tail.iter().skip(1).position(|&b| b == b'"').map(|i| i + 1);
            let key = match (tail.first(), key_end) {
                (Some(b'"'), Some(end)) => {
                    Some(String::from_utf8_lossy(&tail[1..end]).into_owned())
                }
                _ => None,
            };
            let after = key_end.map_or(&[][..], |end| &tail[(end + 1).min(tail.len())..]);
            match key.as_deref() {
                Some("snapshot") => return Ok(FileKind::HeapSnapshot),
                Some("nodes") if after.starts_with(b":[{") || after.starts_with(b":[]") => {
                    return Ok(FileKind::CpuProfile);
                }
                Some("nodes") => return Ok(FileKind::HeapSnapshot), // the parser says what is wrong
                Some("startTime" | "endTime" | "samples" | "timeDeltas") => {
                    return Ok(FileKind::CpuProfile);
                }
                Some(key) => format!("is a JSON object whose first key is \"{key}\""),
                None => "is a JSON object without a key V8 or the profiler writes".to_owned(),
            }
        }
        Some(b) if b.is_ascii_graphic() => {
            format!("starts with '{}', not a JSON object", b as char)
        }
        Some(b) => format!("starts with byte 0x{b:02x}, not a JSON object"),
    };
    bail!("{} {what}: {expected}", path.display())
}

/// Loads a heap snapshot for `option`, first making sure the file is one.
fn load_snapshot(path: &Path, option: &str, convention: Convention) -> Result<HeapSnapshot> {
    let kind = file_kind(path)?;
    if kind != FileKind::HeapSnapshot {
        bail!(
            "{option} compares heap snapshots, but {} is {}: expected a heap snapshot \
             (.heapsnapshot, as v8.writeHeapSnapshot() or DevTools' Memory panel write it)",
            path.display(),
            kind.describe()
        );
    }
    HeapSnapshot::load_as(path, convention)
}

pub fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(args, &mut out)?;
    out.flush().context("Failed to write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// [`run`], printing to `out` (tests read it back).
pub fn run_to(args: &AnalyzeArgs, out: &mut dyn Write) -> Result<()> {
    let mut timings = Timings::new(args.timings);
    let text = if let Some(paths) = &args.diff {
        let [old, new] = paths.as_slice() else {
            bail!("--diff takes two snapshots: OLD NEW");
        };
        let old_snapshot = load_snapshot(old, "--diff", args.convention.into())?;
        timings.mark(&format!("parse {}", old.display()));
        let new_snapshot = load_snapshot(new, "--diff", args.convention.into())?;
        timings.mark(&format!("parse {}", new.display()));
        let diff = heapsnapshot::diff(&old_snapshot, &new_snapshot);
        timings.mark("diff");
        if args.json {
            json(&diff)?
        } else {
            report::heap_diff(&diff, &shown(old), &shown(new), args.top)
        }
    } else if let Some(paths) = &args.three {
        let [a, b, c] = paths.as_slice() else {
            bail!("--three takes three snapshots: A B C");
        };
        let mut snapshots = Vec::with_capacity(3);
        for path in [a, b, c] {
            snapshots.push(load_snapshot(path, "--three", args.convention.into())?);
            timings.mark(&format!("parse {}", path.display()));
        }
        let summary = heapsnapshot::three_snapshot(&snapshots[0], &snapshots[1], &snapshots[2]);
        timings.mark("three-snapshot summary");
        if args.json {
            json(&summary)?
        } else {
            report::three_snapshot(&summary, [&shown(a), &shown(b), &shown(c)], args.top)
        }
    } else {
        let Some(path) = &args.file else {
            bail!("name a file to analyse, or use --diff or --three");
        };
        match file_kind(path)? {
            FileKind::CpuProfile => {
                let profile = CpuProfile::load(path)?;
                timings.mark("parse");
                let text = if args.json {
                    json(&CpuProfileJson {
                        file: shown(path),
                        duration_ms: profile.duration().as_secs_f64() * 1e3,
                        sampled_ms: profile.sampled_time().as_secs_f64() * 1e3,
                        sample_count: profile.sample_count(),
                        top_functions: profile.top_functions(args.top),
                    })?
                } else {
                    report::cpu_profile(&profile, &shown(path), args.top)
                };
                timings.mark("top functions");
                if let Some(svg) = &args.flamegraph {
                    profile.write_flamegraph(svg, &format!("CPU profile {}", shown(path)))?;
                    timings.mark("flame graph");
                }
                text
            }
            FileKind::HeapSnapshot => {
                if args.flamegraph.is_some() {
                    bail!(
                        "--flamegraph draws CPU profiles; {} is a heap snapshot",
                        path.display()
                    );
                }
                let snapshot = HeapSnapshot::load_with(
                    path,
                    args.convention.into(),
                    usize::from(args.threads),
                )?;
                timings.mark("parse");
                let summary = snapshot.summary();
                timings.mark("summary (dominator tree, retained sizes)");
                let paths = match args.retainers {
                    Some(count) => {
                        let paths = RetainerGraph::load(path)?.largest(count);
                        timings.mark("retainer paths");
                        Some(paths)
                    }
                    None => None,
                };
                match (args.json, paths) {
                    (true, None) => json(&summary)?,
                    (true, Some(paths)) => json(&SummaryWithRetainers {
                        retainers: paths
                            .into_iter()
                            .map(|path| {
                                let holder = path.holder().map(|(step, value)| HolderJson {
                                    name: step.edge.clone(),
                                    edge_type: step.edge_type.clone(),
                                    value: value.clone(),
                                    retained_size: snapshot.retained_size_of_id(value.id),
                                });
                                RetainersJson { path, holder }
                            })
                            .collect(),
                        summary,
                    })?,
                    (false, paths) => {
                        let mut text =
                            report::heap_summary(&snapshot, &summary, &shown(path), args.top);
                        if let Some(paths) = paths {
                            text.push('\n');
                            text.push_str(&report::retainers(&paths, |id| {
                                snapshot.retained_size_of_id(id)
                            }));
                        }
                        text
                    }
                }
            }
        }
    };
    out.write_all(text.as_bytes())
        .context("Failed to write the report")?;
    if let Some(svg) = &args.flamegraph {
        writeln!(out, "Flame graph written to {}", svg.display())
            .context("Failed to write the report")?;
    }
    timings.finish();
    Ok(())
}

/// `--json --retainers`: the summary, and what keeps the largest objects alive.
#[derive(serde::Serialize)]
struct SummaryWithRetainers {
    #[serde(flatten)]
    summary: heapsnapshot::Summary,
    retainers: Vec<RetainersJson>,
}

#[derive(serde::Serialize)]
struct RetainersJson {
    #[serde(flatten)]
    path: heapsnapshot::RetainerPath,
    holder: Option<HolderJson>,
}

/// The variable or property that holds an object, and what its value retains.
#[derive(serde::Serialize)]
struct HolderJson {
    name: String,
    edge_type: String,
    value: heapsnapshot::RetainerNode,
    retained_size: Option<u64>,
}

/// `--json` for a CPU profile.
#[derive(serde::Serialize)]
struct CpuProfileJson {
    file: String,
    duration_ms: f64,
    sampled_ms: f64,
    sample_count: usize,
    top_functions: Vec<crate::analyze::cpuprofile::FunctionTime>,
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("Failed to encode the result")?;
    text.push('\n');
    Ok(text)
}

/// `--timings`: elapsed time per phase and the process's peak resident memory, on stderr.
struct Timings {
    enabled: bool,
    start: Instant,
    last: Instant,
}

impl Timings {
    fn new(enabled: bool) -> Timings {
        let now = Instant::now();
        Timings {
            enabled,
            start: now,
            last: now,
        }
    }

    fn mark(&mut self, phase: &str) {
        if self.enabled {
            let now = Instant::now();
            eprintln!("timing: {phase}: {:.3}s", (now - self.last).as_secs_f64());
            self.last = now;
        }
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!("timing: total: {:.3}s", self.start.elapsed().as_secs_f64());
            match peak_rss_bytes() {
                Some(bytes) => eprintln!("timing: peak RSS: {bytes} bytes"),
                None => eprintln!("timing: peak RSS: unknown on this system"),
            }
        }
    }
}

/// The process's peak resident set size (`VmHWM`), where Linux's /proc tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `--convention`: the analysers' [`Convention`], as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConventionArg {
    /// What Chrome DevTools' Memory panel shows for the same file (its current rules).
    Devtools,
    /// The graph as V8 wrote it: shallow sizes as written, weak edges (and shortcuts but the
    /// root's) ignored, classes grouped by name only, `(closure)`/`(regexp)` as V8 calls them.
    V8,
}

impl From<ConventionArg> for Convention {
    fn from(arg: ConventionArg) -> Self {
        match arg {
            ConventionArg::Devtools => Convention::DevTools,
            ConventionArg::V8 => Convention::V8,
        }
    }
}
