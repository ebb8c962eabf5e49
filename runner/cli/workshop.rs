//! `lab-runner workshop up | down | status`: the instructor's side of a workshop.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use super::exit;
use crate::workshop::capacity::{self, TooMany};
use crate::workshop::daemon;
use crate::workshop::seats::SeatsSpec;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lab-runner workshop up                          # on 127.0.0.1, to try it\n  lab-runner workshop up --listen 192.168.1.20    # for the room's network\n  lab-runner workshop up --listen 192.168.1.20 --seats 10 --part part2   # and 10 seats here\n  lab-runner workshop status\n  lab-runner workshop down"
)]
pub struct WorkshopArgs {
    #[command(subcommand)]
    pub command: WorkshopCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorkshopCommand {
    /// Start the workshop server in the background (HTTPS); print the dashboard's and the join address
    Up(UpArgs),
    /// Stop the workshop server
    Down,
    /// Every joined participant: part, step, time on it, checks passed, last failing check
    Status,
    /// Verify a part once per seat, all at once, each with the seats' limits, and report per seat
    Verify(VerifyArgs),
    /// The server itself (what `up` starts in the background)
    #[command(hide = true)]
    Serve(UpArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lab-runner workshop verify part2 --seats 20   # before the room fills: can 20 seats all do Part 2?\n  lab-runner workshop verify part1              # as many as the running workshop has seats"
)]
pub struct VerifyArgs {
    /// The part (`part2` or `2`)
    pub part: String,
    /// How many seats (default: as many as the running workshop has)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=500))]
    pub seats: Option<u64>,
    /// The lab folder (default: as `start` finds it)
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The address participants reach this machine at (default: 127.0.0.1, this machine only)
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// The port (default: a free one)
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub port: u16,
    /// A certificate (PEM) to serve instead of one made for --listen; needs --key
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Also run N seats on this machine for participants without Docker: each a warm session of
    /// --part with a terminal on its page, reached through this server (needs Docker here)
    #[arg(long, value_name = "N", requires = "part", value_parser = clap::value_parser!(u64).range(1..=500))]
    pub seats: Option<u64>,
    /// The part the seats start at (`part2` or `2`)
    #[arg(long, value_name = "PART", requires = "seats")]
    pub part: Option<String>,
    /// The lab folder for the seats (default: as `start` finds it)
    #[arg(long, value_name = "DIR", requires = "seats")]
    pub lab: Option<PathBuf>,
    /// What `up` decided for the seats (for the server it starts)
    #[arg(long, hide = true)]
    pub seats_spec: Option<String>,
}

pub async fn run(args: WorkshopArgs) -> Result<u8> {
    match args.command {
        WorkshopCommand::Up(up) => {
            let seats = match (up.seats, &up.part) {
                (Some(count), Some(part)) => {
                    match seats_spec(count as usize, part, up.lab.clone()).await? {
                        Ok(spec) => Some(spec),
                        Err(refused) => {
                            eprintln!("error: {refused}");
                            return Ok(exit::FAILED);
                        }
                    }
                }
                _ => None,
            };
            let running = daemon::up(&daemon::UpOptions {
                listen: up.listen,
                port: up.port,
                cert: up.cert.zip(up.key),
                seats,
            })
            .await?;
            println!(
                "workshop server running at https://{} (pid {})",
                running.addr, running.pid
            );
            println!("your dashboard (keep this address to yourself: it holds your key):");
            println!("{}", running.dashboard_url());
            println!("participants join with:");
            println!("lab-runner start PART --join '{}'", running.join_url());
            if running.addr.ip().is_loopback() {
                println!(
                    "it listens on {} only: for the room's network, `workshop down`, then `workshop up --listen <this machine's address>`",
                    running.addr.ip()
                );
            }
            if !running.seats.is_empty() {
                println!(
                    "{} seat(s) ready; their printable sheet (addresses and QR codes; it holds your key):",
                    running.seats.len()
                );
                println!("{}", running.sheet_url());
            }
            println!("its log: {}", running.log.display());
            Ok(exit::SUCCESS)
        }
        WorkshopCommand::Down => {
            if daemon::down().await? {
                println!("workshop server stopped");
            } else {
                println!("no workshop server is running");
            }
            Ok(exit::SUCCESS)
        }
        WorkshopCommand::Status => {
            let Some(running) = daemon::running()? else {
                println!("no workshop server is running; `lab-runner workshop up` starts one");
                return Ok(exit::FAILED);
            };
            let board = daemon::status(&running).await?;
            println!(
                "workshop at https://{} (pid {}): {} joined",
                running.addr,
                running.pid,
                board.participants.len()
            );
            for p in &board.participants {
                let at = match (&p.part, &p.step) {
                    _ if p.left => "left".to_string(),
                    (Some(part), Some(step)) => format!("{part} {step}"),
                    (Some(part), None) if p.finished.contains(part) => format!("{part} finished"),
                    (Some(part), None) => format!("{part} starting"),
                    _ => "—".to_string(),
                };
                let at = if !p.left && p.seen_s_ago >= crate::workshop::board::QUIET_AFTER_S {
                    format!("{at} (quiet {} min)", p.seen_s_ago / 60)
                } else {
                    at
                };
                println!(
                    "  {:<20} {:<14} {:>5} s on it  {:>3} checks passed",
                    p.name, at, p.on_step_s, p.checks_passed
                );
                if let Some(f) = &p.last_failure {
                    println!(
                        "      last failing check at {}: {} (expected {}, saw {})",
                        f.step, f.diagnosis.what, f.diagnosis.expected, f.diagnosis.saw
                    );
                }
            }
            if !running.seats.is_empty() {
                println!(
                    "{} seat(s) on this machine; certificate SHA-256 {}:",
                    running.seats.len(),
                    running.pin
                );
                // The seats' lab, for how far each seat is in its part (its own progress).
                let lab = running
                    .seats_lab
                    .clone()
                    .and_then(|dir| super::run::load_lab(Some(dir)).ok());
                for seat in &running.seats {
                    let alive = crate::util::runner_pid::is_live_runner(&seat.pid.to_string());
                    let done = lab.as_ref().and_then(|lab| {
                        let part = lab.parts.iter().find(|p| p.id() == seat.part)?;
                        let progress = seat.progress().part(lab, part).ok()?;
                        Some(format!(
                            "({}/{} done)",
                            progress.done_count(part),
                            part.file.steps.len()
                        ))
                    });
                    println!(
                        "  {:<8} {:<8} {:<6} {:<12} {}",
                        seat.name(),
                        if alive { "running" } else { "STOPPED" },
                        seat.part,
                        done.unwrap_or_default(),
                        seat.url(&running.addr.to_string())
                    );
                    if !alive {
                        if seat.given_up {
                            println!(
                                "      it ended {} times in a row within {} s of starting and is left stopped",
                                crate::workshop::seats::QUICK_ENDS_ALLOWED,
                                crate::workshop::seats::QUICK_END.as_secs()
                            );
                        }
                        println!("      its log: {}", seat.log().display());
                    }
                }
            }
            for s in board.steps.iter().filter(|s| s.passed + s.here > 0) {
                println!(
                    "  step {:<6} {:>3} passed  {:>3} here   {}",
                    s.step, s.passed, s.here, s.title
                );
            }
            Ok(exit::SUCCESS)
        }
        WorkshopCommand::Verify(args) => verify(args).await,
        WorkshopCommand::Serve(up) => {
            let cert = up.cert.as_deref().zip(up.key.as_deref());
            let seats: Option<SeatsSpec> = up
                .seats_spec
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .context("--seats-spec is not what `workshop up` writes")?;
            // The seats' lab: which part a seat goes on with when its session ends.
            let seats = match seats {
                Some(spec) => {
                    let lab = super::run::load_lab(spec.lab.clone())?;
                    Some((spec, lab))
                }
                None => None,
            };
            daemon::serve(up.listen, up.port, cert, seats).await?;
            Ok(exit::SUCCESS)
        }
    }
}

/// How many networks Docker's default address pools give (15 /16s and 16 /20s, the default bridge's
/// among them), when the engine is not told otherwise.
const DEFAULT_POOL_NETWORKS: usize = 31;
/// How many more the runner makes in its own range when those run out (`subnets::RANGE`, /24s).
const RUNNER_RANGE_NETWORKS: usize = 256;

/// The seats' plan for `count` seats of `part`: said before anything starts, or the refusal with
/// the numbers when they do not fit this machine.
async fn seats_spec(
    count: usize,
    part: &str,
    lab_dir: Option<PathBuf>,
) -> Result<std::result::Result<SeatsSpec, TooMany>> {
    let lab = super::run::load_lab(lab_dir.clone())?;
    let part = super::run::one_part(&lab, part)?;
    let needs = capacity::SeatNeeds::of(&lab, part);
    let plan = match capacity::plan(count, needs, capacity::Host::this_machine()?) {
        Ok(plan) => plan,
        Err(refused) => return Ok(Err(refused)),
    };
    let docker = crate::env::docker::connect::connect()
        .await
        .context("Seats run their environments in Docker on this machine")?;
    // Each seat's environment has a network of its own; the engine's default address pools hold
    // about 30 (the bridge's own among them), the engine does not say how many it has, and past
    // them the runner makes networks in its own range.
    let networks = docker
        .list_networks(&std::collections::HashMap::new())
        .await
        .map_or(0, |n| n.len());
    if count + networks > DEFAULT_POOL_NETWORKS + RUNNER_RANGE_NETWORKS {
        println!(
            "note: each seat needs a network of its own, and {networks} exist; Docker's default address pools hold about {DEFAULT_POOL_NETWORKS} and the runner's own range {} another {RUNNER_RANGE_NETWORKS}, so unless this engine has more (`default-address-pools` in /etc/docker/daemon.json), the seats past that will not start",
            crate::env::docker::subnets::RANGE
        );
    }
    println!("seats: {plan}");
    let lab_dir = lab_dir
        .map(|dir| std::path::absolute(&dir).unwrap_or(dir))
        .or_else(|| std::path::absolute(&lab.dir).ok());
    Ok(Ok(SeatsSpec::new(&plan, part.id(), lab_dir)))
}

/// `workshop verify`: the part's verify once per seat, all at once, reported per seat.
async fn verify(args: VerifyArgs) -> Result<u8> {
    let count = match args.seats {
        Some(n) => n as usize,
        None => match daemon::running()? {
            Some(running) if !running.seats.is_empty() => running.seats.len(),
            _ => {
                return Err(super::run::UsageError(
                    "no workshop with seats is running: say how many with --seats N".into(),
                )
                .into());
            }
        },
    };
    let spec = match seats_spec(count, &args.part, args.lab).await? {
        Ok(spec) => spec,
        Err(refused) => {
            eprintln!("error: {refused}");
            return Ok(exit::FAILED);
        }
    };
    println!(
        "verifying {} on {} seat(s) at once, each in an environment of its own",
        spec.part, spec.count
    );
    let begun = std::time::Instant::now();
    let results = crate::workshop::seat_verify::verify_all(&spec).await?;
    let wall = begun.elapsed();
    for r in &results {
        let verdict = if r.ok() { "PASS" } else { "FAIL" };
        let counts = if r.failed > 0 {
            format!("{} passed, {} failed", r.passed, r.failed)
        } else {
            format!("{} passed", r.passed)
        };
        println!(
            "  seat {:<4} {verdict}  {counts:<20} {:>6.1} s",
            r.number,
            r.elapsed.as_secs_f64()
        );
        for failure in &r.failures {
            println!("      {failure}");
        }
        if let Some(why) = &r.broken {
            println!("      {why}");
        }
    }
    let good = results.iter().filter(|r| r.ok()).count();
    let slowest = results.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let fastest = results.iter().map(|r| r.elapsed).min().unwrap_or_default();
    println!(
        "{good} of {} seat(s) passed; all in {:.1} s (the fastest seat {:.1} s, the slowest {:.1} s)",
        results.len(),
        wall.as_secs_f64(),
        fastest.as_secs_f64(),
        slowest.as_secs_f64()
    );
    Ok(if good == results.len() {
        exit::SUCCESS
    } else {
        exit::FAILED
    })
}
