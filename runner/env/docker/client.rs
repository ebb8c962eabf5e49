//! The one Docker client. Every call the runner makes to the Docker Engine goes through
//! [`DockerClient`]: each has a time limit ([`call`], the one timeout helper) and fails with a
//! [`DockerError`] that names what was being done and says what to do. What a status code or an
//! engine's message means (not found, conflict, a host port taken, an API too old) is recognised
//! here and nowhere else.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    BuildInfo, ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ExecConfig,
    ImageSummary, Network, NetworkCreateRequest, SystemInfo,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, StopContainerOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt};

use crate::probe::tunnel::{Attached, Exec, ExecState, Frame};

/// What one API call may take unless the caller says otherwise (the image build and copy-out
/// take their own, longer limits).
pub const API_TIMEOUT: Duration = Duration::from_secs(30);

/// A filter of a listing: `label` → [`super::labels::filter`].
pub type Filter = HashMap<String, Vec<String>>;

/// Why a Docker call failed, recognised once from bollard's error (status code and engine message).
/// `what` is the operation as a person would say it: "start the container lab-runner-1a2b-part2".
#[derive(Debug)]
pub enum DockerError {
    /// The engine did not answer the connection (daemon stopped, socket missing, no permission).
    Unreachable {
        what: String,
        host: String,
        reason: String,
    },
    /// The container, image, network or exec does not exist (404).
    NotFound { what: String, message: String },
    /// The object is in a state the call conflicts with: the name is taken, the image is in use (409).
    Conflict { what: String, message: String },
    /// A host port the container should publish is taken by another program.
    PortAllocated {
        what: String,
        port: Option<u16>,
        message: String,
    },
    /// The engine speaks an older API than the request needs.
    ApiTooOld { what: String, message: String },
    /// The engine has no address range left for another network (each environment has its own).
    NoAddressPool { what: String, message: String },
    /// The engine did not answer within the call's limit.
    Timeout { what: String, after: Duration },
    /// Any other answer of the engine.
    Engine {
        what: String,
        status: u16,
        message: String,
    },
    /// Anything else (a body that does not parse, a broken stream).
    Other { what: String, reason: String },
}

impl DockerError {
    /// Classifies what bollard returned for the operation `what`.
    pub fn from_bollard(what: &str, e: bollard::errors::Error) -> DockerError {
        use bollard::errors::Error as B;
        let what = what.to_string();
        match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => {
                let lower = message.to_ascii_lowercase();
                if lower.contains("port is already allocated")
                    || lower.contains("address already in use")
                {
                    DockerError::PortAllocated {
                        what,
                        port: taken_port(&message),
                        message,
                    }
                } else if lower.contains("non-overlapping ipv4 address pool") {
                    DockerError::NoAddressPool { what, message }
                } else if status_code == 404 {
                    DockerError::NotFound { what, message }
                } else if status_code == 409 {
                    DockerError::Conflict { what, message }
                } else if status_code == 400
                    && (lower.contains("is too new") || lower.contains("api version"))
                {
                    DockerError::ApiTooOld { what, message }
                } else {
                    DockerError::Engine {
                        what,
                        status: status_code,
                        message,
                    }
                }
            }
            B::RequestTimeoutError => DockerError::Timeout {
                what,
                after: API_TIMEOUT,
            },
            B::IOError { err } if unreachable_cause(&err) => DockerError::Unreachable {
                what,
                host: super::connect::docker_host(),
                reason: err.to_string(),
            },
            B::SocketNotFoundError(path) => DockerError::Unreachable {
                what,
                host: super::connect::docker_host(),
                reason: format!("no socket at {path}"),
            },
            other => {
                let reason = root_cause(&other);
                if unreachable_cause(&other) {
                    DockerError::Unreachable {
                        what,
                        host: super::connect::docker_host(),
                        reason,
                    }
                } else {
                    DockerError::Other { what, reason }
                }
            }
        }
    }

    /// The object does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::NotFound { .. })
    }

    /// The port of a [`DockerError::PortAllocated`], when the engine named it.
    pub fn taken_port(&self) -> Option<u16> {
        match self {
            DockerError::PortAllocated { port, .. } => *port,
            _ => None,
        }
    }

    /// What went wrong, without the operation: the engine's message, the root cause.
    pub fn reason(&self) -> String {
        match self {
            DockerError::Unreachable { reason, .. } | DockerError::Other { reason, .. } => {
                reason.clone()
            }
            DockerError::NotFound { message, .. }
            | DockerError::Conflict { message, .. }
            | DockerError::PortAllocated { message, .. }
            | DockerError::NoAddressPool { message, .. }
            | DockerError::ApiTooOld { message, .. } => message.clone(),
            DockerError::Engine {
                status, message, ..
            } => format!("HTTP {status}: {message}"),
            DockerError::Timeout { after, .. } => {
                format!("no answer within {} s", after.as_secs_f64())
            }
        }
    }

    pub fn is_port_allocated(&self) -> bool {
        matches!(self, DockerError::PortAllocated { .. })
    }
}

