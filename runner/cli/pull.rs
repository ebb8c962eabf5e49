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
PATH is the file's path inside the container, as the lab app reports it (the shipped lab's \
capture routes answer with the `path` they wrote). A relative PATH is taken in the container's artifact folder ($LAB_ARTIFACT_DIR, \
else /tmp). DEST is a file or an existing folder; an existing file is never overwritten without --force.

Examples:
  lab-runner pull /tmp/heap-2025-01-31T12-00-00-000Z-1.heapsnapshot
  lab-runner pull cpu-2025-01-31T12-00-00-000Z-1.cpuprofile profiles/
  lab-runner pull /tmp/heap-....heapsnapshot before.heapsnapshot --force
  lab-runner pull --newest '*.cpuprofile' cpu.cpuprofile   # the latest profile
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
    #[arg(value_name = "PATH", required_unless_present = "newest")]
    pub path: Option<String>,
    /// Where to put it: a file, or an existing folder [default: the file's name, here]
    #[arg(value_name = "DEST")]
    pub dest: Option<PathBuf>,
    /// Instead of PATH: the most recent file in the artifact folder whose name matches PATTERN
    /// (`*` and `?` wildcards; quote it): `--newest '*.cpuprofile' cpu.cpuprofile`
    #[arg(long, value_name = "PATTERN")]
    pub newest: Option<String>,
    /// The container to copy from [default: the one running container labelled
    /// io.lab-runner.managed=true]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Overwrite DEST when it exists
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: PullArgs) -> Result<u8> {
    // The running lab session this shell belongs to (or the only one) says where its app is.
    let session = match &args.container {
        Some(_) => None,
        None => match crate::session::control::find_session(None).await {
            Ok(socket) => crate::session::control::session_info(&socket).ok(),
            Err(_) => None,
        },
    };
    if let Some(info) = session.as_ref().filter(|i| i.backend == "process") {
        return pull_local(&args, &info.artifact_dir);
    }
    let docker = connect::connect().await?;
    let container = match (&args.container, &session) {
        (Some(name), _) => name.clone(),
        (None, Some(info)) if !info.container.is_empty() => info.container.clone(),
        (None, _) => {
            let candidates = running::lab_containers(&docker).await?;
            running::the_one(candidates, None).map_err(UsageError)?.name
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
    let listing = match &args.newest {
        Some(_) => Some(archive::list_folder(&docker, &container, &artifact_dir).await?),
        None => None,
    };
    let where_ = format!("{artifact_dir} of the container {container}");
    let (inside, dest) = choose(&args, &artifact_dir, &where_, listing)?;
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

/// `pull` for an app running as a local process: its artifact folder is on this machine.
fn pull_local(args: &PullArgs, artifact_dir: &str) -> Result<u8> {
    let listing = match &args.newest {
        Some(_) => Some(local_listing(artifact_dir)?),
        None => None,
    };
    let (inside, dest) = choose(args, artifact_dir, artifact_dir, listing)?;
    let bytes = std::fs::copy(&inside, &dest)
        .with_context(|| format!("Failed to copy {inside} to {}", dest.display()))?;
    println!(
        "copied {inside} (the app runs as a local process) to {} ({})",
        dest.display(),
        units::bytes(bytes as f64)
    );
    if is_capture(&dest) {
        println!("next: lab-runner analyze {}", shell_word(&dest));
    }
    Ok(exit::SUCCESS)
}

/// The regular files of the folder `dir` on this machine, with their modification times.
fn local_listing(dir: &str) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("Failed to list the app's artifact folder {dir}"))?
        .flatten()
    {
        let meta = entry.metadata()?;
        if meta.is_file() {
            let modified = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            files.push((entry.file_name().to_string_lossy().into_owned(), modified));
        }
    }
    Ok(files)
}

/// The file to copy (as the app sees it) and where to: PATH, or with `--newest` the latest file of
/// `listing` matching the pattern (then a single positional is the destination). `where_` names
/// the folder in messages. An existing destination needs `--force`.
fn choose(
    args: &PullArgs,
    artifact_dir: &str,
    where_: &str,
    listing: Option<Vec<(String, u64)>>,
) -> Result<(String, PathBuf)> {
    let (path, dest_arg) = match (&args.newest, &args.path, listing) {
        (Some(_), Some(_), _) if args.dest.is_some() => {
            return Err(UsageError(
                "with --newest PATTERN, give only where to put the file (DEST), not a PATH".into(),
            )
            .into());
        }
        (Some(pattern), first, Some(files)) => {
            let newest = newest_matching(&files, pattern).ok_or_else(|| {
                UsageError(format!(
                    "no file in {where_} matches `{pattern}`{}",
                    if files.is_empty() {
                        " (the folder is empty: nothing was captured yet)".to_string()
                    } else {
                        format!(
                            "; it holds: {}",
                            files
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ))
            })?;
            let dest = args
                .dest
                .clone()
                .or_else(|| first.as_ref().map(PathBuf::from));
            (newest, dest)
        }
        (None, Some(path), _) => (path.clone(), args.dest.clone()),
        _ => {
            return Err(UsageError(
                "name the file to copy (PATH), or pass --newest PATTERN".into(),
            )
            .into());
        }
    };
    let inside = in_container(&path, artifact_dir);
    let dest = destination(&inside, dest_arg.as_deref())?;
    if dest.exists() && !args.force {
        return Err(UsageError(format!(
            "{} already exists; pass --force to overwrite it, or give another DEST",
            dest.display()
        ))
        .into());
    }
    Ok((inside, dest))
}

/// The name of the most recently modified file matching `pattern` (ties: the greater name, as
/// the lab's names carry a timestamp).
fn newest_matching(files: &[(String, u64)], pattern: &str) -> Option<String> {
    files
        .iter()
        .filter(|(name, _)| wildcard_match(pattern.as_bytes(), name.as_bytes()))
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
        .map(|(name, _)| name.clone())
}

/// `*` matches any run of characters, `?` one character; everything else itself.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard_match(&pattern[1..], text)
                || (!text.is_empty() && wildcard_match(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard_match(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard_match(&pattern[1..], &text[1..]),
        _ => false,
    }
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
    crate::util::shell_lines::quote(&shown.display().to_string())
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
    fn newest_picks_the_latest_match() {
        let files = vec![
            ("cpu-1.cpuprofile".to_string(), 10),
            ("cpu-2.cpuprofile".to_string(), 20),
            ("heap-3.heapsnapshot".to_string(), 30),
        ];
        assert_eq!(
            newest_matching(&files, "*.cpuprofile").as_deref(),
            Some("cpu-2.cpuprofile")
        );
        assert_eq!(
            newest_matching(&files, "*").as_deref(),
            Some("heap-3.heapsnapshot")
        );
        assert_eq!(newest_matching(&files, "*.json"), None);
        assert!(wildcard_match(b"cpu-?.cpu*", b"cpu-1.cpuprofile"));
        assert!(!wildcard_match(b"cpu-?.cpu", b"cpu-12.cpu"));
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
