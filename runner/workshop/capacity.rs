//! How many seats fit this machine, and the limits each one gets: said by `workshop up` before it
//! starts anything, and a refusal with the numbers when they do not fit.
//!
//! Memory is what decides: a seat is its app's container (at most its memory limit), its lab
//! services (theirs), its participant's terminal container (its limit) and its `start` session on
//! the host. The seats' limits together stay within
//! [`BUDGET_SHARE`] of the memory the host has available; when the lab's own `memory_mb` for every
//! seat does not fit, each seat's app gets the share that does, never less than the environment's
//! `memory_min_mb`. CPU is shared: each container may use at most half the host's cores, so one
//! seat's busy loop leaves the others the rest.

use std::fmt;

use anyhow::{Context as _, Result};

use crate::lab::{Lab, Part};

/// The share of the host's available memory the seats' limits may add up to (the rest is for the
/// engine, the workshop server and whatever else runs).
pub const BUDGET_SHARE: f64 = 0.8;
/// What one seat's `start --web` session takes on the host, in MiB (its resident memory measured
/// with the page served and a check judged: about 20 MiB; with room).
pub const SESSION_MB: u64 = 32;
/// A seat's terminal container's limit, in MiB.
pub const TERMINAL_MB: u64 = crate::env::docker::terminal::TERMINAL_MEMORY_MB;

/// What a seat of a part needs, from the lab.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeatNeeds {
    /// The app's limit the lab gives (`memory_mb`).
    pub app_mb: u64,
    /// The least the app may get (`memory_min_mb`, else `memory_mb`).
    pub app_min_mb: u64,
    /// The lab services' limits together.
    pub services_mb: u64,
}

impl SeatNeeds {
    pub fn of(lab: &Lab, part: &Part) -> SeatNeeds {
        let env = lab.environment(part);
        SeatNeeds {
            app_mb: env.memory_mb,
            app_min_mb: env.memory_min_mb.unwrap_or(env.memory_mb),
            services_mb: env
                .services
                .iter()
                .filter_map(|name| lab.manifest.services.get(name))
                .map(|service| service.memory_mb)
                .sum(),
        }
    }
}

/// The host's memory and cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Host {
    pub available_mb: u64,
    pub cores: usize,
}

impl Host {
    /// This machine: `MemAvailable` from /proc/meminfo, and the cores this process may use.
    pub fn this_machine() -> Result<Host> {
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .context("Failed to read /proc/meminfo for the memory this machine has available")?;
        let available_kb = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemAvailable:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .context("/proc/meminfo has no MemAvailable line")?;
        Ok(Host {
            available_mb: available_kb / 1024,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }
}

/// The limits each of `seats` seats gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub seats: usize,
    /// Each seat's app container's memory limit.
    pub app_mb: u64,
    pub needs: SeatNeeds,
    /// The most CPU each container may use, in cores.
    pub cpus: f64,
    pub host: Host,
}

impl Plan {
    /// One seat's memory at its limits: app, services, terminal and session.
    pub fn per_seat_mb(&self) -> u64 {
        self.app_mb + self.needs.services_mb + TERMINAL_MB + SESSION_MB
    }
    pub fn budget_mb(&self) -> u64 {
        budget(&self.host)
    }
    /// Whether the app gets less than the lab's `memory_mb`.
    pub fn lowered(&self) -> bool {
        self.app_mb < self.needs.app_mb
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seat(s), each: app {} MiB{}",
            self.seats,
            self.app_mb,
            if self.lowered() {
                format!(
                    " (the lab's {} MiB does not fit {} times)",
                    self.needs.app_mb, self.seats
                )
            } else {
                String::new()
            }
        )?;
        if self.needs.services_mb > 0 {
            write!(f, " + services {} MiB", self.needs.services_mb)?;
        }
        write!(
            f,
            " + terminal {TERMINAL_MB} MiB + session {SESSION_MB} MiB = {} MiB;\n  {} MiB in all, of the {} MiB the seats may use ({:.0} % of the {} MiB available);\n  each container at most {} of {} cores (shared fairly)",
            self.per_seat_mb(),
            self.per_seat_mb() * self.seats as u64,
            self.budget_mb(),
            BUDGET_SHARE * 100.0,
            self.host.available_mb,
            trim(self.cpus),
            self.host.cores
        )
    }
}

