//! Finding and removing everything the runner created, by label — also what a killed runner left.

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveImageOptionsBuilder,
};

use super::labels;

/// What `cleanup` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub images: Vec<String>,
}

/// Which objects to remove.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this session's objects (None: every session's).
    pub session: Option<String>,
    /// Also remove the lab images (not only dangling ones left by re-tagging).
    pub images: bool,
}

/// Labelled containers (running or not), then labelled networks, then labelled images that are
/// dangling (or all of them with `scope.images`).
pub async fn remove_labelled(docker: &Docker, scope: &Scope) -> Result<Removed> {
    let mut pairs = vec![(labels::MANAGED, "true")];
    if let Some(session) = &scope.session {
        pairs.push((labels::SESSION, session));
    }
    let filter = labels::filter(&pairs);
    let mut removed = Removed::default();

    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .context("Failed to list the runner's containers")?;
    for c in containers {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| id.clone())
            .trim_start_matches('/')
            .to_string();
        docker
            .remove_container(&id, Some(super::force_remove()))
            .await
            .with_context(|| format!("Failed to remove the container {name}"))?;
        removed.containers.push(name);
    }

    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .context("Failed to list the runner's networks")?;
    for n in networks {
        let Some(name) = n.name else { continue };
        docker
            .remove_network(&name)
            .await
            .with_context(|| format!("Failed to remove the network {name}"))?;
        removed.networks.push(name);
    }

    if scope.session.is_none() {
        let mut image_filter = labels::filter(&[(labels::MANAGED, "true")]);
        if !scope.images {
            image_filter.insert("dangling".into(), vec!["true".into()]);
        }
        let images = docker
            .list_images(Some(
                ListImagesOptionsBuilder::default()
                    .filters(&image_filter)
                    .build(),
            ))
            .await
            .context("Failed to list the runner's images")?;
        for image in images {
            let name = image
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.clone());
            match docker
                .remove_image(
                    &image.id,
                    Some(RemoveImageOptionsBuilder::default().force(true).build()),
                    None,
                )
                .await
            {
                Ok(_) => removed.images.push(name),
                // Still used by a container of another tool, or already gone: leave it.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("Failed to remove the image {name}"));
                }
            }
        }
    }
    Ok(removed)
}
