//! `lab-runner pull`: a heap snapshot written by the app in a real lab container, copied out through
//! the Docker archive API — never over an existing file without --force.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lab_runner::env::docker::DockerEnv;
use lab_runner::env::docker::image::ImageChoice;
use lab_runner::env::{EnvSpec, Environment};
use lab_runner::lab::InspectorMode;
use lab_runner::util::random;
use support::{docker_or_skip, docker_shared, lab_runner, repo_root, text};

/// Removes the container and network called `0` when dropped (also when an assertion fails).
struct Remove(String);
impl Drop for Remove {
    fn drop(&mut self) {
        for args in [["rm", "-f"], ["network", "rm"]] {
            let _ = std::process::Command::new("docker")
                .args(args)
                .arg(&self.0)
                .output();
        }
    }
}

async fn pull(args: Vec<String>, cwd: &Path) -> Output {
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        lab_runner()
            .arg("pull")
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heap_snapshot_is_pulled_out_of_the_lab_container() {
    if !docker_or_skip("a_heap_snapshot_is_pulled_out_of_the_lab_container") {
        return;
    }
    let _docker = docker_shared();
    let token = random::token();
    let spec = EnvSpec {
        lab_id: "tests".into(),
        part_id: "pull".into(),
        session_id: random::session_id(),
        app_dir: repo_root().join("lab-app"),
        run: lab_runner::lab::AppRun::Node("src/server.js".into()),
        app_image: None,
        app_files: vec!["package.json".into(), "src".into()],
        app_port: 3001,
        health_path: "/api/health".into(),
        env: BTreeMap::from([
            ("NODE_ENV".to_string(), "development".to_string()),
            ("LAB_ENABLE".to_string(), "true".to_string()),
            ("LAB_TOKEN".to_string(), token.clone()),
        ]),
        inspector: InspectorMode::None,
        memory_mb: 512,
        cpus: None,
        fixed_app_port: None,
        services: Vec::new(),
    };
    let mut env = DockerEnv::start(spec, &ImageChoice::HostNode, &|_| {})
        .await
        .expect("the lab environment starts");
    let container = env.facts().name;
    let _remove = Remove(container.clone());
    lab_runner::env::wait_healthy(&env, "/api/health", Duration::from_secs(30))
        .await
        .expect("the app becomes healthy");

    // The app writes a snapshot inside the container and says where.
    lab_runner::util::crypto::ensure_provider();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "http://{}/api/lab/heap-snapshot",
            env.endpoints().app
        ))
        .header("x-lab-token", &token)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("POST /api/lab/heap-snapshot")
        .error_for_status()
        .expect("the snapshot is written")
        .json()
        .await
        .expect("a JSON answer");
    let inside = answer["path"]
        .as_str()
        .expect("the answer names the file")
        .to_string();
    let bytes = answer["bytes"].as_u64().expect("the answer gives its size");
    let file_name = Path::new(&inside)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("snap.heapsnapshot");
    let out = pull(
        vec![
            inside.clone(),
            dest.display().to_string(),
            "--container".into(),
            container.clone(),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!("copied {inside} from the container {container}")),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("next: lab-runner analyze snap.heapsnapshot"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), bytes);
    let snapshot: serde_json::Value =
        serde_json::from_reader(std::io::BufReader::new(std::fs::File::open(&dest).unwrap()))
            .expect("the pulled snapshot is JSON");
    assert!(
        snapshot["snapshot"]["meta"].is_object(),
        "no snapshot.meta in the pulled file"
    );

    // An existing file is kept unless --force.
    std::fs::write(&dest, "keep me").unwrap();
    let args = vec![
        inside.clone(),
        dest.display().to_string(),
        "--container".into(),
        container.clone(),
    ];
    let out = pull(args.clone(), dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("already exists; pass --force to overwrite it"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "keep me");
    let out = pull([args, vec!["--force".into()]].concat(), dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), bytes);

    // A bare file name is looked for in the container's artifact folder; a folder DEST keeps it.
    let folder = dir.path().join("captures");
    std::fs::create_dir(&folder).unwrap();
    let out = pull(
        vec![
            file_name.clone(),
            "captures".into(),
            "--container".into(),
            container.clone(),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(folder.join(&file_name)).unwrap().len(),
        bytes
    );

    // A file that is not there, and a container that is not there, say so.
    let out = pull(
        vec![
            "/tmp/no-such.heapsnapshot".into(),
            "--container".into(),
            container.clone(),
        ],
        dir.path(),
    )
    .await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "there is no file /tmp/no-such.heapsnapshot in the container {container}"
        )),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("no-such.heapsnapshot").exists());
    let out = pull(
        vec![
            inside.clone(),
            "--container".into(),
            "lab-runner-no-such-container".into(),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("there is no container `lab-runner-no-such-container`"),
        "{}",
        text(&out)
    );

    env.teardown().await.expect("teardown");
}

#[test]
fn unreachable_docker_is_exit_3() {
    let out = lab_runner()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["pull", "/tmp/x.heapsnapshot"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn help_shows_the_ecs_way_beside_it() {
    let out = lab_runner().args(["pull", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:\n  lab-runner pull /tmp/heap-"),
        "{help}"
    );
    assert!(
        help.contains("aws ecs execute-command --cluster C --task T --container app --interactive"),
        "{help}"
    );
    assert!(
        help.contains("aws s3 cp /tmp/heap-....heapsnapshot s3://bucket/"),
        "{help}"
    );
    assert!(
        help.contains("aws s3 cp s3://bucket/heap-....heapsnapshot ."),
        "{help}"
    );
}
