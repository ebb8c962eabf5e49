//! Copying a file out of a container through the Docker archive API, streamed to disk.
//!
//! The engine answers with a tar holding the one file. Its headers are read as the chunks arrive
//! and the file's bytes are written straight to the destination: no buffering of the whole file,
//! and no hop through a blocking reader (which cost a fifth of the time of a 50 MB copy).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::client::{DockerClient, DockerError};

/// Longest a copy-out may take (snapshots can be hundreds of MB).
const COPY_TIMEOUT: Duration = Duration::from_secs(120);
const BLOCK: usize = 512;

/// The regular files directly in the folder `dir` of `container`, with their modification times
/// (seconds since the epoch). The engine sends the folder as a tar, contents included: fine for an
/// artifact folder of profiles and snapshots, which this is for.
pub async fn list_folder(
    docker: &DockerClient,
    container: &str,
    dir: &str,
) -> Result<Vec<(String, u64)>> {
    let mut tar = Vec::new();
    docker
        .download(container, dir, COPY_TIMEOUT, |chunk| {
            tar.extend_from_slice(&chunk);
            std::future::ready(true)
        })
        .await
        .map_err(|e| explain(e, dir, container))
        .with_context(|| format!("Failed to list {dir} in the container {container}"))?;
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
    for entry in archive
        .entries()
        .context("the folder's tar is unreadable")?
    {
        let entry = entry.context("the folder's tar is unreadable")?;
        let header = entry.header();
        if header.entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().context("a name in the folder's tar")?;
        // Entries are `<folder name>/<file>`; only the folder's own files count.
        let mut parts = path.components();
        parts.next();
        let rest = parts.as_path();
        if rest.components().count() == 1 {
            files.push((
                rest.display().to_string(),
                header.mtime().unwrap_or_default(),
            ));
        }
    }
    Ok(files)
}

/// Copies the regular file at `path` in `container` to `dest`; returns the bytes written.
pub async fn copy_file_out(
    docker: &DockerClient,
    container: &str,
    path: &str,
    dest: &Path,
) -> Result<u64> {
    let what = format!(
        "copy {path} out of the container {container} to {}",
        dest.display()
    );
    // Receiving and writing overlap: chunks go to a thread that parses and writes them.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(256);
    let dest_owned = dest.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || {
        let mut tar = SingleFileTar::new(&dest_owned);
        while let Some(chunk) = receiver.blocking_recv() {
            tar.feed(&chunk)?;
        }
        tar.finish()
    });
    let streamed = docker
        .download(container, path, COPY_TIMEOUT, |chunk| {
            let sender = sender.clone();
            // `false` when the writer stopped on an error, which it returns below.
            async move { sender.send(chunk).await.is_ok() }
        })
        .await;
    drop(sender);
    let written = writer.await.context("the copy's writer failed");
    streamed
        .map_err(|e| explain(e, path, container))
        .with_context(|| format!("Failed to {what}"))?;
    written?.with_context(|| format!("Failed to {what}"))
}

/// A missing path is the usual mistake: say so plainly.
fn explain(e: DockerError, path: &str, container: &str) -> anyhow::Error {
    match &e {
        DockerError::NotFound { message, .. } if message.contains("No such container") => {
            anyhow!("there is no container {container}")
        }
        DockerError::NotFound { .. } => {
            anyhow!("there is no file {path} in the container {container}")
        }
        _ => anyhow::Error::new(e),
    }
}

/// Where the reader is in the tar stream.
enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Skipping an extension entry's data (PAX or GNU long-name records, with their padding).
    Skip(u64),
    /// Writing the file's bytes; then `padding` bytes follow.
    Data { left: u64, padding: u64 },
    /// The file has been written; the rest (padding, end blocks) is ignored.
    Done,
}

/// A tar stream of one regular file, written to `dest` as it arrives.
struct SingleFileTar<'a> {
    dest: &'a Path,
    partial: std::path::PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    header: Vec<u8>,
    state: State,
    written: u64,
}

