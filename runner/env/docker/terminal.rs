//! A participant's terminal in a container of its own, for a workshop seat (`start --web --shell
//! --isolated-shell`): what a person types on the seat's page, and what "do it for me" types for
//! them, runs there instead of on the instructor's machine.
//!
//! The container is on the environment's own network and nowhere else: it cannot reach another
//! seat's ports on the host's 127.0.0.1, nor the host's files beyond what is mounted (the host's
//! programs read-only, the seat's own folders, its session's control socket). Its Docker is the
//! session's guard (`api_guard`), which reaches only this session's containers. Its first process
//! is `lab-runner forward` (`cli/forward.rs`), so the guide's addresses work inside as on the
//! host: `127.0.0.1:<the app's host port>` reaches the app. The tunnel port the guide names, where
//! the participant's `lab-runner tunnel` listens inside, is mirrored on the host's 127.0.0.1,
//! where the step's checks look for it, exactly while something listens on it inside
//! ([`mirror_tunnel_port`]: a published port would accept connections with the tunnel closed).
//! The container carries the session's labels and is removed with the environment.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use tokio::net::TcpListener;

/// Where this `lab-runner` is inside the terminal container (first on its `PATH`).
pub const EXE_IN_TERMINAL: &str = "/opt/lab-runner/bin/lab-runner";
/// The terminal's `PATH`.
pub const PATH_IN_TERMINAL: &str =
    "/opt/lab-runner/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/bin";
/// The terminal's `HOME` (a private tmpfs).
pub const HOME_IN_TERMINAL: &str = "/tmp";
/// Where the guard's socket is inside: Docker's default, so `docker` and `lab-runner` find it.
const DOCKER_SOCKET_IN_TERMINAL: &str = "/var/run/docker.sock";
/// The host's folders of programs and libraries, mounted read-only where they are on the host
/// (not `/sbin`: Docker puts its init there, and `/usr/sbin` is on the `PATH`).
const HOST_PROGRAMS: &[&str] = &["/usr", "/bin", "/lib", "/lib64", "/lib32"];
/// The most memory the terminal's commands and its `/tmp` may use together: `docker` takes about
/// 23 MiB, `lab-runner analyze` of a 36 MB heap snapshot 48 MiB, the first process 5. A workshop
/// counts it for every seat (`workshop::capacity`), so it stays small.
pub const TERMINAL_MEMORY_MB: u64 = 64;

/// What the terminal container needs from the session.
#[derive(Debug, Clone)]
pub struct TerminalSpec {
    /// Host folders (and files) mounted read-write at the same path: the participant's working
    /// folder, the seat's state folder, the session's control socket.
    pub shared: Vec<PathBuf>,
    /// The session's Docker guard socket on the host.
    pub guard_socket: PathBuf,
    /// This `lab-runner`.
    pub exe: PathBuf,
    /// The port the guide's tunnel listens on (`{{ tunnel_port }}`), mirrored from the terminal
    /// to the host's 127.0.0.1.
    pub tunnel_port: Option<u16>,
    /// `uid:gid` the commands run as (the instructor's own, so files in the shared folders stay
    /// theirs).
    pub user: String,
    /// What the mirror of the tunnel port says after each look: how many looks so far, and
    /// whether the host's side matched the inside then ([`mirror_settled`]).
    pub mirror: MirrorState,
}

/// See [`TerminalSpec::mirror`].
pub type MirrorState = std::sync::Arc<tokio::sync::watch::Sender<(u64, bool)>>;

/// A new [`MirrorState`], before any look.
pub fn mirror_state() -> MirrorState {
    std::sync::Arc::new(tokio::sync::watch::channel((0, true)).0)
}

/// Waits (at most 2 s) until the mirror has looked twice more and the host's side matches the
/// inside: after a command that opens or closes the tunnel, before what looks at the host's port.
pub async fn mirror_settled(state: &MirrorState) {
    let mut looks = state.subscribe();
    let from = looks.borrow().0;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while looks.changed().await.is_ok() {
            let (count, matched) = *looks.borrow();
            if count >= from + 2 && matched {
                return;
            }
        }
    })
    .await;
}

