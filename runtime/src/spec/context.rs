//! What the spec needs to know about the host and the prepared container
//! ([`SpecContext`]), gathered by the caller so that building the spec
//! stays pure: the resolved user, capabilities, seccomp target, cgroup
//! path and view, the caller's hard limits and, for `--privileged`, the
//! host's device nodes.

use std::collections::HashSet;
use std::path::PathBuf;

use caps::Capability;

use crate::seccomp::Target;
use crate::user::ResolvedUser;

/// What the spec needs to know about the host and the prepared container.
#[derive(Debug, Clone)]
pub struct SpecContext {
    /// Container id (also the default hostname, shortened).
    pub id: String,
    /// The mounted rootfs (absolute).
    pub rootfs: PathBuf,
    /// Directory holding this container's hosts, hostname and resolv.conf.
    pub etc_dir: PathBuf,
    /// The resolved `-u`.
    pub user: ResolvedUser,
    /// Capability set (see [`crate::caps::capability_set`]).
    pub caps: HashSet<Capability>,
    /// seccomp filter target (arch, kernel).
    pub target: Target,
    /// Absolute cgroup path (e.g. `/<caller's cgroup>/rstack/<id>`).
    pub cgroups_path: String,
    /// The caller's hard limits, to reject `--ulimit` above them up front.
    pub hard_limits: Vec<(&'static str, u64)>,
    /// Hostname when none is given (the host's with `--network host`).
    pub default_hostname: String,
    /// Whether the host can limit swap (v1 `memory.memsw.*`, v2 `memory.swap.max`).
    pub swap_limit_supported: bool,
    /// How `/sys/fs/cgroup` looks inside (see [`CgroupView`]).
    pub cgroup_view: CgroupView,
    /// The host's device nodes, given to a `--privileged` container (see
    /// [`host_devices`]); empty otherwise.
    pub host_devices: Vec<HostDevice>,
}

/// A device node of the host (`/dev/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub path: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Docker's `HostDevices`: every character and block device under `dev`,
/// but the container's own (pts, shm, mqueue, fd) and the console.
pub fn host_devices(dev: &std::path::Path) -> Vec<HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![dev.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            let name = e.file_name();
            if ft.is_dir() {
                if !matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
                ) {
                    stack.push(path);
                }
                continue;
            }
            let kind = if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else {
                continue;
            };
            let rel = path.strip_prefix(dev).unwrap_or(&path);
            let inside = format!("/dev/{}", rel.display());
            if inside == "/dev/console" {
                continue;
            }
            let rdev = meta.rdev();
            out.push(HostDevice {
                path: inside,
                kind,
                major: nix::sys::stat::major(rdev),
                minor: nix::sys::stat::minor(rdev),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What a (non-privileged) container sees at `/sys/fs/cgroup`: only its
/// own cgroup, read-only, never a host root (whose `release_agent` is the
/// CVE-2022-0492 path), as Docker and podman present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupView {
    /// cgroup v2: the cgroup2 file system mounted read-only in the
    /// container's cgroup namespace, whose root is the container's cgroup.
    Namespaced,
    /// cgroup v1 / hybrid: a tmpfs holding, for each hierarchy, the
    /// container's own directory of it bound read-only (`(name, host dir)`:
    /// `/sys/fs/cgroup/<name>`). libcontainer's own v1 mount would mount
    /// whole hierarchies read-write, the `name=systemd` one at its root.
    Binds(Vec<(String, PathBuf)>),
}
