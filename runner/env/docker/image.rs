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
use crate::lab::{ImageSpec, OfflineImage};

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

/// Where the lab image comes from, as the command line says (`--image-from`, `--image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChoice {
    /// As the lab says (`app.image:`), else `FROM scratch` with the host's `node` (works offline;
    /// the default).
    HostNode,
    /// The app folder's `Dockerfile` (`FROM node:20-...`; needs a registry).
    Dockerfile,
    /// An image that already exists, used as is.
    Existing(String),
}

/// What an image (the app's or a service's) is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// `FROM scratch` with the host's `node`; with `entry`, the image's command runs it.
    HostNode { entry: Option<String> },
    /// `FROM scratch` with the host files the lab names (`image: offline:`).
    Offline(OfflineImage),
    /// A registry image (`image: registry:`) with the files added in `/app`.
    Registry(String),
    /// A Dockerfile, relative to the source folder (the build context).
    Dockerfile(String),
    /// An image that already exists, used as is.
    Existing(String),
}

impl Recipe {
    /// The recipe of the lab's `image:` (`None`: the host's node, running `entry` if given).
    pub fn of(image: Option<&ImageSpec>, entry: Option<&str>) -> Recipe {
        match image {
            None => Recipe::HostNode {
                entry: entry.map(str::to_string),
            },
            Some(ImageSpec::Offline(offline)) => Recipe::Offline(offline.clone()),
            Some(ImageSpec::Registry(name)) => Recipe::Registry(name.clone()),
            Some(ImageSpec::Dockerfile(file)) => Recipe::Dockerfile(file.clone()),
        }
    }

    /// The app's recipe: the command line's choice, or the lab's.
    pub fn for_app(choice: &ImageChoice, image: Option<&ImageSpec>, entry: Option<&str>) -> Recipe {
        match choice {
            ImageChoice::Existing(reference) => Recipe::Existing(reference.clone()),
            ImageChoice::Dockerfile => Recipe::Dockerfile("Dockerfile".into()),
            ImageChoice::HostNode => Recipe::of(image, entry),
        }
    }
}

/// What goes into one image: the recipe and the files of a source folder (to `/app`).
#[derive(Debug, Clone, Copy)]
pub struct ImageInput<'a> {
    /// The repository the image is tagged in (`lab-runner/lab-app`; see [`repository`]).
    pub repository: &'a str,
    /// The source folder whose files go to `/app` (a service may have none).
    pub dir: Option<&'a Path>,
    /// What of `dir` goes in (see [`rootfs::app_files`]).
    pub files: &'a [String],
    pub recipe: &'a Recipe,
}

/// The image a container will run.
#[derive(Debug, Clone)]
pub struct LabImage {
    pub reference: String,
    /// Said to the user: how the image was obtained.
    pub how: String,
    pub built: bool,
    pub took: Duration,
    /// The host's `node` that the image holds a copy of at [`rootfs::NODE_IN_IMAGE`] (images made
    /// from the host's node only).
    pub host_node: Option<PathBuf>,
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
        /// The app's entry script, relative to the app folder (the image's command).
        entry: Option<String>,
    },
    /// `FROM scratch` with the named host files, the libraries they load, links, and the files.
    Offline {
        runtime: Vec<ImageFile>,
        links: Vec<(PathBuf, String)>,
        app: Vec<ImageFile>,
        hash: String,
    },
    /// `FROM <registry image>` with the files in `/app`.
    Registry {
        base: String,
        app: Vec<ImageFile>,
        hash: String,
    },
    /// A Dockerfile and the files of its build context, at their paths in it.
    Dockerfile {
        dockerfile: PathBuf,
        /// The Dockerfile's path in the context.
        name: String,
        files: Vec<ImageFile>,
        hash: String,
    },
    /// An existing image, never built.
    Existing,
}

/// The files of `input`'s source folder, at `/app/...` (none without a folder).
fn input_files(input: &ImageInput) -> Result<Vec<ImageFile>> {
    match input.dir {
        Some(dir) => rootfs::app_files(dir, input.files),
        None => Ok(Vec::new()),
    }
}