/// Where the app and the services are, for the terminal's forwards.
pub struct Reachable {
    /// `127.0.0.1:<host port>` → `<name>:<port>` on the environment's network.
    pub forwards: Vec<(SocketAddr, String)>,
}

/// The port inside the terminal where the host's connections to the tunnel port arrive, carried
/// on to the tunnel on the terminal's own 127.0.0.1 (not the tunnel port itself: the tunnel binds
/// that one on 127.0.0.1, and a listener on every address would take it first).
pub fn arrival_port(tunnel_port: u16) -> u16 {
    if tunnel_port == 65000 { 65001 } else { 65000 }
}

/// The `lab-runner forward` pairs of the terminal's first process.
pub fn forward_pairs(spec: &TerminalSpec, reachable: &Reachable) -> Vec<String> {
    let mut pairs: Vec<String> = reachable
        .forwards
        .iter()
        .map(|(local, target)| format!("{local}={target}"))
        .collect();
    if let Some(port) = spec.tunnel_port {
        pairs.push(format!("0.0.0.0:{}=127.0.0.1:{port}", arrival_port(port)));
    }
    pairs
}

/// The container's configuration: `image` (the app's, which is there already), on `network`,
/// with `labels`.
pub fn config(
    spec: &TerminalSpec,
    reachable: &Reachable,
    image: &str,
    network: &str,
    labels: HashMap<String, String>,
    cpus: Option<f64>,
) -> ContainerCreateBody {
    // Mounts, not binds: a source that is gone (a session ending while its terminal is made)
    // fails the creation instead of becoming an empty folder on the host.
    let bind = |source: &Path, target: &str, read_only: bool| Mount {
        source: Some(source.display().to_string()),
        target: Some(target.to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    };
    let mut mounts: Vec<Mount> = HOST_PROGRAMS
        .iter()
        .filter(|dir| Path::new(dir).exists())
        .map(|dir| bind(Path::new(dir), dir, true))
        .collect();
    mounts.push(bind(&spec.exe, EXE_IN_TERMINAL, true));
    mounts.push(bind(&spec.guard_socket, DOCKER_SOCKET_IN_TERMINAL, false));
    for shared in &spec.shared {
        mounts.push(bind(shared, &shared.display().to_string(), false));
    }
    let memory = (TERMINAL_MEMORY_MB * 1024 * 1024) as i64;
    let mut cmd = vec![EXE_IN_TERMINAL.to_string(), "forward".to_string()];
    cmd.extend(forward_pairs(spec, reachable));
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(cmd),
        cmd: Some(Vec::new()),
        user: Some(spec.user.clone()),
        working_dir: Some("/".into()),
        env: Some(vec![
            format!("PATH={PATH_IN_TERMINAL}"),
            format!("HOME={HOME_IN_TERMINAL}"),
        ]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,nosuid,nodev,size=32m".to_string(),
            )])),
            ..super::locked_down(HashMap::new(), memory, cpus, network)
        }),
        ..Default::default()
    }
}

/// How often the mirror looks at what listens inside the terminal.
const MIRROR_EVERY: Duration = Duration::from_millis(25);

/// Whether the socket table `tcp` (the text of a network namespace's `/proc/net/tcp`) has a
/// listener on 127.0.0.1:`port` or on every address.
pub fn listens(tcp: &str, port: u16) -> bool {
    tcp.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
            return false;
        };
        let Some((addr, local_port)) = local.split_once(':') else {
            return false;
        };
        *state == "0A"
            && u16::from_str_radix(local_port, 16) == Ok(port)
            && (addr == "0100007F" || addr == "00000000")
    })
}

