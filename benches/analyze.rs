//! `cargo bench --bench analyze`: how fast and how frugal `lab-runner analyze` is on big captures.
//!
//! 1. Generates (once; cached under the target directory) a heap snapshot of each shape that
//!    stresses a different part of the analysis, with Node and
//!    `tests/fixtures/analyze/gen-heapsnapshot.mjs` (see [`SHAPES`]), and a 60 s CPU profile of a
//!    busy Node process.
//! 2. Times the heap snapshot summary (parse + DevTools preparation + dominator tree + retained
//!    sizes + table, `--convention devtools`) in a child process, which reports its own peak RSS
//!    (VmHWM), so the figure is the analysis alone.
//!    Each round runs it with `--threads 1` and with `--threads 2` (the nodes and edges read in
//!    two halves).
//! 3. Times `node -e "JSON.parse(fs.readFileSync(f))"` on the same file, interleaved with (2).
//! 4. Times the floor, interleaved with (2) and (3): the least any reader of the file must do —
//!    read it (256 KiB at a time, as the analysis does) and turn every run of digits into a
//!    number, keeping nothing — to show how much of the 5 × budget (node's time / 5) is left for
//!    everything else: keeping the graph, DevTools' preparation, the dominator tree.
//! 5. Times the CPU profile → top table + flame graph SVG.
//!
//! Wall-clock times are the figures; CPU times are printed beside them because the machines this
//! runs on are shared (on a busy machine the wall clock measures the neighbours too). Figures go to
//! stdout, a table per shape at the end; `docs/PERFORMANCE.md` records them by hand.
//! `LAB_RUNNER_ANALYZE_BENCH_SHAPES=strings,list` limits the run to some shapes.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lab_runner::analyze::cpuprofile::CpuProfile;
use lab_runner::analyze::report;
use lab_runner::cli::analyze::{AnalyzeArgs, peak_rss_bytes, run_to};

/// The child process mode: analyse the file named by this variable, print the peak RSS, exit.
const CHILD_ENV: &str = "LAB_RUNNER_ANALYZE_BENCH_CHILD";
/// The child's `--threads`.
const THREADS_ENV: &str = "LAB_RUNNER_ANALYZE_BENCH_THREADS";
const ROUNDS: usize = 5;
const PROFILE_SECONDS: u64 = 60;

/// The snapshot shapes: a name and the generator's options. Each is 35-150 MB.
const SHAPES: &[(&str, &[&str])] = &[
    // hundreds of thousands of distinct strings, long ones, non-ASCII ones with escapes
    (
        "strings",
        &[
            "--strings",
            "600000",
            "--long-strings",
            "5000",
            "--non-ascii",
            "100000",
        ],
    ),
    // many small plain objects
    ("objects", &["--small-objects", "1000000"]),
    // many Buffers, each with its own backing store
    (
        "buffers",
        &["--buffers", "150000", "--buffer-bytes", "1024"],
    ),
    // a linked list a million deep
    ("list", &["--list", "1000000"]),
    // many closures, each over its own context
    ("closures", &["--closures", "600000"]),
];

struct Measured {
    shape: &'static str,
    mb: f64,
    /// `--threads 1`
    ours: Duration,
    ours_cpu: Duration,
    /// `--threads 2`
    two: Duration,
    two_cpu: Duration,
    /// CPU time of the main thread with `--threads 2`.
    two_main: Duration,
    two_peak: u64,
    node: Duration,
    node_cpu: Duration,
    /// Reading the file and converting its digits, nothing kept (see [`floor`]).
    floor: Duration,
    floor_cpu: Duration,
    peak: u64,
    size: u64,
}

