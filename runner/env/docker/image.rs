//! The lab image: reused by content hash when present, otherwise built offline through the build API
//! from an in-memory tar (`FROM scratch` + the host's `node`), or from `lab-app/Dockerfile` when asked.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bollard::query_parameters::BuildImageOptionsBuilder;
use sha2::{Digest, Sha256};

use super::client::DockerClient;
use super::labels;
use super::rootfs::{self, APP_IN_IMAGE, APP_UID, ImageFile, NODE_IN_IMAGE};

/// The stable tag of the shipped lab app's image, which `docker-compose.yml` names, so
/// `docker-compose up` works offline once the runner has built it. Every app folder gets its own
/// repository ([`repository`]), so an image built for another app (a test fixture) never takes it.
pub const STABLE_TAG: &str = "lab-runner/lab-app:local";
/// The tag every content-hash image also gets, in its app's repository.
const STABLE_NAME: &str = "local";

/// `lab-runner/<app folder name>`: `lab-runner/lab-app` for the shipped app.
pub fn repository(app_dir: &Path) -> String {
    let name: String = app_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("lab-runner/{}", if name.is_empty() { "app" } else { name })
}
/// Bumped when the image layout changes, so old images are not reused.
const LAYOUT_VERSION: &str = "lab-image-v2";
/// Longest the runner waits for an image build.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the lab image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChoice {
    /// `FROM scratch` with the host's `node` (works offline; the default).
    HostNode,
    /// `lab-app/Dockerfile` (`FROM node:20-...`; needs a registry).
    Dockerfile,
    /// An image that already exists, used as is.
    Existing(String),
}

/// The image a container will run.
#[derive(Debug, Clone)]
pub struct LabImage {
    pub reference: String,
    /// Said to the user: how the image was obtained.
    pub how: String,
    pub built: bool,
    pub took: Duration,
}

/// What [`ensure`] will use: the image reference (for a built image, tagged with its content hash) and
/// the inputs of a build. Computed from the files alone — no Docker, no build — so `doctor` can say
/// whether the image is already there.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The reference [`ensure`] returns: `lab-runner/lab-app:<hash>`, `...:dockerfile-<hash>`, or the
    /// given image.
    pub reference: String,
    pub source: PlanSource,
}

/// How the planned image is made when it is not there.
#[derive(Debug, Clone)]
pub enum PlanSource {
    /// `FROM scratch` with the host's `node` (its resolved path) and the app's files.
    HostNode {
        node: PathBuf,
        app: Vec<ImageFile>,
        hash: String,
        /// The app's entry script, relative to the app folder.
        entry: String,
    },
    /// `lab-app/Dockerfile` and the app's files, at their paths in the build context.
    Dockerfile {
        dockerfile: PathBuf,
        files: Vec<ImageFile>,
        hash: String,
    },
    /// An existing image, never built.
    Existing,
}

/// The image [`ensure`] would use for `choice`, without building anything. The tag carries the same
/// content hash [`ensure`] computes (both go through this function).
/// `entry` is the app's entry script, relative to `app_dir` (the image's command runs it).
/// `files` is what of `app_dir` goes into the image (see [`rootfs::app_files`]).
pub fn plan(app_dir: &Path, entry: &str, files: &[String], choice: &ImageChoice) -> Result<Plan> {
    match choice {
        ImageChoice::Existing(reference) => Ok(Plan {
            reference: reference.clone(),
            source: PlanSource::Existing,
        }),
        ImageChoice::HostNode => {
            let node = crate::env::node::find_node()?;
            let app = rootfs::app_files(app_dir, files)?;
            // The entry is part of the image (its command), so part of the hash.
            let hash = content_hash(&format!("host-node {entry}"), &[&node], &app)?;
            Ok(Plan {
                reference: format!("{}:{hash}", repository(app_dir)),
                source: PlanSource::HostNode {
                    node,
                    app,
                    hash,
                    entry: entry.to_string(),
                },
            })
        }
        ImageChoice::Dockerfile => {
            let dockerfile = app_dir.join("Dockerfile");
            if !dockerfile.is_file() {
                bail!(
                    "--image-from dockerfile: {} does not exist",
                    dockerfile.display()
                );
            }
            let mut context = vec![ImageFile {
                host: dockerfile.clone(),
                image: PathBuf::from("Dockerfile"),
                mode: 0o644,
            }];
            for f in rootfs::app_files(app_dir, files)? {
                let relative = f
                    .image
                    .strip_prefix(APP_IN_IMAGE)
                    .expect("app files live under /app")
                    .to_path_buf();
                context.push(ImageFile {
                    image: relative,
                    ..f
                });
            }
            let hash = content_hash("dockerfile", &[], &context)?;
            Ok(Plan {
                reference: format!("{}:dockerfile-{hash}", repository(app_dir)),
                source: PlanSource::Dockerfile {
                    dockerfile,
                    files: context,
                    hash,
                },
            })
        }
    }
}

