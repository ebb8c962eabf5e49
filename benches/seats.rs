//! Issue 18's seat figures, with the real binary and Docker on this machine:
//!
//! 1. **50 seats from nothing to all healthy** (`workshop up --seats 50 --part part2` until it
//!    returns, every seat's environment up and its first step waiting) against the engine's own
//!    time for 50 bare `docker run -d` of the same image in the same run (goal ≤ 1.2×), and the
//!    memory of an idle seat (its session's RSS and its container's usage);
//! 2. **a participant's arrival**: from asking for a warm seat's page through the workshop's HTTPS
//!    to having the page and its state waiting at the first step (goal ≤ 100 ms);
//! 3. **`workshop verify part2` on 20 seats against one seat**, the ratio and what bounds it.
//!
//! Run with `cargo bench --bench seats` (needs Docker; about 10 minutes). `SEATS=N` and
//! `VERIFY_SEATS=N` change the counts; `VERIFY_SEATS=0` leaves the third out. Figures go to
//! docs/PERFORMANCE.md by hand, with the date, the machine and its load.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

#[path = "common/machine.rs"]
mod machine;
use machine::load;

fn lab_runner(state: &std::path::Path, args: &[&str]) -> Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_lab-runner"))
        .args(args)
        .env("LAB_RUNNER_STATE_DIR", state)
        .output()
        .with_context(|| format!("lab-runner {}", args.join(" ")))
}

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).output()?;
    if !out.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// RSS of a process, in KiB.
