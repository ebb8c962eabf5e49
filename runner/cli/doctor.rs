//! `lab-runner doctor`: whether this machine can run the lab — one line per check.

use std::path::PathBuf;

use clap::Args;

use super::exit;
use crate::env::docker::DockerClient;
use crate::env::docker::doctor as docker_checks;
use crate::env::doctor::{self, Finding, Status};
use crate::lab::{self, Lab, lint};

const AFTER_HELP: &str = "\
Checks: Docker reachable (engine and API version); the lab image present, or buildable offline from \
the host's node; the lab's ports free on 127.0.0.1 (the app's, every environment's inspector); \
node --version >= 20; free disk space where Docker keeps its data and in the temp dir; and running \
containers (any, not only the runner's) that publish a Node inspector beyond loopback.

Each line is ok, warn or FAIL, what was found, and the fix. Exit code 0 when nothing FAILs, 1 otherwise.

Examples:
  lab-runner doctor
  lab-runner doctor --lab labs/node-profiling
  DOCKER_HOST=tcp://10.0.0.5:2375 lab-runner doctor";

/// Check that this machine can run the lab (Docker, image, ports, node, disk, open inspectors)
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DoctorArgs {
    /// The lab folder (default: $LAB_RUNNER_LAB, or labs/node-profiling found from here upwards)
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let dir = args.lab.unwrap_or_else(super::run::default_lab_dir);
    let (lab_finding, loaded) = match lab::load(&dir) {
        Ok(loaded) => {
            let problems = lint::lint(&loaded);
            let steps: usize = loaded.parts.iter().map(|p| p.file.steps.len()).sum();
            let finding = if problems.is_empty() {
                Finding::ok(
                    "lab",
                    format!(
                        "{} at {}: {} part(s), {steps} step(s)",
                        loaded.id(),
                        dir.display(),
                        loaded.parts.len()
                    ),
                )
            } else {
                Finding::fail(
                    "lab",
                    format!(
                        "{} at {} has {} problem(s)",
                        loaded.id(),
                        dir.display(),
                        problems.len()
                    ),
                    format!("see them with `lab-runner lint {}`", dir.display()),
                )
            };
            (finding, Some(loaded))
        }
        Err(problems) => (
            Finding::fail(
                "lab",
                format!(
                    "cannot load {}: {}",
                    dir.display(),
                    problems.first().map(|p| p.to_string()).unwrap_or_default()
                ),
                format!(
                    "give the lab folder with --lab DIR, and see `lab-runner lint {}`",
                    dir.display()
                ),
            ),
            None,
        ),
    };
    let mut findings = vec![lab_finding];
    findings.extend(diagnose(loaded.as_ref()).await);
    for finding in &findings {
        println!("{finding}");
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let failed = count(Status::Fail);
    println!(
        "doctor: {} ok, {} warning(s), {failed} failed",
        count(Status::Ok),
        count(Status::Warn)
    );
    Ok(if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILED
    })
}

/// The app's image and each service's (`image`, `image <service>`).
async fn lab_images(docker: Option<&DockerClient>, lab: &Lab) -> Vec<Finding> {
    use crate::env::docker::image::{self, ImageInput, Recipe};
    let app = &lab.manifest.app;
    let app_dir = lab.app_dir();
    let app_dir = std::fs::canonicalize(&app_dir).unwrap_or(app_dir);
    let recipe = Recipe::of(app.image.as_ref(), app.entry.as_deref());
    let repository = image::repository(&app_dir);
    let mut findings = vec![
        docker_checks::image(
            docker,
            "image",
            &ImageInput {
                repository: &repository,
                dir: Some(&app_dir),
                files: &app.files,
                recipe: &recipe,
            },
        )
        .await,
    ];
    for (name, service) in &lab.manifest.services {
        let recipe = Recipe::of(service.image.as_ref().or(app.image.as_ref()), None);
        let dir = service
            .source
            .as_ref()
            .map(|s| lab.dir.join(s))
            .map(|d| std::fs::canonicalize(&d).unwrap_or(d));
        let repository = match &dir {
            Some(dir) => image::repository(dir),
            None => format!("{repository}-{name}"),
        };
        findings.push(
            docker_checks::image(
                docker,
                &format!("image {name}"),
                &ImageInput {
                    repository: &repository,
                    dir: dir.as_deref(),
                    files: &service.files,
                    recipe: &recipe,
                },
            )
            .await,
        );
    }
    findings
}

/// Every check of the machine (the host's and Docker's), in the order they are printed. `lab` is `None` when the lab could not be loaded (the
/// caller reports that); the checks that need it are then left out.
async fn diagnose(lab: Option<&Lab>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let engine = docker_checks::engine().await;
    findings.push(engine.finding.clone());
    if let Some(lab) = lab {
        findings.extend(lab_images(engine.docker.as_ref(), lab).await);
        for (part, reason) in crate::session::engine::parts_needing_docker(lab) {
            findings.push(Finding::ok(
                format!("docker {part}"),
                format!("{part} needs Docker: {reason}"),
            ));
        }
        let published = match &engine.docker {
            Some(d) => docker_checks::published_ports(d).await.unwrap_or_default(),
            None => Vec::new(),
        };
        for wanted in doctor::wanted_ports(lab) {
            findings.push(doctor::port(&wanted, &published));
        }
    }
    // A lab whose app is not a Node app (it has `command:`) and says no `app.node` needs no node.
    let needs_node = lab.is_none_or(|l| {
        let app = &l.manifest.app;
        app.entry.is_some() || app.node.is_some() || app.image.is_none()
    });
    if needs_node {
        let wanted = lab
            .and_then(|l| l.manifest.app.node.clone())
            .unwrap_or_else(|| doctor::MIN_NODE.to_string());
        findings.push(doctor::node(&wanted).await);
    }
    match &engine.docker {
        Some(d) => findings.push(docker_checks::disk(d).await),
        None => findings.push(Finding::warn(
            "disk docker",
            "not checked: Docker is not reachable",
            "fix Docker first (see the docker line)",
        )),
    }
    findings.push(doctor::disk("disk temp", &std::env::temp_dir()));
    if let Some(d) = &engine.docker {
        findings.extend(docker_checks::exposed_inspectors(d).await);
    }
    findings
}
