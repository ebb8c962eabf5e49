//! Issue 3's figures: environment start-up, the offline image build (cold and unchanged), artifact
//! copy-out against `docker cp`, and `verify part2` wall time against the waits its steps ask for.
//!
//! Run with `cargo bench --bench environment` (needs Docker; removes and rebuilds the lab image).
//! Figures go to docs/PERFORMANCE.md by hand, with the date and machine.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lab_runner::env::docker::image::{self, ImageChoice};
use lab_runner::env::docker::{DockerEnv, connect};
use lab_runner::env::{EnvSpec, Environment, wait_healthy};
use lab_runner::lab::{self, Action, InspectorMode};

/// The shipped lab app's entry script (labs/node-profiling/lab.yaml, app.entry).
const ENTRY: &str = "src/server.js";

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec(session: &str) -> EnvSpec {
    EnvSpec {
        lab_id: "bench".into(),
        part_id: "bench".into(),
        session_id: session.into(),
        app_dir: repo().join("lab-app"),
        run: lab_runner::lab::AppRun::Node("src/server.js".into()),
        app_image: None,
        app_files: vec!["package.json".into(), "src".into()],
        app_port: 3001,
        health_path: "/api/health".into(),
        env: Default::default(),
        inspector: InspectorMode::None,
        memory_mb: 512,
        cpus: None,
        fixed_app_port: None,
        services: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let docker = connect::connect().await?;
    let quiet = |_: &str| {};
    let app_dir = repo().join("lab-app");
    let files = ["package.json".to_string(), "src".to_string()];
    let repository = image::repository(&app_dir);
    let recipe = image::Recipe::HostNode {
        entry: Some(ENTRY.to_string()),
    };
    let input = image::ImageInput {
        repository: &repository,
        dir: Some(&app_dir),
        files: &files,
        recipe: &recipe,
    };

    // Image: cold builds (both tags removed first), then the unchanged case.
    let mut cold = Vec::new();
    for _ in 0..3 {
        let current = image::ensure(&docker, &input, &quiet).await?;
        for tag in [current.reference.as_str(), image::STABLE_TAG] {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
        let t = Instant::now();
        let built = image::ensure(&docker, &input, &quiet).await?;
        assert!(built.built, "the image should have been rebuilt");
        cold.push(t.elapsed());
    }
    let mut unchanged = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let found = image::ensure(&docker, &input, &quiet).await?;
        assert!(!found.built);
        unchanged.push(t.elapsed());
    }
    println!(
        "image build, cold (median of 3):        {}",
        ms(median(cold))
    );
    println!(
        "image, unchanged (median of 20):        {}",
        ms(median(unchanged))
    );

    // Start-up: a whole environment (network + container + healthy), and a recreate.
    let mut starts = Vec::new();
    let mut recreates = Vec::new();
    let mut env_for_copy = None;
    for i in 0..20 {
        let t = Instant::now();
        let mut env =
            DockerEnv::start(spec(&format!("bench{i}")), &ImageChoice::HostNode, &quiet).await?;
        wait_healthy(&env, "/api/health", Duration::from_secs(30)).await?;
        starts.push(t.elapsed());
        let t = Instant::now();
        let vars = env.current_env().clone();
        env.recreate(vars).await?;
        wait_healthy(&env, "/api/health", Duration::from_secs(30)).await?;
        recreates.push(t.elapsed());
        if i == 0 {
            env_for_copy = Some(env);
        } else {
            env.teardown().await?;
        }
    }
    let start_median = median(starts.clone());
    let recreate_median = median(recreates.clone());
    println!(
        "environment start → healthy (median of 20): {}  (network + container + first 200)",
        ms(median(starts))
    );
    println!(
        "recreate → healthy (median of 20):      {}  (remove + create + start + first 200)",
        ms(median(recreates.clone()))
    );
    // What the engine itself spends removing a running container of this image, so the recreate
    // can be read as remove + (create → healthy).
    let mut removes = Vec::new();
    for i in 0..10 {
        let name = format!("lab-runner-bench-remove-{i}");
        let run = Command::new("docker")
            .args([
                "run",
                "-d",
                "--init",
                "--label",
                "io.lab-runner.managed=true",
                "--name",
                &name,
                image::STABLE_TAG,
            ])
            .output()?;
        anyhow::ensure!(
            run.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        docker.remove_container(&name).await?;
        removes.push(t.elapsed());
    }
    let remove = median(removes);
    println!(
        "  of which removing the old container (median of 10): {} → create → healthy ≈ {}",
        ms(remove),
        ms(median(recreates.clone()).saturating_sub(remove))
    );

    // Copy-out: a 50 MiB file, through the archive API and through `docker cp`.
    let mut env = env_for_copy.expect("first environment kept");
    let name = env.facts().name;
    let made = Command::new("docker")
        .args(["exec", "-e", "NODE_OPTIONS=", &name, "node", "-e"])
        .arg("require('fs').writeFileSync('/tmp/big', Buffer.alloc(50*1024*1024, 7))")
        .output()?;
    anyhow::ensure!(
        made.status.success(),
        "could not make the file: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = tempfile::tempdir()?;
    let (mut api, mut cp) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let t = Instant::now();
        env.copy_out("/tmp/big", &out.path().join(format!("api{i}")))
            .await?;
        api.push(t.elapsed());
        let t = Instant::now();
        let status = Command::new("docker")
            .args(["cp", &format!("{name}:/tmp/big")])
            .arg(out.path().join(format!("cp{i}")))
            .status()?;
        anyhow::ensure!(status.success());
        cp.push(t.elapsed());
    }
    let (api, cp) = (median(api), median(cp));
    println!(
        "copy-out 50 MiB: archive API {} vs docker cp {} → {:.2}× docker cp's speed",
        ms(api),
        ms(cp),
        cp.as_secs_f64() / api.as_secs_f64()
    );
    env.teardown().await?;

    // verify part2: wall time against the waits its steps ask for.
    let lab =
        lab::load(&repo().join("labs/node-profiling")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let part = lab.part("part2").expect("part2");
    let asked: Duration = part
        .file
        .steps
        .iter()
        .map(|s| asked_waits(&s.solve, &lab))
        .sum();
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_lab-runner"))
        .args(["verify", "part2", "--backend", "docker"])
        .status()?;
    let wall = t.elapsed();
    println!(
        "verify part2: {} wall, {} asked for by its steps → {:.2}× (passed: {})",
        ms(wall),
        ms(asked),
        wall.as_secs_f64() / asked.as_secs_f64(),
        status.success()
    );
    // The container operations the steps ask for take the engine's own time: the environment's
    // start, and each recreate (both measured above).
    let recreate_count: u32 = part
        .file
        .steps
        .iter()
        .map(|s| count_recreates(&s.solve))
        .sum();
    let engine_time = start_median + recreate_median * recreate_count;
    println!(
        "  with the engine's time for the environment start and the {recreate_count} recreates the steps ask for: {} → {:.2}×",
        ms(asked + engine_time),
        wall.as_secs_f64() / (asked + engine_time).as_secs_f64()
    );
    Ok(())
}

fn count_recreates(actions: &[Action]) -> u32 {
    actions
        .iter()
        .map(|a| match a {
            Action::Container(lab_runner::lab::ContainerAction::Recreate(_)) => 1,
            Action::Parallel(inner) | Action::Sequence(inner) => count_recreates(inner),
            _ => 0,
        })
        .sum()
}

/// The time a list of actions asks for by itself: jams, profiles and waits (parallel branches
/// overlap, sequences add up).
fn asked_waits(actions: &[Action], lab: &lab::Lab) -> Duration {
    actions.iter().map(|a| asked_wait(a, lab)).sum()
}

fn asked_wait(action: &Action, lab: &lab::Lab) -> Duration {
    let var = |q: &lab::Scalar| -> f64 {
        let text = q.to_string();
        let name = text.trim_matches(|c| c == '{' || c == '}' || c == ' ');
        lab.manifest
            .variables
            .get(name)
            .and_then(|v| v.as_f64())
            .or_else(|| text.parse().ok())
            .unwrap_or(0.0)
    };
    match action {
        Action::Wait(d) => d.get(),
        Action::Parallel(inner) => inner
            .iter()
            .map(|a| asked_wait(a, lab))
            .max()
            .unwrap_or_default(),
        Action::Sequence(inner) => asked_waits(inner, lab),
        Action::Http(h) if h.path.ends_with("event-loop-jam") => {
            Duration::from_secs_f64(h.query.get("ms").map(var).unwrap_or(2000.0) / 1000.0)
        }
        Action::Http(h) if h.path.ends_with("cpu-profile") => {
            Duration::from_secs_f64(h.query.get("seconds").map(var).unwrap_or(30.0))
        }
        _ => Duration::ZERO,
    }
}
