//! rstack-runtime: one container's life.
//!
//! OCI runtime spec generation, the overlay rootfs, namespaces, cgroups,
//! capabilities, seccomp, start/stop/kill/exec and exit status. Knows
//! nothing of Compose nor of the image store: its inputs are an image
//! config, the unpacked layer dirs and [`RunOptions`].

pub mod caps;
pub mod options;
pub mod parse;
pub mod seccomp;
pub mod spec;
pub mod user;

pub use options::{
    DnsConfig, MountSpec, NetworkMode, Resources, RunOptions, SeccompProfile, Ulimit,
};
