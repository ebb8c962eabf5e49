//! Whether this machine can run the lab's environments: each check says `ok`, `warn` or `FAIL`, what
//! it found, and how to fix it. The host's own checks (ports, `node`, free disk space) are here;
//! the Docker checks, in [`super::docker::doctor`], use this module's [`Finding`]; `lab-runner
//! doctor` (`cli/doctor.rs`) runs both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::node::find_node;
use crate::lab::{InspectorMode, Lab};
use crate::util::units;

/// The oldest Node.js the runner itself works with (ESM, node:test, the inspector protocol it
/// speaks); a lab may ask for a newer one (`app.node` in lab.yaml).
pub const MIN_NODE: &str = "20.0.0";
/// Below this much free space a check fails (a heap snapshot alone can take hundreds of MB).
pub const DISK_FAIL_BYTES: u64 = 512 * units::MIB;
/// Below this much free space a check warns.
pub const DISK_WARN_BYTES: u64 = 2048 * units::MIB;
/// Longest `node --version` may take.
const NODE_VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Padded by the caller; `FAIL` in capitals so it stands out in a wall of `ok`.
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of `lab-runner doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// What was checked: `docker`, `port 3001`, `node`, ...
    pub check: String,
    /// What was found.
    pub found: String,
    /// What to do about it (for `warn` and `FAIL`; sometimes a tip for `ok`).
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding {
            status: Status::Ok,
            check: check.into(),
            found: found.into(),
            fix: None,
        }
    }

    pub fn warn(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            status: Status::Warn,
            check: check.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            status: Status::Fail,
            check: check.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<4}  {:<14} {}", self.status, self.check, self.found)?;
        if let Some(fix) = &self.fix {
            write!(f, " — fix: {fix}")?;
        }
        Ok(())
    }
}

/// A host port the lab wants on 127.0.0.1, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPort {
    pub port: u16,
    pub purpose: String,
}

/// The ports `lab` wants free on 127.0.0.1: the app's port, and every environment's published
/// inspector port. Sorted by port; a port wanted twice is listed once with both purposes.
pub fn wanted_ports(lab: &Lab) -> Vec<WantedPort> {
    let mut wanted: Vec<WantedPort> = vec![WantedPort {
        port: lab.manifest.app.port,
        purpose: "the app (--fixed-ports, docker-compose.yml and the guide's commands)".into(),
    }];
    for (name, env) in &lab.manifest.environments {
        if let InspectorMode::Open { host_port } = env.inspector {
            let purpose = format!("the inspector of environment `{name}`");
            match wanted.iter_mut().find(|w| w.port == host_port) {
                Some(existing) => {
                    existing.purpose.push_str(" and ");
                    existing.purpose.push_str(&purpose);
                }
                None => wanted.push(WantedPort {
                    port: host_port,
                    purpose,
                }),
            }
        }
    }
    wanted.sort_by_key(|w| w.port);
    wanted
}

/// A host port a running container publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub container: String,
    /// `9229/tcp`.
    pub container_port: String,
    /// As the engine reports it: `0.0.0.0`, `::`, `127.0.0.1`, or empty (all interfaces).
    pub host_ip: String,
    pub host_port: u16,
}

impl Published {
    /// Whether the binding reaches beyond the host's loopback.
    pub fn off_loopback(&self) -> bool {
        match self.host_ip.parse::<IpAddr>() {
            Ok(ip) => !ip.is_loopback(),
            // Empty means every interface.
            Err(_) => true,
        }
    }

    pub fn address(&self) -> String {
        let ip = if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        };
        if ip.contains(':') {
            format!("[{ip}]:{}", self.host_port)
        } else {
            format!("{ip}:{}", self.host_port)
        }
    }
}

/// Whether `wanted.port` is free on 127.0.0.1, naming the container that publishes it when one does.
pub fn port(wanted: &WantedPort, published: &[Published]) -> Finding {
    let check = format!("port {}", wanted.port);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, wanted.port));
    match TcpListener::bind(addr) {
        Ok(_) => Finding::ok(check, format!("{addr} is free, for {}", wanted.purpose)),
        Err(e) => {
            let holder = published
                .iter()
                .find(|p| p.host_port == wanted.port && covers_loopback(&p.host_ip))
                .map(|p| format!(" by the container {}", p.container))
                .unwrap_or_default();
            Finding::warn(
                check,
                format!(
                    "{addr} is taken{holder} ({}), wanted for {}; the runner then uses another free \
                     port and says so",
                    e.kind(),
                    wanted.purpose
                ),
                if holder.is_empty() {
                    format!(
                        "free it to use the lab's commands as written (`ss -ltnp 'sport = :{}'` shows who holds it)",
                        wanted.port
                    )
                } else {
                    format!(
                        "free it to use the lab's commands as written (`docker rm -f{}` if it is a leftover; `lab-runner cleanup` for the runner's own)",
                        holder.trim_start_matches(" by the container")
                    )
                },
            )
        }
    }
}

/// Whether a binding on `host_ip` takes the port on 127.0.0.1 too.
fn covers_loopback(host_ip: &str) -> bool {
    match host_ip.parse::<IpAddr>() {
        Ok(ip) => ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::LOCALHOST),
        Err(_) => host_ip.is_empty(),
    }
}

/// `node --version` is at least `wanted` (`20.16`: the process backend runs this node; the
/// offline image copies it).
pub async fn node(wanted: &str) -> Finding {
    let fix = format!(
        "install Node.js {wanted} or newer (https://nodejs.org) and put it on the PATH, or set LAB_RUNNER_NODE to its binary"
    );
    let Some(minimum) = parse_version(wanted) else {
        return Finding::fail(
            "node",
            format!("the lab asks for Node `{wanted}`, which is not a version"),
            "write app.node in lab.yaml as MAJOR.MINOR (20.16)",
        );
    };
    let path = match find_node() {
        Ok(path) => path,
        Err(e) => return Finding::fail("node", format!("{e:#}"), &fix),
    };
    match node_version(&path).await {
        Ok((text, version)) if version >= minimum => Finding::ok(
            "node",
            format!("{text} at {} (the lab needs {wanted}+)", path.display()),
        ),
        Ok((text, _)) => Finding::fail(
            "node",
            format!(
                "{text} at {} is older than {wanted}, the oldest Node this lab's app and steps work with",
                path.display()
            ),
            &fix,
        ),
        Err(e) => Finding::fail("node", format!("{e:#}"), &fix),
    }
}

/// `node --version` → (`v20.20.2`, (20, 20, 2)).
pub async fn node_version(node: &Path) -> Result<(String, (u32, u32, u32))> {
    let run = tokio::process::Command::new(node)
        .arg("--version")
        .env_remove("NODE_OPTIONS")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NODE_VERSION_TIMEOUT, run)
        .await
        .map_err(|_| {
            anyhow!(
                "`{} --version` did not answer within {} s",
                node.display(),
                NODE_VERSION_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("Failed to run {} --version", node.display()))?;
    if !output.status.success() {
        bail!(
            "`{} --version` failed ({}): {}",
            node.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let version = parse_version(&text).ok_or_else(|| {
        anyhow!(
            "`{} --version` printed `{text}`, not a version",
            node.display()
        )
    })?;
    Ok((text, version))
}

/// `v20.20.2` → (20, 20, 2); `20.16` → (20, 16, 0).
pub fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let text = version.trim();
    let mut parts = text.strip_prefix('v').unwrap_or(text).split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

/// Free space for unprivileged users on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("Failed to read the free space at {}", path.display()))?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// Free disk space at `path`, judged against [`DISK_FAIL_BYTES`] and [`DISK_WARN_BYTES`].
pub fn disk(check: &str, path: &Path) -> Finding {
    let fix = |path: &PathBuf| {
        format!(
            "free space on the file system holding {} (`docker system prune` removes unused images and \
             containers; `lab-runner cleanup --images` the lab's)",
            path.display()
        )
    };
    let path = path.to_path_buf();
    match free_bytes(&path) {
        Ok(free) => {
            let found = format!("{} free at {}", units::bytes(free as f64), path.display());
            if free < DISK_FAIL_BYTES {
                Finding::fail(
                    check,
                    format!(
                        "{found}; the lab needs at least {}",
                        units::bytes(DISK_FAIL_BYTES as f64)
                    ),
                    fix(&path),
                )
            } else if free < DISK_WARN_BYTES {
                Finding::warn(
                    check,
                    format!(
                        "{found}; heap snapshots and images may not fit (below {})",
                        units::bytes(DISK_WARN_BYTES as f64)
                    ),
                    fix(&path),
                )
            } else {
                Finding::ok(check, found)
            }
        }
        Err(e) => Finding::warn(
            check,
            format!("{e:#}"),
            "check the free space by hand: df -h",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_parse() {
        assert_eq!(parse_version("v20.20.2\n"), Some((20, 20, 2)));
        assert_eq!(parse_version("v18.0.0"), Some((18, 0, 0)));
        assert_eq!(parse_version("20.16"), Some((20, 16, 0)));
        assert_eq!(parse_version("node"), None);
        assert!(parse_version("v20.15.1") < parse_version("20.16"));
    }

    #[test]
    fn findings_read_as_one_line() {
        let f = Finding::fail("docker", "not reachable", "start it");
        assert_eq!(
            f.to_string(),
            "FAIL  docker         not reachable — fix: start it"
        );
        assert_eq!(
            Finding::ok("node", "v20").to_string(),
            "ok    node           v20"
        );
    }

    #[test]
    fn a_wildcard_binding_takes_loopback_too() {
        assert!(covers_loopback("0.0.0.0"));
        assert!(covers_loopback("::"));
        assert!(covers_loopback(""));
        assert!(covers_loopback("127.0.0.1"));
        assert!(!covers_loopback("10.0.0.5"));
    }

    #[test]
    fn temp_dir_has_some_free_space() {
        assert!(free_bytes(&std::env::temp_dir()).unwrap() > 0);
    }
}