/// Returns the lab image, building it only when no image with the same content hash exists.
pub async fn ensure(
    docker: &DockerClient,
    app_dir: &Path,
    entry: &str,
    files: &[String],
    choice: &ImageChoice,
    report: &dyn Fn(&str),
) -> Result<LabImage> {
    let started = Instant::now();
    let Plan {
        reference: tag,
        source,
    } = plan(app_dir, entry, files, choice)?;
    match source {
        PlanSource::Existing => {
            if !docker.image_exists(&tag).await? {
                bail!(
                    "the image `{tag}` given with --image does not exist on this Docker engine; \
                     build or load it first (`docker images` lists what there is)"
                );
            }
            Ok(LabImage {
                how: format!("using the given image {tag}"),
                reference: tag,
                built: false,
                took: started.elapsed(),
            })
        }
        PlanSource::HostNode {
            node,
            app,
            hash,
            entry,
        } => {
            if docker.image_exists(&tag).await? {
                retag_stable(docker, &tag).await?;
                return Ok(LabImage {
                    how: format!(
                        "reusing {tag} (offline image with the host's node; content unchanged)"
                    ),
                    reference: tag,
                    built: false,
                    took: started.elapsed(),
                });
            }
            report(&format!(
                "building the lab image {tag} offline from the host's node ({})",
                node.display()
            ));
            let mut files = rootfs::node_runtime(&node)?;
            files.extend(app);
            let dockerfile = scratch_dockerfile(&entry, &image_labels("host-node", &hash));
            let context = tokio::task::spawn_blocking(move || scratch_context(&dockerfile, &files))
                .await
                .context("the image context task failed")??;
            build(docker, context, &tag, "host-node", &hash, report).await?;
            Ok(LabImage {
                how: format!(
                    "built {tag} offline: FROM scratch with the host's node ({})",
                    node.display()
                ),
                reference: tag,
                built: true,
                took: started.elapsed(),
            })
        }
        PlanSource::Dockerfile {
            dockerfile,
            files,
            hash,
        } => {
            if docker.image_exists(&tag).await? {
                retag_stable(docker, &tag).await?;
                return Ok(LabImage {
                    how: format!(
                        "reusing {tag} (built from {}; content unchanged)",
                        dockerfile.display()
                    ),
                    reference: tag,
                    built: false,
                    took: started.elapsed(),
                });
            }
            report(&format!(
                "building the lab image {tag} from {} (this needs a registry for its FROM image)",
                dockerfile.display()
            ));
            let context = tokio::task::spawn_blocking(move || plain_context(&files))
                .await
                .context("the image context task failed")??;
            build(docker, context, &tag, "dockerfile", &hash, report).await?;
            Ok(LabImage {
                how: format!("built {tag} from {}", dockerfile.display()),
                reference: tag,
                built: true,
                took: started.elapsed(),
            })
        }
    }
}

/// Tags `tag` (`repo:hash`) as `repo:local` too.
async fn retag_stable(docker: &DockerClient, tag: &str) -> Result<()> {
    let repo = tag.rsplit_once(':').map_or(tag, |(repo, _)| repo);
    Ok(docker.tag_image(tag, repo, STABLE_NAME).await?)
}