impl std::fmt::Display for DockerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DockerError::Unreachable { what, host, reason } => write!(
                f,
                "Failed to {what}: Docker is not reachable at {host} ({reason}). Start the Docker \
                 daemon (or fix DOCKER_HOST), then run the command again"
            ),
            DockerError::NotFound { what, message } => write!(
                f,
                "Failed to {what}: it does not exist ({message}). It may have been removed \
                 meanwhile (`lab-runner cleanup`, `docker rm`); `docker ps -a` lists what there is"
            ),
            DockerError::Conflict { what, message } if message.contains("marked for removal") => {
                write!(
                    f,
                    "Failed to {what}: the container is dead or being removed ({message}); \
                     something removed it from outside the run (`docker rm`, a `lab-runner \
                     cleanup` of another terminal)"
                )
            }
            DockerError::Conflict { what, message } => write!(
                f,
                "Failed to {what}: Docker refused, the object being in a state that conflicts \
                 with it ({message}). When a leftover of an earlier run is in the way, \
                 `lab-runner cleanup` removes it"
            ),
            DockerError::PortAllocated {
                what,
                port,
                message,
            } => match port {
                Some(port) => write!(
                    f,
                    "Failed to {what}: port {port} on the host is already taken ({message}). Free \
                     it (`ss -ltnp 'sport = :{port}'` shows who holds it; `lab-runner cleanup` \
                     removes the runner's own containers)"
                ),
                None => write!(
                    f,
                    "Failed to {what}: a host port it publishes is already taken ({message}). \
                     Free it (`ss -ltnp` shows who holds which port)"
                ),
            },
            DockerError::NoAddressPool { what, message } => write!(
                f,
                "Failed to {what}: Docker has no address range left for another network \
                 ({message}). Each lab environment (each workshop seat) has a network of its own; \
                 Docker's default pools hold about 30, and the runner's own range 10.201.0.0/16 \
                 (used when they run out) 256 more, unless routes of this host cover it: remove \
                 networks no longer used \
                 (`lab-runner cleanup`, `docker network prune`), or give the engine more — \
                 `\"default-address-pools\": [{{\"base\": \"10.200.0.0/16\", \"size\": 24}}]` in \
                 /etc/docker/daemon.json, then restart Docker: 256 networks"
            ),
            DockerError::ApiTooOld { what, message } => write!(
                f,
                "Failed to {what}: the Docker engine's API is older than this request needs \
                 ({message}). Upgrade Docker Engine to 20.10 (API 1.41) or newer"
            ),
            DockerError::Timeout { what, after } => write!(
                f,
                "Failed to {what}: the Docker daemon did not answer within {} s. Check that it \
                 is healthy (`docker info`), then run the command again",
                after.as_secs_f64()
            ),
            DockerError::Engine {
                what,
                status,
                message,
            } => write!(f, "Failed to {what}: Docker answered {status}: {message}"),
            DockerError::Other { what, reason } => write!(f, "Failed to {what}: {reason}"),
        }
    }
}

impl std::error::Error for DockerError {}

/// The port in an engine's "port is already allocated" message: `Bind for 127.0.0.1:3001 failed:
/// port is already allocated`, `listen tcp4 127.0.0.1:9229: bind: address already in use`.
fn taken_port(message: &str) -> Option<u16> {
    let before = message
        .find(" failed: port is already allocated")
        .or_else(|| message.find(": bind: address already in use"))?;
    let (_, port) = message[..before].rsplit_once(':')?;
    port.trim().parse().ok()
}

/// The innermost cause of `e`: what a person can act on ("Connection refused (os error 111)"
/// rather than the HTTP client's "client error (Connect)").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Whether the innermost cause says nothing answered the connection.
fn unreachable_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ConnectionRefused | NotFound | PermissionDenied | ConnectionReset | BrokenPipe
            )
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The one timeout helper: `work` gets at most `limit`; a bollard error becomes a [`DockerError`]
/// naming `what`.
pub async fn call<T>(
    what: &str,
    limit: Duration,
    work: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, DockerError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(|e| DockerError::from_bollard(what, e)),
        Err(_) => Err(DockerError::Timeout {
            what: what.to_string(),
            after: limit,
        }),
    }
}

