//! Several services per environment and images from where the author has them (issue 17, items 2
//! and 3): a Python app with `command:` from an offline image of the host's Python, a lab service
//! beside it, `registry:` and `dockerfile:` images, the process backend's refusal, and lint's
//! errors for each misuse.

use std::path::Path;

use crate::support;

use support::{docker_ids, docker_or_skip, docker_shared, fixture, lab_runner, text};

/// Runs `lab-runner verify` on `lab` with `args`.
fn verify(lab: &Path, args: &[&str]) -> std::process::Output {
    lab_runner()
        .arg("verify")
        .arg("--lab")
        .arg(lab)
        .args(args)
        .output()
        .expect("lab-runner runs")
}

/// The session id of the `START` line's container `lab-runner-<session>-<part>`.
fn session_of(stdout: &str) -> String {
    let name = support::container_name(stdout).expect("a START line naming the container");
    name.split('-')
        .nth(2)
        .expect("lab-runner-<session>-<part>")
        .to_string()
}

#[test]
fn a_python_app_and_a_service_on_its_network_pass_verify_and_leave_nothing() {
    if !docker_or_skip("a_python_app_and_a_service_on_its_network_pass_verify_and_leave_nothing") {
        return;
    }
    let _docker = docker_shared();
    let out = verify(
        &fixture("verify/services"),
        &["--backend", "docker", "--verbose"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("2 passed, 0 failed"), "{}", text(&out));
    // The service runs in a container of its own, named after the app's.
    let session = session_of(&stdout);
    assert!(
        stdout.contains(&format!("service lab-runner-{session}-part1-inventory")),
        "{}",
        text(&out)
    );
    // Checks that reached into the service: its log, its published port, an exec in it, and the
    // app calling it by name.
    assert!(
        stdout.contains("the log of the service `inventory` shows a line"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("(inside the service `inventory`) → exit 0"),
        "{}",
        text(&out)
    );
    let label = format!("io.lab-runner.session={session}");
    assert!(
        docker_ids("container", &label).is_empty(),
        "containers left"
    );
    assert!(docker_ids("network", &label).is_empty(), "networks left");
}

#[test]
fn the_process_backend_runs_a_command_app_and_refuses_a_part_with_services() {
    let alone = verify(&fixture("verify/python-alone"), &["--backend", "process"]);
    assert_eq!(alone.status.code(), Some(0), "{}", text(&alone));
    let stdout = String::from_utf8_lossy(&alone.stdout);
    assert!(stdout.contains("local process"), "{}", text(&alone));
    assert!(stdout.contains("python3 -u server.py"), "{}", text(&alone));

    let started = std::time::Instant::now();
    let refused = verify(&fixture("verify/services"), &["--backend", "process"]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(
        text(&refused).contains("part1 needs Docker: its environment runs services inventory"),
        "{}",
        text(&refused)
    );
    // Refused before anything started: no app was spawned, no health waited for.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // lint says the same of the lab, beside its verdict.
    let lint = lab_runner()
        .arg("lint")
        .arg(fixture("verify/services"))
        .output()
        .unwrap();
    assert!(lint.status.success(), "{}", text(&lint));
    assert!(
        String::from_utf8_lossy(&lint.stdout)
            .contains("part1 needs Docker: its environment runs services inventory"),
        "{}",
        text(&lint)
    );
}

/// Runs lint on tests/fixtures/lint/<case>: every line of its output (it must exit 2).
fn lint_lines(case: &str) -> Vec<String> {
    let out = lab_runner()
        .arg("lint")
        .arg(fixture(&format!("lint/{case}")))
        .output()
        .expect("lab-runner runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_lines(case: &str, lines: &[String], expected: &[(&str, &str, &str)]) {
    for (file, at, needle) in expected {
        let location = format!("{case}/{file}:{at}: ");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&location) && l.contains(needle)),
            "no `{needle}` at {file}:{at}:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn lint_locates_each_misuse_of_services_and_images() {
    let case = "services-misuse";
    let lines = lint_lines(case);
    assert_lines(
        case,
        &lines,
        &[
            (
                "lab.yaml",
                "11:35",
                "the host path `/no/such/python` does not exist",
            ),
            (
                "lab.yaml",
                "11:52",
                "`relative/path` is not an absolute path",
            ),
            (
                "lab.yaml",
                "19:13",
                "a `dockerfile:` is relative to the service's `source:`",
            ),
            (
                "lab.yaml",
                "21:3",
                "service `Bad_Name`: a service's name is its host name",
            ),
            (
                "lab.yaml",
                "22:5",
                "service `Bad_Name`: `command:` is empty",
            ),
            (
                "lab.yaml",
                "26:5",
                "`inspector:` is the Node.js inspector, and the app is not a Node app",
            ),
            ("lab.yaml", "27:27", "there is no service `invntory`"),
            (
                "part.yaml",
                "9:19",
                "`in: nosuch`: there is no service `nosuch`",
            ),
            (
                "part.yaml",
                "10:19",
                "the service `db` does not run in this part's environment",
            ),
            (
                "part.yaml",
                "11:34",
                "`run:` inside a service needs a shell in its image",
            ),
            ("part.yaml", "12:16", "is not `publish: true`"),
            ("part.yaml", "13:36", "there is no service `nosuch`"),
            (
                "part2.yaml",
                "9:36",
                "the service `inventory` does not run in this part's environment",
            ),
        ],
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("13 problem(s)")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn lint_wants_exactly_one_of_entry_and_command() {
    let both = lint_lines("app-entry-and-command");
    assert_lines(
        "app-entry-and-command",
        &both,
        &[("lab.yaml", "7:3", "give either `entry:` (a Node.js script")],
    );
    let neither = lint_lines("app-without-command");
    assert_lines(
        "app-without-command",
        &neither,
        &[("lab.yaml", "4:1", "give `entry:` (a Node.js script")],
    );
}

/// The tag the registry test gives a locally built image: "already on the engine", so no pull.
const LOCAL_BASE: &str = "lab-runner-test/python:3.11-offline";

/// A lab in a temp folder: a Python app whose image is `app_image`, and an `inventory` service
/// built from its own Dockerfile (`FROM dockerfile_from`).
fn registry_lab(app_image: &str, dockerfile_from: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fixture = fixture("verify/services");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::create_dir_all(root.join("inventory")).unwrap();
    std::fs::copy(fixture.join("app/server.py"), root.join("app/server.py")).unwrap();
    std::fs::copy(
        fixture.join("inventory/inventory.py"),
        root.join("inventory/inventory.py"),
    )
    .unwrap();
    std::fs::write(
        root.join("inventory/Dockerfile"),
        format!("FROM {dockerfile_from}\nCOPY inventory.py /app/inventory.py\n"),
    )
    .unwrap();
    let lab = std::fs::read_to_string(fixture.join("lab.yaml"))
        .unwrap()
        .replace("id: services", "id: services-images")
        .replace(
            "  image:\n    offline:\n      host: [/usr/bin/python3.11, /usr/lib/python3.11]\n      links: {/usr/bin/python3: python3.11}\n",
            &format!("  image: {{registry: \"{app_image}\"}}\n"),
        )
        .replace(
            "    files: [inventory.py]\n",
            "    files: [inventory.py]\n    image: {dockerfile: Dockerfile}\n",
        );
    assert!(
        lab.contains("registry:") && lab.contains("dockerfile:"),
        "{lab}"
    );
    std::fs::write(root.join("lab.yaml"), lab).unwrap();
    std::fs::copy(fixture.join("part.yaml"), root.join("part.yaml")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_and_dockerfile_images_build_offline_from_an_image_the_engine_has() {
    use lab_runner::env::docker::image::{self, ImageInput, Recipe};
    if !docker_or_skip("registry_and_dockerfile_images_build_offline_from_an_image_the_engine_has")
    {
        return;
    }
    let _docker = docker_shared();
    // An image the engine has without any registry: the offline Python image, tagged as if pulled.
    let client = lab_runner::env::docker::connect::connect().await.unwrap();
    let base = image::ensure(
        &client,
        &ImageInput {
            repository: "lab-runner-test/python-base",
            dir: None,
            files: &[],
            recipe: &Recipe::Offline(lab_runner::lab::OfflineImage {
                host: vec!["/usr/bin/python3.11".into(), "/usr/lib/python3.11".into()],
                exclude: Vec::new(),
                links: [("/usr/bin/python3".to_string(), "python3.11".to_string())].into(),
            }),
        },
        &|_| {},
    )
    .await
    .expect("the offline Python image");
    let tagged = std::process::Command::new("docker")
        .args(["tag", &base.reference, LOCAL_BASE])
        .output()
        .unwrap();
    assert!(tagged.status.success(), "{}", text(&tagged));

    let lab = registry_lab(LOCAL_BASE, LOCAL_BASE);
    let lint = lab_runner().arg("lint").arg(lab.path()).output().unwrap();
    assert!(lint.status.success(), "{}", text(&lint));
    let out = verify(lab.path(), &["--backend", "docker", "--verbose"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("2 passed, 0 failed"), "{}", text(&out));
    // Present, so used as it is: never pulled.
    assert!(!stdout.contains("pulling"), "{}", text(&out));
    assert!(
        stdout.contains(&format!("FROM {LOCAL_BASE} with the files"))
            || stdout.contains(
                "(FROM lab-runner-test/python:3.11-offline with the files; content unchanged)"
            ),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("service inventory: built lab-runner/inventory:dockerfile-")
            || stdout.contains("service inventory: reusing lab-runner/inventory:dockerfile-"),
        "{}",
        text(&out)
    );
    let label = format!("io.lab-runner.session={}", session_of(&stdout));
    assert!(
        docker_ids("container", &label).is_empty(),
        "containers left"
    );
}

#[test]
fn a_registry_image_that_cannot_be_pulled_is_an_error_that_names_the_alternatives() {
    if !docker_or_skip(
        "a_registry_image_that_cannot_be_pulled_is_an_error_that_names_the_alternatives",
    ) {
        return;
    }
    let _docker = docker_shared();
    let missing = "lab-runner-test.invalid/no-such-image:none";
    let lab = registry_lab(missing, "scratch");
    let started = std::time::Instant::now();
    let out = verify(lab.path(), &["--backend", "docker"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains(&format!("the image {missing}")), "{all}");
    assert!(all.contains("could not be pulled"), "{all}");
    assert!(
        all.contains("`image: offline:`") && all.contains("`image: dockerfile:`"),
        "{all}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_environment_with_a_service_is_found_and_removed_by_its_labels() {
    use lab_runner::env::docker::cleanup::{Scope, remove_labelled};
    if !docker_or_skip("a_kept_environment_with_a_service_is_found_and_removed_by_its_labels") {
        return;
    }
    let _docker = docker_shared();
    let out = verify(
        &fixture("verify/services"),
        &["--backend", "docker", "--keep"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let session = session_of(&String::from_utf8_lossy(&out.stdout));
    let label = format!("io.lab-runner.session={session}");
    // The app's container and the service's, both labelled with the session (the service's with
    // its name too), and the environment's network.
    let containers = docker_ids("container", &label);
    assert_eq!(containers.len(), 2, "{}", text(&out));
    assert_eq!(
        docker_ids("container", "io.lab-runner.service=inventory")
            .iter()
            .filter(|id| containers.contains(id))
            .count(),
        1
    );
    assert_eq!(docker_ids("network", &label).len(), 1);
    // What `lab-runner cleanup` does, scoped to this test's session (other runs share the engine).
    let client = lab_runner::env::docker::connect::connect().await.unwrap();
    let removed = remove_labelled(
        &client,
        &Scope {
            session: Some(session.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(removed.containers.len(), 2, "{removed:?}");
    assert!(
        removed
            .containers
            .contains(&format!("lab-runner-{session}-part1-inventory")),
        "{removed:?}"
    );
    assert_eq!(
        removed.networks,
        vec![format!("lab-runner-{session}-part1")]
    );
    assert!(docker_ids("container", &label).is_empty());
    assert!(docker_ids("network", &label).is_empty());
}

#[test]
fn doctor_plans_every_image_of_the_lab_and_names_the_parts_that_need_docker() {
    // Without Docker: each image is judged by whether it can be made from the host's files.
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--lab"])
        .arg(fixture("verify/services"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |check: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(check))
            .unwrap_or_else(|| panic!("no `{check}` line:\n{}", text(&out)))
            .to_string()
    };
    let app = line("image");
    assert!(
        app.contains("lab-runner/app:offline-") && app.contains("can be built offline from"),
        "{app}"
    );
    let inventory = stdout
        .lines()
        .find(|l| l.contains("image inventory"))
        .unwrap_or_else(|| panic!("no `image inventory` line:\n{}", text(&out)));
    assert!(
        inventory.contains("lab-runner/inventory:offline-") && inventory.contains("host files"),
        "{inventory}"
    );
    assert!(
        stdout.contains("part1 needs Docker: its environment runs services inventory"),
        "{}",
        text(&out)
    );
    // The app is Python: no node line.
    assert!(
        !stdout.lines().any(|l| l.contains(" node ")),
        "{}",
        text(&out)
    );
}
