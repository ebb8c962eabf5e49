//! Static checks of a lab, beyond what loading checks: every template renders with the variables it
//! will have, every step with a check can be solved (or is manual), selectors and paths are well
//! formed. Each problem names the file, line and column.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::app_source;
use super::builtins::Builtin;
use super::diagnostic::Diagnostic;
use super::load::{Lab, Part};
use super::model::{Action, InspectorAction, InspectorMode, Step};
use super::render::Renderer;
use super::templated::Templated;
use super::yaml;
use lab_util::prometheus::Selector;

/// Every problem in `lab` (empty when it is fine).
pub fn lint(lab: &Lab) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let renderer = Renderer::for_app(&lab.app_dir());
    let positions = yaml::Positions::of(&lab.manifest_text);
    // Environment variables are templates: of the environments (with the variables their
    // inspector mode gives) and of the services (with none of the inspector's).
    let envs = lab
        .manifest
        .environments
        .iter()
        .map(|(name, env)| ("environments", "environment", name, &env.env, env.inspector))
        .chain(lab.manifest.services.iter().map(|(name, service)| {
            (
                "services",
                "service",
                name,
                &service.env,
                InspectorMode::None,
            )
        }));
    for (section, kind, name, env, inspector) in envs {
        let known: BTreeSet<String> = base_vars(lab, inspector);
        for (key, value) in env {
            let (line, col) = positions
                .get(&format!("{section}.{name}.env.{key}"))
                .unwrap_or((1, 1));
            check_template(&renderer, value, &known, &BTreeMap::new(), &mut |message| {
                problems.push(Diagnostic::new(
                    &lab.manifest_path,
                    line,
                    col,
                    format!("{kind} `{name}`, {key}: {message}"),
                ))
            });
        }
    }
    lint_services(lab, &positions, &mut problems);
    for part in &lab.parts {
        lint_part(lab, part, &renderer, &mut problems);
    }
    problems
}

/// What is wrong with naming `service` in an action of a part whose environment runs
/// `env_services` (`None`: nothing).
fn lint_service_name(service: &str, lab: &Lab, env_services: &[String]) -> Option<String> {
    if !lab.manifest.services.contains_key(service) {
        let known: Vec<&str> = lab.manifest.services.keys().map(String::as_str).collect();
        return Some(if known.is_empty() {
            format!("there is no service `{service}`: lab.yaml defines no `services:`")
        } else {
            format!(
                "there is no service `{service}` (lab.yaml's services: {})",
                known.join(", ")
            )
        });
    }
    if !env_services.iter().any(|s| s == service) {
        return Some(format!(
            "the service `{service}` does not run in this part's environment (add it to the \
             environment's `services:`)"
        ));
    }
    None
}

/// The app runs one way, its environments and services name what exists, and every offline
/// image's host paths and Dockerfile exist.
fn lint_services(lab: &Lab, positions: &yaml::Positions, problems: &mut Vec<Diagnostic>) {
    let mut report = |path: &str, message: String| {
        let (line, col) = positions.get(path).unwrap_or((1, 1));
        problems.push(Diagnostic::new(&lab.manifest_path, line, col, message));
    };
    let app = &lab.manifest.app;
    match (&app.entry, app.command.is_empty()) {
        (Some(_), false) => report(
            "app.command",
            "app: give either `entry:` (a Node.js script, run as `node <entry>`) or `command:` (a \
             program and its arguments), not both"
                .into(),
        ),
        (None, true) => report(
            "app",
            "app: give `entry:` (a Node.js script, run as `node <entry>`) or `command:` (a program \
             and its arguments, such as [python3, -u, server.py])"
                .into(),
        ),
        _ => {}
    }
    if app.entry.is_none() {
        for (name, env) in &lab.manifest.environments {
            if env.inspector != InspectorMode::None {
                report(
                    &format!("environments.{name}.inspector"),
                    format!(
                        "environment `{name}`: `inspector:` is the Node.js inspector, and the app is \
                         not a Node app (it has `command:`, not `entry:`): write `inspector: none`"
                    ),
                );
            }
        }
    }
    for (name, env) in &lab.manifest.environments {
        if let Some(min) = env.memory_min_mb
            && !(64..=env.memory_mb).contains(&min)
        {
            report(
                &format!("environments.{name}.memory_min_mb"),
                format!(
                    "environment `{name}`: `memory_min_mb: {min}` must be between 64 and its \
                     `memory_mb` ({}): it is the least of that limit a workshop's seat may get",
                    env.memory_mb
                ),
            );
        }
        for (i, service) in env.services.iter().enumerate() {
            if !lab.manifest.services.contains_key(service) {
                report(
                    &format!("environments.{name}.services[{i}]"),
                    format!(
                        "environment `{name}`: {}",
                        lint_service_name(service, lab, &env.services).unwrap_or_default()
                    ),
                );
            }
        }
    }
    let app_source = lab.dir.join(&app.source);
    lint_image(app.image.as_ref(), "app.image", &app_source, &mut report);
    for (name, service) in &lab.manifest.services {
        let at = format!("services.{name}");
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-');
        if !valid || name == "app" || name == "participant" {
            report(
                &at,
                format!(
                    "service `{name}`: a service's name is its host name on the environment's network: \
                     lowercase letters, digits and `-`, and not `app` or `participant`"
                ),
            );
        }
        if service.command.is_empty() {
            report(
                &format!("{at}.command"),
                format!(
                    "service `{name}`: `command:` is empty: give the program and its arguments"
                ),
            );
        }
        let source = service.source.as_ref().map(|s| lab.dir.join(s));
        if let Some(dir) = &source
            && !dir.is_dir()
        {
            report(
                &format!("{at}.source"),
                format!(
                    "service `{name}`: its source folder {} does not exist",
                    dir.display()
                ),
            );
        }
        if let Some(dir) = &source {
            for (i, file) in service.files.iter().enumerate() {
                if !dir.join(file).exists() {
                    report(
                        &format!("{at}.files[{i}]"),
                        format!(
                            "service `{name}`: `{file}` does not exist in {}",
                            dir.display()
                        ),
                    );
                }
            }
        } else if !service.files.is_empty() {
            report(
                &format!("{at}.files"),
                format!("service `{name}`: `files:` needs the `source:` folder they are in"),
            );
        }
        match (&service.image, &source) {
            (Some(crate::ImageSpec::Dockerfile(_)), None) => report(
                &format!("{at}.image.dockerfile"),
                format!(
                    "service `{name}`: a `dockerfile:` is relative to the service's `source:` folder \
                     (its build context), and the service has none"
                ),
            ),
            (image, Some(dir)) => {
                lint_image(image.as_ref(), &format!("{at}.image"), dir, &mut report)
            }
            (image, None) => lint_image(
                image.as_ref(),
                &format!("{at}.image"),
                &lab.dir,
                &mut report,
            ),
        }
    }
}

