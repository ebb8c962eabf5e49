//! `doctor`'s Docker checks: the engine and its API version, the lab image (present, or buildable
//! offline), free space where the engine keeps its data, and running containers that publish a Node
//! inspector beyond loopback — remote code execution for anyone who can reach the host.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use bollard::models::{ContainerInspectResponse, PortBinding};

use super::client::DockerClient;
use super::image::{self, ImageInput, PlanSource, Recipe};
use super::{INSPECTOR_PORT, connect, rootfs};
use crate::env::doctor::{self as checks, Finding, Published};
use crate::util::units;

/// The engine check, and the connection when it answered.
pub struct Engine {
    pub finding: Finding,
    pub docker: Option<DockerClient>,
}

/// Docker reachable, with its engine and API versions.
pub async fn engine() -> Engine {
    let host = connect::docker_host();
    let docker = match connect::connect().await {
        Ok(docker) => docker,
        Err(e) => {
            let reason = match e.downcast_ref::<connect::DockerUnavailable>() {
                Some(u) => u.reason.clone(),
                None => format!("{e:#}"),
            };
            return Engine {
                finding: Finding::fail(
                    "docker",
                    format!("not reachable at {host}: {reason}"),
                    "start the Docker daemon (`sudo service docker start`), or point DOCKER_HOST at a \
                     running one; without Docker: `lab-runner verify --backend process` (parts that \
                     need a container say so)",
                ),
                docker: None,
            };
        }
    };
    let finding = match docker.version().await {
        Ok((version, api)) => Finding::ok(
            "docker",
            format!("Docker Engine {version}, API {api}, at {host}"),
        ),
        Err(e) => Finding::warn(
            "docker",
            format!("reachable at {host}, but its version is unknown: {e:#}"),
            "check the daemon's health: docker version",
        ),
    };
    Engine {
        finding,
        docker: Some(docker),
    }
}

/// An image of the lab (`check` names it: `image`, `image inventory`): present under the tag
/// `image::ensure` would use, or how it would be made — offline (the host's files and every shared
/// library they load found), from a Dockerfile, or pulled from a registry. With `docker` `None`,
/// only whether it can be made is judged.
pub async fn image(docker: Option<&DockerClient>, check: &str, input: &ImageInput<'_>) -> Finding {
    let plan = match image::plan(input) {
        Ok(plan) => plan,
        Err(e) => {
            let fix = match input.recipe {
                Recipe::HostNode { .. } => {
                    "install Node.js 20+ on the PATH (or set LAB_RUNNER_NODE), and check the lab's app.source"
                }
                Recipe::Offline(_) => {
                    "install what `image: offline: host:` names, or leave files out with `exclude:`"
                }
                _ => "check the image's source folder and its `files:` in lab.yaml",
            };
            return Finding::fail(check, format!("the image cannot be planned: {e:#}"), fix);
        }
    };
    let tag = &plan.reference;
    let present = match docker {
        Some(d) => match d.image_exists(tag).await {
            Ok(present) => Some(present),
            Err(e) => {
                return Finding::warn(
                    check,
                    format!("{e:#}"),
                    "check the daemon's health: docker images",
                );
            }
        },
        None => None,
    };
    if present == Some(true) {
        return Finding::ok(
            check,
            format!("{tag} is present (unchanged since it was built: no build needed)"),
        );
    }
    let not_checked = if present.is_none() {
        " (whether it is present was not checked: Docker is not reachable)"
    } else {
        ""
    };
    let size = |files: &[rootfs::ImageFile]| -> u64 {
        files
            .iter()
            .filter_map(|f| std::fs::metadata(&f.host).ok())
            .map(|m| m.len())
            .sum()
    };
    match &plan.source {
        PlanSource::HostNode { node, .. } => {
            let node = node.clone();
            let runtime = tokio::task::spawn_blocking(move || rootfs::node_runtime(&node)).await;
            match runtime {
                Ok(Ok(files)) => Finding::ok(
                    check,
                    format!(
                        "{tag} is not built yet; it can be built offline from {} and {} shared \
                         libraries ({}){not_checked}",
                        files[0].host.display(),
                        files.len() - 1,
                        units::bytes(size(&files) as f64)
                    ),
                ),
                Ok(Err(e)) => Finding::fail(
                    check,
                    format!("{tag} is not built and cannot be built offline: {e:#}{not_checked}"),
                    "install a Node.js 20+ build whose shared libraries are on this machine (or set \
                     LAB_RUNNER_NODE); with a registry: --image-from dockerfile",
                ),
                Err(e) => Finding::fail(
                    check,
                    format!("the check of node's libraries failed: {e}"),
                    "run it again; report a bug if it persists",
                ),
            }
        }
        PlanSource::Offline { runtime, .. } => Finding::ok(
            check,
            format!(
                "{tag} is not built yet; it can be built offline from {} host files and the \
                 libraries they load ({}){not_checked}",
                runtime.len(),
                units::bytes(size(runtime) as f64)
            ),
        ),
        PlanSource::Dockerfile { dockerfile, .. } => Finding::ok(
            check,
            format!(
                "{tag} is not built yet; it will be built from {} (its FROM image must be on the \
                 engine or pullable){not_checked}",
                dockerfile.display()
            ),
        ),
        PlanSource::Registry { base, .. } => {
            let base_present = match docker {
                Some(d) => d.image_exists(base).await.ok(),
                None => None,
            };
            match base_present {
                Some(true) => Finding::ok(
                    check,
                    format!("{tag} is not built yet; {base} is present, so it builds offline"),
                ),
                _ => Finding::warn(
                    check,
                    format!(
                        "{tag} is not built yet, and {base} is not on the engine: it must be pulled \
                         from its registry{not_checked}"
                    ),
                    "with no registry reachable: `docker load` the image, or use `image: offline:` \
                     or `image: dockerfile:`",
                ),
            }
        }
        PlanSource::Existing => Finding::fail(
            check,
            format!("the image {tag} is not on this Docker engine{not_checked}"),
            "build or load it first (`docker images` lists what there is)",
        ),
    }
}

