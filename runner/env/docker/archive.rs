//! Copying a file out of a container through the Docker archive API, streamed to disk.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::query_parameters::DownloadFromContainerOptionsBuilder;
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Longest a copy-out may take (snapshots can be hundreds of MB).
const COPY_TIMEOUT: Duration = Duration::from_secs(120);

/// Copies the regular file at `path` in `container` to `dest`; returns the bytes written.
/// The tar stream from the engine is read as it arrives and written straight to `dest`.
pub async fn copy_file_out(
    docker: &Docker,
    container: &str,
    path: &str,
    dest: &Path,
) -> Result<u64> {
    let stream = docker
        .download_from_container(
            container,
            Some(
                DownloadFromContainerOptionsBuilder::default()
                    .path(path)
                    .build(),
            ),
        )
        .map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let dest_owned = dest.to_path_buf();
    let what = format!(
        "copy {path} out of the container {container} to {}",
        dest.display()
    );
    let task = tokio::task::spawn_blocking(move || extract_single_file(reader, &dest_owned));
    match tokio::time::timeout(COPY_TIMEOUT, task).await {
        Ok(joined) => joined
            .context("the copy task failed")?
            .map_err(|e| explain(e, path, container))
            .with_context(|| format!("Failed to {what}")),
        Err(_) => bail!(
            "Failed to {what}: not finished within {} s",
            COPY_TIMEOUT.as_secs()
        ),
    }
}

fn explain(e: anyhow::Error, path: &str, container: &str) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("404") || text.contains("No such") || text.contains("Could not find") {
        anyhow!("there is no file {path} in the container {container}")
    } else {
        e
    }
}

/// Reads a tar holding one regular file and writes that file to `dest`.
fn extract_single_file(reader: impl Read, dest: &Path) -> Result<u64> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive
        .entries()
        .context("the archive from Docker is not a tar stream")?;
    let mut entry = entries
        .next()
        .ok_or_else(|| anyhow!("the archive from Docker is empty"))?
        .context("the archive from Docker could not be read")?;
    if entry.header().entry_type() != tar::EntryType::Regular {
        bail!(
            "{} is not a regular file (it is a {:?})",
            entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            entry.header().entry_type()
        );
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("Failed to create {}", parent.display()))?;
    }
    let partial = dest.with_extension("partial");
    let mut out = std::fs::File::create(&partial)
        .with_context(|| format!("Failed to create {}", partial.display()))?;
    let written = std::io::copy(&mut entry, &mut out).context("the copy was cut off")?;
    std::fs::rename(&partial, dest)
        .with_context(|| format!("Failed to move the copy to {}", dest.display()))?;
    Ok(written)
}