/// An offline image's host paths exist; a Dockerfile exists in its build context.
fn lint_image(
    image: Option<&crate::ImageSpec>,
    at: &str,
    source: &std::path::Path,
    report: &mut dyn FnMut(&str, String),
) {
    match image {
        Some(crate::ImageSpec::Offline(offline)) => {
            if offline.host.is_empty() {
                report(
                    &format!("{at}.offline.host"),
                    format!("{at}: `offline: host:` names no host files for the image"),
                );
            }
            for (field, paths) in [("host", &offline.host), ("exclude", &offline.exclude)] {
                for (i, path) in paths.iter().enumerate() {
                    let problem = if !path.starts_with('/') {
                        Some("is not an absolute path")
                    } else if field == "host" && !std::path::Path::new(path).exists() {
                        Some("does not exist on this machine")
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        report(
                            &format!("{at}.offline.{field}[{i}]"),
                            format!("{at}: the host path `{path}` {problem}"),
                        );
                    }
                }
            }
            for link in offline.links.keys() {
                if !link.starts_with('/') {
                    report(
                        &format!("{at}.offline.links.{link}"),
                        format!("{at}: the link `{link}` is not an absolute path in the image"),
                    );
                }
            }
        }
        Some(crate::ImageSpec::Dockerfile(file)) if !source.join(file).is_file() => report(
            &format!("{at}.dockerfile"),
            format!(
                "{at}: the Dockerfile `{file}` does not exist in {}",
                source.display()
            ),
        ),
        Some(crate::ImageSpec::Registry(name))
            if name.trim().is_empty() || name.contains(char::is_whitespace) =>
        {
            report(
                &format!("{at}.registry"),
                format!("{at}: `{name}` is not an image name (such as python:3.11-slim)"),
            )
        }
        _ => {}
    }
}

fn base_vars(lab: &Lab, inspector: InspectorMode) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = lab.manifest.variables.keys().cloned().collect();
    known.extend(
        Builtin::ALL
            .iter()
            .filter(|b| b.exists_with(inspector))
            .map(|b| b.name().to_string()),
    );
    known.extend(Renderer::FUNCTIONS.iter().map(|f| f.to_string()));
    known
}