/// The image [`ensure`] would use for `input`, without building anything. The tag carries the same
/// content hash [`ensure`] computes (both go through this function).
pub fn plan(input: &ImageInput) -> Result<Plan> {
    let repository = input.repository;
    match input.recipe {
        Recipe::Existing(reference) => Ok(Plan {
            reference: reference.clone(),
            source: PlanSource::Existing,
        }),
        Recipe::HostNode { entry } => {
            let node = crate::env::node::find_node()?;
            let app = input_files(input)?;
            // The entry is part of the image (its command), so part of the hash.
            let hash = content_hash(
                &format!("host-node {}", entry.as_deref().unwrap_or_default()),
                &[&node],
                &app,
            )?;
            Ok(Plan {
                reference: format!("{repository}:{hash}"),
                source: PlanSource::HostNode {
                    node,
                    app,
                    hash,
                    entry: entry.clone(),
                },
            })
        }
        Recipe::Offline(offline) => {
            let runtime = rootfs::host_runtime(&offline.host, &offline.exclude)?;
            let links: Vec<(PathBuf, String)> = offline
                .links
                .iter()
                .map(|(path, target)| (PathBuf::from(path), target.clone()))
                .collect();
            let app = input_files(input)?;
            let binaries: Vec<&Path> = runtime.iter().map(|f| f.host.as_path()).collect();
            let mut source = String::from("offline");
            for (path, target) in &links {
                source.push_str(&format!(" {}->{target}", path.display()));
            }
            // Where each host file goes is part of the image too.
            for file in &runtime {
                source.push_str(&format!(" {}", file.image.display()));
            }
            let hash = content_hash(&source, &binaries, &app)?;
            Ok(Plan {
                reference: format!("{repository}:offline-{hash}"),
                source: PlanSource::Offline {
                    runtime,
                    links,
                    app,
                    hash,
                },
            })
        }
        Recipe::Registry(base) => {
            let app = input_files(input)?;
            let hash = content_hash(&format!("registry {base}"), &[], &app)?;
            Ok(Plan {
                reference: format!("{repository}:registry-{hash}"),
                source: PlanSource::Registry {
                    base: base.clone(),
                    app,
                    hash,
                },
            })
        }
        Recipe::Dockerfile(name) => {
            let Some(dir) = input.dir else {
                bail!(
                    "a `dockerfile:` image is built in its source folder, and {repository} has none"
                );
            };
            let dockerfile = dir.join(name);
            if !dockerfile.is_file() {
                bail!(
                    "the Dockerfile {} does not exist (a `dockerfile:` is relative to the source \
                     folder, its build context)",
                    dockerfile.display()
                );
            }
            let mut context = vec![ImageFile {
                host: dockerfile.clone(),
                image: PathBuf::from(name),
                mode: 0o644,
            }];
            for f in rootfs::app_files(dir, input.files)? {
                let relative = f
                    .image
                    .strip_prefix(APP_IN_IMAGE)
                    .expect("app files live under /app")
                    .to_path_buf();
                if relative != Path::new(name) {
                    context.push(ImageFile {
                        image: relative,
                        ..f
                    });
                }
            }
            let hash = content_hash(&format!("dockerfile {name}"), &[], &context)?;
            Ok(Plan {
                reference: format!("{repository}:dockerfile-{hash}"),
                source: PlanSource::Dockerfile {
                    dockerfile,
                    name: name.clone(),
                    files: context,
                    hash,
                },
            })
        }
    }
}