/// [`call`] with [`API_TIMEOUT`].
async fn api<T>(
    what: &str,
    work: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, DockerError> {
    call(what, API_TIMEOUT, work).await
}

/// `Ok` when the removal happened or the object was already gone.
pub fn removed(result: Result<(), DockerError>) -> Result<(), DockerError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// A connection to the Docker Engine (cheap to clone). Made by [`super::connect::connect`].
#[derive(Clone)]
pub struct DockerClient {
    docker: Docker,
}

impl DockerClient {
    pub(super) fn new(docker: Docker) -> DockerClient {
        DockerClient { docker }
    }

    /// The engine's version and API version.
    pub async fn version(&self) -> Result<(String, String), DockerError> {
        let v = call(
            "read the Docker engine's version",
            Duration::from_secs(5),
            self.docker.version(),
        )
        .await?;
        Ok((
            v.version.unwrap_or_else(|| "unknown".into()),
            v.api_version.unwrap_or_else(|| "unknown".into()),
        ))
    }

    /// The engine's info (where it keeps its data, ...).
    pub async fn info(&self) -> Result<SystemInfo, DockerError> {
        call(
            "read the Docker engine's info",
            Duration::from_secs(5),
            self.docker.info(),
        )
        .await
    }

    pub async fn create_network(&self, request: NetworkCreateRequest) -> Result<(), DockerError> {
        let what = format!("create the network {}", request.name);
        api(&what, self.docker.create_network(request))
            .await
            .map(|_| ())
    }

    /// Removes the network `name`; one already gone counts as removed.
    pub async fn remove_network(&self, name: &str) -> Result<(), DockerError> {
        removed(
            api(
                &format!("remove the network {name}"),
                self.docker.remove_network(name),
            )
            .await,
        )
    }

    pub async fn list_networks(&self, filter: &Filter) -> Result<Vec<Network>, DockerError> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(filter)
            .build();
        api(
            "list the networks",
            self.docker.list_networks(Some(options)),
        )
        .await
    }

    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<(), DockerError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        api(
            &format!("create the container {name}"),
            self.docker.create_container(Some(options), body),
        )
        .await
        .map(|_| ())
    }

    pub async fn start_container(&self, name: &str) -> Result<(), DockerError> {
        api(
            &format!("start the container {name}"),
            self.docker.start_container(name, None),
        )
        .await
    }

    /// Stops `name` with SIGTERM, then SIGKILL after `grace_seconds`.
    pub async fn stop_container(&self, name: &str, grace_seconds: i32) -> Result<(), DockerError> {
        let options = StopContainerOptionsBuilder::default()
            .t(grace_seconds)
            .build();
        api(
            &format!("stop the container {name}"),
            self.docker.stop_container(name, Some(options)),
        )
        .await
    }

    /// Sends `signal` (`SIGUSR1`) to the container's main process.
    pub async fn kill_container(&self, name: &str, signal: &str) -> Result<(), DockerError> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        api(
            &format!("send {signal} to the container {name}"),
            self.docker.kill_container(name, Some(options)),
        )
        .await
    }

    /// Removes the container `name` whatever its state, forced, with its anonymous volumes. One
    /// already gone counts as removed, and one whose removal another call began (a teardown cut
    /// short by Ctrl-C or a closed terminal, and the cleanup that follows) is waited for until it
    /// is gone: what comes next, its network's removal, fails while it is still there.
    pub async fn remove_container(&self, name: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let result = removed(
            api(
                &format!("remove the container {name}"),
                self.docker.remove_container(name, Some(options)),
            )
            .await,
        );
        match result {
            Err(DockerError::Conflict { message, .. })
                if message.contains("already in progress") =>
            {
                self.wait_until_gone(name).await
            }
            other => other,
        }
    }

    /// Returns once the engine no longer knows the container `name`, within [`API_TIMEOUT`].
    async fn wait_until_gone(&self, name: &str) -> Result<(), DockerError> {
        let started = std::time::Instant::now();
        loop {
            match self.inspect_container(name).await {
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) if started.elapsed() >= API_TIMEOUT => {
                    return Err(DockerError::Timeout {
                        what: format!("wait for the removal of the container {name} to finish"),
                        after: API_TIMEOUT,
                    });
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<ContainerInspectResponse, DockerError> {
        api(
            &format!("inspect the container {name}"),
            self.docker.inspect_container(name, None),
        )
        .await
    }

    /// Containers whose labels match `filter`; running ones only unless `all`.
    pub async fn list_containers(
        &self,
        all: bool,
        filter: &Filter,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(all)
            .filters(filter)
            .build();
        api(
            "list the containers",
            self.docker.list_containers(Some(options)),
        )
        .await
    }

    /// Everything the container's processes wrote to stdout and stderr.
    pub async fn logs(&self, name: &str) -> Result<String, DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let stream = self.docker.logs(name, Some(options));
        let collect = stream.try_fold(String::new(), |mut text, chunk| async move {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            Ok(text)
        });
        api(&format!("read the logs of {name}"), collect).await
    }

    /// Streams the tar of `path` in `container` to `each`, chunk by chunk, until the end or until
    /// `each` returns `false`; all within `limit`.
    pub async fn download<F, Fut>(
        &self,
        container: &str,
        path: &str,
        limit: Duration,
        mut each: F,
    ) -> Result<(), DockerError>
    where
        F: FnMut(bytes::Bytes) -> Fut,
        Fut: Future<Output = bool>,
    {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let work = async {
            while let Some(chunk) = stream.next().await {
                if !each(chunk?).await {
                    break;
                }
            }
            Ok(())
        };
        call(
            &format!("copy {path} out of the container {container}"),
            limit,
            work,
        )
        .await
    }

    /// Whether the engine has an image called `reference`.
    pub async fn image_exists(&self, reference: &str) -> Result<bool, DockerError> {
        match call(
            &format!("look for the image {reference}"),
            Duration::from_secs(10),
            self.docker.inspect_image(reference),
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The names (`repo:tag`) of the image `reference`.
    pub async fn image_tags(&self, reference: &str) -> Result<Vec<String>, DockerError> {
        call(
            &format!("look for the image {reference}"),
            Duration::from_secs(10),
            self.docker.inspect_image(reference),
        )
        .await
        .map(|image| image.repo_tags.unwrap_or_default())
    }

    /// Tags the image `image` as `repo:tag`.
    pub async fn tag_image(&self, image: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        api(
            &format!("tag {image} as {repo}:{tag}"),
            self.docker.tag_image(image, Some(options)),
        )
        .await
    }

    pub async fn list_images(&self, filter: &Filter) -> Result<Vec<ImageSummary>, DockerError> {
        let options = ListImagesOptionsBuilder::default().filters(filter).build();
        api("list the images", self.docker.list_images(Some(options))).await
    }

    pub async fn remove_image(&self, id: &str, name: &str) -> Result<(), DockerError> {
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        api(
            &format!("remove the image {name}"),
            self.docker.remove_image(id, Some(options), None),
        )
        .await
        .map(|_| ())
    }

    /// Pulls `reference` (`python:3.11-slim`) from its registry, all within `limit`.
    pub async fn pull_image(&self, reference: &str, limit: Duration) -> Result<(), DockerError> {
        let (image, tag) = match reference.rsplit_once(':') {
            Some((image, tag)) if !tag.contains('/') => (image, tag),
            _ => (reference, "latest"),
        };
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .tag(tag)
            .build();
        let what = format!("pull the image {reference}");
        let work = self
            .docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) });
        call(&what, limit, work).await
    }

    /// Builds an image from the tar `context`, handing each progress message to `each` (which may
    /// stop the build with an error message); all within `limit`.
    pub async fn build_image(
        &self,
        options: BuildImageOptions,
        context: Vec<u8>,
        limit: Duration,
        mut each: impl FnMut(BuildInfo) -> Result<(), String>,
    ) -> Result<(), DockerError> {
        let what = format!(
            "build the image {}",
            if options.t.as_deref().unwrap_or_default().is_empty() {
                "(untagged)"
            } else {
                options.t.as_deref().unwrap_or_default()
            }
        );
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let work = async {
            while let Some(item) = stream.next().await {
                if let Err(reason) = each(item?) {
                    return Ok(Err(reason));
                }
            }
            Ok(Ok(()))
        };
        match call(&what, limit, work).await? {
            Ok(()) => Ok(()),
            Err(reason) => Err(DockerError::Other { what, reason }),
        }
    }
}

