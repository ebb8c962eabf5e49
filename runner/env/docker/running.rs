//! The runner's containers that are running now (labelled [`labels::MANAGED`]), and choosing the one a
//! command acts on when the user names none (`pull`, `tunnel`).

use anyhow::{Result, bail};

use super::client::DockerClient;
use super::labels;

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

/// Every running app container labelled `io.lab-runner.managed=true` (not the lab services', nor
/// the participants' terminals), sorted by name.
pub async fn lab_containers(docker: &DockerClient) -> Result<Vec<LabContainer>> {
    let filter = labels::filter(&[(labels::MANAGED, "true")]);
    // Without `all`, only running containers are listed.
    let containers = docker.list_containers(false, &filter).await?;
    let mut out: Vec<LabContainer> = containers
        .into_iter()
        .filter(|c| {
            !c.labels.as_ref().is_some_and(|l| {
                l.contains_key(labels::SERVICE) || l.contains_key(labels::TERMINAL)
            })
        })
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

/// Fails, saying why, unless the container `name` exists and is running (any container, not only
/// the runner's: `--container NAME`).
pub async fn require_running(docker: &DockerClient, name: &str) -> Result<()> {
    let inspect = docker.inspect_container(name).await?;
    if inspect.state.and_then(|s| s.running) != Some(true) {
        bail!("the container {name} is not running (`docker start {name}`, or name another)");
    }
    Ok(())
}

/// Where the app in `container` writes its captures (`LAB_ARTIFACT_DIR`, else [`super::ARTIFACT_DIR`]).
/// `Ok(None)` when there is no such container.
pub async fn artifact_dir(docker: &DockerClient, container: &str) -> Result<Option<String>> {
    let inspect = match docker.inspect_container(container).await {
        Ok(inspect) => inspect,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
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

/// Which candidates a command would rather have (`tunnel`: those whose part opens the inspector
/// on SIGUSR1), said for people as "that {what}".
pub struct Preference<'a> {
    pub what: &'a str,
    pub holds: &'a dyn Fn(&LabContainer) -> bool,
}

/// The container the user means when naming none: the only preferred candidate, else the only
/// candidate; or a message for people saying why there is none and how to pick one.
pub fn the_one(
    candidates: Vec<LabContainer>,
    preference: Option<&Preference<'_>>,
) -> Result<LabContainer, String> {
    let list = |cs: &[&LabContainer]| {
        cs.iter()
            .map(|c| match preference {
                Some(p) if (p.holds)(c) => format!("\n  {c} — {}", p.what),
                _ => format!("\n  {c}"),
            })
            .collect::<String>()
    };
    if candidates.is_empty() {
        return Err(format!(
            "no lab container is running (none labelled {}=true). Start the part you need and keep \
             it running (`lab-runner start PART`, or `lab-runner verify PART --keep`), or name any \
             container with --container NAME.",
            labels::MANAGED
        ));
    }
    if let Some(p) = preference {
        let preferred: Vec<&LabContainer> = candidates.iter().filter(|c| (p.holds)(c)).collect();
        match preferred.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                return Err(format!(
                    "{} lab containers are running that {}; say which one with --container NAME:{}",
                    many.len(),
                    p.what,
                    list(many)
                ));
            }
        }
    }
    match candidates.len() {
        1 => Ok(candidates.into_iter().next().expect("one candidate")),
        n => Err(format!(
            "{n} lab containers are running{}; say which one with --container NAME:{}",
            match preference {
                Some(p) => format!(", and none is known to {}", p.what),
                None => String::new(),
            },
            list(&candidates.iter().collect::<Vec<_>>())
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
        assert_eq!(the_one(vec![c("a")], None).unwrap().name, "a");
    }

    #[test]
    fn none_says_how_to_start_one_or_name_one() {
        let e = the_one(vec![], None).unwrap_err();
        assert!(e.contains("no lab container is running"), "{e}");
        assert!(
            e.contains("--keep") && e.contains("--container NAME"),
            "{e}"
        );
    }

    #[test]
    fn several_are_listed_with_how_to_pick() {
        let e = the_one(vec![c("lab-runner-1-part1"), c("lab-runner-2-part2")], None).unwrap_err();
        assert!(e.starts_with("2 lab containers are running"), "{e}");
        assert!(e.contains("--container NAME"), "{e}");
        assert!(
            e.contains("  lab-runner-1-part1  (lab node-profiling, part2, session 1a2b3c4d"),
            "{e}"
        );
        assert!(e.contains("  lab-runner-2-part2"), "{e}");
    }

    #[test]
    fn the_one_preferred_wins_and_several_preferred_are_listed() {
        let on_signal = |c: &LabContainer| c.name.ends_with("part3");
        let p = Preference {
            what: "open their inspector on SIGUSR1",
            holds: &on_signal,
        };
        let cs = vec![c("lab-runner-1-part1"), c("lab-runner-1-part3")];
        assert_eq!(the_one(cs, Some(&p)).unwrap().name, "lab-runner-1-part3");
        let two = vec![c("a-part3"), c("b-part3")];
        let e = the_one(two, Some(&p)).unwrap_err();
        assert!(
            e.starts_with("2 lab containers are running that open their inspector on SIGUSR1"),
            "{e}"
        );
        assert!(
            e.contains("\n  a-part3  (lab node-profiling, part2, session 1a2b3c4d, image lab-runner/lab-app:abc) — open their inspector on SIGUSR1"),
            "{e}"
        );
        let none_preferred = vec![c("a"), c("b")];
        let e = the_one(none_preferred, Some(&p)).unwrap_err();
        assert!(
            e.contains("none is known to open their inspector on SIGUSR1")
                && e.contains("--container NAME"),
            "{e}"
        );
        let one = vec![c("other")];
        assert_eq!(the_one(one, Some(&p)).unwrap().name, "other");
    }
}
