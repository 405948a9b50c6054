//! Image builds for a Compose project: the RUN executor made of
//! rstack-runtime containers, and the `build:` section turned into
//! [`BuildOptions`].
//!
//! A RUN step is a container whose root is an overlay of the stage's layer
//! dirs plus a fresh upper dir; its stdout/stderr go through a pipe to the
//! build's progress output; when the process exits 0 the upper dir (the
//! step's changes) is handed to the builder before the container is
//! removed. Networking: `host` (the default: RUN reaches what the host
//! reaches) or `none`; a bridged build network is not wired yet.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rstack_builder::{BuildOptions, ExecError, RunExecutor, RunNetwork, RunOutcome, RunRequest};
use rstack_compose::Project;
use rstack_compose::model::Build;
use rstack_runtime::{Container, NetworkMode, Paths, RunOptions, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such service: {name}")]
    UnknownService { name: String },
    #[error(
        "service {service}: build.network {network:?} is not supported: use default, host or none"
    )]
    Network { service: String, network: String },
    #[error("service {service}: build.shm_size {size} is negative")]
    ShmSize { service: String, size: i64 },
}

/// Runs RUN steps as rstack-runtime containers.
pub struct RuntimeExecutor {
    pub paths: Paths,
}

impl RuntimeExecutor {
    /// `run_root` (/run/rstack) and `data_root` (/var/lib/rstack).
    pub fn new(run_root: &Path, data_root: &Path) -> RuntimeExecutor {
        RuntimeExecutor {
            paths: Paths::new(run_root, data_root),
        }
    }
}

/// An empty image config: everything a RUN step needs is in its options.
fn blank_config() -> oci_spec::image::ImageConfiguration {
    serde_json::from_value(serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("a minimal image config parses")
}

impl RunExecutor for RuntimeExecutor {
    fn run(
        &self,
        req: &RunRequest<'_>,
        capture: &mut dyn FnMut(&Path) -> Result<(), ExecError>,
    ) -> Result<RunOutcome, ExecError> {
        let (argv0, args) = req.argv.split_first().ok_or("RUN has an empty command")?;
        let opts = RunOptions {
            entrypoint: Some(vec![argv0.clone()]),
            command: args.to_vec(),
            env: req.env.clone(),
            workdir: Some(req.workdir.clone()),
            user: (!req.user.is_empty()).then(|| req.user.clone()),
            network: match req.network {
                RunNetwork::None => NetworkMode::None,
                RunNetwork::Host => NetworkMode::Host,
            },
            shm_size: req.shm_size,
            ..Default::default()
        };
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let stderr: OwnedFd = writer.try_clone()?;
        let stdio = Stdio {
            stdin: None,
            stdout: Some(writer),
            stderr: Some(stderr),
        };
        let output = req.output;
        std::thread::scope(|scope| {
            let pump = scope.spawn(move || {
                let mut f = std::fs::File::from(reader);
                let mut buf = [0u8; 8192];
                loop {
                    match f.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => output(&buf[..n]),
                    }
                }
            });
            let result = (|| -> Result<RunOutcome, ExecError> {
                let mut container =
                    Container::create(&self.paths, &blank_config(), req.layers, &opts, stdio)?;
                let upper: PathBuf = container
                    .rootfs()
                    .parent()
                    .map(|d| d.join("upper"))
                    .ok_or("container has no state dir")?;
                let run = (|| -> Result<RunOutcome, ExecError> {
                    container.start()?;
                    let status = container.wait()?;
                    if status.code == 0 {
                        capture(&upper)?;
                    }
                    Ok(RunOutcome {
                        exit_code: status.code,
                    })
                })();
                let removed = container.remove();
                let outcome = run?;
                removed?;
                Ok(outcome)
            })();
            let _ = pump.join();
            result
        })
    }
}

/// A service to build and its options.
#[derive(Debug, Clone)]
pub struct ServiceBuild {
    pub service: String,
    /// The image name (`image:`, else `<project>-<service>`).
    pub image: String,
    pub options: BuildOptions,
}

/// The services with a `build:` section among `names` (all when empty),
/// in file order. Services without `build:` are skipped like docker
/// compose does; unknown names are an error.
pub fn service_builds(project: &Project, names: &[String]) -> Result<Vec<ServiceBuild>, Error> {
    for n in names {
        if !project.services.contains_key(n) {
            return Err(Error::UnknownService { name: n.clone() });
        }
    }
    let mut out = Vec::new();
    for (name, svc) in &project.services {
        if !names.is_empty() && !names.contains(name) {
            continue;
        }
        let Some(build) = &svc.build else {
            continue;
        };
        let image = project.image_name(name);
        out.push(ServiceBuild {
            service: name.clone(),
            options: options(project, name, &image, build)?,
            image,
        });
    }
    Ok(out)
}

/// `build:` -> [`BuildOptions`]; relative paths are relative to the
/// project directory (context) and the context (dockerfile).
pub(crate) fn options(
    project: &Project,
    service: &str,
    image: &str,
    b: &Build,
) -> Result<BuildOptions, Error> {
    let context = project
        .working_dir
        .join(b.context.clone().unwrap_or_else(|| ".".into()));
    let dockerfile = b.dockerfile.as_ref().map(|d| context.join(d));
    let network = match b.network.as_deref() {
        None | Some("default") | Some("host") => RunNetwork::Host,
        Some("none") => RunNetwork::None,
        Some(other) => {
            return Err(Error::Network {
                service: service.to_owned(),
                network: other.to_owned(),
            });
        }
    };
    let shm_size = match &b.shm_size {
        Some(s) if s.0 < 0 => {
            return Err(Error::ShmSize {
                service: service.to_owned(),
                size: s.0,
            });
        }
        Some(s) => Some(s.0 as u64),
        None => None,
    };
    let mut tags = vec![image.to_owned()];
    tags.extend(b.tags.iter().cloned());
    Ok(BuildOptions {
        context,
        dockerfile,
        dockerfile_inline: b.dockerfile_inline.clone(),
        tags,
        target: b.target.clone(),
        build_args: b
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect(),
        labels: b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        no_cache: b.no_cache.unwrap_or(false),
        pull: b.pull.unwrap_or(false),
        network,
        shm_size,
        platform: None,
    })
}

/// Services with `build:` whose image is not in the store yet (what `up`
/// builds before starting, like docker compose).
pub fn missing(
    project: &Project,
    store: &rstack_images::Store,
) -> Result<Vec<String>, rstack_images::Error> {
    let mut out = Vec::new();
    for (name, svc) in &project.services {
        if svc.build.is_some() && store.lookup(&project.image_name(name))?.is_none() {
            out.push(name.clone());
        }
    }
    Ok(out)
}