fn trim(cores: f64) -> String {
    let text = format!("{cores:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn budget(host: &Host) -> u64 {
    (host.available_mb as f64 * BUDGET_SHARE) as u64
}

/// Why `seats` seats do not fit, with the numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct TooMany {
    pub seats: usize,
    /// One seat at its least.
    pub least_per_seat_mb: u64,
    pub budget_mb: u64,
    pub available_mb: u64,
    /// How many would fit.
    pub fit: u64,
}

impl fmt::Display for TooMany {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seats do not fit this machine: each needs at least {} MiB (its app's memory_min_mb, its services, its terminal and its session), {} MiB in all, and the seats may use {} MiB ({:.0} % of the {} MiB available now). {}",
            self.seats,
            self.least_per_seat_mb,
            self.least_per_seat_mb * self.seats as u64,
            self.budget_mb,
            BUDGET_SHARE * 100.0,
            self.available_mb,
            if self.fit == 0 {
                "Not even one fits: free memory first.".to_string()
            } else {
                format!(
                    "At most {} fit: ask for that many, or free memory, or use a bigger machine.",
                    self.fit
                )
            }
        )
    }
}

impl std::error::Error for TooMany {}

/// The limits for `seats` seats with `needs` on `host`, or why they do not fit.
pub fn plan(seats: usize, needs: SeatNeeds, host: Host) -> Result<Plan, TooMany> {
    let budget_mb = budget(&host);
    let fixed = needs.services_mb + TERMINAL_MB + SESSION_MB;
    let least_per_seat_mb = needs.app_min_mb + fixed;
    let share = budget_mb / seats.max(1) as u64;
    if seats == 0 || share < least_per_seat_mb {
        return Err(TooMany {
            seats,
            least_per_seat_mb,
            budget_mb,
            available_mb: host.available_mb,
            fit: budget_mb / least_per_seat_mb.max(1),
        });
    }
    Ok(Plan {
        seats,
        app_mb: needs.app_mb.min(share - fixed),
        needs,
        cpus: (host.cores as f64 / 2.0).max(1.0).min(host.cores as f64),
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: SeatNeeds = SeatNeeds {
        app_mb: 1024,
        app_min_mb: 256,
        services_mb: 0,
    };
    const HOST: Host = Host {
        available_mb: 20_000,
        cores: 2,
    };

    #[test]
    fn few_seats_keep_the_labs_limit_and_many_share_what_fits() {
        let few = plan(3, NODE, HOST).unwrap();
        assert_eq!(few.app_mb, 1024);
        assert!(!few.lowered());
        assert_eq!(few.cpus, 1.0);
        let many = plan(40, NODE, HOST).unwrap();
        // 16,000 MiB budget / 40 = 400 MiB a seat, less the terminal's 64 and the session's 32.
        assert_eq!(many.app_mb, 304);
        assert!(many.lowered());
        assert!(many.per_seat_mb() * 40 <= many.budget_mb());
        let said = many.to_string();
        assert!(
            said.contains("the lab's 1024 MiB does not fit 40 times"),
            "{said}"
        );
        assert!(
            said.contains("+ terminal 64 MiB + session 32 MiB = 400 MiB"),
            "{said}"
        );
    }

    #[test]
    fn too_many_seats_are_refused_with_the_numbers() {
        let refused = plan(80, NODE, HOST).unwrap_err();
        // Each at least 256 + 64 + 32 = 352 MiB; 16,000 / 352 = 45 fit.
        assert_eq!(refused.least_per_seat_mb, 352);
        assert_eq!(refused.fit, 45);
        let said = refused.to_string();
        assert!(said.contains("80 seats do not fit"), "{said}");
        assert!(said.contains("28160 MiB in all"), "{said}");
        assert!(said.contains("At most 45 fit"), "{said}");
        assert!(plan(45, NODE, HOST).is_ok());
        assert!(plan(46, NODE, HOST).is_err());
    }

    #[test]
    fn services_count_at_their_limits_and_are_never_lowered() {
        let needs = SeatNeeds {
            app_mb: 128,
            app_min_mb: 128,
            services_mb: 512,
        };
        let host = Host {
            available_mb: 4000,
            cores: 8,
        };
        // 3,200 MiB budget; each seat 128 + 512 + 64 + 32 = 736: four fit, five do not.
        assert_eq!(plan(4, needs, host).unwrap().per_seat_mb(), 736);
        assert_eq!(plan(5, needs, host).unwrap_err().fit, 4);
        assert_eq!(plan(4, needs, host).unwrap().cpus, 4.0);
    }
}