fn lint_part(lab: &Lab, part: &Part, renderer: &Renderer, problems: &mut Vec<Diagnostic>) {
    let env = lab.environment(part);
    let mut known = base_vars(lab, env.inspector);
    // Where each saved variable is first saved, for "used before it is saved" messages.
    let mut saved_in: BTreeMap<String, String> = BTreeMap::new();
    for step in &part.file.steps {
        for (action_path, action) in step_actions(step) {
            for name in saved_names(action) {
                saved_in
                    .entry(name)
                    .or_insert_with(|| format!("step {} `{action_path}`", step.id));
            }
        }
    }
    let all_saved: Vec<String> = saved_in.keys().cloned().collect();
    let placeholders = super::guide::placeholder_vars(lab, part, &all_saved);
    let positions = part.positions();
    let intro_line = positions.get("intro").map_or(1, |(l, _)| l + 1);
    check_template(
        renderer,
        &part.file.intro,
        &known,
        &saved_in,
        &mut |message| {
            problems.push(Diagnostic::new(
                &part.path,
                intro_line,
                1,
                format!("intro: {message}"),
            ))
        },
    );
    for (index, step) in part.file.steps.iter().enumerate() {
        let step_path = format!("steps[{index}]");
        let step_line = positions.get(&step_path).map_or(1, |(l, _)| l);
        // Where a field of this step is, by its path in the step (`check[1].http.path`).
        let at = |path: &str| {
            positions
                .get(&format!("{step_path}.{path}"))
                .unwrap_or((step_line, 1))
        };
        let mut report = |line: usize, column: usize, message: String| {
            problems.push(
                Diagnostic::new(&part.path, line, column, message).in_step(Some(step.id.clone())),
            );
        };
        if step.id.trim().is_empty() {
            report(step_line, 1, "a step id must not be empty".into());
        }
        if let Some(template) = step.timeout.as_ref().and_then(|t| t.template()) {
            let (line, col) = at("timeout");
            report(
                line,
                col,
                format!(
                    "timeout: `{template}` is a template, but a step's budget is known before anything \
                     runs: write a duration such as 90s"
                ),
            );
        }
        if !step.check.is_empty() && step.solve.is_empty() && !step.manual {
            let (line, col) = at("check");
            report(
                line,
                col,
                "this step has a check but no solve: add the actions that solve it (demo and verify run them), \
                 or mark it `manual: true`"
                    .into(),
            );
        }
        lint_participant_path(step, &at, &placeholders, renderer, &mut report);
        lint_mistakes_and_unchecked(step, &at, &mut report);
        for (path, action) in step_actions(step) {
            if let Action::Http(h) = action
                && h.token
                && lab.manifest.app.token_header.is_none()
            {
                let (line, col) = at(&format!("{path}.http.token"));
                report(
                    line,
                    col,
                    format!(
                        "{path}: `token: true` sends the session's token, but lab.yaml names no \
                         `app.token_header` to send it in"
                    ),
                );
            }
        }
        // Actions. Setup and check always run, so what they save is known from then on; what a
        // solve saves is known only to the rest of that solve (a participant who does the step by hand
        // saves nothing, so checks and later steps must not rely on it).
        let actions = step_actions(step);
        let mut solve_known = known.clone();
        for phase in ["setup", "mistakes", "solve", "check", "cleanup"] {
            for (action_path, action) in actions.iter().filter(|(p, _)| p.starts_with(phase)) {
                let visible = if phase == "solve" {
                    &solve_known
                } else {
                    &known
                };
                let mut strings: Vec<(String, String)> = Vec::new();
                action.templates(action_path, &mut |path, text| {
                    strings.push((path.to_string(), text.to_string()))
                });
                for (path, text) in strings {
                    check_template_located(
                        renderer,
                        &text,
                        visible,
                        &saved_in,
                        &part.text,
                        at(&path).0,
                        &mut report,
                        &path,
                    );
                }
                lint_action(action, action_path, &at, lab, &env.services, &mut report);
                let saved = saved_names(action);
                if phase == "mistakes" {
                    continue;
                }
                solve_known.extend(saved.iter().cloned());
                if phase != "solve" {
                    known.extend(saved);
                }
            }
            if phase == "setup" {
                solve_known = known.clone();
                // Texts people read are rendered once the setup has run; render them too, so a
                // call such as source_line(...) that does not resolve is found here.
                let instructions_line = at("instructions").0;
                check_template_located(
                    renderer,
                    &step.instructions,
                    &known,
                    &saved_in,
                    &part.text,
                    instructions_line,
                    &mut report,
                    "instructions",
                );
                let texts = std::iter::once(("instructions".to_string(), &step.instructions))
                    .chain(
                        step.hints
                            .iter()
                            .enumerate()
                            .map(|(i, h)| (format!("hints[{i}]"), h)),
                    );
                for (what, template) in texts {
                    if let Err(e) = renderer.render(template, &placeholders) {
                        let message = format!("{e:#}");
                        if !message.contains("undefined") {
                            report(instructions_line, 1, format!("{what}: {message}"));
                        }
                    }
                }
                for (i, hint) in step.hints.iter().enumerate() {
                    check_template_located(
                        renderer,
                        hint,
                        &known,
                        &saved_in,
                        &part.text,
                        step_line,
                        &mut report,
                        &format!("hints[{i}]"),
                    );
                }
            }
        }
    }
}

