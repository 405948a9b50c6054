//! rstack-kube: a resolved Compose project as Kubernetes manifests.
//!
//! [`generate`] takes the [`Project`] the loader gives `rstack up` (profiles,
//! overrides, interpolation and `env_file`s applied) and returns the
//! objects a Kubernetes user would write by hand for it — a Namespace,
//! ConfigMaps and Secrets, one Deployment per service (a Job for a one-shot
//! service others wait on with `service_completed_successfully`) with
//! probes from its healthcheck, init containers for its `depends_on`, a
//! `securityContext`, Services, PersistentVolumeClaims, NetworkPolicies
//! for its networks and HorizontalPodAutoscalers from `x-kubernetes` —
//! plus a report naming every Compose key that could not be carried over.
//!
//! Pure: host files (secrets, configs, single-file binds) are read through
//! [`HostFiles`], and what the image store knows (the image's USER, the
//! numeric user it resolves to) comes in as [`ImageFacts`], so neither the
//! file system nor the store is touched here. The mapping of each key and
//! kompose's choice for it are in docs/kubernetes.md.

mod container;
pub mod extension;
mod files;
pub mod names;
mod objects;
mod pod;
mod policies;
mod probes;
mod project;
pub mod render;
pub mod report;
mod security;
mod services;
mod storage;
#[cfg(test)]
mod testing;
mod waits;
mod workload;

use std::path::Path;

use indexmap::IndexMap;
use rstack_compose::Project;

pub use extension::ServiceType;
pub use objects::Object;
pub use report::{Entry, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Extension(#[from] extension::Error),
    #[error("services.{service}.{key}: {message}")]
    Invalid {
        service: String,
        key: String,
        message: String,
    },
    #[error("read {} for {what}", path.display())]
    Read {
        path: std::path::PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{first} and {second} both become {kind} {name:?} in Kubernetes: rename one")]
    Collision {
        kind: String,
        name: String,
        first: String,
        second: String,
    },
    #[error("invalid {flag} {value:?}: {message}")]
    Option {
        flag: &'static str,
        value: String,
        message: String,
    },
}

/// The choices of `rstack kube generate`'s flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// The namespace (default: the project name made a DNS label).
    pub namespace: Option<String>,
    /// The Service type for published ports (`--service-type`); a
    /// service's `x-kubernetes.service_type` wins.
    pub service_type: ServiceType,
    /// Registry prefix of the images of `build:` services
    /// (`--image-registry`): `REG/<image>`.
    pub image_registry: Option<String>,
    /// Images pushed by `--push`, by service: used as they are.
    pub pushed: IndexMap<String, String>,
    /// Directory binds become hostPath volumes (`--allow-hostpath`).
    pub allow_hostpath: bool,
    /// PVC size when neither the volume nor the service says (`--pvc-size`).
    pub pvc_size: String,
    /// Image of the init containers that wait for a dependency's Service.
    pub wait_image: String,
    /// Image with `kubectl` for the init containers that wait for a Job.
    pub kubectl_image: String,
    /// The cluster's DNS domain (`cluster.local`), for waits on headless
    /// Services.
    pub cluster_domain: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            namespace: None,
            service_type: ServiceType::LoadBalancer,
            image_registry: None,
            pushed: IndexMap::new(),
            allow_hostpath: false,
            pvc_size: "1Gi".to_owned(),
            wait_image: "busybox:1.37".to_owned(),
            kubectl_image: "registry.k8s.io/kubectl:v1.32.9".to_owned(),
            cluster_domain: "cluster.local".to_owned(),
        }
    }
}

/// What the image store knows about a service's image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image config's USER (empty: root).
    pub user: String,
    /// The user the container runs as (the service's `user:` over the
    /// image's USER), resolved to numbers in the image's passwd and group
    /// files; `None` when a name there is unknown.
    pub run_as: Option<RunAs>,
    /// The image's EXPOSE ports (`80/tcp`): a service that lists no ports
    /// gets its Service on these.
    pub exposed: Vec<String>,
}

/// Numeric user and group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: Option<u32>,
}

/// What a path of the host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    /// A socket, device or fifo.
    Other,
    Missing,
}

/// Read access to the host's files (real in the binary, a map in tests).
pub trait HostFiles {
    fn kind(&self, path: &Path) -> FileKind;
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// The permission bits of a file (`0o644` when unknown).
    fn mode(&self, path: &Path) -> u32 {
        let _ = path;
        0o644
    }
}

/// The host's real file system.
pub struct RealFiles;

impl HostFiles for RealFiles {
    fn kind(&self, path: &Path) -> FileKind {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => FileKind::File,
            Ok(m) if m.is_dir() => FileKind::Directory,
            Ok(_) => FileKind::Other,
            Err(_) => FileKind::Missing,
        }
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn mode(&self, path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644)
    }
}

/// The manifests of a project and what could not be carried over.
#[derive(Debug)]
pub struct Output {
    /// In apply order: Namespace, RBAC, Secrets, ConfigMaps, PVCs,
    /// Services, workloads, autoscalers, NetworkPolicies.
    pub objects: Vec<Object>,
    pub report: Vec<Entry>,
}

/// The manifests of `project` (see the crate documentation).
pub fn generate(
    project: &Project,
    opts: &Options,
    facts: &IndexMap<String, ImageFacts>,
    files: &dyn HostFiles,
) -> Result<Output, Error> {
    project::generate(project, opts, facts, files)
}
