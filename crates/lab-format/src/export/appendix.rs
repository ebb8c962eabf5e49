//! The guide's appendix, generated from real sources: the parts and their environments, the route
//! and environment tables of the lab app's README, the variables the lab's environments and steps
//! set, every step's hints, and the lab's reading list.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::markdown::{self, Table, cell_text};
use super::{PartFacts, part_label};
use crate::guide::placeholder_vars;
use crate::{InspectorMode, Lab, Renderer};

/// The appendix's sections, in order (the table of contents links to them).
pub const HEADINGS: [&str; 5] = [
    "When to use each approach",
    "Lab endpoint reference",
    "Environment variables",
    "Troubleshooting",
    "Further reading",
];

pub fn write(lab: &Lab, facts: &[PartFacts], renderer: &Renderer) -> Result<String> {
    let mut out = String::new();
    let readme_path = lab.app_dir().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).ok();
    // Named as the lab names the app's folder (its last component), never as an absolute path.
    let app_name = Path::new(&lab.manifest.app.source)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| lab.manifest.app.source.clone());
    let readme_name = format!("{app_name}/README.md");

    approaches(&mut out, lab);
    endpoints(&mut out, readme.as_deref(), &readme_name, facts);
    variables(
        &mut out,
        readme.as_deref(),
        &readme_name,
        lab,
        facts,
        renderer,
    )?;
    troubleshooting(&mut out, lab, facts, renderer)?;
    further_reading(&mut out, lab);
    Ok(out)
}

