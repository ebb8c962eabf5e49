//! The runner's containers that are running now (labelled [`labels::MANAGED`]), and choosing the one a
//! command acts on when the user names none.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::labels;

/// Longest the listing may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// A running container the runner created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabContainer {
    pub name: String,
    pub lab: String,
    pub part: String,
    pub session: String,
    pub image: String,
}

impl std::fmt::Display for LabContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  (lab {}, {}, session {}, image {})",
            self.name, self.lab, self.part, self.session, self.image
        )
    }
}

/// Every running container labelled `io.lab-runner.managed=true`, sorted by name.
pub async fn lab_containers(docker: &Docker) -> Result<Vec<LabContainer>> {
    let filter = labels::filter(&[(labels::MANAGED, "true")]);
    let listing = docker.list_containers(Some(
        ListContainersOptionsBuilder::default()
            .filters(&filter)
            .build(),
    ));
    let containers = match tokio::time::timeout(LIST_TIMEOUT, listing).await {
        Ok(result) => result.context("Failed to list the running lab containers")?,
        Err(_) => bail!(
            "Failed to list the running lab containers: the Docker daemon did not answer within {} s",
            LIST_TIMEOUT.as_secs()
        ),
    };
    let mut out: Vec<LabContainer> = containers
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_else(|| "?".into());
            LabContainer {
                name: c
                    .names
                    .and_then(|n| n.first().cloned())
                    .or(c.id)
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                lab: label(labels::LAB),
                part: label(labels::PART),
                session: label(labels::SESSION),
                image: c.image.unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Where the app in `container` writes its captures (`LAB_ARTIFACT_DIR`, else [`super::ARTIFACT_DIR`]).
/// `Ok(None)` when there is no such container.
pub async fn artifact_dir(docker: &Docker, container: &str) -> Result<Option<String>> {
    let inspect = match tokio::time::timeout(
        LIST_TIMEOUT,
        docker.inspect_container(container, None),
    )
    .await
    {
        Ok(Ok(inspect)) => inspect,
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })) => return Ok(None),
        Ok(Err(e)) => {
            return Err(anyhow::Error::new(e)
                .context(format!("Failed to inspect the container {container}")));
        }
        Err(_) => bail!(
            "Failed to inspect the container {container}: the Docker daemon did not answer within {} s",
            LIST_TIMEOUT.as_secs()
        ),
    };
    let dir = inspect
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .iter()
        .find_map(|kv| kv.strip_prefix("LAB_ARTIFACT_DIR=").map(str::to_string))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| super::ARTIFACT_DIR.to_string());
    Ok(Some(dir))
}

/// The only candidate, or a message for people saying why there is none and how to pick one.
pub fn the_only_one(candidates: Vec<LabContainer>) -> Result<LabContainer, String> {
    match candidates.len() {
        0 => Err(format!(
            "no lab container is running (none labelled {}=true). Start one and keep it running \
             (`lab-runner verify part2 --keep`), or name any container with --container NAME.",
            labels::MANAGED
        )),
        1 => Ok(candidates.into_iter().next().expect("one candidate")),
        n => Err(format!(
            "{n} lab containers are running; say which one with --container NAME:\n{}",
            candidates
                .iter()
                .map(|c| format!("  {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> LabContainer {
        LabContainer {
            name: name.into(),
            lab: "node-profiling".into(),
            part: "part2".into(),
            session: "1a2b3c4d".into(),
            image: "lab-runner/lab-app:abc".into(),
        }
    }

    #[test]
    fn one_candidate_is_chosen() {
        assert_eq!(the_only_one(vec![c("a")]).unwrap().name, "a");
    }

    #[test]
    fn none_says_how_to_start_one_or_name_one() {
        let e = the_only_one(vec![]).unwrap_err();
        assert!(e.contains("no lab container is running"), "{e}");
        assert!(
            e.contains("--keep") && e.contains("--container NAME"),
            "{e}"
        );
    }

    #[test]
    fn several_are_listed_with_how_to_pick() {
        let e = the_only_one(vec![c("lab-runner-1-part1"), c("lab-runner-2-part2")]).unwrap_err();
        assert!(e.starts_with("2 lab containers are running"), "{e}");
        assert!(e.contains("--container NAME"), "{e}");
        assert!(
            e.contains("  lab-runner-1-part1  (lab node-profiling, part2, session 1a2b3c4d"),
            "{e}"
        );
        assert!(e.contains("  lab-runner-2-part2"), "{e}");
    }
}