fn main() {
    if let Ok(path) = env::var(CHILD_ENV) {
        child(Path::new(&path));
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cache = target_dir(&root).join("analyze-bench");
    std::fs::create_dir_all(&cache).expect("create the bench cache directory");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {} (other work on the machine slows the wall clock)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let only = env::var("LAB_RUNNER_ANALYZE_BENCH_SHAPES").ok();
    let mut results = Vec::new();
    for &(shape, options) in SHAPES {
        if only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|s| s == shape))
        {
            continue;
        }
        let snapshot = cache.join(format!("{shape}.heapsnapshot"));
        if !snapshot.exists() {
            eprintln!("generating {} with Node ...", snapshot.display());
            let status = Command::new("node")
                .arg("--max-old-space-size=8000")
                .arg(root.join("tests/fixtures/analyze/gen-heapsnapshot.mjs"))
                .arg(&snapshot)
                .args(options)
                .status()
                .expect("run node");
            assert!(status.success(), "the snapshot generator failed");
        }
        results.push(measure(shape, &snapshot));
    }
    println!(
        "\nper shape, medians of {ROUNDS} (wall clock; CPU in brackets):\n\
         | shape | file | lab-runner analyze | MB/s | node JSON.parse | ratio | peak RSS | --threads 2 | main thread CPU | ratio | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|"
    );
    for m in &results {
        println!(
            "| {} | {:.1} MB | {:.3} s ({:.3} s) | {:.0} | {:.3} s ({:.3} s) | {:.1} × ({:.1} ×) | {:.1} MB = {:.2} × | {:.3} s ({:.3} s) | {:.3} s | {:.1} × ({:.1} ×) | {:.2} × |",
            m.shape,
            m.mb,
            m.ours.as_secs_f64(),
            m.ours_cpu.as_secs_f64(),
            m.mb / m.ours.as_secs_f64(),
            m.node.as_secs_f64(),
            m.node_cpu.as_secs_f64(),
            m.node.as_secs_f64() / m.ours.as_secs_f64(),
            m.node_cpu.as_secs_f64() / m.ours_cpu.as_secs_f64(),
            m.peak as f64 / 1e6,
            m.peak as f64 / m.size as f64,
            m.two.as_secs_f64(),
            m.two_cpu.as_secs_f64(),
            m.two_main.as_secs_f64(),
            m.node.as_secs_f64() / m.two.as_secs_f64(),
            m.node_cpu.as_secs_f64() / m.two_cpu.as_secs_f64(),
            m.two_peak as f64 / m.size as f64,
        );
    }

    println!(
        "\nwhat 5 × node leaves, per shape (wall clock; CPU in brackets):\n\
         | shape | budget: node / 5 | floor: read + every digit | left for the rest | lab-runner analyze | its time above the floor |\n\
         |---|---|---|---|---|---|"
    );
    for m in &results {
        let budget = m.node.as_secs_f64() / 5.0;
        let budget_cpu = m.node_cpu.as_secs_f64() / 5.0;
        let floor = m.floor.as_secs_f64();
        let floor_cpu = m.floor_cpu.as_secs_f64();
        println!(
            "| {} | {:.3} s ({:.3} s) | {:.3} s ({:.3} s) | {:.3} s ({:.3} s) | {:.3} s ({:.3} s) | {:.3} s ({:.3} s) |",
            m.shape,
            budget,
            budget_cpu,
            floor,
            floor_cpu,
            budget - floor,
            budget_cpu - floor_cpu,
            m.ours.as_secs_f64(),
            m.ours_cpu.as_secs_f64(),
            m.ours.as_secs_f64() - floor,
            m.ours_cpu.as_secs_f64() - floor_cpu,
        );
    }

    let profile = cpu_profile(&root, &cache);
    let svg = cache.join("bench-flamegraph.svg");
    let mut times = Vec::new();
    let mut stats = String::new();
    for _ in 0..5 {
        let start = Instant::now();
        let loaded = CpuProfile::load(&profile).expect("load the profile");
        let table = report::cpu_profile(&loaded, "bench", 20);
        loaded
            .write_flamegraph(&svg, "bench")
            .expect("write the flame graph");
        times.push(start.elapsed());
        stats = format!(
            "{} samples over {:.1} s, table of {} lines",
            loaded.sample_count(),
            loaded.duration().as_secs_f64(),
            table.lines().count()
        );
    }
    let profile_size = std::fs::metadata(&profile).map(|m| m.len()).unwrap_or(0);
    println!(
        "cpu profile: {} ({:.1} MB; {stats})",
        profile.display(),
        profile_size as f64 / 1e6
    );
    println!(
        "cpu profile -> top table + flame graph SVG, median of 5: {:.1} ms",
        median(&mut times).as_secs_f64() * 1e3
    );
}