impl<'a> SingleFileTar<'a> {
    fn new(dest: &'a Path) -> Self {
        SingleFileTar {
            dest,
            partial: dest.with_extension("partial"),
            out: None,
            header: Vec::with_capacity(BLOCK),
            state: State::Header,
            written: 0,
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        while !chunk.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Header => {
                    let take = (BLOCK - self.header.len()).min(chunk.len());
                    self.header.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.header.len() == BLOCK {
                        self.state = self.read_header()?;
                        self.header.clear();
                    }
                }
                State::Skip(left) => {
                    let take = (*left).min(chunk.len() as u64) as usize;
                    *left -= take as u64;
                    chunk = &chunk[take..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Data { left, padding } => {
                    let take = (*left).min(chunk.len() as u64) as usize;
                    let out = self
                        .out
                        .as_mut()
                        .expect("the file is open while its data arrives");
                    out.write_all(&chunk[..take])
                        .with_context(|| format!("Failed to write {}", self.partial.display()))?;
                    self.written += take as u64;
                    *left -= take as u64;
                    chunk = &chunk[take..];
                    if *left == 0 {
                        let _ = padding;
                        self.state = State::Done;
                    }
                }
            }
        }
        Ok(())
    }

    fn read_header(&mut self) -> Result<State> {
        if self.header.iter().all(|b| *b == 0) {
            bail!("the archive from Docker holds no file (it ends at once)");
        }
        let header = tar::Header::from_byte_slice(&self.header);
        header
            .cksum()
            .ok()
            .filter(|sum| *sum == checksum(&self.header))
            .ok_or_else(|| {
                anyhow!("the archive from Docker is not a tar stream (bad header checksum)")
            })?;
        let size = header
            .entry_size()
            .context("the tar header's size is unreadable")?;
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        match header.entry_type() {
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => Ok(if padded == 0 {
                State::Header
            } else {
                State::Skip(padded)
            }),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = self.dest.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("Failed to create {}", parent.display()))?;
                }
                // Chunks from the engine are small: gather them into big writes.
                self.out = Some(std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(&self.partial)
                        .with_context(|| format!("Failed to create {}", self.partial.display()))?,
                ));
                Ok(if size == 0 {
                    State::Done
                } else {
                    State::Data {
                        left: size,
                        padding: padded - size,
                    }
                })
            }
            other => bail!(
                "{} is not a regular file (it is a {other:?})",
                header
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        }
    }

    fn finish(self) -> Result<u64> {
        match self.state {
            State::Done => {
                if let Some(mut out) = self.out {
                    out.flush()
                        .with_context(|| format!("Failed to write {}", self.partial.display()))?;
                }
                std::fs::rename(&self.partial, self.dest).with_context(|| {
                    format!("Failed to move the copy to {}", self.dest.display())
                })?;
                Ok(self.written)
            }
            State::Data { left, .. } => {
                let _ = std::fs::remove_file(&self.partial);
                bail!("the copy was cut off: {left} bytes of the file did not arrive")
            }
            _ => bail!("the archive from Docker is empty"),
        }
    }
}

/// The tar header checksum: the bytes summed with the checksum field counted as spaces.
fn checksum(header: &[u8]) -> u32 {
    header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar like Docker's: a PAX record, then the file, then end blocks.
    fn archive(content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut pax = tar::Header::new_ustar();
        let record = b"30 mtime=1700000000.123456789\n";
        pax.set_size(record.len() as u64);
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_cksum();
        builder.append(&pax, &record[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut h, "heap.heapsnapshot", content)
            .unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn writes_the_file_whatever_the_chunk_boundaries() {
        let content: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = archive(&content);
        for chunk_size in [1, 7, 512, 513, 4096, bytes.len()] {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("out/heap.heapsnapshot");
            let mut tar = SingleFileTar::new(&dest);
            for chunk in bytes.chunks(chunk_size) {
                tar.feed(chunk).unwrap();
            }
            assert_eq!(tar.finish().unwrap(), content.len() as u64);
            assert_eq!(
                std::fs::read(&dest).unwrap(),
                content,
                "chunks of {chunk_size}"
            );
        }
    }

    #[test]
    fn a_cut_off_archive_is_an_error_and_leaves_no_file() {
        let bytes = archive(&[7u8; 10_000]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.bin");
        let mut tar = SingleFileTar::new(&dest);
        tar.feed(&bytes[..3000]).unwrap();
        let err = tar.finish().unwrap_err();
        assert!(err.to_string().contains("cut off"), "{err}");
        assert!(!dest.exists() && !dest.with_extension("partial").exists());
        let mut garbage = SingleFileTar::new(&dest);
        let err = garbage.feed(&[b'x'; 600]).unwrap_err();
        assert!(err.to_string().contains("not a tar stream"), "{err}");
    }
}
