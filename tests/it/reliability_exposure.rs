//! Exposure: every container the runner starts during a full `verify` (all three parts, including
//! the containers a step recreates or restarts) is inspected the moment it starts. No port may be
//! published beyond 127.0.0.1; Part 1 publishes the inspector on 127.0.0.1 only; Part 3 publishes
//! the app port and nothing else (its inspector is reached through the exec tunnel only).

use crate::reliability_support;
use crate::support;

use std::collections::BTreeMap;

use bollard::Docker;
use lab_runner::env::docker::image;

use reliability_support::{Seen, remove_session, session_of, started, watch_starts};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn no_container_of_any_part_publishes_a_port_beyond_loopback() {
    let Some(docker) = docker_client_or_skip("exposure").await else {
        return;
    };
    let _lock = docker_shared();
    let watch = watch_starts(docker.clone());
    // The control: a container published on every interface, which the watch must see as such.
    let control = exposed_control(&docker).await;
    let out = tokio::task::spawn_blocking(|| {
        lab_runner()
            .args(["verify", "--backend", "docker"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let seen = watch.stop().await;
    let all = text(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let parts = started(&stdout);
    let sessions: BTreeMap<String, String> = parts
        .iter()
        .map(|(part, container)| (session_of(container), part.clone()))
        .collect();
    // Whatever happens below, nothing of these sessions stays behind.
    for session in sessions.keys() {
        remove_session(session).await;
    }
    assert_eq!(out.status.code(), Some(0), "{all}");
    let mut part_names: Vec<&str> = sessions.values().map(String::as_str).collect();
    part_names.sort();
    assert_eq!(
        part_names,
        ["part1", "part2", "part3"],
        "one session per part:\n{all}"
    );

    let control_seen = seen
        .iter()
        .find(|s| s.session == control)
        .expect("the watch saw the control container start");
    assert!(
        control_seen
            .published
            .iter()
            .any(|b| b.host_ip == "0.0.0.0"),
        "the watch did not see the control's 0.0.0.0 binding: {control_seen:?}"
    );

    let mine: Vec<&Seen> = seen
        .iter()
        .filter(|s| sessions.contains_key(&s.session))
        .collect();
    let mut starts_per_part: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &mine {
        let part = sessions[&s.session].as_str();
        *starts_per_part.entry(part).or_default() += 1;
        assert!(
            s.missed.is_none(),
            "a container could not be inspected: {s:?}"
        );
        assert_eq!(s.part, part, "{s:?}");
        // Its own network: never the host's (which would expose every port it listens on).
        assert_eq!(s.network_mode, s.name, "{s:?}");
        assert!(!s.published.is_empty(), "nothing published at all: {s:?}");
        for binding in s.requested.iter().chain(&s.published) {
            assert_eq!(
                binding.host_ip, "127.0.0.1",
                "{} publishes {} on {:?}: {s:?}",
                s.name, binding.container_port, binding.host_ip
            );
        }
        match part {
            "part1" => assert_eq!(s.published_ports(), ["3001/tcp", "9229/tcp"], "{s:?}"),
            "part2" | "part3" => assert_eq!(s.published_ports(), ["3001/tcp"], "{s:?}"),
            other => panic!("unexpected part {other}"),
        }
    }
    println!(
        "FIGURE exposure: {} container starts inspected ({starts_per_part:?}), every binding on 127.0.0.1",
        mine.len()
    );
    for part in ["part1", "part2", "part3"] {
        assert!(
            starts_per_part.get(part).copied().unwrap_or(0) >= 1,
            "no container start seen for {part}: {starts_per_part:?}\n{all}"
        );
    }
    // Part 2 recreates its container (enable, then disable the lab) and Part 3 restarts it.
    assert!(starts_per_part["part2"] >= 3, "{starts_per_part:?}");
    assert!(starts_per_part["part3"] >= 2, "{starts_per_part:?}");
}

/// Starts (and removes again) a container of the lab image, labelled like the runner's with a
/// session of its own, publishing 3001/tcp on 0.0.0.0; returns that session.
async fn exposed_control(docker: &Docker) -> String {
    let runner_client = lab_runner::env::docker::connect::connect()
        .await
        .expect("the runner's Docker client");
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
    .expect("the lab image");
    let session = format!("control{}", lab_runner::util::random::hex(4));
    let name = format!("lab-runner-{session}-control");
    let part_label = ("io.lab-runner.part", "control");
    let started = start_exposed_container(
        docker,
        &lab_image.reference,
        &name,
        &[
            ("io.lab-runner.managed", "true"),
            ("io.lab-runner.session", session.as_str()),
            part_label,
        ],
        &[],
        "3001/tcp",
    )
    .await;
    // Seen at its start; removed at once (it must not stay exposed for the rest of the test).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    remove_session(&session).await;
    started.expect("start the control container");
    session
}