/// Times the analysis and node's `JSON.parse` of one snapshot, interleaved.
fn measure(shape: &'static str, snapshot: &Path) -> Measured {
    let size = std::fs::metadata(snapshot)
        .expect("snapshot metadata")
        .len();
    let mb = size as f64 / 1e6;
    println!("{shape}: {} ({mb:.1} MB)", snapshot.display());
    let exe = env::current_exe().expect("current exe");
    let (mut ours, mut ours_cpu, mut node, mut node_cpu) = (vec![], vec![], vec![], vec![]);
    let (mut two, mut two_cpu, mut two_main) = (vec![], vec![], vec![]);
    let (mut peak, mut two_peak) = (0u64, 0u64);
    let (mut floor_times, mut floor_cpu) = (vec![], vec![]);
    for round in 1..=ROUNDS {
        for threads in [1, 2] {
            let start = Instant::now();
            let output = Command::new(&exe)
                .env(CHILD_ENV, snapshot)
                .env(THREADS_ENV, threads.to_string())
                .output()
                .expect("run the analysis child");
            let elapsed = start.elapsed();
            assert!(
                output.status.success(),
                "analysis failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            let rss = field(&stdout, "peak_rss_bytes=") as u64;
            let cpu = field(&stdout, "cpu_seconds=");
            let main_cpu = field(&stdout, "main_cpu_seconds=");
            let phases: Vec<String> = String::from_utf8_lossy(&output.stderr)
                .lines()
                .filter_map(|l| l.strip_prefix("timing: "))
                .filter(|l| !l.starts_with("peak RSS"))
                .map(str::to_owned)
                .collect();
            println!(
                "  round {round}: lab-runner analyze --threads {threads}: {:.3} s wall, {cpu:.2} s CPU ({main_cpu:.3} s on the main thread), peak RSS {:.1} MB ({})",
                elapsed.as_secs_f64(),
                rss as f64 / 1e6,
                phases.join("; ")
            );
            if threads == 1 {
                peak = peak.max(rss);
                ours.push(elapsed);
                // One thread: its own clock is exact (the process's is in 10 ms ticks).
                ours_cpu.push(Duration::from_secs_f64(main_cpu));
            } else {
                two_peak = two_peak.max(rss);
                two_main.push(Duration::from_secs_f64(main_cpu));
                two.push(elapsed);
                two_cpu.push(Duration::from_secs_f64(cpu));
            }
        }

        let start = Instant::now();
        let output = Command::new("node")
            .args([
                "-e",
                "JSON.parse(require('fs').readFileSync(process.argv[1])); \
                 const u = process.cpuUsage(); console.log((u.user + u.system) / 1e6)",
            ])
            .arg(snapshot)
            .output()
            .expect("run node");
        let elapsed = start.elapsed();
        assert!(output.status.success(), "node JSON.parse failed");
        let cpu: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0.0);
        println!(
            "  round {round}: node -e \"JSON.parse(fs.readFileSync(f))\": {:.3} s wall, {cpu:.3} s CPU",
            elapsed.as_secs_f64()
        );
        node.push(elapsed);
        node_cpu.push(Duration::from_secs_f64(cpu));

        let (wall, cpu) = floor(snapshot);
        println!(
            "  round {round}: floor (read + every digit, nothing kept): {:.3} s wall, {:.3} s CPU",
            wall.as_secs_f64(),
            cpu.as_secs_f64()
        );
        floor_times.push(wall);
        floor_cpu.push(cpu);
    }
    Measured {
        shape,
        mb,
        ours: median(&mut ours),
        ours_cpu: median(&mut ours_cpu),
        two: median(&mut two),
        two_cpu: median(&mut two_cpu),
        two_main: median(&mut two_main),
        two_peak,
        node: median(&mut node),
        node_cpu: median(&mut node_cpu),
        floor: median(&mut floor_times),
        floor_cpu: median(&mut floor_cpu),
        peak,
        size,
    }
}

