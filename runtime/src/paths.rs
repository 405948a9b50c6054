//! Where containers keep their state (a leaf module: every other module
//! that needs a container's directories asks [`Paths`]).
//!
//! State layout:
//! - `<run root>/containers/<id>/` libcontainer's state (state.json, notify socket)
//! - `<run root>/names/<name>` symlink to the id (name reservation, atomic)
//! - `<run root>/tty/<id16>.sock` console socket while a `-t` container is created
//! - `<data root>/containers/<id>/` upper/work/rootfs/etc/config.json (see
//!   [`crate::rootfs`]), `cgroup-dirs.json` (cgroup dirs the creation added,
//!   for [`crate::adopt`]), `exec-*.json` (a tenant process while it starts)

use std::path::{Path, PathBuf};

/// Where containers keep their state (layout in the module docs).
#[derive(Debug, Clone)]
pub struct Paths {
    /// Volatile state (libcontainer state dirs, names, console sockets).
    pub run_root: PathBuf,
    /// Persistent per-container dirs (upper/work/rootfs).
    pub data_root: PathBuf,
    /// cgroup parent; `None` = `<caller's cgroup>/rstack`.
    pub cgroup_parent: Option<String>,
}

impl Paths {
    /// `run_root` (e.g. /run/rstack) and `data_root` (e.g. /var/lib/rstack).
    pub fn new(run_root: &Path, data_root: &Path) -> Paths {
        Paths {
            run_root: run_root.to_owned(),
            data_root: data_root.to_owned(),
            cgroup_parent: None,
        }
    }
    /// libcontainer's state root (one dir per container id).
    pub(crate) fn state_root(&self) -> PathBuf {
        self.run_root.join("containers")
    }
    /// The name reservations (`<name>` → id symlinks).
    pub(crate) fn names_dir(&self) -> PathBuf {
        self.run_root.join("names")
    }
    /// Console sockets while a `-t` process is created.
    pub(crate) fn tty_dir(&self) -> PathBuf {
        self.run_root.join("tty")
    }
    /// The parent of every container's data dir.
    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    /// A container's data dir (upper/work/rootfs/etc/config.json).
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    /// The id a name stands for, or `name_or_id` itself when no such name
    /// is reserved.
    pub(crate) fn resolve_id(&self, name_or_id: &str) -> String {
        std::fs::read_link(self.names_dir().join(name_or_id))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| name_or_id.to_owned())
    }
}