/// What a participant is shown is what verify runs: the step's own shell blocks are either the
/// solve's `shell:` commands (shown through `{{ commands }}`) or marked `no-run`; a solve does only
/// what a person can do (type commands, work in DevTools, take their time); its commands parse.
fn lint_participant_path(
    step: &Step,
    at: &dyn Fn(&str) -> (usize, usize),
    placeholders: &super::Vars,
    renderer: &Renderer,
    report: &mut dyn FnMut(usize, usize, String),
) {
    let instructions_line = at("instructions").0;
    let mut vars = placeholders.clone();
    Builtin::Commands.set(&mut vars, serde_json::json!(""));
    let shown = renderer
        .render(&step.instructions, &vars)
        .unwrap_or_else(|_| step.instructions.clone());
    let width = lab_util::shell_lines::NARROWEST_TERMINAL;
    for block in crate::fenced::fenced_blocks(&shown) {
        if let Some(problem) = shape_problem(&block) {
            report(
                instructions_line + block.line + 1,
                1,
                format!("instructions: a ```{} block {problem}", block.info),
            );
        }
        // A terminal breaks a wide line of a block inside a word: an ARN, a JSON string or a
        // command copied from there is broken. (Shell lines may be cut at a space with `\`.)
        for (i, line) in block.text.lines().enumerate() {
            let too_wide = if block.is_shell() {
                lab_util::shell_lines::fit(line, width)
                    .iter()
                    .any(|piece| piece.chars().count() > width)
            } else {
                line.chars().count() > width
            };
            if too_wide {
                report(
                    instructions_line + block.line + 2 + i,
                    1,
                    format!(
                        "instructions: a line of a ```{} block is {} columns wide; a terminal of \
                         {width} columns breaks it inside a word, and what a person copies from \
                         there is broken: break the line (`{}`)",
                        block.info,
                        line.chars().count(),
                        line.trim()
                    ),
                );
            }
        }
    }
    for block in crate::fenced::fenced_blocks(&step.instructions) {
        if block.is_shell() && !block.no_run() {
            report(
                instructions_line + block.line + 1,
                1,
                format!(
                    "instructions: a ```{} block that verify would not run: a participant copies it, so it must be \
                     part of the solve (a `shell:` action, shown by {{{{ commands }}}}), or be marked \
                     ```{} no-run when it is only for reading (commands for AWS, sample output)",
                    block.language(),
                    block.language()
                ),
            );
        }
    }
    for (i, action) in step.solve.iter().enumerate() {
        participant_doable(action, &format!("solve[{i}]"), &mut |path, what| {
            let (line, col) = at(path);
            report(
                line,
                col,
                format!(
                    "{path}: `{what}` is something only the runner can do, yet the step shows it as if a \
                     participant did it; write the command a person types as a `shell:` action (setup may \
                     use typed actions for what the participant does not see)"
                ),
            )
        });
    }
    for (m, mistake) in step.mistakes.iter().enumerate() {
        for (i, action) in mistake.actions.iter().enumerate() {
            participant_doable(
                action,
                &format!("mistakes[{m}].do[{i}]"),
                &mut |path, what| {
                    let (line, col) = at(path);
                    report(
                        line,
                        col,
                        format!(
                            "{path}: `{what}` is something only the runner can do; a mistake is what a participant \
                         does instead of the solve, in the solve's vocabulary (`shell`, `inspector`, `wait`, `ask`); \
                         put what the runner must do to restore the starting state under `undo:`"
                        ),
                    )
                },
            );
        }
    }
    for (path, action) in step_actions(step) {
        if let Action::Shell(shell) = action
            && !shell.run.is_empty()
            && !path.contains(".undo[")
        {
            let text = renderer
                .render(&shell.run, placeholders)
                .unwrap_or_else(|_| shell.run.clone());
            let width = lab_util::shell_lines::NARROWEST_TERMINAL;
            for line in text.lines() {
                if let Some(long) = lab_util::shell_lines::fit(line, width)
                    .into_iter()
                    .find(|piece| piece.chars().count() > width)
                {
                    let (l, c) = at(&format!("{path}.shell"));
                    report(
                        l,
                        c,
                        format!(
                            "{path}: `{long}` cannot be shown in a terminal of {width} columns without \
                             wrapping inside a word (a wrapped command, copied, runs as two broken ones); \
                             shorten it or split the quoted text"
                        ),
                    );
                }
            }
            if let Some(problem) = bash_syntax_problem(&text) {
                let (line, col) = at(&format!("{path}.shell"));
                report(
                    line,
                    col,
                    format!("{path}: the commands do not parse: {problem}"),
                );
            }
        }
    }
}

/// A mistake says what it is, what is done and the hint it must get; an `unchecked:` entry names
/// something of the solve and says why the check need not see it.
fn lint_mistakes_and_unchecked(
    step: &Step,
    at: &dyn Fn(&str) -> (usize, usize),
    report: &mut dyn FnMut(usize, usize, String),
) {
    for (i, mistake) in step.mistakes.iter().enumerate() {
        let (line, col) = at(&format!("mistakes[{i}]"));
        if mistake.name.trim().is_empty() {
            report(
                line,
                col,
                format!(
                    "mistakes[{i}]: give the mistake a `name` (verify names it when the check accepts it)"
                ),
            );
        }
        if mistake.actions.is_empty() {
            report(
                line,
                col,
                format!(
                    "mistakes[{i}] `{}`: `do:` is empty; list what a participant does instead of the solve",
                    mistake.name
                ),
            );
        }
        if mistake.hint.trim().is_empty() {
            report(
                line,
                col,
                format!(
                    "mistakes[{i}] `{}`: `hint:` is empty; give the text the check's diagnosis must show for this mistake",
                    mistake.name
                ),
            );
        }
        if step.check.is_empty() {
            report(
                line,
                col,
                format!(
                    "mistakes[{i}] `{}`: the step has no check to reject it",
                    mistake.name
                ),
            );
        }
        if !step.check_fails_before_solve {
            report(
                line,
                col,
                format!(
                    "mistakes[{i}] `{}`: this is an observation step (`check_fails_before_solve: false`): its \
                     check holds before any solve, so it cannot reject wrong work",
                    mistake.name
                ),
            );
        }
    }
    if step.unchecked.is_empty() {
        return;
    }
    let mutants = super::mutants::mutants(step);
    for (i, entry) in step.unchecked.iter().enumerate() {
        let (line, col) = at(&format!("unchecked[{i}]"));
        let needle = entry
            .command
            .as_deref()
            .or(entry.action.as_deref())
            .unwrap_or_default();
        let what = format!("unchecked[{i}]");
        match (&entry.command, &entry.action) {
            (Some(_), Some(_)) | (None, None) => report(
                line,
                col,
                format!(
                    "{what}: name exactly one thing of the solve the check does not judge: `command:` (the start \
                     of a command in a `shell:` block) or `action:` (a path such as `solve[0].profile.during[0]`)"
                ),
            ),
            _ => {
                if !mutants
                    .iter()
                    .any(|m| super::mutants::matches_unchecked(step, entry, m))
                {
                    let known: Vec<String> = mutants
                        .iter()
                        .map(|m| format!("{} `{}`", m.id, m.left_out))
                        .collect();
                    report(
                        line,
                        col,
                        format!(
                            "{what}: `{needle}` names nothing in the solve, so it spares nothing from `verify \
                             --mutations` (which leaves out each command and action in turn); the solve has: {}",
                            known.join("; ")
                        ),
                    );
                }
            }
        }
        if entry.reason.trim().is_empty() {
            report(
                line,
                col,
                format!(
                    "{what}: `reason:` is empty; say why the check need not see this (what it is for: \
                     showing the participant something, a person's pace, ...)"
                ),
            );
        }
    }
}