/// Longest the runner waits for a registry pull.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// Returns the image of `input`, building it only when no image with the same content hash exists.
pub async fn ensure(
    docker: &DockerClient,
    input: &ImageInput<'_>,
    report: &dyn Fn(&str),
) -> Result<LabImage> {
    let started = Instant::now();
    let plan_input = *input;
    let Plan {
        reference: tag,
        source,
    } = tokio::task::spawn_blocking({
        let repository = plan_input.repository.to_string();
        let dir = plan_input.dir.map(Path::to_path_buf);
        let files = plan_input.files.to_vec();
        let recipe = plan_input.recipe.clone();
        move || {
            plan(&ImageInput {
                repository: &repository,
                dir: dir.as_deref(),
                files: &files,
                recipe: &recipe,
            })
        }
    })
    .await
    .context("the image planning task failed")??;
    let reused = |how: String| LabImage {
        how,
        reference: tag.clone(),
        built: false,
        took: started.elapsed(),
        host_node: None,
    };
    let built = |how: String| LabImage {
        how,
        reference: tag.clone(),
        built: true,
        took: started.elapsed(),
        host_node: None,
    };
    match source {
        PlanSource::Existing => {
            if !docker.image_exists(&tag).await? {
                bail!(
                    "the image `{tag}` given with --image does not exist on this Docker engine; \
                     build or load it first (`docker images` lists what there is)"
                );
            }
            Ok(reused(format!("using the given image {tag}")))
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
                    host_node: Some(node),
                    ..reused(format!(
                        "reusing {tag} (offline image with the host's node; content unchanged)"
                    ))
                });
            }
            report(&format!(
                "building the lab image {tag} offline from the host's node ({})",
                node.display()
            ));
            let mut files = rootfs::node_runtime(&node)?;
            files.extend(app);
            build_from_scratch(
                docker,
                &tag,
                "host-node",
                &hash,
                entry.as_deref(),
                files,
                Vec::new(),
                report,
            )
            .await?;
            Ok(LabImage {
                host_node: Some(node.clone()),
                ..built(format!(
                    "built {tag} offline: FROM scratch with the host's node ({})",
                    node.display()
                ))
            })
        }
        PlanSource::Offline {
            runtime,
            links,
            app,
            hash,
        } => {
            if docker.image_exists(&tag).await? {
                retag_stable(docker, &tag).await?;
                return Ok(reused(format!(
                    "reusing {tag} (offline image from host files; content unchanged)"
                )));
            }
            report(&format!(
                "building the image {tag} offline from {} host files",
                runtime.len()
            ));
            let count = runtime.len();
            let mut files = runtime;
            files.extend(app);
            build_from_scratch(docker, &tag, "offline", &hash, None, files, links, report).await?;
            Ok(built(format!(
                "built {tag} offline: FROM scratch with {count} host files and the libraries they load"
            )))
        }
        PlanSource::Registry { base, app, hash } => {
            if docker.image_exists(&tag).await? {
                retag_stable(docker, &tag).await?;
                return Ok(reused(format!(
                    "reusing {tag} (FROM {base} with the files; content unchanged)"
                )));
            }
            ensure_pulled(docker, &base, report).await?;
            let dockerfile = if app.is_empty() {
                format!("FROM {base}\n")
            } else {
                format!("FROM {base}\nCOPY app/ {APP_IN_IMAGE}/\n")
            };
            let files: Vec<ImageFile> = app
                .into_iter()
                .map(|f| {
                    let relative = f
                        .image
                        .strip_prefix(APP_IN_IMAGE)
                        .expect("app files live under /app")
                        .to_path_buf();
                    ImageFile {
                        image: Path::new("app").join(relative),
                        ..f
                    }
                })
                .collect();
            let context = tokio::task::spawn_blocking(move || {
                let mut tar = tar::Builder::new(Vec::new());
                append_bytes(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
                for file in &files {
                    append_file(&mut tar, &file.image, &file.host, file.mode)?;
                }
                tar.into_inner()
                    .context("Failed to finish the image context")
            })
            .await
            .context("the image context task failed")??;
            build(
                docker,
                context,
                &tag,
                "registry",
                &hash,
                "Dockerfile",
                report,
            )
            .await?;
            Ok(built(format!(
                "built {tag}: FROM {base} with the files in {APP_IN_IMAGE}"
            )))
        }
        PlanSource::Dockerfile {
            dockerfile,
            name,
            files,
            hash,
        } => {
            if docker.image_exists(&tag).await? {
                retag_stable(docker, &tag).await?;
                return Ok(reused(format!(
                    "reusing {tag} (built from {}; content unchanged)",
                    dockerfile.display()
                )));
            }
            report(&format!(
                "building the image {tag} from {}",
                dockerfile.display()
            ));
            let context = tokio::task::spawn_blocking(move || plain_context(&files))
                .await
                .context("the image context task failed")??;
            build(docker, context, &tag, "dockerfile", &hash, &name, report).await?;
            Ok(built(format!("built {tag} from {}", dockerfile.display())))
        }
    }
}

