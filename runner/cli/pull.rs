//! `lab-runner pull PATH [DEST]`: copy a capture (CPU profile, heap snapshot) out of the running lab
//! container through the Docker archive API.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::exit;
use super::run::UsageError;
use crate::env::docker::{archive, connect, running};
use crate::util::units;

const AFTER_HELP: &str = "\
PATH is the file's path inside the container, as the lab app reports it (`path` in the answer of \
POST /api/lab/heap-snapshot or /api/lab/cpu-profile, or lastHeapSnapshot / lastCpuProfile in \
/api/lab/status). A relative PATH is taken in the container's artifact folder ($LAB_ARTIFACT_DIR, \
else /tmp). DEST is a file or an existing folder; an existing file is never overwritten without --force.

Examples:
  lab-runner pull /tmp/heap-2025-01-31T12-00-00-000Z-1.heapsnapshot
  lab-runner pull cpu-2025-01-31T12-00-00-000Z-1.cpuprofile profiles/
  lab-runner pull /tmp/heap-....heapsnapshot before.heapsnapshot --force
  lab-runner pull /tmp/heap-....heapsnapshot --container lab-runner-1a2b3c4d-part2

The same on ECS: `aws ecs execute-command --command \"cat /tmp/x\"` goes through a terminal session \
and mangles binary data, so the usual way is an upload to S3 from inside the task, then a download:
  aws ecs execute-command --cluster C --task T --container app --interactive \\
    --command \"aws s3 cp /tmp/heap-....heapsnapshot s3://bucket/\"
  aws s3 cp s3://bucket/heap-....heapsnapshot .
(the task role needs s3:PutObject on the bucket, and the image the aws CLI).";

/// Copy a file (profile, snapshot) out of the running lab container
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct PullArgs {
    /// The file inside the container (relative: in its artifact folder)
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Where to put it: a file, or an existing folder [default: the file's name, here]
    #[arg(value_name = "DEST")]
    pub dest: Option<PathBuf>,
    /// The container to copy from [default: the one running container labelled
    /// io.lab-runner.managed=true]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Overwrite DEST when it exists
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: PullArgs) -> Result<u8> {
    let docker = connect::connect().await?;
    let container = match &args.container {
        Some(name) => name.clone(),
        None => {
            let candidates = running::lab_containers(&docker).await?;
            running::the_only_one(candidates).map_err(UsageError)?.name
        }
    };
    let Some(artifact_dir) = running::artifact_dir(&docker, &container).await? else {
        let running = running::lab_containers(&docker)
            .await
            .unwrap_or_default()
            .iter()
            .map(|c| format!("\n  {c}"))
            .collect::<String>();
        return Err(UsageError(format!(
            "there is no container `{container}`; running lab containers:{}",
            if running.is_empty() {
                " none".to_string()
            } else {
                running
            }
        ))
        .into());
    };
    let inside = in_container(&args.path, &artifact_dir);
    let dest = destination(&inside, args.dest.as_deref())?;
    if dest.exists() && !args.force {
        return Err(UsageError(format!(
            "{} already exists; pass --force to overwrite it, or give another DEST",
            dest.display()
        ))
        .into());
    }
    let bytes = archive::copy_file_out(&docker, &container, &inside, &dest).await?;
    println!(
        "copied {inside} from the container {container} to {} ({})",
        dest.display(),
        units::bytes(bytes as f64)
    );
    if is_capture(&dest) {
        println!("next: lab-runner analyze {}", shell_word(&dest));
    }
    Ok(exit::SUCCESS)
}

/// The path inside the container: `path` itself when absolute, else in `artifact_dir`.
fn in_container(path: &str, artifact_dir: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", artifact_dir.trim_end_matches('/'))
    }
}

/// Where the copy goes: `dest` (inside it when it is a folder), or the file's name here.
fn destination(inside: &str, dest: Option<&Path>) -> Result<PathBuf> {
    let name = Path::new(inside)
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| UsageError(format!("`{inside}` does not name a file")))?;
    Ok(match dest {
        Some(d) if d.is_dir() => d.join(name),
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()
            .context("Failed to read the current folder")?
            .join(name),
    })
}

fn is_capture(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("cpuprofile" | "heapsnapshot")
    )
}

/// The path as a person would type it after the command (relative when under the current folder).
fn shell_word(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    let text = shown.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:+=@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_in_the_artifact_folder() {
        assert_eq!(
            in_container("x.heapsnapshot", "/tmp"),
            "/tmp/x.heapsnapshot"
        );
        assert_eq!(
            in_container("x.heapsnapshot", "/data/"),
            "/data/x.heapsnapshot"
        );
        assert_eq!(in_container("/var/x", "/tmp"), "/var/x");
    }

    #[test]
    fn destination_is_the_file_name_inside_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            destination("/tmp/a.cpuprofile", Some(dir.path())).unwrap(),
            dir.path().join("a.cpuprofile")
        );
        assert_eq!(
            destination("/tmp/a.cpuprofile", Some(&dir.path().join("b.json"))).unwrap(),
            dir.path().join("b.json")
        );
        assert!(destination("/", None).is_err());
    }
}
