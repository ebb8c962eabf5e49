//! `lab-runner analyze`: read a CPU profile or heap snapshot and print what it shows.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::analyze::cpuprofile::CpuProfile;
use crate::analyze::heapsnapshot::{self, HeapSnapshot};
use crate::analyze::report;

const AFTER_HELP: &str = "\
Examples:
  lab-runner analyze lab-artifacts/jam.cpuprofile --top 10 --flamegraph jam.svg
  lab-runner analyze lab-artifacts/after-leak.heapsnapshot
  lab-runner analyze --diff before.heapsnapshot after.heapsnapshot
  lab-runner analyze --three a.heapsnapshot b.heapsnapshot c.heapsnapshot --json

The file kind is taken from its extension (.cpuprofile, .heapsnapshot), else from its first bytes.
Heap snapshot sizes: shallow = the object's own bytes; retained = what would be freed with it
(dominator tree, weak edges ignored), as Chrome DevTools reports them. Buffer data is the
\"system / JSArrayBufferData\" row.";

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

    /// Print the result as JSON instead of tables
    #[arg(long)]
    pub json: bool,

    /// Print how long each phase took and the peak memory of the process (to stderr)
    #[arg(long)]
    pub timings: bool,
}

/// What kind of capture a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    CpuProfile,
    HeapSnapshot,
}

/// By extension, else by the first bytes (a heap snapshot starts with `{"snapshot"`).
pub fn file_kind(path: &Path) -> Result<FileKind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("cpuprofile") => return Ok(FileKind::CpuProfile),
        Some("heapsnapshot") => return Ok(FileKind::HeapSnapshot),
        _ => {}
    }
    let mut head = [0u8; 64];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("Failed to open {}", path.display()))?;
    let n = file
        .read(&mut head)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    let text: Vec<u8> = head[..n]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    Ok(if text.starts_with(b"{\"snapshot\"") {
        FileKind::HeapSnapshot
    } else {
        FileKind::CpuProfile
    })
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
        let old_snapshot = HeapSnapshot::load(old)?;
        timings.mark(&format!("parse {}", old.display()));
        let new_snapshot = HeapSnapshot::load(new)?;
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
            snapshots.push(HeapSnapshot::load(path)?);
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
                let snapshot = HeapSnapshot::load(path)?;
                timings.mark("parse");
                let summary = snapshot.summary();
                timings.mark("summary (dominator tree, retained sizes)");
                if args.json {
                    json(&summary)?
                } else {
                    report::heap_summary(&snapshot, &summary, &shown(path), args.top)
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