/// Free space where the engine keeps images and containers (its `DockerRootDir`), when the engine
/// runs on this machine.
pub async fn disk(docker: &DockerClient) -> Finding {
    const CHECK: &str = "disk docker";
    let info = match docker.info().await {
        Ok(info) => info,
        Err(e) => {
            return Finding::warn(
                CHECK,
                format!("{e:#}"),
                "check the daemon's health: docker info",
            );
        }
    };
    let Some(root) = info.docker_root_dir else {
        return Finding::warn(
            CHECK,
            "the engine does not say where it keeps its data",
            "check the free space by hand: docker system df; df -h",
        );
    };
    let host = connect::docker_host();
    let local = host.starts_with("unix://") || host.starts_with("npipe://");
    if !local || !Path::new(&root).exists() {
        return Finding::warn(
            CHECK,
            format!(
                "not checked: the engine keeps its data at {root} on another machine or VM ({host})"
            ),
            "check the free space there: docker system df",
        );
    }
    checks::disk(CHECK, Path::new(&root))
}

/// Every host port published by a running container (any container, not only the runner's).
pub async fn published_ports(docker: &DockerClient) -> Result<Vec<Published>> {
    let containers = docker.list_containers(false, &HashMap::new()).await?;
    let mut out = Vec::new();
    for c in containers {
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .or(c.id)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        for p in c.ports.unwrap_or_default() {
            let Some(host_port) = p.public_port else {
                continue;
            };
            let proto = p
                .typ
                .map(|t| t.to_string())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "tcp".into());
            out.push(Published {
                container: name.clone(),
                container_port: format!("{}/{proto}", p.private_port),
                host_ip: p.ip.unwrap_or_default(),
                host_port,
            });
        }
    }
    out.sort_by(|a, b| (&a.container, a.host_port).cmp(&(&b.container, b.host_port)));
    out.dedup();
    Ok(out)
}

/// Why a container's inspector is reachable from the network, if it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub container: String,
    pub image: String,
    /// What gives it away, for people.
    pub reason: String,
}

/// Judges one inspected container: it publishes its port 9229 beyond loopback, or it starts Node with
/// `--inspect` (in `NODE_OPTIONS` or on its command line) and publishes any port beyond loopback.
pub fn exposure(inspect: &ContainerInspectResponse) -> Option<Exposure> {
    let name = inspect
        .name
        .clone()
        .or_else(|| inspect.id.clone())
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let config = inspect.config.clone().unwrap_or_default();
    let image = config.image.clone().unwrap_or_default();
    let ports: HashMap<String, Option<Vec<PortBinding>>> = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.clone())
        .unwrap_or_default();
    let mut off_loopback: Vec<Published> = Vec::new();
    for (container_port, bindings) in &ports {
        for b in bindings.iter().flatten() {
            let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let published = Published {
                container: name.clone(),
                container_port: container_port.clone(),
                host_ip: b.host_ip.clone().unwrap_or_default(),
                host_port,
            };
            if published.off_loopback() {
                off_loopback.push(published);
            }
        }
    }
    off_loopback
        .sort_by(|a, b| (&a.container_port, a.host_port).cmp(&(&b.container_port, b.host_port)));
    let inspector_port = format!("{INSPECTOR_PORT}/tcp");
    if let Some(p) = off_loopback
        .iter()
        .find(|p| p.container_port == inspector_port)
    {
        return Some(Exposure {
            container: name,
            image,
            reason: format!(
                "publishes the inspector port {inspector_port} on {}",
                p.address()
            ),
        });
    }
    let inspect_flag = inspect_flag(&config);
    match (inspect_flag, off_loopback.first()) {
        (Some(flag), Some(p)) => Some(Exposure {
            container: name,
            image,
            reason: format!(
                "runs Node with {flag} and publishes {} on {}",
                p.container_port,
                p.address()
            ),
        }),
        _ => None,
    }
}