fn approaches(out: &mut String, lab: &Lab) {
    let _ = writeln!(out, "### {}\n", HEADINGS[0]);
    let mut table = Table {
        header: ["Part", "Approach", "Environment", "Inspector", "Steps"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    for part in &lab.parts {
        let env = lab.environment(part);
        let inspector = match env.inspector {
            InspectorMode::Open { host_port } => {
                format!("listening from the start, published on 127.0.0.1:{host_port} only")
            }
            InspectorMode::OnSignal => {
                "closed until SIGUSR1 opens it inside; reached through a tunnel".to_string()
            }
            InspectorMode::None => "none".to_string(),
        };
        let steps: Vec<&str> = part.file.steps.iter().map(|s| s.id.as_str()).collect();
        table.rows.push(vec![
            part_label(part.id()),
            cell_text(&part.file.title),
            cell_text(&if env.description.trim().is_empty() {
                format!("`{}`", part.reference.environment)
            } else {
                format!("`{}`: {}", part.reference.environment, env.description)
            }),
            inspector,
            steps.join(", "),
        ]);
    }
    let _ = writeln!(out, "{}", table.to_markdown());
}

fn endpoints(out: &mut String, readme: Option<&str>, readme_name: &str, facts: &[PartFacts]) {
    let _ = writeln!(out, "### {}\n", HEADINGS[1]);
    let Some(mut table) = readme.and_then(|r| markdown::table_under_heading(r, "Routes")) else {
        let _ = writeln!(
            out,
            "The lab app's README (`{readme_name}`) has no table under a `Routes` heading.\n"
        );
        return;
    };
    let _ = writeln!(
        out,
        "The routes as the lab app's README (`{readme_name}`) documents them; the last column lists \
         the steps of this lab that call each one.\n"
    );
    if let Some(path_column) = table.column("path") {
        table.header.push("used in steps".into());
        for row in &mut table.rows {
            let path = row
                .get(path_column)
                .map(|p| p.trim_matches('`').to_string())
                .unwrap_or_default();
            let mut steps: Vec<String> = Vec::new();
            for f in facts {
                for id in f.steps_by_path.get(&path).into_iter().flatten() {
                    if !steps.contains(id) {
                        steps.push(id.clone());
                    }
                }
            }
            row.push(if steps.is_empty() {
                "—".into()
            } else {
                steps.join(", ")
            });
        }
    }
    let _ = writeln!(out, "{}", table.to_markdown());
}

fn variables(
    out: &mut String,
    readme: Option<&str>,
    readme_name: &str,
    lab: &Lab,
    facts: &[PartFacts],
    renderer: &Renderer,
) -> Result<()> {
    let _ = writeln!(out, "### {}\n", HEADINGS[2]);
    match readme.and_then(|r| markdown::table_under_heading(r, "Environment")) {
        Some(mut table) => {
            let name_column = table.column("variable").unwrap_or(0);
            table.rows.retain(|row| {
                row.get(name_column)
                    .is_some_and(|c| c.trim_matches('`').starts_with("LAB_"))
            });
            let _ = writeln!(
                out,
                "The `LAB_*` variables the lab app reads, from its README (`{readme_name}`):\n"
            );
            let _ = writeln!(out, "{}", table.to_markdown());
        }
        None => {
            let _ = writeln!(
                out,
                "The lab app's README (`{readme_name}`) has no table under an `Environment` heading.\n"
            );
        }
    }
    out.push_str("How this lab sets them (`$LAB_TOKEN` is the session's token):\n\n");
    let mut table = Table {
        header: ["Where", "Variables"].map(String::from).to_vec(),
        rows: Vec::new(),
    };
    let Some(first) = lab.parts.first() else {
        let _ = writeln!(out, "{}", table.to_markdown());
        return Ok(());
    };
    let vars = placeholder_vars(lab, first, &[]);
    let render = |value: &str| -> Result<String> {
        renderer
            .render(value, &vars)
            .with_context(|| format!("Failed to render the environment value `{value}`"))
    };
    for (name, env) in &lab.manifest.environments {
        let mut set: Vec<String> = Vec::new();
        for (k, v) in &env.env {
            set.push(format!("`{k}={}`", render(v)?));
        }
        if let InspectorMode::Open { .. } = env.inspector {
            set.push("`NODE_OPTIONS=--inspect=0.0.0.0:9229` (added by lab-runner)".into());
        }
        let used_by: Vec<String> = lab
            .parts
            .iter()
            .filter(|p| &p.reference.environment == name)
            .map(|p| part_label(p.id()))
            .collect();
        table.rows.push(vec![
            format!(
                "environment `{name}`{}",
                if used_by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", used_by.join(", "))
                }
            ),
            cell_text(&if set.is_empty() {
                "—".to_string()
            } else {
                set.join(", ")
            }),
        ]);
    }
    for f in facts {
        for (step, spec) in &f.recreate_envs {
            let mut change: Vec<String> = Vec::new();
            if spec.reset {
                change.push("back to the environment's own variables".into());
            }
            for (k, v) in &spec.env {
                change.push(format!("`{k}={}`", render(v)?));
            }
            for k in &spec.unset {
                change.push(format!("without `{k}`"));
            }
            table.rows.push(vec![
                format!("step {step} recreates the app"),
                cell_text(&change.join(", ")),
            ]);
        }
    }
    let _ = writeln!(out, "{}", table.to_markdown());
    Ok(())
}

fn troubleshooting(
    out: &mut String,
    lab: &Lab,
    facts: &[PartFacts],
    renderer: &Renderer,
) -> Result<()> {
    let _ = writeln!(out, "### {}\n", HEADINGS[3]);
    out.push_str(
        "First run `lab-runner doctor`: it checks Docker, the lab image, the ports, Node.js, disk \
         space, and containers that expose an inspector. Then the hints of every step:\n\n",
    );
    for (part, f) in lab.parts.iter().zip(facts) {
        let vars = placeholder_vars(lab, part, &f.saved);
        for step in &part.file.steps {
            if step.hints.is_empty() {
                continue;
            }
            let _ = writeln!(out, "**{} {}**\n", step.id, step.title);
            for hint in &step.hints {
                let text = renderer
                    .render(hint, &vars)
                    .with_context(|| format!("Failed to render a hint of step {}", step.id))?;
                let _ = writeln!(out, "- {}", text.trim());
            }
            out.push('\n');
        }
    }
    Ok(())
}

fn further_reading(out: &mut String, lab: &Lab) {
    let _ = writeln!(out, "### {}\n", HEADINGS[4]);
    if lab.manifest.further_reading.is_empty() {
        out.push_str("This lab lists no further reading (`further_reading` in lab.yaml).\n\n");
        return;
    }
    for link in &lab.manifest.further_reading {
        let _ = writeln!(out, "- [{}]({})", link.title.trim(), link.url.trim());
    }
    out.push('\n');
}
