//! The guide's opening diagram: participant → lab-runner → each part's environment → the app → the
//! endpoints the part uses (HTTP paths, the inspector), drawn from the lab's own definition.

use std::fmt::Write;

use super::{PartFacts, part_label};
use crate::{InspectorMode, Lab};

/// A Mermaid flowchart of the whole lab.
pub fn flow(lab: &Lab, facts: &[PartFacts]) -> String {
    let port = lab.manifest.app.port;
    let mut out = String::new();
    out.push_str("```mermaid\nflowchart LR\n");
    out.push_str("  you([\"Participant\"])\n");
    out.push_str("  runner[\"lab-runner<br/>start · demo · verify\"]\n");
    out.push_str("  you -->|\"runs a part\"| runner\n");
    for (i, (part, f)) in lab.parts.iter().zip(facts).enumerate() {
        let n = i + 1;
        let env = lab.environment(part);
        let _ = writeln!(
            out,
            "  subgraph p{n}[\"{}\"]",
            label(&format!("{}: {}", part_label(part.id()), part.file.title))
        );
        out.push_str("    direction TB\n");
        let mut env_lines = vec![format!(
            "container · environment {}",
            part.reference.environment
        )];
        env_lines.extend(
            env.env
                .iter()
                .filter(|(k, _)| k.starts_with("NODE_"))
                .map(|(k, v)| format!("{k}={v}")),
        );
        if let InspectorMode::Open { .. } = env.inspector {
            env_lines.push("NODE_OPTIONS=--inspect=0.0.0.0:9229".into());
        }
        let _ = writeln!(out, "    env{n}[\"{}\"]", label(&env_lines.join("<br/>")));
        let run = match lab.manifest.app.run() {
            crate::model::AppRun::Node(entry) => format!("node {entry}"),
            crate::model::AppRun::Command(argv) => argv.join(" "),
        };
        let _ = writeln!(
            out,
            "    app{n}[\"lab app<br/>{} on :{port}\"]",
            label(&run)
        );
        let _ = writeln!(out, "    env{n} --> app{n}");
        for (i, name) in env.services.iter().enumerate() {
            let Some(service) = lab.manifest.services.get(name) else {
                continue;
            };
            let published = if service.publish {
                "<br/>published on 127.0.0.1"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    svc{n}x{i}[\"service {}<br/>{} on {name}:{}{published}\"]",
                label(name),
                label(&service.command.join(" ")),
                service.port
            );
            let _ = writeln!(out, "    app{n} --> svc{n}x{i}");
        }
        let mut http = vec![format!("HTTP 127.0.0.1:{port}")];
        http.extend(f.http.iter().cloned());
        let _ = writeln!(out, "    http{n}[\"{}\"]", label(&http.join("<br/>")));
        let _ = writeln!(out, "    app{n} --- http{n}");
        let inspector = match env.inspector {
            InspectorMode::Open { host_port } => Some(format!(
                "inspector<br/>published on 127.0.0.1:{host_port} only"
            )),
            InspectorMode::OnSignal => {
                Some("inspector<br/>opened inside by SIGUSR1, never published".to_string())
            }
            InspectorMode::None if f.uses_inspector => Some("inspector".to_string()),
            InspectorMode::None => None,
        };
        if let Some(text) = &inspector {
            let _ = writeln!(out, "    insp{n}[\"{}\"]", label(text));
            let _ = writeln!(out, "    app{n} --- insp{n}");
        }
        out.push_str("  end\n");
        let mut starts = vec!["starts"];
        if f.recreates {
            starts.push("recreates with new env");
        }
        if f.signals {
            starts.push("signals");
        }
        if f.copies_out {
            starts.push("copies files out");
        }
        let _ = writeln!(
            out,
            "  runner -->|\"{}\"| env{n}",
            label(&starts.join(", "))
        );
        let _ = writeln!(out, "  runner -->|\"requests + token\"| http{n}");
        if inspector.is_some() && f.uses_inspector {
            let how = match env.inspector {
                InspectorMode::OnSignal => "CDP through a docker exec tunnel",
                _ => "CDP over WebSocket",
            };
            let _ = writeln!(out, "  runner -->|\"{how}\"| insp{n}");
        }
    }
    out.push_str("```\n");
    out
}

/// Text safe inside a quoted Mermaid label.
fn label(text: &str) -> String {
    text.replace('"', "'").replace('#', "")
}
