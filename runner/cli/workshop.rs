//! `lab-runner workshop up | down | status`: the instructor's side of a workshop.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::exit;
use crate::workshop::daemon;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lab-runner workshop up                          # on 127.0.0.1, to try it\n  lab-runner workshop up --listen 192.168.1.20    # for the room's network\n  lab-runner workshop status\n  lab-runner workshop down"
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
    /// The server itself (what `up` starts in the background)
    #[command(hide = true)]
    Serve(UpArgs),
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
}

pub async fn run(args: WorkshopArgs) -> Result<u8> {
    match args.command {
        WorkshopCommand::Up(up) => {
            let running = daemon::up(&daemon::UpOptions {
                listen: up.listen,
                port: up.port,
                cert: up.cert.zip(up.key),
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
            for s in board.steps.iter().filter(|s| s.passed + s.here > 0) {
                println!(
                    "  step {:<6} {:>3} passed  {:>3} here   {}",
                    s.step, s.passed, s.here, s.title
                );
            }
            Ok(exit::SUCCESS)
        }
        WorkshopCommand::Serve(up) => {
            let cert = up.cert.as_deref().zip(up.key.as_deref());
            daemon::serve(up.listen, up.port, cert).await?;
            Ok(exit::SUCCESS)
        }
    }
}
