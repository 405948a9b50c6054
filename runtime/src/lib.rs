//! rstack-runtime: one container's life.
//!
//! OCI runtime spec generation, the overlay rootfs, namespaces, cgroups,
//! capabilities, seccomp, start/stop/kill/exec and exit status. Knows
//! nothing of Compose nor of the image store: its inputs are an image
//! config, the unpacked layer dirs and [`RunOptions`].

pub mod adopt;
pub mod caps;
pub mod cgroup;
pub mod container;
mod create;
pub mod direct_exec;
mod error;
pub mod exec;
pub mod helper;
mod ids;
mod lock;
pub mod options;
pub mod parse;
mod paths;
pub mod rootfs;
pub mod seccomp;
pub mod seccomp_bpf;
mod signal;
pub mod spec;
mod stdio;
mod sys;
mod undo;
pub mod user;
mod vfork;
pub mod workload;

pub use container::{
    Container, ContainerError, ExecOptions, ExecProcess, ExitStatus, Paths, Stdio,
};
pub use options::{
    DnsConfig, MountSpec, NetworkMode, Resources, RunOptions, SeccompProfile, Ulimit,
};