/// Makes sure the registry image `base` is on the engine: used when present, pulled when not.
async fn ensure_pulled(docker: &DockerClient, base: &str, report: &dyn Fn(&str)) -> Result<()> {
    if docker.image_exists(base).await? {
        return Ok(());
    }
    report(&format!("pulling {base} (not on this Docker engine yet)"));
    docker.pull_image(base, PULL_TIMEOUT).await.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "the image {base} (`image: registry:` in lab.yaml) is not on this Docker engine and \
             could not be pulled; load it (`docker load`), or give the lab an image that needs no \
             registry: `image: offline:` (host files) or `image: dockerfile:` (FROM an image you have)"
        ))
    })
}

/// Tags `tag` (`repo:hash`) as `repo:local` too, unless it is already: tagging writes to the
/// engine's image store, one write at a time, and twenty-five seats starting together would queue
/// on it.
async fn retag_stable(docker: &DockerClient, tag: &str) -> Result<()> {
    let repo = tag.rsplit_once(':').map_or(tag, |(repo, _)| repo);
    let stable = format!("{repo}:{STABLE_NAME}");
    if docker.image_tags(tag).await?.contains(&stable) {
        return Ok(());
    }
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
/// With `entry`, the image's command runs it with the host's node; without, the container's
/// command is given when it is created.
fn scratch_dockerfile(entry: Option<&str>, labels: &[(String, String)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let cmd = entry
        .map(|entry| format!("CMD [\"{NODE_IN_IMAGE}\", \"{APP_IN_IMAGE}/{entry}\"]\n"))
        .unwrap_or_default();
    format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         USER {APP_UID}:{APP_UID}\n\
         {cmd}\
         LABEL {labels}\n",
        labels = labels.join(" ")
    )
}

/// The build context of the offline image, as a tar in memory. Headers are written explicitly
/// (owner root, fixed times, `/tmp` 1777), so the context is the same on every machine.
fn scratch_context(
    dockerfile: &str,
    files: &[ImageFile],
    links: &[(PathBuf, String)],
) -> Result<Vec<u8>> {
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
    for (path, target) in links {
        let relative = path.strip_prefix("/").unwrap_or(path);
        let name = Path::new("rootfs").join(relative);
        let mut h = header(0, 0o777, 0, tar::EntryType::Symlink);
        tar.append_link(&mut h, &name, target).with_context(|| {
            format!(
                "Failed to add the link {} to the image context",
                path.display()
            )
        })?;
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

/// Builds `tag` `FROM scratch` with `files` and `links` (the context is made off the async
/// threads: it reads every file), the image's labels in its Dockerfile; `entry`: the script a
/// Node image runs.
#[allow(clippy::too_many_arguments)]
async fn build_from_scratch(
    docker: &DockerClient,
    tag: &str,
    source: &str,
    hash: &str,
    entry: Option<&str>,
    files: Vec<ImageFile>,
    links: Vec<(PathBuf, String)>,
    report: &dyn Fn(&str),
) -> Result<()> {
    let dockerfile = scratch_dockerfile(entry, &image_labels(source, hash));
    let context = tokio::task::spawn_blocking(move || scratch_context(&dockerfile, &files, &links))
        .await
        .context("the image context task failed")??;
    build(docker, context, tag, source, hash, "Dockerfile", report).await
}

/// Builds `context` (its Dockerfile at `dockerfile`). Labels: in the offline images' Dockerfile
/// (one instruction, where the build option would add one instruction per label); for the others,
/// through the build options.
async fn build(
    docker: &DockerClient,
    context: Vec<u8>,
    tag: &str,
    source: &str,
    hash: &str,
    dockerfile: &str,
    report: &dyn Fn(&str),
) -> Result<()> {
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(dockerfile)
        .t(tag)
        .rm(true)
        .forcerm(true);
    if source != "host-node" && source != "offline" {
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