fn rss_kib(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

fn main() -> Result<()> {
    let seats = env_count("SEATS", 50);
    let verify_seats = env_count("VERIFY_SEATS", 20);
    let state = tempfile::tempdir()?;
    println!("machine: load {} at the start", load());

    // The lab image, made once beforehand (neither side of the comparison builds it).
    let warm = lab_runner(state.path(), &["verify", "part2", "--step", "2.0"])?;
    if !warm.status.success() {
        bail!(
            "could not make the lab image: {}",
            String::from_utf8_lossy(&warm.stdout)
        );
    }
    let image = docker(&[
        "image",
        "ls",
        "--filter",
        "label=io.lab-runner.image-source=host-node",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])?
    .lines()
    // The app's own (untagged images of other labs' tests carry the same label).
    .find(|l| l.starts_with("lab-runner/lab-app:"))
    .context("no lab image after verify")?
    .to_string();

    // 1a. The engine's own time: bare `docker run -d` of the same image, one after another.
    let begun = Instant::now();
    for i in 0..seats {
        docker(&[
            "run",
            "-d",
            "--label",
            "io.lab-runner.bench=seats",
            "--name",
            &format!("lab-runner-bench-bare-{i}"),
            "--memory",
            "320m",
            &image,
        ])?;
    }
    let bare = begun.elapsed();
    let ids = docker(&["ps", "-aq", "--filter", "label=io.lab-runner.bench=seats"])?;
    let ids: Vec<&str> = ids.lines().collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids);
    docker(&rm)?;

    // 1b. The seats, from nothing to every one waiting at its first step.
    let begun = Instant::now();
    let up = lab_runner(
        state.path(),
        &[
            "workshop",
            "up",
            "--seats",
            &seats.to_string(),
            "--part",
            "part2",
        ],
    )?;
    let all_ready = begun.elapsed();
    if !up.status.success() {
        bail!(
            "workshop up failed: {}{}",
            String::from_utf8_lossy(&up.stdout),
            String::from_utf8_lossy(&up.stderr)
        );
    }
    println!(
        "{seats} seats all healthy: {:.1} s; {seats} bare `docker run -d`: {:.1} s; ratio {:.2} (goal ≤ 1.2)",
        all_ready.as_secs_f64(),
        bare.as_secs_f64(),
        all_ready.as_secs_f64() / bare.as_secs_f64()
    );

    let running: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        state.path().join("workshop.json"),
    )?)?;
    let addr = running["addr"].as_str().unwrap_or_default().to_string();
    let pin = running["pin"].as_str().unwrap_or_default().to_string();
    let seat_list = running["seats"].as_array().cloned().unwrap_or_default();

    // Idle memory: each seat's session, and its containers (app, terminal) as the engine counts them.
    std::thread::sleep(Duration::from_secs(5));
    let sessions_kib: u64 = seat_list
        .iter()
        .map(|s| rss_kib(s["pid"].as_u64().unwrap_or(0)))
        .sum();
    let stats = docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
    ])?;
    let containers_mib: f64 = stats
        .lines()
        .filter(|l| l.starts_with("lab-runner-"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|usage| {
            let (n, unit) = usage.split_at(usage.find(|c: char| c.is_alphabetic())?);
            let n: f64 = n.parse().ok()?;
            Some(match unit {
                "KiB" => n / 1024.0,
                "MiB" => n,
                "GiB" => n * 1024.0,
                _ => n / 1024.0 / 1024.0,
            })
        })
        .sum();
    println!(
        "an idle seat: its session {:.1} MiB RSS + its containers (app, terminal) {:.1} MiB = {:.1} MiB",
        sessions_kib as f64 / 1024.0 / seats as f64,
        containers_mib / seats as f64,
        (sessions_kib as f64 / 1024.0 + containers_mib) / seats as f64
    );

    // 2. Arrival: a participant opens their card's address (a new TLS connection each time).
    lab_runner::util::crypto::ensure_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut arrivals = Vec::new();
    runtime.block_on(async {
        for seat in &seat_list {
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(lab_runner::workshop::tls::pinned_client_config(&pin)?)
                .timeout(Duration::from_secs(10))
                .build()?;
            let token = seat["token"].as_str().unwrap_or_default();
            let n = seat["number"].as_u64().unwrap_or(0);
            let begun = Instant::now();
            let page = client
                .get(format!("https://{addr}/seat/{n}/?token={token}"))
                .send()
                .await?
                .text()
                .await?;
            let state: serde_json::Value = client
                .get(format!("https://{addr}/seat/{n}/state?token={token}"))
                .send()
                .await?
                .json()
                .await?;
            let took = begun.elapsed();
            if !page.contains("<script") || state["status"]["waiting"] != true {
                bail!("seat {n} was not ready when its participant arrived");
            }
            arrivals.push(took.as_secs_f64() * 1000.0);
        }
        anyhow::Ok(())
    })?;
    println!(
        "arrival to a ready seat (page + its state, new HTTPS connection): median {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal ≤ 100 ms)",
        percentile(&mut arrivals, 0.5),
        percentile(&mut arrivals, 0.99),
        percentile(&mut arrivals, 1.0)
    );

    let begun = Instant::now();
    let down = lab_runner(state.path(), &["workshop", "down"])?;
    println!(
        "workshop down ({seats} seats and their environments): {:.1} s{}",
        begun.elapsed().as_secs_f64(),
        if down.status.success() {
            ""
        } else {
            " (FAILED)"
        }
    );

    // 3. workshop verify: one seat, then many at once.
    if verify_seats > 0 {
        let mut times = Vec::new();
        for n in [1, verify_seats] {
            let begun = Instant::now();
            let out = lab_runner(
                state.path(),
                &["workshop", "verify", "part2", "--seats", &n.to_string()],
            )?;
            let took = begun.elapsed().as_secs_f64();
            let said = String::from_utf8_lossy(&out.stdout);
            println!(
                "workshop verify part2 on {n} seat(s): {took:.1} s, {} (load {})",
                said.lines().last().unwrap_or_default(),
                load()
            );
            times.push(took);
        }
        println!(
            "{verify_seats} seats at once against one: {:.2}× the time ({:.2}× what {verify_seats} one after another would take)",
            times[1] / times[0],
            times[1] / (times[0] * verify_seats as f64)
        );
    }
    println!("machine: load {} at the end", load());
    Ok(())
}