/// Mirrors the terminal's 127.0.0.1:`port` on the host's 127.0.0.1:`port` for as long as the task
/// runs: the host listens exactly while something listens inside (read from the network namespace
/// of the terminal's process `pid`, `/proc/PID/net/tcp`), and carries each connection to the
/// terminal's `ip`, whose first process passes it on to its own 127.0.0.1 ([`arrival_port`]).
pub async fn mirror_tunnel_port(pid: u32, ip: Ipv4Addr, port: u16, state: MirrorState) {
    let table = PathBuf::from(format!("/proc/{pid}/net/tcp"));
    let arrival = SocketAddr::from((ip, arrival_port(port)));
    let mut open: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let inside = match tokio::fs::read_to_string(&table).await {
            Ok(tcp) => listens(&tcp, port),
            // The terminal is gone.
            Err(_) => false,
        };
        match (inside, &open) {
            (true, None) => {
                if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                    open = Some(tokio::spawn(crate::util::relay::carry(
                        listener,
                        arrival.to_string(),
                    )));
                }
            }
            (false, Some(accepting)) => {
                accepting.abort();
                open = None;
            }
            _ => {}
        }
        state.send_modify(|(count, matched)| {
            *count += 1;
            *matched = inside == open.is_some();
        });
        tokio::time::sleep(MIRROR_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tunnel_port: Option<u16>) -> TerminalSpec {
        TerminalSpec {
            shared: vec![PathBuf::from("/seats/1/work")],
            guard_socket: PathBuf::from("/run/guard.sock"),
            exe: PathBuf::from("/opt/x/lab-runner"),
            tunnel_port,
            user: "1000:1000".into(),
            mirror: mirror_state(),
        }
    }

    #[test]
    fn the_terminal_reaches_the_app_at_the_guides_address_and_publishes_nothing() {
        let reachable = Reachable {
            forwards: vec![("127.0.0.1:41234".parse().unwrap(), "app:3000".into())],
        };
        let config = config(
            &spec(Some(9300)),
            &reachable,
            "img",
            "net",
            HashMap::new(),
            None,
        );
        let cmd = config.entrypoint.unwrap();
        assert_eq!(cmd[1], "forward");
        assert!(cmd.contains(&"127.0.0.1:41234=app:3000".to_string()));
        assert!(cmd.contains(&"0.0.0.0:65000=127.0.0.1:9300".to_string()));
        let host = config.host_config.unwrap();
        assert_eq!(host.port_bindings, Some(HashMap::new()));
        assert_eq!(host.network_mode.as_deref(), Some("net"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.binds, None);
        let mounts: Vec<(String, String, bool)> = host
            .mounts
            .unwrap()
            .into_iter()
            .map(|m| {
                assert_eq!(m.typ, Some(MountType::BIND));
                (m.source.unwrap(), m.target.unwrap(), m.read_only.unwrap())
            })
            .collect();
        let has = |source: &str, target: &str, read_only: bool| {
            mounts.contains(&(source.to_string(), target.to_string(), read_only))
        };
        assert!(has("/usr", "/usr", true), "{mounts:?}");
        assert!(has("/opt/x/lab-runner", EXE_IN_TERMINAL, true));
        assert!(has("/seats/1/work", "/seats/1/work", false));
        assert!(has("/run/guard.sock", "/var/run/docker.sock", false));
        assert!(
            !mounts
                .iter()
                .any(|(source, ..)| source == "/var/run/docker.sock"),
            "the engine's own socket is never mounted: {mounts:?}"
        );
    }

    #[test]
    fn the_arrival_port_is_never_the_tunnel_port() {
        assert_ne!(arrival_port(65000), 65000);
        assert_ne!(arrival_port(9300), 9300);
    }

    #[test]
    fn a_listener_is_read_from_the_socket_table() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2454 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:FDE8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:2455 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
";
        assert!(listens(tcp, 0x2454), "127.0.0.1:9300 listening");
        assert!(listens(tcp, 65000), "every address");
        assert!(
            !listens(tcp, 0x2455),
            "an established connection is not a listener"
        );
        assert!(!listens(tcp, 9229));
    }
}