/// The cache key. Big binaries are identified by path, size, modification time and inode (hashing
/// 100 MB of `node` would cost more than the build it saves); app files by their content.
fn content_hash(source: &str, binaries: &[&Path], files: &[ImageFile]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(LAYOUT_VERSION);
    hasher.update(source);
    for binary in binaries {
        let meta = std::fs::metadata(binary)
            .with_context(|| format!("Failed to stat {}", binary.display()))?;
        let mtime = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        hasher.update(binary.to_string_lossy().as_bytes());
        hasher.update(meta.len().to_le_bytes());
        hasher.update(mtime.as_nanos().to_le_bytes());
        hasher.update(std::os::unix::fs::MetadataExt::ino(&meta).to_le_bytes());
    }
    for file in files {
        hasher.update(file.image.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(
            std::fs::read(&file.host)
                .with_context(|| format!("Failed to read {}", file.host.display()))?,
        );
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}

/// As few instructions as possible: the classic builder (Docker 20.10) spends about a second on each
/// instruction after COPY. No ENV is needed: the libraries sit where the loader looks by default, and
/// Docker supplies PATH (with /usr/local/bin) and HOME (from /etc/passwd).
fn scratch_dockerfile(entry: &str, labels: &[(String, String)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         USER {APP_UID}:{APP_UID}\n\
         CMD [\"{NODE_IN_IMAGE}\", \"{APP_IN_IMAGE}/{entry}\"]\n\
         LABEL {labels}\n",
        labels = labels.join(" ")
    )
}

/// The build context of the offline image, as a tar in memory. Headers are written explicitly
/// (owner root, fixed times, `/tmp` 1777), so the context is the same on every machine.
fn scratch_context(dockerfile: &str, files: &[ImageFile]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append_bytes(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnode:x:{APP_UID}:{APP_UID}:node:/home/node:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnode:x:{APP_UID}:\n");
    append_bytes(&mut tar, "rootfs/etc/passwd", passwd.as_bytes(), 0o644)?;
    append_bytes(&mut tar, "rootfs/etc/group", group.as_bytes(), 0o644)?;
    append_dir(&mut tar, "rootfs/tmp", 0o1777, 0)?;
    append_dir(&mut tar, "rootfs/home/node", 0o755, APP_UID)?;
    for file in files {
        let relative = file.image.strip_prefix("/").unwrap_or(&file.image);
        let name = Path::new("rootfs").join(relative);
        append_file(&mut tar, &name, &file.host, file.mode)?;
    }
    tar.into_inner()
        .context("Failed to finish the image context")
}

/// A context of files as they are (for `lab-app/Dockerfile`).
fn plain_context(files: &[ImageFile]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for file in files {
        append_file(&mut tar, &file.image, &file.host, file.mode)?;
    }
    tar.into_inner()
        .context("Failed to finish the image context")
}

fn header(size: u64, mode: u32, uid: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(kind);
    h
}

fn append_bytes(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let mut h = header(data.len() as u64, mode, 0, tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)
        .with_context(|| format!("Failed to add {name} to the image context"))
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32, uid: u64) -> Result<()> {
    let mut h = header(0, mode, uid, tar::EntryType::Directory);
    tar.append_data(&mut h, name, std::io::empty())
        .with_context(|| format!("Failed to add {name}/ to the image context"))
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, name: &Path, host: &Path, mode: u32) -> Result<()> {
    let file =
        std::fs::File::open(host).with_context(|| format!("Failed to open {}", host.display()))?;
    let size = file.metadata()?.len();
    let mut h = header(size, mode, 0, tar::EntryType::Regular);
    tar.append_data(&mut h, name, file)
        .with_context(|| format!("Failed to add {} to the image context", host.display()))
}

/// Labels on the lab image (cleanup finds dangling ones by them).
fn image_labels(source: &str, hash: &str) -> Vec<(String, String)> {
    vec![
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::CONTENT_HASH.to_string(), hash.to_string()),
        (labels::IMAGE_SOURCE.to_string(), source.to_string()),
    ]
}

/// Builds `context`. Labels: in the offline image's Dockerfile (one instruction, where the build
/// option would add one instruction per label); for `lab-app/Dockerfile`, through the build options.
async fn build(
    docker: &DockerClient,
    context: Vec<u8>,
    tag: &str,
    source: &str,
    hash: &str,
    report: &dyn Fn(&str),
) -> Result<()> {
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true);
    if source != "host-node" {
        let labels: HashMap<String, String> = image_labels(source, hash).into_iter().collect();
        options = options.labels(&labels);
    }
    let mut log = Vec::new();
    let built = docker
        .build_image(options.build(), context, BUILD_TIMEOUT, |info| {
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(format!("the image build failed: {detail}"));
            }
            if let Some(text) = info.stream {
                let _ = log.write_all(text.as_bytes());
                let line = text.trim();
                if line.starts_with("Step ") {
                    report(line);
                }
            }
            Ok(())
        })
        .await;
    if let Err(e) = built {
        return Err(anyhow::Error::new(e).context(format!(
            "Failed to build {tag}; build output:\n{}",
            String::from_utf8_lossy(&log)
        )));
    }
    if !docker.image_exists(tag).await? {
        bail!(
            "the build reported success but {tag} does not exist; build output:\n{}",
            String::from_utf8_lossy(&log)
        );
    }
    retag_stable(docker, tag).await
}