/// What is wrong with the shape of a block a reader copies (None when nothing): shell that does not
/// parse (commands for AWS included, though they are not run here), the JSON handed to `--parameters`
/// or `--cli-input-json`, a JSON or Terraform (HCL) snippet that does not parse.
fn shape_problem(block: &crate::fenced::Fenced) -> Option<String> {
    match block.language() {
        "json" => serde_json::from_str::<Value>(&block.text)
            .err()
            .map(|e| format!("is not valid JSON: {e}")),
        "hcl" | "terraform" | "tf" => hcl::parse(&block.text)
            .err()
            .map(|e| format!("is not valid HCL: {e}")),
        "sh" | "bash" | "shell" => {
            if let Some(problem) = bash_syntax_problem(&block.text) {
                return Some(format!("does not parse as shell: {problem}"));
            }
            for (option, json) in quoted_json_arguments(&block.text) {
                if let Err(e) = serde_json::from_str::<Value>(&json) {
                    return Some(format!("passes {option} JSON that does not parse: {e}"));
                }
            }
            None
        }
        _ => None,
    }
}

/// The single-quoted arguments of `--parameters` and `--cli-input-json` in shell text.
fn quoted_json_arguments(text: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for option in ["--parameters", "--cli-input-json"] {
        let mut rest = text;
        while let Some(at) = rest.find(option) {
            rest = &rest[at + option.len()..];
            let after = rest.trim_start_matches([' ', '=']);
            if let Some(quoted) = after.strip_prefix('\'')
                && let Some(end) = quoted.find('\'')
            {
                out.push((option, quoted[..end].to_string()));
            }
        }
    }
    out
}

/// Calls `bad(path, kind)` for every action in `action` that a person could not do themselves.
fn participant_doable(action: &Action, path: &str, bad: &mut dyn FnMut(&str, &str)) {
    match action {
        Action::Shell(_) | Action::Wait(_) | Action::Ask(_) => {}
        Action::Parallel(inner) | Action::Sequence(inner) => {
            for (i, a) in inner.iter().enumerate() {
                participant_doable(a, &format!("{path}[{i}]"), bad);
            }
        }
        Action::Inspector(InspectorAction::PauseAt(p)) => {
            for (i, a) in p.trigger.iter().enumerate() {
                participant_doable(a, &format!("{path}.pause_at.trigger[{i}]"), bad);
            }
        }
        Action::Inspector(InspectorAction::Profile(p)) => {
            for (i, a) in p.during.iter().enumerate() {
                participant_doable(a, &format!("{path}.profile.during[{i}]"), bad);
            }
        }
        Action::Inspector(_) => {}
        Action::Http(_) => bad(path, "http"),
        Action::Metrics(_) => bad(path, "metrics"),
        Action::Container(_) => bad(path, "container"),
        Action::Artifact(_) => bad(path, "artifact"),
        Action::Analyze(_) => bad(path, "analyze"),
        Action::Eventually(_) => bad(path, "eventually"),
        Action::Tunnel(_) => bad(path, "tunnel"),
        Action::Command(_) => bad(path, "command"),
        Action::File(_) => bad(path, "file"),
        Action::Port(_) => bad(path, "port"),
    }
}

/// What `bash -n` says about `commands` (None when they parse, or bash is not there to ask).
fn bash_syntax_problem(commands: &str) -> Option<String> {
    let answer = super::bash::check(commands)?;
    (!answer.parses).then_some(answer.said)
}

/// Every action of a step with its path (`solve[0]`, `solve[1].parallel[0]`), setup first.
fn step_actions(step: &Step) -> Vec<(String, &Action)> {
    let mut out = Vec::new();
    for (phase, actions) in [
        ("setup", &step.setup),
        ("solve", &step.solve),
        ("check", &step.check),
        ("cleanup", &step.cleanup),
    ] {
        for (i, a) in actions.iter().enumerate() {
            flatten(a, format!("{phase}[{i}]"), &mut out);
        }
    }
    for (m, mistake) in step.mistakes.iter().enumerate() {
        for (list, actions) in [("do", &mistake.actions), ("undo", &mistake.undo)] {
            for (i, a) in actions.iter().enumerate() {
                flatten(a, format!("mistakes[{m}].{list}[{i}]"), &mut out);
            }
        }
    }
    out
}

