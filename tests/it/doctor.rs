//! `lab-runner doctor`: one line per check, a fix for each problem, exit 1 only when something FAILs —
//! and a warning for any container that publishes a Node inspector beyond loopback.

use crate::support;

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use lab_runner::env::docker::image;
use support::{
    docker_or_skip, docker_shared, lab_runner, observer, repo_root, shipped_lab,
    start_exposed_container, text,
};

/// The first line of doctor's output whose check (after the status) starts with `check`.
fn line<'a>(stdout: &'a str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(&format!("{check} ")))
        })
        .unwrap_or_else(|| panic!("no `{check}` line in\n{stdout}"))
}

#[test]
fn doctor_passes_on_this_machine() {
    if !docker_or_skip("doctor_passes_on_this_machine") {
        return;
    }
    let _docker = docker_shared();
    let out = lab_runner()
        .args(["doctor", "--lab"])
        .arg(shipped_lab())
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(line(&stdout, "docker").starts_with("ok"), "{all}");
    assert!(line(&stdout, "docker").contains("API 1."), "{all}");
    assert!(line(&stdout, "node").starts_with("ok"), "{all}");
    assert!(
        line(&stdout, "image").contains("lab-runner/lab-app:"),
        "{all}"
    );
    // The ports the lab wants: the app's, and the development environment's inspector.
    assert!(stdout.contains("port 3001"), "{all}");
    assert!(stdout.contains("port 9229"), "{all}");
    assert!(line(&stdout, "disk").contains("free at"), "{all}");
    assert!(
        stdout.lines().last().unwrap_or("").starts_with("doctor: "),
        "{all}"
    );
    assert!(!stdout.contains("FAIL"), "{all}");
}

#[test]
fn an_unreachable_docker_fails_its_line_with_the_fix_quickly() {
    let started = Instant::now();
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--lab"])
        .arg(shipped_lab())
        .output()
        .unwrap();
    let took = started.elapsed();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let docker = line(&stdout, "docker");
    assert!(docker.starts_with("FAIL"), "{all}");
    assert!(
        docker.contains("not reachable at unix:///nonexistent/docker.sock"),
        "{all}"
    );
    assert!(docker.contains("fix: start the Docker daemon"), "{all}");
    assert!(docker.contains("DOCKER_HOST"), "{all}");
    assert!(docker.contains("--backend process"), "{all}");
    // The checks that do not need Docker still run.
    assert!(stdout.contains("port 3001"), "{all}");
    assert!(line(&stdout, "node").starts_with("ok"), "{all}");
    assert!(took < Duration::from_secs(5), "doctor took {took:?}");
}

#[test]
fn a_lab_that_does_not_load_fails_the_lab_line() {
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--lab"])
        .arg(repo_root().join("no-such-lab"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lab = line(&stdout, "lab");
    assert!(
        lab.starts_with("FAIL") && lab.contains("--lab DIR"),
        "{all}"
    );
}

/// Removes the named containers when dropped (also when an assertion fails).
struct Remove(Vec<String>);
impl Drop for Remove {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", name])
                .output();
        }
    }
}

async fn start(docker: &Docker, name: &str, image: &str, env: &[&str], port: &str) {
    let labels = [
        ("io.lab-runner.managed", "true"),
        ("io.lab-runner.part", "doctor-test"),
    ];
    start_exposed_container(docker, image, name, &labels, env, port)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_publishing_an_inspector_beyond_loopback_is_warned_about() {
    if !docker_or_skip("a_container_publishing_an_inspector_beyond_loopback_is_warned_about") {
        return;
    }
    let _docker = docker_shared();
    let runner_client = lab_runner::env::docker::connect::connect().await.unwrap();
    let docker = observer();
    let app_dir = repo_root().join("lab-app");
    let lab_image = image::ensure(
        &runner_client,
        &image::ImageInput {
            repository: &image::repository(&app_dir),
            dir: Some(&app_dir),
            files: &["package.json".to_string(), "src".to_string()],
            recipe: &image::Recipe::HostNode {
                entry: Some("src/server.js".into()),
            },
        },
        &|_| {},
    )
    .await
    .unwrap();
    let id = lab_runner::util::random::hex(4);
    let by_port = format!("lab-runner-doctor-test-{id}-port");
    let by_env = format!("lab-runner-doctor-test-{id}-env");
    let _remove = Remove(vec![by_port.clone(), by_env.clone()]);
    // Neither container really listens beyond loopback: the first runs no inspector, the second
    // opens it on the container's own 127.0.0.1. What they publish is what the doctor judges.
    start(&docker, &by_port, &lab_image.reference, &[], "9229/tcp").await;
    start(
        &docker,
        &by_env,
        &lab_image.reference,
        &["NODE_OPTIONS=--inspect"],
        "3001/tcp",
    )
    .await;

    let out = tokio::task::spawn_blocking(|| {
        lab_runner()
            .args(["doctor", "--lab"])
            .arg(shipped_lab())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let all = text(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, why) in [
        (
            &by_port,
            "publishes the inspector port 9229/tcp on 0.0.0.0:",
        ),
        (
            &by_env,
            "runs Node with NODE_OPTIONS=--inspect and publishes 3001/tcp on 0.0.0.0:",
        ),
    ] {
        let warning = stdout
            .lines()
            .find(|l| l.contains(&format!("the container {name} ")))
            .unwrap_or_else(|| panic!("no warning about {name}:\n{all}"));
        assert!(warning.starts_with("warn"), "{warning}");
        assert!(warning.contains(why), "{warning}");
        assert!(warning.contains("can run any code"), "{warning}");
        assert!(
            warning.contains(&format!("docker rm -f {name}"))
                && warning.contains("127.0.0.1:9229:9229"),
            "{warning}"
        );
    }
    // A warning is not a failure.
    assert_eq!(out.status.code(), Some(0), "{all}");

    for name in [&by_port, &by_env] {
        docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
    }
}

#[test]
fn the_image_line_names_the_tag_ensure_uses() {
    // `image::plan` computes without Docker the tag `image::ensure` returns.
    let app_dir = repo_root().join("lab-app");
    let plan = image::plan(&image::ImageInput {
        repository: &image::repository(&app_dir),
        dir: Some(&app_dir),
        files: &["package.json".to_string(), "src".to_string()],
        recipe: &image::Recipe::HostNode {
            entry: Some("src/server.js".into()),
        },
    })
    .unwrap();
    assert!(plan.reference.starts_with("lab-runner/lab-app:"));
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--lab"])
        .arg(shipped_lab())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let image = line(&stdout, "image");
    assert!(image.contains(&plan.reference), "{}", text(&out));
    assert!(image.contains("can be built offline"), "{}", text(&out));
}

#[test]
fn help_has_examples() {
    let out = lab_runner().args(["doctor", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:\n  lab-runner doctor"), "{help}");
}

#[test]
fn a_node_older_than_the_lab_asks_for_fails_its_line() {
    // Step 3.4 evaluates process.getBuiltinModule (Node 20.16+): a Node 20 before that must fail.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("node");
    std::fs::write(&fake, "#!/bin/sh\necho v20.15.1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = lab_runner()
        .env("LAB_RUNNER_NODE", &fake)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--lab"])
        .arg(shipped_lab())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let node = line(&stdout, "node");
    assert!(
        node.starts_with("FAIL") && node.contains("v20.15.1") && node.contains("20.16"),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