/// The floor: reads the file 256 KiB at a time and turns every run of digits into a number,
/// keeping only their sum (so the work cannot be optimised away). Every reader of a heap
/// snapshot does at least this; a real one also checks each number's place and keeps it. Wall
/// clock and this thread's CPU time.
fn floor(path: &Path) -> (Duration, Duration) {
    use std::io::Read;
    let cpu_before = main_thread_cpu_seconds().unwrap_or(0.0);
    let start = Instant::now();
    let mut file = std::fs::File::open(path).expect("open the snapshot");
    let mut buf = vec![0u8; 256 * 1024];
    let (mut value, mut sum) = (0u64, 0u64);
    loop {
        let n = file.read(&mut buf).expect("read the snapshot");
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            let digit = b.wrapping_sub(b'0');
            if digit < 10 {
                value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
            } else {
                sum = sum.wrapping_add(value);
                value = 0;
            }
        }
    }
    let wall = start.elapsed();
    std::hint::black_box(sum.wrapping_add(value));
    let cpu = main_thread_cpu_seconds().unwrap_or(0.0) - cpu_before;
    (wall, Duration::from_secs_f64(cpu.max(0.0)))
}

/// Runs in the child: the same work as `lab-runner analyze FILE --timings`.
fn child(path: &Path) {
    let args = AnalyzeArgs {
        file: Some(path.to_path_buf()),
        top: 20,
        flamegraph: None,
        diff: None,
        three: None,
        convention: lab_runner::cli::analyze::ConventionArg::Devtools,
        json: false,
        retainers: None,
        timings: true,
        threads: env::var(THREADS_ENV)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(1),
    };
    let mut sink = Vec::new();
    run_to(&args, &mut sink).expect("analysis");
    println!("peak_rss_bytes={}", peak_rss_bytes().unwrap_or(0));
    println!("cpu_seconds={}", own_cpu_seconds().unwrap_or(0.0));
    println!(
        "main_cpu_seconds={}",
        main_thread_cpu_seconds().unwrap_or(0.0)
    );
}

/// A cached 60 s profile of `benches/cpuprofile-workload.mjs` (recorded on the first run).
fn cpu_profile(root: &Path, cache: &Path) -> PathBuf {
    let dir = cache.join(format!("cpuprofile-{PROFILE_SECONDS}s"));
    let existing = |dir: &Path| -> Option<PathBuf> {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "cpuprofile"))
    };
    if let Some(path) = existing(&dir) {
        return path;
    }
    eprintln!("recording a {PROFILE_SECONDS} s CPU profile with Node (once) ...");
    let status = Command::new("node")
        .arg("--cpu-prof")
        .arg("--cpu-prof-dir")
        .arg(&dir)
        .arg(root.join("benches/cpuprofile-workload.mjs"))
        .arg(PROFILE_SECONDS.to_string())
        .status()
        .expect("run node");
    assert!(status.success(), "the profiled workload failed");
    existing(&dir).expect("node wrote no .cpuprofile")
}

/// CPU time of the calling (main) thread, in nanoseconds' precision (`/proc/thread-self/schedstat`):
/// with `--threads 2`, the work on the critical path (what the wall clock would be on two free
/// cores, as long as the second thread's half takes no longer than the first's).
fn main_thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

/// CPU time this process has used, all its threads (`/proc/self/stat`: user + system, in clock
/// ticks of 10 ms; `schedstat` would count the calling thread only).
fn own_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn field(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