fn flatten<'a>(action: &'a Action, path: String, out: &mut Vec<(String, &'a Action)>) {
    match action {
        Action::Parallel(inner) | Action::Sequence(inner) => {
            let kind = if matches!(action, Action::Parallel(_)) {
                "parallel"
            } else {
                "sequence"
            };
            for (i, a) in inner.iter().enumerate() {
                flatten(a, format!("{path}.{kind}[{i}]"), out);
            }
        }
        Action::Eventually(e) => {
            for (i, a) in e.actions.iter().enumerate() {
                flatten(a, format!("{path}.eventually.do[{i}]"), out);
            }
        }
        other => out.push((path, other)),
    }
}

/// Names of the variables an action saves.
pub fn saved_names(action: &Action) -> Vec<String> {
    match action {
        Action::Http(h) => h.save.keys().cloned().collect(),
        Action::Metrics(m) => m.save.keys().cloned().collect(),
        Action::Artifact(a) => a.save.iter().cloned().collect(),
        Action::Inspector(i) => match i {
            InspectorAction::Discover(d) => d.save.values().cloned().collect(),
            InspectorAction::Evaluate(e) => e.save.iter().cloned().collect(),
            InspectorAction::Paused(p) => {
                p.save.keys().chain(p.save_caller.keys()).cloned().collect()
            }
            InspectorAction::EvaluateInFrame(e) => e.save.iter().cloned().collect(),
            InspectorAction::Profile(p) => p.save.iter().cloned().collect(),
            InspectorAction::HeapSnapshot(h) => h.save.iter().cloned().collect(),
            InspectorAction::HeapUsage(h) => h.save.keys().cloned().collect(),
            _ => Vec::new(),
        },
        Action::Analyze(crate::AnalyzeAction::Cpuprofile(c)) => c.save.values().cloned().collect(),
        Action::Analyze(crate::AnalyzeAction::Heapsnapshot(h)) => {
            h.save.values().cloned().collect()
        }
        Action::Analyze(crate::AnalyzeAction::HeapDiff(d)) => d.save.values().cloned().collect(),
        Action::Tunnel(crate::TunnelAction::Open(_)) => {
            vec!["tunnel_addr".into(), "inspector_addr".into()]
        }
        Action::Command(c) => c.save.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `at` gives where a field of the step is, by its path in the step (`check[0].http.path`).
fn lint_action(
    action: &Action,
    path: &str,
    at: &dyn Fn(&str) -> (usize, usize),
    lab: &Lab,
    env_services: &[String],
    report: &mut dyn FnMut(usize, usize, String),
) {
    let app_dir = &lab.app_dir();
    let at = |field: &str| at(&format!("{path}.{field}"));
    match action {
        Action::Inspector(InspectorAction::PauseAt(p)) => {
            let place = &p.at;
            let found = match &place.line_containing {
                Some(needle) => {
                    app_source::locate_line(app_dir, &place.file, &place.function, needle)
                        .map(|_| ())
                }
                None => {
                    app_source::locate_function(app_dir, &place.file, &place.function).map(|_| ())
                }
            };
            if let Err(e) = found {
                let (l, c) = at("inspector.pause_at.at.function");
                report(
                    l,
                    c,
                    format!("{path}: the breakpoint does not resolve in the lab app's source: {e}"),
                );
            }
        }
        Action::Inspector(InspectorAction::Paused(p)) => {
            match (&p.file, &p.line_containing) {
                (Some(file), Some(needle)) => {
                    if let Err(e) = app_source::locate_line(app_dir, file, &p.function, needle) {
                        let (l, c) = at("inspector.paused.line_containing");
                        report(
                            l,
                            c,
                            format!(
                                "{path}: the paused line does not resolve in the lab app's source: {e}"
                            ),
                        );
                    }
                }
                (None, Some(_)) => {
                    let (l, c) = at("inspector.paused.line_containing");
                    report(
                        l,
                        c,
                        format!("{path}: `line_containing` needs the `file` it is in"),
                    );
                }
                _ => {}
            }
            if let Some(first) = p.call_stack.first()
                && *first != p.function
            {
                let (l, c) = at("inspector.paused.call_stack");
                report(
                    l,
                    c,
                    format!(
                        "{path}: the Call Stack starts with the paused function `{}`, not `{first}`",
                        p.function
                    ),
                );
            }
        }
        Action::Http(h) => {
            if let Some(service) = &h.service {
                let (l, c) = at("http.service");
                match lint_service_name(service, lab, env_services) {
                    Some(problem) => report(l, c, format!("{path}: {problem}")),
                    None if !lab.manifest.services[service].publish => report(
                        l,
                        c,
                        format!(
                            "{path}: `http:` goes to the service `{service}` on its published address, \
                             but `services.{service}` is not `publish: true`"
                        ),
                    ),
                    None => {}
                }
            }
            if !h.path.starts_with('/') && !h.path.starts_with("{{") {
                let (l, c) = at("http.path");
                report(
                    l,
                    c,
                    format!("{path}: the path `{}` must start with /", h.path),
                );
            }
            if http::Method::from_bytes(h.method.to_ascii_uppercase().as_bytes()).is_err() {
                let (l, c) = at("http.method");
                report(
                    l,
                    c,
                    format!("{path}: `{}` is not an HTTP method", h.method),
                );
            }
            let pointers = (h
                .expect
                .json
                .keys()
                .map(|k| (format!("http.expect.json.{k}"), k)))
            .chain(
                h.save
                    .iter()
                    .map(|(name, p)| (format!("http.save.{name}"), p)),
            );
            for (field, pointer) in pointers {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    let (l, c) = at(&field);
                    report(
                        l,
                        c,
                        format!("{path}: `{pointer}` is not a JSON pointer (write /field/sub)"),
                    );
                }
            }
        }
        Action::Metrics(m) => {
            let selectors = (m.expect.keys().map(|k| (format!("metrics.expect.{k}"), k))).chain(
                m.save
                    .iter()
                    .map(|(name, sel)| (format!("metrics.save.{name}"), sel)),
            );
            for (field, selector) in selectors {
                if let Err(e) = Selector::parse(selector) {
                    let (l, c) = at(&field);
                    report(l, c, format!("{path}: metric selector `{selector}`: {e}"));
                }
            }
        }
        Action::Container(crate::ContainerAction::LogsContain(logs)) => {
            if let Some(service) = &logs.service
                && let Some(problem) = lint_service_name(service, lab, env_services)
            {
                let (l, c) = at("container.logs_contain.service");
                report(l, c, format!("{path}: {problem}"));
            }
            if logs.text.is_empty() == logs.regex.is_none() {
                let (l, c) = at("container.logs_contain");
                report(
                    l,
                    c,
                    format!(
                        "{path}: `logs_contain` needs exactly one of `text:` (a line contains it) and \
                         `regex:` (a line matches it)"
                    ),
                );
            }
            if let Some(pattern) = &logs.regex {
                lint_regex(pattern, path, at("container.logs_contain.regex"), report);
            }
        }
        Action::Command(c) => lint_command(c, path, &at, lab, env_services, report),
        Action::File(f) => {
            let (l, c) = at("file.path");
            if f.path.trim().is_empty() {
                report(
                    l,
                    c,
                    format!(
                        "{path}: `path:` is empty; name the file, relative to the participant's workspace"
                    ),
                );
            }
            let judges_text = f.contains.is_some() || f.not_contains.is_some() || f.regex.is_some();
            if !f.exists && judges_text {
                let (l, c) = at("file.exists");
                report(
                    l,
                    c,
                    format!(
                        "{path}: `exists: false` with `contains`, `not_contains` or `regex`: a file that must not \
                         exist has no text to judge"
                    ),
                );
            }
            if let Some(pattern) = &f.regex {
                lint_regex(pattern, path, at("file.regex"), report);
            }
        }
        Action::Port(p) => {
            let ok = p.address.contains("{{")
                || p.address
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                let (l, c) = at("port.address");
                report(
                    l,
                    c,
                    format!(
                        "{path}: `{}` is not a host:port address (write `127.0.0.1:{{{{ app_port }}}}`)",
                        p.address
                    ),
                );
            }
        }
        _ => {}
    }
}

