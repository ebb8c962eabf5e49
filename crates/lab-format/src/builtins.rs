//! The variables the runner gives every template, in one definition: their names, when they exist,
//! and what they stand for without a live session. The engine sets them by these names, lint knows
//! them from here, and the exported guide shows their placeholders, so none can be spelt two ways.

use serde_json::{Value, json};

use crate::load::{Lab, Part};
use crate::model::InspectorMode;
use crate::render::Vars;

/// A variable the runner provides (`{{ base_url }}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// The session's lab token (`$LAB_TOKEN` in the exported guide).
    Token,
    /// The session's id.
    Session,
    LabId,
    PartId,
    /// Where the app answers on the host: `http://127.0.0.1:PORT`.
    BaseUrl,
    /// The app's port on the host.
    AppPort,
    /// `docker` or `process`.
    Backend,
    /// The app's container (or process) name.
    Container,
    /// The app's folder inside its environment.
    AppRoot,
    /// Where the app writes captures inside its environment.
    ArtifactDir,
    /// Where the participant keeps what they save, on the host.
    HostArtifacts,
    /// The app's host name inside its environment (the container id).
    AppHostname,
    /// The environment's memory limit, MiB.
    MemoryLimitMb,
    /// Where the inspector is reached from the host (published, or through the tunnel).
    InspectorAddr,
    InspectorPort,
    /// Where the inspector listens inside the environment.
    InspectorInside,
    /// The host port the participant's tunnel listens on (inspector opened on a signal).
    TunnelPort,
    TunnelAddr,
    /// The part's published services: `services.<name>.url` (`http://127.0.0.1:PORT`) and
    /// `services.<name>.addr` (`127.0.0.1:PORT`), for each service with `publish: true`.
    Services,
    /// The step's solve as the commands a participant types (instructions and hints only).
    Commands,
}

impl Builtin {
    pub const ALL: &[Builtin] = &[
        Builtin::Token,
        Builtin::Session,
        Builtin::LabId,
        Builtin::PartId,
        Builtin::BaseUrl,
        Builtin::AppPort,
        Builtin::Backend,
        Builtin::Container,
        Builtin::AppRoot,
        Builtin::ArtifactDir,
        Builtin::HostArtifacts,
        Builtin::AppHostname,
        Builtin::MemoryLimitMb,
        Builtin::InspectorAddr,
        Builtin::InspectorPort,
        Builtin::InspectorInside,
        Builtin::TunnelPort,
        Builtin::TunnelAddr,
        Builtin::Services,
        Builtin::Commands,
    ];

    /// The name templates use.
    pub const fn name(self) -> &'static str {
        match self {
            Builtin::Token => "token",
            Builtin::Session => "session",
            Builtin::LabId => "lab_id",
            Builtin::PartId => "part_id",
            Builtin::BaseUrl => "base_url",
            Builtin::AppPort => "app_port",
            Builtin::Backend => "backend",
            Builtin::Container => "container",
            Builtin::AppRoot => "app_root",
            Builtin::ArtifactDir => "artifact_dir",
            Builtin::HostArtifacts => "host_artifacts",
            Builtin::AppHostname => "app_hostname",
            Builtin::MemoryLimitMb => "memory_limit_mb",
            Builtin::InspectorAddr => "inspector_addr",
            Builtin::InspectorPort => "inspector_port",
            Builtin::InspectorInside => "inspector_inside",
            Builtin::TunnelPort => "tunnel_port",
            Builtin::TunnelAddr => "tunnel_addr",
            Builtin::Services => "services",
            Builtin::Commands => "commands",
        }
    }

    /// Whether a part whose environment sets the inspector up so has this variable.
    pub fn exists_with(self, inspector: InspectorMode) -> bool {
        match self {
            Builtin::InspectorAddr | Builtin::InspectorInside => inspector != InspectorMode::None,
            Builtin::InspectorPort => matches!(inspector, InspectorMode::Open { .. }),
            Builtin::TunnelPort | Builtin::TunnelAddr => inspector == InspectorMode::OnSignal,
            _ => true,
        }
    }

    /// What it stands for where no session runs (lint, the exported guide): the session's facts
    /// as they are with the default ports.
    pub fn placeholder(self, lab: &Lab, part: &Part) -> Value {
        let port = lab.manifest.app.port;
        match self {
            Builtin::Token => json!("$LAB_TOKEN"),
            Builtin::Session => json!("<session>"),
            Builtin::LabId => json!(lab.id()),
            Builtin::PartId => json!(part.id()),
            Builtin::BaseUrl => json!(format!("http://127.0.0.1:{port}")),
            Builtin::AppPort => json!(port),
            Builtin::Backend => json!("docker"),
            Builtin::Container => json!("\"$LAB_CONTAINER\""),
            Builtin::AppRoot => json!("/app"),
            Builtin::ArtifactDir => json!("/tmp"),
            Builtin::HostArtifacts => json!(format!("./lab-artifacts/{}", part.id())),
            Builtin::AppHostname => json!("<container id>"),
            Builtin::MemoryLimitMb => json!(lab.environment(part).memory_mb),
            Builtin::InspectorAddr | Builtin::InspectorInside | Builtin::TunnelAddr => {
                json!("127.0.0.1:9229")
            }
            Builtin::InspectorPort | Builtin::TunnelPort => json!(9229),
            Builtin::Services => {
                let published = lab.environment(part).services.iter().filter_map(|name| {
                    let service = lab.manifest.services.get(name)?;
                    service
                        .publish
                        .then(|| (name.clone(), service_vars(service.port)))
                });
                Value::Object(published.collect())
            }
            Builtin::Commands => json!(""),
        }
    }

    /// Its value among `vars`, as text (`None` when it is not set or not text).
    pub fn text(self, vars: &Vars) -> Option<&str> {
        vars.get(self.name()).and_then(Value::as_str)
    }

    /// Sets it among `vars`.
    pub fn set(self, vars: &mut Vars, value: Value) {
        vars.insert(self.name().to_string(), value);
    }
}

/// `{url, addr}` of a service published on the host's `port` (`services.<name>`).
pub fn service_vars(port: u16) -> Value {
    json!({
        "url": format!("http://127.0.0.1:{port}"),
        "addr": format!("127.0.0.1:{port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Builtin::ALL.iter().map(|b| b.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Builtin::ALL.len());
    }
}