/// Forwarders of [`crate::probe::tunnel::Tunnel`] run as Docker execs.
#[async_trait]
impl Exec for DockerClient {
    async fn start_attached(
        &self,
        container: &str,
        env: Vec<String>,
        cmd: Vec<String>,
        limit: Duration,
    ) -> anyhow::Result<Attached> {
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            // A tty would mangle binary data and merge stderr into stdout.
            tty: Some(false),
            env: Some(env),
            cmd: Some(cmd),
            ..Default::default()
        };
        let exec = call(
            &format!("create an exec in {container}"),
            limit,
            self.docker.create_exec(container, config),
        )
        .await?;
        let options = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: Some(64 * 1024),
        };
        let started = call(
            &format!("start an exec in {container}"),
            limit,
            self.docker.start_exec(&exec.id, Some(options)),
        )
        .await?;
        match started {
            StartExecResults::Attached { output, input } => Ok(Attached {
                id: exec.id,
                output: Box::pin(output.map(|frame| {
                    frame
                        .map(|f| match f {
                            LogOutput::StdOut { message } => Frame::StdOut(message),
                            LogOutput::StdErr { message } => Frame::StdErr(message),
                            LogOutput::Console { message } => Frame::Unframed(message),
                            LogOutput::StdIn { .. } => Frame::Unframed(bytes::Bytes::new()),
                        })
                        .map_err(|e| {
                            anyhow::Error::new(DockerError::from_bollard(
                                "read an exec's output",
                                e,
                            ))
                        })
                })),
                input,
            }),
            StartExecResults::Detached => {
                anyhow::bail!("Docker started an exec in {container} detached, without its streams")
            }
        }
    }

    async fn state(&self, id: &str, limit: Duration) -> anyhow::Result<ExecState> {
        match call(
            &format!("inspect the exec {id}"),
            limit,
            self.docker.inspect_exec(id),
        )
        .await
        {
            Ok(inspect) if inspect.running == Some(true) => Ok(ExecState::Running),
            Ok(inspect) => Ok(ExecState::Exited(inspect.exit_code)),
            // Docker forgets an exec some time after its container stops.
            Err(e) if e.is_not_found() => Ok(ExecState::Exited(None)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    /// What the engine's answer `status` / `message` to "start the container x" becomes.
    fn answer(status: u16, message: &str) -> DockerError {
        DockerError::from_bollard("start the container x", server(status, message))
    }

    #[test]
    fn status_codes_and_messages_become_kinds() {
        let e = answer(404, "No such container: x");
        assert!(e.is_not_found(), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("Failed to start the container x: it does not exist"),
            "{text}"
        );
        let e = answer(409, "Conflict. The container name \"/x\" is already in use");
        assert!(matches!(e, DockerError::Conflict { .. }), "{e:?}");
        assert!(e.to_string().contains("lab-runner cleanup"), "{e}");
        let e = answer(
            409,
            "can not get logs from container which is dead or marked for removal",
        );
        assert!(
            e.to_string()
                .contains("something removed it from outside the run"),
            "{e}"
        );
        let e = answer(
            500,
            "driver failed programming external connectivity on endpoint x: Bind for \
             127.0.0.1:3001 failed: port is already allocated",
        );
        assert_eq!(e.taken_port(), Some(3001), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("port 3001 on the host is already taken"),
            "{text}"
        );
        let e = answer(
            500,
            "driver failed programming external connectivity on endpoint x (abc): Error \
             starting userland proxy: listen tcp4 127.0.0.1:9229: bind: address already in use",
        );
        assert_eq!(e.taken_port(), Some(9229), "{e:?}");
        let e = answer(
            400,
            "client version 1.47 is too new. Maximum supported API version is 1.41",
        );
        assert!(matches!(e, DockerError::ApiTooOld { .. }), "{e:?}");
        assert!(e.to_string().contains("Upgrade Docker Engine"), "{e}");
        let e = answer(
            404,
            "could not find an available, non-overlapping IPv4 address pool among the defaults \
             to assign to the network",
        );
        assert!(matches!(e, DockerError::NoAddressPool { .. }), "{e:?}");
        assert!(!e.is_not_found());
        assert!(e.to_string().contains("default-address-pools"), "{e}");
        let e = answer(500, "OCI runtime create failed");
        assert!(
            matches!(e, DockerError::Engine { status: 500, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn a_refused_connection_is_unreachable() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = DockerError::from_bollard("list the containers", bollard::errors::Error::from(io));
        assert!(matches!(e, DockerError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("Start the Docker daemon"), "{e}");
    }

    #[tokio::test]
    async fn a_call_past_its_limit_is_a_timeout_naming_what() {
        let never = std::future::pending::<Result<(), bollard::errors::Error>>();
        let e = call("list the containers", Duration::from_millis(10), never)
            .await
            .expect_err("times out");
        assert!(matches!(e, DockerError::Timeout { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "Failed to list the containers: the Docker daemon did not answer within 0.01 s. \
             Check that it is healthy (`docker info`), then run the command again"
        );
        let gone = async { Err::<(), _>(server(404, "no such network")) };
        assert!(removed(call("remove the network n", API_TIMEOUT, gone).await).is_ok());
    }
}