/// A `command:` says what to run exactly once, runs on a side that can run it, and its regular
/// expressions, JSON pointers and `save:` sources are well formed. `at` locates a field of the
/// action by its path under the action (`command.run`).
fn lint_command(
    command: &crate::CommandAction,
    path: &str,
    at: &dyn Fn(&str) -> (usize, usize),
    lab: &Lab,
    env_services: &[String],
    report: &mut dyn FnMut(usize, usize, String),
) {
    if let crate::Side::Service(service) = &command.side
        && let Some(problem) = lint_service_name(service, lab, env_services)
    {
        let (l, c) = at("command.in");
        report(l, c, format!("{path}: `in: {service}`: {problem}"));
    }
    let (l, c) = at(if command.run.is_some() {
        "command.run"
    } else {
        "command.argv"
    });
    match (&command.run, command.argv.is_empty()) {
        (Some(_), false) | (None, true) => report(
            l,
            c,
            format!(
                "{path}: a `command:` needs exactly one of `run:` (shell commands) and `argv:` (a program \
                 and its arguments, run without a shell)"
            ),
        ),
        (Some(run), true) => {
            let image = match &command.side {
                crate::Side::Participant => None,
                crate::Side::App => Some(("the app (`in: app`)", lab.manifest.app.image.as_ref())),
                crate::Side::Service(name) => lab.manifest.services.get(name).map(|service| {
                    (
                        "a service",
                        service.image.as_ref().or(lab.manifest.app.image.as_ref()),
                    )
                }),
            };
            if let Some((inside, None | Some(crate::ImageSpec::Offline(_)))) = image {
                report(
                    l,
                    c,
                    format!(
                        "{path}: `run:` inside {inside} needs a shell in its image, and an offline \
                         image holds only the runtime it names: write the program and its arguments \
                         as `argv:`"
                    ),
                );
            } else if !run.contains("{{")
                && let Some(problem) = bash_syntax_problem(run)
            {
                report(
                    l,
                    c,
                    format!("{path}: the commands do not parse: {problem}"),
                );
            }
        }
        (None, false) => {}
    }
    for (stream, expect) in [
        ("stdout", &command.expect.stdout),
        ("stderr", &command.expect.stderr),
    ] {
        if let Some(pattern) = expect.as_ref().and_then(|e| e.regex.as_ref()) {
            lint_regex(
                pattern,
                path,
                at(&format!("command.expect.{stream}.regex")),
                report,
            );
        }
    }
    for pointer in command.expect.json.keys() {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            let (l, c) = at(&format!("command.expect.json.{pointer}"));
            report(
                l,
                c,
                format!("{path}: `{pointer}` is not a JSON pointer (write /field/sub)"),
            );
        }
    }
    for (name, source) in &command.save {
        if !matches!(source.as_str(), "stdout" | "stderr" | "exit") && !source.starts_with('/') {
            let (l, c) = at(&format!("command.save.{name}"));
            report(
                l,
                c,
                format!(
                    "{path}: save `{name}: {source}`: a command's `save:` takes `stdout`, `stderr`, `exit` \
                     or a JSON pointer into stdout (/field/sub)"
                ),
            );
        }
    }
}

