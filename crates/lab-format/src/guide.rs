//! A step as a participant reads it: instructions and hints rendered with the session's variables,
//! and the commands of its solve (the same actions verify performs).

use anyhow::{Context, Result};
use serde_json::json;

use super::builtins::Builtin;
use super::commands::{self, CommandStyle};
use super::model::Step;
use super::render::{Renderer, Vars};
use super::templated::Templated;

#[derive(Debug, Clone)]
pub struct RenderedStep {
    pub id: String,
    pub title: String,
    /// Markdown.
    pub instructions: String,
    pub hints: Vec<String>,
    /// What the participant does for the step, as Markdown (fenced shell blocks; empty for a
    /// manual step).
    pub commands: String,
    /// Whether the instructions place `{{ commands }}` themselves.
    pub commands_inline: bool,
}

/// Renders `step` with `vars`. Solve actions that read variables only the solve itself saves are shown
/// with their templates unrendered.
/// `app` is the lab's app (its token header, health and metrics paths, which commands name).
pub fn render_step(
    renderer: &Renderer,
    app: &super::AppSpec,
    step: &Step,
    vars: &Vars,
) -> Result<RenderedStep> {
    let text = |b: Builtin| b.text(vars).unwrap_or_default().to_string();
    let base_url = text(Builtin::BaseUrl);
    let token = text(Builtin::Token);
    let container = text(Builtin::Container);
    let inspector = text(Builtin::InspectorAddr);
    let style = CommandStyle {
        base_url: &base_url,
        token: if token.is_empty() {
            "$LAB_TOKEN"
        } else {
            &token
        },
        token_header: app.token_header.as_deref().unwrap_or("x-token"),
        health: &app.health,
        metrics: app.metrics.as_deref().unwrap_or("/metrics"),
        container: if container.is_empty() {
            "\"$LAB_CONTAINER\""
        } else {
            &container
        },
        inspector: if inspector.is_empty() {
            "127.0.0.1:9229"
        } else {
            &inspector
        },
    };
    let solve: Vec<_> = step
        .solve
        .iter()
        .map(|a| a.render(renderer, vars).unwrap_or_else(|_| a.clone()))
        .collect();
    let command_markdown = commands::markdown(&solve, &style);
    let mut vars = vars.clone();
    Builtin::Commands.set(&mut vars, json!(command_markdown));
    let instructions = renderer
        .render(&step.instructions, &vars)
        .with_context(|| format!("Failed to render the instructions of step {}", step.id))?;
    let hints = step
        .hints
        .iter()
        .map(|h| renderer.render(h, &vars))
        .collect::<Result<_>>()
        .with_context(|| format!("Failed to render the hints of step {}", step.id))?;
    Ok(RenderedStep {
        id: step.id.clone(),
        title: step.title.clone(),
        instructions,
        hints,
        commands_inline: step.instructions.contains("commands"),
        commands: command_markdown,
    })
}

/// Commands as a fenced shell block.
pub fn fenced(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("```sh\n{}\n```", lines.join("\n"))
    }
}

/// The names of every variable the steps of `part` save (for [`placeholder_vars`]).
pub fn saved_names(part: &super::Part) -> Vec<String> {
    let mut names = Vec::new();
    for step in &part.file.steps {
        for action in step
            .setup
            .iter()
            .chain(&step.solve)
            .chain(&step.check)
            .chain(&step.cleanup)
        {
            names.extend(super::lint::saved_names(action));
        }
    }
    names
}

/// Variables for rendering a lab without a live session (lint, the exported guide): the lab's own
/// variables, the session's facts as they are with the default ports, `$LAB_TOKEN` for the token, and
/// `<name>` for what steps save at run time.
pub fn placeholder_vars(lab: &super::Lab, part: &super::Part, saved: &[String]) -> Vars {
    let mut vars: Vars = lab.manifest.variables.clone().into_iter().collect();
    for name in saved {
        vars.insert(name.clone(), json!(format!("<{name}>")));
    }
    for builtin in Builtin::ALL {
        // `commands` is the step's own, set when the step is rendered.
        if *builtin != Builtin::Commands {
            builtin.set(&mut vars, builtin.placeholder(lab, part));
        }
    }
    vars
}