/// Where the container turns the inspector on: `NODE_OPTIONS=--inspect=...` or a `--inspect...`
/// argument of its command.
fn inspect_flag(config: &bollard::models::ContainerConfig) -> Option<String> {
    let from_env = config.env.iter().flatten().find_map(|kv| {
        let value = kv.strip_prefix("NODE_OPTIONS=")?;
        value
            .split_whitespace()
            .find(|w| w.starts_with("--inspect"))
            .map(|w| format!("NODE_OPTIONS={w}"))
    });
    from_env.or_else(|| {
        config
            .entrypoint
            .iter()
            .flatten()
            .chain(config.cmd.iter().flatten())
            .find(|a| a.starts_with("--inspect"))
            .cloned()
    })
}

/// One warning per running container whose inspector is reachable beyond loopback; one `ok` line
/// when there is none.
pub async fn exposed_inspectors(docker: &DockerClient) -> Vec<Finding> {
    const CHECK: &str = "inspectors";
    let published = match published_ports(docker).await {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding::warn(
                CHECK,
                format!("{e:#}"),
                "look by hand: docker ps --format '{{.Names}} {{.Ports}}'",
            )];
        }
    };
    // Only containers publishing something beyond loopback can expose an inspector.
    let mut candidates: Vec<&str> = published
        .iter()
        .filter(|p| p.off_loopback())
        .map(|p| p.container.as_str())
        .collect();
    candidates.dedup();
    let mut findings = Vec::new();
    for name in candidates {
        let inspect = match docker.inspect_container(name).await {
            Ok(inspect) => inspect,
            // Gone since the listing: nothing to warn about.
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                findings.push(Finding::warn(
                    CHECK,
                    format!("{e:#}"),
                    format!("look by hand: docker inspect {name}"),
                ));
                continue;
            }
        };
        if let Some(x) = exposure(&inspect) {
            findings.push(Finding::warn(
                "inspector open",
                format!(
                    "the container {} ({}) {}: anyone who can reach this machine can run any code \
                     in that process",
                    x.container, x.image, x.reason
                ),
                format!(
                    "publish the inspector on 127.0.0.1 only (-p 127.0.0.1:9229:9229), or stop it: \
                     docker rm -f {}",
                    x.container
                ),
            ));
        }
    }
    if findings.is_empty() {
        let running = {
            let mut names: Vec<&str> = published.iter().map(|p| p.container.as_str()).collect();
            names.dedup();
            names.len()
        };
        findings.push(Finding::ok(
            CHECK,
            format!(
                "no running container publishes a Node inspector beyond loopback ({running} \
                 container(s) publish ports)"
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, NetworkSettings};

    fn container(
        env: &[&str],
        ports: &[(&str, &str, &str)],
        cmd: &[&str],
    ) -> ContainerInspectResponse {
        let mut map: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for (port, ip, host_port) in ports {
            map.entry(port.to_string())
                .or_insert_with(|| Some(Vec::new()))
                .as_mut()
                .unwrap()
                .push(PortBinding {
                    host_ip: Some(ip.to_string()),
                    host_port: Some(host_port.to_string()),
                });
        }
        ContainerInspectResponse {
            name: Some("/app".into()),
            config: Some(ContainerConfig {
                image: Some("img".into()),
                env: Some(env.iter().map(|s| s.to_string()).collect()),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                ports: Some(map),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn inspector_port_on_all_interfaces_is_exposed() {
        let x = exposure(&container(&[], &[("9229/tcp", "0.0.0.0", "9229")], &[])).unwrap();
        assert_eq!(x.container, "app");
        assert!(x.reason.contains("9229/tcp on 0.0.0.0:9229"), "{x:?}");
        let x = exposure(&container(&[], &[("9229/tcp", "::", "9229")], &[])).unwrap();
        assert!(x.reason.contains("[::]:9229"), "{x:?}");
    }

    #[test]
    fn inspector_port_on_loopback_is_fine() {
        assert_eq!(
            exposure(&container(
                &["NODE_OPTIONS=--inspect=0.0.0.0:9229"],
                &[
                    ("9229/tcp", "127.0.0.1", "9229"),
                    ("3001/tcp", "127.0.0.1", "3001")
                ],
                &[]
            )),
            None
        );
    }

    #[test]
    fn node_options_inspect_with_any_wildcard_port_is_exposed() {
        let x = exposure(&container(
            &[
                "PATH=/bin",
                "NODE_OPTIONS=--max-old-space-size=512 --inspect=0.0.0.0:9230",
            ],
            &[("3001/tcp", "", "3001")],
            &[],
        ))
        .unwrap();
        assert!(
            x.reason.contains(
                "NODE_OPTIONS=--inspect=0.0.0.0:9230 and publishes 3001/tcp on 0.0.0.0:3001"
            ),
            "{x:?}"
        );
        let x = exposure(&container(
            &[],
            &[("3001/tcp", "0.0.0.0", "3001")],
            &["node", "--inspect-brk=0.0.0.0", "server.js"],
        ))
        .unwrap();
        assert!(x.reason.contains("--inspect-brk=0.0.0.0"), "{x:?}");
    }

    #[test]
    fn a_web_server_without_inspector_is_fine() {
        assert_eq!(
            exposure(&container(
                &["NODE_ENV=production"],
                &[("3001/tcp", "0.0.0.0", "3001")],
                &["node", "server.js"]
            )),
            None
        );
    }
}
