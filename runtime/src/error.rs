//! The error of container operations (create, start, exec, signal,
//! remove), shared by [`crate::container`], [`crate::exec`],
//! [`crate::adopt`] and the process-level helpers; a leaf module, so none
//! of them depends on another for it.

use std::path::{Path, PathBuf};

use crate::rootfs::RootfsError;
use crate::spec::SpecError;
use crate::user::UserError;

/// A failure of a container operation.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container name '{name}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName { name: String },
    #[error("the container name \"{name}\" is already in use")]
    NameInUse { name: String },
    #[error("invalid signal '{value}'")]
    BadSignal { value: String },
    #[error("no container named or with id '{name}'")]
    NoSuchContainer { name: String },
    #[error(
        "cannot create the mount point '{target}' inside the container (is it a symlink \
         that leads out of the image's root file system?)"
    )]
    MountTarget {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the working directory '{dir}' inside the container")]
    Workdir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Caps(#[from] crate::caps::CapsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("bind mount source {path} cannot be used")]
    BindSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{flag} needs the {controller} cgroup controller, which this host does not have (not mounted or not enabled)"
    )]
    MissingController {
        flag: &'static str,
        controller: &'static str,
    },
    #[error("cannot {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Docker's shape: `exec: "foo": executable file not found in $PATH` (exit 127).
    #[error("{message}")]
    CommandNotFound { message: String },
    /// `exec: "/x": permission denied` (exit 126).
    #[error("{message}")]
    CommandNotExecutable { message: String },
    #[error("the container runtime failed to {what}: {message}")]
    Executor { what: &'static str, message: String },
    #[error("cannot {what}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{failure}; cleaning up also failed: {}", cleanup.join("; "))]
    WithCleanup {
        #[source]
        failure: Box<ContainerError>,
        cleanup: Vec<String>,
    },
    #[error("removing the container left things behind: {}", .0.join("; "))]
    Teardown(Vec<String>),
    #[error(transparent)]
    Random(#[from] rstack_sys::random::Error),
}

impl ContainerError {
    /// The exit code `docker run` uses for this failure (125 = the
    /// runtime's own error; 126/127 = the command cannot be run).
    pub fn exit_code(&self) -> u8 {
        match self {
            ContainerError::CommandNotFound { .. } => 127,
            ContainerError::CommandNotExecutable { .. } => 126,
            ContainerError::WithCleanup { failure, .. } => failure.exit_code(),
            _ => 125,
        }
    }

    /// A `map_err` adapter for an I/O failure to `what` the file `path`.
    pub(crate) fn io(
        what: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> ContainerError + use<> {
        let path = path.to_owned();
        move |source| ContainerError::Io { what, path, source }
    }

    /// A `map_err` adapter for a failed system call while trying to `what`.
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ContainerError {
        move |source| ContainerError::Sys { what, source }
    }
}