/// `at`: where the pattern is in the file.
fn lint_regex(
    pattern: &str,
    path: &str,
    at: (usize, usize),
    report: &mut dyn FnMut(usize, usize, String),
) {
    if pattern.contains("{{") {
        return;
    }
    if let Err(e) = regex::Regex::new(pattern) {
        let why = e.to_string();
        let why = why.lines().last().unwrap_or_default().trim();
        report(
            at.0,
            at.1,
            format!("{path}: `{pattern}` is not a regular expression: {why}"),
        );
    }
}

fn check_template(
    renderer: &Renderer,
    template: &str,
    known: &BTreeSet<String>,
    saved_in: &BTreeMap<String, String>,
    report: &mut dyn FnMut(String),
) {
    match renderer.variables_used(template) {
        Err(e) => report(format!("template error: {}", e.message)),
        Ok(used) => {
            for name in used.difference(known) {
                report(undefined_message(name, known, saved_in));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_template_located(
    renderer: &Renderer,
    template: &str,
    known: &BTreeSet<String>,
    saved_in: &BTreeMap<String, String>,
    text: &str,
    from_line: usize,
    report: &mut dyn FnMut(usize, usize, String),
    what: &str,
) {
    match renderer.variables_used(template) {
        Err(e) => {
            // Locate the template's own line in the file.
            let target_line = e
                .line
                .and_then(|l| template.lines().nth(l.saturating_sub(1)));
            let (line, col) = target_line
                .and_then(|l| yaml::find_line(text, from_line, l.trim()))
                .unwrap_or((from_line, 1));
            report(line, col, format!("{what}: template error: {}", e.message));
        }
        Ok(used) => {
            for name in used.difference(known) {
                let (line, col) = locate_variable(text, from_line, name).unwrap_or((from_line, 1));
                report(
                    line,
                    col,
                    format!("{what}: {}", undefined_message(name, known, saved_in)),
                );
            }
        }
    }
}

/// The line and column of the `{{` that reads `name`, at or after `from_line`.
fn locate_variable(text: &str, from_line: usize, name: &str) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find_map(|(i, line)| {
            let mut start = 0;
            while let Some(open) = line[start..].find("{{") {
                let open = start + open;
                let close = line[open..].find("}}").map_or(line.len(), |c| open + c);
                let inside = &line[open + 2..close];
                if inside
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == name)
                {
                    return Some((i + 1, open + 1));
                }
                start = close.min(line.len());
                if start >= line.len() {
                    break;
                }
            }
            None
        })
}

fn undefined_message(
    name: &str,
    known: &BTreeSet<String>,
    saved_in: &BTreeMap<String, String>,
) -> String {
    match saved_in.get(name) {
        Some(where_) if where_.contains("`solve") => format!(
            "uses {{{{ {name} }}}}, which only a solve saves ({where_}); a participant who does that step by hand \
             saves nothing, so only the rest of that solve may use it — save it in a setup or check instead"
        ),
        Some(where_) => {
            format!("uses {{{{ {name} }}}} before it is saved (it is first saved in {where_})")
        }
        None => {
            let mut suggestion = String::new();
            if let Some(close) = known.iter().find(|k| similar(k, name)) {
                suggestion = format!("; did you mean `{close}`?");
            }
            format!(
                "uses {{{{ {name} }}}}, which is not defined{suggestion} (variables come from lab.yaml `variables`, the session, or an earlier `save`)"
            )
        }
    }
}

/// Same letters give or take one edit, for "did you mean".
fn similar(a: &str, b: &str) -> bool {
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()] <= 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fenced::fenced_blocks;

    #[test]
    fn snippets_a_reader_copies_are_checked_for_shape() {
        let md = "```json\n{\"a\": 1,}\n```\n```hcl\nresource \"x\" \"y\" {\n  a = 1\n}\n```\n```sh no-run\naws ssm start-session --parameters '{\"host\":[\"127.0.0.1\"]'\n```\n```hcl\nresource \"x\" {\n```\n```sh no-run\nfor x in; do\n```\n";
        let problems: Vec<Option<String>> = fenced_blocks(md).iter().map(shape_problem).collect();
        assert!(
            problems[0]
                .as_deref()
                .is_some_and(|p| p.contains("not valid JSON")),
            "{problems:?}"
        );
        assert!(problems[1].is_none(), "{problems:?}");
        assert!(
            problems[2]
                .as_deref()
                .is_some_and(|p| p.contains("--parameters")),
            "{problems:?}"
        );
        assert!(
            problems[3]
                .as_deref()
                .is_some_and(|p| p.contains("not valid HCL")),
            "{problems:?}"
        );
        assert!(
            problems[4]
                .as_deref()
                .is_some_and(|p| p.contains("does not parse as shell")),
            "{problems:?}"
        );
    }
}
